"""A station's chain signed by two devices: the build's, until it failed mid-day, and the spare
the CEC authorised, which took over its storage and continued the chain.  The record verifies
only with both devices authorised for the station."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from central import evidence, results
from central.db import Database
from central.devices import authorise_device
from central.record import export_record
from crypto.envelope import Envelope
from provisioning.spare import Spare
from tests.support.clock import election_day
from tests.support.provisioned import Provisioned
from tests.support.spare import move_and_take_over, spare_for, vote
from tests.support.station import CHAIR_CODE, StationKit
from verifier.cli import verify_directory

AT = dt.datetime(2026, 11, 29, 16, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def kit(provisioned: Provisioned) -> StationKit:
    return StationKit(provisioned, provisioned.definition.stations[0].number)


@pytest.fixture(scope="module")
def day(kit: StationKit, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Envelope], Spare]:
    """The station's whole day: opened and two voters on the build's device, the rest on a
    spare; every message it signed, and the spare's device id."""
    tmp = tmp_path_factory.mktemp("two-devices")
    spare = spare_for(kit.p, kit.number, tmp / "spares")
    clock = election_day(kit.p.definition.date, 7, 30)
    app = kit.start(tmp / "station", clock)
    clock.set(8)
    app.open_polls("chair")
    clock.set(9, 15)
    vote(app, kit, 0)
    vote(app, kit, 1)
    app.turnout_snapshot()
    app.close()
    clock.set(10, 30)
    _, app = move_and_take_over(kit, tmp / "station", spare, clock)
    try:
        clock.set(13)
        vote(app, kit, 2)
        app.turnout_snapshot()
        clock.set(20, 3)
        app.close_polls("chair", CHAIR_CODE)
        return app.signer.messages(), spare
    finally:
        app.close()


def record(
    db: Database, kit: StationKit, spare: Spare | None, envs: list[Envelope], out: Path
) -> Path:
    """The CEC's record of the day: every message stored, the spare authorised (or not)."""
    central = kit.p.central_kit()
    evidence.load_stations(db, central.definition)
    decisions = evidence.accept_batch(db, central.definition, [(e, e.to_bytes(), AT) for e in envs])
    assert {d.status for d in decisions} == {"accepted"}
    if spare is not None:
        authorise_device(db, central, spare.cert_path.read_bytes(), by="engineer", at=AT)
    pub = results.publish(db, central.definition, at=AT)
    assert not pub.problems, pub.problems
    export_record(db, central, out, at=AT + dt.timedelta(minutes=5))
    return out


def test_a_chain_signed_by_two_authorised_devices_verifies(
    db: Database, kit: StationKit, day: tuple[list[Envelope], Spare], tmp_path: Path
) -> None:
    envs, spare = day
    devices = [m.device for m in envs]
    first_spare = devices.index(spare.device_id)
    assert set(devices[:first_spare]) == {spare.replaces}
    assert set(devices[first_spare:]) == {spare.device_id}
    assert envs[first_spare].body["device_change"]["from_device"] == spare.replaces
    out = record(db, kit, spare, envs, tmp_path / "record")
    listed = json.loads((out / "devices.json").read_text())["devices"]
    station = kit.p.definition.station_by_number(kit.number).id
    assert {d["device_id"] for d in listed if d["station_id"] == station} == set(devices)
    report = verify_directory(out, str(out), root=kit.p.root.cert)
    assert report.errors == [] and report.ok
    assert report.comparison is not None and report.comparison.identical
    assert report.checked.devices_ok == report.checked.devices == len(kit.p.definition.stations) + 1
    chain = report.checked.chains[station]
    assert chain.complete and chain.verified == chain.messages == len(envs)
    # the station's counts come from the spare's final reports: all three voters
    doc = json.loads((out / "results.json").read_text())
    (row,) = [u for u in doc["turnout"]["station"] if u["id"] == station]
    assert row["voted"] == 3


def test_without_the_spare_authorised_its_messages_count_for_nothing(
    db: Database, kit: StationKit, day: tuple[list[Envelope], Spare], tmp_path: Path
) -> None:
    envs, spare = day
    first_spare = [m.device for m in envs].index(spare.device_id)
    out = record(db, kit, None, envs, tmp_path / "record")
    report = verify_directory(out, str(out), root=kit.p.root.cert)
    assert not report.ok
    station = kit.p.definition.station_by_number(kit.number).id
    (finding,) = [f for f in report.errors if f.area == "messages"]
    assert finding.subject == f"station {station}"
    assert f"seq {first_spare}-{len(envs) - 1}" in finding.message
    assert f"device {spare.device_id} is not an authorised device of station" in finding.message
    assert report.checked.chains[station].verified == first_spare
