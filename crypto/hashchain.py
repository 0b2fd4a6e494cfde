"""Hash chains: each link commits to everything before it, so any edit shows.

link = SHA-256(bytes.fromhex(prev) + payload), starting from GENESIS.  Small and
general on purpose: station event logs and message chains both use it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from crypto.errors import ChainError

__all__ = ["GENESIS", "ChainError", "chain_hashes", "link_hash", "verify_chain"]

GENESIS = "0" * 64
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def link_hash(prev: str, payload: bytes) -> str:
    """Hash of the link after `prev` carrying `payload` (SHA-256 of the 32 prev bytes + payload)."""
    if not isinstance(prev, str) or not _HEX64.match(prev):
        raise ChainError(f"prev must be 64 lower-case hex, got {prev!r}")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
    return hashlib.sha256(bytes.fromhex(prev) + bytes(payload)).hexdigest()


def chain_hashes(payloads: Iterable[bytes], prev: str = GENESIS) -> list[str]:
    """The stored hash of each payload when appended in order after `prev`."""
    out: list[str] = []
    for p in payloads:
        prev = link_hash(prev, p)
        out.append(prev)
    return out


def verify_chain(items: Iterable[tuple[str, bytes]], prev: str = GENESIS) -> int | None:
    """Index of the first (stored_hash, payload) that does not link, None if all do.

    A malformed stored hash counts as a break at its index, not an exception:
    the log is the untrusted thing being checked.  `prev` lets a verifier start
    mid-chain from a hash it already trusts.
    """
    link_hash(prev, b"")  # validates prev
    for i, (stored, payload) in enumerate(items):
        if link_hash(prev, payload) != stored:
            return i
        prev = stored
    return None
