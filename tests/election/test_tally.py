"""ContestTally arithmetic and invariants, shares, percentages and turnout."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from election.canonical import canonical_json
from election.definition import Contest
from election.tally import (
    UNSPECIFIED_REASON,
    ContestTally,
    Shares,
    TallyError,
    Turnout,
    fraction_str,
    parse_fraction,
    parse_percent_units,
    percent_floor,
    percentages,
    shares,
)
from tests.election.contest_factory import (
    AGAINST_ALL,
    PROPERTY,
    party_list_contest,
    president_contest,
    referendum_contest,
    tally_of,
)

PARLIAMENT = party_list_contest({"ata": "FMM", "ish": "MF"})


# --- ContestTally ---------------------------------------------------------------


def test_zero_tally_has_every_option_and_candidate_at_zero() -> None:
    z = ContestTally.zero(PARLIAMENT)
    assert z.votes == {"ata": 0, "ish": 0, AGAINST_ALL: 0}
    assert z.preferences == {"ata-1": 0, "ata-2": 0, "ata-3": 0, "ish-1": 0, "ish-2": 0}
    assert z.ballots == z.invalid == 0
    assert z.problems(PARLIAMENT) == []


def test_zero_tally_of_a_candidate_contest_has_no_preferences() -> None:
    contest = president_contest(["a", "b"])
    assert ContestTally.zero(contest).preferences == {}


def test_consistent_tally_has_no_problems() -> None:
    t = tally_of(
        PARLIAMENT,
        {"ata": 10, "ish": 5, AGAINST_ALL: 1},
        invalid=3,
        preferences={"ata-1": 4, "ata-3": 6, "ish-2": 5},
        invalid_by_reason={"blank": 1, "overvote": 2},
    )
    assert t.ballots == 19
    assert t.valid == 16
    assert t.problems(PARLIAMENT) == []
    assert t.check(PARLIAMENT) is t


def test_problems_lists_every_broken_invariant_in_sentences() -> None:
    t = ContestTally(
        contest_id="other",
        ballots=10,
        invalid=-1,
        invalid_by_reason={"blank": 2},
        votes={"ata": 8, "ghost": 1, AGAINST_ALL: -2},
        preferences={"ata-1": 9, "ish-1": 1, "nobody": 0},
    )
    problems = t.problems(PARLIAMENT)
    text = "\n".join(problems)
    assert "the tally is for contest other, not parliament" in text
    assert "the number of invalid is negative (-1)" in text
    assert f"option {AGAINST_ALL} has a negative count (-2)" in text
    assert "votes lack option ish" in text
    assert "votes name unknown option ghost" in text
    assert "preferences lack candidate ata-2" in text
    assert "preferences name unknown candidate nobody" in text
    assert "valid votes (7) plus invalid ballots (-1) make 6, not the 10 ballots counted" in text
    assert "invalid ballots by reason add up to 2, not -1" in text
    assert "candidates of party ata have 9 preference votes, more than the party's 8 votes" in text
    with pytest.raises(TallyError, match="not the 10 ballots counted"):
        t.check(PARLIAMENT)


def test_preferences_may_equal_but_not_exceed_party_votes() -> None:
    ok = tally_of(PARLIAMENT, {"ata": 3}, preferences={"ata-1": 2, "ata-2": 1})
    assert ok.problems(PARLIAMENT) == []
    bad = tally_of(PARLIAMENT, {"ata": 3}, preferences={"ata-1": 2, "ata-2": 2})
    assert len(bad.problems(PARLIAMENT)) == 1


def test_tally_without_breakdown_is_fine_but_a_breakdown_must_add_up() -> None:
    assert tally_of(PARLIAMENT, {"ata": 1}, invalid=2).problems(PARLIAMENT) == []
    bad = tally_of(PARLIAMENT, {"ata": 1}, invalid=2, invalid_by_reason={"blank": 1})
    assert bad.problems(PARLIAMENT) == ["invalid ballots by reason add up to 1, not 2"]


def test_adding_tallies_adds_every_counter() -> None:
    a = tally_of(
        PARLIAMENT, {"ata": 2}, invalid=1, preferences={"ata-1": 1}, invalid_by_reason={"blank": 1}
    )
    b = tally_of(
        PARLIAMENT,
        {"ish": 3},
        invalid=2,
        preferences={"ish-1": 3},
        invalid_by_reason={"overvote": 2},
    )
    s = a + b
    assert s.ballots == 8 and s.invalid == 3
    assert s.votes == {"ata": 2, "ish": 3, AGAINST_ALL: 0}
    assert s.preferences["ata-1"] == 1 and s.preferences["ish-1"] == 3
    assert s.invalid_by_reason == {"blank": 1, "overvote": 2}
    assert s.problems(PARLIAMENT) == []


def test_adding_a_tally_without_breakdown_keeps_the_sum_consistent() -> None:
    a = tally_of(PARLIAMENT, {"ata": 2}, invalid=3, invalid_by_reason={"blank": 3})
    b = tally_of(PARLIAMENT, {"ata": 2}, invalid=2)
    for s in (a + b, b + a):
        assert s.invalid_by_reason == {"blank": 3, UNSPECIFIED_REASON: 2}
        assert s.problems(PARLIAMENT) == []


def test_tallies_of_different_contests_cannot_be_added() -> None:
    other = referendum_contest()
    with pytest.raises(ValueError, match="cannot add a tally of contest referendum"):
        ContestTally.zero(PARLIAMENT) + ContestTally.zero(other)


def test_aggregate_of_nothing_is_zero() -> None:
    assert ContestTally.aggregate(PARLIAMENT, []) == ContestTally.zero(PARLIAMENT)


def test_tally_round_trips_through_canonical_json_without_floats() -> None:
    t = tally_of(
        PARLIAMENT,
        {"ata": 10, "ish": 5},
        invalid=1,
        preferences={"ata-2": 7},
        invalid_by_reason={"overvote": 1},
    )
    obj = t.to_obj()
    assert obj["votes"]["ata"] == 10
    canonical_json(obj)  # refuses floats
    assert ContestTally.from_obj(obj) == t


@pytest.mark.parametrize(
    "field, value",
    [("ballots", 1.0), ("ballots", "3"), ("ballots", True), ("votes", {"ata": 1.5})],
)
def test_from_obj_refuses_numbers_that_are_not_integers(field: str, value: object) -> None:
    obj = ContestTally.zero(PARLIAMENT).to_obj()
    obj[field] = value
    with pytest.raises(ValidationError):
        ContestTally.from_obj(obj)


def test_from_obj_refuses_unknown_fields_and_bad_ids() -> None:
    obj = ContestTally.zero(PARLIAMENT).to_obj()
    with pytest.raises(ValidationError):
        ContestTally.from_obj({**obj, "extra": 1})
    with pytest.raises(ValidationError):
        ContestTally.from_obj({**obj, "votes": {"bad id!": 1}})


def test_tally_is_immutable() -> None:
    t = ContestTally.zero(PARLIAMENT)
    with pytest.raises(ValidationError):
        t.ballots = 5  # type: ignore[misc]


# --- aggregation properties ------------------------------------------------------


@st.composite
def station_tallies(draw: st.DrawFn) -> ContestTally:
    """A consistent station tally of PARLIAMENT."""
    votes = {o.id: draw(st.integers(0, 300)) for o in PARLIAMENT.options}
    prefs: dict[str, int] = {}
    for o in PARLIAMENT.options:
        left = votes[o.id]
        for c in o.candidates:
            prefs[c.id] = draw(st.integers(0, left))
            left -= prefs[c.id]
    reasons = {r: draw(st.integers(0, 20)) for r in ("blank", "overvote", "unreadable")}
    with_breakdown = draw(st.booleans())
    invalid = sum(reasons.values())
    return tally_of(
        PARLIAMENT,
        votes,
        invalid=invalid,
        preferences=prefs,
        invalid_by_reason=reasons if with_breakdown else None,
    )


@PROPERTY
@given(station_tallies(), station_tallies(), station_tallies())
def test_adding_tallies_is_associative_and_commutative(
    a: ContestTally, b: ContestTally, c: ContestTally
) -> None:
    assert (a + b) + c == a + (b + c)
    assert a + b == b + a


@PROPERTY
@given(station_tallies())
def test_zero_is_the_identity_of_adding(t: ContestTally) -> None:
    z = ContestTally.zero(PARLIAMENT)
    assert z + t == t
    assert t + z == t


@PROPERTY
@given(st.lists(station_tallies(), max_size=6))
def test_the_sum_of_consistent_tallies_is_consistent(tallies: list[ContestTally]) -> None:
    total = ContestTally.aggregate(PARLIAMENT, tallies)
    assert total.problems(PARLIAMENT) == []
    assert total.ballots == sum(t.ballots for t in tallies)


# --- shares and percentages -------------------------------------------------------


def test_shares_are_exact_and_sum_to_one() -> None:
    s = shares({"a": 1, "b": 1, "c": 1})
    assert s == {"a": Fraction(1, 3), "b": Fraction(1, 3), "c": Fraction(1, 3)}
    assert sum(s.values()) == 1


def test_shares_and_percentages_of_nothing_are_empty() -> None:
    assert shares({"a": 0, "b": 0}) == {}
    assert percentages({"a": 0, "b": 0}) == {}
    assert percentages({}) == {}


def test_percentages_of_three_equal_thirds_add_to_exactly_100() -> None:
    # 33.333...% each: the one spare hundredth goes to the first key in order
    assert percentages({"a": 1, "b": 1, "c": 1}) == {"a": "33.34", "b": "33.33", "c": "33.33"}
    by_order = percentages({"a": 1, "b": 1, "c": 1}, order=["c", "b", "a"])
    assert by_order == {"a": "33.33", "b": "33.33", "c": "33.34"}


def test_percentages_tie_break_ignores_dict_order() -> None:
    assert percentages({"c": 1, "b": 1, "a": 1}) == percentages({"a": 1, "b": 1, "c": 1})


def test_percentages_give_spare_units_to_largest_remainders() -> None:
    # exact: 45.4545.., 36.3636.., 18.1818..; floors 45.45+36.36+18.18 = 99.99
    # remainders .45, .36, .18 -> the spare hundredth goes to "a"
    assert percentages({"a": 5, "b": 4, "c": 2}) == {"a": "45.46", "b": "36.36", "c": "18.18"}


def test_percentages_with_other_precision() -> None:
    assert percentages({"a": 1, "b": 2}, places=0) == {"a": "33", "b": "67"}
    assert percentages({"a": 1, "b": 2}, places=3) == {"a": "33.333", "b": "66.667"}
    assert percentages({"a": 1, "b": 0}) == {"a": "100.00", "b": "0.00"}


def test_percentages_refuse_negative_and_non_integer_counts() -> None:
    with pytest.raises(ValueError):
        percentages({"a": -1, "b": 2})
    with pytest.raises(TypeError):
        percentages({"a": 1.5, "b": 2})  # type: ignore[dict-item]


@PROPERTY
@given(st.dictionaries(st.text("abcdefgh", min_size=1, max_size=3), st.integers(0, 10**7)))
def test_percentages_always_add_up_to_exactly_100(counts: dict[str, int]) -> None:
    pct = percentages(counts)
    if sum(counts.values()) == 0:
        assert pct == {}
        return
    assert sum(parse_percent_units(p) for p in pct.values()) == 10_000
    exact = shares(counts)
    for k, p in pct.items():
        # each figure is within one hundredth of a percent of the exact share
        assert abs(Fraction(parse_percent_units(p), 10_000) - exact[k]) < Fraction(1, 10_000)


def test_shares_model_names_its_base_and_refuses_inconsistency() -> None:
    s = Shares.of("valid_votes", {"a": 1, "b": 3})
    assert (s.base_name, s.base) == ("valid_votes", 4)
    assert s.percent == {"a": "25.00", "b": "75.00"}
    assert s.fractions()["b"] == Fraction(3, 4)
    assert Shares.model_validate(s.to_obj()) == s
    with pytest.raises(ValidationError, match="not the sum"):
        Shares(base_name="x", base=5, counts={"a": 1, "b": 3}, percent=s.percent)
    with pytest.raises(ValidationError, match="add up to 100"):
        Shares(base_name="x", base=4, counts={"a": 1, "b": 3}, percent={"a": "25.00", "b": "76.00"})


def test_percent_floor_never_rounds_up_across_a_threshold() -> None:
    assert percent_floor(Fraction(4999, 100_000)) == "4.99"
    assert percent_floor(Fraction(1, 20)) == "5.00"
    assert percent_floor(Fraction(2, 3)) == "66.66"
    assert percent_floor(Fraction(1), places=0) == "100"


def test_fraction_strings_round_trip() -> None:
    assert fraction_str(Fraction(6, 8)) == "3/4"
    assert parse_fraction("3/4") == Fraction(3, 4)
    assert parse_fraction("2") == 2


# --- turnout ---------------------------------------------------------------------


def test_turnout_is_exact_with_a_floored_percent() -> None:
    t = Turnout(registered=3000, voted=1197)
    assert t.fraction == Fraction(399, 1000)
    assert t.percent == "39.90"
    assert t.to_obj() == {
        "registered": 3000,
        "voted": 1197,
        "fraction": "399/1000",
        "percent": "39.90",
    }
    assert Turnout.from_obj(t.to_obj()) == t


def test_turnout_of_nobody_registered_is_undefined_not_zero() -> None:
    t = Turnout(registered=0, voted=0)
    assert t.fraction is None and t.percent is None


def test_turnout_adds_and_flags_impossible_counts() -> None:
    t = Turnout(registered=100, voted=40) + Turnout(registered=50, voted=60)
    assert (t.registered, t.voted) == (150, 100)
    assert Turnout(registered=10, voted=11).problems() == ["11 voted but only 10 are registered"]
    assert Turnout(registered=10, voted=5).problems(ballots=6) == [
        "6 ballots were counted but only 5 voters voted"
    ]


def test_turnout_refuses_negative_counts() -> None:
    with pytest.raises(ValidationError):
        Turnout(registered=-1, voted=0)


def _problems_as_first_written(t: ContestTally, contest: Contest) -> list[str]:
    """ContestTally.problems before it kept each contest's ids (the reference)."""
    out: list[str] = []
    if t.contest_id != contest.id:
        out.append(f"the tally is for contest {t.contest_id}, not {contest.id}")
    for name, n in (("ballots", t.ballots), ("invalid", t.invalid)):
        if n < 0:
            out.append(f"the number of {name} is negative ({n})")
    for label, counts in (
        ("option", t.votes),
        ("candidate", t.preferences),
        ("invalid reason", t.invalid_by_reason),
    ):
        for key, n in counts.items():
            if n < 0:
                out.append(f"{label} {key} has a negative count ({n})")
    for field, label, expected, got in (
        ("votes", "option", [o.id for o in contest.options], t.votes),
        (
            "preferences",
            "candidate",
            [c.id for o in contest.options for c in o.candidates],
            t.preferences,
        ),
    ):
        out += [f"{field} lack {label} {k}" for k in expected if k not in got]
        out += [f"{field} name unknown {label} {k}" for k in got if k not in set(expected)]
    if t.valid + t.invalid != t.ballots:
        out.append(
            f"valid votes ({t.valid}) plus invalid ballots ({t.invalid}) make "
            f"{t.valid + t.invalid}, not the {t.ballots} ballots counted"
        )
    if t.invalid_by_reason and sum(t.invalid_by_reason.values()) != t.invalid:
        out.append(
            f"invalid ballots by reason add up to {sum(t.invalid_by_reason.values())}, "
            f"not {t.invalid}"
        )
    for o in contest.options:
        if o.candidates:
            prefs = sum(t.preferences.get(c.id, 0) for c in o.candidates)
            if prefs > t.votes.get(o.id, 0):
                out.append(
                    f"candidates of party {o.id} have {prefs} preference votes, "
                    f"more than the party's {t.votes.get(o.id, 0)} votes"
                )
    return out


@st.composite
def any_tallies(draw: st.DrawFn) -> ContestTally:
    """A tally of PARLIAMENT with any mistakes: negatives, missing and unknown keys."""
    counts = st.integers(-3, 40)
    option_ids = [o.id for o in PARLIAMENT.options] + ["nobody"]
    candidate_ids = [c.id for o in PARLIAMENT.options for c in o.candidates] + ["ghost"]
    return ContestTally(
        contest_id=draw(st.sampled_from([PARLIAMENT.id, "other"])),
        ballots=draw(counts),
        invalid=draw(counts),
        invalid_by_reason=draw(st.dictionaries(st.sampled_from(["blank", "torn"]), counts)),
        votes={k: draw(counts) for k in option_ids if draw(st.booleans())},
        preferences={k: draw(counts) for k in candidate_ids if draw(st.integers(0, 5))},
    )


@PROPERTY
@given(any_tallies())
def test_problems_are_the_same_sentences_as_first_written(t: ContestTally) -> None:
    for contest in (PARLIAMENT, PARLIAMENT.model_copy()):
        assert t.problems(contest) == _problems_as_first_written(t, contest)
