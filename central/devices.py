"""Spare devices: the CEC authorises a replacement appliance's key for one station mid-day.

The spare's certificate must chain to the CEC root, be a signing certificate,
and be bound to this election and to a station of it; the running ingest
workers look new devices up here the first time they see them.  The spare
continues the station's chain (it took over the failed device's storage,
`station.appliance.Appliance.take_over`), so nothing else changes at the CEC:
messages it signed before it was authorised were refused (`unknown_device`,
no acknowledgement) and come again; authorising it resolves that alert.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from central import alerts
from central.db import Database
from central.kit import CentralKit
from central.verify import AuthorisedDevice, unknown_device_reason
from crypto import certs
from crypto.errors import CryptoError


class DeviceError(ValueError):
    """The device cannot be authorised; the message says why."""


def authorise_device(
    db: Database, kit: CentralKit, cert_pem: bytes, *, by: str, at: dt.datetime
) -> AuthorisedDevice:
    try:
        cert = certs.cert_from_pem(cert_pem)
        ident = certs.verify_device_certificate(cert, kit.root_cert, at=at, purpose="signing")
    except (CryptoError, ValueError) as e:
        raise DeviceError(f"the certificate is refused: {e}") from e
    if ident.election_hash != kit.definition.election_hash:
        raise DeviceError("the certificate is for another election")
    if ident.station_id not in {s.id for s in kit.definition.stations}:
        raise DeviceError(f"station {ident.station_id!r} is not in this election")
    if any(d.device_id == ident.device_id for d in kit.devices):
        raise DeviceError(f"device {ident.device_id} is already one of the build's devices")
    with db.transaction() as tx:
        if tx.one("SELECT device_id FROM devices WHERE device_id = ?", (ident.device_id,)):
            raise DeviceError(f"device {ident.device_id} is already authorised")
        tx.execute(
            "INSERT INTO devices (device_id, station_id, cert_pem, authorised_at, authorised_by) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                ident.device_id,
                ident.station_id,
                certs.cert_to_pem(cert).decode("ascii"),
                at.astimezone(dt.UTC).isoformat(timespec="seconds"),
                by,
            ),
        )
        # Its messages refused so far come again (the station resends until acknowledged)
        # and are accepted now: the refusal's alert is over.  After the insert: an ingest
        # refusing this device meanwhile holds the devices table (central.ingest), so its
        # alert is either resolved here or never raised.
        alerts.resolve_alerts(
            tx,
            kind="unknown_device",
            station_id=ident.station_id,
            at=at,
            detail=unknown_device_reason(ident.station_id, ident.device_id),
        )
    return AuthorisedDevice(ident.station_id, ident.device_id, cert)


def find_device(db: Database, station_id: str, device_id: str) -> AuthorisedDevice | None:
    """An authorised spare, if the CEC authorised this one (None otherwise)."""
    row = db.one(
        "SELECT cert_pem FROM devices WHERE station_id = ? AND device_id = ? "
        "AND revoked_at IS NULL",
        (station_id, device_id),
    )
    if row is None:
        return None
    return AuthorisedDevice(station_id, device_id, _cert(row["cert_pem"]))


def _cert(pem: str) -> x509.Certificate:
    return certs.cert_from_pem(pem.encode("ascii"))


def all_devices(db: Database, kit: CentralKit) -> list[AuthorisedDevice]:
    """The build's devices plus every authorised spare."""
    rows = db.query("SELECT station_id, device_id, cert_pem FROM devices WHERE revoked_at IS NULL")
    spares = [AuthorisedDevice(r["station_id"], r["device_id"], _cert(r["cert_pem"])) for r in rows]
    return [AuthorisedDevice(d.station_id, d.device_id, d.cert) for d in kit.devices] + spares
