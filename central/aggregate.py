"""Aggregates: each station's current contribution, and its sum at every level above.

Per station and contest there are two contributions, `asu` (the box's final report:
preliminary) and `manual` (the commission's hand count, entered at the CEC: final),
plus a turnout contribution (latest voters figure and the identification report's
admissions).  A change at a station subtracts its old contribution and adds the new
one at its commission, district, region and the nation (`Changes`): nothing is ever
recomputed country-wide on the hot path, and the order in which reports arrive
cannot change a sum.  A district contest (single member) is summed up to its
district only; a national one (party list, president, referendum) up to the nation.

Locking (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises anyway): a transaction
locks its stations' rows first, then `Changes.flush` touches the aggregate rows
above them in one global key order, so two workers wait for each other but never
deadlock.

`recompute` rebuilds all of it from the evidence (messages.raw) and the manual
tallies by a separate, set-based path (the winning report per station is chosen by
maximum, not by comparing with what is stored), so comparing the two checks both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from central.alerts import timestamp
from central.db import Database, Tx
from central.report_bodies import (
    DELIVERED,
    FINAL,
    HEARTBEAT,
    NOT_OPENED,
    PHASE_RANK,
    STATE_RANK,
    TELEMETRY,
    Reading,
    read_message,
)
from crypto.envelope import Envelope
from election.definition import Contest, ElectionDefinition
from election.tally import UNSPECIFIED_REASON, ContestTally

NATION = "nation"  # the one unit of the nation level
LEVELS = ("nation", "region", "district", "commission", "station")
ASU, MANUAL = "asu", "manual"
SOURCES = (ASU, MANUAL)
TURNOUT_COLUMNS = (
    "stations",
    "voted",
    "ident_stations",
    "identified_by_face",
    "admitted_by_document",
    "mobile_box",
)
# stations columns derived from messages (recompute rewrites exactly these)
DERIVED_COLUMNS = (
    "state",
    "mode",
    "last_seq",
    "last_message_at",
    "last_heartbeat_at",
    *TELEMETRY,
    "complete_to",
    "mode_seq",
    "heartbeat_seq",
    "asu_seq",
    "asu_phase",
    "asu_hash",
    "ident_seq",
    "ident_phase",
    "ident_hash",
    "turnout_seq",
    "turnout_final",
)

Vec = dict[str, int]
"""A tally as a sparse linear vector (no zero entries): "ballots", "invalid",
"v:<option>", "p:<candidate>", "r:<invalid reason>".  A tally without an invalid
breakdown counts its invalid ballots under the reason "unspecified", as
ContestTally.__add__ does, so that sums and differences are plain vector arithmetic."""

Key = tuple[str, str, str, str]  # level, unit, contest, source


class ManualCountError(ValueError):
    """A manual count that cannot be entered; the message lists every problem."""


# --- tallies as vectors ------------------------------------------------------------------


def tally_vec(t: ContestTally) -> Vec:
    """The vector of a tally (see `Vec`)."""
    v: Vec = {"ballots": t.ballots, "invalid": t.invalid}
    for k, n in t.votes.items():
        v["v:" + k] = n
    for k, n in t.preferences.items():
        v["p:" + k] = n
    reasons = t.invalid_by_reason or ({UNSPECIFIED_REASON: t.invalid} if t.invalid else {})
    for k, n in reasons.items():
        v["r:" + k] = v.get("r:" + k, 0) + n
    return {k: n for k, n in v.items() if n}


def obj_vec(obj: Mapping[str, Any]) -> Vec:
    """The vector of a stored tally object (ContestTally.to_obj form)."""
    v: Vec = {"ballots": obj["ballots"], "invalid": obj["invalid"]}
    for k, n in obj["votes"].items():
        v["v:" + k] = n
    for k, n in obj["preferences"].items():
        v["p:" + k] = n
    reasons = obj["invalid_by_reason"] or (
        {UNSPECIFIED_REASON: obj["invalid"]} if obj["invalid"] else {}
    )
    for k, n in reasons.items():
        v["r:" + k] = v.get("r:" + k, 0) + n
    return {k: n for k, n in v.items() if n}


def vec_obj(contest: Contest, v: Mapping[str, int]) -> dict[str, Any]:
    """The stored form of a vector: ContestTally.to_obj() with every option and candidate,
    the invalid breakdown without zeros (and none if it only says "unspecified")."""
    reasons = {k[2:]: n for k in sorted(k for k in v if k.startswith("r:")) if (n := v[k])}
    if set(reasons) == {UNSPECIFIED_REASON}:
        reasons = {}
    votes, preferences = _vec_keys(contest)
    get = v.get
    return {
        "contest_id": contest.id,
        "ballots": get("ballots", 0),
        "invalid": get("invalid", 0),
        "invalid_by_reason": reasons,
        "votes": {oid: get(k, 0) for k, oid in votes},
        "preferences": {cid: get(k, 0) for k, cid in preferences},
    }


_VEC_KEYS: dict[int, tuple[Contest, list[tuple[str, str]], list[tuple[str, str]]]] = {}


def _vec_keys(contest: Contest) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(vector key, id) of the contest's options and of its candidates, in contest order
    (made once per contest: a party list has hundreds of candidates)."""
    got = _VEC_KEYS.get(id(contest))
    if got is None or got[0] is not contest:  # the contest is kept, so its id stays its own
        if len(_VEC_KEYS) >= 4096:
            _VEC_KEYS.clear()
        got = (
            contest,
            [("v:" + o.id, o.id) for o in contest.options],
            [("p:" + c.id, c.id) for o in contest.options for c in o.candidates],
        )
        _VEC_KEYS[id(contest)] = got
    return got[1], got[2]


