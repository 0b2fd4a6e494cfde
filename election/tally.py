"""Counts for one contest, their arithmetic, and shares that always add up.

A `ContestTally` is what a station reports for one contest and also what
central gets by adding station tallies up to a commission, a district, a region
and the nation: `+` is associative, `ContestTally.zero(contest)` is its
identity, so the order in which reports arrive never changes a published
number.  `problems()` lists every broken invariant instead of raising, so
central can show an operator all of what is wrong with a report at once.

Shares are exact `Fraction`s.  Percent strings are rounded by the largest
remainder method so that they always add up to exactly 100 (Nov 2021: the
results site showed party shares adding up to over 150%).  A share is never
shown without its base: `Shares` carries the base's name and value.

Everything serialises to JSON-shaped values with no floats (see
`election.canonical`).  This module is pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import repeat
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StrictInt, model_validator

from election.definition import ID_RE, Contest, Frozen

Id = Annotated[str, Field(pattern=ID_RE)]

INVALID = "_invalid"
"""Key of the invalid ballots in a `Shares` whose base is all ballots.

It cannot collide with an option id: ids start with a letter or digit.
"""

UNSPECIFIED_REASON = "unspecified"
"""Reason given to invalid ballots of a tally that carried no breakdown, when it
is added to one that did, so that the sum's breakdown still adds up."""


class TallyError(ValueError):
    """A tally breaks its invariants; the message lists every problem."""


class ContestTally(Frozen):
    """The counted ballots of one contest at one station or any sum of stations.

    `ballots` is the number of ballot sheets counted in this contest; each gave
    either one valid vote (`votes`) or none (`invalid`: blank, overvote,
    unreadable...), so sum(votes) + invalid == ballots.  `votes` has every
    option of the contest, zeros included.  `preferences` has every candidate
    of every party list (zeros included) and is empty for other contests: on a
    party-list ballot the voter marks one party and may mark one candidate of
    that party.  `invalid_by_reason` is an optional breakdown of `invalid`.

    Construction does not check the arithmetic (a bad report must still be
    representable so it can be shown and refused); call `problems(contest)`.
    Treat the dicts as read-only.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    contest_id: Id
    ballots: StrictInt
    invalid: StrictInt
    invalid_by_reason: dict[Id, StrictInt] = Field(default_factory=dict)
    votes: dict[Id, StrictInt]
    preferences: dict[Id, StrictInt] = Field(default_factory=dict)

    @classmethod
    def zero(cls, contest: Contest) -> ContestTally:
        """The tally of a station before any ballot: every counter present and 0."""
        return cls(
            contest_id=contest.id,
            ballots=0,
            invalid=0,
            votes={o.id: 0 for o in contest.options},
            preferences={c.id: 0 for o in contest.options for c in o.candidates},
        )

    @classmethod
    def aggregate(cls, contest: Contest, tallies: Iterable[ContestTally]) -> ContestTally:
        """The sum of many tallies of one contest (zero if there are none)."""
        total = cls.zero(contest)
        for t in tallies:
            total = total + t
        return total

    def __add__(self, other: object) -> ContestTally:
        """Add two tallies of the same contest (stations up to the nation)."""
        if not isinstance(other, ContestTally):
            return NotImplemented
        if other.contest_id != self.contest_id:
            raise ValueError(
                f"cannot add a tally of contest {other.contest_id} to one of {self.contest_id}"
            )
        if self.invalid_by_reason or other.invalid_by_reason:
            reasons = _add_counts(self._reasons_or_unspecified(), other._reasons_or_unspecified())
        else:
            reasons = {}
        return ContestTally(
            contest_id=self.contest_id,
            ballots=self.ballots + other.ballots,
            invalid=self.invalid + other.invalid,
            invalid_by_reason=reasons,
            votes=_add_counts(self.votes, other.votes),
            preferences=_add_counts(self.preferences, other.preferences),
        )

    def _reasons_or_unspecified(self) -> dict[str, int]:
        if self.invalid_by_reason or self.invalid == 0:
            return dict(self.invalid_by_reason)
        return {UNSPECIFIED_REASON: self.invalid}

    @property
    def valid(self) -> int:
        """Ballots that gave a vote to some option ("against all" included)."""
        return sum(self.votes.values())

    def problems(self, contest: Contest) -> list[str]:
        """Every broken invariant of this tally against its contest, in plain sentences."""
        out: list[str] = []
        if self.contest_id != contest.id:
            out.append(f"the tally is for contest {self.contest_id}, not {contest.id}")
        for name, n in (("ballots", self.ballots), ("invalid", self.invalid)):
            if n < 0:
                out.append(f"the number of {name} is negative ({n})")
        for label, counts in (
            ("option", self.votes),
            ("candidate", self.preferences),
            ("invalid reason", self.invalid_by_reason),
        ):
            if min(counts.values(), default=0) >= 0:
                continue
            for key, n in counts.items():
                if n < 0:
                    out.append(f"{label} {key} has a negative count ({n})")

        ids = _contest_ids(contest)
        out.extend(_key_problems("votes", "option", ids.options, self.votes, ids.option_set))
        out.extend(
            _key_problems(
                "preferences", "candidate", ids.candidates, self.preferences, ids.candidate_set
            )
        )

        if self.valid + self.invalid != self.ballots:
            out.append(
                f"valid votes ({self.valid}) plus invalid ballots ({self.invalid}) make "
                f"{self.valid + self.invalid}, not the {self.ballots} ballots counted"
            )
        if self.invalid_by_reason:
            reasons = sum(self.invalid_by_reason.values())
            if reasons != self.invalid:
                out.append(f"invalid ballots by reason add up to {reasons}, not {self.invalid}")
        get = self.preferences.get
        for option_id, candidate_ids in ids.lists:
            prefs = sum(map(get, candidate_ids, repeat(0, len(candidate_ids))))
            party_votes = self.votes.get(option_id, 0)
            if prefs > party_votes:
                out.append(
                    f"candidates of party {option_id} have {prefs} preference votes, "
                    f"more than the party's {party_votes} votes"
                )
        return out

    def check(self, contest: Contest) -> ContestTally:
        """Return self, or raise `TallyError` listing every problem."""
        problems = self.problems(contest)
        if problems:
            raise TallyError(f"tally of contest {contest.id}: " + "; ".join(problems))
        return self

    def to_obj(self) -> dict[str, Any]:
        """JSON-shaped form (integers only) for canonical bytes, reports and open data."""
        return self.model_dump(mode="json")

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> ContestTally:
        """Parse `to_obj()` output; refuses floats, bools, strings for numbers, unknown keys."""
        return cls.model_validate(obj)


def _add_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


def _key_problems(
    field: str,
    label: str,
    expected: Sequence[str],
    got: Mapping[str, int],
    known: frozenset[str] | None = None,
) -> list[str]:
    out = [f"{field} lack {label} {k}" for k in expected if k not in got]
    known = frozenset(expected) if known is None else known
    out += [f"{field} name unknown {label} {k}" for k in got if k not in known]
    return out


@dataclass(frozen=True)
class _ContestIds:
    options: tuple[str, ...]
    option_set: frozenset[str]
    candidates: tuple[str, ...]
    candidate_set: frozenset[str]
    lists: tuple[tuple[str, tuple[str, ...]], ...]  # each party with candidates, and them


_CONTEST_IDS: dict[int, tuple[Contest, _ContestIds]] = {}


def _contest_ids(contest: Contest) -> _ContestIds:
    """A contest's option and candidate ids, made once per contest (a party list has
    hundreds of candidates and every station's tally is checked against them)."""
    got = _CONTEST_IDS.get(id(contest))
    if got is None or got[0] is not contest:  # the contest is kept, so its id stays its own
        if len(_CONTEST_IDS) >= 4096:
            _CONTEST_IDS.clear()
        options = tuple(o.id for o in contest.options)
        candidates = tuple(c.id for o in contest.options for c in o.candidates)
        lists = tuple(
            (o.id, tuple(c.id for c in o.candidates)) for o in contest.options if o.candidates
        )
        got = (
            contest,
            _ContestIds(options, frozenset(options), candidates, frozenset(candidates), lists),
        )
        _CONTEST_IDS[id(contest)] = got
    return got[1]


