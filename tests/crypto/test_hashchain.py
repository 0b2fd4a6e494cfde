from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.hashchain import GENESIS, ChainError, chain_hashes, link_hash, verify_chain

PAYLOADS = [b"opened", b"voter identified", b"ballot scanned", b"closed"]


def _chain(payloads: list[bytes]) -> list[tuple[str, bytes]]:
    return list(zip(chain_hashes(payloads), payloads, strict=True))


def test_link_hash_is_sha256_of_raw_prev_bytes_then_payload() -> None:
    prev = "11" * 32
    assert link_hash(prev, b"x") == hashlib.sha256(bytes.fromhex(prev) + b"x").hexdigest()
    assert link_hash(GENESIS, b"") == hashlib.sha256(bytes(32)).hexdigest()


def test_link_hash_refuses_a_prev_that_is_not_64_lowercase_hex() -> None:
    for bad in ["", "0" * 63, "A" * 64, "g" * 64]:
        with pytest.raises(ChainError, match="64 lower-case hex"):
            link_hash(bad, b"x")


def test_intact_chain_and_empty_chain_verify() -> None:
    assert verify_chain(_chain(PAYLOADS)) is None
    assert verify_chain([]) is None


def test_altered_payload_is_reported_at_its_index() -> None:
    items = _chain(PAYLOADS)
    items[2] = (items[2][0], b"ballot SCANNED")
    assert verify_chain(items) == 2


def test_deleted_entry_breaks_the_chain_where_it_was() -> None:
    items = _chain(PAYLOADS)
    del items[1]
    assert verify_chain(items) == 1


def test_reordered_entries_break_the_chain() -> None:
    items = _chain(PAYLOADS)
    items[1], items[2] = items[2], items[1]
    assert verify_chain(items) == 1


def test_malformed_stored_hash_is_a_break_not_a_crash() -> None:
    items = _chain(PAYLOADS)
    items[3] = ("not a hash", items[3][1])
    assert verify_chain(items) == 3


def test_verification_can_start_mid_chain_from_a_trusted_hash() -> None:
    items = _chain(PAYLOADS)
    assert verify_chain(items[2:], prev=items[1][0]) is None
    assert verify_chain(items[2:]) == 0


@given(
    st.lists(st.binary(max_size=40), min_size=1, max_size=12),
    st.data(),
)
def test_any_single_payload_change_is_found_at_exactly_that_index(
    payloads: list[bytes], data: st.DataObject
) -> None:
    items = _chain(payloads)
    i = data.draw(st.integers(0, len(items) - 1))
    new = data.draw(st.binary(max_size=40).filter(lambda b: b != payloads[i]))
    items[i] = (items[i][0], new)
    assert verify_chain(items) == i
