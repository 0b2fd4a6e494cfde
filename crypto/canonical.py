"""Canonical bytes and hashing: the one byte form of anything hashed or signed.

`canonical_json` lives in `election.canonical` (the election definition's hash
depends on it); it is re-exported here so that signing code has one import and
there is exactly one implementation.
"""

from __future__ import annotations

import hashlib

from election.canonical import canonical_json

__all__ = ["canonical_json", "sha256_hex"]


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of `data`: the hash form used in every Shailoo field."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"sha256_hex takes bytes, not {type(data).__name__}")
    return hashlib.sha256(data).hexdigest()
