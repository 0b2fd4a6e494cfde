"""A jam: the stuck sheet is given back (CLEAR_PATH) and never counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.asu import ClearPathMsg
from station.asu import (
    AsuState,
    DropNotHappened,
    SensorAlert,
    SheetCounted,
    SheetReturned,
)
from tests.devices.leaks import no_leaks
from tests.station.asu_harness import assert_every_sheet_accounted, rig


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_leaks():
        yield


def test_a_jam_during_the_scan_returns_the_sheet_and_feeding_resumes(tmp_path: Path) -> None:
    with rig(tmp_path, chunk_size=1000) as (sim, _drv, station):
        sim.jam_next("scan")
        sim.feed(station.sheet(1, "stuck", noisy=True), "stuck")
        assert station.wait_for(SensorAlert).kind == "jam"
        station.wait_state(AsuState.JAMMED)
        assert station.wait_for(SheetReturned) == SheetReturned(1, "jam")
        assert ClearPathMsg() in sim.received
        station.wait_state(AsuState.IDLE)
        assert station.decided == []
        sim.feed(station.sheet(1, "stuck", noisy=True), "stuck")  # fed again
        station.wait_for(SheetCounted)
        assert sim.returned == ["stuck"] and sim.dropped == ["stuck"]
        assert_every_sheet_accounted(sim, station, ["stuck", "stuck"])


def test_a_jam_on_the_way_into_the_box_resolves_the_accept_as_not_dropped(
    tmp_path: Path,
) -> None:
    with rig(tmp_path) as (sim, _drv, station):
        sim.jam_next("drop")
        sim.feed(station.sheet(1, "v"), "v")
        assert station.wait_for(SensorAlert).kind == "jam"
        assert station.wait_for(SheetReturned).reason == "jam"
        station.wait_for(DropNotHappened)
        station.wait_state(AsuState.IDLE)
        assert station.counted == [] and sim.returned == ["v"]
        assert_every_sheet_accounted(sim, station, ["v"])
