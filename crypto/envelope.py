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
import datetime as dt
import json
import re
from dataclasses import dataclass
from json.encoder import encode_basestring as _json_str  # what canonical_json does to a str
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
    if not _json_ok(value, depth):
        _explain_json(value, path, depth)


def _json_ok(value: Any, depth: int) -> bool:
    """True only if `_check_json` passes: one quick walk building no paths (a report body
    has hundreds of values).  False for anything unusual (e.g. an int subclass), which
    `_explain_json` then judges and names."""
    if depth > MAX_DEPTH:
        return False
    if type(value) is dict:
        if value and depth >= MAX_DEPTH:  # its keys and values would be too deep
            return False
        for k, v in value.items():
            if type(k) is not str or not (k.isascii() or _utf8_ok(k)):
                return False
            t = type(v)
            if t is int:
                if not -MAX_INT <= v <= MAX_INT:
                    return False
            elif t is str:
                if not (v.isascii() or _utf8_ok(v)):
                    return False
            elif t is dict or t is list:
                if not _json_ok(v, depth + 1):
                    return False
            elif v is not None and t is not bool:
                return False
        return True
    if type(value) is list:
        if value and depth >= MAX_DEPTH:
            return False
        for v in value:
            t = type(v)
            if t is int:
                if not -MAX_INT <= v <= MAX_INT:
                    return False
            elif t is str:
                if not (v.isascii() or _utf8_ok(v)):
                    return False
            elif t is dict or t is list:
                if not _json_ok(v, depth + 1):
                    return False
            elif v is not None and t is not bool:
                return False
        return True
    t = type(value)
    if t is int:
        return -MAX_INT <= value <= MAX_INT
    if t is str:
        return value.isascii() or _utf8_ok(value)
    return value is None or t is bool


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _explain_json(value: Any, path: str, depth: int) -> None:
    """The careful walk: raises EnvelopeError naming the first value that is wrong."""
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
            _explain_json(v, f"{path}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise EnvelopeError(f"{path}: object keys must be strings, got {k!r}")
            _explain_json(k, f"{path} key", depth + 1)
            _explain_json(v, f"{path}.{k}", depth + 1)
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

    # Derived bytes are kept on the instance once made (`_wire`, `_unsigned`): the fields
    # never change after construction (frozen, and the body is the envelope's own).

    def __post_init__(self) -> None:
        self._check_head()
        if not isinstance(self.body, dict):
            raise EnvelopeError(f"body must be a JSON object, got {type(self.body).__name__}")
        _check_json(self.body, "body", 1)
        # A private deep copy: the caller mutating its dict must not change a signed envelope.
        object.__setattr__(self, "body", _copy_json(self.body))
        self._check_sig()

    def _check_head(self) -> None:
        """The checks of every field before the body, in order."""
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

    def _check_sig(self) -> None:
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
        wire: bytes | None = self.__dict__.get("_wire")
        if wire is None:
            unsigned = self.__dict__.get("_unsigned")
            wire = _insert_sig(self, unsigned) if unsigned is not None else None
            if wire is None:  # the fields were checked at construction: no float, no odd key
                wire = canonical_json(self.to_wire(), checked=True)
            object.__setattr__(self, "_wire", wire)
        return wire

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
        fast = cls._from_canonical(text, data)
        if fast is not None:
            return fast
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

    @classmethod
    def _from_canonical(cls, text: str, data: bytes) -> Envelope | None:
        """The envelope, if `data` is certainly a valid one in canonical form; None: the
        careful path above decides (and names what is wrong).

        The same checks, done faster: parsed by the plain C decoder (a duplicate key
        cannot survive the comparison with the canonical form, and every float,
        constant, huge or deep value is caught by the checks before it), the body
        walked once without naming paths and not copied (nothing else holds it), and
        the canonical form serialised once, becoming the envelope's wire bytes."""
        try:
            obj = _DECODER.decode(text)
        except (ValueError, RecursionError):
            return None
        if type(obj) is not dict or obj.keys() != _WIRE_KEYS:
            return None
        v, body = obj["v"], obj["body"]
        if type(v) is not int or v != VERSION or type(body) is not dict or not _json_ok(body, 1):
            return None
        env = object.__new__(cls)
        for name in _FIELDS:
            object.__setattr__(env, name, obj[name])
        try:
            env._check_head()
            env._check_sig()
        except EnvelopeError:
            return None
        # strings, ints, bools, None and string keys only (checked above)
        if canonical_json(obj, checked=True) != data:
            return None
        object.__setattr__(env, "_wire", data)
        return env


_DECODER = json.JSONDecoder()


def _wire_tail(env: Envelope) -> bytes:
    """The end of the canonical wire object after "sig" (keys sort: ..., seq, sig,
    station, time, v), the same in the unsigned object."""
    return (
        f'"station":{_json_str(env.station)},"time":{_json_str(env.time)},"v":{VERSION}}}'
    ).encode()


def _remove_sig(env: Envelope, wire: bytes) -> bytes | None:
    """canonical_json(wire object without "sig") from the canonical wire bytes."""
    tail = _wire_tail(env)
    with_sig = b'"sig":"' + env.sig.encode("ascii") + b'",' + tail
    return wire[: len(wire) - len(with_sig)] + tail if wire.endswith(with_sig) else None


def _insert_sig(env: Envelope, unsigned: bytes) -> bytes | None:
    """The canonical wire bytes from canonical_json(wire object without "sig")."""
    tail = _wire_tail(env)
    if not unsigned.endswith(tail):
        return None
    return (
        unsigned[: len(unsigned) - len(tail)] + b'"sig":"' + env.sig.encode("ascii") + b'",' + tail
    )


def _refuse_float(text: str) -> Any:
    raise EnvelopeError(f"floats are not allowed in envelopes (found {text[:40]})")


def _refuse_constant(text: str) -> Any:
    raise EnvelopeError(f"{text} is not allowed in envelopes")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    d = {}
    for k, v in pairs:
        if k in d:
            raise EnvelopeError(f"duplicate key {k!r} in envelope JSON")
        d[k] = v
    return d


def signing_bytes(env: Envelope) -> bytes:
    """The exact bytes the signature covers: prefix, kind, NUL, canonical wire JSON minus sig."""
    text: bytes | None = env.__dict__.get("_unsigned")
    if text is None:
        wire = env.__dict__.get("_wire")
        text = _remove_sig(env, wire) if wire is not None else None
        if text is None:
            unsigned = env.to_wire()
            del unsigned["sig"]
            text = canonical_json(unsigned, checked=True)  # checked at construction
        object.__setattr__(env, "_unsigned", text)
    return DOMAIN_PREFIX + env.kind.encode("ascii") + b"\x00" + text


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
    # dataclasses.replace(draft, sig=sig) without checking and copying everything again:
    # the fields are the draft's, checked; a 64-byte signature's base64 is well-formed.
    env = object.__new__(Envelope)
    for name in _FIELDS:
        object.__setattr__(env, name, sig if name == "sig" else getattr(draft, name))
    object.__setattr__(env, "_unsigned", draft.__dict__["_unsigned"])  # sig is not in it
    return env


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
