"""What the CEC server room needs for an election, made in the same build as the bundles.

    OUT/central/election.json            the definition (the same bytes as in every bundle)
    OUT/central/cec-root.pem             the trust anchor
    OUT/central/devices.json             every station device's signing certificate
    OUT/central/identity/                the central server's own keys (encrypted) and certificates:
        signing-key.pem, signing-cert.pem   signs acknowledgements (station "CEC")
        tls-N-key.pem, tls-N-cert.pem       broker logins of ingest workers 1..4 (CN cec-central-N;
                                            the broker takes the client id from the CN, so each
                                            worker needs its own)
    OUT/central/broker/                  Mosquitto's server certificate, key and CA file
    OUT/central/broker.json              where stations connect
    OUT/secrets/central-passphrase.txt   opens the identity keys (delivered apart)

The CEC root key stays with the key ceremony: the server that runs all night
signs acknowledgements with its own key, certified by the root for this one
election, and every bundle carries that certificate so a station can check an
acknowledgement without trusting anything online.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from crypto import certs, keys
from crypto.envelope import CEC_STATION
from election import bundle as B
from election.definition import ElectionDefinition
from provisioning.keyceremony import DEVICE_CERT_DAYS, RootCA, device_passphrase

CENTRAL_DIR = "central"
DEVICES_FILE = "devices.json"
IDENTITY_DIR = "identity"
BROKER_DIR = "broker"
PASSPHRASE_FILE = "central-passphrase.txt"
# The ack signer's station id is the CEC's own (crypto.envelope.CEC_STATION); its TLS
# identity is the broker ACL's central user.
ACK_DEVICE_ID = "cec-central"
INGEST_IDENTITIES = 4


def tls_users(n: int = INGEST_IDENTITIES) -> list[str]:
    """The broker usernames (certificate CNs) of the ingest workers."""
    return [f"cec-central-{i}" for i in range(1, n + 1)]


@dataclass(frozen=True)
class CentralIdentity:
    passphrase: str
    signing_key_pem: bytes
    signing_cert: x509.Certificate
    tls: tuple[tuple[bytes, x509.Certificate], ...]  # (encrypted key, certificate) per worker


def issue_central_identity(
    root: RootCA, definition: ElectionDefinition, *, now: dt.datetime
) -> CentralIdentity:
    """The central server's ack-signing and broker-login keys for this election."""
    passphrase = device_passphrase()
    until = dt.datetime.combine(definition.date, dt.time(23, 59), tzinfo=now.tzinfo)
    validity = dict(
        not_before=now - dt.timedelta(days=1),
        not_after=until + dt.timedelta(days=DEVICE_CERT_DAYS),
        election_hash=definition.election_hash,
    )
    signing_key = keys.generate_signing_key()
    signing_cert = certs.issue_device_certificate(
        root.key,
        root.cert,
        signing_key.public_key(),
        station_id=CEC_STATION,
        device_id=ACK_DEVICE_ID,
        purpose="signing",
        **validity,  # type: ignore[arg-type]
    )
    tls = []
    for user in tls_users():
        tls_key = keys.generate_tls_key()
        cert = certs.issue_device_certificate(
            root.key,
            root.cert,
            tls_key.public_key(),
            station_id=user,
            device_id=user,
            purpose="tls",
            **validity,  # type: ignore[arg-type]
        )
        tls.append((keys.encrypt_private_key(tls_key, passphrase), cert))
    return CentralIdentity(
        passphrase=passphrase,
        signing_key_pem=keys.encrypt_private_key(signing_key, passphrase),
        signing_cert=signing_cert,
        tls=tuple(tls),
    )


def write_central_kit(
    out_dir: Path,
    definition: ElectionDefinition,
    root: RootCA,
    identity: CentralIdentity,
    devices: list[tuple[str, str, bytes]],
    *,
    broker: B.BrokerSettings,
) -> Path:
    """Write OUT/central and the identity passphrase; `devices` = (station, device, cert PEM)."""
    kit = out_dir / CENTRAL_DIR
    (kit / IDENTITY_DIR).mkdir(parents=True)
    (kit / BROKER_DIR).mkdir()
    (kit / B.ELECTION_FILE).write_bytes(definition.canonical_bytes())
    root_pem = certs.cert_to_pem(root.cert)
    (kit / B.ROOT_CERT_FILE).write_bytes(root_pem)
    rows = [
        {"station_id": s, "device_id": d, "signing_cert": pem.decode("ascii")}
        for s, d, pem in sorted(devices)
    ]
    (kit / DEVICES_FILE).write_text(json.dumps({"devices": rows}, indent=1) + "\n")
    ident = kit / IDENTITY_DIR
    _private(ident / "signing-key.pem", identity.signing_key_pem)
    (ident / "signing-cert.pem").write_bytes(certs.cert_to_pem(identity.signing_cert))
    for i, (key_pem, cert) in enumerate(identity.tls, start=1):
        _private(ident / f"tls-{i}-key.pem", key_pem)
        (ident / f"tls-{i}-cert.pem").write_bytes(certs.cert_to_pem(cert))
    # Mosquitto reads its key unencrypted: the file is the server room's, mode 0600.
    server_key = keys.generate_tls_key()
    hosts, ips = _names(broker.host)
    server_cert = certs.issue_server_certificate(root.key, root.cert, server_key, hosts, ips)
    _private(kit / BROKER_DIR / "server-key.pem", keys.unencrypted_private_key_pem(server_key))
    (kit / BROKER_DIR / "server-cert.pem").write_bytes(certs.cert_to_pem(server_cert))
    (kit / BROKER_DIR / "ca.pem").write_bytes(root_pem)
    (kit / B.BROKER_FILE).write_text(broker.model_dump_json() + "\n")
    secrets_dir = out_dir / "secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    _private(secrets_dir / PASSPHRASE_FILE, (identity.passphrase + "\n").encode())
    return kit


def _names(host: str) -> tuple[list[str], list[str]]:
    """The broker certificate names its host and, always, localhost for the server room."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return sorted({host, "localhost"}), ["127.0.0.1"]
    return ["localhost"], sorted({host, "127.0.0.1"})


def _private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
