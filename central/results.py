"""The published results document: built from the aggregates, checked, then published.

`publish` reads every aggregate in one transaction, checks the invariants (each
tally adds up, children add up to their parent, shares add up to 100.00, no more
stations reported than exist, no more voters than registered) and only then stores
a new version.  On a violation it raises `invariant_violation` and the previous
consistent version stays the published one.

The document is plain JSON with no floats (integers, and decimal or "num/den"
strings), built deterministically from the aggregates and the definition (lists in
definition order, keys sorted by canonical JSON), so the public site and an
independent verifier can rebuild it from the signed reports and compare bytes.
Seats, winners, runoffs, thresholds and referendum validity come from
election/outcome.py, computed at each contest's own level (the nation, or the
district of a single-member contest).  Format: docs/central.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from central.aggregate import NATION, TURNOUT_COLUMNS, Vec, add_vec, obj_vec, station_areas
from central.alerts import raise_alert, timestamp
from central.db import Database, Row, Tx
from central.outliers import check_turnout_outliers, new_turnout_outliers
from central.report_bodies import DELIVERED, STATE_RANK, hour_slots
from election.canonical import canonical_json
from election.definition import (
    Contest,
    ContestKind,
    ElectionDefinition,
    OptionKind,
    PartyListRules,
    ThresholdBase,
)
from election.outcome import contest_outcome
from election.tally import INVALID, ContestTally, Turnout, parse_percent_units, percentages

FORMAT = "shailoo-results/1"
LEVEL_ORDER = ("nation", "region", "district", "commission", "station")
SOURCES = ("asu", "manual")  # preliminary (ASU), final (manual count)


@dataclass(frozen=True)
class Publication:
    """What `publish` did: the version now published (None: never any), whether it is
    new, and the invariant problems that stopped a new one."""

    version: int | None
    new: bool
    problems: tuple[str, ...] = ()
    alert_id: int | None = None


@dataclass(frozen=True)
class Published:
    version: int
    published_at: str
    sha256: str
    text: str  # the canonical JSON, exactly as published

    @property
    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.text)
        return doc


@dataclass(frozen=True)
class Aggregates:
    """Everything the document is built from, read in one transaction."""

    tallies: list[Row]
    turnout: list[Row]
    hours: list[Row]
    states: list[Row]
    as_of: str | None


def read_aggregates(db: Database) -> Aggregates:
    # One consistent snapshot; never the write lock: at national size the read takes
    # seconds, and ingest (and so every station's ack) would wait behind it.
    with db.snapshot() as tx:
        return _read(tx)


def _read(tx: Tx) -> Aggregates:
    times = tx.query(
        "SELECT m.signed_at FROM stations s JOIN messages m ON m.station_id = s.station_id"
        " AND (m.seq = s.asu_seq OR m.seq = s.ident_seq OR m.seq = s.turnout_seq)"
    )
    latest = max((dt.datetime.fromisoformat(r["signed_at"]) for r in times), default=None)
    return Aggregates(
        tallies=tx.query("SELECT level, unit, contest_id, source, stations, tally FROM tallies"),
        turnout=tx.query(f"SELECT level, unit, {', '.join(TURNOUT_COLUMNS)} FROM turnout"),
        hours=tx.query("SELECT station_id, hour, voted FROM station_hours"),
        states=tx.query("SELECT state, COUNT(*) AS n FROM stations GROUP BY state"),
        as_of=None if latest is None else latest.astimezone(dt.UTC).isoformat(timespec="seconds"),
    )


# --- the document ----------------------------------------------------------------------------


class _Geo:
    """The definition's units, their stations and registered voters (built once per call)."""

    def __init__(self, definition: ElectionDefinition) -> None:
        self.definition = definition
        self.units: dict[str, list[str]] = {
            "nation": [NATION],
            "region": [r.id for r in definition.regions],
            "district": [d.id for d in definition.districts],
            "commission": [c.id for c in definition.commissions],
            "station": [s.id for s in definition.stations],
        }
        self.parent: dict[tuple[str, str], tuple[str, str]] = {}
        every = [(level, unit) for level, units in self.units.items() for unit in units]
        self.registered: dict[tuple[str, str], int] = dict.fromkeys(every, 0)
        self.station_count: dict[tuple[str, str], int] = dict.fromkeys(every, 0)
        self.number = {s.id: s.number for s in definition.stations}
        self.areas: dict[str, list[tuple[str, str]]] = {}
        for r in definition.regions:
            self.parent[("region", r.id)] = ("nation", NATION)
        for x in definition.districts:
            self.parent[("district", x.id)] = ("region", x.region_id)
        for tik in definition.commissions:
            self.parent[("commission", tik.id)] = ("district", tik.district_id)
        for s in definition.stations:
            self.parent[("station", s.id)] = ("commission", s.commission_id)
            areas = [("station", s.id), *station_areas(definition, s.id)]
            self.areas[s.id] = areas
            for area in areas:
                self.registered[area] += s.registered_voters
                self.station_count[area] += 1
        self.contest_levels = {c.id: self._contest_units(c) for c in definition.contests}

    def _contest_units(self, c: Contest) -> dict[str, list[str]]:
        if c.district_id is None:
            return self.units
        d = self.definition
        commissions = [x.id for x in d.commissions if x.district_id == c.district_id]
        cset = set(commissions)
        return {
            "district": [c.district_id],
            "commission": commissions,
            "station": [s.id for s in d.stations if s.commission_id in cset],
        }


