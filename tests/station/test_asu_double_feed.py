"""A double feed: both sheets go back to the voter, neither is scanned or counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from station.asu import AsuState, SensorAlert, SheetCounted, SheetReturned
from tests.devices.leaks import no_leaks
from tests.station.asu_harness import assert_every_sheet_accounted, rig


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_leaks():
        yield


def test_a_double_feed_returns_both_sheets_and_the_next_ones_count(tmp_path: Path) -> None:
    with rig(tmp_path) as (sim, drv, station):
        drv.disable_feeding()  # two sheets wait at the slot together
        station.wait_state(AsuState.DISABLED)
        sim.double_feed_next()
        sim.feed(station.sheet(1, "a"), "a")
        sim.feed(station.sheet(2, "b"), "b")
        drv.enable_feeding()
        assert station.wait_for(SensorAlert).kind == "double_feed"
        assert station.wait_for(SheetReturned) == SheetReturned(1, "double feed")
        assert sorted(sim.returned) == ["a", "b"] and station.decided == []
        station.wait_state(AsuState.IDLE)
        sim.feed(station.sheet(1, "a"), "a")
        sim.feed(station.sheet(2, "b"), "b")
        station.wait_for(SheetCounted)
        station.wait_for(SheetCounted)
        assert_every_sheet_accounted(sim, station, ["a", "b", "a", "b"])
