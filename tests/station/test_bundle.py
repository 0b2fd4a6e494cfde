"""A station accepts a bundle only if the CEC root it trusts signed every byte of it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import shutil
from pathlib import Path

import pytest

from crypto import certs, envelope
from election import bundle as B
from provisioning.keyceremony import create_root
from station.bundle import BundleError, verify_bundle
from tests.support.provisioned import NOW, Provisioned, provision

AT = NOW + dt.timedelta(days=7)


def copy_bundle(p: Provisioned, number: int, dest: Path) -> tuple[Path, Path]:
    """A private copy of one bundle and the national index, laid out as the build does."""
    bundle = dest / "bundles" / str(number)
    shutil.copytree(p.bundle(number), bundle)
    shutil.copytree(p.index_dir, dest / "national-index")
    return bundle, dest / "national-index"


def first_station(p: Provisioned) -> int:
    return p.definition.stations[0].number


def test_every_built_bundle_verifies(provisioned: Provisioned) -> None:
    for station in provisioned.definition.stations:
        vb = verify_bundle(
            provisioned.bundle(station.number),
            root_cert=provisioned.root.cert,
            at=AT,
            expected_election_hash=provisioned.definition.election_hash,
        )
        assert vb.station == station
        assert vb.definition.election_hash == provisioned.definition.election_hash


def test_bundle_slice_holds_only_its_station_voters(provisioned: Provisioned) -> None:
    total = 0
    for station in provisioned.definition.stations:
        lines = (provisioned.bundle(station.number) / B.ROLL_FILE).read_text().splitlines()
        voters = [json.loads(x) for x in lines]
        assert {v["station"] for v in voters} <= {station.id}
        total += len(voters)
    assert total == provisioned.summary.voters > 0


def test_national_index_tells_a_voter_where_to_go(provisioned: Provisioned) -> None:
    a, b = provisioned.definition.stations[:2]
    vb = verify_bundle(provisioned.bundle(a.number), root_cert=provisioned.root.cert, at=AT)
    index = vb.open_index(provisioned.passphrases()[a.number])
    other = json.loads((provisioned.bundle(b.number) / B.ROLL_FILE).read_text().splitlines()[0])
    assert index.station_of(other["pin"]) == b.id
    assert index.station_of("10101199900000") is None


@pytest.mark.parametrize("seed", range(3))
def test_any_changed_byte_in_any_file_is_refused(
    provisioned: Provisioned, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    number = first_station(provisioned)
    files = sorted(p for p in provisioned.bundle(number).rglob("*") if p.is_file())
    files += sorted(provisioned.index_dir.glob("*"))
    for i, original in enumerate(files):
        dest = tmp_path / f"{i}"
        bundle, index = copy_bundle(provisioned, number, dest)
        rel = (
            original.relative_to(provisioned.index_dir)
            if original.is_relative_to(provisioned.index_dir)
            else None
        )
        target = index / rel if rel else bundle / original.relative_to(provisioned.bundle(number))
        data = bytearray(target.read_bytes())
        pos = rng.randrange(len(data))
        data[pos] ^= 1 << rng.randrange(8)
        target.write_bytes(bytes(data))
        with pytest.raises(BundleError):
            verify_bundle(bundle, root_cert=provisioned.root.cert, at=AT)


def test_extra_file_is_refused(provisioned: Provisioned, tmp_path: Path) -> None:
    bundle, _ = copy_bundle(provisioned, first_station(provisioned), tmp_path)
    (bundle / "device" / "backdoor.py").write_text("print('hi')\n")
    with pytest.raises(BundleError, match="not in its signed manifest"):
        verify_bundle(bundle, root_cert=provisioned.root.cert, at=AT)


def test_missing_file_is_refused(provisioned: Provisioned, tmp_path: Path) -> None:
    bundle, _ = copy_bundle(provisioned, first_station(provisioned), tmp_path)
    (bundle / B.TEMPLATES_FILE).unlink()
    with pytest.raises(BundleError, match="missing"):
        verify_bundle(bundle, root_cert=provisioned.root.cert, at=AT)


def test_bundle_signed_by_another_root_is_refused(provisioned: Provisioned, tmp_path: Path) -> None:
    other = create_root(tmp_path / "other-cec", "another root passphrase", now=NOW)
    with pytest.raises(BundleError, match="another root"):
        verify_bundle(provisioned.bundle(first_station(provisioned)), root_cert=other.cert, at=AT)


def test_bundle_for_another_election_is_refused(
    provisioned: Provisioned, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = provision(
        tmp_path_factory.mktemp("other"), stations=2, voters=5, seed=99, kind="presidential"
    )
    with pytest.raises(BundleError, match="not the election this device is set up for"):
        verify_bundle(
            other.bundle(other.definition.stations[0].number),
            root_cert=other.root.cert,
            at=AT,
            expected_election_hash=provisioned.definition.election_hash,
        )


def test_swapped_national_index_is_refused(
    provisioned: Provisioned, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = provision(tmp_path_factory.mktemp("swap"), stations=2, voters=5, seed=5)
    with pytest.raises(BundleError, match="national index"):
        verify_bundle(
            provisioned.bundle(first_station(provisioned)),
            root_cert=provisioned.root.cert,
            at=AT,
            index_dir=other.index_dir,
        )


def test_missing_national_index_says_where_to_get_it(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    bundle = tmp_path / "lonely"
    shutil.copytree(provisioned.bundle(first_station(provisioned)), bundle)
    with pytest.raises(BundleError, match="copy it from the CEC media"):
        verify_bundle(bundle, root_cert=provisioned.root.cert, at=AT)


def test_expired_device_certificate_is_refused(provisioned: Provisioned) -> None:
    with pytest.raises(BundleError, match="signing-cert"):
        verify_bundle(
            provisioned.bundle(first_station(provisioned)),
            root_cert=provisioned.root.cert,
            at=AT + dt.timedelta(days=400),
        )


def test_bundle_cannot_be_moved_to_another_station(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    """Swapping in another station's certificates breaks the signed manifest."""
    a, b = (s.number for s in provisioned.definition.stations[:2])
    bundle, _ = copy_bundle(provisioned, a, tmp_path)
    for name in (B.SIGNING_CERT_FILE, B.SIGNING_KEY_FILE):
        shutil.copy(provisioned.bundle(b) / name, bundle / name)
    with pytest.raises(BundleError, match="changed"):
        verify_bundle(bundle, root_cert=provisioned.root.cert, at=AT)