def build_document(
    definition: ElectionDefinition, agg: Aggregates
) -> tuple[dict[str, Any], list[str]]:
    """The results document and every invariant it breaks (publish only if none)."""
    geo = _Geo(definition)
    problems: list[str] = []
    tallies: dict[tuple[str, str, str, str], tuple[int, dict[str, Any]]] = {}
    for r in agg.tallies:
        tallies[(r["contest_id"], r["source"], r["level"], r["unit"])] = (
            int(r["stations"]),
            json.loads(r["tally"]),
        )
    turnout_rows = {(r["level"], r["unit"]): r for r in agg.turnout}
    contests = []
    for contest in definition.contests:
        contests.append(_contest(geo, contest, tallies, turnout_rows, problems))
    doc = {
        "format": FORMAT,
        "election": {"id": definition.id, "hash": definition.election_hash},
        "as_of": agg.as_of,
        "stations": _station_states(definition, agg.states),
        "turnout": _turnout(geo, turnout_rows, agg, problems),
        "contests": contests,
    }
    return doc, problems


def _station_states(definition: ElectionDefinition, states: Sequence[Row]) -> dict[str, Any]:
    by_state = dict.fromkeys(STATE_RANK, 0)
    for r in states:
        by_state[r["state"]] = by_state.get(r["state"], 0) + int(r["n"])
    return {"of": len(definition.stations), "by_state": by_state, "delivered": by_state[DELIVERED]}


def share_counts(contest: Contest, obj: Mapping[str, Any]) -> tuple[str, dict[str, int]]:
    """The base and counts a contest's shares are of: as election/outcome.py states them
    for the contest's outcome (a test holds the two together)."""
    votes: dict[str, int] = obj["votes"]
    rules = contest.rules
    if isinstance(rules, PartyListRules):
        if rules.threshold_base is ThresholdBase.PARTY_VOTES:
            parties = {o.id for o in contest.options if o.kind is OptionKind.PARTY}
            return rules.threshold_base.value, {k: v for k, v in votes.items() if k in parties}
        if rules.threshold_base is ThresholdBase.VALID_VOTES:
            return "valid_votes", dict(votes)
        return "ballots", {**votes, INVALID: obj["invalid"]}
    if contest.kind is ContestKind.SINGLE_MEMBER:
        return "valid_votes", dict(votes)
    return "ballots", {**votes, INVALID: obj["invalid"]}


