"""Is this payload a message a station of this election really signed? Refuse it if not.

Checked in order, cheapest first, each refusal naming what is wrong: size,
topic, strict canonical parsing, kind, election, the device is one the CEC
authorised for the station it claims, the device certificate chains to the
CEC root and is bound to that station, device and election, and the
signature. What passes is handed to central.evidence, which checks the
sequence and chain against what is already stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crypto import certs
from crypto.envelope import Envelope, verify_envelope
from crypto.errors import CryptoError, EnvelopeError, SignatureError
from election.definition import ElectionDefinition

MAX_MESSAGE_SIZE = 256 * 1024  # the largest real report (17-party list + SMD) is ~13 kB
KINDS = frozenset({"asu_report", "identification_report", "turnout", "heartbeat", "log_digest"})
Clock = Callable[[], dt.datetime]


class Refused(Exception):
    """A payload is refused; `kind` is the alert kind, `station` who it claims to be from."""

    def __init__(
        self, kind: str, reason: str, station: str | None = None, device: str | None = None
    ) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.station = station
        self.device = device  # unknown_device: the device that is not authorised


@dataclass(frozen=True)
class AuthorisedDevice:
    station_id: str
    device_id: str
    cert: x509.Certificate


def topic_station(prefix: str, topic: str) -> tuple[str, str] | None:
    """(station, kind) of `{prefix}/station/{station}/up/{kind}`, or None."""
    head = f"{prefix}/station/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 3 or parts[1] != "up" or not parts[0] or not parts[2]:
        return None
    return parts[0], parts[2]


def unknown_device_reason(station: str, device: str) -> str:
    """The refusal (and its alert's detail) for a device not authorised for `station`; the
    alert is resolved when the CEC authorises that device (central.devices)."""
    return (
        f"device {device!r} is not authorised for station {station}: "
        "a spare must be authorised by the CEC first"
    )


class Verifier:
    """One per worker; caches each device's checked public key (a certificate is checked once)."""

    def __init__(
        self,
        definition: ElectionDefinition,
        root_cert: x509.Certificate,
        devices: Iterable[AuthorisedDevice],
        *,
        topic_prefix: str,
        clock: Clock,
        lookup: Callable[[str, str], AuthorisedDevice | None] | None = None,
    ) -> None:
        self.election_hash = definition.election_hash
        self.stations = {s.id for s in definition.stations}
        self.root = root_cert
        self.prefix = topic_prefix
        self.clock = clock
        self._lookup = lookup
        self._devices: dict[tuple[str, str], AuthorisedDevice] = {}
        self._keys: dict[tuple[str, str], Ed25519PublicKey] = {}
        for d in devices:
            self.authorise(d)

    def check_certificates(self) -> int:
        """Check the certificate of every device authorised so far now, as its first
        message would (a worker does this at start, so that first messages only verify
        their signature); returns how many passed.  One that does not pass is not
        remembered: its messages are checked again, and refused, when they come."""
        passed = 0
        for station, device in sorted(self._devices):
            try:
                self._key(station, device)
            except Refused:
                continue
            passed += 1
        return passed

    def authorise(self, device: AuthorisedDevice) -> None:
        """Accept messages from this device for its station (a spare authorised mid-day)."""
        self._devices[(device.station_id, device.device_id)] = device
        self._keys.pop((device.station_id, device.device_id), None)

    def check(self, topic: str, payload: bytes) -> Envelope:
        """The verified envelope, or Refused with the reason."""
        where = topic_station(self.prefix, topic)
        claimed = where[0] if where else None
        if len(payload) > MAX_MESSAGE_SIZE:
            raise Refused(
                "oversized",
                f"{len(payload)} bytes is more than the {MAX_MESSAGE_SIZE} a report can be",
                claimed,
            )
        if where is None:
            raise Refused("malformed", f"not a station up topic: {topic[:200]!r}", None)
        station, kind = where
        try:
            env = Envelope.from_bytes(payload, max_size=MAX_MESSAGE_SIZE)
        except EnvelopeError as e:
            raise Refused("malformed", f"not a valid signed envelope: {e}", station) from e
        if env.station != station or env.kind != kind:
            raise Refused(
                "forged",
                f"published on {station}/{kind} but signed as {env.station}/{env.kind}",
                station,
            )
        if env.kind not in KINDS:
            raise Refused("malformed", f"unknown message kind {env.kind!r}", station)
        if env.election != self.election_hash:
            raise Refused(
                "wrong_election",
                f"signed for election {env.election[:12]}…, not this one "
                f"({self.election_hash[:12]}…): a replay from another election or a "
                "device set up for the wrong one",
                station,
            )
        if station not in self.stations:
            raise Refused("unknown_device", f"station {station!r} is not in this election", station)
        key = self._key(station, env.device)
        try:
            verify_envelope(env, key)
        except SignatureError as e:
            raise Refused("forged", str(e), station) from e
        return env

    def _key(self, station: str, device: str) -> Ed25519PublicKey:
        cached = self._keys.get((station, device))
        if cached is not None:
            return cached
        d = self._devices.get((station, device))
        if d is None and self._lookup is not None:
            d = self._lookup(station, device)  # a spare the CEC authorised while running
            if d is not None:
                self._devices[(station, device)] = d
        if d is None:
            raise Refused("unknown_device", unknown_device_reason(station, device), station, device)
        try:
            ident = certs.verify_device_certificate(d.cert, self.root, at=self.clock(),
                                                    purpose="signing")  # fmt: skip
        except CryptoError as e:
            raise Refused("forged", f"device certificate refused: {e}", station) from e
        if (ident.station_id, ident.device_id, ident.election_hash) != (
            station,
            device,
            self.election_hash,
        ):
            raise Refused(
                "forged", "device certificate is bound to another station or election", station
            )
        key = d.cert.public_key()
        assert isinstance(key, Ed25519PublicKey)  # checked by verify_device_certificate
        self._keys[(station, device)] = key
        return key
