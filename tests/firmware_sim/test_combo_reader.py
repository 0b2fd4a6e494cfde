"""The simulated combo reader, seen from a host that opens its pty with plain pyserial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from devices.combo_reader import (
    COMBO_MAX_PAYLOAD,
    Beep,
    CardInsertedMsg,
    CardRemovedMsg,
    CardRequestMsg,
    ComboMessage,
    ErrorCode,
    ErrorMsg,
    IndicateMsg,
    Led,
    ReaderState,
    StatusMsg,
    StatusRequestMsg,
    decode_message,
    encode_message,
)
from devices.framing import Frame, FrameParser
from firmware_sim.combo_reader import ComboReaderSim
from tests.devices.leaks import no_leaks
from tests.devices.samples import card_hasanova, card_tashiev

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_leaks():
        yield


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[ComboReaderSim]:
    with ComboReaderSim(tmp_path / "ttyREADER", serial_number="KG-0042") as s:
        yield s


@pytest.fixture
def host(sim: ComboReaderSim) -> Iterator[serial.Serial]:
    port = serial.Serial(str(sim.link_path), baudrate=115200, timeout=0.05)
    yield port
    port.close()


def read_messages(port: serial.Serial, count: int, timeout: float = 3.0) -> list[ComboMessage]:
    parser = FrameParser(COMBO_MAX_PAYLOAD)
    out: list[ComboMessage] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        for item in parser.feed(port.read(port.in_waiting or 1)):
            assert isinstance(item, Frame), item
            msg = decode_message(item)
            assert not hasattr(msg, "reason"), msg
            out.append(msg)  # type: ignore[arg-type]
    assert len(out) == count, out
    return out


def read_bytes(port: serial.Serial, count: int, timeout: float = 3.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < count and time.monotonic() < deadline:
        data += port.read(count - len(data))
    return data


def test_link_points_to_a_real_pty_slave(sim: ComboReaderSim) -> None:
    assert sim.link_path.is_symlink()
    assert os.readlink(sim.link_path) == sim.device_path
    assert sim.device_path is not None and sim.device_path.startswith("/dev/pts/")


def test_status_request_is_answered_with_identity_and_card_presence(
    sim: ComboReaderSim, host: serial.Serial
) -> None:
    host.write(encode_message(StatusRequestMsg()).encode())
    assert read_messages(host, 1) == [StatusMsg(ReaderState.OK, "CR-SIM 1.0.0", "KG-0042", False)]
    sim.insert_card(card_hasanova())
    sim.set_state(ReaderState.BIOMETRIC_SENSOR_FAULT, "sensor dirty")
    host.write(encode_message(StatusRequestMsg()).encode())
    _, status = read_messages(host, 2)
    assert status == StatusMsg(
        ReaderState.BIOMETRIC_SENSOR_FAULT, "CR-SIM 1.0.0", "KG-0042", True, "sensor dirty"
    )


def test_card_insert_remove_and_error_are_sent_as_frames(
    sim: ComboReaderSim, host: serial.Serial
) -> None:
    sim.insert_card(card_hasanova())
    sim.remove_card()
    sim.card_error(ErrorCode.CHIP_ERROR)
    assert read_messages(host, 3) == [
        CardInsertedMsg(card_hasanova()),
        CardRemovedMsg(),
        ErrorMsg(ErrorCode.CHIP_ERROR),
    ]


def test_card_request_resends_the_current_card_state(
    sim: ComboReaderSim, host: serial.Serial
) -> None:
    host.write(encode_message(CardRequestMsg()).encode())
    assert read_messages(host, 1) == [CardRemovedMsg()]
    sim.insert_card(card_tashiev())
    host.write(encode_message(CardRequestMsg()).encode())
    assert read_messages(host, 2) == [CardInsertedMsg(card_tashiev())] * 2


def test_host_messages_are_recorded_and_bad_ones_counted(
    sim: ComboReaderSim, host: serial.Serial
) -> None:
    host.write(encode_message(IndicateMsg(Led.RED, Beep.LONG)).encode())
    host.write(b"\x00garbage")
    host.write(encode_message(StatusRequestMsg()).encode())
    read_messages(host, 1)
    assert sim.received == [IndicateMsg(Led.RED, Beep.LONG), StatusRequestMsg()]
    assert sim.host_errors == 1


def test_every_byte_value_passes_the_pty_untouched(
    sim: ComboReaderSim, host: serial.Serial
) -> None:
    raw = bytes(range(256)) * 4  # CR, LF, XON/XOFF, ^C, ^D: a cooked tty would mangle them
    sim.send_raw(raw)
    assert read_bytes(host, len(raw)) == raw


def test_unplug_removes_the_device_and_plug_brings_a_new_one(
    sim: ComboReaderSim, host: serial.Serial
) -> None:
    sim.unplug()
    assert not sim.plugged and not sim.link_path.exists() and sim.device_path is None
    with pytest.raises(serial.SerialException):
        host.read(1)
    sim.insert_card(card_hasanova())  # no power, nothing sent: must not fail
    sim.plug()
    assert sim.plugged and os.readlink(sim.link_path) == sim.device_path
    with serial.Serial(str(sim.link_path), baudrate=115200, timeout=0.05) as again:
        sim.remove_card()
        assert read_messages(again, 1) == [CardRemovedMsg()]


def test_stop_removes_the_link_and_is_idempotent(tmp_path: Path) -> None:
    sim = ComboReaderSim(tmp_path / "ttyR")
    sim.start()
    sim.stop()
    sim.stop()
    assert not (tmp_path / "ttyR").exists()
    with pytest.raises(RuntimeError):
        sim.insert_card(card_hasanova())


def test_standalone_process_plays_a_card_script(tmp_path: Path) -> None:
    script = tmp_path / "cards.json"
    script.write_text(
        json.dumps(
            [
                {
                    "pin": "11503198500123",
                    "document_number": "ID1234567",
                    "last_name": "Хасанова",
                    "first_name": "Айгүл",
                    "patronymic": "Өмүрбековна",
                    "birth_date": "1985-03-15",
                }
            ]
        ),
        encoding="utf-8",
    )
    link = tmp_path / "ttyREADER"
    cmd = [sys.executable, "-m", "firmware_sim.combo_reader", str(link), "--cards", str(script)]
    cmd += ["--interval", "0.8", "--hold", "0.1"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not link.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        with serial.Serial(str(link), baudrate=115200, timeout=0.05) as port:
            got = read_messages(port, 2)
        assert got == [CardInsertedMsg(card_hasanova()), CardRemovedMsg()]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        assert proc.stdout is not None
        proc.stdout.close()
    assert not link.exists()


def test_standalone_process_refuses_a_bad_card_script(tmp_path: Path) -> None:
    script = tmp_path / "cards.json"
    script.write_text('[{"pin": "123"}]', encoding="utf-8")
    cmd = [sys.executable, "-m", "firmware_sim.combo_reader", str(tmp_path / "t"), "--cards"]
    done = subprocess.run([*cmd, str(script)], cwd=REPO, capture_output=True, timeout=10)
    assert done.returncode == 2
    assert b"bad card script" in done.stdout
