"""Logic and accuracy: the test deck, fed through a real box in test mode, gives its tally."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sim.asu import AsuSim
from station.scanning import Scanner
from station.state import Mode
from tests.station.scanning_child import FAST
from tests.support.clock import election_day
from tests.support.provisioned import REPO, Provisioned
from tests.support.station import CHAIR_CODE, StationKit
from tests.support.wait import wait_until as wait


@pytest.fixture(scope="module")
def deck(provisioned: Provisioned, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`shailoo ballot test-deck` for the first station, as the commission runs it."""
    bundle = provisioned.bundle(provisioned.definition.stations[0].number)
    out = tmp_path_factory.mktemp("deck")
    done = subprocess.run(
        [sys.executable, "-m", "shailoo", "ballot", "test-deck", "--bundle", str(bundle),
         "--out", str(out), "--scanned"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def test_test_deck_on_a_box_in_test_mode_gives_exactly_the_expected_tally(
    provisioned: Provisioned, deck: Path, tmp_path: Path
) -> None:
    kit = StationKit(provisioned, provisioned.definition.stations[0].number)
    clock = election_day(provisioned.definition.date, 7, 0)
    app = kit.start(tmp_path / "data", clock, mode=Mode.TEST)
    app.open_polls("operator")
    expected = json.loads((deck / "expected.json").read_text())["tally"]
    sheets = sorted(deck.glob("sheet-*.png"))
    with AsuSim(tmp_path / "ttyASU", serial_number="ASU-LA") as sim:
        scanner = Scanner(app, sim.device_path, settings=FAST)
        scanner.start()
        try:
            for path in sheets:
                sim.feed(path.read_bytes(), path.name)
            wait(lambda: len(sim.dropped) + len(sim.returned) == len(sheets), timeout=120)
            # what the box gave back (blank, overvote, faint) the voter casts as it is
            for name in list(sim.returned):
                scanner.cast_as_is()
                sim.feed((deck / name).read_bytes(), name)
                wait(lambda n=name: n in sim.dropped)
            dropped = sim.dropped
        finally:
            scanner.stop()
    assert sorted(dropped) == [p.name for p in sheets]
    tallies = app.box.tallies()
    for contest_id, want in expected.items():
        got = tallies[contest_id]
        assert got.ballots == want["sheets"]
        assert {k: v for k, v in got.votes.items() if v} == want["options"]
        assert {k: v for k, v in got.preferences.items() if v} == want["candidates"]
        for reason in ("blank", "overvote", "marginal"):
            assert got.invalid_by_reason.get(reason, 0) == want[reason], reason
    assert app.box.consistency_problems() == []
    app.leave_test_mode("chair", CHAIR_CODE)
    assert app.box.sheets() == 0  # test data never reaches the live count
    app.close()


def test_live_box_refuses_every_test_deck_sheet(
    provisioned: Provisioned, deck: Path, tmp_path: Path
) -> None:
    kit = StationKit(provisioned, provisioned.definition.stations[0].number)
    app = kit.start(tmp_path / "data", election_day(provisioned.definition.date, 8, 0))
    app.open_polls("chair")
    with AsuSim(tmp_path / "ttyASU") as sim:
        scanner = Scanner(app, sim.device_path, settings=FAST)
        scanner.start()
        try:
            sheet = sorted(deck.glob("sheet-*.png"))[0]
            sim.feed(sheet.read_bytes(), sheet.name)
            wait(lambda: sim.returned == [sheet.name])
            assert sim.dropped == []
        finally:
            scanner.stop()
    assert app.box.sheets() == 0 and app.box.returns() == {"test_sheet_in_live": 1}
    app.close()
