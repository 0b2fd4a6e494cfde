"""A spare device takes over a failed appliance's storage mid-day and continues its chain.

The storage (the station's SQLite database) moves into the spare, as Brazil moves a failed
urna's flash cards into the contingency urna; the spare has its own CEC-certified key.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from crypto import certs
from crypto.envelope import Envelope, verify_signed_by_certificate
from election import bundle as B
from provisioning.spare import Spare, make_spare
from shailoo.cli import main
from station.appliance import DB_FILE, Appliance, ApplianceError
from station.facecheck import FaceCheck
from station.identify import Lookup
from station.outbox import Outbox
from station.state import State
from tests.support.clock import FakeClock, election_day
from tests.support.provisioned import NOW, Provisioned
from tests.support.spare import vote
from tests.support.station import CHAIR_CODE, StationKit


@dataclass(frozen=True)
class Spares:
    first: Spare  # for the kit's station
    second: Spare  # another spare for the kit's station
    stranger: Spare  # for another station


@pytest.fixture(scope="module")
def spares(
    provisioned: Provisioned, kit: StationKit, tmp_path_factory: pytest.TempPathFactory
) -> Spares:
    out = tmp_path_factory.mktemp("spares")
    other = next(s.number for s in provisioned.definition.stations if s.number != kit.number)

    def make(number: int) -> Spare:
        return make_spare(provisioned.out_dir, provisioned.root, number, now=NOW,
                          out_dir=out, secrets_file=out / "passphrases.csv")  # fmt: skip

    return Spares(make(kit.number), make(kit.number), make(other))


def take_over(
    kit: StationKit, data: Path, spare: Spare, clock: FakeClock, **kw: object
) -> Appliance:
    args: dict[str, object] = {
        "root_cert": kit.p.root.cert,
        "passphrase": spare.passphrase,
        "chair_code": CHAIR_CODE,
        "matcher": FaceCheck().check,
        "clock": clock,
        "index_dir": kit.p.index_dir,
    }
    args.update(kw)
    return Appliance.take_over(data, spare.bundle_dir, **args)  # type: ignore[arg-type]


def failed_midday(kit: StationKit, tmp: Path) -> tuple[Path, FakeClock, list[Envelope]]:
    """The build's device opens, two voters vote, a turnout is signed; then it fails and its
    storage is moved into the spare (another directory): what the spare finds."""
    clock = election_day(kit.p.definition.date, 7, 30)
    app = kit.start(tmp / "failed", clock)
    clock.set(8)
    app.open_polls("chair")
    clock.set(9, 40)
    vote(app, kit, 0)
    vote(app, kit, 1)
    app.turnout_snapshot()
    signed = app.signer.messages()
    app.close()  # the appliance dies
    os.rename(tmp / "failed", tmp / "moved")  # its storage goes into the spare
    clock.set(10, 15)
    return tmp / "moved", clock, signed


def dump(data: Path) -> list[str]:
    """Everything the station's database holds, as SQL."""
    conn = sqlite3.connect(data / DB_FILE)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_the_spare_continues_the_stations_chain_with_its_own_key(
    kit: StationKit, spares: Spares, tmp_path: Path
) -> None:
    data, clock, before = failed_midday(kit, tmp_path)
    old_device = before[0].device
    app = take_over(kit, data, spares.first, clock)
    try:
        assert app.bundle.device_id == app.store.meta("device_id") == spares.first.device_id
        assert app.replaced_devices() == [old_device]
        # the spare's first message says the device changed, and chains to the failed one's last
        first = app.signer.messages()[len(before)]
        assert (first.kind, first.seq, first.prev) == ("heartbeat", before[-1].seq + 1,
                                                       before[-1].hash)  # fmt: skip
        assert first.device == spares.first.device_id
        assert first.body["device_change"] == {"from_device": old_device,
                                               "last_seq": before[-1].seq}  # fmt: skip
        assert first.body["state"] == "open" and first.body["voted"] == 2
        # the handover is in the event log, chained
        names = [e["name"] for e in app.log.entries()]
        assert names[-2:] == ["device_taken_over", "app_started"]
        handover = app.log.entries()[-2]
        assert handover["actor"] == "chair" and handover["detail"] == {
            "from_device": old_device, "to_device": spares.first.device_id,
            "last_seq": before[-1].seq, "state": "open",
        }  # fmt: skip
        assert app.log.first_break() is None
        # one voter, one vote: the marks came with the storage
        voted = kit.enrolled()[0]
        assert app.desk.card_read(voted.card).outcome is Lookup.ALREADY_VOTED
        app.desk.clear()
        clock.set(11)
        vote(app, kit, 2)
        clock.set(20, 0)
        final = app.close_polls("chair", CHAIR_CODE)
        assert final.body["voted"] == 3 and final.device == spares.first.device_id
        # every message before the takeover is the failed device's, unchanged; every one
        # after it the spare's; one chain; each verifies with its own device's certificate
        signed = app.signer.messages()
        assert [m.to_bytes() for m in signed[: len(before)]] == [m.to_bytes() for m in before]
        assert all(m.device == old_device for m in signed[: len(before)])
        assert all(m.device == spares.first.device_id for m in signed[len(before) :])
        assert [m.seq for m in signed] == list(range(len(signed)))
        assert all(b.prev == a.hash for a, b in zip(signed, signed[1:], strict=False))
        old_cert = certs.cert_from_pem((kit.bundle / B.SIGNING_CERT_FILE).read_bytes())
        new_cert = certs.cert_from_pem(spares.first.cert_path.read_bytes())
        for m in signed:
            cert = old_cert if m.device == old_device else new_cert
            verify_signed_by_certificate(m, cert, kit.p.root.cert, clock())
        # the failed device's unacknowledged messages wait in the outbox as they were signed
        pending = Outbox(app.store, clock).pending()
        assert [p.body for p in pending][: len(before)] == [m.to_bytes() for m in before]
    finally:
        app.close()
    # the spare starts again as itself; the failed device never starts on this storage again
    again = Appliance.start(data, spares.first.bundle_dir, root_cert=kit.p.root.cert,
                            passphrase=spares.first.passphrase, matcher=FaceCheck().check,
                            clock=clock, index_dir=kit.p.index_dir)  # fmt: skip
    assert again.state is State.CLOSED and len(again.signer.messages()) == len(signed)
    again.close()
    with pytest.raises(ApplianceError, match=f"device {old_device} was replaced"):
        kit.start(data, clock)


