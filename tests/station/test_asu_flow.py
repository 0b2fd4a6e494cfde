"""The ASU driver's normal flow over a real pty: a sheet counts only when the box drops it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.asu import AcceptMsg, DisableMsg, EnableMsg, ReturnMsg, StatusRequestMsg
from firmware_sim.asu import AsuSim
from station.asu import (
    AsuConnected,
    AsuDisconnected,
    AsuState,
    Decision,
    SheetCounted,
    SheetReturned,
    TransferFault,
)
from tests.devices.leaks import no_leaks
from tests.station.asu_harness import (
    Station,
    assert_every_sheet_accounted,
    rig,
    running_driver,
    wait_until,
)


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_leaks():
        yield


def test_connect_checks_the_box_before_enabling_feeding(tmp_path: Path) -> None:
    with rig(tmp_path, serial_number="ASU-0042", drops_total=7) as (sim, drv, station):
        assert station.of(AsuConnected) == [AsuConnected("ASU-SIM 1.0.0", "ASU-0042", 7)]
        wait_until(lambda: sim.feeding_enabled, what="ENABLE reaches the box")
        assert sim.received[:3] == [DisableMsg(), StatusRequestMsg(), EnableMsg()]
        assert drv.state == AsuState.IDLE and sim.feeding_enabled


def test_accepted_sheets_count_only_when_the_box_confirms_the_drop(tmp_path: Path) -> None:
    with rig(tmp_path) as (sim, _drv, station):
        fed = []
        for n in range(3):
            sim.feed(station.sheet(n, f"vote-{n}"), f"vote-{n}")
            fed.append(f"vote-{n}")
        for _ in fed:
            station.wait_for(SheetCounted)
        assert station.counted == sim.dropped == fed
        assert [e.sheet_id for e in station.of(SheetCounted)] == [1, 2, 3]
        assert_every_sheet_accounted(sim, station, fed)
        assert not station.of(TransferFault)


def test_a_sheet_whose_drop_is_not_confirmed_is_not_counted(tmp_path: Path) -> None:
    with rig(tmp_path) as (sim, _drv, station):
        sim.box_full()  # the box will refuse the drop
        station.wait_state(AsuState.BOX_FULL)
        assert station.counted == []


def test_a_returned_decision_gives_the_sheet_back_with_its_reason(tmp_path: Path) -> None:
    with rig(tmp_path) as (sim, _drv, station):
        station.policy = lambda truth: Decision.give_back("overvote") if truth == "bad" else None
        sim.feed(station.sheet(1, "bad"), "bad")
        assert station.wait_for(SheetReturned) == SheetReturned(1, "overvote")
        sim.feed(station.sheet(2, "good"), "good")
        station.wait_for(SheetCounted)
        assert sim.returned == ["bad"] and sim.dropped == ["good"] == station.counted
        assert ReturnMsg(1) in sim.received and AcceptMsg(2) in sim.received


def test_a_failing_decide_gives_the_sheet_back_and_the_driver_goes_on(tmp_path: Path) -> None:
    with rig(tmp_path) as (sim, _drv, station):

        def broken(truth: object) -> Decision | None:
            if truth == "boom":
                raise RuntimeError("mark reader bug")
            return None

        station.policy = broken
        sim.feed(station.sheet(1, "boom"), "boom")
        assert station.wait_for(SheetReturned).reason == "station error"
        sim.feed(station.sheet(2, "ok"), "ok")
        station.wait_for(SheetCounted)
        assert_every_sheet_accounted(sim, station, ["boom", "ok"])


def test_feeding_disabled_after_close_takes_no_more_sheets(tmp_path: Path) -> None:
    with rig(tmp_path) as (sim, drv, station):
        drv.disable_feeding()
        station.wait_state(AsuState.DISABLED)
        wait_until(lambda: not sim.feeding_enabled, what="box disabled")
        sim.feed(station.sheet(1, "late"), "late")
        wait_until(lambda: sim.waiting == ["late"], what="sheet left at the slot")
        assert station.decided == [] and station.counted == []
        drv.enable_feeding()  # e.g. the close was a mistake and is undone
        station.wait_for(SheetCounted)
        assert station.counted == ["late"]


def test_garbage_on_the_line_is_reported_and_sheets_still_count(tmp_path: Path) -> None:
    with rig(tmp_path) as (sim, _drv, station):
        sim.send_raw(b"\x00\xff\x13line noise\xa5\x00\x05\x01abc")
        assert station.wait_for(TransferFault).kind in ("garbage", "crc", "truncated")
        sim.feed(station.sheet(1, "v"), "v")
        station.wait_for(SheetCounted)
        assert_every_sheet_accounted(sim, station, ["v"])


def test_unplug_and_replug_reconnects_and_rechecks_the_sensors(tmp_path: Path) -> None:
    with rig(tmp_path) as (sim, drv, station):
        sim.unplug()
        station.wait_for(AsuDisconnected)
        station.wait_state(AsuState.DISCONNECTED)
        sim.plug()
        station.wait_state(AsuState.CHECKING_SENSORS)
        station.wait_state(AsuState.IDLE)
        assert len(station.of(AsuConnected)) == 2
        sim.feed(station.sheet(1, "after"), "after")
        station.wait_for(SheetCounted)
        assert_every_sheet_accounted(sim, station, ["after"])


def test_driver_started_before_the_box_reports_it_absent_once_then_connects(
    tmp_path: Path,
) -> None:
    station = Station()
    link = tmp_path / "ttyASU"
    with running_driver(link, station):
        station.wait_for(AsuDisconnected)
        wait_until(lambda: True)
        with AsuSim(link):
            station.wait_state(AsuState.IDLE)
        assert len(station.of(AsuDisconnected)) >= 1


def test_stop_is_idempotent_and_a_second_start_is_refused(tmp_path: Path) -> None:
    station = Station()
    with running_driver(tmp_path / "none", station) as drv:
        with pytest.raises(RuntimeError):
            drv.start()
        drv.stop()