def add_vec(acc: Vec, v: Mapping[str, int], sign: int = 1) -> None:
    """acc += sign * v, dropping entries that become zero."""
    for k, n in v.items():
        m = acc.get(k, 0) + sign * n
        if m:
            acc[k] = m
        else:
            acc.pop(k, None)


def dumps(obj: Any) -> str:
    """The text form of stored JSON: sorted keys, no spaces (so equal means equal bytes)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- where a station's numbers go ----------------------------------------------------------


def station_areas(definition: ElectionDefinition, station_id: str) -> list[tuple[str, str]]:
    """(level, unit) of every unit above a station, lowest first."""
    return list(_areas(definition)(station_id))


Areas = tuple[tuple[str, str], ...]
_AREAS: dict[str, dict[str, Areas]] = {}


def _areas(definition: ElectionDefinition) -> Callable[[str], Areas]:
    """station id -> its `station_areas`, remembered per election (looked up per message)."""
    known = _AREAS.get(definition.election_hash)
    if known is None:
        if len(_AREAS) >= 16:
            _AREAS.clear()
        known = _AREAS[definition.election_hash] = {}

    def areas(station_id: str) -> Areas:
        got = known.get(station_id)
        if got is None:
            commission = definition.commission(definition.station(station_id).commission_id)
            district = definition.district(commission.district_id)
            got = known[station_id] = (
                ("commission", commission.id),
                ("district", district.id),
                ("region", district.region_id),
                ("nation", NATION),
            )
        return got

    return areas


def contest_areas(
    definition: ElectionDefinition, station_id: str, contest: Contest
) -> list[tuple[str, str]]:
    """The units above a station a contest's tally is summed into: up to its own area."""
    areas = station_areas(definition, station_id)
    return areas[:2] if contest.district_id is not None else areas


def contest_units(definition: ElectionDefinition, contest: Contest) -> list[tuple[str, str]]:
    """Every (level, unit) above station level that holds this contest."""
    units: list[tuple[str, str]] = []
    if contest.district_id is None:
        units.append(("nation", NATION))
        units += [("region", r.id) for r in definition.regions]
        units += [("district", d.id) for d in definition.districts]
        units += [("commission", c.id) for c in definition.commissions]
    else:
        units.append(("district", contest.district_id))
        units += [
            ("commission", c.id)
            for c in definition.commissions
            if c.district_id == contest.district_id
        ]
    return units


def create_level_rows(tx: Tx, definition: ElectionDefinition) -> None:
    """Zero tallies for every unit above station level (idempotent), so concurrent
    workers only ever update existing rows."""
    rows = []
    for contest in definition.contests:
        zero = dumps(vec_obj(contest, {}))
        for level, unit in contest_units(definition, contest):
            rows += [(level, unit, contest.id, source, zero) for source in SOURCES]
    tx.executemany(
        "INSERT INTO tallies (level, unit, contest_id, source, stations, tally)"
        " VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (level, unit, contest_id, source) DO NOTHING",
        rows,
    )


