"""X.509 certificates: the CEC root, device certificates and the broker's certificate.

One root (Ed25519, self-signed) issues everything.  A device certificate binds
a device key to (station, device, election, purpose) with SAN URIs, so a
verifier needs nothing but the root to know who signed what for which
election.  The subject CN is the station id because Mosquitto, with
`use_identity_as_username true`, makes the CN the MQTT username that ACL
patterns (%u) match on.  Purposes are separate keys and separate certificates:
a "signing" certificate can sign reports but cannot log in to the broker, a
"tls" certificate can log in but its signatures are not accepted on reports.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Literal, get_args

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from crypto.errors import CertificateError

__all__ = [
    "ID_RE",
    "SHAILOO_SIGNING_EKU",
    "URN_PREFIX",
    "CertificateError",
    "DeviceIdentity",
    "Purpose",
    "cert_from_pem",
    "cert_to_pem",
    "fingerprint",
    "issue_device_certificate",
    "issue_server_certificate",
    "make_root",
    "verify_device_certificate",
]

Purpose = Literal["signing", "tls"]
PURPOSES: tuple[str, ...] = get_args(Purpose)
URN_PREFIX = "urn:shailoo:"
# Same pattern as election.definition.ID_RE (a test keeps them equal): ids are
# safe in URNs, MQTT usernames and topic levels (no '/', '+', '#', spaces).
ID_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_ID = re.compile(ID_RE)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# Extended key usage of a report-signing certificate.  An OID under 2.25 (a
# UUID, ITU-T X.667) needs no registration.  Its presence matters: OpenSSL
# accepts a client certificate WITHOUT any extendedKeyUsage for TLS client
# auth, so a signing certificate carries this EKU (and not clientAuth) to make
# Mosquitto refuse it as a login.
SHAILOO_SIGNING_EKU = x509.ObjectIdentifier("2.25.287533188099647415097947820533601229843")
_HOSTNAME = re.compile(r"[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_BINDING_KEYS = ("station", "device", "election", "purpose")


@dataclass(frozen=True)
class DeviceIdentity:
    """Who a verified device certificate speaks for."""

    station_id: str
    device_id: str
    election_hash: str
    purpose: Purpose


def _aware(name: str, value: dt.datetime) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise CertificateError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(dt.UTC)


def _validity(not_before: dt.datetime, not_after: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    nb, na = _aware("not_before", not_before), _aware("not_after", not_after)
    if na <= nb:
        raise CertificateError(f"not_after ({na.isoformat()}) must be after not_before")
    return nb, na


def _check_id(what: str, value: str) -> None:
    if not isinstance(value, str) or not _ID.match(value):
        raise CertificateError(
            f"{what} {value!r} is not a Shailoo id (letters, digits, '_', '.', '-'; max 64)"
        )


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _check_issuer(root_key: Ed25519PrivateKey, root_cert: x509.Certificate) -> None:
    if not isinstance(root_key, Ed25519PrivateKey):
        raise CertificateError(f"root key must be Ed25519, not {type(root_key).__name__}")
    if root_cert.public_key() != root_key.public_key():
        raise CertificateError("root key does not match the root certificate")


def _leaf_builder(
    root_key: Ed25519PrivateKey,
    root_cert: x509.Certificate,
    public_key: Ed25519PublicKey,
    common_name: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    _check_issuer(root_key, root_cert)
    if not isinstance(public_key, Ed25519PublicKey):
        raise CertificateError(f"subject key must be Ed25519, not {type(public_key).__name__}")
    nb, na = _validity(not_before, not_after)
    if nb < root_cert.not_valid_before_utc or na > root_cert.not_valid_after_utc:
        raise CertificateError(
            f"certificate validity {nb.isoformat()}..{na.isoformat()} falls outside the root's "
            f"{root_cert.not_valid_before_utc.isoformat()}..{root_cert.not_valid_after_utc.isoformat()}"
        )
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(root_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(nb)
        .not_valid_after(na)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
    )


def make_root(
    key: Ed25519PrivateKey,
    name: str = "Shailoo CEC Root",
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """Self-signed CEC root CA; path length 0, so it can issue only end-entity certificates."""
    if not isinstance(key, Ed25519PrivateKey):
        raise CertificateError(f"root key must be Ed25519, not {type(key).__name__}")
    if not isinstance(name, str) or not name.strip():
        raise CertificateError("root name must be a non-empty string")
    nb, na = _validity(not_before, not_after)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Central Election Commission KR"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KG"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(nb)
        .not_valid_after(na)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, None)
    )


def issue_device_certificate(
    root_key: Ed25519PrivateKey,
    root_cert: x509.Certificate,
    public_key: Ed25519PublicKey,
    *,
    station_id: str,
    device_id: str,
    election_hash: str,
    purpose: Purpose,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """Certificate binding a device key to one station, device, election and purpose."""
    _check_id("station_id", station_id)
    _check_id("device_id", device_id)
    if not isinstance(election_hash, str) or not _HEX64.match(election_hash):
        raise CertificateError(f"election_hash must be 64 lower-case hex, got {election_hash!r}")
    if purpose not in PURPOSES:
        raise CertificateError(f"purpose must be one of {PURPOSES}, not {purpose!r}")
    san = x509.SubjectAlternativeName(
        [
            x509.UniformResourceIdentifier(f"{URN_PREFIX}station:{station_id}"),
            x509.UniformResourceIdentifier(f"{URN_PREFIX}device:{device_id}"),
            x509.UniformResourceIdentifier(f"{URN_PREFIX}election:{election_hash}"),
            x509.UniformResourceIdentifier(f"{URN_PREFIX}purpose:{purpose}"),
        ]
    )
    b = _leaf_builder(root_key, root_cert, public_key, station_id, not_before, not_after)
    b = b.add_extension(_key_usage(digital_signature=True), critical=True)
    b = b.add_extension(san, critical=False)
    eku = ExtendedKeyUsageOID.CLIENT_AUTH if purpose == "tls" else SHAILOO_SIGNING_EKU
    b = b.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return b.sign(root_key, None)


def issue_server_certificate(
    root_key: Ed25519PrivateKey,
    root_cert: x509.Certificate,
    server_key: Ed25519PrivateKey | Ed25519PublicKey,
    hostnames: list[str],
    ips: list[str],
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    """TLS server certificate for the broker; validity defaults to the root's."""
    if isinstance(hostnames, str) or isinstance(ips, str):
        raise CertificateError("hostnames and ips are lists of strings, not a single string")
    if not hostnames and not ips:
        raise CertificateError("a server certificate needs at least one hostname or IP address")
    try:
        addresses = [ipaddress.ip_address(ip) for ip in ips]
    except ValueError as exc:
        raise CertificateError(f"bad IP address in ips: {exc}") from None
    for h in hostnames:
        if not isinstance(h, str) or not re.fullmatch(
            r"[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?", h
        ):
            raise CertificateError(f"bad hostname {h!r}")
    pub = server_key.public_key() if isinstance(server_key, Ed25519PrivateKey) else server_key
    cn = hostnames[0] if hostnames else str(addresses[0])
    b = _leaf_builder(
        root_key,
        root_cert,
        pub,
        cn,
        not_before or root_cert.not_valid_before_utc,
        not_after or root_cert.not_valid_after_utc,
    )
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    names += [x509.IPAddress(a) for a in addresses]
    return (
        b.add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(root_key, None)
    )


