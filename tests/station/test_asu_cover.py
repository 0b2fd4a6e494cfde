"""The cover opened while a sheet is in the box: nothing moves; the sheet goes back after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_sim.asu import AsuSim
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


def test_cover_opened_while_deciding_blocks_the_drop_and_returns_the_sheet(
    tmp_path: Path,
) -> None:
    with rig(tmp_path) as (sim, _drv, station):
        holder: dict[str, AsuSim] = {"sim": sim}

        def open_cover_then_accept(truth: object) -> Decision | None:
            holder["sim"].open_cover()  # the commission opens it while the sheet is read
            station.policy = lambda t: None
            return None

        station.policy = open_cover_then_accept
        sim.feed(station.sheet(1, "v"), "v")
        assert station.wait_for(SensorAlert).kind == "cover_open"
        station.wait_state(AsuState.COVER_OPEN)
        assert sim.in_path == ["v"] and sim.dropped == []  # the ACCEPT was refused
        sim.close_cover()
        station.wait_for(DropNotHappened)
        assert station.wait_for(SheetReturned) == SheetReturned(1, "cover opened")
        station.wait_state(AsuState.IDLE)
        sim.feed(station.sheet(1, "v"), "v")
        station.wait_for(SheetCounted)
        assert_every_sheet_accounted(sim, station, ["v", "v"])


def test_cover_open_when_idle_pauses_and_closing_resumes(tmp_path: Path) -> None:
    with rig(tmp_path) as (sim, _drv, station):
        sim.open_cover()
        station.wait_state(AsuState.COVER_OPEN)
        sim.feed(station.sheet(1, "v"), "v")
        assert sim.waiting == ["v"]  # the box takes nothing with the cover open
        sim.close_cover()
        station.wait_for(SheetCounted)
        kinds = [a.kind for a in station.of(SensorAlert)]
        assert kinds == ["cover_open", "cover_closed"]
        assert_every_sheet_accounted(sim, station, ["v"])
