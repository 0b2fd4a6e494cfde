"""The key ceremony: the CEC root, and a key pair and certificates for each device.

The root's private key never leaves the CEC's provisioning machine and is kept
encrypted with a passphrase; each device gets two keys (one to sign its
reports, one as its MQTT TLS client identity), both certified by the root and
bound to one station, one device and one election.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crypto import certs, keys

ROOT_KEY_FILE = "root-key.pem"
ROOT_CERT_FILE = "root-cert.pem"
DEVICE_CERT_DAYS = 180


class CeremonyError(RuntimeError):
    """The ceremony cannot go on; the message says what to do."""


@dataclass(frozen=True)
class RootCA:
    key: Ed25519PrivateKey
    cert: x509.Certificate

    @property
    def key_id(self) -> str:
        return keys.key_id(self.key.public_key())


@dataclass(frozen=True)
class DeviceCredentials:
    """What goes into a station bundle; private keys are already encrypted."""

    device_id: str
    passphrase: str
    signing_key_pem: bytes
    signing_cert: x509.Certificate
    tls_key_pem: bytes
    tls_cert: x509.Certificate


def create_root(cec_dir: Path, passphrase: str, *, now: dt.datetime) -> RootCA:
    """Make the CEC root once; refuses to replace an existing one."""
    if len(passphrase) < 12:
        raise CeremonyError("the root passphrase must be at least 12 characters")
    key_path, cert_path = cec_dir / ROOT_KEY_FILE, cec_dir / ROOT_CERT_FILE
    if key_path.exists() or cert_path.exists():
        raise CeremonyError(
            f"a CEC root already exists in {cec_dir}; a second root would split trust. "
            "Use it, or move it away deliberately."
        )
    cec_dir.mkdir(parents=True, exist_ok=True)
    key = keys.generate_signing_key()
    cert = certs.make_root(
        key, not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=3 * 365)
    )
    _write_private(key_path, keys.encrypt_private_key(key, passphrase, hardened=True))
    cert_path.write_bytes(certs.cert_to_pem(cert))
    return RootCA(key, cert)


def load_root(cec_dir: Path, passphrase: str) -> RootCA:
    key_path, cert_path = cec_dir / ROOT_KEY_FILE, cec_dir / ROOT_CERT_FILE
    if not key_path.exists() or not cert_path.exists():
        raise CeremonyError(
            f"no CEC root in {cec_dir}: run `shailoo provision root --out {cec_dir}` first"
        )
    key = keys.load_private_key(key_path.read_bytes(), passphrase)
    if not isinstance(key, Ed25519PrivateKey):
        raise CeremonyError(f"{key_path} is not an Ed25519 key")
    cert = certs.cert_from_pem(cert_path.read_bytes())
    if keys.key_id(cert.public_key()) != keys.key_id(key.public_key()):  # type: ignore[arg-type]
        raise CeremonyError(f"{cert_path} does not belong to the key in {key_path}")
    return RootCA(key, cert)


def issue_device(
    root: RootCA,
    *,
    station_id: str,
    election_hash: str,
    now: dt.datetime,
    until: dt.datetime,
    device_id: str | None = None,
    passphrase: str | None = None,
) -> DeviceCredentials:
    """Keys and certificates for one device of one station."""
    device_id = device_id or f"dev-{station_id}-{secrets.token_hex(3)}"
    passphrase = passphrase or device_passphrase()
    not_before, not_after = now - dt.timedelta(days=1), until + dt.timedelta(days=DEVICE_CERT_DAYS)
    signing_key = keys.generate_signing_key()
    tls_key = keys.generate_tls_key()
    bound = dict(station_id=station_id, device_id=device_id, election_hash=election_hash)
    signing_cert = certs.issue_device_certificate(
        root.key,
        root.cert,
        signing_key.public_key(),
        purpose="signing",
        not_before=not_before,
        not_after=not_after,
        **bound,
    )
    tls_cert = certs.issue_device_certificate(
        root.key,
        root.cert,
        tls_key.public_key(),
        purpose="tls",
        not_before=not_before,
        not_after=not_after,
        **bound,
    )
    return DeviceCredentials(
        device_id=device_id,
        passphrase=passphrase,
        signing_key_pem=keys.encrypt_private_key(signing_key, passphrase),
        signing_cert=signing_cert,
        tls_key_pem=keys.encrypt_private_key(tls_key, passphrase),
        tls_cert=tls_cert,
    )


def device_passphrase() -> str:
    """A passphrase the chair can type at setup: 100 random bits in five groups of four."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(20))
    return "-".join(raw[i : i + 4] for i in range(0, 20, 4))


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
