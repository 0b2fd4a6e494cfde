"""A station killed between marking a voter and issuing the ballot loses and doubles nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from station.appliance import ApplianceError
from station.identify import DeskError, Lookup
from station.reports import identification_counts
from station.state import State
from tests.support.clock import election_day
from tests.support.provisioned import Provisioned
from tests.support.station import CHAIR_CODE, StationKit

REPO = Path(__file__).resolve().parents[2]


def kill_after_marking(kit: StationKit, data: Path, voter_index: int = 0) -> str:
    """Run a real station process that marks a voter; kill -9 it; return the voter's PIN."""
    voter = kit.enrolled()[voter_index]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.station.marking_child", str(data), str(kit.bundle),
         str(kit.p.cec_dir / "root-cert.pem"), str(kit.p.index_dir), kit.passphrase,
         str(kit.probes[voter.person][0]), voter.pin,  # type: ignore[index]
         kit.p.definition.date.isoformat(), CHAIR_CODE],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "MATCH"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return voter.pin


def test_voter_marked_before_kill_is_shown_to_the_commission_after_restart(
    kit: StationKit, tmp_path: Path
) -> None:
    pin = kill_after_marking(kit, tmp_path / "data")
    clock = election_day(kit.p.definition.date, 9, 5)
    app = kit.start(tmp_path / "data", clock)
    assert app.state is State.OPEN
    pending = app.desk.pending()
    assert [p for p, _, _ in pending] == [pin]
    assert pending[0][2] == "09:00"
    assert [e["name"] for e in app.log.entries()][-1] == "recovered_after_restart"
    voter = next(v for v in kit.voters if v.pin == pin)
    assert app.desk.card_read(voter.card).outcome is Lookup.ALREADY_VOTED
    app.desk.confirm_pending(pin, "chair")
    assert app.desk.pending() == []
    counts = identification_counts(app.store)
    assert (counts["voted"], counts["identified_by_face"], counts["awaiting_confirmation"]) == (
        1, 1, 0)  # fmt: skip
    app.close()


def test_commission_can_cancel_a_mark_and_the_voter_is_identified_again(
    kit: StationKit, tmp_path: Path
) -> None:
    pin = kill_after_marking(kit, tmp_path / "data")
    clock = election_day(kit.p.definition.date, 9, 5)
    app = kit.start(tmp_path / "data", clock)
    with pytest.raises(DeskError):
        app.desk.cancel_pending(pin, "1111", "chair")
    app.desk.cancel_pending(pin, CHAIR_CODE, "chair")
    counts = identification_counts(app.store)
    assert (counts["voted"], counts["cancelled"]) == (0, 1)
    voter = next(v for v in kit.voters if v.pin == pin)
    assert app.desk.card_read(voter.card).outcome is Lookup.REGISTERED_HERE
    app.desk.face_attempt(kit.frame(voter.person))  # type: ignore[arg-type]
    app.desk.ballot_issued()
    counts = identification_counts(app.store)
    assert (counts["voted"], counts["cancelled"]) == (1, 0)
    app.close()


def test_polls_cannot_close_while_a_mark_is_unresolved(kit: StationKit, tmp_path: Path) -> None:
    kill_after_marking(kit, tmp_path / "data")
    clock = election_day(kit.p.definition.date, 20, 1)
    app = kit.start(tmp_path / "data", clock)
    with pytest.raises(Exception, match="not yet confirmed"):
        app.close_polls("chair", CHAIR_CODE)
    app.close()


def test_database_of_another_station_is_refused(
    kit: StationKit, provisioned: Provisioned, tmp_path: Path
) -> None:
    clock = election_day(kit.p.definition.date)
    kit.start(tmp_path / "data", clock).close()
    other = StationKit(provisioned, provisioned.definition.stations[1].number)
    with pytest.raises(ApplianceError, match="belongs to another"):
        other.start(tmp_path / "data", clock)


def test_wrong_device_passphrase_is_refused(kit: StationKit, tmp_path: Path) -> None:
    from station.appliance import Appliance
    from station.facecheck import FaceCheck

    with pytest.raises(ApplianceError, match="passphrase"):
        Appliance.start(
            tmp_path / "data",
            kit.bundle,
            root_cert=kit.p.root.cert,
            passphrase="WRONG",
            matcher=FaceCheck().check,
            clock=election_day(kit.p.definition.date),
            chair_code=CHAIR_CODE,
            index_dir=kit.p.index_dir,
        )
    assert not (tmp_path / "data").exists()  # fmt: skip