def _binding(cert: x509.Certificate) -> dict[str, str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CertificateError(
            "certificate has no subjectAltName: missing Shailoo binding"
        ) from None
    found: dict[str, list[str]] = {k: [] for k in _BINDING_KEYS}
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if not uri.startswith(URN_PREFIX):
            continue
        field, _, value = uri[len(URN_PREFIX) :].partition(":")
        if field in found:
            found[field].append(value)
    out: dict[str, str] = {}
    for k, values in found.items():
        if len(values) != 1:
            raise CertificateError(
                f"certificate must carry exactly one {URN_PREFIX}{k}: URI, found {len(values)}"
            )
        out[k] = values[0]
    return out


def verify_device_certificate(
    cert: x509.Certificate,
    root_cert: x509.Certificate,
    *,
    at: dt.datetime,
    purpose: Purpose,
) -> DeviceIdentity:
    """Check `cert` was issued by `root_cert`, is valid `at`, and is for `purpose`; say whose."""
    if not isinstance(cert, x509.Certificate) or not isinstance(root_cert, x509.Certificate):
        raise TypeError("cert and root_cert must be cryptography x509.Certificate objects")
    if purpose not in PURPOSES:
        raise CertificateError(f"purpose must be one of {PURPOSES}, not {purpose!r}")
    when = _aware("at", at)
    try:
        cert.verify_directly_issued_by(root_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise CertificateError("certificate is not signed by this root") from None
    for what, c in (("root", root_cert), ("device", cert)):
        if when < c.not_valid_before_utc:
            raise CertificateError(
                f"{what} certificate not yet valid at {when.isoformat()} "
                f"(valid from {c.not_valid_before_utc.isoformat()})"
            )
        if when > c.not_valid_after_utc:
            raise CertificateError(
                f"{what} certificate expired at {c.not_valid_after_utc.isoformat()} "
                f"(checked at {when.isoformat()})"
            )
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise CertificateError(f"certificate lacks a required extension: {exc}") from None
    if bc.ca:
        raise CertificateError("a CA certificate cannot be a device certificate")
    if not ku.digital_signature:
        raise CertificateError("certificate key usage lacks digitalSignature")
    b = _binding(cert)
    if b["purpose"] != purpose:
        raise CertificateError(
            f"wrong purpose: certificate is for {b['purpose']!r}, not {purpose!r}"
        )
    try:
        eku = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        eku = []
    want = ExtendedKeyUsageOID.CLIENT_AUTH if purpose == "tls" else SHAILOO_SIGNING_EKU
    if eku != [want]:
        names = ", ".join(o.dotted_string for o in eku) or "none"
        raise CertificateError(
            f"{purpose} certificate must have extendedKeyUsage exactly {want.dotted_string}, "
            f"has {names}"
        )
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1 or cns[0].value != b["station"]:
        raise CertificateError(
            f"subject CN must equal the station in the binding ({b['station']!r})"
        )
    _check_id("certificate station", b["station"])
    _check_id("certificate device", b["device"])
    if not _HEX64.match(b["election"]):
        raise CertificateError(f"certificate election {b['election']!r} is not 64 lower-case hex")
    if not isinstance(cert.public_key(), Ed25519PublicKey):
        raise CertificateError("device certificate key is not Ed25519")
    return DeviceIdentity(
        station_id=b["station"],
        device_id=b["device"],
        election_hash=b["election"],
        purpose=purpose,
    )


def cert_to_pem(cert: x509.Certificate) -> bytes:
    """PEM text of a certificate (what files, bundles and Mosquitto's cafile hold)."""
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_from_pem(data: bytes) -> x509.Certificate:
    """Parse exactly one PEM certificate; `CertificateError` if it is not one."""
    if not isinstance(data, bytes):
        raise TypeError(f"certificate data must be bytes, not {type(data).__name__}")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate ({exc})") from None
    if len(certs) != 1:
        raise CertificateError(f"expected one PEM certificate, found {len(certs)}")
    return certs[0]


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, 64 lower-case hex (what people compare by eye)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
