"""Small contests built directly, and tallies that add up by construction (for tests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import settings

from election.definition import (
    AllocationMethod,
    Candidate,
    Contest,
    ContestKind,
    Gender,
    MajorityRules,
    Names,
    Option,
    OptionKind,
    PartyListRules,
    PluralityRules,
    ReferendumRules,
    ThresholdBase,
)
from election.tally import ContestTally

AGAINST_ALL = "against"


def names(s: str) -> Names:
    return Names(ky=s, ru=s)


def party(pid: str, genders: str = "") -> Option:
    """A party whose list has one candidate per letter of `genders` ("FMMF..."),
    with ids like "<pid>-1" in list order."""
    return Option(
        id=pid,
        kind=OptionKind.PARTY,
        name=names(pid),
        candidates=tuple(
            Candidate(id=f"{pid}-{i}", name=names(f"{pid} {i}"), gender=Gender(g), position=i)
            for i, g in enumerate(genders, start=1)
        ),
    )


def against_all() -> Option:
    return Option(id=AGAINST_ALL, kind=OptionKind.AGAINST_ALL, name=names("against all"))


def candidate(cid: str, gender: str = "M") -> Option:
    return Option(id=cid, kind=OptionKind.CANDIDATE, name=names(cid), gender=Gender(gender))


def party_list_contest(
    parties: Mapping[str, str] | Sequence[str],
    *,
    seats: int = 54,
    threshold_percent: int = 5,
    threshold_base: ThresholdBase = ThresholdBase.VALID_VOTES,
    method: AllocationMethod = AllocationMethod.HARE,
    open_list: bool = True,
    gender_quota_percent: int | None = 30,
    with_against_all: bool = True,
) -> Contest:
    """`parties` is ids in ballot order, or {id: genders of its list}."""
    lists = parties if isinstance(parties, Mapping) else {p: "" for p in parties}
    options = [party(p, g) for p, g in lists.items()]
    if with_against_all:
        options.append(against_all())
    return Contest(
        id="parliament",
        kind=ContestKind.PARTY_LIST,
        name=names("parliament"),
        options=tuple(options),
        rules=PartyListRules(
            seats=seats,
            threshold_percent=threshold_percent,
            threshold_base=threshold_base,
            method=method,
            open_list=open_list,
            gender_quota_percent=gender_quota_percent,
        ),
    )


def single_member_contest(
    candidates: Sequence[str], *, seats: int = 1, with_against_all: bool = True
) -> Contest:
    options = [candidate(c) for c in candidates]
    if with_against_all:
        options.append(against_all())
    return Contest(
        id="district-1",
        kind=ContestKind.SINGLE_MEMBER,
        name=names("district 1"),
        district_id="d1",
        options=tuple(options),
        rules=PluralityRules(seats=seats),
    )


def president_contest(
    candidates: Sequence[str], *, majority_percent: int = 50, with_against_all: bool = True
) -> Contest:
    options = [candidate(c) for c in candidates]
    if with_against_all:
        options.append(against_all())
    return Contest(
        id="president",
        kind=ContestKind.PRESIDENT,
        name=names("president"),
        options=tuple(options),
        rules=MajorityRules(majority_percent=majority_percent),
    )


def referendum_contest(*, turnout_threshold_percent: int = 30, pass_percent: int = 50) -> Contest:
    return Contest(
        id="referendum",
        kind=ContestKind.REFERENDUM,
        name=names("referendum"),
        options=(
            Option(id="yes", kind=OptionKind.YES, name=names("yes")),
            Option(id="no", kind=OptionKind.NO, name=names("no")),
        ),
        rules=ReferendumRules(
            turnout_threshold_percent=turnout_threshold_percent, pass_percent=pass_percent
        ),
    )


def tally_of(
    contest: Contest,
    votes: Mapping[str, int],
    *,
    invalid: int = 0,
    preferences: Mapping[str, int] | None = None,
    invalid_by_reason: Mapping[str, int] | None = None,
) -> ContestTally:
    """A consistent tally: options not named get 0, ballots = valid + invalid."""
    zero = ContestTally.zero(contest)
    all_votes = {**zero.votes, **votes}
    return ContestTally(
        contest_id=contest.id,
        ballots=sum(all_votes.values()) + invalid,
        invalid=invalid,
        invalid_by_reason=dict(invalid_by_reason or {}),
        votes=all_votes,
        preferences={**zero.preferences, **(preferences or {})},
    )


# Enough examples to find edge cases, few enough that the directory runs in seconds.
# Per test, not a global profile: other packages' tests keep their own settings.
PROPERTY = settings(max_examples=150, deadline=None)
