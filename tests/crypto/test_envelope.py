from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
from typing import Any
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import keys
from crypto.certs import CertificateError
from crypto.envelope import (
    GENESIS_PREV,
    BindingError,
    Envelope,
    EnvelopeError,
    SignatureError,
    _check_json,
    _explain_json,
    _json_ok,
    format_time,
    sign_envelope,
    signing_bytes,
    verify_envelope,
    verify_signed_by_certificate,
    verify_signed_by_root,
)
from tests.crypto.conftest import ELECTION, NOW, device_cert

KEY = keys.generate_signing_key()
BODY: dict[str, Any] = {"counts": {"A": 12, "B": 0}, "note": "Бишкек", "ok": True, "x": None}


def _sign(key: Ed25519PrivateKey = KEY, **over: Any) -> Envelope:
    fields: dict[str, Any] = dict(
        kind="zero_report",
        election=ELECTION,
        station="1001",
        device="dev-1001-a",
        seq=0,
        prev=GENESIS_PREV,
        time="2026-11-29T08:00:00+06:00",
        body=BODY,
    )
    fields.update(over)
    return sign_envelope(key, **fields)


def _wire(env: Envelope) -> dict[str, Any]:
    return json.loads(env.to_bytes())


def _bytes(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# ---- format and signing rule -------------------------------------------------


def test_signed_envelope_verifies_with_the_signers_key() -> None:
    env = _sign()
    verify_envelope(env, KEY.public_key())


def test_wire_bytes_are_canonical_json_with_version_and_all_fields() -> None:
    env = _sign()
    data = env.to_bytes()
    obj = json.loads(data)
    assert set(obj) == {
        "v", "kind", "election", "station", "device", "seq", "prev", "time", "body", "sig"
    }  # fmt: skip
    assert obj["v"] == 1
    assert data == _bytes(obj)
    assert env.hash == hashlib.sha256(data).hexdigest()


def test_an_independent_verifier_following_the_documented_rule_accepts_the_signature() -> None:
    """docs/crypto.md: prefix, kind, NUL, canonical JSON of the wire object minus "sig"."""
    env = _sign()
    obj = json.loads(env.to_bytes())
    sig = base64.b64decode(obj.pop("sig"))
    message = b"SHAILOO-ENVELOPE-v1\x00" + obj["kind"].encode() + b"\x00" + _bytes(obj)
    assert message == signing_bytes(env)
    KEY.public_key().verify(sig, message)


def test_wrong_key_raises_signature_error_naming_the_message() -> None:
    with pytest.raises(SignatureError, match="zero_report seq 0 from station 1001"):
        verify_envelope(_sign(), keys.generate_signing_key().public_key())


def test_same_body_under_another_kind_does_not_verify() -> None:
    env = _sign()
    relabelled = dataclasses.replace(env, kind="final_report")
    with pytest.raises(SignatureError):
        verify_envelope(relabelled, KEY.public_key())


def test_envelope_keeps_its_own_copy_of_the_body() -> None:
    body = {"counts": [1, 2]}
    env = _sign(body=body)
    body["counts"].append(3)
    verify_envelope(env, KEY.public_key())
    assert env.body == {"counts": [1, 2]}


def test_chained_envelopes_link_by_hash() -> None:
    first = _sign()
    second = _sign(kind="turnout", seq=1, prev=first.hash)
    assert second.prev == first.hash
    assert Envelope.from_bytes(second.to_bytes()).prev == first.hash


def test_format_time_gives_whole_seconds_with_offset() -> None:
    when = NOW.replace(microsecond=123456)
    assert format_time(when) == "2026-11-29T20:00:05+06:00"
    assert _sign(time=format_time(when)).when == NOW
    with pytest.raises(EnvelopeError, match="timezone-aware"):
        format_time(dt.datetime(2026, 11, 29, 20, 0))


# ---- field validation before signing -----------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"kind": "Zero-Report"}, "kind"),
        ({"kind": "k" * 41}, "kind"),
        ({"election": "AB" * 32}, "election"),
        ({"station": "10/01"}, "station"),
        ({"device": ""}, "device"),
        ({"seq": -1}, "seq"),
        ({"seq": True}, "seq must be an integer"),
        ({"seq": 2**53}, "seq"),
        ({"prev": "0" * 63}, "prev"),
        ({"time": "2026-11-29T20:00:05"}, "offset"),
        ({"time": "2026-11-29 20:00:05+06:00"}, "ISO 8601"),
        ({"time": "2026-02-30T20:00:05+06:00"}, "not a real date"),
        ({"body": {"share": 0.5}}, "body.share: floats"),
        ({"body": {"a": [1, {"b": 1.0}]}}, r"body.a\[1\].b: floats"),
        ({"body": {"n": 2**60}}, "beyond"),
        ({"body": {1: "x"}}, "keys must be strings"),
        ({"body": {"s": {1, 2}}}, "not a JSON value"),
        ({"body": {"s": "\ud800"}}, "lone surrogate"),
        ({"body": []}, "body must be a JSON object"),
    ],
)
def test_bad_fields_are_refused_before_signing(override: dict[str, Any], message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        _sign(**override)


def test_body_nested_too_deeply_is_refused() -> None:
    body: dict[str, Any] = {}
    inner = body
    for _ in range(40):
        inner["d"] = {}
        inner = inner["d"]
    with pytest.raises(EnvelopeError, match="nested deeper"):
        _sign(body=body)


# ---- strict parsing --------------------------------------------------------------


def _mutated_wire(**changes: Any) -> bytes:
    obj = _wire(_sign())
    for k, v in changes.items():
        if v is _DELETE:
            del obj[k]
        else:
            obj[k] = v
    return _bytes(obj)


_DELETE = object()


def test_from_bytes_round_trips() -> None:
    env = _sign()
    assert Envelope.from_bytes(env.to_bytes()) == env


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1,2]", "must be a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    ],
)
def test_from_bytes_refuses_non_json(data: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        Envelope.from_bytes(data)


def test_from_bytes_refuses_oversized_input_before_parsing() -> None:
    data = _sign().to_bytes()
    with pytest.raises(EnvelopeError, match="over the limit of 100"):
        Envelope.from_bytes(data, max_size=100)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sig": _DELETE}, r"missing \['sig'\]"),
        ({"extra": 1}, r"unexpected \['extra'\]"),
        ({"v": 2}, "unsupported envelope version 2"),
        ({"v": True}, "unsupported envelope version"),
        ({"seq": "0"}, "seq must be an integer"),
        ({"station": 1001}, "station must be a string"),
        ({"body": "text"}, "body must be a JSON object"),
        ({"prev": "Z" * 64}, "prev"),
        ({"sig": "!!!"}, "base64"),
        ({"sig": base64.b64encode(bytes(63)).decode()}, "64-byte"),
        ({"sig": base64.urlsafe_b64encode(b"\xfb" * 64).decode()}, "base64"),
    ],
)
def test_from_bytes_refuses_wrong_fields(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        Envelope.from_bytes(_mutated_wire(**changes))


def test_from_bytes_refuses_floats_nan_and_duplicate_keys() -> None:
    good = _sign().to_bytes()
    with pytest.raises(EnvelopeError, match="floats"):
        Envelope.from_bytes(good.replace(b'"A":12', b'"A":12.0'))
    with pytest.raises(EnvelopeError, match="floats"):
        Envelope.from_bytes(good.replace(b'"A":12', b'"A":1e3'))
    with pytest.raises(EnvelopeError, match="NaN"):
        Envelope.from_bytes(good.replace(b'"A":12', b'"A":NaN'))
    with pytest.raises(EnvelopeError, match="duplicate key 'A'"):
        Envelope.from_bytes(good.replace(b'"A":12', b'"A":12,"A":12'))


def test_from_bytes_refuses_non_canonical_bytes_of_a_valid_envelope() -> None:
    env = _sign()
    obj = _wire(env)
    variants = [
        json.dumps(obj, sort_keys=True).encode(),  # whitespace
        json.dumps(obj, separators=(",", ":")).encode(),  # key order and \u escapes
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(),
        env.to_bytes() + b"\n",
    ]
    for data in variants:
        assert json.loads(data) == obj
        with pytest.raises(EnvelopeError, match="not canonical"):
            Envelope.from_bytes(data)


def test_non_canonical_base64_padding_bits_are_refused() -> None:
    env = _sign()
    last = env.sig[-3]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    # The char before "==" carries 4 padding bits; setting one keeps the decoded bytes.
    sibling = alphabet[alphabet.index(last) ^ 1]
    with pytest.raises(EnvelopeError, match="canonical base64"):
        dataclasses.replace(env, sig=env.sig[:-3] + sibling + "==")


# ---- certificate-bound verification -------------------------------------------------


def test_envelope_signed_by_a_device_certificate_verifies_and_names_the_device(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    k = keys.generate_signing_key()
    cert = device_cert(root_key, root_cert, k)
    ident = verify_signed_by_certificate(_sign(k), cert, root_cert, NOW)
    assert (ident.station_id, ident.device_id, ident.election_hash) == (
        "1001",
        "dev-1001-a",
        ELECTION,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("station", "1002"), ("device", "dev-1001-b"), ("election", "cd" * 32)],
)
def test_envelope_claiming_another_station_device_or_election_is_a_binding_error(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate, field: str, value: str
) -> None:
    k = keys.generate_signing_key()
    cert = device_cert(root_key, root_cert, k)
    env = _sign(k, **{field: value})
    with pytest.raises(BindingError, match=f"envelope {field}"):
        verify_signed_by_certificate(env, cert, root_cert, NOW)


def test_envelope_signed_by_another_key_than_the_certificates_fails(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    cert = device_cert(root_key, root_cert, keys.generate_signing_key())
    with pytest.raises(SignatureError, match="does not verify"):
        verify_signed_by_certificate(_sign(), cert, root_cert, NOW)


def test_tls_certificate_cannot_vouch_for_a_report(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    k = keys.generate_tls_key()
    cert = device_cert(root_key, root_cert, k, purpose="tls")
    with pytest.raises(CertificateError, match="wrong purpose"):
        verify_signed_by_certificate(_sign(k), cert, root_cert, NOW)


def test_certificate_from_another_root_cannot_vouch_for_a_report(
    root_cert: x509.Certificate,
    other_root_key: Ed25519PrivateKey,
    other_root_cert: x509.Certificate,
) -> None:
    k = keys.generate_signing_key()
    cert = device_cert(other_root_key, other_root_cert, k)
    with pytest.raises(CertificateError, match="not signed by this root"):
        verify_signed_by_certificate(_sign(k), cert, root_cert, NOW)


def test_cec_document_verifies_against_the_root_and_names_its_key(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    env = _sign(root_key, kind="bundle_manifest", station="CEC", device=keys.key_id(root_key))
    verify_signed_by_root(env, root_cert)
    with pytest.raises(BindingError, match="station 'CEC'"):
        verify_signed_by_root(_sign(root_key, device=keys.key_id(root_key)), root_cert)
    with pytest.raises(BindingError, match="root's key id"):
        verify_signed_by_root(_sign(root_key, station="CEC", device="0123abcd"), root_cert)


# ---- properties -----------------------------------------------------------------------

_json_leaf = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20)
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_envelope_fields = st.fixed_dictionaries(
    {
        "kind": st.from_regex(r"\A[a-z0-9_]{1,40}\Z"),
        "election": st.from_regex(r"\A[0-9a-f]{64}\Z"),
        "station": st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,10}\Z"),
        "device": st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,10}\Z"),
        "seq": st.integers(0, 2**53 - 1),
        "prev": st.from_regex(r"\A[0-9a-f]{64}\Z"),
        "time": st.datetimes(
            min_value=dt.datetime(2000, 1, 1),
            max_value=dt.datetime(2100, 1, 1),
            timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=6))]),
        ).map(format_time),
        "body": st.dictionaries(st.text(max_size=8), _json, max_size=5),
    }
)


