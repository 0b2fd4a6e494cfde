from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import election.definition
from crypto import certs, keys
from crypto.certs import CertificateError, DeviceIdentity, verify_device_certificate
from tests.crypto.conftest import (
    DEVICE_FROM,
    DEVICE_UNTIL,
    ELECTION,
    NOW,
    ROOT_FROM,
    ROOT_UNTIL,
    device_cert,
)


def _uris(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def test_root_is_a_self_signed_ca_that_signs_only_certificates_and_crls(
    root_cert: x509.Certificate,
) -> None:
    root_cert.verify_directly_issued_by(root_cert)
    bc = root_cert.extensions.get_extension_for_class(x509.BasicConstraints)
    ku = root_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    assert root_cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "Shailoo CEC Root"
    )


def test_root_validity_must_be_timezone_aware_and_ordered(root_key: Ed25519PrivateKey) -> None:
    with pytest.raises(CertificateError, match="timezone-aware"):
        certs.make_root(root_key, not_before=dt.datetime(2026, 1, 1), not_after=ROOT_UNTIL)
    with pytest.raises(CertificateError, match="must be after"):
        certs.make_root(root_key, not_before=ROOT_UNTIL, not_after=ROOT_FROM)


def test_device_certificate_binds_station_device_election_and_purpose(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    cert = device_cert(root_key, root_cert, keys.generate_signing_key())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "1001"
    assert sorted(_uris(cert)) == sorted(
        [
            "urn:shailoo:station:1001",
            "urn:shailoo:device:dev-1001-a",
            f"urn:shailoo:election:{ELECTION}",
            "urn:shailoo:purpose:signing",
        ]
    )
    assert verify_device_certificate(cert, root_cert, at=NOW, purpose="signing") == (
        DeviceIdentity("1001", "dev-1001-a", ELECTION, "signing")
    )


def test_signing_certificate_is_for_signatures_only_and_not_for_tls_login(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    cert = device_cert(root_key, root_cert, keys.generate_signing_key(), purpose="signing")
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    eku = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert ku.digital_signature and not ku.key_cert_sign and not ku.key_encipherment
    assert eku == [certs.SHAILOO_SIGNING_EKU]
    assert ExtendedKeyUsageOID.CLIENT_AUTH not in eku


def test_tls_certificate_carries_client_auth(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    cert = device_cert(root_key, root_cert, keys.generate_tls_key(), purpose="tls")
    eku = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert eku == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ident = verify_device_certificate(cert, root_cert, at=NOW, purpose="tls")
    assert ident.purpose == "tls"


def test_certificate_from_another_root_is_refused(
    root_cert: x509.Certificate,
    other_root_key: Ed25519PrivateKey,
    other_root_cert: x509.Certificate,
) -> None:
    cert = device_cert(other_root_key, other_root_cert, keys.generate_signing_key())
    with pytest.raises(CertificateError, match="not signed by this root"):
        verify_device_certificate(cert, root_cert, at=NOW, purpose="signing")


def test_forged_issuer_name_with_wrong_key_is_refused(
    root_cert: x509.Certificate, other_root_key: Ed25519PrivateKey
) -> None:
    # Same issuer *name* as the real root, signed by another key.
    impostor = certs.make_root(
        other_root_key, "Shailoo CEC Root", not_before=ROOT_FROM, not_after=ROOT_UNTIL
    )
    assert impostor.subject == root_cert.subject
    cert = device_cert(other_root_key, impostor, keys.generate_signing_key())
    with pytest.raises(CertificateError, match="not signed by this root"):
        verify_device_certificate(cert, root_cert, at=NOW, purpose="signing")


def test_expired_and_not_yet_valid_certificates_are_refused(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    cert = device_cert(root_key, root_cert, keys.generate_signing_key())
    with pytest.raises(CertificateError, match="expired"):
        verify_device_certificate(
            cert, root_cert, at=DEVICE_UNTIL + dt.timedelta(seconds=1), purpose="signing"
        )
    with pytest.raises(CertificateError, match="not yet valid"):
        verify_device_certificate(
            cert, root_cert, at=DEVICE_FROM - dt.timedelta(seconds=1), purpose="signing"
        )


def test_wrong_purpose_is_refused_both_ways(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    signing = device_cert(root_key, root_cert, keys.generate_signing_key(), purpose="signing")
    tls = device_cert(root_key, root_cert, keys.generate_tls_key(), purpose="tls")
    with pytest.raises(CertificateError, match="wrong purpose"):
        verify_device_certificate(signing, root_cert, at=NOW, purpose="tls")
    with pytest.raises(CertificateError, match="wrong purpose"):
        verify_device_certificate(tls, root_cert, at=NOW, purpose="signing")


def test_certificate_without_the_shailoo_binding_is_refused(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    k = keys.generate_signing_key()
    bare = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "1001")]))
        .issuer_name(root_cert.subject)
        .public_key(k.public_key())
        .serial_number(7)
        .not_valid_before(DEVICE_FROM)
        .not_valid_after(DEVICE_UNTIL)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier("urn:shailoo:station:1001")]
            ),
            critical=False,
        )
        .sign(root_key, None)
    )
    with pytest.raises(CertificateError, match="exactly one urn:shailoo:device:"):
        verify_device_certificate(bare, root_cert, at=NOW, purpose="signing")


