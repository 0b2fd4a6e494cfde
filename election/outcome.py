"""Who won: the outcome of one contest from its (national or district) tally.

One entry point, `contest_outcome`, for every contest kind:

- party list: threshold on the configured base, seats among the parties that
  pass it, candidates reordered by preference votes on an open list, then the
  gender quota;
- single member: most votes; "against all" ahead of everyone -> repeat
  election; an exact tie for the last seat -> "tie" (the law decides, never us);
- president: more than majority_percent of all who voted in the contest
  (invalid ballots included), else a runoff of the top two;
- referendum: valid only if turnout exceeds the threshold; passes with more than
  pass_percent of those who voted in it.

Every rule applied is recorded as a `Check` with its exact count, base and
comparison, so the published outcome says what it was computed from.  All
comparisons are exact integer arithmetic.  The result serialises to JSON-shaped
values without floats.  Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from fractions import Fraction
from typing import Any, Literal

from pydantic import Field

from election.definition import (
    Candidate,
    Contest,
    ContestKind,
    Frozen,
    Gender,
    MajorityRules,
    Option,
    OptionKind,
    PartyListRules,
    PluralityRules,
    ReferendumRules,
    ThresholdBase,
)
from election.seats import allocate_detailed
from election.tally import (
    INVALID,
    ContestTally,
    Shares,
    Turnout,
    fraction_str,
    percent_floor,
)


class Status(StrEnum):
    WINNER = "winner"
    RUNOFF = "runoff"
    REPEAT_ELECTION = "repeat_election"
    TIE = "tie"
    SEATS_ALLOCATED = "seats_allocated"
    NO_PARTY_PASSED = "no_party_passed"
    PASSED = "passed"
    FAILED = "failed"
    INVALID_TURNOUT = "invalid_turnout"


class Flag(StrEnum):
    """Things a person must look at; none of them changes the computed outcome."""

    AGAINST_ALL_LEADS = "against_all_leads"  # more than every party / candidate
    NO_PARTY_PASSED = "no_party_passed"
    NO_VALID_VOTES = "no_valid_votes"
    SEAT_TIE_BROKEN_BY_RULE = "seat_tie_broken_by_rule"  # see seats.py: votes, then ballot order
    LIST_TOO_SHORT = "list_too_short"  # a party won more seats than it has candidates
    GENDER_QUOTA_SHORT = "gender_quota_short"  # a list lacks candidates of one gender
    MORE_VOTED_THAN_REGISTERED = "more_voted_than_registered"
    MORE_BALLOTS_THAN_VOTERS = "more_ballots_than_voters"


class Check(Frozen):
    """One rule applied: is count / base (comparison) threshold_percent %?"""

    rule: str  # "threshold", "majority", "turnout", "pass"
    subject: str  # option id, or "turnout"
    count: int
    base_name: str
    base: int
    fraction: str | None  # "num/den", None when the base is 0
    percent: str | None  # rounded down: never shows a threshold crossed that was not
    comparison: Literal[">", ">="]
    threshold_percent: int
    met: bool


def _check(
    rule: str,
    subject: str,
    count: int,
    base_name: str,
    base: int,
    comparison: Literal[">", ">="],
    threshold_percent: int,
) -> Check:
    lhs, rhs = count * 100, threshold_percent * base
    met = base > 0 and (lhs > rhs if comparison == ">" else lhs >= rhs)
    f = Fraction(count, base) if base else None
    return Check(
        rule=rule,
        subject=subject,
        count=count,
        base_name=base_name,
        base=base,
        fraction=None if f is None else fraction_str(f),
        percent=None if f is None else percent_floor(f),
        comparison=comparison,
        threshold_percent=threshold_percent,
        met=met,
    )


class Outcome(Frozen):
    """The result of one contest.

    winners: option ids that won (single member, president).
    runoff: the pair going to a second round (or the sure part of it on a tie).
    tied: the options tied for the last place that the law must resolve.
    seats / elected: per party (party list); elected candidate ids in rank order.
    shares: the counts the outcome rests on, with their named base.
    """

    contest_id: str
    kind: ContestKind
    status: Status
    winners: tuple[str, ...] = ()
    runoff: tuple[str, ...] = ()
    tied: tuple[str, ...] = ()
    seats: dict[str, int] = Field(default_factory=dict)
    elected: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    seat_ties: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    shares: Shares
    turnout: Turnout
    flags: tuple[Flag, ...] = ()

    def to_obj(self) -> dict[str, Any]:
        obj = self.model_dump(mode="json")
        obj["turnout"] = self.turnout.to_obj()
        return obj

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Outcome:
        data = dict(obj)
        data["turnout"] = Turnout.from_obj(obj["turnout"])
        return cls.model_validate(data)


def contest_outcome(
    contest: Contest, tally: ContestTally, *, registered: int, voted: int
) -> Outcome:
    """The outcome of `contest` from `tally` over an area with `registered` voters
    of whom `voted` received a ballot.  Raises `TallyError` if the tally breaks its
    invariants: a winner computed from inconsistent counts means nothing.
    """
    tally.check(contest)
    if registered < 0 or voted < 0:
        raise ValueError("registered and voted must not be negative")
    turnout = Turnout(registered=registered, voted=voted)
    flags: list[Flag] = []
    if voted > registered:
        flags.append(Flag.MORE_VOTED_THAN_REGISTERED)
    if tally.ballots > voted:
        flags.append(Flag.MORE_BALLOTS_THAN_VOTERS)
    rules = contest.rules
    if isinstance(rules, PartyListRules):
        return _party_list(contest, rules, tally, turnout, flags)
    if isinstance(rules, PluralityRules):
        return _plurality(contest, rules, tally, turnout, flags)
    if isinstance(rules, MajorityRules):
        return _majority(contest, rules, tally, turnout, flags)
    if isinstance(rules, ReferendumRules):
        return _referendum(contest, rules, tally, turnout, flags)
    raise TypeError(f"contest {contest.id} has rules of unknown kind")  # pragma: no cover


def _make(
    contest: Contest,
    status: Status,
    shares: Shares,
    turnout: Turnout,
    flags: list[Flag],
    **fields: Any,
) -> Outcome:
    return Outcome(
        contest_id=contest.id,
        kind=contest.kind,
        status=status,
        shares=shares,
        turnout=turnout,
        flags=tuple(flags),
        **fields,
    )


def _order(contest: Contest) -> list[str]:
    return [o.id for o in contest.options]


def _against_all_leads(contest: Contest, tally: ContestTally, kind: OptionKind) -> bool:
    """True if "against all" has more votes than every option of `kind`."""
    aa = contest.against_all
    if aa is None:
        return False
    others = [tally.votes[o.id] for o in contest.options if o.kind is kind]
    return tally.votes[aa.id] > max(others, default=0)


def _with_invalid(tally: ContestTally) -> dict[str, int]:
    return {**tally.votes, INVALID: tally.invalid}


# --- party list ----------------------------------------------------------------


def _party_list(
    contest: Contest,
    rules: PartyListRules,
    tally: ContestTally,
    turnout: Turnout,
    flags: list[Flag],
) -> Outcome:
    parties = [o for o in contest.options if o.kind is OptionKind.PARTY]
    order = _order(contest)
    if rules.threshold_base is ThresholdBase.PARTY_VOTES:
        counts = {o.id: tally.votes[o.id] for o in parties}
    elif rules.threshold_base is ThresholdBase.VALID_VOTES:
        counts = dict(tally.votes)
    else:
        counts = _with_invalid(tally)
    shares = Shares.of(rules.threshold_base.value, counts, order=order)
    checks = tuple(
        _check(
            "threshold",
            o.id,
            tally.votes[o.id],
            shares.base_name,
            shares.base,
            ">=",
            rules.threshold_percent,
        )
        for o in parties
    )
    passing = [c.subject for c in checks if c.met and c.count > 0]
    if _against_all_leads(contest, tally, OptionKind.PARTY):
        flags.append(Flag.AGAINST_ALL_LEADS)
    if tally.valid == 0:
        flags.append(Flag.NO_VALID_VOTES)
    if not passing:
        flags.append(Flag.NO_PARTY_PASSED)
        return _make(
            contest,
            Status.NO_PARTY_PASSED,
            shares,
            turnout,
            flags,
            seats={o.id: 0 for o in parties},
            checks=checks,
        )
    alloc = allocate_detailed(
        {p: tally.votes[p] for p in passing}, rules.seats, rules.method, order=order
    )
    if alloc.tied:
        flags.append(Flag.SEAT_TIE_BROKEN_BY_RULE)
    seats = {o.id: alloc.seats.get(o.id, 0) for o in parties}
    elected: dict[str, tuple[str, ...]] = {}
    for party in parties:
        won = seats[party.id]
        if won == 0:
            continue
        if won > len(party.candidates) and Flag.LIST_TOO_SHORT not in flags:
            flags.append(Flag.LIST_TOO_SHORT)
        ranked = rank_candidates(party, tally.preferences if rules.open_list else {})
        chosen, short = apply_gender_quota(ranked, won, rules.gender_quota_percent)
        if short and Flag.GENDER_QUOTA_SHORT not in flags:
            flags.append(Flag.GENDER_QUOTA_SHORT)
        elected[party.id] = tuple(c.id for c in chosen)
    return _make(
        contest,
        Status.SEATS_ALLOCATED,
        shares,
        turnout,
        flags,
        seats=seats,
        elected=elected,
        seat_ties=alloc.tied,
        checks=checks,
    )


def rank_candidates(party: Option, preferences: Mapping[str, int]) -> list[Candidate]:
    """The party's list in the order seats are filled: more preference votes first,
    equal preference votes by list position.  With no preferences (closed list)
    this is simply list order."""
    return sorted(party.candidates, key=lambda c: (-preferences.get(c.id, 0), c.position))


def apply_gender_quota(
    ranked: Sequence[Candidate], seats_won: int, quota_percent: int | None
) -> tuple[list[Candidate], bool]:
    """The elected candidates (in rank order) of a party that won `seats_won` seats.

    The top `seats_won` of `ranked` are elected; then each gender must hold at
    least floor(seats_won * quota_percent / 100) of them, as far as the list
    has candidates of that gender.  While a gender is short, the lowest-ranked
    elected candidate of the other gender gives way to the highest-ranked
    unelected candidate of the short gender.  Because quota_percent <= 50, at
    most one gender is ever short and fixing it cannot make the other short.
    Returns the elected and whether the list had too few of a gender to meet the
    quota.
    """
    n = min(seats_won, len(ranked))
    elected = list(ranked[:n])
    waiting = list(ranked[n:])
    if not quota_percent:
        return elected, False
    need = seats_won * quota_percent // 100
    short = False
    for gender in (Gender.FEMALE, Gender.MALE):
        available = sum(c.gender is gender for c in ranked)
        target = min(need, available)
        short = short or available < need
        while sum(c.gender is gender for c in elected) < target:
            out = next(c for c in reversed(elected) if c.gender is not gender)
            inn = next(c for c in waiting if c.gender is gender)
            elected.remove(out)
            waiting.remove(inn)
            waiting.append(out)
            elected.append(inn)
    position = {c.id: i for i, c in enumerate(ranked)}
    elected.sort(key=lambda c: position[c.id])
    return elected, short


# --- single member -----------------------------------------------------------


def _ranked_options(contest: Contest, tally: ContestTally, kind: OptionKind) -> list[str]:
    """Options of `kind` by votes, most first; equal votes in ballot order (for display
    only: every rule below treats equal votes as a tie)."""
    ids = [o.id for o in contest.options if o.kind is kind]
    return sorted(ids, key=lambda i: -tally.votes[i])


def _cut(ranked: list[str], votes: Mapping[str, int], k: int) -> tuple[list[str], list[str]]:
    """Split the top `k` of `ranked` into (sure, tied): `tied` are all options with the
    k-th option's votes when that tie straddles the cut, else empty."""
    if k >= len(ranked):
        return list(ranked), []
    at_cut = votes[ranked[k - 1]]
    if votes[ranked[k]] != at_cut:
        return ranked[:k], []
    sure = [i for i in ranked if votes[i] > at_cut]
    return sure, [i for i in ranked if votes[i] == at_cut]


