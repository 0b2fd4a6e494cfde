from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


class _Int(int):
    pass


_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=5)
    | st.floats(allow_nan=False)
    | st.sampled_from([_Int(1), (1, "a"), ()]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4) | st.integers(0, 2), inner, max_size=4)
    ),
    max_leaves=15,
)


def _reference(obj: object) -> bytes | str:
    """canonical_json as it was written first: the careful walk, then json.dumps."""

    def walk(o: object) -> None:
        if isinstance(o, float):
            raise TypeError("canonical JSON carries no floats; use an integer or a decimal string")
        if isinstance(o, dict):
            for k, v in o.items():
                if not isinstance(k, str):
                    raise TypeError(f"canonical JSON keys must be strings, not {type(k).__name__}")
                walk(v)
        elif isinstance(o, list | tuple):
            for v in o:
                walk(v)

    try:
        walk(obj)
        return json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except TypeError as e:
        return str(e)


@settings(max_examples=500, deadline=None)
@given(_value)
def test_canonical_json_gives_what_the_careful_walk_and_json_dumps_give(obj: object) -> None:
    try:
        got: bytes | str = canonical_json(obj)
    except TypeError as e:
        got = str(e)
    assert got == _reference(obj)
