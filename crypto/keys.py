"""Ed25519 keys: generation, identifiers, and private keys encrypted at rest.

Shailoo uses Ed25519 for every key: the CEC root, device signing keys, device
TLS client keys and the broker's TLS key.  A real Mosquitto 2 (OpenSSL 3) and
Python's ssl accept Ed25519 certificates in TLS 1.2 and 1.3 (proved by
tests/crypto/test_mosquitto_tls.py), so there is one key type to audit.

Private keys are stored as PKCS#8 PEM encrypted with PBES2 (PBKDF2-HMAC-SHA256,
2048 iterations, AES-256-CBC: what `BestAvailableEncryption` produces), which
OpenSSL and Python's `ssl.SSLContext.load_cert_chain(password=...)` read
directly.  That KDF is cheap (about 0.25 ms a key), which is right for device
keys whose passphrases are random (`new_passphrase`) and wrong for a key
guarded by a human passphrase: `encrypt_private_key(..., hardened=True)` wraps
the key with scrypt (128 MiB) instead, for the CEC root key.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import unicodedata

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from crypto import atrest
from crypto.errors import KeyDecryptError, KeyFileError

__all__ = [
    "HARDENED_PEM_LABEL",
    "KeyDecryptError",
    "KeyFileError",
    "encrypt_private_key",
    "generate_signing_key",
    "generate_tls_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "new_passphrase",
    "public_key_bytes",
    "public_key_from_bytes",
    "save_public_key",
    "unencrypted_private_key_pem",
]

HARDENED_PEM_LABEL = "SHAILOO ENCRYPTED PRIVATE KEY"
_HARDENED_LOG2_N = 17
_PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


def generate_signing_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 key for signing envelopes (device or CEC)."""
    return Ed25519PrivateKey.generate()


def generate_tls_key() -> Ed25519PrivateKey:
    """A fresh key for a TLS certificate; Ed25519, chosen by experiment (see docs/crypto.md)."""
    return Ed25519PrivateKey.generate()


def _public(key: Ed25519PrivateKey | Ed25519PublicKey) -> Ed25519PublicKey:
    if isinstance(key, Ed25519PrivateKey):
        return key.public_key()
    if isinstance(key, Ed25519PublicKey):
        return key
    raise TypeError(f"expected an Ed25519 key, not {type(key).__name__}")


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The raw 32-byte public key (of a private key's public half, if given one)."""
    return _public(key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_from_bytes(raw: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from its raw 32 bytes (e.g. from a QR code or a database)."""
    if not isinstance(raw, bytes) or len(raw) != 32:
        got = len(raw) if isinstance(raw, bytes) else type(raw).__name__
        raise KeyFileError(f"an Ed25519 public key is 32 raw bytes, got {got}")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id(public_key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """Short stable name of a key: first 16 hex of SHA-256 of the raw public key."""
    return hashlib.sha256(public_key_bytes(public_key)).hexdigest()[:16]


def new_passphrase() -> str:
    """A random passphrase (192 bits, URL-safe text) for keys no human has to type."""
    return secrets.token_urlsafe(24)


def _passphrase_bytes(passphrase: str) -> bytes:
    if not isinstance(passphrase, str):
        raise TypeError(f"passphrase must be str, not {type(passphrase).__name__}")
    pw = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    if not pw:
        raise ValueError("passphrase is empty; private keys are never stored unencrypted")
    return pw


def encrypt_private_key(
    key: Ed25519PrivateKey, passphrase: str, *, hardened: bool = False
) -> bytes:
    """PEM of `key` encrypted under `passphrase`, for storage at rest.

    Default: standard encrypted PKCS#8, readable by OpenSSL and Python's ssl.
    `hardened=True`: scrypt + AES-256-GCM (see `crypto.atrest`) under the PEM
    label "SHAILOO ENCRYPTED PRIVATE KEY", for keys guarded by a human passphrase.
    """
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError(f"expected an Ed25519 private key, not {type(key).__name__}")
    pw = _passphrase_bytes(passphrase)
    if not hardened:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(pw),
        )
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    blob = atrest.encrypt(der, passphrase, log2_n=_HARDENED_LOG2_N)
    b64 = base64.encodebytes(blob).decode("ascii")
    return (
        f"-----BEGIN {HARDENED_PEM_LABEL}-----\n{b64}-----END {HARDENED_PEM_LABEL}-----\n"
    ).encode("ascii")


def load_private_key(data: bytes, passphrase: str) -> Ed25519PrivateKey:
    """Open a key written by `encrypt_private_key`; refuses unencrypted and non-Ed25519 keys."""
    if not isinstance(data, bytes):
        raise TypeError(f"key file data must be bytes, not {type(data).__name__}")
    pw = _passphrase_bytes(passphrase)
    m = _PEM_RE.search(data)
    if m is None:
        raise KeyFileError("not a PEM key file (no -----BEGIN ...----- block)")
    label = m.group(1).decode("ascii")
    if label == HARDENED_PEM_LABEL:
        try:
            der = atrest.decrypt(base64.b64decode(m.group(2), validate=False), passphrase)
        except (ValueError, TypeError) as exc:
            raise KeyDecryptError(f"wrong passphrase or damaged key file ({exc})") from None
        try:
            key = serialization.load_der_private_key(der, password=None)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyDecryptError(f"damaged key file: inner key unreadable ({exc})") from None
    elif label == "ENCRYPTED PRIVATE KEY":
        try:
            key = serialization.load_pem_private_key(data, password=pw)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise KeyDecryptError(
                "wrong passphrase or damaged key file (encrypted PKCS#8 would not open)"
            ) from None
    elif "PRIVATE KEY" in label:
        raise KeyFileError(
            f"key file holds an unencrypted '{label}'; Shailoo stores private keys encrypted"
        )
    else:
        raise KeyFileError(f"PEM block '{label}' is not a private key")
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"key file holds a {type(key).__name__}; Shailoo keys are Ed25519")
    return key


def unencrypted_private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """Plain PKCS#8 PEM, only for a daemon's key file (Mosquitto cannot prompt); chmod 600 it."""
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError(f"expected an Ed25519 private key, not {type(key).__name__}")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def save_public_key(public_key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    """SubjectPublicKeyInfo PEM of a public key (pure: returns bytes, writes no file)."""
    return _public(public_key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from `save_public_key` PEM; other key types are refused."""
    if not isinstance(data, bytes):
        raise TypeError(f"public key data must be bytes, not {type(data).__name__}")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"public key is a {type(key).__name__}; Shailoo keys are Ed25519")
    return key