# --- incremental changes -------------------------------------------------------------------


class Changes:
    """The aggregate changes of one transaction: station contributions set, and the
    differences they make above, applied together by `flush`.

    Tracks each touched station's current contribution itself, so setting the same
    one twice in a batch (a report and then a later one) adds up right.  The
    differences above are summed once, at `flush`: each changed station's (new - old)
    into its commission, commissions into their districts, and so on up (a batch of
    final reports touches a few commissions, so this is much less work than adding
    every station into all four levels).
    """

    def __init__(self, definition: ElectionDefinition) -> None:
        self.definition = definition
        self._areas = _areas(definition)
        self._tallies: dict[tuple[str, str, str], Vec | None] = {}
        self._loaded: set[tuple[str, str]] = set()
        self._dirty: set[tuple[str, str, str]] = set()
        self._before: dict[tuple[str, str, str], Vec | None] = {}  # as at the last flush
        self._turnout: dict[str, dict[str, int]] = {}
        self._dirty_turnout: set[str] = set()
        self._turnout_delta: dict[tuple[str, str], dict[str, int]] = {}

    def tally(self, tx: Tx, station_id: str, contest_id: str, source: str) -> Vec | None:
        """The station's current contribution to a contest from a source (None: none)."""
        if (station_id, source) not in self._loaded:
            self._loaded.add((station_id, source))
            for r in tx.query(
                "SELECT contest_id, tally FROM tallies"
                " WHERE level = 'station' AND unit = ? AND source = ?",
                (station_id, source),
            ):
                self._tallies.setdefault(
                    (station_id, r["contest_id"], source), obj_vec(json.loads(r["tally"]))
                )
        return self._tallies.get((station_id, contest_id, source))

    def prefetch_tallies(self, tx: Tx, station_ids: list[str], source: str) -> None:
        """Read the contributions of many stations from a source at once (as `tally`
        would, one query per station)."""
        todo = [s for s in station_ids if (s, source) not in self._loaded]
        for start in range(0, len(todo), 500):
            chunk = todo[start : start + 500]
            for r in tx.query(
                "SELECT unit, contest_id, tally FROM tallies WHERE level = 'station'"
                f" AND source = ? AND unit IN ({', '.join('?' * len(chunk))})",
                [source, *chunk],
            ):
                self._tallies.setdefault(
                    (r["unit"], r["contest_id"], source), obj_vec(json.loads(r["tally"]))
                )
            self._loaded.update((s, source) for s in chunk)

    def set_tally(
        self, tx: Tx, station_id: str, contest_id: str, source: str, new: Vec | None
    ) -> None:
        key = (station_id, contest_id, source)
        old = self.tally(tx, station_id, contest_id, source)
        if old == new:
            return
        self._before.setdefault(key, old)
        self._tallies[key] = new
        self._dirty.add(key)

    def _tally_deltas(self) -> dict[Key, tuple[Vec, list[int]]]:
        """What the changed station contributions add at every level above them:
        (vector, number of stations) per (level, unit, contest, source)."""
        parent: dict[Key, tuple[Vec, list[int]]] = {}
        for key, old in sorted(self._before.items()):
            new = self._tallies[key]
            if old == new:
                continue
            sid, cid, source = key
            commission = self._areas(sid)[0][1]
            vec, stations = parent.setdefault(("commission", commission, cid, source), ({}, [0]))
            if old is not None:
                add_vec(vec, old, -1)
                stations[0] -= 1
            if new is not None:
                add_vec(vec, new)
                stations[0] += 1
        out = dict(parent)
        while parent:  # commissions into districts, districts into regions, regions into the nation
            children, parent = parent, {}
            for (level, unit, cid, source), (vec, stations) in children.items():
                above = self._above(level, unit, cid)
                if above is None:
                    continue
                acc, n = parent.setdefault((*above, cid, source), ({}, [0]))
                add_vec(acc, vec)
                n[0] += stations[0]
            out.update(parent)
        return out

    def _above(self, level: str, unit: str, contest_id: str) -> tuple[str, str] | None:
        """The unit a unit's numbers of a contest are summed into (None: the top for it)."""
        if level == "commission":
            return ("district", self.definition.commission(unit).district_id)
        if level == "district" and self.definition.contest(contest_id).district_id is None:
            return ("region", self.definition.district(unit).region_id)
        if level == "region":
            return ("nation", NATION)
        return None  # the nation, or the district of a district contest

    def turnout(self, tx: Tx, station_id: str) -> dict[str, int]:
        """The station's current turnout contribution (all zeros before any)."""
        if station_id not in self._turnout:
            row = tx.one(
                "SELECT * FROM turnout WHERE level = 'station' AND unit = ?", (station_id,)
            )
            self._turnout[station_id] = {c: int(row[c]) if row else 0 for c in TURNOUT_COLUMNS}
        return dict(self._turnout[station_id])

    def prefetch_turnout(self, tx: Tx, station_ids: list[str]) -> None:
        """Read the turnout rows of many stations at once (one query, not one each)."""
        todo = [s for s in station_ids if s not in self._turnout]
        for start in range(0, len(todo), 500):
            chunk = todo[start : start + 500]
            found = {
                r["unit"]: r
                for r in tx.query(
                    "SELECT * FROM turnout WHERE level = 'station' AND unit IN"
                    f" ({', '.join('?' * len(chunk))})",
                    chunk,
                )
            }
            for sid in chunk:
                row = found.get(sid)
                self._turnout[sid] = {c: int(row[c]) if row else 0 for c in TURNOUT_COLUMNS}

    def set_turnout(self, tx: Tx, station_id: str, new: Mapping[str, int]) -> None:
        old = self.turnout(tx, station_id)
        if old == dict(new):
            return
        self._turnout[station_id] = dict(new)
        self._dirty_turnout.add(station_id)
        for area in self._areas(station_id):
            delta = self._turnout_delta.setdefault(area, dict.fromkeys(TURNOUT_COLUMNS, 0))
            for c in TURNOUT_COLUMNS:
                delta[c] += new[c] - old[c]

    def flush(self, tx: Tx) -> None:
        """Write station contributions, then add the differences above, in key order."""
        gone = [k for k in sorted(self._dirty) if self._tallies[k] is None]
        if gone:
            tx.executemany(
                "DELETE FROM tallies WHERE level = 'station' AND unit = ?"
                " AND contest_id = ? AND source = ?",
                gone,
            )
        station_tallies = [
            (sid, cid, source, dumps(vec_obj(self.definition.contest(cid), vec)))
            for (sid, cid, source) in sorted(self._dirty)
            if (vec := self._tallies[(sid, cid, source)]) is not None
        ]
        if station_tallies:
            tx.executemany(
                "INSERT INTO tallies (level, unit, contest_id, source, stations, tally)"
                " VALUES ('station', ?, ?, ?, 1, ?) ON CONFLICT (level, unit, contest_id, source)"
                " DO UPDATE SET stations = 1, tally = excluded.tally",
                station_tallies,
            )
        if self._dirty_turnout:
            tx.executemany(
                f"INSERT INTO turnout (level, unit, {', '.join(TURNOUT_COLUMNS)})"
                f" VALUES ('station', ?, {', '.join('?' * len(TURNOUT_COLUMNS))})"
                " ON CONFLICT (level, unit) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in TURNOUT_COLUMNS),
                [
                    (sid, *(self._turnout[sid][c] for c in TURNOUT_COLUMNS))
                    for sid in sorted(self._dirty_turnout)
                ],
            )
        where = " WHERE level = ? AND unit = ? AND contest_id = ? AND source = ?"
        updated = []
        deltas = self._tally_deltas()
        for key in sorted(deltas):
            vec, (stations,) = deltas[key]
            if not vec and not stations:
                continue
            # the UPDATE takes the row lock (key order: no deadlock) and reads the row
            row = tx.one(
                "UPDATE tallies SET stations = stations + ?" + where + " RETURNING tally",
                (stations, *key),
            )
            if row is None:
                raise RuntimeError(
                    f"no aggregate row for {key}: run evidence.load_stations for this election"
                )
            total = obj_vec(json.loads(row["tally"]))
            add_vec(total, vec)
            updated.append((dumps(vec_obj(self.definition.contest(key[2]), total)), *key))
        if updated:
            tx.executemany("UPDATE tallies SET tally = ?" + where, updated)
        rows = [
            (level, unit, *(delta[c] for c in TURNOUT_COLUMNS))
            for (level, unit), delta in sorted(self._turnout_delta.items())
            if any(delta.values())
        ]
        if rows:
            tx.executemany(
                f"INSERT INTO turnout (level, unit, {', '.join(TURNOUT_COLUMNS)})"
                f" VALUES (?, ?, {', '.join('?' * len(TURNOUT_COLUMNS))})"
                " ON CONFLICT (level, unit) DO UPDATE SET "
                + ", ".join(f"{c} = turnout.{c} + excluded.{c}" for c in TURNOUT_COLUMNS),
                rows,
            )
        self._dirty.clear()
        self._dirty_turnout.clear()
        self._before.clear()
        self._turnout_delta.clear()


