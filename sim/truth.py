"""What happens at one polling station on election day, decided in advance from a seed.

The fast station (`sim.fast_station`) replays a `Truth` through the real
station code; the counts computed here, independently of the station, are what
the station's signed reports must show (`Truth.tallies`,
`Truth.identification_counts`, `Truth.returns`).  So a simulated day is also
an end-to-end check: any disagreement is a bug in one of the two.

Everything is a pure function of (definition, station, roll, seed, mix): string
seeds into `random.Random` (stable across runs and platforms), no clock, no
set ordering.  Preferences are national, tilted by region and jittered by
station (`Popularity`), so the regional map is not uniform and every station
of one seed shares the same national picture whatever order stations are made in.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import json
import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import accumulate
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from devices.combo_reader import Card
from election import bundle as B
from election.definition import (
    Contest,
    ContestKind,
    ElectionDefinition,
    Gender,
    Option,
    OptionKind,
)
from election.pin import make_pin
from election.tally import ContestTally
from station.identify import AdmissionReason, RefusalReason

# Voters arriving per hour of the day (local), relative: a morning peak, a lunch dip and an
# after-work bump, as turnout-by-hour reports of past Kyrgyz elections look.
HOURLY_ARRIVALS: dict[int, float] = {
    8: 6, 9: 10, 10: 12, 11: 11, 12: 9, 13: 7, 14: 7, 15: 8, 16: 8, 17: 9, 18: 8, 19: 5,
}  # fmt: skip
OTHER_HOUR = 6.0  # for hours outside the table (polls open at other times)
ELDERLY_AGE = 70  # faces of the elderly fail to match more often (DESIGN: must still vote)


@dataclass(frozen=True)
class Mix:
    """How often each path is taken.  The defaults are plausible; tests raise them to cover
    every path at a 25-voter station."""

    face_retry: float = 0.05  # enrolled voters who need another frame before a match
    face_failed: float = 0.012  # three non-matches: the commission decides (x3 when elderly)
    declined: float = 0.08  # of those, the share the commission does not admit
    camera_fault: float = 0.003  # no frame at all: admitted by document
    not_on_roll: float = 0.004  # attempts per voter who votes
    elsewhere: float = 0.006  # voters of another station who came here (needs `elsewhere`)
    already_voted: float = 0.002  # second attempts per voter who votes
    mobile: float = 0.85  # voters on the mobile-box list who vote at home, of those who vote
    blank: float = 0.008  # per sheet, cast as is after the box gave it back
    overvote: float = 0.012  # per sheet, likewise
    spoiled: float = 0.005  # per sheet: first overvoted, given back, replaced by a new ballot
    not_cast: float = 0.002  # per sheet the voter took away instead of casting
    preference: float = 0.4  # party-list votes that also mark one candidate of the party
    against_all: float = 0.02  # national share of "against all" before regional tilt


# --- the roll ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RollVoter:
    """One row of a station's roll, as much as the desk and the truth need."""

    pin: str = field(repr=False)  # like devices.combo_reader.Card: no PIN in a repr
    last_name: str
    first_name: str
    patronymic: str
    birth_date: dt.date
    gender: str
    document_no: str
    enrolled: bool  # has a face template: the desk asks for a face
    home_vote: bool  # on the mobile-box list

    @property
    def card(self) -> Card:
        """The ID card the voter brings (what the combo reader reads from its chip)."""
        return Card(
            self.pin,
            self.document_no,
            self.last_name,
            self.first_name,
            self.patronymic,
            self.birth_date,
        )

    def age(self, on: dt.date) -> int:
        b = self.birth_date
        return on.year - b.year - ((on.month, on.day) < (b.month, b.day))