def _part(
    contest: Contest,
    order: list[str],
    stations: int,
    obj: dict[str, Any],
    problems: list[str],
    where: str,
) -> dict[str, Any]:
    """One unit's tally of one source, with its shares; checks the tally's arithmetic."""
    votes, prefs = obj["votes"], obj["preferences"]
    if set(votes) != set(order) or set(prefs) != _candidates(contest):
        problems.append(f"{where}: options or candidates are not the contest's")
    counts = [obj["ballots"], obj["invalid"], *votes.values(), *prefs.values()]
    counts += obj["invalid_by_reason"].values()
    if {type(n) for n in counts} != {int} or min(counts) < 0:
        problems.append(f"{where}: a count is negative or not an integer")
        return {"stations": stations, **obj}
    if sum(votes.values()) + obj["invalid"] != obj["ballots"]:
        problems.append(
            f"{where}: votes ({sum(votes.values())}) + invalid ({obj['invalid']}) != "
            f"ballots ({obj['ballots']})"
        )
    if obj["invalid_by_reason"] and sum(obj["invalid_by_reason"].values()) != obj["invalid"]:
        problems.append(f"{where}: invalid ballots by reason do not add up to invalid")
    base_name, counts_ = share_counts(contest, obj)
    percent = percentages(counts_, order=order)
    if percent and sum(parse_percent_units(p) for p in percent.values()) != 10_000:
        problems.append(f"{where}: shares add up to other than 100.00")
    out = {k: v for k, v in obj.items() if k != "contest_id"}
    out["stations"] = stations
    out["shares"] = {"base_name": base_name, "base": sum(counts_.values()), "percent": percent}
    return out


def _candidates(contest: Contest) -> set[str]:
    return {c.id for o in contest.options for c in o.candidates}


def _contest(
    geo: _Geo,
    contest: Contest,
    tallies: Mapping[tuple[str, str, str, str], tuple[int, dict[str, Any]]],
    turnout_rows: Mapping[tuple[str, str], Row],
    problems: list[str],
) -> dict[str, Any]:
    order = [o.id for o in contest.options]
    levels = geo.contest_levels[contest.id]
    units_out: dict[str, list[dict[str, Any]]] = {}
    vecs: dict[tuple[str, str, str], tuple[int, Vec]] = {}  # (source, level, unit)
    for level in LEVEL_ORDER:
        if level not in levels:
            continue
        entries = []
        for unit in levels[level]:
            entry: dict[str, Any] = {"id": unit, "stations": geo.station_count[(level, unit)]}
            if level == "station":
                entry["number"] = geo.number[unit]
            for source in SOURCES:
                got = tallies.get((contest.id, source, level, unit))
                if got is None:
                    if level != "station":
                        problems.append(f"contest {contest.id} {source} {level} {unit}: no row")
                    entry[source] = None
                    continue
                stations, obj = got
                where = f"contest {contest.id} {source} {level} {unit}"
                if stations > entry["stations"]:
                    problems.append(f"{where}: {stations} stations reported of {entry['stations']}")
                entry[source] = _part(contest, order, stations, obj, problems, where)
                vecs[(source, level, unit)] = (stations, obj_vec(obj))
            entries.append(entry)
        units_out[level] = entries
    problems += _children_add_up(geo, contest, levels, vecs)
    top_level = "nation" if contest.district_id is None else "district"
    top_unit = NATION if contest.district_id is None else contest.district_id
    area = (top_level, top_unit)
    voted = int(turnout_rows[area]["voted"]) if area in turnout_rows else 0
    outcome: dict[str, Any] = {}
    for source in SOURCES:
        got = tallies.get((contest.id, source, top_level, top_unit))
        if got is None or got[0] == 0:
            outcome[source] = None
            continue
        try:
            result = contest_outcome(
                contest,
                ContestTally.from_obj(got[1]),
                registered=geo.registered[area],
                voted=voted,
            )
        except ValueError as e:
            problems.append(f"contest {contest.id} {source}: no outcome: {e}")
            outcome[source] = None
            continue
        outcome[source] = result.to_obj()
        outcome[source]["complete"] = got[0] == geo.station_count[area]
    return {
        "id": contest.id,
        "kind": contest.kind.value,
        "district_id": contest.district_id,
        "outcome": outcome,
        "units": units_out,
    }