# --- the manual count ----------------------------------------------------------------------


def apply_manual(
    tx: Tx,
    definition: ElectionDefinition,
    station_id: str,
    tallies: Mapping[str, ContestTally],
    at: Any,
) -> None:
    """Enter (or correct) the manual count of some contests of a station.

    All or nothing: a count with any problem raises `ManualCountError` naming every
    one, and changes nothing.  Comparing it with the ASU count is central/reconcile.py's
    job (with its tolerances).  `at` is an aware datetime or ISO string.
    """
    problems: list[str] = []
    try:
        contests = {c.id: c for c in definition.contests_for_station(station_id)}
    except KeyError:
        raise ManualCountError(f"no station {station_id} in this election") from None
    for contest_id, tally in sorted(tallies.items()):
        contest = contests.get(contest_id)
        if contest is None:
            problems.append(f"station {station_id} does not vote in contest {contest_id}")
            continue
        if tally.contest_id != contest_id:
            problems.append(f"the tally given for {contest_id} is of contest {tally.contest_id}")
            continue
        problems += [f"{contest_id}: {p}" for p in tally.problems(contest)]
    if not tallies:
        problems.append("no contest given")
    if problems:
        raise ManualCountError("; ".join(problems))
    when = timestamp(at)
    if (
        tx.execute(
            "UPDATE stations SET station_id = station_id WHERE station_id = ?", (station_id,)
        )
        != 1
    ):
        raise RuntimeError("stations are not loaded: run evidence.load_stations first")
    changes = Changes(definition)
    for contest_id, tally in sorted(tallies.items()):
        vec = tally_vec(tally)
        obj = dumps(vec_obj(contests[contest_id], vec))
        tx.execute(
            "INSERT INTO manual_tallies (station_id, contest_id, tally, entered_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (station_id, contest_id)"
            " DO UPDATE SET tally = excluded.tally, entered_at = excluded.entered_at",
            (station_id, contest_id, obj, when),
        )
        changes.set_tally(tx, station_id, contest_id, MANUAL, vec)
    changes.flush(tx)


