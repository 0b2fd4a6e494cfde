"""`provision spare`: a spare device for one station, its keys under the CEC root, its bundle."""

from __future__ import annotations

import csv
import json
import shutil
import stat
from pathlib import Path

import pytest

from crypto import certs, keys
from election import bundle as B
from provisioning.keyceremony import create_root
from provisioning.spare import Spare, SpareError, make_spare
from shailoo.cli import main
from station.bundle import verify_bundle
from tests.support.provisioned import NOW, PASSPHRASE, Provisioned


def _spare(
    p: Provisioned, tmp: Path, number: int | None = None, device_id: str | None = None
) -> Spare:
    return make_spare(
        p.out_dir,
        p.root,
        number or p.definition.stations[0].number,
        now=NOW,
        out_dir=tmp / "spares",
        secrets_file=tmp / "secrets" / "spare-passphrases.csv",
        device_id=device_id,
    )


def test_a_spare_is_the_same_station_with_its_own_device_keys(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    number = provisioned.definition.stations[1].number
    spare = _spare(provisioned, tmp_path, number)
    own = verify_bundle(provisioned.bundle(number), root_cert=provisioned.root.cert, at=NOW,
                        index_dir=provisioned.index_dir)  # fmt: skip
    got = verify_bundle(spare.bundle_dir, root_cert=provisioned.root.cert, at=NOW,
                        index_dir=provisioned.index_dir)  # fmt: skip
    assert (got.station, got.definition) == (own.station, own.definition)
    assert got.device_id == spare.device_id != own.device_id == spare.replaces
    assert spare.device_id.startswith(f"spare-{own.station.id}-")
    # the station's files, byte for byte; the device's files its own
    for name in (B.ELECTION_FILE, B.ROLL_FILE, B.TEMPLATES_FILE, B.LAYOUTS_FILE, B.BROKER_FILE,
                 B.ROOT_CERT_FILE, B.CENTRAL_CERT_FILE):  # fmt: skip
        assert got.file(name).read_bytes() == own.file(name).read_bytes(), name
    for name in (B.SIGNING_KEY_FILE, B.SIGNING_CERT_FILE, B.TLS_KEY_FILE, B.TLS_CERT_FILE):
        assert got.file(name).read_bytes() != own.file(name).read_bytes(), name
        if name.endswith("key.pem"):
            assert stat.S_IMODE(got.file(name).stat().st_mode) == 0o600
    assert (got.manifest.voters, got.manifest.enrolled, got.manifest.national_index) == (
        own.manifest.voters, own.manifest.enrolled, own.manifest.national_index,
    )  # fmt: skip
    # both certificates bound to the same station and election, the spare's device
    for name, purpose in ((B.SIGNING_CERT_FILE, "signing"), (B.TLS_CERT_FILE, "tls")):
        cert = certs.cert_from_pem(got.file(name).read_bytes())
        ident = certs.verify_device_certificate(cert, provisioned.root.cert, at=NOW,
                                                purpose=purpose)  # type: ignore[arg-type]  # fmt: skip
        assert (ident.station_id, ident.device_id, ident.election_hash) == (
            own.station.id, spare.device_id, own.definition.election_hash,
        )  # fmt: skip
    assert spare.cert_path.read_bytes() == got.file(B.SIGNING_CERT_FILE).read_bytes()
    # its keys and the national index key open with its own passphrase only
    rows = list(csv.DictReader(spare.passphrases_file.open()))
    assert rows == [{"station": str(number), "device_id": spare.device_id,
                     "passphrase": spare.passphrase}]  # fmt: skip
    assert stat.S_IMODE(spare.passphrases_file.stat().st_mode) == 0o600
    key = keys.load_private_key(got.file(B.SIGNING_KEY_FILE).read_bytes(), spare.passphrase)
    assert keys.key_id(key.public_key()) == keys.key_id(  # type: ignore[arg-type]
        certs.cert_from_pem(spare.cert_path.read_bytes()).public_key()  # type: ignore[arg-type]
    )
    with pytest.raises(keys.KeyDecryptError):
        keys.load_private_key(got.file(B.SIGNING_KEY_FILE).read_bytes(),
                              provisioned.passphrases()[number])  # fmt: skip
    pin = json.loads(got.file(B.ROLL_FILE).read_text().splitlines()[0])["pin"]
    assert got.open_index(spare.passphrase).station_of(pin) == own.station.id


def test_two_spares_of_a_station_are_two_devices(provisioned: Provisioned, tmp_path: Path) -> None:
    a = _spare(provisioned, tmp_path)
    b = _spare(provisioned, tmp_path)
    assert a.device_id != b.device_id and a.station_id == b.station_id
    rows = list(csv.DictReader(a.passphrases_file.open()))
    assert [r["device_id"] for r in rows] == [a.device_id, b.device_id]


def _listing(tmp: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))


