"""Winner rules for every contest kind, modelled on real Kyrgyz elections.

The vote numbers are modelled on the elections named (rounded, not official
figures) so that every expected result can be checked by hand in the comments.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from election.canonical import canonical_json
from election.definition import AllocationMethod, Contest, Gender, ThresholdBase
from election.outcome import (
    Flag,
    Outcome,
    Status,
    apply_gender_quota,
    contest_outcome,
    rank_candidates,
)
from election.tally import INVALID, ContestTally, TallyError, parse_percent_units
from tests.election.contest_factory import (
    AGAINST_ALL,
    PROPERTY,
    party,
    party_list_contest,
    president_contest,
    referendum_contest,
    single_member_contest,
    tally_of,
)


def outcome_of(
    contest: Contest,
    tally: ContestTally,
    *,
    registered: int | None = None,
    voted: int | None = None,
) -> Outcome:
    """The outcome, checked to serialise canonically and round-trip."""
    voted = tally.ballots if voted is None else voted
    registered = voted * 2 if registered is None else registered
    out = contest_outcome(contest, tally, registered=registered, voted=voted)
    obj = out.to_obj()
    canonical_json(obj)  # no floats anywhere
    assert Outcome.from_obj(obj) == out
    return out


# --- party list: 2021 parliament ----------------------------------------------------

# Nov 2021: 54 seats in one national district, 5% of valid votes (parties + against
# all), Hare, open lists, 30% gender quota; six parties passed.
PASSING_2021 = {
    "ata-jurt": 200_000,
    "ishenim": 150_000,
    "yntymak": 112_000,
    "alliance": 90_000,
    "butun": 74_000,
    "yiman-nuru": 70_000,
}  # 696,000
FAILING_2021 = {
    "reforma": 49_999,  # one vote short of 5%
    "social-dem": 45_000,
    "respublika": 40_000,
    "ata-meken": 35_000,
    "mekenchil": 30_000,
    "emgek": 25_000,
    "meken-yntymagy": 20_000,
    "zamandash": 15_000,
    "uluu-kyrgyzstan": 10_001,
}  # 270,000; against all 34,000; valid votes 1,000,000


def parliament_2021() -> tuple[Contest, ContestTally]:
    lists = {p: "MMF" * 8 for p in PASSING_2021} | {p: "MFM" for p in FAILING_2021}
    contest = party_list_contest(lists, seats=54)
    tally = tally_of(contest, {**PASSING_2021, **FAILING_2021, AGAINST_ALL: 34_000}, invalid=21_000)
    return contest, tally


def test_parliament_2021_six_parties_pass_and_share_54_seats_by_hare() -> None:
    contest, tally = parliament_2021()
    out = outcome_of(contest, tally, registered=3_600_000, voted=1_030_000)
    assert out.status is Status.SEATS_ALLOCATED
    # Hare among the 696,000 votes of passing parties, quota 696,000/54 = 12,888.9:
    # ata-jurt 15.52, ishenim 11.64, yntymak 8.69, alliance 6.98, butun 5.74, yiman 5.43
    # floors 15+11+8+6+5+5 = 50; 4 spare to the largest remainders .98 .74 .69 .64
    assert {p: s for p, s in out.seats.items() if s} == {
        "ata-jurt": 15,
        "ishenim": 12,
        "yntymak": 9,
        "alliance": 7,
        "butun": 6,
        "yiman-nuru": 5,
    }
    assert sum(out.seats.values()) == 54
    assert set(out.seats) == set(PASSING_2021) | set(FAILING_2021)
    assert out.flags == ()
    assert out.seat_ties == ()


def test_parliament_2021_threshold_is_exact_and_on_valid_votes() -> None:
    contest, tally = parliament_2021()
    out = outcome_of(contest, tally)
    checks = {c.subject: c for c in out.checks}
    assert checks["reforma"].base_name == "valid_votes"
    assert checks["reforma"].base == 1_000_000
    assert not checks["reforma"].met
    assert checks["reforma"].percent == "4.99"  # rounded down: shown below the threshold
    assert checks["reforma"].fraction == "49999/1000000"
    assert checks["yiman-nuru"].met and checks["yiman-nuru"].percent == "7.00"
    assert [c.subject for c in out.checks if c.met] == list(PASSING_2021)
    assert out.shares.base_name == "valid_votes"
    assert out.shares.base == 1_000_000
    assert out.shares.percent["ata-jurt"] == "20.00"
    assert out.shares.percent[AGAINST_ALL] == "3.40"
    assert sum(parse_percent_units(p) for p in out.shares.percent.values()) == 10_000


def test_parliament_2021_elects_the_top_of_each_list_with_the_quota_met() -> None:
    contest, tally = parliament_2021()
    out = outcome_of(contest, tally)
    # ata-jurt's 15 seats: list MMF MMF ... top 15 has 5 women >= floor(15 * 0.3) = 4
    assert out.elected["ata-jurt"] == tuple(f"ata-jurt-{i}" for i in range(1, 16))
    assert set(out.elected) == set(PASSING_2021)
    for p, ids in out.elected.items():
        assert len(ids) == out.seats[p]


def test_party_with_exactly_the_threshold_passes() -> None:
    contest = party_list_contest(["a", "b"], seats=20)
    tally = tally_of(contest, {"a": 950, "b": 50})  # b: exactly 5.00%
    out = outcome_of(contest, tally)
    assert [c.met for c in out.checks] == [True, True]
    assert out.seats == {"a": 19, "b": 1}


@pytest.mark.parametrize(
    "base, passing",
    [
        # b 52, c 48 of: valid 1000 (b 5.2%, c 4.8%); party votes 960 (b 5.4%, c 5.0%);
        # ballots 1100 (b 4.7%, c 4.4%)
        (ThresholdBase.VALID_VOTES, ["a", "b"]),
        (ThresholdBase.PARTY_VOTES, ["a", "b", "c"]),
        (ThresholdBase.BALLOTS, ["a"]),
    ],
)
def test_threshold_base_is_the_configured_one(base: ThresholdBase, passing: list[str]) -> None:
    contest = party_list_contest(["a", "b", "c"], seats=20, threshold_base=base)
    tally = tally_of(contest, {"a": 860, "b": 52, "c": 48, AGAINST_ALL: 40}, invalid=100)
    out = outcome_of(contest, tally)
    assert [c.subject for c in out.checks if c.met] == passing
    assert [p for p, s in out.seats.items() if s] == passing
    assert out.shares.base_name == base.value
    assert out.shares.base == {"valid_votes": 1000, "party_votes": 960, "ballots": 1100}[base]
    assert (INVALID in out.shares.counts) == (base is ThresholdBase.BALLOTS)


def test_seats_go_only_to_passing_parties_by_the_configured_method() -> None:
    votes = {"a": 100_000, "b": 80_000, "c": 30_000, "d": 20_000, "e": 5_000}
    for method, expected in [
        (AllocationMethod.DHONDT, {"a": 4, "b": 3, "c": 1, "d": 0, "e": 0}),
        (AllocationMethod.SAINTE_LAGUE, {"a": 3, "b": 3, "c": 1, "d": 1, "e": 0}),
    ]:
        contest = party_list_contest(list(votes), seats=8, method=method, threshold_percent=3)
        out = outcome_of(contest, tally_of(contest, votes))
        assert out.seats == expected  # e has 2.1% < 3%: no seat whatever the method


def test_no_party_passing_gives_no_seats_and_says_so() -> None:
    contest = party_list_contest(["a", "b"], seats=54)
    tally = tally_of(contest, {"a": 20, "b": 20, AGAINST_ALL: 960})
    out = outcome_of(contest, tally)
    assert out.status is Status.NO_PARTY_PASSED
    assert out.seats == {"a": 0, "b": 0}
    assert out.elected == {}
    assert Flag.NO_PARTY_PASSED in out.flags
    assert Flag.AGAINST_ALL_LEADS in out.flags


def test_no_votes_at_all_means_no_party_passed_even_with_a_zero_threshold() -> None:
    contest = party_list_contest(["a", "b"], seats=5, threshold_percent=0)
    out = outcome_of(contest, ContestTally.zero(contest))
    assert out.status is Status.NO_PARTY_PASSED
    assert Flag.NO_VALID_VOTES in out.flags
    assert out.shares.percent == {}


def test_against_all_ahead_of_every_party_is_flagged_but_seats_are_still_allocated() -> None:
    contest = party_list_contest(["a", "b", "c"], seats=10)
    out = outcome_of(contest, tally_of(contest, {"a": 250, "b": 250, "c": 200, AGAINST_ALL: 300}))
    assert out.status is Status.SEATS_ALLOCATED
    assert Flag.AGAINST_ALL_LEADS in out.flags
    assert sum(out.seats.values()) == 10


def test_against_all_level_with_the_top_party_is_not_leading() -> None:
    contest = party_list_contest(["a", "b"], seats=10)
    out = outcome_of(contest, tally_of(contest, {"a": 300, "b": 200, AGAINST_ALL: 300}))
    assert Flag.AGAINST_ALL_LEADS not in out.flags


def test_tie_for_the_last_seat_is_broken_by_ballot_order_and_flagged() -> None:
    contest = party_list_contest(["a", "b", "c"], seats=3)
    # Hare: quota 100; a 1.0, b .5, c .5 -> one spare seat, b and c tie in remainder and votes
    out = outcome_of(contest, tally_of(contest, {"a": 200, "c": 50, "b": 50}))
    assert out.seats == {"a": 2, "b": 1, "c": 0}  # b is before c on the ballot
    assert out.seat_ties == ("b", "c")
    assert Flag.SEAT_TIE_BROKEN_BY_RULE in out.flags


# --- party list: open lists and the gender quota -------------------------------------


def test_open_list_reorders_candidates_by_preference_votes() -> None:
    contest = party_list_contest({"a": "MMMMM"}, seats=3, gender_quota_percent=None)
    prefs = {"a-4": 50, "a-2": 20, "a-5": 20, "a-1": 10}
    out = outcome_of(contest, tally_of(contest, {"a": 200}, preferences=prefs))
    # a-4 (50) first; a-2 and a-5 tie at 20 -> list position: a-2 before a-5
    assert out.elected["a"] == ("a-4", "a-2", "a-5")


def test_closed_list_ignores_preference_votes() -> None:
    contest = party_list_contest(
        {"a": "MMMMM"}, seats=3, open_list=False, gender_quota_percent=None
    )
    out = outcome_of(contest, tally_of(contest, {"a": 200}, preferences={"a-5": 100}))
    assert out.elected["a"] == ("a-1", "a-2", "a-3")


def test_gender_quota_replaces_lowest_ranked_men_with_highest_ranked_women() -> None:
    # 10 seats, 30% -> at least 3 of each gender; the top 10 are all men
    contest = party_list_contest({"a": "MMMMMMMMMMFFFM"}, seats=10)
    out = outcome_of(contest, tally_of(contest, {"a": 1000}))
    assert out.elected["a"] == tuple(f"a-{i}" for i in (1, 2, 3, 4, 5, 6, 7, 11, 12, 13))
    assert out.flags == ()


def test_gender_quota_works_for_men_too() -> None:
    contest = party_list_contest({"a": "FFFFFFFFFFMMMM"}, seats=10)
    out = outcome_of(contest, tally_of(contest, {"a": 1000}))
    assert out.elected["a"] == tuple(f"a-{i}" for i in (1, 2, 3, 4, 5, 6, 7, 11, 12, 13))


def test_gender_quota_applies_after_preference_reordering() -> None:
    # preferences put a-5 (F) and a-1 (M) on top; ranking: a-5 a-1 a-2 a-3 a-4 a-6
    # 4 seats at 30% -> floor(1.2) = 1 woman: a-5 already is one, so no swap
    contest = party_list_contest({"a": "MMMMFF"}, seats=4)
    out = outcome_of(contest, tally_of(contest, {"a": 100}, preferences={"a-5": 40, "a-1": 30}))
    assert out.elected["a"] == ("a-5", "a-1", "a-2", "a-3")
    # 7 seats at 30% -> 2 women needed, but the list has only one (a-8)
    contest = party_list_contest({"a": "MMMMMMMFM", "b": "M"}, seats=7, threshold_percent=0)
    tally = tally_of(contest, {"a": 100}, preferences={"a-8": 10})
    out = outcome_of(contest, tally)
    # ranking: a-8(F) a-1..a-7 a-9; top 7: a-8 a-1..a-6 -> elected as is, flagged short
    assert out.elected["a"] == ("a-8", "a-1", "a-2", "a-3", "a-4", "a-5", "a-6")
    assert Flag.GENDER_QUOTA_SHORT in out.flags


def test_gender_quota_rounds_down() -> None:
    # 3 seats at 30% -> floor(0.9) = 0: no woman is required
    contest = party_list_contest({"a": "MMMF"}, seats=3)
    out = outcome_of(contest, tally_of(contest, {"a": 100}))
    assert out.elected["a"] == ("a-1", "a-2", "a-3")


def test_gender_quota_short_list_elects_all_it_can_and_says_so() -> None:
    contest = party_list_contest({"a": "MMMMMMMMMMMF"}, seats=10)
    out = outcome_of(contest, tally_of(contest, {"a": 1000}))
    assert out.elected["a"] == tuple(f"a-{i}" for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 12))
    assert Flag.GENDER_QUOTA_SHORT in out.flags


def test_party_winning_more_seats_than_candidates_elects_the_whole_list() -> None:
    contest = party_list_contest({"a": "MF", "b": "MFMFMF"}, seats=6, gender_quota_percent=None)
    out = outcome_of(contest, tally_of(contest, {"a": 500, "b": 100}))
    assert out.seats == {"a": 5, "b": 1}
    assert out.elected["a"] == ("a-1", "a-2")
    assert Flag.LIST_TOO_SHORT in out.flags


def test_rank_candidates_breaks_equal_preferences_by_list_position() -> None:
    p = party("p", "MFMF")
    ranked = rank_candidates(p, {"p-3": 5, "p-4": 5})
    assert [c.id for c in ranked] == ["p-3", "p-4", "p-1", "p-2"]


@st.composite
def ranked_lists(draw: st.DrawFn) -> tuple[list, int, int]:
    genders = draw(st.text("MF", min_size=1, max_size=30))
    prefs = draw(st.lists(st.integers(0, 5), min_size=len(genders), max_size=len(genders)))
    p = party("p", genders)
    ranked = rank_candidates(p, {c.id: v for c, v in zip(p.candidates, prefs, strict=True)})
    return ranked, draw(st.integers(0, 40)), draw(st.integers(0, 50))


@PROPERTY
@given(ranked_lists())
def test_gender_quota_is_satisfied_whenever_the_list_allows(case: tuple[list, int, int]) -> None:
    ranked, seats, quota = case
    elected, short = apply_gender_quota(ranked, seats, quota)
    assert len(elected) == min(seats, len(ranked))
    assert len({c.id for c in elected}) == len(elected)
    need = seats * quota // 100
    for g in Gender:
        available = sum(c.gender is g for c in ranked)
        if seats <= len(ranked):
            assert sum(c.gender is g for c in elected) >= min(need, available)
        if available < need:
            assert short
    # nobody is passed over for no reason: an unelected candidate outranks an elected
    # one only when that elected one is of the gender that was short
    position = {c.id: i for i, c in enumerate(ranked)}
    elected_ids = {c.id for c in elected}
    for out in (c for c in ranked if c.id not in elected_ids):
        for inn in elected:
            if position[out.id] < position[inn.id]:
                assert inn.gender is not out.gender


# --- single member -------------------------------------------------------------------


def test_single_member_most_votes_wins() -> None:
    contest = single_member_contest(["asanov", "usenova", "bekov"])
    out = outcome_of(contest, tally_of(contest, {"asanov": 4_210, "usenova": 5_020, "bekov": 900}))
    assert out.status is Status.WINNER
    assert out.winners == ("usenova",)
    assert out.shares.base_name == "valid_votes"


def test_single_member_against_all_ahead_means_repeat_election() -> None:
    contest = single_member_contest(["a", "b"])
    out = outcome_of(contest, tally_of(contest, {"a": 300, "b": 299, AGAINST_ALL: 301}))
    assert out.status is Status.REPEAT_ELECTION
    assert out.winners == ()
    assert Flag.AGAINST_ALL_LEADS in out.flags


def test_single_member_against_all_level_with_the_winner_does_not_cancel() -> None:
    contest = single_member_contest(["a", "b"])
    out = outcome_of(contest, tally_of(contest, {"a": 300, "b": 100, AGAINST_ALL: 300}))
    assert out.status is Status.WINNER and out.winners == ("a",)


def test_single_member_exact_tie_is_reported_not_resolved() -> None:
    contest = single_member_contest(["a", "b", "c"])
    out = outcome_of(contest, tally_of(contest, {"a": 100, "b": 500, "c": 500}))
    assert out.status is Status.TIE
    assert out.winners == ()
    assert set(out.tied) == {"b", "c"}


def test_multi_seat_plurality_tie_for_the_last_seat_keeps_the_sure_winners() -> None:
    contest = single_member_contest(["a", "b", "c", "d"], seats=2)
    out = outcome_of(contest, tally_of(contest, {"a": 900, "b": 400, "c": 400, "d": 100}))
    assert out.status is Status.TIE
    assert out.winners == ("a",)
    assert set(out.tied) == {"b", "c"}
    clear = outcome_of(contest, tally_of(contest, {"a": 900, "b": 400, "c": 300, "d": 300}))
    assert clear.status is Status.WINNER and clear.winners == ("a", "b")


def test_single_member_with_no_votes_is_a_tie_of_everyone() -> None:
    contest = single_member_contest(["a", "b"])
    out = outcome_of(contest, ContestTally.zero(contest))
    assert out.status is Status.TIE
    assert set(out.tied) == {"a", "b"}
    assert Flag.NO_VALID_VOTES in out.flags


# --- president -----------------------------------------------------------------------


def test_president_2021_wins_in_the_first_round() -> None:
    # Jan 2021: one candidate with about 79% of all who voted
    contest = president_contest(["japarov", "madumarov", "masaliev", "other"])
    votes = {"japarov": 1_100_000, "madumarov": 94_000, "masaliev": 60_000, "other": 80_000}
    tally = tally_of(contest, {**votes, AGAINST_ALL: 26_000}, invalid=30_000)
    out = outcome_of(contest, tally, registered=3_500_000, voted=1_400_000)
    assert tally.ballots == 1_390_000
    assert out.status is Status.WINNER
    assert out.winners == ("japarov",)
    check = next(c for c in out.checks if c.subject == "japarov")
    assert (check.base_name, check.base, check.comparison) == ("ballots", 1_390_000, ">")
    assert check.percent == "79.13"
    assert out.shares.base_name == "ballots"
    assert out.shares.counts[INVALID] == 30_000
    assert out.turnout.percent == "40.00"


def test_president_majority_counts_invalid_ballots_in_the_base() -> None:
    contest = president_contest(["a", "b", "c"])
    # a has 500 of 970 valid votes (51.5%) but exactly 50.0% of 1000 ballots: not more than half
    tally = tally_of(contest, {"a": 500, "b": 300, "c": 150, AGAINST_ALL: 20}, invalid=30)
    out = outcome_of(contest, tally)
    assert out.status is Status.RUNOFF
    assert out.runoff == ("a", "b")
    assert out.winners == ()
    won = outcome_of(
        contest, tally_of(contest, {"a": 501, "b": 299, "c": 150, AGAINST_ALL: 20}, invalid=30)
    )
    assert won.status is Status.WINNER and won.winners == ("a",)


def test_president_tie_for_second_place_in_the_runoff_is_reported() -> None:
    contest = president_contest(["a", "b", "c"])
    out = outcome_of(contest, tally_of(contest, {"a": 400, "b": 250, "c": 250}))
    assert out.status is Status.TIE
    assert out.runoff == ("a",)
    assert set(out.tied) == {"b", "c"}


def test_president_tie_at_the_top_of_three_is_reported() -> None:
    contest = president_contest(["a", "b", "c"])
    out = outcome_of(contest, tally_of(contest, {"a": 300, "b": 300, "c": 300}))
    assert out.status is Status.TIE
    assert out.runoff == ()
    assert set(out.tied) == {"a", "b", "c"}


def test_president_two_level_at_the_top_go_to_the_runoff() -> None:
    contest = president_contest(["a", "b", "c"])
    out = outcome_of(contest, tally_of(contest, {"a": 400, "b": 400, "c": 200}))
    assert out.status is Status.RUNOFF
    assert set(out.runoff) == {"a", "b"}


def test_president_against_all_ahead_means_repeat_election() -> None:
    contest = president_contest(["a", "b"])
    out = outcome_of(contest, tally_of(contest, {"a": 300, "b": 200, AGAINST_ALL: 500}))
    assert out.status is Status.REPEAT_ELECTION
    assert Flag.AGAINST_ALL_LEADS in out.flags


def test_president_without_a_second_candidate_to_run_off_against_is_repeated() -> None:
    contest = president_contest(["a", "b"])
    # a has 45% of ballots; with b on the ballot (even at 0 votes) there is a runoff
    tally = tally_of(contest, {"a": 450, "b": 0, AGAINST_ALL: 400}, invalid=150)
    assert outcome_of(contest, tally).status is Status.RUNOFF  # b is still on the ballot
    sole = president_contest(["a"])
    tally = tally_of(sole, {"a": 450, AGAINST_ALL: 400}, invalid=150)
    assert outcome_of(sole, tally).status is Status.REPEAT_ELECTION


def test_president_lower_majority_with_two_above_it_and_level_is_a_tie() -> None:
    contest = president_contest(["a", "b", "c"], majority_percent=40)
    out = outcome_of(contest, tally_of(contest, {"a": 450, "b": 450, "c": 100}))
    assert out.status is Status.TIE and set(out.tied) == {"a", "b"}
    out = outcome_of(contest, tally_of(contest, {"a": 460, "b": 440, "c": 100}))
    assert out.status is Status.WINNER and out.winners == ("a",)


# --- referendum ----------------------------------------------------------------------


def test_referendum_jan_2021_valid_turnout_and_passed() -> None:
    # Jan 2021 form-of-government referendum: turnout about 39%, about 81% for
    contest = referendum_contest()
    tally = tally_of(contest, {"yes": 1_130_000, "no": 190_000}, invalid=70_000)
    out = outcome_of(contest, tally, registered=3_563_000, voted=1_392_000)
    assert out.status is Status.PASSED
    turnout, yes = out.checks
    assert (turnout.rule, turnout.base_name, turnout.met, turnout.percent) == (
        "turnout",
        "registered",
        True,
        "39.06",
    )
    assert (yes.rule, yes.base_name, yes.base, yes.met, yes.percent) == (
        "pass",
        "ballots",
        1_390_000,
        True,
        "81.29",
    )


def test_referendum_low_turnout_is_invalid_and_still_reports_the_vote() -> None:
    contest = referendum_contest()
    tally = tally_of(contest, {"yes": 200, "no": 40}, invalid=10)
    out = outcome_of(contest, tally, registered=1_000, voted=250)
    assert out.status is Status.INVALID_TURNOUT
    turnout, yes = out.checks
    assert not turnout.met and turnout.percent == "25.00"
    assert yes.met  # it would have passed: both are reported
    assert out.shares.percent == {"yes": "80.00", "no": "16.00", INVALID: "4.00"}


def test_referendum_turnout_exactly_at_the_threshold_is_not_enough() -> None:
    contest = referendum_contest()
    tally = tally_of(contest, {"yes": 200, "no": 100})
    assert outcome_of(contest, tally, registered=1_000, voted=300).status is Status.INVALID_TURNOUT
    assert outcome_of(contest, tally, registered=1_000, voted=301).status is Status.PASSED


def test_referendum_fails_without_more_than_half_of_all_ballots() -> None:
    contest = referendum_contest()
    # yes has 500/900 = 55.6% of valid votes but exactly 50% of the 1000 ballots
    tally = tally_of(contest, {"yes": 500, "no": 400}, invalid=100)
    out = outcome_of(contest, tally, registered=2_000, voted=1_000)
    assert out.status is Status.FAILED


def test_referendum_with_nobody_registered_is_invalid() -> None:
    contest = referendum_contest()
    out = outcome_of(contest, ContestTally.zero(contest), registered=0, voted=0)
    assert out.status is Status.INVALID_TURNOUT
    assert out.checks[0].fraction is None
    assert out.turnout.percent is None


# --- common ----------------------------------------------------------------------------


def test_an_inconsistent_tally_is_refused_with_every_problem() -> None:
    contest = president_contest(["a", "b"])
    bad = tally_of(contest, {"a": 5}).model_copy(update={"ballots": 7})
    with pytest.raises(TallyError, match="not the 7 ballots counted"):
        contest_outcome(contest, bad, registered=10, voted=7)


def test_negative_registered_or_voted_is_refused() -> None:
    contest = president_contest(["a", "b"])
    with pytest.raises(ValueError):
        contest_outcome(contest, ContestTally.zero(contest), registered=-1, voted=0)


def test_impossible_turnout_is_flagged_not_hidden() -> None:
    contest = president_contest(["a", "b"])
    tally = tally_of(contest, {"a": 8, "b": 4})
    out = outcome_of(contest, tally, registered=10, voted=11)
    assert Flag.MORE_VOTED_THAN_REGISTERED in out.flags
    assert Flag.MORE_BALLOTS_THAN_VOTERS in out.flags
    assert out.status is Status.WINNER


def test_outcome_json_has_strings_for_every_fraction() -> None:
    contest, tally = parliament_2021()
    obj = outcome_of(contest, tally, registered=3_600_000, voted=1_030_000).to_obj()
    assert obj["status"] == "seats_allocated"
    assert obj["turnout"] == {
        "registered": 3_600_000,
        "voted": 1_030_000,
        "fraction": "103/360",
        "percent": "28.61",
    }
    assert obj["checks"][0]["fraction"] == "1/5"
    assert obj["shares"]["percent"]["ata-jurt"] == "20.00"


# --- properties ------------------------------------------------------------------------

PROPERTY_PARTIES = {"a": "MMFMMF", "b": "FFMM", "c": "MMMMMMMMF", "d": "FMFMFMFM", "e": "M"}


@st.composite
def party_list_cases(draw: st.DrawFn) -> tuple[Contest, ContestTally]:
    contest = party_list_contest(
        PROPERTY_PARTIES,
        seats=draw(st.integers(1, 30)),
        threshold_percent=draw(st.integers(0, 20)),
        threshold_base=draw(st.sampled_from(list(ThresholdBase))),
        method=draw(st.sampled_from(list(AllocationMethod))),
        open_list=draw(st.booleans()),
        gender_quota_percent=draw(st.one_of(st.none(), st.integers(0, 50))),
    )
    return contest, draw(station_tallies(contest))


@st.composite
def station_tallies(draw: st.DrawFn, contest: Contest) -> ContestTally:
    votes = {o.id: draw(st.integers(0, 400)) for o in contest.options}
    prefs: dict[str, int] = {}
    for o in contest.options:
        left = votes[o.id]
        for c in o.candidates:
            prefs[c.id] = draw(st.integers(0, left))
            left -= prefs[c.id]
    return tally_of(contest, votes, invalid=draw(st.integers(0, 30)), preferences=prefs)


@PROPERTY
@given(party_list_cases())
def test_party_list_outcome_gives_every_seat_and_meets_the_quota(
    case: tuple[Contest, ContestTally],
) -> None:
    contest, tally = case
    out = outcome_of(contest, tally)
    rules = contest.rules
    assert sum(parse_percent_units(p) for p in out.shares.percent.values()) in (0, 10_000)
    if out.status is Status.NO_PARTY_PASSED:
        assert not any(out.seats.values())
        return
    assert out.status is Status.SEATS_ALLOCATED
    assert sum(out.seats.values()) == rules.seats  # type: ignore[union-attr]
    passed = {c.subject for c in out.checks if c.met}
    assert {p for p, s in out.seats.items() if s} <= passed
    quota = rules.gender_quota_percent or 0  # type: ignore[union-attr]
    for p, ids in out.elected.items():
        option = contest.option(p)
        by_id = {c.id: c for c in option.candidates}
        assert len(ids) == min(out.seats[p], len(option.candidates))
        if out.seats[p] <= len(option.candidates):
            for g in Gender:
                need = min(
                    out.seats[p] * quota // 100, sum(c.gender is g for c in option.candidates)
                )
                assert sum(by_id[i].gender is g for i in ids) >= need


@st.composite
def contests_and_stations(draw: st.DrawFn) -> tuple[Contest, list[ContestTally]]:
    contest = draw(
        st.sampled_from(
            [
                party_list_contest(PROPERTY_PARTIES, seats=12),
                single_member_contest(["a", "b", "c"]),
                president_contest(["a", "b", "c"]),
                referendum_contest(),
            ]
        )
    )
    return contest, draw(st.lists(station_tallies(contest), min_size=1, max_size=5))


@PROPERTY
@given(contests_and_stations(), st.randoms(use_true_random=False))
def test_outcome_does_not_depend_on_the_order_stations_are_added_up(
    case: tuple[Contest, list[ContestTally]], rnd: random.Random
) -> None:
    contest, stations = case
    national = ContestTally.aggregate(contest, stations)
    shuffled = list(stations)
    rnd.shuffle(shuffled)
    # add in another order and another grouping: (first half) + (second half)
    half = len(shuffled) // 2
    regrouped = ContestTally.aggregate(contest, shuffled[:half]) + ContestTally.aggregate(
        contest, shuffled[half:]
    )
    assert regrouped == national
    registered = 3 * national.ballots + 1
    assert contest_outcome(
        contest, regrouped, registered=registered, voted=national.ballots
    ) == contest_outcome(contest, national, registered=registered, voted=national.ballots)
    assert outcome_of(contest, national).status in set(Status)
