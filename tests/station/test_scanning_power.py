"""The whole station (appliance and ballot box) loses power in the middle of accepting a sheet,
and boots again from its database: the held sheet is counted once if the box's drop counter
shows it fell, else given back once (and counted once when the voter feeds it again)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_sim.asu import AsuSim, PowerCutPoint
from station.scanning import Scanner
from tests.station.scanning_child import FAST
from tests.station.test_scanning_kill9 import marked_sheet
from tests.support.clock import election_day
from tests.support.station import StationKit
from tests.support.wait import wait_until as wait


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[AsuSim]:
    with AsuSim(tmp_path / "ttyASU", serial_number="ASU-POWER") as s:
        yield s


@pytest.mark.parametrize(("point", "falls"), [("after_accept", False), ("after_drop", True)])
def test_power_cut_mid_sheet_resolves_the_held_sheet_once_at_boot(
    kit: StationKit, sim: AsuSim, tmp_path: Path, point: PowerCutPoint, falls: bool
) -> None:
    data = tmp_path / "data"
    date = kit.p.definition.date
    app = kit.start(data, election_day(date, 8, 0))
    app.open_polls("chair")
    scanner = Scanner(app, sim.link_path, settings=FAST)
    scanner.start()
    try:
        wait(lambda: sim.feeding_enabled)
        sim.power_cut(at=point, restart=False)  # the whole station: the box stays off
        image, option = marked_sheet(kit, 1)
        sim.feed(image, option)
        wait(lambda: sim.power_cycles == 1 and len(app.box.pending()) == 1)
    finally:
        scanner.stop()
        app.close()  # ... and the appliance goes with it, the sheet held, not counted

    app = kit.start(data, election_day(date, 8, 20))  # the real boot path
    scanner = Scanner(app, sim.link_path, settings=FAST)
    scanner.start()
    try:
        sim.power_on()
        wait(lambda: not app.box.pending() and not sim.in_path and sim.feeding_enabled)
        assert app.box.sheets() == len(sim.dropped) == int(falls)
        assert sim.returned == ([] if falls else [option])
        # one sheet given back is one return in the count, not one per step of resolving it
        assert sum(app.box.returns().values()) == len(sim.returned)
        if not falls:  # the voter feeds it again: counted once
            sim.feed(image, option)
            wait(lambda: app.box.sheets() == 1 and not app.box.pending())
        contest = next(c for c in app.box.contests if c.kind.value == "party_list")
        assert app.box.tallies()[contest.id].votes[option] == 1
        assert sim.dropped == [option]
        assert sum(app.box.returns().values()) == len(sim.returned) == int(not falls)
        resolved = [e for e in app.log.entries() if e["name"] == "asu_pending_resolved"]
        assert len(resolved) == 1
    finally:
        scanner.stop()
        app.close()