def station_tally(
    tx: Tx | Database, station_id: str, contest_id: str, source: str
) -> ContestTally | None:
    """A station's current tally of a contest from `source` ("asu" or "manual"), if any."""
    row = tx.one(
        "SELECT tally FROM tallies WHERE level = 'station' AND unit = ? AND contest_id = ?"
        " AND source = ?",
        (station_id, contest_id, source),
    )
    return None if row is None else ContestTally.from_obj(json.loads(row["tally"]))


# --- the rebuild from evidence -------------------------------------------------------------


@dataclass
class StationSummary:
    """What a station's stored messages add up to, chosen set-wise (see `summarize`)."""

    columns: dict[str, Any]
    asu: dict[str, Vec] = field(default_factory=dict)
    turnout: dict[str, int] | None = None
    hours: dict[str, tuple[int, int]] = field(default_factory=dict)  # slot -> (seq, voted)


def summarize(
    definition: ElectionDefinition, messages: Iterable[tuple[Envelope, str, str]]
) -> StationSummary:
    """A station's derived state from all of its stored messages (envelope, hash,
    received_at), by the rules of docs/central.md: per report kind the counted message
    of highest (phase, seq) wins; turnout from the highest (final identification, seq);
    every hour slot from the highest seq that states it."""
    msgs = sorted(
        ((env, h, rec, read_message(definition, env)) for env, h, rec in messages),
        key=lambda m: m[0].seq,
    )
    cols: dict[str, Any] = dict.fromkeys(DERIVED_COLUMNS)
    cols["state"] = NOT_OPENED
    cols["complete_to"] = -1
    if not msgs:
        return StationSummary(cols)
    seqs = [m[0].seq for m in msgs]
    cols["last_seq"] = seqs[-1]
    cols["last_message_at"] = max(m[2] for m in msgs)
    while (
        cols["complete_to"] + 1 < len(seqs)
        and seqs[cols["complete_to"] + 1] == cols["complete_to"] + 1
    ):
        cols["complete_to"] += 1
    for env, _h, _rec, r in msgs:  # ascending seq: the last one wins
        if r.mode is not None:
            cols["mode"], cols["mode_seq"] = r.mode, env.seq
    for env, _h, rec, r in msgs:
        if env.kind == HEARTBEAT and r.telemetry is not None:
            cols.update(r.telemetry)
            cols["heartbeat_seq"], cols["last_heartbeat_at"] = env.seq, rec
    summary = StationSummary(cols)
    asu = ident = turnout = None
    for m in msgs:  # ascending seq; a message wins over an earlier one of equal rank
        env, _h, _rec, r = m
        if not r.counts:
            continue
        if r.asu is not None and (
            asu is None or _phase_rank(r, env) >= _phase_rank(asu[3], asu[0])
        ):
            asu = m
        if r.ident is not None and (
            ident is None or _phase_rank(r, env) >= _phase_rank(ident[3], ident[0])
        ):
            ident = m
        if r.voted is not None and (
            turnout is None
            or (r.final_turnout, env.seq) >= (turnout[3].final_turnout, turnout[0].seq)
        ):
            turnout = m
        for slot, voted in r.hours.items():
            summary.hours[slot] = (env.seq, voted)
        if r.state is not None and STATE_RANK[r.state] > STATE_RANK[cols["state"]]:
            cols["state"] = r.state
    if asu is not None:
        env, h, _rec, r = asu
        assert r.asu is not None
        cols.update(asu_seq=env.seq, asu_phase=r.asu.phase, asu_hash=h)
        if r.asu.phase == FINAL:
            summary.asu = {cid: tally_vec(t) for cid, t in r.asu.tallies.items()}
    if turnout is not None:
        env, _h, _rec, r = turnout
        assert r.voted is not None
        cols.update(turnout_seq=env.seq, turnout_final=int(r.final_turnout))
        summary.turnout = dict.fromkeys(TURNOUT_COLUMNS, 0) | {"stations": 1, "voted": r.voted}
    if ident is not None:
        env, h, _rec, r = ident
        assert r.ident is not None and summary.turnout is not None
        cols.update(ident_seq=env.seq, ident_phase=r.ident.phase, ident_hash=h)
        summary.turnout |= ident_contribution(r)
    if cols["asu_phase"] == FINAL and cols["ident_phase"] == FINAL:
        cols["state"] = DELIVERED
    return summary


