"""The key ceremony: one CEC root, kept encrypted; device certificates bound to their station."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from crypto import certs, keys
from provisioning.keyceremony import CeremonyError, create_root, issue_device, load_root
from tests.support.provisioned import NOW

PASS = "a long enough passphrase"


def test_root_round_trips_through_its_encrypted_file(tmp_path: Path) -> None:
    root = create_root(tmp_path, PASS, now=NOW)
    again = load_root(tmp_path, PASS)
    assert again.key_id == root.key_id
    assert b"PRIVATE KEY" in (tmp_path / "root-key.pem").read_bytes()
    assert root.key.private_bytes_raw() not in (tmp_path / "root-key.pem").read_bytes()


def test_wrong_root_passphrase_is_refused(tmp_path: Path) -> None:
    create_root(tmp_path, PASS, now=NOW)
    with pytest.raises(keys.KeyDecryptError):
        load_root(tmp_path, "not the passphrase")


def test_a_second_root_is_never_made_over_the_first(tmp_path: Path) -> None:
    first = create_root(tmp_path, PASS, now=NOW)
    with pytest.raises(CeremonyError, match="already exists"):
        create_root(tmp_path, PASS, now=NOW)
    assert load_root(tmp_path, PASS).key_id == first.key_id


def test_short_root_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CeremonyError, match="at least 12"):
        create_root(tmp_path, "short", now=NOW)
    assert not any(tmp_path.iterdir())


def test_missing_root_says_which_command_makes_it(tmp_path: Path) -> None:
    with pytest.raises(CeremonyError, match="provision root"):
        load_root(tmp_path, PASS)


def test_device_certificates_are_bound_to_station_device_and_election(tmp_path: Path) -> None:
    root = create_root(tmp_path, PASS, now=NOW)
    creds = issue_device(
        root, station_id="1001", election_hash="ab" * 32, now=NOW, until=NOW + dt.timedelta(7)
    )
    for cert, purpose in ((creds.signing_cert, "signing"), (creds.tls_cert, "tls")):
        ident = certs.verify_device_certificate(cert, root.cert, at=NOW, purpose=purpose)
        assert (ident.station_id, ident.device_id, ident.election_hash) == (
            "1001",
            creds.device_id,
            "ab" * 32,
        )
    key = keys.load_private_key(creds.signing_key_pem, creds.passphrase)
    assert keys.key_id(key.public_key()) == keys.key_id(creds.signing_cert.public_key())  # type: ignore[arg-type]