def test_a_second_spare_can_take_over_but_a_replaced_device_never_comes_back(
    kit: StationKit, spares: Spares, tmp_path: Path
) -> None:
    data, clock, before = failed_midday(kit, tmp_path)
    take_over(kit, data, spares.first, clock).close()
    clock.set(12)
    app = take_over(kit, data, spares.second, clock)
    assert app.replaced_devices() == [before[0].device, spares.first.device_id]
    assert app.signer.messages()[-1].body["device_change"]["from_device"] == spares.first.device_id
    app.close()
    state = dump(data)
    with pytest.raises(ApplianceError, match="was replaced on this station before"):
        take_over(kit, data, spares.first, clock)
    assert dump(data) == state


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("another station's spare", "this spare is for station"),
        ("another election's storage", "another election"),
        ("the wrong chair's code", "the chair's code is wrong"),
        ("the device that holds the storage", "already holds this storage"),
        ("the spare's passphrase mistyped", "passphrase is wrong"),
    ],
)
def test_a_takeover_is_refused_with_a_reason_and_changes_nothing(
    kit: StationKit, spares: Spares, tmp_path: Path, case: str, match: str
) -> None:
    data, clock, _ = failed_midday(kit, tmp_path)
    spare, kw = spares.first, {}
    if case == "another station's spare":
        spare = spares.stranger
    elif case == "another election's storage":
        with sqlite3.connect(data / DB_FILE) as conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'election_hash'", ("ab" * 32,))
        conn.close()
    elif case == "the wrong chair's code":
        kw["chair_code"] = "0000"
    elif case == "the spare's passphrase mistyped":
        kw["passphrase"] = spares.second.passphrase
    state = dump(data)
    with pytest.raises(ApplianceError, match=match):
        if case == "the device that holds the storage":
            Appliance.take_over(data, kit.bundle, root_cert=kit.p.root.cert,
                                passphrase=kit.passphrase, chair_code=CHAIR_CODE,
                                matcher=FaceCheck().check, clock=clock,
                                index_dir=kit.p.index_dir)  # fmt: skip
        else:
            take_over(kit, data, spare, clock, **kw)
    assert dump(data) == state


def test_a_spare_does_not_start_on_the_storage_without_taking_it_over(
    kit: StationKit, spares: Spares, tmp_path: Path
) -> None:
    data, clock, _ = failed_midday(kit, tmp_path)
    state = dump(data)
    with pytest.raises(ApplianceError, match="take its storage over first"):
        Appliance.start(data, spares.first.bundle_dir, root_cert=kit.p.root.cert,
                        passphrase=spares.first.passphrase, matcher=FaceCheck().check,
                        clock=clock, index_dir=kit.p.index_dir)  # fmt: skip
    assert dump(data) == state


def test_no_storage_no_takeover(kit: StationKit, spares: Spares, tmp_path: Path) -> None:
    clock = election_day(kit.p.definition.date, 10)
    with pytest.raises(ApplianceError, match="no station database"):
        take_over(kit, tmp_path / "empty", spares.first, clock)
    assert not (tmp_path / "empty" / DB_FILE).exists()


def test_take_over_from_the_console(
    kit: StationKit,
    spares: Spares,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SHAILOO_CHAIR_CODE", raising=False)
    monkeypatch.delenv("SHAILOO_DEVICE_PASSPHRASE", raising=False)
    data, clock, before = failed_midday(kit, tmp_path)
    (tmp_path / "pass").write_text(spares.first.passphrase + "\n")
    (tmp_path / "wrong-code").write_text("1357\n")
    (tmp_path / "code").write_text(CHAIR_CODE + "\n")
    args = ["station", "take-over", "--bundle", str(spares.first.bundle_dir), "--data", str(data),
            "--root", str(kit.p.cec_dir / "root-cert.pem"), "--index", str(kit.p.index_dir),
            "--passphrase-file", str(tmp_path / "pass")]  # fmt: skip
    state = dump(data)
    assert main([*args, "--chair-code-file", str(tmp_path / "wrong-code")]) == 2
    assert "chair's code is wrong" in capsys.readouterr().err
    assert main(args) == 2  # no chair's code given at all
    assert capsys.readouterr().err.strip() == (
        "error: the chair's code is needed: --chair-code-file F or $SHAILOO_CHAIR_CODE"
    )
    no_pass = args[: args.index("--passphrase-file")]
    assert main([*no_pass, "--chair-code-file", str(tmp_path / "code")]) == 2
    assert "the device passphrase is needed" in capsys.readouterr().err
    assert main([*args, "--root", str(tmp_path / "nowhere.pem")]) == 2
    assert "cannot read the CEC root certificate" in capsys.readouterr().err
    assert dump(data) == state
    assert main([*args, "--chair-code-file", str(tmp_path / "code")]) == 0
    out = capsys.readouterr().out
    assert (
        f"device {spares.first.device_id} took over the storage of device {before[0].device}" in out
    )
    assert f"first message is seq {before[-1].seq + 1}" in out
