"""The results document, rebuilt from the signed station reports and the manual counts.

Written from docs/central.md ("Which report counts", "Aggregates", "Results
document"), not from the server's code, and shaped differently on purpose: the
server updates running sums message by message; this reads each station's whole
chain at once, picks the report that counts by the documented maximum, and sums
up the hierarchy bottom-up (station -> commission -> district -> region -> nation).
Where the two disagree, one of them is wrong, and `shailoo verify` says where.

The law's own rules (shares and their bases, seats, winners, runoffs, thresholds,
referendum validity, percent rounding) come from `election/`, which is published
with the definition: those are the rules, not the bookkeeping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from crypto.envelope import Envelope
from election.definition import (
    Contest,
    ContestKind,
    ElectionDefinition,
    OptionKind,
    PartyListRules,
    ThresholdBase,
)
from election.outcome import contest_outcome
from election.tally import INVALID, ContestTally, Turnout, percentages

FORMAT = "shailoo-results/1"
NATION = "nation"
LEVELS = ("nation", "region", "district", "commission", "station")
SOURCES = ("asu", "manual")  # the ASU's preliminary count, the commission's final hand count
STATES = ("not_opened", "open", "closed", "delivered")
# A heartbeat's station state (the appliance's state machine) -> what it says about polling.
HEARTBEAT_STATES = {"setup": "not_opened", "open": "open", "closed": "closed",
                    "transmitted": "closed"}  # fmt: skip
REPORT_KINDS = ("asu_report", "identification_report", "turnout", "heartbeat")
UNSPECIFIED = "unspecified"  # the reason of invalid ballots a tally gives no breakdown for


# --- reading one message ---------------------------------------------------------------------


class _Unreadable(ValueError):
    pass


@dataclass(frozen=True)
class Reading:
    """What one signed message says, if it counts.  `why` says why it counts for nothing
    (test mode, a kind without counts, a body that does not read, more voters than the roll)."""

    why: str | None = None
    asu_phase: str | None = None  # zero | final
    tallies: Mapping[str, ContestTally] = field(default_factory=dict)
    ident_phase: str | None = None  # first | final
    admitted: tuple[int, int, int] = (0, 0, 0)  # by face, by document, mobile box
    voted: int | None = None
    hours: Mapping[str, int] = field(default_factory=dict)  # hour slot -> voted by then
    state: str | None = None

    @property
    def counts(self) -> bool:
        return self.why is None


def read(definition: ElectionDefinition, env: Envelope) -> Reading:
    """Read a verified message of a station of `definition`; never raises."""
    body = env.body
    if env.kind not in REPORT_KINDS:
        return Reading(why=f"a {env.kind} carries no counts")
    if body.get("mode") == "test":
        return Reading(why="test mode (logic and accuracy testing) never counts")
    try:
        if body.get("mode") != "live":
            raise _Unreadable(f"mode must be live or test, not {body.get('mode')!r}")
        reading = _READERS[env.kind](definition, env)
    except Exception as e:  # a signed body is untrusted input: whatever it breaks, it reads not
        what = f"missing field {e.args[0]!r}" if isinstance(e, KeyError) else _first_line(e)
        return Reading(why=f"the signed body does not read: {what}")
    registered = definition.station(env.station).registered_voters
    if reading.voted is not None and reading.voted > registered:
        return Reading(why=f"{reading.voted} voted is more than the {registered} registered")
    return reading


def _asu(definition: ElectionDefinition, env: Envelope) -> Reading:
    body = env.body
    phase = body["phase"]
    if phase not in ("zero", "final"):
        raise _Unreadable(f"phase {phase!r} is not zero or final")
    held = {c.id: c for c in definition.contests_for_station(env.station)}
    if not isinstance(body["tallies"], list):
        raise _Unreadable("tallies is not a list")
    tallies: dict[str, ContestTally] = {}
    for obj in body["tallies"]:
        t = ContestTally.from_obj(obj)
        contest = held.get(t.contest_id)
        if contest is None or t.contest_id in tallies:
            raise _Unreadable(f"contest {t.contest_id} is not held here, or given twice")
        problems = t.problems(contest)
        if problems:
            raise _Unreadable(f"{t.contest_id}: {'; '.join(problems)}")
        tallies[t.contest_id] = t
    if set(tallies) != set(held):
        raise _Unreadable(f"no tally for {sorted(set(held) - set(tallies))}")
    sheets = _count(body, "sheets")
    if phase == "zero":
        if sheets or any(_nonzero(t) for t in tallies.values()):
            raise _Unreadable("a zero report that is not zero")
        return Reading(asu_phase="zero", tallies=tallies, state="open")
    _count(body, "voters_identified")
    listed = body.get("problems", [])
    if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
        raise _Unreadable("problems is not a list of sentences")
    return Reading(asu_phase="final", tallies=tallies, state="closed")


def _identification(definition: ElectionDefinition, env: Envelope) -> Reading:
    body = env.body
    phase = body["phase"]
    if phase not in ("first", "final"):
        raise _Unreadable(f"phase {phase!r} is not first or final")
    voted = _count(body, "voted")
    admitted = (
        _count(body, "identified_by_face"),
        _count(body, "admitted_by_document"),
        _count(body, "mobile_box"),
    )
    if sum(admitted) != voted:
        raise _Unreadable(f"admissions add up to {sum(admitted)}, not {voted}")
    by_hour = body["by_hour"]
    if not isinstance(by_hour, dict):
        raise _Unreadable("by_hour is not an object")
    per_hour: dict[int, int] = {}
    for key in by_hour:
        if not (len(key) == 2 and key.isascii() and key.isdigit() and int(key) < 24):
            raise _Unreadable(f"by_hour key {key!r} is not an hour 00..23")
        per_hour[int(key)] = _count(by_hour, key)
    if sum(per_hour.values()) != voted:
        raise _Unreadable(f"by_hour adds up to {sum(per_hour.values())}, not {voted}")
    now = _local_hour(definition, body["as_of"])
    # cumulative figure at the end of every hour from the first one stated to as_of
    cumulative, running = {}, 0
    for hour in range(min([now, *per_hour]), max([now, *per_hour]) + 1):
        running += per_hour.get(hour, 0)
        cumulative[hour] = running
    return Reading(
        ident_phase=phase,
        admitted=admitted,
        voted=voted,
        hours=_in_slots(definition, cumulative),
        state="closed" if phase == "final" else "open",
    )


def _turnout_figure(definition: ElectionDefinition, env: Envelope) -> Reading:
    voted = _count(env.body, "voted")
    _count(env.body, "registered")
    hour = _local_hour(definition, env.body["as_of"])
    return Reading(voted=voted, hours=_in_slots(definition, {hour: voted}), state="open")


def _heartbeat(definition: ElectionDefinition, env: Envelope) -> Reading:
    state = env.body.get("state")
    if state is not None and state not in HEARTBEAT_STATES:
        raise _Unreadable(f"unknown station state {state!r}")
    says = None if state is None else HEARTBEAT_STATES[state]
    if env.body.get("voted") is None:
        return Reading(state=says)
    voted = _count(env.body, "voted")
    hour = env.when.astimezone(ZoneInfo(definition.timezone)).hour  # its signed time
    return Reading(voted=voted, hours=_in_slots(definition, {hour: voted}), state=says)


_READERS = {
    "asu_report": _asu,
    "identification_report": _identification,
    "turnout": _turnout_figure,
    "heartbeat": _heartbeat,
}


def _count(obj: Mapping[str, Any], key: str) -> int:
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise _Unreadable(f"{key} is not a count: {v!r}")
    return v


def _nonzero(t: ContestTally) -> bool:
    return bool(
        t.ballots
        or t.invalid
        or any(t.votes.values())
        or any(t.preferences.values())
        or any(t.invalid_by_reason.values())
    )


def _local_hour(definition: ElectionDefinition, text: Any) -> int:
    if not isinstance(text, str):
        raise _Unreadable(f"as_of {text!r} is not a time")
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise _Unreadable(f"as_of {text!r} has no UTC offset")
    return when.astimezone(ZoneInfo(definition.timezone)).hour


def hour_slots(definition: ElectionDefinition) -> list[str]:
    """Opening hour to closing hour, "08".."20": the by-hour curve's points."""
    first, last = int(definition.polls_open[:2]), int(definition.polls_close[:2])
    return [f"{h:02d}" for h in range(first, last + 1)]


