"""Shared keys, roots and times for the crypto tests (no wall clock: times are fixed)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crypto import certs, keys
from tests.support.broker import mosquitto_factory  # noqa: F401  (fixture)

BISHKEK = dt.timezone(dt.timedelta(hours=6))
NOW = dt.datetime(2026, 11, 29, 20, 0, 5, tzinfo=BISHKEK)
ROOT_FROM = NOW - dt.timedelta(days=60)
ROOT_UNTIL = NOW + dt.timedelta(days=3 * 365)
DEVICE_FROM = NOW - dt.timedelta(days=30)
DEVICE_UNTIL = NOW + dt.timedelta(days=30)
ELECTION = "ab" * 32


@pytest.fixture(scope="session")
def root_key() -> Ed25519PrivateKey:
    return keys.generate_signing_key()


@pytest.fixture(scope="session")
def root_cert(root_key: Ed25519PrivateKey) -> x509.Certificate:
    return certs.make_root(root_key, not_before=ROOT_FROM, not_after=ROOT_UNTIL)


@pytest.fixture(scope="session")
def other_root_key() -> Ed25519PrivateKey:
    return keys.generate_signing_key()


@pytest.fixture(scope="session")
def other_root_cert(other_root_key: Ed25519PrivateKey) -> x509.Certificate:
    return certs.make_root(
        other_root_key, "Impostor Root", not_before=ROOT_FROM, not_after=ROOT_UNTIL
    )


def device_cert(
    root_key: Ed25519PrivateKey,
    root_cert: x509.Certificate,
    device_key: Ed25519PrivateKey,
    *,
    purpose: certs.Purpose = "signing",
    station_id: str = "1001",
    device_id: str = "dev-1001-a",
    election_hash: str = ELECTION,
    not_before: dt.datetime = DEVICE_FROM,
    not_after: dt.datetime = DEVICE_UNTIL,
) -> x509.Certificate:
    """A device certificate with test defaults, any field overridable."""
    return certs.issue_device_certificate(
        root_key,
        root_cert,
        device_key.public_key(),
        station_id=station_id,
        device_id=device_id,
        election_hash=election_hash,
        purpose=purpose,
        not_before=not_before,
        not_after=not_after,
    )