def read_roll(bundle_dir: Path) -> tuple[RollVoter, ...]:
    """The roll slice of a station bundle (the same file the appliance loads)."""
    out = []
    with (bundle_dir / B.ROLL_FILE).open("rb") as f:
        for line in f:
            v = json.loads(line)
            out.append(
                RollVoter(
                    pin=v["pin"],
                    last_name=v["last_name"],
                    first_name=v["first_name"],
                    patronymic=v.get("patronymic") or "",
                    birth_date=dt.date.fromisoformat(v["birth_date"]),
                    gender=v["gender"],
                    document_no=v["document_no"],
                    enrolled=v["biometrics"] == "enrolled" and bool(v.get("template")),
                    home_vote=bool(v["home_vote"]),
                )
            )
    return tuple(out)


# --- what happens -----------------------------------------------------------------------


class How(StrEnum):
    """How a visit to the desk ends."""

    FACE = "face"  # identified by face (perhaps after failed frames)
    DOCUMENT = "document"  # admitted by the commission, with a reason
    MOBILE = "mobile"  # voted at home; the chair marks them when the box returns
    DECLINED = "declined"  # faces failed and the commission did not admit
    NOT_ON_ROLL = "not_on_roll"
    ELSEWHERE = "registered_elsewhere"
    ALREADY_VOTED = "already_voted"


VOTING = frozenset({How.FACE, How.DOCUMENT, How.MOBILE})
REFUSED: dict[How, RefusalReason] = {
    How.NOT_ON_ROLL: RefusalReason.NOT_ON_ROLL,
    How.ELSEWHERE: RefusalReason.REGISTERED_ELSEWHERE,
    How.ALREADY_VOTED: RefusalReason.ALREADY_VOTED,
    How.DECLINED: RefusalReason.NOT_ADMITTED,
}


@dataclass(frozen=True, slots=True)
class FaceTry:
    """The recorded outcome of one camera frame (a station.identify.FaceOutcome)."""

    status: str  # match | no_match | no_face | multiple_faces
    distance: float | None


@dataclass(frozen=True, slots=True)
class Mark:
    """What the reader makes of one contest on a sheet."""

    contest_id: str
    status: str  # valid | blank | overvote
    option_id: str | None = None
    candidate_id: str | None = None


@dataclass(frozen=True, slots=True)
class Sheet:
    """One contest's ballot sheet as finally cast, and the sheet it replaced, if any."""

    mark: Mark
    spoiled: Mark | None = None  # given back by the box; the voter took a new ballot


@dataclass(frozen=True, slots=True)
class Visit:
    """One person at the desk (or one mobile-box voter), all at the instant `at`."""

    at: dt.datetime
    how: How
    pin: str = field(repr=False)
    card: Card | None  # None for the mobile box: the chair marks from the list
    faces: tuple[FaceTry, ...] = ()
    camera_fault: bool = False
    reason: AdmissionReason | None = None
    sheets: tuple[Sheet, ...] = ()
    # The ballot box (ASU) had failed: the sheets went unchecked into the spare ordinary box
    # and are scanned later, in the deferred batch (`with_box_failure`).
    spare_box: bool = False

    @property
    def votes(self) -> bool:
        return self.how in VOTING


