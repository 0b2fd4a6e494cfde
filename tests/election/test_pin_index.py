"""The national PIN index answers "where is this voter registered?" without clear PINs."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from election.pin_index import HEADER, PinIndex, PinIndexError, build_index

SECRET = b"k" * 32
STATIONS = ["1001", "1002", "2001"]


def pins(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return sorted({f"{rng.randint(10**13, 3 * 10**13 - 1)}" for _ in range(n)})


def test_every_indexed_pin_finds_its_station() -> None:
    entries = [(p, i % 3) for i, p in enumerate(pins(2000))]
    index = PinIndex(build_index(entries, SECRET, 3), SECRET, STATIONS)
    assert len(index) == len(entries)
    for pin, pos in entries:
        assert index.station_of(pin) == STATIONS[pos]


def test_pin_not_on_the_roll_finds_nothing() -> None:
    entries = [(p, 0) for p in pins(100)]
    index = PinIndex(build_index(entries, SECRET, 3), SECRET, STATIONS)
    assert index.station_of("19999999999999") is None


def test_index_file_holds_no_pin_in_clear() -> None:
    entries = [(p, 1) for p in pins(50)]
    data = build_index(entries, SECRET, 3)
    for pin, _ in entries:
        assert pin.encode() not in data
        assert int(pin).to_bytes(8, "little") not in data


def test_another_secret_cannot_look_up() -> None:
    entries = [(p, 2) for p in pins(200)]
    index = PinIndex(build_index(entries, SECRET, 3), b"x" * 32, STATIONS)
    assert all(index.station_of(p) is None for p, _ in entries)


def test_truncated_or_foreign_data_is_refused() -> None:
    data = build_index([(p, 0) for p in pins(10)], SECRET, 3)
    with pytest.raises(PinIndexError, match="bytes"):
        PinIndex(data[:-1], SECRET, STATIONS)
    with pytest.raises(PinIndexError, match="magic"):
        PinIndex(b"NOTINDEX" + data[8:], SECRET, STATIONS)
    with pytest.raises(PinIndexError, match="header"):
        PinIndex(data[: HEADER.size - 1], SECRET, STATIONS)
    with pytest.raises(PinIndexError, match="stations"):
        PinIndex(data, SECRET, STATIONS[:2])


def test_station_position_outside_the_table_is_refused() -> None:
    with pytest.raises(PinIndexError, match="outside"):
        build_index([("21501199012345", 3)], SECRET, 3)


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(st.from_regex(r"[12][0-9]{13}", fullmatch=True), st.integers(0, 2), max_size=60)
)
def test_lookup_agrees_with_a_plain_dict(table: dict[str, int]) -> None:
    index = PinIndex(build_index(table.items(), SECRET, 3), SECRET, STATIONS)
    for pin, pos in table.items():
        assert index.station_of(pin) == STATIONS[pos]
