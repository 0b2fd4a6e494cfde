"""Power loss at each point of a sheet's way, and a station restart with a pending accept:
after the box comes back, exactly the sheets that fell are counted, once; the others go back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.asu import ClearPathMsg
from firmware_sim.asu import AsuSim, PowerCutPoint
from station.asu import (
    AsuConnected,
    AsuDisconnected,
    AsuState,
    Decision,
    DropConfirmed,
    DropNotHappened,
    DropUnknown,
    PendingDrop,
    SheetCounted,
    SheetReturned,
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


# point -> does the sheet end in the box?
POINTS: list[tuple[PowerCutPoint, bool]] = [
    ("after_inserted", False),
    ("after_image_done", False),
    ("after_accept", False),
    ("after_drop", True),
    ("after_return_command", False),
    ("after_returned", False),
]


@pytest.mark.parametrize(("point", "falls"), POINTS)
def test_power_cut_resolves_the_sheet_exactly_once(
    tmp_path: Path, point: PowerCutPoint, falls: bool
) -> None:
    with rig(tmp_path, chunk_size=1000) as (sim, drv, station):
        sim.feed(station.sheet(1, "before"), "before")
        station.wait_for(SheetCounted)
        if point.startswith("after_return"):
            station.policy = lambda truth: Decision.give_back("overvote")
        sim.power_cut(at=point)
        sim.feed(station.sheet(2, "cut", noisy=True), "cut")
        station.wait_for(AsuDisconnected)
        wait_until(lambda: sim.power_cycles == 1, what="the box restarts")
        wait_until(
            lambda: (
                len(station.of(AsuConnected)) == 2
                and drv.state == AsuState.IDLE
                and not sim.in_path
            ),
            what="the box is checked and its path clear",
        )
        station.policy = lambda truth: None
        assert sim.dropped == (["before", "cut"] if falls else ["before"])
        assert sim.returned == ([] if falls else ["cut"])
        assert_every_sheet_accounted(sim, station, ["before", "cut"])
        if falls:
            assert station.of(DropConfirmed) and not station.of(SheetReturned)
        else:
            assert len(station.of(SheetReturned)) == 1
        # the box works on: the voter feeds the returned sheet again
        sim.feed(station.sheet(3, "next"), "next")
        station.wait_for(SheetCounted)
        assert_every_sheet_accounted(sim, station, ["before", "cut", "next"])


def test_paper_left_in_the_path_at_power_up_is_given_back_before_feeding(
    tmp_path: Path,
) -> None:
    with rig(tmp_path) as (sim, _drv, station):

        def hold(truth: object) -> Decision | None:
            sim.power_cut()  # power fails while the station reads the sheet
            return Decision.give_back("hold")

        station.policy = hold
        sim.feed(station.sheet(1, "v"), "v")
        wait_until(lambda: sim.power_cycles == 1, what="power cycle")
        station.policy = lambda truth: None
        wait_until(lambda: sim.returned == ["v"], what="sheet given back")
        assert ClearPathMsg() in sim.received  # the RETURN died with the power
        assert station.wait_for(SheetReturned).reason == "hold"
        assert station.counted == []
        assert_every_sheet_accounted(sim, station, ["v"])


def _accept_then_kill(sim: AsuSim, point: PowerCutPoint) -> Station:
    """The station accepted a sheet and died with the box's power before the drop was
    confirmed; returns the new station, started with the old one's durable store."""
    first = Station()
    with running_driver(sim.link_path, first):
        first.wait_state(AsuState.IDLE)
        wait_until(lambda: sim.feeding_enabled)
        sim.power_cut(at=point, restart=False)
        sim.feed(first.sheet(1, "v"), "v")
        wait_until(lambda: sim.power_cycles == 1, what="power cut")
    assert len(first.pending) == 1 and first.counted == []
    second = Station()
    second.pending = dict(first.pending)
    second.truth_of = dict(first.truth_of)
    return second


@pytest.mark.parametrize(("point", "falls"), [("after_accept", False), ("after_drop", True)])
def test_a_restarted_station_resolves_its_pending_accept_from_the_drop_counter(
    tmp_path: Path, point: PowerCutPoint, falls: bool
) -> None:
    with AsuSim(tmp_path / "ttyASU", drops_total=41) as sim:
        station = _accept_then_kill(sim, point)
        ((record, _),) = station.pending.values()
        assert record == PendingDrop(record.pending_id, "ASU-000001", 41)
        with running_driver(sim.link_path, station, pending=record) as drv:
            sim.power_on()
            wait_until(lambda: drv.state == AsuState.IDLE and not sim.in_path, what="resolved")
            if falls:
                assert station.of(DropConfirmed) == [DropConfirmed(record.pending_id)]
                assert station.counted == ["v"] and sim.drops_total == 42
            else:
                assert station.of(DropNotHappened) == [
                    DropNotHappened(record.pending_id, in_path=True)  # given back next
                ]
                assert station.counted == [] and sim.returned == ["v"]
            assert_every_sheet_accounted(sim, station, ["v"])


def test_a_pending_accept_from_another_box_is_left_to_the_commission(tmp_path: Path) -> None:
    station = Station()
    station.pending = {"p9": (PendingDrop("p9", "ASU-OTHER", 3), "v")}
    with AsuSim(tmp_path / "ttyASU") as sim:
        with running_driver(sim.link_path, station, pending=PendingDrop("p9", "ASU-OTHER", 3)):
            unknown = station.wait_for(DropUnknown)
            assert unknown.pending_id == "p9" and "ASU-OTHER" in unknown.detail
            station.wait_state(AsuState.IDLE)
        assert station.counted == [] and not station.pending