@dataclass(frozen=True)
class Truth:
    """One station's day.  `visits` are in time order; all fall within polling hours."""

    definition: ElectionDefinition = field(repr=False)
    station_id: str
    seed: int
    registered: int
    mobile_list: int
    turnout: float
    visits: tuple[Visit, ...] = field(repr=False)

    @property
    def contests(self) -> tuple[Contest, ...]:
        return self.definition.contests_for_station(self.station_id)

    @property
    def voted(self) -> int:
        """Voters identified (face, document or mobile box): the report's `voted`."""
        return sum(v.votes for v in self.visits)

    def voted_before(self, at: dt.datetime) -> int:
        """Voters marked before `at` (what a turnout snapshot signed at `at` says)."""
        return sum(v.votes for v in self.visits if v.at < at)

    def sheets(self) -> int:
        """Sheets counted by the box (spoiled ones are given back, not counted)."""
        return sum(len(v.sheets) for v in self.visits if v.votes)

    def deferred_sheets(self) -> int:
        """Sheets of the spare ordinary box, counted in the deferred batch (also in `sheets`)."""
        return sum(len(v.sheets) for v in self.visits if v.votes and v.spare_box)

    def deferred_tallies(self) -> dict[str, ContestTally]:
        """The deferred batch's count per contest (the report's `deferred_tallies`)."""
        return self.tallies(deferred=True)

    def tallies(self, *, deferred: bool = False) -> dict[str, ContestTally]:
        """The expected ASU count per contest, computed from the marks alone (every sheet,
        both batches; `deferred`: only the spare box's, scanned in the deferred batch)."""
        out: dict[str, ContestTally] = {}
        for contest in self.contests:
            votes = dict.fromkeys((o.id for o in contest.options), 0)
            prefs = dict.fromkeys((c.id for o in contest.options for c in o.candidates), 0)
            invalid: Counter[str] = Counter()
            ballots = 0
            for mark in self._marks(contest.id, deferred=deferred):
                ballots += 1
                if mark.status == "valid" and mark.option_id is not None:
                    votes[mark.option_id] += 1
                    if mark.candidate_id:
                        prefs[mark.candidate_id] += 1
                else:
                    invalid[mark.status] += 1
            out[contest.id] = ContestTally(
                contest_id=contest.id,
                ballots=ballots,
                invalid=sum(invalid.values()),
                invalid_by_reason=dict(sorted(invalid.items())),
                votes=votes,
                preferences=prefs,
            )
        return out

    def returns(self) -> dict[str, int]:
        """Sheets the box gives back, by reason, under the default policy (every flaw returned):
        each spoiled sheet, and each flawed sheet before the voter casts it as is."""
        n: Counter[str] = Counter()
        for v in self.visits:
            if not v.votes:
                continue
            for s in v.sheets:
                if s.spoiled is not None:
                    n[s.spoiled.status] += 1
                if s.mark.status != "valid":
                    n[s.mark.status] += 1
        return dict(sorted(n.items()))

    def identification_counts(self) -> dict[str, Any]:
        """The expected counters of the final identification report (station.reports)."""
        by_reason = dict.fromkeys((r.value for r in AdmissionReason), 0)
        refused = dict.fromkeys((r.value for r in RefusalReason), 0)
        methods: Counter[str] = Counter()
        by_hour: Counter[str] = Counter()
        for v in self.visits:
            if v.votes:
                methods[v.how.value] += 1
                by_hour[f"{v.at.hour:02d}"] += 1
                if v.reason is not None:
                    by_reason[v.reason.value] += 1
            else:
                refused[REFUSED[v.how].value] += 1
        return {
            "registered": self.registered,
            "voted": self.voted,
            "identified_by_face": methods["face"],
            "admitted_by_document": methods["document"],
            "admitted_by_document_by_reason": by_reason,
            "mobile_box": methods["mobile"],
            "awaiting_confirmation": 0,
            "cancelled": 0,
            "refused": refused,
            "by_hour": dict(sorted(by_hour.items())),
            "mobile_list": self.mobile_list,
        }

    def _marks(self, contest_id: str, *, deferred: bool = False) -> Iterable[Mark]:
        for v in self.visits:
            if v.votes and (v.spare_box or not deferred):
                for s in v.sheets:
                    if s.mark.contest_id == contest_id:
                        yield s.mark


# --- preferences ------------------------------------------------------------------------


