"""A station whose appliance fails mid-day and whose storage a spare device takes over."""

from __future__ import annotations

import os
from pathlib import Path

from provisioning.spare import Spare, make_spare
from station.appliance import Appliance
from station.facecheck import FaceCheck
from tests.support.clock import FakeClock
from tests.support.provisioned import NOW, Provisioned
from tests.support.station import CHAIR_CODE, StationKit


def spare_for(p: Provisioned, number: int, out: Path) -> Spare:
    """A spare device of station `number` (keys under the session's root), written to `out`."""
    return make_spare(p.out_dir, p.root, number, now=NOW, out_dir=out,
                      secrets_file=out / "spare-passphrases.csv")  # fmt: skip


def vote(app: Appliance, kit: StationKit, i: int) -> None:
    """The i-th enrolled voter is identified by face and gets the ballot."""
    voter = kit.enrolled()[i]
    app.desk.card_read(voter.card)
    assert app.desk.face_attempt(kit.frame(voter.person)).status == "match"  # type: ignore[arg-type]
    app.desk.ballot_issued()


def move_and_take_over(
    kit: StationKit, failed: Path, spare: Spare, clock: FakeClock
) -> tuple[Path, Appliance]:
    """The failed appliance's storage moves into the spare, which takes it over."""
    moved = failed.with_name(f"{failed.name}-in-{spare.device_id}")
    os.rename(failed, moved)
    app = Appliance.take_over(
        moved,
        spare.bundle_dir,
        root_cert=kit.p.root.cert,
        passphrase=spare.passphrase,
        chair_code=CHAIR_CODE,
        matcher=FaceCheck().check,
        clock=clock,
        index_dir=kit.p.index_dir,
    )
    return moved, app