def test_bad_binding_values_are_refused_at_issue(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    k = keys.generate_signing_key()
    with pytest.raises(CertificateError, match="station_id 'a/b' is not a Shailoo id"):
        device_cert(root_key, root_cert, k, station_id="a/b")
    with pytest.raises(CertificateError, match="device_id"):
        device_cert(root_key, root_cert, k, device_id="#")
    with pytest.raises(CertificateError, match="election_hash"):
        device_cert(root_key, root_cert, k, election_hash="AB" * 32)
    with pytest.raises(CertificateError, match="purpose"):
        device_cert(root_key, root_cert, k, purpose="login")  # type: ignore[arg-type]


def test_device_certificate_cannot_outlive_its_root(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    with pytest.raises(CertificateError, match="outside the root"):
        device_cert(
            root_key,
            root_cert,
            keys.generate_signing_key(),
            not_after=ROOT_UNTIL + dt.timedelta(days=1),
        )


def test_issuing_with_a_key_that_is_not_the_roots_is_refused(
    root_cert: x509.Certificate, other_root_key: Ed25519PrivateKey
) -> None:
    with pytest.raises(CertificateError, match="does not match the root certificate"):
        device_cert(other_root_key, root_cert, keys.generate_signing_key())


def test_server_certificate_names_hosts_and_ips_for_server_auth(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    k = keys.generate_tls_key()
    cert = certs.issue_server_certificate(
        root_key, root_cert, k, ["mqtt.shailoo.kg", "localhost"], ["127.0.0.1", "::1"]
    )
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mqtt.shailoo.kg", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    eku = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert eku == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_after_utc == root_cert.not_valid_after_utc
    cert.verify_directly_issued_by(root_cert)


def test_server_certificate_refuses_bad_names(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    k = keys.generate_tls_key()
    with pytest.raises(CertificateError, match="at least one"):
        certs.issue_server_certificate(root_key, root_cert, k, [], [])
    with pytest.raises(CertificateError, match="bad IP address"):
        certs.issue_server_certificate(root_key, root_cert, k, [], ["300.1.1.1"])
    with pytest.raises(CertificateError, match="bad hostname"):
        certs.issue_server_certificate(root_key, root_cert, k, ["bad host"], [])


def test_a_server_certificate_is_not_a_device_certificate(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    cert = certs.issue_server_certificate(root_key, root_cert, keys.generate_tls_key(), ["h"], [])
    with pytest.raises(CertificateError, match="subjectAltName|urn:shailoo"):
        verify_device_certificate(cert, root_cert, at=NOW, purpose="tls")


def test_pem_round_trip_and_fingerprint(
    root_key: Ed25519PrivateKey, root_cert: x509.Certificate
) -> None:
    cert = device_cert(root_key, root_cert, keys.generate_signing_key())
    pem = certs.cert_to_pem(cert)
    assert certs.cert_from_pem(pem) == cert
    fp = certs.fingerprint(cert)
    assert len(fp) == 64 and fp == certs.fingerprint(certs.cert_from_pem(pem))
    assert fp != certs.fingerprint(root_cert)


def test_cert_from_pem_refuses_garbage_and_multiple_certificates(
    root_cert: x509.Certificate, other_root_cert: x509.Certificate
) -> None:
    with pytest.raises(CertificateError, match="not a PEM certificate"):
        certs.cert_from_pem(b"junk")
    two = certs.cert_to_pem(root_cert) + certs.cert_to_pem(other_root_cert)
    with pytest.raises(CertificateError, match="found 2"):
        certs.cert_from_pem(two)


def test_id_pattern_is_the_election_definitions() -> None:
    assert certs.ID_RE == election.definition.ID_RE