def _in_slots(definition: ElectionDefinition, figures: Mapping[int, int]) -> dict[str, int]:
    """Local hours -> slots: before opening is the opening hour, after closing the closing
    hour; of several hours in one slot the latest hour's figure."""
    first, last = int(definition.polls_open[:2]), int(definition.polls_close[:2])
    out: dict[str, int] = {}
    for hour in sorted(figures):
        out[f"{min(max(hour, first), last):02d}"] = figures[hour]
    return out


# --- one station ---------------------------------------------------------------------------


@dataclass
class StationCount:
    """What a station's verified chain adds up to."""

    state: str = "not_opened"
    asu: dict[str, ContestTally] = field(default_factory=dict)  # the final ASU report's
    voted: int | None = None
    ident: tuple[int, int, int] | None = None  # admissions of the identification report
    hours: dict[str, int] = field(default_factory=dict)
    times: list[dt.datetime] = field(default_factory=list)  # signed times of what counts
    not_counted: list[tuple[int, str]] = field(default_factory=list)  # (seq, why)


_RANK = {"zero": 0, "first": 0, "final": 1}


def count_station(definition: ElectionDefinition, envs: Iterable[Envelope]) -> StationCount:
    """docs/central.md "Which report counts": of the counted messages, the ASU report and
    the identification report of highest (phase, seq) with final above zero/first; the
    turnout figure of highest (is the final identification report, seq); each hour slot
    from the highest seq that states it; the state the furthest any message shows,
    `delivered` once both counted reports are final."""
    out = StationCount()
    asu: tuple[tuple[int, int], Envelope, Reading] | None = None
    ident: tuple[tuple[int, int], Envelope, Reading] | None = None
    turnout: tuple[tuple[int, int], Envelope, Reading] | None = None
    rank = STATES.index(out.state)
    for env in sorted(envs, key=lambda e: e.seq):
        r = read(definition, env)
        if not r.counts:
            out.not_counted.append((env.seq, r.why or ""))
            continue
        if r.asu_phase is not None:
            key = (_RANK[r.asu_phase], env.seq)
            if asu is None or key > asu[0]:
                asu = (key, env, r)
        if r.ident_phase is not None:
            key = (_RANK[r.ident_phase], env.seq)
            if ident is None or key > ident[0]:
                ident = (key, env, r)
        if r.voted is not None:
            key = (int(r.ident_phase == "final"), env.seq)
            if turnout is None or key > turnout[0]:
                turnout = (key, env, r)
        out.hours.update(r.hours)  # ascending seq: the highest seq stating a slot wins
        if r.state is not None:
            rank = max(rank, STATES.index(r.state))
    out.state = STATES[rank]
    for chosen in (asu, ident, turnout):
        if chosen is not None:
            out.times.append(chosen[1].when)
    if asu is not None and asu[2].asu_phase == "final":
        out.asu = dict(asu[2].tallies)
    if turnout is not None:
        out.voted = turnout[2].voted
    if ident is not None:
        out.ident = ident[2].admitted
    asu_final = asu is not None and asu[2].asu_phase == "final"
    if asu_final and ident is not None and ident[2].ident_phase == "final":
        out.state = "delivered"
    return out