@settings(max_examples=150, deadline=None)
@given(_envelope_fields)
def test_sign_serialise_parse_verify_round_trips(fields: dict[str, Any]) -> None:
    env = sign_envelope(KEY, **fields)
    parsed = Envelope.from_bytes(env.to_bytes())
    assert parsed == env
    assert parsed.to_bytes() == env.to_bytes()
    verify_envelope(parsed, KEY.public_key())


@settings(max_examples=300, deadline=None)
@given(_envelope_fields, st.data())
def test_flipping_any_byte_never_yields_a_valid_envelope(
    fields: dict[str, Any], data: st.DataObject
) -> None:
    wire = bytearray(sign_envelope(KEY, **fields).to_bytes())
    i = data.draw(st.integers(0, len(wire) - 1), label="position")
    wire[i] ^= data.draw(st.integers(1, 255), label="xor")
    try:
        env = Envelope.from_bytes(bytes(wire))
    except EnvelopeError:
        return
    with pytest.raises(SignatureError):
        verify_envelope(env, KEY.public_key())


@settings(max_examples=100, deadline=None)
@given(_envelope_fields, st.from_regex(r"\A[a-z0-9_]{1,40}\Z"))
def test_changing_only_the_kind_breaks_the_signature(fields: dict[str, Any], kind: str) -> None:
    env = sign_envelope(KEY, **fields)
    if kind == env.kind:
        return
    relabelled = Envelope.from_bytes(_bytes({**_wire(env), "kind": kind}))
    with pytest.raises(SignatureError):
        verify_envelope(relabelled, KEY.public_key())