@pytest.mark.parametrize(
    ("what", "match"),
    [
        ("no such station", "no bundle for station 9999"),
        ("the station's own device", "the station's own device"),
        ("a device id that is not an id", "not a Shailoo id"),
        ("a device id issued before", "already exists"),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(
    provisioned: Provisioned, tmp_path: Path, what: str, match: str
) -> None:
    first = provisioned.definition.stations[0]
    own_device = verify_bundle(provisioned.bundle(first.number), root_cert=provisioned.root.cert,
                               at=NOW, index_dir=provisioned.index_dir).device_id  # fmt: skip
    number: int = first.number
    device_id: str | None = None
    if what == "no such station":
        number = 9999
    elif what == "the station's own device":
        device_id = own_device
    elif what == "a device id that is not an id":
        device_id = "../escape"
    else:
        device_id = "spare-again"
        _spare(provisioned, tmp_path, number, device_id)
    before = _listing(tmp_path)
    before_csv = (tmp_path / "secrets" / "spare-passphrases.csv").read_bytes() if before else b""
    with pytest.raises(SpareError, match=match):
        _spare(provisioned, tmp_path, number, device_id)
    assert _listing(tmp_path) == before
    if before:
        assert (tmp_path / "secrets" / "spare-passphrases.csv").read_bytes() == before_csv


def test_another_root_or_a_changed_bundle_gives_no_spare(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    number = provisioned.definition.stations[0].number
    stranger = create_root(tmp_path / "other-cec", "another root passphrase", now=NOW)
    with pytest.raises(SpareError, match="not signed by this CEC root"):
        make_spare(provisioned.out_dir, stranger, number, now=NOW, out_dir=tmp_path / "s1",
                   secrets_file=tmp_path / "s1.csv")  # fmt: skip
    assert not (tmp_path / "s1").exists() and not (tmp_path / "s1.csv").exists()
    # a copy of the build whose roll slice was changed after signing
    prov = tmp_path / "prov"
    for part in ("bundles", "national-index", "secrets"):
        shutil.copytree(provisioned.out_dir / part, prov / part)
    roll = prov / "bundles" / str(number) / B.ROLL_FILE
    data = roll.read_bytes()
    roll.write_bytes(data[:-2] + bytes([data[-2] ^ 1]) + data[-1:])  # one bit of the last voter
    with pytest.raises(SpareError, match="changed since the CEC signed"):
        make_spare(prov, provisioned.root, number, now=NOW)
    assert not (prov / "spares").exists()
    assert not (prov / "secrets" / "spare-passphrases.csv").exists()


def test_the_cli_makes_a_spare_with_the_root_key(
    provisioned: Provisioned, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prov = tmp_path / "prov"
    for part in ("bundles", "national-index", "secrets"):
        shutil.copytree(provisioned.out_dir / part, prov / part)
    number = provisioned.definition.stations[-1].number
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the root passphrase\n")
    args = ["provision", "spare", "--prov", str(prov), "--station", str(number),
            "--cec", str(provisioned.cec_dir)]  # fmt: skip
    assert main([*args, "--passphrase-file", str(wrong)]) == 2
    assert "passphrase" in capsys.readouterr().err
    assert not (prov / "spares").exists()
    good = tmp_path / "pass.txt"
    good.write_text(PASSPHRASE + "\n")
    assert main([*args, "--passphrase-file", str(good), "--device-id", "spare-cli-1"]) == 0
    out = capsys.readouterr().out
    assert "spare device spare-cli-1 for station" in out and "authorise-device --cert" in out
    bundle = prov / "spares" / "spare-cli-1"
    # beside the build's bundles: the national index is found where it is for them
    assert main(["station", "verify-bundle", str(bundle), "--root",
                 str(provisioned.cec_dir / "root-cert.pem")]) == 0  # fmt: skip
    assert "device spare-cli-1" in capsys.readouterr().out
    assert (prov / "spares" / "spare-cli-1-signing-cert.pem").is_file()
    rows = (prov / "secrets" / "spare-passphrases.csv").read_text().splitlines()
    assert rows[0] == "station,device_id,passphrase"
    assert rows[1].startswith(f"{number},spare-cli-1,")