# --- sums ------------------------------------------------------------------------------------


class Sum:
    """A contest's counts summed over stations.  Invalid ballots of a tally without a
    breakdown count under the reason "unspecified" (docs/central.md, as
    ContestTally.__add__ does), so a sum's breakdown always adds up to its invalid."""

    __slots__ = ("stations", "ballots", "invalid", "reasons", "votes", "preferences")

    def __init__(self) -> None:
        self.stations = 0
        self.ballots = 0
        self.invalid = 0
        self.reasons: dict[str, int] = {}
        self.votes: dict[str, int] = {}
        self.preferences: dict[str, int] = {}

    def add_tally(self, t: ContestTally) -> None:
        self.stations += 1
        self.ballots += t.ballots
        self.invalid += t.invalid
        reasons = t.invalid_by_reason or ({UNSPECIFIED: t.invalid} if t.invalid else {})
        _add(self.reasons, reasons)
        _add(self.votes, t.votes)
        _add(self.preferences, t.preferences)

    def add(self, other: Sum) -> None:
        self.stations += other.stations
        self.ballots += other.ballots
        self.invalid += other.invalid
        _add(self.reasons, other.reasons)
        _add(self.votes, other.votes)
        _add(self.preferences, other.preferences)

    def tally(self, contest: Contest) -> ContestTally:
        """As published: every option and candidate, the breakdown without zeros, and
        none at all if it would only say "unspecified"."""
        reasons = {k: n for k, n in sorted(self.reasons.items()) if n}
        if set(reasons) == {UNSPECIFIED}:
            reasons = {}
        return ContestTally(
            contest_id=contest.id,
            ballots=self.ballots,
            invalid=self.invalid,
            invalid_by_reason=reasons,
            votes={o.id: self.votes.get(o.id, 0) for o in contest.options},
            preferences={
                c.id: self.preferences.get(c.id, 0) for o in contest.options for c in o.candidates
            },
        )


