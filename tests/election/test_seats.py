"""Seat allocation: textbook examples, tie rules, edge cases and properties."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from election.definition import AllocationMethod
from election.seats import allocate, allocate_detailed
from tests.election.contest_factory import PROPERTY

HARE = AllocationMethod.HARE
DHONDT = AllocationMethod.DHONDT
SAINTE_LAGUE = AllocationMethod.SAINTE_LAGUE
ALL_METHODS = [HARE, DHONDT, SAINTE_LAGUE]

# Textbook example (Wikipedia, "Largest remainders method"): 100,000 votes, 10 seats.
COLOURS = {
    "yellows": 47_000,
    "whites": 16_000,
    "reds": 15_800,
    "greens": 12_000,
    "blues": 6_100,
    "pinks": 3_100,
}
# Textbook example (Wikipedia, "D'Hondt method"): 230,000 votes, 8 seats.
ABCD = {"a": 100_000, "b": 80_000, "c": 30_000, "d": 20_000}


# --- textbook examples -----------------------------------------------------------


def test_hare_textbook_example() -> None:
    # quota 10,000: floors 4,1,1,1,0,0 = 7; remainders .70 .60 .58 .20 .61 .31
    # -> the 3 spare seats go to yellows (.70), blues (.61), whites (.60)
    assert allocate(COLOURS, 10, HARE) == {
        "yellows": 5,
        "whites": 2,
        "reds": 1,
        "greens": 1,
        "blues": 1,
        "pinks": 0,
    }


def test_dhondt_textbook_examples() -> None:
    # quotients: a 100k 50k 33.3k 25k; b 80k 40k 26.7k; c 30k; d 20k
    # eight largest: 100k 80k 50k 40k 33.3k 30k 26.7k 25k
    assert allocate(ABCD, 8, DHONDT) == {"a": 4, "b": 3, "c": 1, "d": 0}
    assert allocate(COLOURS, 10, DHONDT) == {
        "yellows": 5,
        "whites": 2,
        "reds": 2,
        "greens": 1,
        "blues": 0,
        "pinks": 0,
    }


def test_sainte_lague_textbook_examples() -> None:
    # quotients (divisors 1,3,5): a 100k 33.3k 20k; b 80k 26.7k 16k; c 30k 10k; d 20k
    # eight largest: 100k 80k 33.3k 30k 26.7k 20k(a) 20k(d) 16k
    assert allocate(ABCD, 8, SAINTE_LAGUE) == {"a": 3, "b": 3, "c": 1, "d": 1}
    assert allocate(COLOURS, 10, SAINTE_LAGUE) == {
        "yellows": 4,
        "whites": 2,
        "reds": 2,
        "greens": 1,
        "blues": 1,
        "pinks": 0,
    }


def test_equal_quotients_inside_the_cut_are_not_reported_as_a_tie() -> None:
    # a/5 == d/1 == 20,000 but both are among the 8 seats: nothing was decided by a tie rule
    assert allocate_detailed(ABCD, 8, SAINTE_LAGUE).tied == ()


# --- ties ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ALL_METHODS)
def test_tie_in_votes_goes_to_caller_order_and_is_reported(method: AllocationMethod) -> None:
    votes = {"x": 100, "y": 100, "z": 100}
    first = allocate_detailed(votes, 2, method, order=["z", "y", "x"])
    assert first.seats == {"x": 0, "y": 1, "z": 1}
    assert set(first.tied) == {"x", "y", "z"}
    other = allocate_detailed(votes, 2, method, order=["x", "z", "y"])
    assert other.seats == {"x": 1, "y": 0, "z": 1}


@pytest.mark.parametrize("method", ALL_METHODS)
def test_tie_break_never_depends_on_dict_order(method: AllocationMethod) -> None:
    votes = {"b": 7, "a": 7, "c": 7}
    assert allocate(votes, 1, method) == allocate(dict(sorted(votes.items())), 1, method)
    # without an order the tie goes by id
    assert allocate(votes, 1, method) == {"a": 1, "b": 0, "c": 0}


def test_hare_equal_remainders_go_to_the_party_with_more_votes() -> None:
    # 3 seats, 120 votes: quota 40; x 60 -> 1.5, y 20 -> 0.5, z 40 -> 1.0
    # x and y both have remainder .5; one spare seat: x has more votes
    result = allocate_detailed({"y": 20, "x": 60, "z": 40}, 3, HARE, order=["y", "x", "z"])
    assert result.seats == {"x": 2, "y": 0, "z": 1}
    assert set(result.tied) == {"x", "y"}


def test_dhondt_equal_quotients_go_to_the_party_with_more_votes() -> None:
    # 3 seats: quotients x 60 30 20; y 30; the third seat: x/2 == y/1 == 30 -> x (more votes)
    result = allocate_detailed({"y": 30, "x": 60}, 3, DHONDT, order=["y", "x"])
    assert result.seats == {"x": 2, "y": 1}
    # 2 seats: x 60, then x/2 = 30 and y 30 tie for the last seat -> x, reported
    result = allocate_detailed({"y": 30, "x": 60}, 2, DHONDT, order=["y", "x"])
    assert result.seats == {"x": 2, "y": 0}
    assert result.tied == ("x", "y")


def test_parties_missing_from_order_come_after_it_by_id() -> None:
    votes = {"c": 5, "b": 5, "a": 5}
    assert allocate(votes, 1, DHONDT, order=["c"]) == {"a": 0, "b": 0, "c": 1}
    assert allocate(votes, 2, DHONDT, order=["c"]) == {"a": 1, "b": 0, "c": 1}


# --- edge cases ------------------------------------------------------------------


@pytest.mark.parametrize("method", ALL_METHODS)
def test_no_votes_gives_no_seats(method: AllocationMethod) -> None:
    assert allocate({"a": 0, "b": 0}, 10, method) == {"a": 0, "b": 0}
    assert allocate({}, 10, method) == {}


@pytest.mark.parametrize("method", ALL_METHODS)
def test_one_party_takes_every_seat(method: AllocationMethod) -> None:
    assert allocate({"only": 1}, 54, method) == {"only": 54}
    assert allocate({"only": 5, "none": 0}, 3, method) == {"only": 3, "none": 0}


@pytest.mark.parametrize("method", ALL_METHODS)
def test_zero_seats_gives_nothing(method: AllocationMethod) -> None:
    assert allocate({"a": 5, "b": 3}, 0, method) == {"a": 0, "b": 0}


@pytest.mark.parametrize("method", ALL_METHODS)
def test_far_more_seats_than_votes_still_gives_every_seat(method: AllocationMethod) -> None:
    result = allocate({"a": 2, "b": 1, "c": 0}, 3_000, method)
    assert sum(result.values()) == 3_000
    assert result["c"] == 0
    assert result["a"] == 2_000 if method is HARE else result["a"] >= result["b"]


@pytest.mark.parametrize("method", ALL_METHODS)
def test_bad_input_is_refused(method: AllocationMethod) -> None:
    with pytest.raises(ValueError, match="negative number of seats"):
        allocate({"a": 1}, -1, method)
    with pytest.raises(ValueError, match="negative"):
        allocate({"a": -1, "b": 3}, 1, method)
    with pytest.raises(TypeError):
        allocate({"a": 1.5}, 1, method)  # type: ignore[dict-item]


# --- properties ------------------------------------------------------------------

votes_maps = st.dictionaries(
    st.sampled_from(["p1", "p2", "p3", "p4", "p5", "p6", "p7"]),
    st.integers(0, 100_000),
    min_size=1,
)


@PROPERTY
@given(votes_maps, st.integers(0, 200), st.sampled_from(ALL_METHODS))
def test_every_seat_is_given_whenever_any_party_has_votes(
    votes: dict[str, int], seats: int, method: AllocationMethod
) -> None:
    result = allocate(votes, seats, method)
    assert set(result) == set(votes)
    assert sum(result.values()) == (seats if any(votes.values()) else 0)
    assert all(result[p] == 0 for p, v in votes.items() if v == 0)


@PROPERTY
@given(votes_maps, st.integers(1, 200))
def test_hare_gives_each_party_floor_or_ceil_of_quota(votes: dict[str, int], seats: int) -> None:
    total = sum(votes.values())
    if total == 0:
        return
    result = allocate(votes, seats, HARE)
    for p, v in votes.items():
        quota = Fraction(v * seats, total)
        assert result[p] in (quota.__floor__(), quota.__ceil__())


@PROPERTY
@given(
    votes_maps,
    st.integers(1, 100),
    st.sampled_from([DHONDT, SAINTE_LAGUE]),
    st.integers(1, 50_000),
    st.data(),
)
def test_more_votes_never_give_fewer_seats(
    votes: dict[str, int], seats: int, method: AllocationMethod, extra: int, data: st.DataObject
) -> None:
    party = data.draw(st.sampled_from(sorted(votes)))
    before = allocate(votes, seats, method)[party]
    after = allocate({**votes, party: votes[party] + extra}, seats, method)[party]
    assert after >= before


@PROPERTY
@given(votes_maps, st.integers(0, 100), st.sampled_from(ALL_METHODS))
def test_one_more_seat_never_takes_a_seat_away_from_divisor_methods(
    votes: dict[str, int], seats: int, method: AllocationMethod
) -> None:
    # house monotonicity holds for D'Hondt and Sainte-Laguë (Hare can show the Alabama paradox)
    if method is HARE:
        return
    before = allocate(votes, seats, method)
    after = allocate(votes, seats + 1, method)
    assert all(after[p] >= before[p] for p in votes)


def _compositions(total: int, parts: int) -> Iterator[tuple[int, ...]]:
    """Every way to split `total` seats among `parts` parties."""
    for cuts in itertools.combinations(range(total + parts - 1), parts - 1):
        bounds = (-1, *cuts, total + parts - 1)
        yield tuple(bounds[i + 1] - bounds[i] - 1 for i in range(parts))


def _divisor_fair(votes: list[int], seats: tuple[int, ...], divisor: int, step: int) -> bool:
    """The divisor-method condition: every seat held is worth at least as much as
    any seat not held -- min over held of v/(d(s-1)) >= max over all of v/d(s)."""
    held = [
        Fraction(v, divisor + step * (s - 1)) for v, s in zip(votes, seats, strict=True) if s > 0
    ]
    unheld = [Fraction(v, divisor + step * s) for v, s in zip(votes, seats, strict=True)]
    return not held or min(held) >= max(unheld)


@PROPERTY
@given(
    st.lists(st.integers(0, 60), min_size=1, max_size=4),
    st.integers(0, 8),
    st.sampled_from([(DHONDT, 1), (SAINTE_LAGUE, 2)]),
)
def test_divisor_methods_match_a_brute_force_reference(
    vote_list: list[int], seats: int, method_step: tuple[AllocationMethod, int]
) -> None:
    method, step = method_step
    names = [f"p{i}" for i in range(len(vote_list))]
    result = allocate(dict(zip(names, vote_list, strict=True)), seats, method)
    got = tuple(result[n] for n in names)
    if sum(vote_list) == 0:
        assert got == (0,) * len(names)
        return
    fair = [
        c
        for c in _compositions(seats, len(names))
        if _divisor_fair(vote_list, c, 1, step)
        and all(s == 0 for s, v in zip(c, vote_list, strict=True) if v == 0)
    ]
    assert got in fair
    if len(fair) == 1:
        assert got == fair[0]