class Popularity:
    """What the electorate prefers: a national picture, tilted by region, jittered by station.

    Parties and candidates get Zipf-like national shares (a few big, many under
    the 5% threshold), each region multiplies them by its own log-normal factor,
    each station by a small one.  Share one instance across the stations of a
    simulation: it caches the national and regional parts.
    """

    def __init__(self, definition: ElectionDefinition, seed: int, mix: Mix | None = None) -> None:
        self.definition = definition
        self.seed = seed
        self.mix = mix or Mix()
        self._prefix = f"shailoo-sim/{seed}/{definition.election_hash[:16]}"
        self._national: dict[str, list[float]] = {}
        self._regional: dict[tuple[str, str], list[float]] = {}
        self._candidates: dict[tuple[str, str], list[float]] = {}

    def region_of(self, station_id: str) -> str:
        return self.definition.station_district(station_id).region_id

    def turnout(self, station_id: str) -> float:
        """Seeded station turnout: a national level, a regional tilt, station noise."""
        national = random.Random(f"{self._prefix}/turnout").uniform(0.38, 0.6)
        region = random.Random(f"{self._prefix}/turnout/{self.region_of(station_id)}")
        station = random.Random(f"{self._prefix}/turnout/station/{station_id}")
        t = national + region.gauss(0, 0.07) + station.gauss(0, 0.05)
        return min(0.9, max(0.12, t))

    def option_weights(self, contest: Contest, station_id: str) -> list[float]:
        """Relative chance of each option of `contest` (in its order) for a voter here."""
        region = self.region_of(station_id)
        key = (contest.id, region)
        if key not in self._regional:
            rng = random.Random(f"{self._prefix}/{contest.id}/region/{region}")
            if contest.kind is ContestKind.REFERENDUM:
                tilt = [_yes_no_tilt(o, rng.gauss(0, 0.35)) for o in contest.options]
            else:
                tilt = [math.exp(rng.gauss(0, 0.6)) for _ in contest.options]
            self._regional[key] = [
                n * t for n, t in zip(self._national_weights(contest), tilt, strict=True)
            ]
        jitter = random.Random(f"{self._prefix}/{contest.id}/station/{station_id}")
        return [w * math.exp(jitter.gauss(0, 0.12)) for w in self._regional[key]]

    def candidate_weights(self, contest: Contest, party: Option) -> list[float]:
        """Relative chance of each of a party's candidates to get a preference vote:
        the top of the list draws most, and one seeded candidate is a local star."""
        key = (contest.id, party.id)
        if key not in self._candidates:
            rng = random.Random(f"{self._prefix}/{contest.id}/{party.id}/candidates")
            star = rng.randrange(len(party.candidates)) if party.candidates else -1
            self._candidates[key] = [
                (4.0 if i == star else 1.0) / c.position**0.8
                for i, c in enumerate(party.candidates)
            ]
        return self._candidates[key]

    def _national_weights(self, contest: Contest) -> list[float]:
        if contest.id in self._national:
            return self._national[contest.id]
        rng = random.Random(f"{self._prefix}/{contest.id}/national")
        options = contest.options
        if contest.kind is ContestKind.REFERENDUM:
            yes = min(0.85, max(0.35, rng.gauss(0.62, 0.1)))
            weights = [yes if o.kind is OptionKind.YES else 1 - yes for o in options]
        else:
            # party lists fragment (2021: the largest party had 17%); presidents less so
            steep = {ContestKind.PARTY_LIST: 0.7, ContestKind.PRESIDENT: 1.4}.get(contest.kind, 1.0)
            spread = 0.25 if contest.kind is ContestKind.PARTY_LIST else 0.5
            real = [i for i, o in enumerate(options) if o.kind is not OptionKind.AGAINST_ALL]
            order = real[:]
            rng.shuffle(order)  # who is big is seeded, not the ballot order
            weights = [0.0] * len(options)
            for rank, i in enumerate(order):
                weights[i] = math.exp(rng.gauss(0, spread)) / (rank + 1) ** steep
            total = sum(weights)
            aa = self.mix.against_all
            for i, o in enumerate(options):
                if o.kind is OptionKind.AGAINST_ALL:
                    weights[i] = total * aa / (1 - aa) if aa < 1 else total
        self._national[contest.id] = weights
        return weights


def _yes_no_tilt(option: Option, z: float) -> float:
    return math.exp(z if option.kind is OptionKind.YES else -z)


# --- making a day -----------------------------------------------------------------------


