"""The station's combo reader driver, end to end over a real pty with the simulated reader."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from devices.combo_reader import (
    Beep,
    CardInsertedMsg,
    CardRequestMsg,
    ErrorCode,
    IndicateMsg,
    Led,
    MsgType,
    ReaderState,
    StatusRequestMsg,
    encode_message,
    encode_tlv,
)
from devices.framing import encode_frame
from firmware_sim.combo_reader import ComboReaderSim
from station.reader import (
    CardError,
    CardInserted,
    CardRemoved,
    ComboReaderDriver,
    DriverSettings,
    ReaderEvent,
    ReaderFault,
    ReaderStatus,
)
from tests.devices.leaks import no_leaks
from tests.devices.samples import card_hasanova, card_tashiev

E = TypeVar("E", bound=ReaderEvent)

FAST = DriverSettings(
    read_timeout=0.02,
    frame_timeout=0.2,
    reconnect_initial=0.02,
    reconnect_max=0.1,
    status_timeout=0.3,
)


class Events:
    """Thread-safe record of the driver's events, with waiting."""

    def __init__(self) -> None:
        self._items: list[ReaderEvent] = []
        self._taken: set[int] = set()
        self._cond = threading.Condition()

    def __call__(self, event: ReaderEvent) -> None:
        with self._cond:
            self._items.append(event)
            self._cond.notify_all()

    @property
    def all(self) -> list[ReaderEvent]:
        with self._cond:
            return list(self._items)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.all if isinstance(e, kind)]

    def wait_for(
        self, kind: type[E], pred: Callable[[E], bool] = lambda e: True, timeout: float = 3.0
    ) -> E:
        """The first event of `kind` matching `pred` not yet waited for; fails on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, e in enumerate(self._items):
                    if isinstance(e, kind) and pred(e) and i not in self._taken:
                        self._taken.add(i)
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kind.__name__} event; got {self._items}")
                self._cond.wait(left)


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_leaks():
        yield


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "ttyREADER"


@pytest.fixture
def sim(link: Path) -> Iterator[ComboReaderSim]:
    with ComboReaderSim(link, serial_number="KG-0042") as s:
        yield s


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def driver(sim: ComboReaderSim, events: Events) -> Iterator[ComboReaderDriver]:
    drv = ComboReaderDriver(str(sim.link_path), events, settings=FAST)
    drv.start()
    events.wait_for(ReaderStatus, lambda s: s.state == "connected")
    yield drv
    drv.stop()


def card_frame() -> bytes:
    return encode_message(CardInsertedMsg(card_hasanova())).encode()


def test_connect_reports_the_readers_identity(driver: ComboReaderDriver, events: Events) -> None:
    (status,) = events.of(ReaderStatus)
    assert status.state == "connected"
    assert (status.firmware_version, status.serial_number) == ("CR-SIM 1.0.0", "KG-0042")
    assert driver.connected


def test_card_insert_and_remove_are_delivered_as_events(
    sim: ComboReaderSim, driver: ComboReaderDriver, events: Events
) -> None:
    sim.insert_card(card_hasanova())
    assert events.wait_for(CardInserted).card == card_hasanova()
    sim.remove_card()
    events.wait_for(CardRemoved)
    sim.insert_card(card_tashiev())
    assert events.wait_for(CardInserted).card == card_tashiev()
    assert not events.of(ReaderFault)


def test_reader_status_is_answered_on_request_including_a_fault(
    sim: ComboReaderSim, driver: ComboReaderDriver, events: Events
) -> None:
    sim.set_state(ReaderState.BIOMETRIC_SENSOR_FAULT, "sensor dirty")
    assert driver.request_status()
    fault = events.wait_for(ReaderStatus, lambda s: s.state == "fault")
    assert "biometric_sensor_fault" in fault.detail and "sensor dirty" in fault.detail
    sim.set_state(ReaderState.OK)
    driver.request_status()
    events.wait_for(ReaderStatus, lambda s: s.state == "connected")


def test_garbage_bytes_are_reported_and_the_next_card_is_read(
    sim: ComboReaderSim, driver: ComboReaderDriver, events: Events
) -> None:
    sim.send_raw(b"\x00\xff\x13line noise\r\n")
    assert events.wait_for(ReaderFault).kind == "garbage"
    sim.insert_card(card_hasanova())
    assert events.wait_for(CardInserted).card == card_hasanova()


def test_crc_error_is_reported_and_no_card_is_read(
    sim: ComboReaderSim, driver: ComboReaderDriver, events: Events
) -> None:
    bad = bytearray(card_frame())
    bad[10] ^= 0x04  # one PIN digit changes: only the CRC can tell
    sim.send_raw(bytes(bad))
    assert events.wait_for(ReaderFault).kind == "crc"
    sim.insert_card(card_tashiev())
    events.wait_for(CardInserted)
    assert [e.card for e in events.of(CardInserted)] == [card_tashiev()]
    assert [f.kind for f in events.of(ReaderFault)] == ["crc"]


def test_half_frame_followed_by_silence_is_dropped_as_truncated(
    sim: ComboReaderSim, driver: ComboReaderDriver, events: Events
) -> None:
    wire = card_frame()
    sim.send_raw(wire[: len(wire) // 2])
    assert events.wait_for(ReaderFault).kind == "truncated"
    assert not events.of(CardInserted)
    sim.insert_card(card_tashiev())
    assert events.wait_for(CardInserted).card == card_tashiev()


def test_half_frame_then_good_frame_still_reads_the_good_card(
    sim: ComboReaderSim, driver: ComboReaderDriver, events: Events
) -> None:
    wire = card_frame()
    sim.send_raw(wire[: len(wire) // 2])
    sim.insert_card(card_tashiev())
    assert events.wait_for(CardInserted).card == card_tashiev()
    assert [e.card for e in events.of(CardInserted)] == [card_tashiev()]
    assert events.of(ReaderFault)[0].kind in ("crc", "truncated")


def test_well_framed_bad_payload_is_reported_and_not_acted_on(
    sim: ComboReaderSim, driver: ComboReaderDriver, events: Events
) -> None:
    good = encode_message(CardInsertedMsg(card_hasanova())).payload
    payload = encode_tlv([(0x01, b"1150319850012")]) + good[16:]  # 13-digit PIN
    sim.send_raw(encode_frame(MsgType.CARD_INSERTED, payload))
    sim.send_raw(encode_frame(0x42, b""))
    first = events.wait_for(ReaderFault)
    assert (first.kind, "bad_pin" in first.detail) == ("bad_payload", True)
    assert "unknown_type" in events.wait_for(ReaderFault).detail
    assert not events.of(CardInserted)


def test_card_error_from_the_reader_is_reported(
    sim: ComboReaderSim, driver: ComboReaderDriver, events: Events
) -> None:
    sim.card_error(ErrorCode.CARD_UNREADABLE, "dirty contacts")
    assert events.wait_for(CardError) == CardError("card_unreadable", "dirty contacts")


def test_indicate_and_card_request_reach_the_reader(
    sim: ComboReaderSim, driver: ComboReaderDriver, events: Events
) -> None:
    sim.insert_card(card_hasanova())
    events.wait_for(CardInserted)
    assert driver.indicate(Led.GREEN, Beep.SHORT)
    assert driver.request_card()
    events.wait_for(CardInserted)  # sent again on request
    assert sim.received == [
        StatusRequestMsg(),
        IndicateMsg(Led.GREEN, Beep.SHORT),
        CardRequestMsg(),
    ]


def test_unplug_and_plug_back_reports_disconnected_then_connected_and_reads_cards(
    sim: ComboReaderSim, driver: ComboReaderDriver, events: Events
) -> None:
    sim.unplug()
    assert events.wait_for(ReaderFault).kind == "disconnected"
    events.wait_for(ReaderStatus, lambda s: s.state == "disconnected")
    assert not driver.request_status()  # nothing to send to
    time.sleep(0.2)  # several reopen attempts fail meanwhile, reported once
    assert len(events.of(ReaderStatus)) == 2
    sim.plug()
    events.wait_for(ReaderStatus, lambda s: s.state == "connected")
    sim.insert_card(card_tashiev())
    assert events.wait_for(CardInserted).card == card_tashiev()
    states = [s.state for s in events.of(ReaderStatus)]
    assert states == ["connected", "disconnected", "connected"]


def test_driver_started_before_the_reader_retries_with_growing_backoff(
    link: Path, events: Events
) -> None:
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        time.sleep(0.005)  # the test does not wait the backoff out

    drv = ComboReaderDriver(str(link), events, settings=FAST, sleep=sleep)
    drv.start()
    try:
        assert events.wait_for(ReaderStatus).state == "disconnected"
        while len(delays) < 6:
            time.sleep(0.01)
        assert delays[:6] == pytest.approx([0.02, 0.04, 0.08, 0.1, 0.1, 0.1])
        with ComboReaderSim(link):
            events.wait_for(ReaderStatus, lambda s: s.state == "connected")
    finally:
        drv.stop()


def test_a_reader_that_never_answers_status_is_reported_as_fault(
    link: Path, events: Events
) -> None:
    master, slave = os.openpty()  # a device that is there but silent
    os.symlink(os.ttyname(slave), link)
    drv = ComboReaderDriver(str(link), events, settings=FAST)
    try:
        drv.start()
        status = events.wait_for(ReaderStatus)
        assert status.state == "fault" and "does not answer" in status.detail
    finally:
        drv.stop()
        os.close(master)
        os.close(slave)


def test_a_failing_event_handler_does_not_stop_the_driver(sim: ComboReaderSim) -> None:
    events = Events()

    def handler(event: ReaderEvent) -> None:
        events(event)
        raise RuntimeError("station bug")

    drv = ComboReaderDriver(str(sim.link_path), handler, settings=FAST)
    drv.start()
    try:
        events.wait_for(ReaderStatus)
        sim.insert_card(card_hasanova())
        events.wait_for(CardInserted)
    finally:
        drv.stop()


def test_logs_never_hold_a_full_pin(
    sim: ComboReaderSim, driver: ComboReaderDriver, events: Events, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sim.insert_card(card_hasanova())
    events.wait_for(CardInserted)
    bad = bytearray(card_frame())
    bad[-1] ^= 0xFF
    sim.send_raw(bytes(bad))
    events.wait_for(ReaderFault)
    text = caplog.text + "".join(repr(e) for e in events.all)
    assert "1150********23" in caplog.text
    assert "11503198500123" not in text and "Хасанова" not in text


def test_stop_is_idempotent_and_a_second_start_is_refused(link: Path, events: Events) -> None:
    drv = ComboReaderDriver(str(link), events, settings=FAST)
    drv.start()
    with pytest.raises(RuntimeError):
        drv.start()
    drv.stop()
    drv.stop()
