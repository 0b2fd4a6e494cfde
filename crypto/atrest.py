"""Encryption at rest: scrypt-derived key + AES-256-GCM in a small versioned blob.

Used for secrets inside station bundles and for station databases, where the
only key material is a passphrase.  scrypt makes each passphrase guess cost
memory as well as time; GCM makes any change to the blob (header included, it
is the associated data) fail decryption instead of yielding altered plaintext.

Blob layout (all integers unsigned, one byte each)::

    magic  b"SHLAR"         5 bytes
    version 1               1
    log2_n, r, p            3   scrypt cost parameters
    salt                    16
    nonce                   12
    ciphertext || GCM tag   len(data) + 16

The 37-byte header is the GCM associated data.  The passphrase is UTF-8 of its
Unicode NFC form, so the same words typed on different keyboards agree.
"""

from __future__ import annotations

import os
import unicodedata

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from crypto.errors import DecryptError

__all__ = [
    "DEFAULT_LOG2_N",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_LOG2_N",
    "MIN_LOG2_N",
    "DecryptError",
    "decrypt",
    "encrypt",
]

MAGIC = b"SHLAR"
VERSION = 1
# 2**15 * 8 * 128 bytes = 32 MiB and about 70 ms per derivation on the reference
# 2-core machine: cheap for a station opening its database once, costly for guessing.
DEFAULT_LOG2_N = 15
MIN_LOG2_N = 14
# A blob's header chooses the cost, so it is bounded: 2**17 is 128 MiB of memory.
MAX_LOG2_N = 17
_R = 8
_P = 1
_SALT = 16
_NONCE = 12
_TAG = 16
HEADER_SIZE = len(MAGIC) + 1 + 3 + _SALT + _NONCE


def _passphrase_bytes(passphrase: str) -> bytes:
    if not isinstance(passphrase, str):
        raise TypeError(f"passphrase must be str, not {type(passphrase).__name__}")
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _derive(passphrase: bytes, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=2**log2_n, r=r, p=p).derive(passphrase)


def encrypt(data: bytes, passphrase: str, *, log2_n: int = DEFAULT_LOG2_N) -> bytes:
    """Encrypt `data` under `passphrase`; a fresh salt and nonce make every blob distinct."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    pw = _passphrase_bytes(passphrase)
    if not pw:
        raise ValueError("passphrase is empty; at-rest encryption needs a secret")
    if not MIN_LOG2_N <= log2_n <= MAX_LOG2_N:
        raise ValueError(f"log2_n must be {MIN_LOG2_N}..{MAX_LOG2_N}, not {log2_n}")
    salt = os.urandom(_SALT)
    nonce = os.urandom(_NONCE)
    header = MAGIC + bytes([VERSION, log2_n, _R, _P]) + salt + nonce
    key = _derive(pw, salt, log2_n, _R, _P)
    return header + AESGCM(key).encrypt(nonce, bytes(data), header)


def decrypt(blob: bytes, passphrase: str) -> bytes:
    """Decrypt a blob from `encrypt`; `DecryptError` says whether it is not a blob or won't open."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise TypeError(f"blob must be bytes, not {type(blob).__name__}")
    blob = bytes(blob)
    if len(blob) < HEADER_SIZE + _TAG or not blob.startswith(MAGIC):
        raise DecryptError("not a Shailoo encrypted blob (bad magic or truncated)")
    version, log2_n, r, p = blob[5], blob[6], blob[7], blob[8]
    if version != VERSION:
        raise DecryptError(f"unsupported encrypted blob version {version} (this code reads 1)")
    if not MIN_LOG2_N <= log2_n <= MAX_LOG2_N or r != _R or p != _P:
        raise DecryptError(
            f"encrypted blob header has unsupported scrypt parameters "
            f"(log2_n={log2_n}, r={r}, p={p}): damaged or not made by Shailoo"
        )
    header = blob[:HEADER_SIZE]
    salt = header[9 : 9 + _SALT]
    nonce = header[9 + _SALT :]
    key = _derive(_passphrase_bytes(passphrase), salt, log2_n, r, p)
    try:
        return AESGCM(key).decrypt(nonce, blob[HEADER_SIZE:], header)
    except InvalidTag:
        raise DecryptError("wrong passphrase, or the encrypted data was altered") from None