# ---- the fast paths decide exactly as the careful ones ------------------------------------


def _outcome(data: bytes, *, fast: bool = True) -> tuple[Any, ...]:
    """What from_bytes makes of `data`: the envelope's fields and bytes, or the error."""
    with mock.patch.object(
        Envelope, "_from_canonical", Envelope._from_canonical if fast else _never
    ):
        try:
            env = Envelope.from_bytes(data)
        except EnvelopeError as e:
            return ("refused", str(e))
    return ("parsed", _fields(env), env.to_bytes(), signing_bytes(env))


def _never(*_: Any) -> None:
    return None


def _fields(env: Envelope) -> tuple[Any, ...]:
    return tuple(getattr(env, f.name) for f in dataclasses.fields(env))


def _signing_reference(env: Envelope) -> bytes:
    unsigned = {f.name: getattr(env, f.name) for f in dataclasses.fields(env)} | {"v": 1}
    del unsigned["sig"]
    return b"SHAILOO-ENVELOPE-v1\x00" + env.kind.encode() + b"\x00" + _bytes(unsigned)


@settings(max_examples=300, deadline=None)
@given(_envelope_fields, st.data())
def test_fast_parsing_decides_every_byte_string_as_the_careful_path(
    fields: dict[str, Any], data: st.DataObject
) -> None:
    wire = bytearray(sign_envelope(KEY, **fields).to_bytes())
    if data.draw(st.booleans(), label="flip"):
        i = data.draw(st.integers(0, len(wire) - 1), label="position")
        wire[i] ^= data.draw(st.integers(1, 255), label="xor")
    assert _outcome(bytes(wire)) == _outcome(bytes(wire), fast=False)