def make_truth(
    definition: ElectionDefinition,
    station_id: str,
    roll: Sequence[RollVoter],
    *,
    seed: int,
    turnout: float | None = None,
    mix: Mix | None = None,
    elsewhere: Sequence[RollVoter] = (),
    popularity: Popularity | None = None,
) -> Truth:
    """Decide the day at `station_id`: who comes when, how each is identified, what each marks.

    `turnout` is the share of the roll that votes (seeded by region and station
    if None).  `elsewhere` are voters of other stations of the same election,
    some of whom come here by mistake.  Pass one `popularity` to many stations.
    """
    mix = mix or Mix()
    if turnout is not None and not 0 <= turnout <= 1:
        raise ValueError(f"turnout is a share of the roll, 0..1, not {turnout}")
    if popularity is None:
        popularity = Popularity(definition, seed, mix)
    elif popularity.definition != definition or popularity.seed != seed:
        raise ValueError("the popularity model is of another election or seed")
    station = definition.station(station_id)
    contests = definition.contests_for_station(station_id)
    rng = random.Random(f"shailoo-sim/{seed}/{definition.election_hash[:16]}/day/{station.id}")
    day = _Day(definition, rng)
    if turnout is None:
        turnout = popularity.turnout(station_id)

    ballot = _Ballot(contests, station_id, popularity, mix, rng)
    coming = rng.sample(range(len(roll)), round(turnout * len(roll)))
    coming.sort()  # rng.sample's order is random; the roll's is stable
    visits: list[Visit] = []
    mobile_return = day.mobile_return()
    mobile_at = 0
    for i in coming:
        voter = roll[i]
        if voter.home_vote and rng.random() < mix.mobile:
            at = mobile_return + dt.timedelta(seconds=mobile_at)
            mobile_at += 1
            visits.append(Visit(at, How.MOBILE, voter.pin, None, sheets=ballot.sheets()))
            continue
        visits.append(_desk_visit(day.arrival(), voter, definition.date, mix, rng, ballot))

    voters = [v for v in visits if v.votes]
    for _ in range(_count(mix.already_voted * len(voters), rng)):
        first = rng.choice(voters)
        again = day.after(first.at, minutes=rng.uniform(10, 240))
        if again is None:
            continue
        # a mobile-box voter may come in person after all: the card is the roll's
        card = first.card or next(r.card for r in roll if r.pin == first.pin)
        visits.append(Visit(again, How.ALREADY_VOTED, first.pin, card))
    for _ in range(_count(mix.not_on_roll * len(voters), rng)):
        card = _minor_card(definition.date, rng, roll)
        visits.append(Visit(day.arrival(), How.NOT_ON_ROLL, card.pin, card))
    if elsewhere:
        for _ in range(_count(mix.elsewhere * len(voters), rng)):
            other = rng.choice(elsewhere)
            visits.append(Visit(day.arrival(), How.ELSEWHERE, other.pin, other.card))

    order = sorted(range(len(visits)), key=lambda k: (visits[k].at, k))
    return Truth(
        definition=definition,
        station_id=station_id,
        seed=seed,
        registered=len(roll),
        mobile_list=sum(v.home_vote for v in roll),
        turnout=turnout,
        visits=tuple(visits[k] for k in order),
    )


def with_box_failure(truth: Truth, failed: dt.datetime, back: dt.datetime | None) -> Truth:
    """The same day at a station whose ballot box (ASU) failed at `failed` and was back (a
    spare ASU) at `back` (None: only at the close).

    The voters in between are identified at the desk as ever, but cast their sheets into
    the spare ordinary box: unchecked, so none is given back as spoiled and replaced (the
    voter's final mark goes in), and kept sealed until the commission scans them in the
    deferred batch (`Visit.spare_box`).  Every sheet and mark stays the same, so `tallies()`
    does not change; `deferred_tallies()` is the part the spare box held.  The mobile box
    has no voter at a desk and its own box: it is not the spare box."""
    if back is not None and back <= failed:
        raise ValueError("the box comes back after it failed")

    def down(v: Visit) -> bool:
        during = failed <= v.at and (back is None or v.at < back)
        return during and v.votes and v.how is not How.MOBILE

    visits = tuple(
        dataclasses.replace(v, spare_box=True, sheets=tuple(Sheet(s.mark) for s in v.sheets))
        if down(v)
        else v
        for v in truth.visits
    )
    return dataclasses.replace(truth, visits=visits)


