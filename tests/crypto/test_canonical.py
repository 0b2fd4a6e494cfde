from __future__ import annotations

import hashlib

import pytest

import election.canonical
from crypto.canonical import canonical_json, sha256_hex


def test_canonical_json_is_the_election_implementation_not_a_copy() -> None:
    assert canonical_json is election.canonical.canonical_json


def test_canonical_json_sorts_keys_drops_whitespace_and_keeps_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["Бишкек", None, True]}) == (
        '{"a":["Бишкек",null,true],"b":1}'.encode()
    )


def test_canonical_json_refuses_floats() -> None:
    with pytest.raises(TypeError, match="floats"):
        canonical_json({"share": 0.5})


def test_sha256_hex_matches_the_standard_test_vector() -> None:
    assert sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert sha256_hex(b"") == hashlib.sha256(b"").hexdigest()


def test_sha256_hex_refuses_text_so_encodings_are_never_guessed() -> None:
    with pytest.raises(TypeError, match="bytes"):
        sha256_hex("abc")  # type: ignore[arg-type]