def _nested(depth: int) -> dict[str, Any]:
    body: dict[str, Any] = {}
    inner = body
    for _ in range(depth):
        inner["d"] = {}
        inner = inner["d"]
    return body


def _with(env: Envelope, old: bytes, new: bytes) -> bytes:
    wire = env.to_bytes()
    assert old in wire
    return wire.replace(old, new, 1)


@pytest.mark.parametrize(
    "data",
    [
        _with(_sign(), b'"A":12', b'"A":12.0'),
        _with(_sign(), b'"A":12', b'"A":1e400'),
        _with(_sign(), b'"A":12', b'"A":NaN'),
        _with(_sign(), b'"A":12', b'"A":-Infinity'),
        _with(_sign(), b'"A":12', b'"A":12,"A":12'),
        _with(_sign(), b'"A":12', b'"A":9007199254740991'),
        _with(_sign(), b'"A":12', b'"A":9007199254740992'),
        _with(_sign(), b'"A":12', b'"A":-9007199254740992'),
        _with(_sign(), b'"A":12', b'"A":' + b"9" * 5000),
        _with(_sign(), b'"A":12', b'"A":"\\ud800"'),
        _with(_sign(), b'"A":12', b'"A":"\\u00e9"'),
        _with(_sign(), b'"A":12', b'"A":"\\u0001"'),
        _with(_sign(body={"s": "\x01\x7f\u2028"}), b"", b""),
        _with(_sign(), b'"seq":0', b'"seq":0.0'),
        _with(_sign(), b'"seq":0', b'"seq":true'),
        _with(_sign(), b'"v":1', b'"v":1.0'),
        _with(_sign(), b'"v":1', b'"v":true'),
        _with(_sign(), b'"station":"1001"', b'"station":"1001\\n"'),
        _with(_sign(), b'"body":{', b'"body": {'),
        b"\xef\xbb\xbf" + _sign().to_bytes(),
        _sign().to_bytes() + b" ",
        *(_sign(body=_nested(n)).to_bytes() for n in (30, 31)),
        *(
            _sign(body=_nested(31)).to_bytes().replace(b'{"d":{}}', b'{"d":{"e":' + x + b"}}")
            for x in (b"1", b"[]", b"{}", b'"x"', b"[1]")
        ),  # fmt: skip
    ],
)
def test_fast_parsing_decides_edge_cases_as_the_careful_path(data: bytes) -> None:
    assert _outcome(data) == _outcome(data, fast=False)