def _add(acc: dict[str, int], more: Mapping[str, int]) -> None:
    for k, n in more.items():
        acc[k] = acc.get(k, 0) + n


def share_base(contest: Contest, t: ContestTally) -> tuple[str, dict[str, int]]:
    """The base a contest's shares are of, the one its outcome uses (election/outcome.py):
    party list: the threshold's base; single member: valid votes; president and
    referendum: every ballot, invalid included (as "_invalid")."""
    rules = contest.rules
    with_invalid = {**t.votes, INVALID: t.invalid}
    if isinstance(rules, PartyListRules):
        if rules.threshold_base is ThresholdBase.PARTY_VOTES:
            parties = {o.id for o in contest.options if o.kind is OptionKind.PARTY}
            return "party_votes", {k: v for k, v in t.votes.items() if k in parties}
        if rules.threshold_base is ThresholdBase.VALID_VOTES:
            return "valid_votes", dict(t.votes)
        return "ballots", with_invalid
    if contest.kind is ContestKind.SINGLE_MEMBER:
        return "valid_votes", dict(t.votes)
    return "ballots", with_invalid


# --- the document ----------------------------------------------------------------------------


@dataclass
class Rebuilt:
    """The rebuilt document and what it was rebuilt from."""

    document: dict[str, Any]
    stations: dict[str, StationCount]
    problems: list[str]  # what the server would have refused to publish (no outcome, ...)
    tallies: int = 0  # unit tallies computed (every level, both sources)
    outcomes: int = 0


class _Areas:
    """The definition's hierarchy: units per level, each unit's parent, stations and roll."""

    def __init__(self, d: ElectionDefinition) -> None:
        self.units: dict[str, list[str]] = {
            "nation": [NATION],
            "region": [r.id for r in d.regions],
            "district": [x.id for x in d.districts],
            "commission": [c.id for c in d.commissions],
            "station": [s.id for s in d.stations],
        }
        self.parent: dict[tuple[str, str], tuple[str, str]] = {}
        for r in d.regions:
            self.parent[("region", r.id)] = ("nation", NATION)
        for x in d.districts:
            self.parent[("district", x.id)] = ("region", x.region_id)
        for c in d.commissions:
            self.parent[("commission", c.id)] = ("district", c.district_id)
        for s in d.stations:
            self.parent[("station", s.id)] = ("commission", s.commission_id)
        self.number = {s.id: s.number for s in d.stations}
        self.registered: dict[tuple[str, str], int] = {}
        self.stations: dict[tuple[str, str], int] = {}
        for s in d.stations:
            area: tuple[str, str] | None = ("station", s.id)
            while area is not None:
                self.registered[area] = self.registered.get(area, 0) + s.registered_voters
                self.stations[area] = self.stations.get(area, 0) + 1
                area = self.parent.get(area)

    def of(self, level: str, unit: str) -> int:
        return self.stations.get((level, unit), 0)