def _children_add_up(
    geo: _Geo,
    contest: Contest,
    levels: Mapping[str, list[str]],
    vecs: Mapping[tuple[str, str, str], tuple[int, Vec]],
) -> list[str]:
    """Every unit's tally equals the sum of its children's (stations count included)."""
    out = []
    for source in SOURCES:
        sums: dict[tuple[str, str], tuple[list[int], Vec]] = {}
        for level in ("station", "commission", "district", "region"):
            for unit in levels.get(level, ()):
                got = vecs.get((source, level, unit))
                if got is None:
                    continue
                parent = geo.parent[(level, unit)]
                if parent[0] not in levels:
                    continue
                n, acc = sums.setdefault(parent, ([0], {}))
                n[0] += got[0]
                add_vec(acc, got[1])
        for level in ("commission", "district", "region", "nation"):
            for unit in levels.get(level, ()):
                got = vecs.get((source, level, unit))
                if got is None:
                    continue
                n, acc = sums.get((level, unit), ([0], {}))
                if got[0] != n[0] or got[1] != acc:
                    out.append(
                        f"contest {contest.id} {source} {level} {unit}: is not the sum of its "
                        f"{_CHILD[level]}s"
                    )
    return out


_CHILD = {
    "commission": "station",
    "district": "commission",
    "region": "district",
    "nation": "region",
}


def _turnout(
    geo: _Geo, rows: Mapping[tuple[str, str], Row], agg: Aggregates, problems: list[str]
) -> dict[str, Any]:
    slots = hour_slots(geo.definition)
    shown = slots
    if agg.as_of is None:
        shown = []
    else:
        tz_hour = (
            dt.datetime.fromisoformat(agg.as_of).astimezone(ZoneInfo(geo.definition.timezone)).hour
        )
        last = min(max(tz_hour, int(slots[0])), int(slots[-1]))
        shown = [s for s in slots if int(s) <= last]
    points: dict[str, dict[str, int]] = {}
    for r in agg.hours:
        points.setdefault(r["station_id"], {})[r["hour"]] = int(r["voted"])
    curves: dict[tuple[str, str], list[int]] = {}
    for sid, pts in points.items():
        curve, carry = [], 0
        for slot in shown:
            carry = pts.get(slot, carry)
            curve.append(carry)
        for area in geo.areas[sid]:
            acc = curves.setdefault(area, [0] * len(shown))
            for i, v in enumerate(curve):
                acc[i] += v
    # child sums of the stored rows, to check them
    sums: dict[tuple[str, str], dict[str, int]] = {}
    for (level, unit), row in rows.items():
        parent = geo.parent.get((level, unit))
        if parent is not None:
            total = sums.setdefault(parent, dict.fromkeys(TURNOUT_COLUMNS, 0))
            for c in TURNOUT_COLUMNS:
                total[c] += int(row[c])
    out: dict[str, Any] = {"hours": shown}
    for level in LEVEL_ORDER:
        entries = []
        for unit in geo.units[level]:
            area = (level, unit)
            found = rows.get(area)
            values = {c: int(found[c]) if found else 0 for c in TURNOUT_COLUMNS}
            if level != "station" and values != sums.get(area, dict.fromkeys(TURNOUT_COLUMNS, 0)):
                problems.append(f"turnout {level} {unit}: is not the sum of its {_CHILD[level]}s")
            registered = geo.registered[area]
            if values["voted"] > registered:
                problems.append(
                    f"turnout {level} {unit}: {values['voted']} voted of {registered} registered"
                )
            if values["stations"] > geo.station_count[area]:
                problems.append(f"turnout {level} {unit}: more stations reported than exist")
            t = Turnout(registered=registered, voted=values["voted"]).to_obj()
            entry: dict[str, Any] = {
                "id": unit,
                **t,
                "stations": {"reported": values["stations"], "of": geo.station_count[area]},
                "identification": {
                    "stations": values["ident_stations"],
                    "identified_by_face": values["identified_by_face"],
                    "admitted_by_document": values["admitted_by_document"],
                    "mobile_box": values["mobile_box"],
                },
                "by_hour": dict(zip(shown, curves.get(area, [0] * len(shown)), strict=True)),
            }
            if level == "station":
                entry["number"] = geo.number[unit]
            entries.append(entry)
        out[level] = entries
    return out