def _phase_rank(r: Reading, env: Envelope) -> tuple[int, int]:
    report = r.asu or r.ident
    assert report is not None
    return PHASE_RANK[report.phase], env.seq


def ident_contribution(r: Reading) -> dict[str, int]:
    """The identification part of a station's turnout contribution."""
    assert r.ident is not None
    return {
        "ident_stations": 1,
        "identified_by_face": r.ident.identified_by_face,
        "admitted_by_document": r.ident.admitted_by_document,
        "mobile_box": r.ident.mobile_box,
    }


def recompute(db: Database, definition: ElectionDefinition) -> None:
    """Rebuild every aggregate and every station's derived state from the stored
    evidence and the manual tallies, in one transaction (alerts are left alone).

    Meant for checking and repair with the ingest stopped; running alongside it is
    safe (it locks every station first) but holds the ingest up while it runs.
    """
    lock = " ORDER BY station_id FOR UPDATE" if db.kind == "postgresql" else ""
    with db.transaction() as tx:
        tx.query("SELECT station_id FROM stations" + lock)
        for table in ("tallies", "turnout", "station_hours"):
            tx.execute(f"DELETE FROM {table}")
        create_level_rows(tx, definition)
        manual: dict[str, dict[str, Vec]] = {}
        for r in tx.query("SELECT station_id, contest_id, tally FROM manual_tallies"):
            manual.setdefault(r["station_id"], {})[r["contest_id"]] = obj_vec(
                json.loads(r["tally"])
            )
        level_tallies: dict[Key, tuple[Vec, list[int]]] = {}
        level_turnout: dict[tuple[str, str], dict[str, int]] = {}
        station_rows: list[tuple[Any, ...]] = []
        for station in definition.stations:
            sid = station.id
            stored = tx.query(
                "SELECT hash, raw, received_at FROM messages WHERE station_id = ? ORDER BY seq",
                (sid,),
            )
            summary = summarize(
                definition,
                ((Envelope.from_bytes(r["raw"]), r["hash"], r["received_at"]) for r in stored),
            )
            tx.execute(
                "UPDATE stations SET "
                + ", ".join(f"{c} = ?" for c in DERIVED_COLUMNS)
                + " WHERE station_id = ?",
                (*(summary.columns[c] for c in DERIVED_COLUMNS), sid),
            )
            tx.executemany(
                "INSERT INTO station_hours (station_id, hour, seq, voted) VALUES (?, ?, ?, ?)",
                [(sid, slot, seq, voted) for slot, (seq, voted) in sorted(summary.hours.items())],
            )
            for source, vecs in ((ASU, summary.asu), (MANUAL, manual.get(sid, {}))):
                for cid, vec in sorted(vecs.items()):
                    contest = definition.contest(cid)
                    station_rows.append((sid, cid, source, dumps(vec_obj(contest, vec))))
                    for level, unit in contest_areas(definition, sid, contest):
                        acc, n = level_tallies.setdefault((level, unit, cid, source), ({}, [0]))
                        add_vec(acc, vec)
                        n[0] += 1
            if summary.turnout is not None:
                tx.execute(
                    f"INSERT INTO turnout (level, unit, {', '.join(TURNOUT_COLUMNS)})"
                    f" VALUES ('station', ?, {', '.join('?' * len(TURNOUT_COLUMNS))})",
                    (sid, *(summary.turnout[c] for c in TURNOUT_COLUMNS)),
                )
                for area in station_areas(definition, sid):
                    acc_t = level_turnout.setdefault(area, dict.fromkeys(TURNOUT_COLUMNS, 0))
                    for c in TURNOUT_COLUMNS:
                        acc_t[c] += summary.turnout[c]
        tx.executemany(
            "INSERT INTO tallies (level, unit, contest_id, source, stations, tally)"
            " VALUES ('station', ?, ?, ?, 1, ?)",
            station_rows,
        )
        tx.executemany(
            "UPDATE tallies SET stations = ?, tally = ?"
            " WHERE level = ? AND unit = ? AND contest_id = ? AND source = ?",
            [
                (n[0], dumps(vec_obj(definition.contest(key[2]), vec)), *key)
                for key, (vec, n) in sorted(level_tallies.items())
            ],
        )
        tx.executemany(
            f"INSERT INTO turnout (level, unit, {', '.join(TURNOUT_COLUMNS)})"
            f" VALUES (?, ?, {', '.join('?' * len(TURNOUT_COLUMNS))})",
            [
                (level, unit, *(t[c] for c in TURNOUT_COLUMNS))
                for (level, unit), t in sorted(level_turnout.items())
            ],
        )


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every derived row, in a stable order: equal snapshots mean equal aggregates."""
    with db.transaction() as tx:
        return {
            "stations": [
                tuple(r[c] for c in ("station_id", *DERIVED_COLUMNS))
                for r in tx.query("SELECT * FROM stations ORDER BY station_id")
            ],
            "tallies": [
                tuple(r.values())
                for r in tx.query(
                    "SELECT level, unit, contest_id, source, stations, tally FROM tallies"
                    " ORDER BY level, unit, contest_id, source"
                )
            ],
            "turnout": [
                tuple(r.values())
                for r in tx.query(
                    f"SELECT level, unit, {', '.join(TURNOUT_COLUMNS)} FROM turnout"
                    " ORDER BY level, unit"
                )
                if any(r[c] for c in TURNOUT_COLUMNS)
            ],
            "station_hours": [
                tuple(r.values())
                for r in tx.query(
                    "SELECT station_id, hour, seq, voted FROM station_hours"
                    " ORDER BY station_id, hour"
                )
            ],
        }
