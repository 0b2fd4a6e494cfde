"""kill -9 of the station at every step of accepting a sheet: counted once, or returned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from election.ballot_layout import BallotLayouts
from firmware_sim.asu import AsuSim
from provisioning.ballots import render_png
from station.scanning import Scanner
from tests.station.scanning_child import FAST
from tests.support.clock import election_day
from tests.support.provisioned import REPO
from tests.support.station import CHAIR_CODE, StationKit
from tests.support.wait import wait_until as wait


def marked_sheet(kit: StationKit, option_index: int) -> tuple[bytes, str]:
    """A real rendered party-list sheet with one filled party box, as PNG bytes."""
    layouts = BallotLayouts.model_validate_json((kit.bundle / "ballots/layouts.json").read_bytes())
    style = next(s for s in layouts.styles if s.style_id.startswith("parliament"))
    page = render_png(layouts, style.style_id)
    if page.ndim == 3:
        page = cv2.cvtColor(page, cv2.COLOR_RGB2GRAY)
    parties = [b for b in style.contests[0].boxes if b.candidate_id is None]
    box = parties[option_index]
    r = box.rect
    cv2.rectangle(page, (r.x + r.w // 5, r.y + r.h // 5),
                  (r.x + 4 * r.w // 5, r.y + 4 * r.h // 5), 30, -1)  # fmt: skip
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(page))
    assert ok
    return buf.tobytes(), box.option_id


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[AsuSim]:
    with AsuSim(tmp_path / "ttyASU", serial_number="ASU-KILL") as s:
        yield s


def child(kit: StationKit, data: Path, link: Path, kill_at: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.station.scanning_child", str(data), str(kit.bundle),
         str(kit.p.cec_dir / "root-cert.pem"), str(kit.p.index_dir), kit.passphrase,
         kit.p.definition.date.isoformat(), CHAIR_CODE, str(link), kill_at],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    return proc


def restart_and_settle(kit: StationKit, data: Path, sim: AsuSim) -> tuple[int, int]:
    """Start the station again in this process; wait until nothing is pending."""
    app = kit.start(data, election_day(kit.p.definition.date, 9, 5))
    scanner = Scanner(app, sim.device_path, settings=FAST)
    scanner.start()
    try:
        wait(lambda: not app.box.pending() and not sim.in_path)
        return app.box.sheets(), len(sim.dropped)
    finally:
        scanner.stop()
        app.close()


@pytest.mark.parametrize("kill_at", ["after_hold", "before_count"])
def test_killed_inside_accepting_counts_the_sheet_once_or_returns_it(
    kit: StationKit, sim: AsuSim, tmp_path: Path, kill_at: str
) -> None:
    data = tmp_path / "data"
    proc = child(kit, data, sim.device_path, kill_at)
    image, option = marked_sheet(kit, 1)
    sim.feed(image, option)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    counted, fell = restart_and_settle(kit, data, sim)
    assert counted == fell  # what the station counted is exactly what is in the box
    assert counted + len(sim.returned) == 1  # the sheet is somewhere, exactly once


def test_killed_from_outside_after_accept_counts_the_sheet_once(
    kit: StationKit, sim: AsuSim, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    proc = child(kit, data, sim.device_path, "never")
    image, option = marked_sheet(kit, 2)
    sim.feed(image, option)
    wait(lambda: any(type(m).__name__ == "AcceptMsg" for m in sim.received))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    counted, fell = restart_and_settle(kit, data, sim)
    assert counted == fell and counted + len(sim.returned) == 1


def test_a_sheet_fed_normally_is_counted_with_its_mark(
    kit: StationKit, sim: AsuSim, tmp_path: Path
) -> None:
    app = kit.start(tmp_path / "data", election_day(kit.p.definition.date, 8, 0))
    app.open_polls("chair")
    scanner = Scanner(app, sim.device_path, settings=FAST)
    scanner.start()
    try:
        image, option = marked_sheet(kit, 0)
        sim.feed(image, option)
        wait(lambda: app.box.sheets() == 1)
        contest = next(c for c in app.box.contests if c.kind.value == "party_list")
        assert app.box.tallies()[contest.id].votes[option] == 1
        assert sim.dropped == [option]
    finally:
        scanner.stop()
        app.close()


def test_a_deferred_batch_is_flagged_and_counted_apart(
    kit: StationKit, sim: AsuSim, tmp_path: Path
) -> None:
    app = kit.start(tmp_path / "data", election_day(kit.p.definition.date, 8, 0))
    app.open_polls("chair")
    scanner = Scanner(app, sim.device_path, settings=FAST)
    scanner.start()
    try:
        with pytest.raises(PermissionError):
            scanner.start_deferred_batch("0000")
        scanner.start_deferred_batch(CHAIR_CODE)
        image, option = marked_sheet(kit, 3)
        sim.feed(image, option)
        wait(lambda: app.box.sheets("deferred") == 1)
        scanner.end_deferred_batch()
        image, option2 = marked_sheet(kit, 4)
        sim.feed(image, option2)
        wait(lambda: app.box.sheets() == 2)
        contest = next(c for c in app.box.contests if c.kind.value == "party_list")
        assert app.box.tallies("deferred")[contest.id].votes[option] == 1
        assert app.box.tallies("box")[contest.id].votes[option2] == 1
        names = [e["name"] for e in app.log.entries()]
        assert "deferred_batch_started" in names and "deferred_batch_ended" in names
    finally:
        scanner.stop()
        app.close()