# --- fractions and percent strings ---------------------------------------------


def fraction_str(x: Fraction) -> str:
    """An exact fraction as "num/den" (lowest terms), the way it appears in data."""
    return f"{x.numerator}/{x.denominator}"


def parse_fraction(s: str) -> Fraction:
    """Inverse of `fraction_str`."""
    num, _, den = s.partition("/")
    return Fraction(int(num), int(den or "1"))


def _units_str(units: int, places: int) -> str:
    sign = "-" if units < 0 else ""
    units = abs(units)
    if places == 0:
        return f"{sign}{units}"
    whole, frac = divmod(units, 10**places)
    return f"{sign}{whole}.{frac:0{places}d}"


def percent_floor(x: Fraction, places: int = 2) -> str:
    """x as a percent string rounded DOWN, so a shown figure never crosses a threshold
    the exact value did not: 4.999% shows as 4.99, never as a passing 5.00."""
    if places < 0:
        raise ValueError("places must be >= 0")
    scaled = x * 100 * 10**places
    return _units_str(scaled.numerator // scaled.denominator, places)


def shares(counts: Mapping[str, int]) -> dict[str, Fraction]:
    """Each count's exact share of their sum; the shares add up to exactly 1.

    Empty if the sum is 0: there is no share of nothing.
    """
    _check_counts(counts)
    base = sum(counts.values())
    if base == 0:
        return {}
    return {k: Fraction(v, base) for k, v in counts.items()}


def percentages(
    counts: Mapping[str, int], places: int = 2, order: Sequence[str] | None = None
) -> dict[str, str]:
    """Percent strings of each count's share of their sum, adding up to exactly 100.

    Largest remainder method: every share is first rounded down to `places`
    decimals, then the missing hundredths go one each to the largest
    remainders.  Equal remainders go to the larger count, then to the key that
    comes first in `order` (default: sorted keys) -- never to dict order.  So
    each figure is within one unit of the last place of its exact share.
    Empty if the sum is 0.
    """
    _check_counts(counts)
    if places < 0:
        raise ValueError("places must be >= 0")
    base = sum(counts.values())
    if base == 0:
        return {}
    total_units = 100 * 10**places
    floors: dict[str, int] = {}
    remainders: dict[str, int] = {}
    for k, v in counts.items():
        floors[k], remainders[k] = divmod(v * total_units, base)
    rank = _rank(counts, order)
    missing = total_units - sum(floors.values())
    by_remainder = sorted(counts, key=lambda k: (-remainders[k], -counts[k], rank[k]))
    for k in by_remainder[:missing]:
        floors[k] += 1
    return {k: _units_str(floors[k], places) for k in counts}


def _rank(keys: Iterable[str], order: Sequence[str] | None) -> dict[str, tuple[int, str]]:
    """Tie-break rank of each key: its place in `order`, then its id (for keys not in it)."""
    position = {k: i for i, k in enumerate(order or ())}
    return {k: (position.get(k, len(position)), k) for k in keys}


def _check_counts(counts: Mapping[str, int]) -> None:
    for k, v in counts.items():
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"count of {k} must be an integer, not {type(v).__name__}")
        if v < 0:
            raise ValueError(f"count of {k} is negative ({v})")