def _plurality(
    contest: Contest,
    rules: PluralityRules,
    tally: ContestTally,
    turnout: Turnout,
    flags: list[Flag],
) -> Outcome:
    shares = Shares.of("valid_votes", tally.votes, order=_order(contest))
    if tally.valid == 0:
        flags.append(Flag.NO_VALID_VOTES)
    if _against_all_leads(contest, tally, OptionKind.CANDIDATE):
        flags.append(Flag.AGAINST_ALL_LEADS)
        return _make(contest, Status.REPEAT_ELECTION, shares, turnout, flags)
    ranked = _ranked_options(contest, tally, OptionKind.CANDIDATE)
    sure, tied = _cut(ranked, tally.votes, rules.seats)
    status = Status.TIE if tied else Status.WINNER
    return _make(contest, status, shares, turnout, flags, winners=tuple(sure), tied=tuple(tied))


# --- president ---------------------------------------------------------------


def _majority(
    contest: Contest,
    rules: MajorityRules,
    tally: ContestTally,
    turnout: Turnout,
    flags: list[Flag],
) -> Outcome:
    shares = Shares.of("ballots", _with_invalid(tally), order=_order(contest))
    candidates = [o.id for o in contest.options if o.kind is OptionKind.CANDIDATE]
    checks = tuple(
        _check("majority", c, tally.votes[c], "ballots", tally.ballots, ">", rules.majority_percent)
        for c in candidates
    )
    if tally.valid == 0:
        flags.append(Flag.NO_VALID_VOTES)
    if _against_all_leads(contest, tally, OptionKind.CANDIDATE):
        flags.append(Flag.AGAINST_ALL_LEADS)
        return _make(contest, Status.REPEAT_ELECTION, shares, turnout, flags, checks=checks)
    ranked = _ranked_options(contest, tally, OptionKind.CANDIDATE)
    majority = [c.subject for c in checks if c.met]
    if majority:
        # with majority_percent < 50 several may pass: the most votes wins, a tie is a tie
        sure, tied = _cut([c for c in ranked if c in majority], tally.votes, 1)
        status = Status.TIE if tied else Status.WINNER
        return _make(
            contest,
            status,
            shares,
            turnout,
            flags,
            winners=tuple(sure),
            tied=tuple(tied),
            checks=checks,
        )
    if len(ranked) < 2:
        # a sole candidate without a majority: there is no one to run off against
        return _make(contest, Status.REPEAT_ELECTION, shares, turnout, flags, checks=checks)
    sure, tied = _cut(ranked, tally.votes, 2)
    status = Status.TIE if tied else Status.RUNOFF
    return _make(
        contest,
        status,
        shares,
        turnout,
        flags,
        runoff=tuple(sure),
        tied=tuple(tied),
        checks=checks,
    )


# --- referendum ----------------------------------------------------------------


def _referendum(
    contest: Contest,
    rules: ReferendumRules,
    tally: ContestTally,
    turnout: Turnout,
    flags: list[Flag],
) -> Outcome:
    yes = next(o.id for o in contest.options if o.kind is OptionKind.YES)
    turnout_check = _check(
        "turnout",
        "turnout",
        turnout.voted,
        "registered",
        turnout.registered,
        ">",
        rules.turnout_threshold_percent,
    )
    pass_check = _check(
        "pass", yes, tally.votes[yes], "ballots", tally.ballots, ">", rules.pass_percent
    )
    if tally.valid == 0:
        flags.append(Flag.NO_VALID_VOTES)
    if not turnout_check.met:
        status = Status.INVALID_TURNOUT
    else:
        status = Status.PASSED if pass_check.met else Status.FAILED
    shares = Shares.of("ballots", _with_invalid(tally), order=_order(contest))
    return _make(contest, status, shares, turnout, flags, checks=(turnout_check, pass_check))