def test_bundled_root_is_the_trusted_one(provisioned: Provisioned) -> None:
    bundle = provisioned.bundle(first_station(provisioned))
    bundled = certs.cert_from_pem((bundle / B.ROOT_CERT_FILE).read_bytes())
    assert certs.fingerprint(bundled) == certs.fingerprint(provisioned.root.cert)


def test_acknowledgement_certificate_must_be_the_cec_servers(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    """Even signed by the root, a station's own certificate cannot stand in for the CEC's."""
    number = first_station(provisioned)
    bundle, _ = copy_bundle(provisioned, number, tmp_path)
    imposter = (bundle / B.SIGNING_CERT_FILE).read_bytes()
    (bundle / B.CENTRAL_CERT_FILE).write_bytes(imposter)
    env = envelope.Envelope.from_bytes((bundle / B.MANIFEST_FILE).read_bytes())
    manifest = B.BundleManifest.model_validate(env.body)
    files = dict(manifest.files)
    files[B.CENTRAL_CERT_FILE] = B.FileEntry(
        sha256=hashlib.sha256(imposter).hexdigest(), size=len(imposter)
    )
    body = manifest.model_copy(update={"files": files}).model_dump(mode="json")
    resigned = envelope.sign_envelope(
        provisioned.root.key, kind=env.kind, election=env.election, station=env.station,
        device=env.device, seq=env.seq, prev=env.prev, time=env.time, body=body,
    )  # fmt: skip
    (bundle / B.MANIFEST_FILE).write_bytes(resigned.to_bytes())
    with pytest.raises(BundleError, match="not the CEC server's certificate"):
        verify_bundle(bundle, root_cert=provisioned.root.cert, at=AT)