class Shares(Frozen):
    """Counts with the base their shares are of, and percent strings adding to 100.

    `base_name` says what the base is ("valid_votes", "party_votes",
    "ballots", ...); `base` is the sum of `counts`, so the percentages shown
    are always 100% of a stated base.  Build with `Shares.of`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    base_name: str
    base: StrictInt
    counts: dict[str, StrictInt]
    percent: dict[str, str]

    @classmethod
    def of(
        cls, base_name: str, counts: Mapping[str, int], order: Sequence[str] | None = None
    ) -> Shares:
        return cls(
            base_name=base_name,
            base=sum(counts.values()),
            counts=dict(counts),
            percent=percentages(counts, order=order),
        )

    @model_validator(mode="after")
    def _adds_up(self) -> Shares:
        _check_counts(self.counts)
        if self.base != sum(self.counts.values()):
            raise ValueError(f"base {self.base} is not the sum of the counts")
        if set(self.percent) != (set(self.counts) if self.base else set()):
            raise ValueError("percentages must cover exactly the counts (none if the base is 0)")
        if self.percent and sum(parse_percent_units(p) for p in self.percent.values()) != 10_000:
            raise ValueError("percentages do not add up to 100.00")
        return self

    def fractions(self) -> dict[str, Fraction]:
        return shares(self.counts)

    def to_obj(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def parse_percent_units(p: str) -> int:
    """A two-place percent string as hundredths of a percent ("12.34" -> 1234)."""
    whole, _, frac = p.partition(".")
    if len(frac) != 2:
        raise ValueError(f"{p!r} is not a percent with two decimals")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole)) * 100 + int(frac))


# --- turnout -----------------------------------------------------------------


class Turnout(Frozen):
    """Registered voters and voters who received a ballot, at a station or any sum.

    `voted` comes from identification (voters marked as voted), not from the
    ASU; more voters than registered is possible (voters moved on the day) but
    is flagged by `problems()` so it is never published without an alert.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    registered: StrictInt = Field(ge=0)
    voted: StrictInt = Field(ge=0)

    @property
    def fraction(self) -> Fraction | None:
        """voted / registered exactly; None when nobody is registered."""
        return Fraction(self.voted, self.registered) if self.registered else None

    @property
    def percent(self) -> str | None:
        """Turnout as a percent string, rounded down (never shows a threshold crossed early)."""
        f = self.fraction
        return None if f is None else percent_floor(f)

    def __add__(self, other: object) -> Turnout:
        if not isinstance(other, Turnout):
            return NotImplemented
        return Turnout(
            registered=self.registered + other.registered, voted=self.voted + other.voted
        )

    def problems(self, ballots: int | None = None) -> list[str]:
        """Alerts: more voters than registered, more ballots counted than voters."""
        out: list[str] = []
        if self.voted > self.registered:
            out.append(f"{self.voted} voted but only {self.registered} are registered")
        if ballots is not None and ballots > self.voted:
            out.append(f"{ballots} ballots were counted but only {self.voted} voters voted")
        return out

    def to_obj(self) -> dict[str, Any]:
        """Counts plus the derived figures, for publication (integers and strings only)."""
        f = self.fraction
        return {
            "registered": self.registered,
            "voted": self.voted,
            "fraction": None if f is None else fraction_str(f),
            "percent": self.percent,
        }

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Turnout:
        return cls(registered=obj["registered"], voted=obj["voted"])
