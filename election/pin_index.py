"""The national PIN index: which station each voter of the country is registered at.

A station must be able to tell a voter who is not on its roll "you vote at
station 1045, address ...", without carrying the country's personal numbers in
clear.  Each PIN is replaced by the first 8 bytes of HMAC-SHA256 under a key of
the election (shipped encrypted in every bundle), so the file alone does not
give up the PINs, and a lookup is a binary search over a sorted array.

Layout (little endian):
  header  32 bytes: magic b"SHLIDX01", u32 entries, u32 stations, 16 zero bytes
  keys    entries x u64  (sorted ascending, unique)
  station entries x u32  (index into the station table, the definition's order)

Pure: the caller reads or maps the file and passes the bytes in.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import mmap

MAGIC = b"SHLIDX01"
HEADER = struct.Struct("<8sII16x")


class PinIndexError(ValueError):
    """The index is damaged or two PINs collide; rebuild it."""


def pin_key(secret: bytes, pin: str) -> int:
    """The 64-bit keyed hash a PIN is filed under."""
    return int.from_bytes(hmac.digest(secret, pin.encode("utf-8"), sha256)[:8], "little")


def build_index(entries: Iterable[tuple[str, int]], secret: bytes, stations: int) -> bytes:
    """Bytes of the index for (PIN, station position) pairs."""
    keys: list[int] = []
    where: list[int] = []
    for pin, station_pos in entries:
        keys.append(pin_key(secret, pin))
        where.append(station_pos)
    return index_bytes(np.array(keys, dtype="<u8"), np.array(where, dtype="<u4"), stations)


def index_bytes(k: np.ndarray, s: np.ndarray, stations: int) -> bytes:
    """Bytes of the index from keyed hashes (`pin_key`) and station positions."""
    if len(k) != len(s):
        raise PinIndexError("keys and station positions differ in length")
    if len(s) and int(s.max()) >= stations:
        raise PinIndexError(f"station position {int(s.max())} outside 0..{stations - 1}")
    k = np.asarray(k, dtype="<u8")
    s = np.asarray(s, dtype="<u4")
    order = np.argsort(k, kind="stable")
    k, s = k[order], s[order]
    if len(k) > 1 and bool((k[1:] == k[:-1]).any()):
        raise PinIndexError("two PINs share a 64-bit index key; build again with a new secret")
    return HEADER.pack(MAGIC, len(k), stations) + k.tobytes() + s.tobytes()


class PinIndex:
    """Lookups over the bytes of an index (a bytes object or an mmap)."""

    def __init__(
        self, data: bytes | memoryview | mmap.mmap, secret: bytes, station_ids: Sequence[str]
    ):
        if len(data) < HEADER.size:
            raise PinIndexError("national index is shorter than its header")
        magic, n, stations = HEADER.unpack_from(data, 0)
        if magic != MAGIC:
            raise PinIndexError("not a Shailoo national index (bad magic)")
        if len(data) != HEADER.size + 12 * n:
            raise PinIndexError(f"national index should be {HEADER.size + 12 * n} bytes")
        if stations != len(station_ids):
            raise PinIndexError(
                f"index has {stations} stations but the definition has {len(station_ids)}"
            )
        self._keys = np.frombuffer(data, dtype="<u8", count=n, offset=HEADER.size)
        self._where = np.frombuffer(data, dtype="<u4", count=n, offset=HEADER.size + 8 * n)
        self._secret = secret
        self._stations = list(station_ids)

    def __len__(self) -> int:
        return len(self._keys)

    def station_of(self, pin: str) -> str | None:
        """The station id where this PIN is registered, or None if nowhere."""
        k = np.uint64(pin_key(self._secret, pin))
        i = int(np.searchsorted(self._keys, k))
        if i < len(self._keys) and self._keys[i] == k:
            return self._stations[int(self._where[i])]
        return None