class _Day:
    """Times within polling hours, by the daily curve, to the second."""

    def __init__(self, definition: ElectionDefinition, rng: random.Random) -> None:
        tz = ZoneInfo(definition.timezone)
        self.rng = rng
        self.open = dt.datetime.combine(
            definition.date, dt.time.fromisoformat(definition.polls_open), tzinfo=tz
        )
        self.close = dt.datetime.combine(
            definition.date, dt.time.fromisoformat(definition.polls_close), tzinfo=tz
        )
        self.segments: list[tuple[int, int]] = []  # (start, end) seconds after opening
        weights = []
        start = 0
        length = int((self.close - self.open).total_seconds())
        while start < length:
            hour = (self.open + dt.timedelta(seconds=start)).hour
            to_hour = 3600 - (self.open + dt.timedelta(seconds=start)).minute * 60
            end = min(length, start + to_hour)
            self.segments.append((start, end))
            weights.append(HOURLY_ARRIVALS.get(hour, OTHER_HOUR) * (end - start))
            start = end
        self.cum = list(accumulate(weights))

    def arrival(self) -> dt.datetime:
        k = bisect.bisect_right(self.cum, self.rng.random() * self.cum[-1])
        start, end = self.segments[min(k, len(self.segments) - 1)]
        return self.open + dt.timedelta(seconds=self.rng.randrange(start, end))

    def after(self, t: dt.datetime, *, minutes: float) -> dt.datetime | None:
        at = (t + dt.timedelta(minutes=minutes)).replace(microsecond=0)
        return at if at < self.close else None

    def mobile_return(self) -> dt.datetime:
        """When the mobile box comes back (mid-afternoon): its voters are marked then."""
        latest = min(self.close - dt.timedelta(hours=1), self.open + dt.timedelta(hours=9))
        earliest = min(self.open + dt.timedelta(hours=6), latest)
        span = int((latest - earliest).total_seconds()) // 60
        return earliest + dt.timedelta(minutes=self.rng.randrange(span + 1))


class _Ballot:
    """Draws one voter's sheets: a choice per contest, sometimes flawed."""

    def __init__(
        self,
        contests: Sequence[Contest],
        station_id: str,
        popularity: Popularity,
        mix: Mix,
        rng: random.Random,
    ) -> None:
        self.mix, self.rng = mix, rng
        self.contests = [
            (c, list(accumulate(popularity.option_weights(c, station_id)))) for c in contests
        ]
        self.prefs = {
            (c.id, o.id): list(accumulate(popularity.candidate_weights(c, o)))
            for c in contests
            for o in c.options
            if o.candidates
        }

    def sheets(self) -> tuple[Sheet, ...]:
        rng, mix = self.rng, self.mix
        out = []
        for contest, cum in self.contests:
            u = rng.random()
            if u < mix.not_cast:
                continue
            u -= mix.not_cast
            if u < mix.blank:
                out.append(Sheet(Mark(contest.id, "blank")))
                continue
            u -= mix.blank
            if u < mix.overvote:
                out.append(Sheet(Mark(contest.id, "overvote")))
                continue
            u -= mix.overvote
            spoiled = Mark(contest.id, "overvote") if u < mix.spoiled else None
            option = contest.options[_pick(cum, rng)]
            candidate = None
            pref = self.prefs.get((contest.id, option.id))
            if pref and rng.random() < mix.preference:
                candidate = option.candidates[_pick(pref, rng)].id
            out.append(Sheet(Mark(contest.id, "valid", option.id, candidate), spoiled))
        return tuple(out)


