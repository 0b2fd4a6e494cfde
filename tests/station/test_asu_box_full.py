"""A full box: the sheet waiting is given back; feeding resumes once the container is emptied."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from station.asu import (
    AsuState,
    Decision,
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


def test_box_full_during_a_sheet_returns_it_and_waits_for_an_empty_box(tmp_path: Path) -> None:
    with rig(tmp_path) as (sim, _drv, station):
        sim.feed(station.sheet(1, "first"), "first")
        station.wait_for(SheetCounted)

        def fill_then_accept(truth: object) -> Decision | None:
            sim.box_full()
            station.policy = lambda t: None
            return None

        station.policy = fill_then_accept
        sim.feed(station.sheet(2, "second"), "second")
        assert station.wait_for(SensorAlert).kind == "box_full"
        station.wait_for(DropNotHappened)
        assert station.wait_for(SheetReturned) == SheetReturned(2, "box full")
        station.wait_state(AsuState.BOX_FULL)
        sim.feed(station.sheet(2, "second"), "second")
        assert sim.waiting == ["second"]
        sim.empty_box()
        station.wait_for(SheetCounted)
        assert sim.dropped == ["first", "second"] == station.counted
        assert_every_sheet_accounted(sim, station, ["first", "second", "second"])