def document_bytes(doc: Mapping[str, Any]) -> bytes:
    """The published byte form: canonical JSON (sorted keys, no spaces, no floats)."""
    return canonical_json(doc)


# --- publishing ------------------------------------------------------------------------------


def inputs_fingerprint(db: Database) -> tuple[Any, ...]:
    """What the document is computed from, summed up cheaply: the stored messages (only
    ever added) and the manual counts (added or corrected).  Equal fingerprints: nothing
    new to publish (the publisher still rebuilds now and then, in case of a correction
    with the same length in the same second)."""
    row = db.one(
        "SELECT (SELECT COUNT(*) FROM messages) AS messages,"
        " (SELECT COUNT(*) FROM manual_tallies) AS manual,"
        " (SELECT MAX(entered_at) FROM manual_tallies) AS entered,"
        " (SELECT SUM(LENGTH(tally)) FROM manual_tallies) AS size"
    )
    return () if row is None else tuple(row[k] for k in ("messages", "manual", "entered", "size"))


def publish(db: Database, definition: ElectionDefinition, *, at: dt.datetime | str) -> Publication:
    """Build, check and (if it is new and consistent) store the next results version.

    Also raises `turnout_outlier` for closed stations far from their region (outliers.py).
    """
    with db.snapshot() as tx:
        outliers_due = new_turnout_outliers(tx)
    if outliers_due:  # the write lock only when there is an alert to raise
        with db.transaction() as tx:
            check_turnout_outliers(tx, at)
    agg = read_aggregates(db)
    doc, problems = build_document(definition, agg)
    latest = _latest_version(db)
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        with db.transaction() as tx:
            alert_id = raise_alert(
                tx,
                kind="invariant_violation",
                severity="critical",
                station_id=None,
                detail=f"results not published, version {latest[0] if latest else 'none'} "
                f"stays: {shown}",
                evidence=[{"problem": p} for p in problems[:50]],
                at=at,
                key="publish: " + problems[0],
            )
        return Publication(latest[0] if latest else None, False, tuple(problems), alert_id)
    data = document_bytes(doc)
    sha = hashlib.sha256(data).hexdigest()
    if latest is not None and latest[1] == sha:
        return Publication(latest[0], False)
    with db.transaction() as tx:
        row = tx.one(
            "INSERT INTO published (published_at, sha256, document) VALUES (?, ?, ?)"
            " RETURNING version",
            (timestamp(at), sha, data.decode("utf-8")),
        )
    assert row is not None
    return Publication(int(row["version"]), True)


def _latest_version(db: Database) -> tuple[int, str] | None:
    row = db.one("SELECT version, sha256 FROM published ORDER BY version DESC LIMIT 1")
    return None if row is None else (int(row["version"]), row["sha256"])


def latest_published(db: Database | Tx) -> Published | None:
    """The version the public sees now (None before the first)."""
    row = db.one(
        "SELECT version, published_at, sha256, document FROM published"
        " ORDER BY version DESC LIMIT 1"
    )
    if row is None:
        return None
    return Published(int(row["version"]), row["published_at"], row["sha256"], row["document"])