def rebuild(
    definition: ElectionDefinition,
    messages: Mapping[str, Sequence[Envelope]],
    manual: Mapping[str, Mapping[str, ContestTally]],
) -> Rebuilt:
    """The results document from the verified messages of each station and the manual
    counts, in the published form (docs/central.md "Results document")."""
    areas = _Areas(definition)
    counted = {s.id: count_station(definition, messages.get(s.id, ())) for s in definition.stations}
    times = [t for c in counted.values() for t in c.times]
    as_of = max(times).astimezone(dt.UTC).isoformat(timespec="seconds") if times else None
    out = Rebuilt({}, counted, [])
    turnout = _turnout_section(definition, areas, counted, as_of)
    voted_at = {(level, e["id"]): e["voted"] for level in LEVELS for e in turnout[level]}
    contests = [
        _contest(definition, areas, c, counted, manual, voted_at, out) for c in definition.contests
    ]
    by_state = dict.fromkeys(STATES, 0)
    for c in counted.values():
        by_state[c.state] += 1
    out.document = {
        "format": FORMAT,
        "election": {"id": definition.id, "hash": definition.election_hash},
        "as_of": as_of,
        "stations": {
            "of": len(definition.stations),
            "by_state": by_state,
            "delivered": by_state["delivered"],
        },
        "turnout": turnout,
        "contests": contests,
    }
    return out


def _turnout_section(
    definition: ElectionDefinition,
    areas: _Areas,
    counted: Mapping[str, StationCount],
    as_of: str | None,
) -> dict[str, Any]:
    """Per unit: voters (each station's counted figure), stations reported, admissions of
    the counted identification reports, and the by-hour curve (each station's last figure
    carried forward) up to the hour of as_of."""
    slots = hour_slots(definition)
    shown: list[str] = []
    if as_of is not None:
        hour = dt.datetime.fromisoformat(as_of).astimezone(ZoneInfo(definition.timezone)).hour
        last = min(max(hour, int(slots[0])), int(slots[-1]))
        shown = [s for s in slots if int(s) <= last]
    # per area: [reported, voted, ident stations, face, document, mobile], curve
    sums: dict[tuple[str, str], list[int]] = {}
    curves: dict[tuple[str, str], list[int]] = {}
    for sid in areas.units["station"]:
        c = counted[sid]
        row = [0] * 6
        if c.voted is not None:
            row[0], row[1] = 1, c.voted
        if c.ident is not None:
            row[2], row[3], row[4], row[5] = 1, *c.ident
        curve, carry = [], 0
        for slot in shown:
            carry = c.hours.get(slot, carry)
            curve.append(carry)
        area: tuple[str, str] | None = ("station", sid)
        while area is not None:
            acc = sums.setdefault(area, [0] * 6)
            for i, v in enumerate(row):
                acc[i] += v
            line = curves.setdefault(area, [0] * len(shown))
            for i, v in enumerate(curve):
                line[i] += v
            area = areas.parent.get(area)
    out: dict[str, Any] = {"hours": shown}
    for level in LEVELS:
        entries = []
        for unit in areas.units[level]:
            key = (level, unit)
            reported, voted, ident, face, document, mobile = sums.get(key, [0] * 6)
            entry: dict[str, Any] = {
                "id": unit,
                **Turnout(registered=areas.registered.get(key, 0), voted=voted).to_obj(),
                "stations": {"reported": reported, "of": areas.of(level, unit)},
                "identification": {
                    "stations": ident,
                    "identified_by_face": face,
                    "admitted_by_document": document,
                    "mobile_box": mobile,
                },
                "by_hour": dict(zip(shown, curves.get(key, [0] * len(shown)), strict=True)),
            }
            if level == "station":
                entry["number"] = areas.number[unit]
            entries.append(entry)
        out[level] = entries
    return out


