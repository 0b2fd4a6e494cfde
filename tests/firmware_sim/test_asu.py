"""The simulated ballot box, seen from a host that opens its pty with plain pyserial."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from devices.asu import (
    ASU_MAX_PAYLOAD,
    AcceptMsg,
    AsuMessage,
    BoxState,
    ClearPathMsg,
    EnableMsg,
    ImageChunkMsg,
    ImageDoneMsg,
    ImageFormat,
    ResendChunkMsg,
    ReturnMsg,
    Sensor,
    SensorMsg,
    SheetDroppedMsg,
    SheetInsertedMsg,
    SheetReturnedMsg,
    StatusMsg,
    StatusRequestMsg,
    decode_message,
    encode_message,
    image_crc32,
)
from devices.framing import FrameFault, FrameParser
from firmware_sim.asu import AsuSim
from tests.devices.leaks import no_leaks

IMAGE = bytes(range(256)) * 10  # 2560 bytes: 3 chunks of 1000


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_leaks():
        yield


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[AsuSim]:
    with AsuSim(tmp_path / "ttyASU", serial_number="KG-ASU-1", chunk_size=1000) as s:
        yield s


class Host:
    def __init__(self, path: Path) -> None:
        self.port = serial.Serial(str(path), baudrate=115200, timeout=0.02)
        self.parser = FrameParser(ASU_MAX_PAYLOAD)
        self.faults: list[FrameFault] = []

    def send(self, msg: AsuMessage) -> None:
        self.port.write(encode_message(msg).encode())

    def read(self, count: int, timeout: float = 3.0) -> list[AsuMessage]:
        out: list[AsuMessage] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            for item in self.parser.feed(self.port.read(self.port.in_waiting or 1)):
                if isinstance(item, FrameFault):
                    self.faults.append(item)
                    continue
                msg = decode_message(item)
                assert not hasattr(msg, "reason"), msg
                out.append(msg)  # type: ignore[arg-type]
        assert len(out) == count, out
        return out

    def status(self) -> StatusMsg:
        self.send(StatusRequestMsg())
        (status,) = self.read(1)
        assert isinstance(status, StatusMsg)
        return status


@pytest.fixture
def host(sim: AsuSim) -> Iterator[Host]:
    h = Host(sim.link_path)
    yield h
    h.port.close()


def scan(host: Host) -> list[AsuMessage]:
    host.send(EnableMsg())
    return host.read(5)  # inserted, 3 chunks, done


def test_the_box_powers_up_disabled_and_reports_its_identity(sim: AsuSim, host: Host) -> None:
    assert os.readlink(sim.link_path) == sim.device_path
    status = host.status()
    assert status == StatusMsg(
        BoxState.READY, False, False, False, False, False, 0, 0, 0, "ASU-SIM 1.0.0", "KG-ASU-1"
    )
    sim.feed(IMAGE, "a")
    time.sleep(0.05)
    assert sim.waiting == ["a"]  # not taken while disabled


def test_a_sheet_is_scanned_in_chunks_and_dropped_on_accept(sim: AsuSim, host: Host) -> None:
    sim.feed(IMAGE, "a")
    inserted, c0, c1, c2, done = scan(host)
    assert inserted == SheetInsertedMsg(1, len(IMAGE), 3, ImageFormat.PNG, image_crc32(IMAGE))
    assert isinstance(c0, ImageChunkMsg) and isinstance(c1, ImageChunkMsg)
    assert isinstance(c2, ImageChunkMsg)
    assert c0.data + c1.data + c2.data == IMAGE and done == ImageDoneMsg(1)
    assert sim.in_path == ["a"] and host.status().state == BoxState.AWAITING_DECISION
    host.send(AcceptMsg(1))
    assert host.read(1) == [SheetDroppedMsg(1, 1)]
    assert sim.dropped == ["a"] and sim.in_path == [] and sim.drops_total == 1


def test_return_gives_the_sheet_back_and_a_wrong_accept_is_ignored(sim: AsuSim, host: Host) -> None:
    sim.feed(IMAGE, "a")
    scan(host)
    host.send(AcceptMsg(2))  # not the sheet in the path: ignored, not remembered
    host.send(ReturnMsg(1))
    assert host.read(1) == [SheetReturnedMsg(1)]
    assert sim.returned == ["a"] and sim.dropped == []


def test_a_corrupted_chunk_fails_its_crc_and_is_sent_again_on_request(
    sim: AsuSim, host: Host
) -> None:
    sim.corrupt_next_chunk()
    sim.feed(IMAGE, "a")
    host.send(EnableMsg())
    got = host.read(4)
    assert [type(m).__name__ for m in got] == [
        "SheetInsertedMsg",
        "ImageChunkMsg",
        "ImageChunkMsg",
        "ImageDoneMsg",
    ]
    assert [f.kind for f in host.faults][:1] == ["crc"]
    host.send(ResendChunkMsg(1, 0))
    (again,) = host.read(1)
    assert isinstance(again, ImageChunkMsg) and again.data == IMAGE[:1000]


def test_a_jam_stops_the_scan_and_clear_path_gives_the_sheet_back(sim: AsuSim, host: Host) -> None:
    sim.jam_next("scan")
    sim.feed(IMAGE, "a")
    host.send(EnableMsg())
    msgs = host.read(3)  # inserted, 1 chunk, JAM
    assert msgs[-1] == SensorMsg(Sensor.JAM, 1)
    status = host.status()
    assert status.jammed and status.paper_in_path and not status.feeding_enabled
    host.send(ClearPathMsg())
    assert host.read(1) == [SheetReturnedMsg(1)]
    assert sim.returned == ["a"]


def test_power_cut_after_the_drop_keeps_the_counter_and_loses_the_message(
    sim: AsuSim, host: Host
) -> None:
    sim.feed(IMAGE, "a")
    scan(host)
    sim.power_cut(at="after_drop")
    host.send(AcceptMsg(1))
    deadline = time.monotonic() + 3
    while sim.power_cycles == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    host.port.close()
    again = Host(sim.link_path)
    try:
        status = again.status()
        assert (status.drops_total, status.drops_since_power_up) == (1, 0)
        assert not status.paper_in_path and not status.feeding_enabled
        assert sim.dropped == ["a"]
    finally:
        again.port.close()


def test_power_cut_with_paper_in_the_path_reports_it_under_a_new_sheet_id(
    sim: AsuSim, host: Host
) -> None:
    sim.feed(IMAGE, "a")
    scan(host)
    sim.power_cut(restart=False)
    host.port.close()
    sim.power_on()
    again = Host(sim.link_path)
    try:
        status = again.status()
        assert status.paper_in_path and status.sheet_in_path == 1 and status.drops_total == 0
        again.send(AcceptMsg(1))  # the image is gone with the power: nothing to accept
        again.send(ClearPathMsg())
        assert again.read(1) == [SheetReturnedMsg(1)]
        assert sim.returned == ["a"] and sim.dropped == []
    finally:
        again.port.close()


def test_unknown_power_cut_points_are_refused(sim: AsuSim) -> None:
    with pytest.raises(ValueError):
        sim.power_cut(at="whenever")  # type: ignore[arg-type]


def test_host_errors_are_counted_and_frames_are_recorded(sim: AsuSim, host: Host) -> None:
    host.port.write(b"\x00garbage")
    host.send(StatusRequestMsg())
    host.read(1)
    assert sim.received == [StatusRequestMsg()] and sim.host_errors == 1
