"""The server room's commands: each refuses bad input with one line and exit 2."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from central.db import open_database
from provisioning.keyceremony import issue_device
from shailoo.cli import main
from tests.support.provisioned import NOW, Provisioned


def kit_args(p: Provisioned, tmp: Path, db: Path) -> list[str]:
    secret = tmp / "pass"
    secret.write_text(p.central_passphrase() + "\n")
    return [
        "--kit",
        str(p.central_dir),
        "--passphrase-file",
        str(secret),
        "--db",
        f"sqlite:///{db}",
    ]


def test_a_spare_device_is_authorised_once_and_a_stranger_refused(
    provisioned: Provisioned, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station = provisioned.definition.stations[0]
    spare = issue_device(provisioned.root, station_id=station.id,
                         election_hash=provisioned.definition.election_hash, now=NOW,
                         until=NOW + dt.timedelta(days=30), device_id="spare-7")  # fmt: skip
    from crypto import certs

    pem = tmp_path / "spare.pem"
    pem.write_bytes(certs.cert_to_pem(spare.signing_cert))
    args = kit_args(provisioned, tmp_path, tmp_path / "c.sqlite")
    assert main(["central", "authorise-device", *args, "--cert", str(pem), "--by", "eng"]) == 0
    assert "spare-7 authorised for station" in capsys.readouterr().out
    assert main(["central", "authorise-device", *args, "--cert", str(pem), "--by", "eng"]) == 2
    assert "already authorised" in capsys.readouterr().err
    tls = tmp_path / "tls.pem"
    tls.write_bytes(certs.cert_to_pem(spare.tls_cert))  # a login certificate cannot sign
    assert main(["central", "authorise-device", *args, "--cert", str(tls), "--by", "eng"]) == 2
    assert "refused" in capsys.readouterr().err
    with open_database(f"sqlite:///{tmp_path / 'c.sqlite'}") as db:
        assert [r["device_id"] for r in db.query("SELECT device_id FROM devices")] == ["spare-7"]


def test_a_wrong_central_passphrase_is_refused_in_one_line(
    provisioned: Provisioned, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad").write_text("not the passphrase\n")
    code = main(["central", "export-record", "--kit", str(provisioned.central_dir),
                 "--passphrase-file", str(tmp_path / "bad"), str(tmp_path / "rec")])  # fmt: skip
    assert code == 2
    assert "central passphrase is wrong" in capsys.readouterr().err
    assert not (tmp_path / "rec").exists()


def test_export_record_writes_a_signed_manifest_of_every_file(
    provisioned: Provisioned, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = kit_args(provisioned, tmp_path, tmp_path / "c.sqlite")
    assert main(["central", "export-record", *args, str(tmp_path / "rec")]) == 0
    from crypto.envelope import Envelope, verify_signed_by_certificate

    manifest = Envelope.from_bytes((tmp_path / "rec" / "MANIFEST.json").read_bytes())
    kit = provisioned.central_kit()
    verify_signed_by_certificate(manifest, kit.ack_cert, kit.root_cert, NOW)
    assert set(manifest.body["files"]) >= {"election.json", "cec-root.pem", "devices.json"}
    assert main(["central", "export-record", *args, str(tmp_path / "rec")]) == 2
    assert "exists" in capsys.readouterr().err


def test_an_account_is_created_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHAILOO_PASSWORD", "a long enough password 42")
    db = f"sqlite:///{tmp_path / 'c.sqlite'}"
    assert main(["central", "account", "add", "aigul", "--role", "cec_engineer", "--db", db]) == 0
    with open_database(db) as d:
        row = d.one("SELECT role FROM staff_accounts WHERE username = ?", ("aigul",))
    assert row == {"role": "cec_engineer"}
    assert main(["central", "account", "add", "aigul", "--role", "cec_engineer", "--db", db]) == 2
    assert capsys.readouterr().err.startswith("error:")


def test_devices_json_lists_every_station(provisioned: Provisioned) -> None:
    rows = json.loads((provisioned.central_dir / "devices.json").read_text())["devices"]
    assert {r["station_id"] for r in rows} == {s.id for s in provisioned.definition.stations}
