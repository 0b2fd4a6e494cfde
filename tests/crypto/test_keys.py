from __future__ import annotations

import hashlib
import ssl
import time
import unicodedata
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509 import Certificate

from crypto import certs, keys
from crypto.errors import KeyDecryptError, KeyFileError
from tests.crypto.conftest import device_cert

PASS = "Ala-Too 2026 shailoo"


def test_public_key_bytes_are_the_raw_32_bytes_for_private_and_public_key() -> None:
    k = keys.generate_signing_key()
    raw = keys.public_key_bytes(k)
    assert len(raw) == 32
    assert raw == keys.public_key_bytes(k.public_key())
    assert keys.public_key_bytes(keys.public_key_from_bytes(raw)) == raw


def test_public_key_from_bytes_refuses_wrong_length() -> None:
    with pytest.raises(KeyFileError, match="32 raw bytes"):
        keys.public_key_from_bytes(b"\x01" * 31)


def test_key_id_is_first_16_hex_of_sha256_of_raw_public_key() -> None:
    k = keys.generate_signing_key()
    expected = hashlib.sha256(keys.public_key_bytes(k)).hexdigest()[:16]
    assert keys.key_id(k.public_key()) == expected == keys.key_id(k)
    assert keys.key_id(keys.generate_signing_key()) != expected


def test_encrypted_key_round_trips_and_still_signs() -> None:
    k = keys.generate_signing_key()
    pem = keys.encrypt_private_key(k, PASS)
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = keys.load_private_key(pem, PASS)
    k.public_key().verify(loaded.sign(b"m"), b"m")


@pytest.mark.parametrize("hardened", [False, True])
def test_wrong_passphrase_raises_key_decrypt_error(hardened: bool) -> None:
    pem = keys.encrypt_private_key(keys.generate_signing_key(), PASS, hardened=hardened)
    with pytest.raises(KeyDecryptError, match="wrong passphrase or damaged key file"):
        keys.load_private_key(pem, PASS + "x")


@pytest.mark.parametrize("hardened", [False, True])
def test_damaged_key_file_raises_key_decrypt_error(hardened: bool) -> None:
    pem = bytearray(keys.encrypt_private_key(keys.generate_signing_key(), PASS, hardened=hardened))
    lines = bytes(pem).split(b"\n")
    body = bytearray(lines[2])
    body[10:14] = b"AAAA" if body[10:14] != b"AAAA" else b"BBBB"
    lines[2] = bytes(body)
    with pytest.raises(KeyDecryptError, match="damaged"):
        keys.load_private_key(b"\n".join(lines), PASS)


def test_hardened_key_uses_scrypt_wrapper_and_round_trips() -> None:
    k = keys.generate_signing_key()
    pem = keys.encrypt_private_key(k, PASS, hardened=True)
    assert pem.startswith(b"-----BEGIN SHAILOO ENCRYPTED PRIVATE KEY-----")
    assert keys.key_id(keys.load_private_key(pem, PASS)) == keys.key_id(k)


def test_unencrypted_private_key_is_refused_by_load() -> None:
    pem = keys.unencrypted_private_key_pem(keys.generate_signing_key())
    with pytest.raises(KeyFileError, match="unencrypted"):
        keys.load_private_key(pem, PASS)


def test_non_ed25519_key_is_refused_with_its_type_named() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASS.encode()),
    )
    with pytest.raises(KeyFileError, match="Ed25519"):
        keys.load_private_key(pem, PASS)


def test_not_pem_at_all_is_a_key_file_error() -> None:
    with pytest.raises(KeyFileError, match="not a PEM"):
        keys.load_private_key(b"hello", PASS)


def test_empty_passphrase_is_refused_when_encrypting() -> None:
    with pytest.raises(ValueError, match="passphrase is empty"):
        keys.encrypt_private_key(keys.generate_signing_key(), "")


def test_passphrase_is_unicode_normalised_so_keyboards_agree() -> None:
    composed = "Йод-2026"  # "Й" as one code point
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    pem = keys.encrypt_private_key(keys.generate_signing_key(), composed)
    keys.load_private_key(pem, decomposed)


def test_public_key_pem_round_trips_and_refuses_other_types() -> None:
    k = keys.generate_signing_key()
    pem = keys.save_public_key(k.public_key())
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert keys.key_id(keys.load_public_key(pem)) == keys.key_id(k)
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyFileError, match="Ed25519"):
        keys.load_public_key(ec_pem)
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        keys.load_public_key(b"junk")


def test_encrypted_tls_key_loads_directly_into_python_ssl_with_its_passphrase(
    tmp_path: Path, root_key: Ed25519PrivateKey, root_cert: Certificate
) -> None:
    k = keys.generate_tls_key()
    (tmp_path / "c.pem").write_bytes(
        certs.cert_to_pem(device_cert(root_key, root_cert, k, purpose="tls"))
    )
    (tmp_path / "k.pem").write_bytes(keys.encrypt_private_key(k, PASS))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem", password=PASS)
    with pytest.raises(ssl.SSLError):
        ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem", password="wrong")


def test_per_key_encryption_is_cheap_enough_for_5000_keys_on_two_cores() -> None:
    ks = [keys.generate_signing_key() for _ in range(50)]
    t0 = time.perf_counter()
    for k in ks:
        keys.encrypt_private_key(k, PASS)
    per_key_ms = (time.perf_counter() - t0) / len(ks) * 1000
    print(f"encrypt_private_key: {per_key_ms:.2f} ms per key")
    assert per_key_ms < 30
