"""The signed envelope: the one wire form of every signed Shailoo message.

Station reports and CEC-signed documents (bundle manifests: station "CEC",
device = the root's key id) are all `Envelope`s.  The wire bytes are canonical
JSON, so a message has exactly one valid byte form and `Envelope.hash` is a
stable name for it (the next envelope's `prev`).

Signed bytes (byte-exact; see docs/crypto.md)::

    b"SHAILOO-ENVELOPE-v1\\x00" + kind + b"\\x00" + canonical_json(wire object without "sig")

The kind appears in the prefix as well as in the object (domain separation:
no signature over one kind can be read as another), and the wire object
includes "v": 1, so the format version is signed too.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from crypto.canonical import canonical_json, sha256_hex
from crypto.certs import ID_RE, DeviceIdentity, verify_device_certificate
from crypto.errors import BindingError, EnvelopeError, SignatureError
from crypto.keys import key_id

__all__ = [
    "CEC_STATION",
    "DOMAIN_PREFIX",
    "GENESIS_PREV",
    "MAX_INT",
    "VERSION",
    "BindingError",
    "Envelope",
    "EnvelopeError",
    "SignatureError",
    "format_time",
    "sign_envelope",
    "signing_bytes",
    "verify_envelope",
    "verify_signed_by_certificate",
    "verify_signed_by_root",
]

DOMAIN_PREFIX = b"SHAILOO-ENVELOPE-v1\x00"
VERSION = 1
GENESIS_PREV = "0" * 64
CEC_STATION = "CEC"
# Integers must survive a JavaScript verifier (IEEE doubles): |n| <= 2**53 - 1.
MAX_INT = 2**53 - 1
MAX_DEPTH = 32
DEFAULT_MAX_SIZE = 1_000_000

_FIELDS = ("kind", "election", "station", "device", "seq", "prev", "time", "body", "sig")
_WIRE_KEYS = frozenset((*_FIELDS, "v"))
_KIND = re.compile(r"^[a-z0-9_]{1,40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(ID_RE)
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")
_B64 = re.compile(r"^[A-Za-z0-9+/]{86}==$")
_PLACEHOLDER_SIG = base64.b64encode(bytes(64)).decode("ascii")


def format_time(when: dt.datetime) -> str:
    """An aware datetime in the envelope's time form, whole seconds, offset kept."""
    if not isinstance(when, dt.datetime) or when.tzinfo is None:
        raise EnvelopeError(f"time must be a timezone-aware datetime, got {when!r}")
    return when.replace(microsecond=0).isoformat()


