"""The central server's kit for one election (written by `provision build` in OUT/central).

Loaded once at start and checked: the definition, the trust anchor, the
certificate of every station device, and the server's own identity (its
ack-signing key and its broker login), each certificate checked against
the root and bound to this election.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crypto import certs, keys
from crypto.envelope import CEC_STATION
from election import bundle as B
from election.definition import ElectionDefinition

DEVICES_FILE = "devices.json"
IDENTITY_DIR = "identity"
BROKER_DIR = "broker"


class KitError(RuntimeError):
    """The kit is incomplete or does not belong together; the message says what to fix."""


@dataclass(frozen=True)
class Device:
    station_id: str
    device_id: str
    cert: x509.Certificate


@dataclass(frozen=True)
class CentralKit:
    path: Path
    definition: ElectionDefinition
    root_cert: x509.Certificate
    devices: tuple[Device, ...]
    ack_key: Ed25519PrivateKey
    ack_cert: x509.Certificate
    broker: B.BrokerSettings
    _passphrase: str

    @property
    def ack_device_id(self) -> str:
        return certs.verify_device_certificate(
            self.ack_cert, self.root_cert, at=self.ack_cert.not_valid_before_utc, purpose="signing"
        ).device_id

    def tls_context(self, worker: int = 1) -> ssl.SSLContext:
        """Trust only the CEC root; log in to the broker as ingest worker `worker` (1..4).

        The broker takes the client id from the certificate's CN, so two workers with
        one certificate would keep disconnecting each other: each has its own.
        """
        ident = self.path / IDENTITY_DIR
        cert, key = ident / f"tls-{worker}-cert.pem", ident / f"tls-{worker}-key.pem"
        if not cert.exists():
            raise KitError(
                f"no broker identity for ingest worker {worker} in {ident}: "
                "the kit has one per worker (at most 4)"
            )
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cadata=certs.cert_to_pem(self.root_cert).decode()
        )
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(cert), str(key), password=self._passphrase)
        return ctx


def load_kit(path: Path, passphrase: str, *, at: dt.datetime | None = None) -> CentralKit:
    """Read and check OUT/central; `passphrase` is secrets/central-passphrase.txt."""
    at = at or dt.datetime.now(dt.UTC)
    try:
        definition = ElectionDefinition.from_json((path / B.ELECTION_FILE).read_bytes())
        root = certs.cert_from_pem((path / B.ROOT_CERT_FILE).read_bytes())
        rows = json.loads((path / DEVICES_FILE).read_text())["devices"]
        ident = path / IDENTITY_DIR
        ack_cert = certs.cert_from_pem((ident / "signing-cert.pem").read_bytes())
        key_pem = (ident / "signing-key.pem").read_bytes()
        broker = B.BrokerSettings.model_validate_json((path / B.BROKER_FILE).read_bytes())
    except FileNotFoundError as e:
        raise KitError(
            f"{e.filename} is missing: point --kit at the `central` directory "
            "that `shailoo provision build` wrote"
        ) from e
    try:
        ack_key = keys.load_private_key(key_pem, passphrase)
    except keys.KeyDecryptError as e:
        raise KitError("the central passphrase is wrong (secrets/central-passphrase.txt)") from e
    try:
        who = certs.verify_device_certificate(ack_cert, root, at=at, purpose="signing")
    except certs.CertificateError as e:
        raise KitError(f"the server's ack certificate: {e}") from e
    if (who.station_id, who.election_hash) != (CEC_STATION, definition.election_hash):
        raise KitError("the server's ack certificate is for another election")
    if keys.key_id(ack_cert.public_key()) != keys.key_id(ack_key):  # type: ignore[arg-type]
        raise KitError("the ack key and its certificate do not belong together")
    devices = tuple(
        Device(r["station_id"], r["device_id"], certs.cert_from_pem(r["signing_cert"].encode()))
        for r in rows
    )
    return CentralKit(path, definition, root, devices, ack_key, ack_cert, broker, passphrase)