def _desk_visit(
    at: dt.datetime,
    voter: RollVoter,
    election_date: dt.date,
    mix: Mix,
    rng: random.Random,
    ballot: _Ballot,
) -> Visit:
    """A voter of this station at the desk: the frames, the commission's decision, the sheets."""
    card = voter.card
    if not voter.enrolled:
        reason = AdmissionReason.NO_BIOMETRICS_ENROLLED
        return Visit(at, How.DOCUMENT, voter.pin, card, reason=reason, sheets=ballot.sheets())
    elderly = voter.age(election_date) >= ELDERLY_AGE
    u = rng.random()
    if u < mix.camera_fault:
        reason = AdmissionReason.CAMERA_FAULT
        return Visit(
            at, How.DOCUMENT, voter.pin, card, camera_fault=True, reason=reason,
            sheets=ballot.sheets(),
        )  # fmt: skip
    u -= mix.camera_fault
    failed = mix.face_failed * (3 if elderly else 1)
    if u < failed:
        faces = _misses(3, rng)
        if rng.random() < mix.declined:
            return Visit(at, How.DECLINED, voter.pin, card, faces=faces)
        reason = _failure_reason(elderly, rng)
        return Visit(
            at, How.DOCUMENT, voter.pin, card, faces=faces, reason=reason, sheets=ballot.sheets()
        )
    u -= failed
    misses = _misses(rng.choice((1, 1, 2)), rng) if u < mix.face_retry else ()
    match = FaceTry("match", round(min(0.54, max(0.18, rng.gauss(0.38, 0.06))), 4))
    return Visit(at, How.FACE, voter.pin, card, faces=(*misses, match), sheets=ballot.sheets())


def _misses(no_matches: int, rng: random.Random) -> tuple[FaceTry, ...]:
    """Frames that do not match: `no_matches` comparisons, some frames with no face between."""
    out = []
    for _ in range(no_matches):
        if rng.random() < 0.3:  # looked away: not a comparison, not counted as an attempt
            out.append(FaceTry(rng.choice(("no_face", "multiple_faces")), None))
        out.append(FaceTry("no_match", round(rng.uniform(0.56, 0.8), 4)))
    return tuple(out)


def _failure_reason(elderly: bool, rng: random.Random) -> AdmissionReason:
    r = AdmissionReason
    if elderly:
        return rng.choices((r.ELDERLY_OR_WORN, r.DISABILITY, r.OTHER), (8, 2, 1))[0]
    return rng.choices(
        (r.ELDERLY_OR_WORN, r.INJURY_OR_COVERING, r.DISABILITY, r.OTHER), (3, 3, 2, 2)
    )[0]


def _minor_card(election_date: dt.date, rng: random.Random, roll: Sequence[RollVoter]) -> Card:
    """A 16- or 17-year-old's card: on no roll of any election, so certainly not on the index."""
    try:
        eighteen = election_date.replace(year=election_date.year - 18)
    except ValueError:  # 29 February
        eighteen = election_date.replace(year=election_date.year - 18, day=28)
    youngest = eighteen + dt.timedelta(days=1)
    born = youngest + dt.timedelta(days=rng.randrange(700))
    gender = rng.choice((Gender.FEMALE, Gender.MALE))
    pin = make_pin(gender, born, rng.randrange(100_000))
    name = rng.choice(roll) if roll else None
    return Card(
        pin,
        f"ID{rng.randrange(10_000_000):07d}",
        name.last_name if name else "Асанов",
        name.first_name if name else "Айбек",
        "",
        born,
    )


def _pick(cum: list[float], rng: random.Random) -> int:
    return min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)


def _count(expected: float, rng: random.Random) -> int:
    """An integer with mean `expected` (whole part, plus one with the fraction's chance)."""
    whole = math.floor(expected)
    return whole + (rng.random() < expected - whole)