def _check_json(value: Any, path: str, depth: int) -> None:
    """JSON-shaped, no floats, integers a JavaScript verifier reads exactly, bounded depth."""
    if depth > MAX_DEPTH:
        raise EnvelopeError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise EnvelopeError(
                    f"{path}: string is not valid Unicode (lone surrogate)"
                ) from None
        return
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise EnvelopeError(f"{path}: integer {value} is beyond +-(2**53-1)")
        return
    if isinstance(value, float):
        raise EnvelopeError(f"{path}: floats are not allowed; use an integer or a decimal string")
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_json(v, f"{path}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise EnvelopeError(f"{path}: object keys must be strings, got {k!r}")
            _check_json(k, f"{path} key", depth + 1)
            _check_json(v, f"{path}.{k}", depth + 1)
        return
    raise EnvelopeError(f"{path}: {type(value).__name__} is not a JSON value")


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


@dataclass(frozen=True)
class Envelope:
    """A signed message; construction validates every field, so an Envelope is well-formed."""

    kind: str
    election: str
    station: str
    device: str
    seq: int
    prev: str
    time: str
    body: dict[str, Any]
    sig: str

    def __post_init__(self) -> None:
        for name in ("kind", "election", "station", "device", "prev", "time", "sig"):
            v = getattr(self, name)
            if not isinstance(v, str):
                raise EnvelopeError(f"{name} must be a string, got {type(v).__name__}")
        if not _KIND.match(self.kind):
            raise EnvelopeError(f"kind {self.kind!r} must match [a-z0-9_]{{1,40}}")
        if not _HEX64.match(self.election):
            raise EnvelopeError(f"election must be 64 lower-case hex, got {self.election!r}")
        if not _ID.match(self.station):
            raise EnvelopeError(f"station {self.station!r} is not a Shailoo id")
        if not _ID.match(self.device):
            raise EnvelopeError(f"device {self.device!r} is not a Shailoo id")
        if isinstance(self.seq, bool) or not isinstance(self.seq, int):
            raise EnvelopeError(f"seq must be an integer, got {type(self.seq).__name__}")
        if not 0 <= self.seq <= MAX_INT:
            raise EnvelopeError(f"seq must be 0..2**53-1, got {self.seq}")
        if not _HEX64.match(self.prev):
            raise EnvelopeError(f"prev must be 64 lower-case hex, got {self.prev!r}")
        if not _TIME.match(self.time):
            raise EnvelopeError(
                f"time {self.time!r} must be ISO 8601 to the second with an offset, "
                "e.g. 2026-11-29T20:00:05+06:00"
            )
        try:
            dt.datetime.fromisoformat(self.time)
        except ValueError:
            raise EnvelopeError(f"time {self.time!r} is not a real date and time") from None
        if not isinstance(self.body, dict):
            raise EnvelopeError(f"body must be a JSON object, got {type(self.body).__name__}")
        _check_json(self.body, "body", 1)
        # A private deep copy: the caller mutating its dict must not change a signed envelope.
        object.__setattr__(self, "body", _copy_json(self.body))
        if not _B64.match(self.sig):
            raise EnvelopeError("sig must be standard padded base64 of a 64-byte signature")
        try:
            raw = base64.b64decode(self.sig, validate=True)
        except binascii.Error:
            raise EnvelopeError("sig is not valid base64") from None
        if base64.b64encode(raw).decode("ascii") != self.sig:
            raise EnvelopeError("sig is not canonical base64 (non-zero padding bits)")

    def to_wire(self) -> dict[str, Any]:
        """The JSON object sent on the wire: every field plus "v"."""
        d: dict[str, Any] = {f: getattr(self, f) for f in _FIELDS}
        d["v"] = VERSION
        return d

    def to_bytes(self) -> bytes:
        """Canonical JSON wire bytes; the only byte form an envelope has."""
        return canonical_json(self.to_wire())

    @property
    def hash(self) -> str:
        """SHA-256 hex of the wire bytes: the value the signer's next envelope puts in prev."""
        return sha256_hex(self.to_bytes())

    @property
    def signature(self) -> bytes:
        """The raw 64-byte signature."""
        return base64.b64decode(self.sig)

    @property
    def when(self) -> dt.datetime:
        """`time` as an aware datetime."""
        return dt.datetime.fromisoformat(self.time)

    @classmethod
    def from_bytes(cls, data: bytes, max_size: int = DEFAULT_MAX_SIZE) -> Envelope:
        """Strictly parse wire bytes: anything but the one canonical form is an EnvelopeError."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise EnvelopeError(f"envelope must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) > max_size:
            raise EnvelopeError(f"envelope is {len(data)} bytes, over the limit of {max_size}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EnvelopeError(
                f"envelope is not UTF-8 ({exc.reason} at byte {exc.start})"
            ) from None
        try:
            obj = json.loads(
                text,
                parse_float=_refuse_float,
                parse_constant=_refuse_constant,
                object_pairs_hook=_no_duplicates,
            )
        except EnvelopeError:
            raise
        except RecursionError:
            raise EnvelopeError("envelope is not JSON: nested too deeply") from None
        except ValueError as exc:
            raise EnvelopeError(f"envelope is not JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise EnvelopeError(f"envelope must be a JSON object, got {type(obj).__name__}")
        missing = sorted(_WIRE_KEYS - obj.keys())
        extra = sorted(obj.keys() - _WIRE_KEYS)
        if missing or extra:
            raise EnvelopeError(f"envelope fields wrong: missing {missing}, unexpected {extra}")
        v = obj.pop("v")
        if isinstance(v, bool) or v != VERSION:
            raise EnvelopeError(f"unsupported envelope version {v!r} (this code reads {VERSION})")
        env = cls(**obj)
        if env.to_bytes() != data:
            raise EnvelopeError(
                "envelope bytes are not canonical JSON (key order, whitespace or escaping differ)"
            )
        return env


def _refuse_float(text: str) -> Any:
    raise EnvelopeError(f"floats are not allowed in envelopes (found {text[:40]})")


def _refuse_constant(text: str) -> Any:
    raise EnvelopeError(f"{text} is not allowed in envelopes")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise EnvelopeError(f"duplicate key {k!r} in envelope JSON")
        d[k] = v
    return d


def signing_bytes(env: Envelope) -> bytes:
    """The exact bytes the signature covers: prefix, kind, NUL, canonical wire JSON minus sig."""
    unsigned = env.to_wire()
    del unsigned["sig"]
    return DOMAIN_PREFIX + env.kind.encode("ascii") + b"\x00" + canonical_json(unsigned)


def sign_envelope(
    key: Ed25519PrivateKey,
    *,
    kind: str,
    election: str,
    station: str,
    device: str,
    seq: int,
    prev: str,
    time: str,
    body: dict[str, Any],
) -> Envelope:
    """Validate the fields and sign them; raises EnvelopeError before signing anything bad."""
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError(f"signing key must be Ed25519, not {type(key).__name__}")
    draft = Envelope(
        kind=kind,
        election=election,
        station=station,
        device=device,
        seq=seq,
        prev=prev,
        time=time,
        body=body,
        sig=_PLACEHOLDER_SIG,
    )
    sig = base64.b64encode(key.sign(signing_bytes(draft))).decode("ascii")
    return dataclasses.replace(draft, sig=sig)


def verify_envelope(env: Envelope, public_key: Ed25519PublicKey) -> None:
    """Raise SignatureError unless `public_key` signed exactly this envelope."""
    if not isinstance(env, Envelope):
        raise TypeError(f"expected an Envelope, not {type(env).__name__}")
    if not isinstance(public_key, Ed25519PublicKey):
        raise TypeError(f"public key must be Ed25519, not {type(public_key).__name__}")
    try:
        public_key.verify(env.signature, signing_bytes(env))
    except InvalidSignature:
        raise SignatureError(
            f"signature does not verify: {env.kind} seq {env.seq} from station {env.station} "
            f"device {env.device}"
        ) from None


def verify_signed_by_certificate(
    env: Envelope,
    cert: x509.Certificate,
    root_cert: x509.Certificate,
    at: dt.datetime,
) -> DeviceIdentity:
    """Chain, binding and signature: the envelope was signed by the device it names.

    Raises CertificateError (chain, validity, purpose), BindingError (the
    certificate is for another station, device or election) or SignatureError.
    """
    ident = verify_device_certificate(cert, root_cert, at=at, purpose="signing")
    for field, claimed, bound in (
        ("station", env.station, ident.station_id),
        ("device", env.device, ident.device_id),
        ("election", env.election, ident.election_hash),
    ):
        if claimed != bound:
            raise BindingError(
                f"envelope {field} {claimed!r} does not match the certificate's {bound!r}"
            )
    public_key = cert.public_key()
    assert isinstance(public_key, Ed25519PublicKey)  # checked by verify_device_certificate
    verify_envelope(env, public_key)
    return ident


def verify_signed_by_root(env: Envelope, root_cert: x509.Certificate) -> None:
    """A CEC-signed document: station "CEC", device = the root's key id, signed by the root."""
    public_key = root_cert.public_key()
    if not isinstance(public_key, Ed25519PublicKey):
        raise SignatureError("root certificate key is not Ed25519")
    if env.station != CEC_STATION:
        raise BindingError(f"CEC document must name station 'CEC', not {env.station!r}")
    if env.device != key_id(public_key):
        raise BindingError(
            f"CEC document names key {env.device!r}, but this root's key id is {key_id(public_key)}"
        )
    verify_envelope(env, public_key)