def _contest(
    definition: ElectionDefinition,
    areas: _Areas,
    contest: Contest,
    counted: Mapping[str, StationCount],
    manual: Mapping[str, Mapping[str, ContestTally]],
    voted_at: Mapping[tuple[str, str], int],
    out: Rebuilt,
) -> dict[str, Any]:
    """A contest's tallies at every unit that holds it, both sources, and its outcome at
    its own level (the nation, or the district of a single-member contest)."""
    if contest.district_id is None:
        top = ("nation", NATION)
        units = {level: areas.units[level] for level in LEVELS}
    else:
        top = ("district", contest.district_id)
        commissions = [c.id for c in definition.commissions if c.district_id == contest.district_id]
        inside = set(commissions)
        units = {
            "district": [contest.district_id],
            "commission": commissions,
            "station": [s.id for s in definition.stations if s.commission_id in inside],
        }
    order = [o.id for o in contest.options]
    parts: dict[str, dict[tuple[str, str], dict[str, Any] | None]] = {}
    outcome: dict[str, Any] = {}
    for source in SOURCES:
        sums: dict[tuple[str, str], Sum] = {}
        for level in LEVELS:
            if level != "station" and level in units:
                for unit in units[level]:
                    sums[(level, unit)] = Sum()  # every unit above stations has a row
        for sid in units["station"]:
            t = counted[sid].asu.get(contest.id) if source == "asu" else None
            if source == "manual":
                t = manual.get(sid, {}).get(contest.id)
            if t is None:
                continue
            own = sums[("station", sid)] = Sum()
            own.add_tally(t)
        for level in ("station", "commission", "district", "region"):  # bottom-up
            for unit in units.get(level, ()):
                got = sums.get((level, unit))
                parent = areas.parent[(level, unit)]
                if got is not None and parent in sums:
                    sums[parent].add(got)
        parts[source] = {}
        for level in LEVELS:
            for unit in units.get(level, ()):
                got = sums.get((level, unit))
                parts[source][(level, unit)] = None if got is None else _part(contest, order, got)
                out.tallies += got is not None
        total = sums[top]
        if total.stations == 0:
            outcome[source] = None
            continue
        try:
            result = contest_outcome(
                contest,
                total.tally(contest),
                registered=areas.registered.get(top, 0),
                voted=voted_at.get(top, 0),
            )
        except ValueError as e:
            out.problems.append(f"contest {contest.id} {source}: no outcome: {_first_line(e)}")
            outcome[source] = None
            continue
        out.outcomes += 1
        outcome[source] = result.to_obj() | {"complete": total.stations == areas.of(*top)}
    units_out: dict[str, list[dict[str, Any]]] = {}
    for level in LEVELS:
        if level not in units:
            continue
        entries = []
        for unit in units[level]:
            entry: dict[str, Any] = {"id": unit, "stations": areas.of(level, unit)}
            if level == "station":
                entry["number"] = areas.number[unit]
            for source in SOURCES:
                entry[source] = parts[source][(level, unit)]
            entries.append(entry)
        units_out[level] = entries
    return {
        "id": contest.id,
        "kind": contest.kind.value,
        "district_id": contest.district_id,
        "outcome": outcome,
        "units": units_out,
    }


def _part(contest: Contest, order: list[str], s: Sum) -> dict[str, Any]:
    t = s.tally(contest)
    base_name, counts = share_base(contest, t)
    return {
        "ballots": t.ballots,
        "invalid": t.invalid,
        "invalid_by_reason": dict(t.invalid_by_reason),
        "votes": dict(t.votes),
        "preferences": dict(t.preferences),
        "stations": s.stations,
        "shares": {
            "base_name": base_name,
            "base": sum(counts.values()),
            "percent": percentages(counts, order=order),
        },
    }


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
