"""A signed envelope cut into chained QR texts comes back byte-exact, and any damage is named."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto import certs, keys
from crypto.envelope import GENESIS_PREV, format_time, sign_envelope
from crypto.errors import BindingError, CertificateError, SignatureError
from crypto.qrchain import (
    MAX_QR_CHARS,
    QrChainError,
    group_parts,
    parse_part,
    reassemble,
    split_envelope,
    verify_parts,
)
from tests.crypto.conftest import ELECTION, NOW, device_cert

DEVICE_KEY = keys.generate_signing_key()

json_leaf = st.one_of(
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.text(max_size=40),
    st.booleans(),
    st.none(),
)
bodies = st.dictionaries(
    st.text(min_size=1, max_size=12),
    st.one_of(json_leaf, st.lists(json_leaf, max_size=30), st.dictionaries(st.text(), json_leaf)),
    max_size=60,
)


def signed(body: dict, *, station: str = "1001", seq: int = 4) -> bytes:
    return sign_envelope(
        DEVICE_KEY,
        kind="identification_report",
        election=ELECTION,
        station=station,
        device="dev-1001-a",
        seq=seq,
        prev=GENESIS_PREV,
        time=format_time(NOW),
        body=body,
    ).to_bytes()


@pytest.fixture(scope="module")
def cert_pem(root_key: Ed25519PrivateKey, root_cert: x509.Certificate) -> bytes:
    return certs.cert_to_pem(device_cert(root_key, root_cert, DEVICE_KEY))


BIG = {"counts": {f"reason_{i}": i * 1000 for i in range(300)}, "name": "Бишкек ш. " * 40}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_any_body_round_trips_byte_exact(body: dict, cert_pem: bytes) -> None:
    data = signed(body)
    parts = split_envelope(data, cert_pem)
    assert all(len(p) <= MAX_QR_CHARS for p in parts)
    assert reassemble(parts) == (data, cert_pem)
    assert reassemble(list(reversed(parts))) == (data, cert_pem)


def test_large_report_is_cut_into_many_parts_with_the_signature_in_the_last(
    cert_pem: bytes, root_cert: x509.Certificate
) -> None:
    data = signed(BIG)
    parts = split_envelope(data, cert_pem)
    assert len(parts) > 5 and all(len(p) <= MAX_QR_CHARS for p in parts)
    assert '"sig":"' in parts[-1] and parse_part(parts[-1]).index == len(parts) - 1
    assert parse_part(parts[0]).index == 0 and reassemble(parts)[1] == cert_pem
    report = verify_parts(parts, root_cert)
    assert report.envelope_bytes == data and report.identity.station_id == "1001"


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_changed_character_fails(data: st.DataObject, cert_pem: bytes) -> None:
    parts = split_envelope(signed(BIG), cert_pem)
    i = data.draw(st.integers(0, len(parts) - 1), label="part")
    pos = data.draw(st.integers(0, len(parts[i]) - 1), label="position")
    new = data.draw(st.characters(codec="utf-8").filter(lambda c: c != parts[i][pos]))
    changed = list(parts)
    changed[i] = parts[i][:pos] + new + parts[i][pos + 1 :]
    with pytest.raises(QrChainError):
        reassemble(changed)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_dropped_part_fails_naming_it(data: st.DataObject, cert_pem: bytes) -> None:
    parts = split_envelope(signed(BIG), cert_pem)
    i = data.draw(st.integers(0, len(parts) - 1))
    n = len(parts) - 1
    name = r"certificate part \(0\)" if i == 0 else f"part {i} of {n}"
    with pytest.raises(QrChainError, match=rf"missing .*{name}"):
        reassemble(parts[:i] + parts[i + 1 :])


def test_parts_swapped_between_positions_fail(cert_pem: bytes) -> None:
    parts = split_envelope(signed(BIG), cert_pem)
    # relabelling is impossible without breaking the part's own hash, so a part put
    # in another place is a part from another printout: the chain names it
    other = split_envelope(signed({**BIG, "x": 1}), cert_pem)
    mixed = [*parts[:2], other[2], *parts[3:]]
    with pytest.raises(QrChainError, match="part 2 of .* does not follow|part 3 of .* does not"):
        reassemble(mixed)


def test_altered_content_with_a_recomputed_hash_fails_the_chain_or_signature(
    cert_pem: bytes, root_cert: x509.Certificate
) -> None:
    from crypto.qrchain import _make

    parts = split_envelope(signed(BIG), cert_pem)
    p = parse_part(parts[-1])
    forged = _make(p.kind, p.station, p.seq, p.index, p.total, p.prev, p.content.replace("4", "5"))
    with pytest.raises((QrChainError, SignatureError)):
        verify_parts([*parts[:-1], forged], root_cert)
    p1 = parse_part(parts[1])
    forged1 = _make(p1.kind, p1.station, p1.seq, 1, p1.total, p1.prev, p1.content.replace("1", "2"))
    with pytest.raises(QrChainError, match="part 2 of .* does not follow part 1"):
        reassemble([parts[0], forged1, *parts[2:]])


def test_another_root_or_another_stations_certificate_is_refused(
    root_key: Ed25519PrivateKey,
    root_cert: x509.Certificate,
    other_root_key: Ed25519PrivateKey,
    other_root_cert: x509.Certificate,
    cert_pem: bytes,
) -> None:
    data = signed({"voted": 3})
    with pytest.raises(CertificateError, match="not signed by this root"):
        verify_parts(split_envelope(data, cert_pem), other_root_cert)
    impostor = certs.cert_to_pem(device_cert(other_root_key, other_root_cert, DEVICE_KEY))
    with pytest.raises(CertificateError, match="not signed by this root"):
        verify_parts(split_envelope(data, impostor), root_cert)
    elsewhere = certs.cert_to_pem(
        device_cert(root_key, root_cert, DEVICE_KEY, station_id="2002", device_id="dev-2002-a")
    )
    with pytest.raises(BindingError, match="station"):
        verify_parts(split_envelope(data, elsewhere), root_cert)


def test_two_reports_are_grouped_apart_and_not_mixed(cert_pem: bytes) -> None:
    a = split_envelope(signed({"voted": 1}, seq=1), cert_pem)
    b = split_envelope(signed({"voted": 2}, seq=2), cert_pem)
    groups = group_parts([*a, *b, *a, "https://example.org"])
    assert sorted(groups) == [
        ("identification_report", "1001", 1),
        ("identification_report", "1001", 2),
    ]
    with pytest.raises(QrChainError, match="more than one report"):
        reassemble([*a, *b])


def test_text_that_is_not_ours_is_refused_clearly() -> None:
    with pytest.raises(QrChainError, match="not a Shailoo report QR"):
        parse_part("hello")