@settings(max_examples=150, deadline=None)
@given(_envelope_fields)
def test_kept_bytes_are_the_canonical_ones(fields: dict[str, Any]) -> None:
    signed = sign_envelope(KEY, **fields)
    parsed = Envelope.from_bytes(signed.to_bytes())
    rebuilt = Envelope(**{f.name: getattr(signed, f.name) for f in dataclasses.fields(signed)})
    for env in (signed, parsed, rebuilt):
        assert env.to_bytes() == _bytes(_wire_reference(env))
        assert signing_bytes(env) == _signing_reference(env)


def _wire_reference(env: Envelope) -> dict[str, Any]:
    return {f.name: getattr(env, f.name) for f in dataclasses.fields(env)} | {"v": 1}


class _Int(int):
    pass


_odd_leaf = (
    _json_leaf
    | st.floats(allow_nan=True)
    | st.integers()
    | st.sampled_from(["\ud800", "a\udfff", (1, 2), _Int(3), _Int(2**60), b"x", object()])
)
_odd = st.recursive(
    _odd_leaf,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=4) | st.integers(0, 3), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(_odd, st.integers(1, 33))
def test_the_quick_body_check_passes_only_what_the_careful_one_passes(
    value: Any, depth: int
) -> None:
    def careful() -> str | None:
        try:
            _explain_json(value, "body", depth)
        except EnvelopeError as e:
            return str(e)
        return None

    expected = careful()
    if _json_ok(value, depth):
        assert expected is None
    try:
        _check_json(value, "body", depth)
        got = None
    except EnvelopeError as e:
        got = str(e)
    assert got == expected


def test_the_quick_body_check_counts_depth_as_the_careful_one() -> None:
    for depth in range(25, 35):
        bodies: list[dict[str, Any]] = [_nested(depth), {"l": [[[[1]]]]}, {"l": [[[[]]]]}]
        for body in bodies:
            for start in (1, 28, 30):
                try:
                    _explain_json(body, "body", start)
                    passes = True
                except EnvelopeError:
                    passes = False
                assert _json_ok(body, start) == passes
