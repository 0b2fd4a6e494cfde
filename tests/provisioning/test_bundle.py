"""`provision build`: device keys, the national index and one signed bundle per station."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest

from crypto import certs, keys
from crypto.envelope import Envelope
from election import bundle as B
from election.bundle import BrokerSettings
from provisioning.bundle import BuildError, build_bundles
from tests.support.provisioned import NOW, Provisioned


def test_one_bundle_per_station_and_one_passphrase_each(provisioned: Provisioned) -> None:
    numbers = {s.number for s in provisioned.definition.stations}
    built = {int(p.name) for p in provisioned.bundles_dir.iterdir()}
    assert built == numbers
    assert set(provisioned.passphrases()) == numbers
    assert provisioned.summary.stations == len(numbers)


def test_device_keys_open_only_with_their_passphrase(provisioned: Provisioned) -> None:
    number = provisioned.definition.stations[0].number
    bundle = provisioned.bundle(number)
    pem = (bundle / B.SIGNING_KEY_FILE).read_bytes()
    key = keys.load_private_key(pem, provisioned.passphrases()[number])
    cert = certs.cert_from_pem((bundle / B.SIGNING_CERT_FILE).read_bytes())
    assert keys.key_id(key.public_key()) == keys.key_id(cert.public_key())  # type: ignore[arg-type]
    other = provisioned.passphrases()[provisioned.definition.stations[1].number]
    with pytest.raises(keys.KeyDecryptError):
        keys.load_private_key(pem, other)


def test_private_files_are_readable_by_owner_only(provisioned: Provisioned) -> None:
    bundle = provisioned.bundle(provisioned.definition.stations[0].number)
    for name in (B.SIGNING_KEY_FILE, B.TLS_KEY_FILE, B.INDEX_KEY_FILE):
        assert stat.S_IMODE((bundle / name).stat().st_mode) == 0o600
    secrets_csv = provisioned.out_dir / "secrets" / "device-passphrases.csv"
    assert stat.S_IMODE(secrets_csv.stat().st_mode) == 0o600


def test_each_device_has_its_own_keys(provisioned: Provisioned) -> None:
    ids = set()
    for s in provisioned.definition.stations:
        cert = certs.cert_from_pem(
            (provisioned.bundle(s.number) / B.SIGNING_CERT_FILE).read_bytes()
        )
        ids.add(keys.key_id(cert.public_key()))  # type: ignore[arg-type]
    assert len(ids) == len(provisioned.definition.stations)


def test_bundle_templates_are_the_enrolled_ones_of_its_voters(provisioned: Provisioned) -> None:
    roll_meta = json.loads((provisioned.out_dir.parent / "roll" / "templates.json").read_text())
    all_templates = np.load(provisioned.out_dir.parent / "roll" / "templates.npy")
    row = {h: i for i, h in enumerate(roll_meta["hashes"])}
    for s in provisioned.definition.stations:
        bundle = provisioned.bundle(s.number)
        voters = [json.loads(x) for x in (bundle / B.ROLL_FILE).read_text().splitlines()]
        hashes = json.loads((bundle / B.TEMPLATES_META_FILE).read_text())["hashes"]
        assert set(hashes) == {v["template"] for v in voters if v["template"]}
        local = np.load(bundle / B.TEMPLATES_FILE)
        for i, h in enumerate(hashes):
            np.testing.assert_array_equal(local[i], all_templates[row[h]].astype(np.float32))


def test_manifest_counts_match_the_roll_slice(provisioned: Provisioned) -> None:
    for s in provisioned.definition.stations:
        bundle = provisioned.bundle(s.number)
        env = Envelope.from_bytes((bundle / B.MANIFEST_FILE).read_bytes())
        manifest = B.BundleManifest.model_validate(env.body)
        voters = [json.loads(x) for x in (bundle / B.ROLL_FILE).read_text().splitlines()]
        assert manifest.voters == len(voters)
        assert manifest.enrolled == sum(v["biometrics"] == "enrolled" for v in voters)
        assert manifest.national_index.entries == provisioned.summary.voters


def test_build_refuses_a_directory_that_is_not_empty(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    (tmp_path / "old.txt").write_text("earlier build")
    with pytest.raises(BuildError, match="not empty"):
        build_bundles(
            provisioned.definition,
            provisioned.out_dir.parent / "roll",
            provisioned.root,
            tmp_path,
            broker=BrokerSettings(),
            now=NOW,
        )
    assert [p.name for p in tmp_path.iterdir()] == ["old.txt"]


def test_build_without_a_validated_roll_says_what_to_run(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    with pytest.raises(BuildError, match="provision roll"):
        build_bundles(
            provisioned.definition,
            tmp_path / "nowhere",
            provisioned.root,
            tmp_path / "out",
            broker=BrokerSettings(),
            now=NOW,
        )


def test_roll_naming_a_station_outside_the_election_is_refused(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    roll_dir = tmp_path / "roll"
    roll_dir.mkdir()
    voter = {"pin": "21501199012345", "station": "no-such-station", "biometrics": "none"}
    (roll_dir / "roll.jsonl").write_text(json.dumps(voter) + "\n")
    with pytest.raises(BuildError, match="not in the definition"):
        build_bundles(
            provisioned.definition,
            roll_dir,
            provisioned.root,
            tmp_path / "out",
            broker=BrokerSettings(),
            now=NOW,
        )
