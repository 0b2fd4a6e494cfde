"""What one stored station message says, read and checked against the definition (pure).

The acceptance step (evidence.accept_batch) and the rebuild from evidence
(aggregate.recompute) both read messages only through `read_message`, so they can
differ only in how they pick and add up readings, which is what the test comparing
them checks.  A message's signature is already verified here: a body that does not
read is the station's own doing, so it is kept as evidence and counts for nothing
(alert `bad_report`), rather than refused and resent forever.

Test mode: a body with mode "test" yields only last-seen facts (mode, telemetry);
logic-and-accuracy data never reaches a count or a station's state.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from crypto.envelope import Envelope
from election.definition import Contest, ElectionDefinition
from election.tally import ContestTally

ASU_REPORT = "asu_report"
IDENTIFICATION_REPORT = "identification_report"
TURNOUT = "turnout"
HEARTBEAT = "heartbeat"
LOG_DIGEST = "log_digest"
MODED_KINDS = frozenset({ASU_REPORT, IDENTIFICATION_REPORT, TURNOUT, HEARTBEAT})

LIVE, TEST = "live", "test"
ZERO, FIRST, FINAL = "zero", "first", "final"
PHASE_RANK = {ZERO: 0, FIRST: 0, FINAL: 1}

NOT_OPENED, OPEN, CLOSED, DELIVERED = "not_opened", "open", "closed", "delivered"
STATE_RANK = {NOT_OPENED: 0, OPEN: 1, CLOSED: 2, DELIVERED: 3}
# What a heartbeat's station state (station/state.py) says about polling.
HEARTBEAT_STATE = {"setup": NOT_OPENED, "open": OPEN, "closed": CLOSED, "transmitted": CLOSED}

TELEMETRY = ("battery_percent", "on_mains", "signal_dbm", "outbox_pending")
# What a heartbeat may plausibly say; anything else is shown as unknown (and would not fit a
# 32-bit column on PostgreSQL, failing the whole batch).
_TELEMETRY_RANGE = {
    "battery_percent": (0, 100),
    "on_mains": (0, 1),
    "signal_dbm": (-200, 0),
    "outbox_pending": (0, 1_000_000_000),
}


@dataclass(frozen=True)
class Problem:
    """Why a signed message counts for nothing: the alert kind and a sentence."""

    kind: str  # "bad_report" | "turnout_over_roll"
    detail: str
    key: str  # what makes it the same problem again (no seq: a resent flood is one alert)


@dataclass(frozen=True)
class AsuReading:
    phase: str
    tallies: dict[str, ContestTally]
    station_problems: tuple[str, ...]  # what the station itself listed in a final report


@dataclass(frozen=True)
class IdentReading:
    phase: str
    voted: int
    identified_by_face: int
    admitted_by_document: int
    mobile_box: int


@dataclass(frozen=True)
class Reading:
    """Everything central takes from one message.  `counts` is False for test-mode
    messages, kinds that carry no counts, and messages with a `problem`."""

    mode: str | None = None
    telemetry: dict[str, int | None] | None = None
    problem: Problem | None = None
    asu: AsuReading | None = None
    ident: IdentReading | None = None
    voted: int | None = None  # a turnout figure (turnout, identification report, heartbeat)
    final_turnout: bool = False  # from the final identification report: outranks later ones
    hours: dict[str, int] = field(default_factory=dict)  # hour slot -> voted by its end
    state: str | None = None  # the polling state the message shows

    @property
    def counts(self) -> bool:
        return self.mode == LIVE and self.problem is None


class _Bad(ValueError):
    pass


def read_message(definition: ElectionDefinition, env: Envelope) -> Reading:
    """Read a verified, stored message of a station of `definition` (never raises)."""
    body = env.body
    mode = body.get("mode") if isinstance(body.get("mode"), str) else None
    telemetry = _telemetry(body) if env.kind == HEARTBEAT else None
    if env.kind not in MODED_KINDS or mode == TEST:
        return Reading(mode=mode, telemetry=telemetry)
    try:
        if mode != LIVE:
            raise _Bad(f"mode must be live or test, not {body.get('mode')!r}")
        reading = _READERS[env.kind](definition, env)
    except (_Bad, KeyError, TypeError, ValueError, ValidationError, OverflowError) as e:
        # OverflowError: a signed time like 9999-12-31T23:59:59-10:00 cannot be converted
        why = _short(e)
        return Reading(
            mode=mode,
            telemetry=telemetry,
            problem=Problem("bad_report", f"{env.kind} seq {env.seq}: {why}", f"{env.kind}: {why}"),
        )
    registered = definition.station(env.station).registered_voters
    if reading.voted is not None and reading.voted > registered:
        return Reading(
            mode=mode,
            telemetry=telemetry,
            problem=Problem(
                "turnout_over_roll",
                f"{env.kind} seq {env.seq} says {reading.voted} voted, but the station has "
                f"{registered} registered voters: not counted",
                "more voted than registered",
            ),
        )
    return Reading(
        mode=mode,
        telemetry=telemetry,
        asu=reading.asu,
        ident=reading.ident,
        voted=reading.voted,
        final_turnout=reading.final_turnout,
        hours=reading.hours,
        state=reading.state,
    )


def hour_slots(definition: ElectionDefinition) -> list[str]:
    """The hours of polling day a by-hour figure is kept for: opening hour to closing hour."""
    first, last = _slot_bounds(definition)
    return [f"{h:02d}" for h in range(first, last + 1)]


def is_zero(t: ContestTally) -> bool:
    return not (
        t.ballots
        or t.invalid
        or any(t.votes.values())
        or any(t.preferences.values())
        or any(t.invalid_by_reason.values())
    )


# --- one reader per kind -----------------------------------------------------------------


def _asu(definition: ElectionDefinition, env: Envelope) -> Reading:
    body = env.body
    phase = body["phase"]
    if phase not in (ZERO, FINAL):
        raise _Bad(f"phase must be zero or final, not {phase!r}")
    contests = {c.id: c for c in definition.contests_for_station(env.station)}
    tallies: dict[str, ContestTally] = {}
    problems: list[str] = []
    if not isinstance(body["tallies"], list):
        raise _Bad("tallies must be a list")
    for obj in body["tallies"]:
        t = ContestTally.from_obj(obj)
        contest: Contest | None = contests.get(t.contest_id)
        if contest is None:
            raise _Bad(f"a tally for contest {t.contest_id}, which this station does not hold")
        if t.contest_id in tallies:
            raise _Bad(f"two tallies for contest {t.contest_id}")
        problems += [f"{t.contest_id}: {p}" for p in t.problems(contest)]
        tallies[t.contest_id] = t
    missing = sorted(set(contests) - set(tallies))
    if missing:
        problems.append(f"no tally for contest {', '.join(missing)}")
    if problems:
        raise _Bad("; ".join(problems))
    _count(body, "sheets")
    if phase == ZERO:
        if body["sheets"] or any(not is_zero(t) for t in tallies.values()):
            raise _Bad("the zero report is not zero: ballots were counted before opening")
        return Reading(asu=AsuReading(ZERO, tallies, ()), state=OPEN)
    _count(body, "voters_identified")
    listed = body.get("problems", [])
    if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
        raise _Bad("problems must be a list of sentences")
    return Reading(asu=AsuReading(FINAL, tallies, tuple(listed)), state=CLOSED)


def _identification(definition: ElectionDefinition, env: Envelope) -> Reading:
    body = env.body
    phase = body["phase"]
    if phase not in (FIRST, FINAL):
        raise _Bad(f"phase must be first or final, not {phase!r}")
    voted = _count(body, "voted")
    face = _count(body, "identified_by_face")
    document = _count(body, "admitted_by_document")
    mobile = _count(body, "mobile_box")
    if face + document + mobile != voted:
        raise _Bad(
            f"identified by face ({face}), by document ({document}) and with the mobile box "
            f"({mobile}) add up to {face + document + mobile}, not the {voted} who voted"
        )
    by_hour = body["by_hour"]
    if not isinstance(by_hour, dict):
        raise _Bad("by_hour must be an object")
    counts: dict[int, int] = {}
    for key in by_hour:
        if not (
            isinstance(key, str)
            and len(key) == 2
            and key.isascii()
            and key.isdigit()
            and int(key) < 24
        ):
            raise _Bad(f"by_hour has a key {key!r} that is not an hour 00..23")
        counts[int(key)] = _count(by_hour, key)
    if sum(counts.values()) != voted:
        raise _Bad(f"by_hour adds up to {sum(counts.values())}, not the {voted} who voted")
    as_of_hour = _local_hour(definition, body["as_of"])
    points: dict[int, int] = {}
    cumulative = 0
    for hour in range(min([as_of_hour, *counts]), max([as_of_hour, *counts]) + 1):
        cumulative += counts.get(hour, 0)
        points[hour] = cumulative
    ident = IdentReading(phase, voted, face, document, mobile)
    return Reading(
        ident=ident,
        voted=voted,
        final_turnout=phase == FINAL,
        hours=_slots(definition, points),
        state=CLOSED if phase == FINAL else OPEN,
    )


def _turnout(definition: ElectionDefinition, env: Envelope) -> Reading:
    voted = _count(env.body, "voted")
    _count(env.body, "registered")
    hour = _local_hour(definition, env.body["as_of"])
    return Reading(voted=voted, hours=_slots(definition, {hour: voted}), state=OPEN)


def _heartbeat(definition: ElectionDefinition, env: Envelope) -> Reading:
    body = env.body
    state = body.get("state")
    if state is not None and state not in HEARTBEAT_STATE:
        raise _Bad(f"unknown station state {state!r}")
    voted = body.get("voted")
    if voted is None:
        return Reading(state=HEARTBEAT_STATE.get(state) if state else None)
    voted = _count(body, "voted")
    hour = env.when.astimezone(ZoneInfo(definition.timezone)).hour
    return Reading(
        voted=voted,
        hours=_slots(definition, {hour: voted}),
        state=HEARTBEAT_STATE.get(state) if state else None,
    )


_READERS = {
    ASU_REPORT: _asu,
    IDENTIFICATION_REPORT: _identification,
    TURNOUT: _turnout,
    HEARTBEAT: _heartbeat,
}


# --- small helpers -------------------------------------------------------------------------


def _count(obj: dict[str, Any], key: str) -> int:
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise _Bad(f"{key} must be a count (an integer >= 0), not {v!r}")
    return v


def _telemetry(body: dict[str, Any]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for key in TELEMETRY:
        v = body.get(key)
        low, high = _TELEMETRY_RANGE[key]
        n = int(v) if isinstance(v, int) else None  # bool on_mains -> 0/1
        out[key] = n if n is not None and low <= n <= high else None
    return out


def _local_hour(definition: ElectionDefinition, text: Any) -> int:
    if not isinstance(text, str):
        raise _Bad(f"as_of must be a date and time, not {text!r}")
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise _Bad(f"as_of {text!r} has no UTC offset")
    return when.astimezone(ZoneInfo(definition.timezone)).hour


def _slot_bounds(definition: ElectionDefinition) -> tuple[int, int]:
    return int(definition.polls_open[:2]), int(definition.polls_close[:2])


def _slots(definition: ElectionDefinition, points: dict[int, int]) -> dict[str, int]:
    """Points by local hour -> points by slot: hours before opening fall into the first
    slot, after closing into the last; of several hours in one slot the latest counts."""
    first, last = _slot_bounds(definition)
    out: dict[str, int] = {}
    for hour in sorted(points):
        out[f"{min(max(hour, first), last):02d}"] = points[hour]
    return out


def _short(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"missing field {e.args[0]!r}"
    if isinstance(e, ValidationError):
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        return f"a tally does not read ({where}: {first['msg']})"
    return str(e)
