"""Accepting verified station messages: store the evidence, check the chain, apply.

The ingest verifies certificate and signature, then hands batches of messages to
`accept_batch`, which decides each one in ONE transaction for the whole batch
(group commit: one fsync per few hundred messages, not per message):

- accepted: new, stored as evidence, applied (ack it);
- duplicate: the same (station, seq, hash) is already stored: nothing changes (ack again);
- refused: not stored (no ack), with an alert: another message already holds this
  (station, seq) (equivocation), or the message does not fit the stored chain
  around it (broken_chain).

Messages may arrive out of order (two workers on a shared subscription, resends
after a reconnect).  A message with a hole below it is stored and applied (its
signature is valid) and `stations.complete_to` stays below the hole.  No alert is
raised here: with two workers a station's later message is routinely stored a
moment before its earlier one.  The server room's watch (central/watch.py) raises
`gap` for a hole that lasts (60 s); this module resolves it as soon as the holes it
names are filled.  What "applied" means per report kind, and why an older report
never overwrites a newer one, is in central/aggregate.py and docs/central.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from central.aggregate import (
    ASU,
    Changes,
    create_level_rows,
    ident_contribution,
    tally_vec,
)
from central.alerts import (
    evidence_of,
    raise_alert,
    resolve_alerts,
    timestamp,
)
from central.db import Database, Tx
from central.report_bodies import (
    ASU_REPORT,
    DELIVERED,
    FINAL,
    FIRST,
    HEARTBEAT,
    PHASE_RANK,
    STATE_RANK,
    TELEMETRY,
    TURNOUT,
    ZERO,
    Reading,
    read_message,
)
from crypto.envelope import GENESIS_PREV, Envelope
from election.definition import ElectionDefinition

ACCEPTED, DUPLICATE, REFUSED = "accepted", "duplicate", "refused"
MAX_KEPT_CONFLICTS = 20  # refused-but-signed messages kept per station as proof
_CHUNK = 500

Item = tuple[Envelope, bytes, dt.datetime | str]


@dataclass(frozen=True)
class Decision:
    """What became of one message; `reason` is a sentence for logs and operators."""

    status: str  # accepted | duplicate | refused
    reason: str
    station: str
    seq: int
    hash: str

    @property
    def ack(self) -> bool:
        """Whether the station gets an acknowledgement (stored now or before)."""
        return self.status in (ACCEPTED, DUPLICATE)


class ElectionMismatch(RuntimeError):
    """The database holds another election than the definition given."""


def load_stations(db: Database, definition: ElectionDefinition) -> int:
    """Create the stations and the zero aggregate rows of `definition` (idempotent).

    Binds the database to the election (meta key `election_hash`): a database holding
    another election is refused, so two elections' numbers can never mix.  Returns the
    number of stations.
    """
    with db.transaction() as tx:
        tx.execute(  # two workers starting at once: the second waits, then finds it
            "INSERT INTO meta (key, value) VALUES ('election_hash', ?)"
            " ON CONFLICT (key) DO NOTHING",
            (definition.election_hash,),
        )
        row = tx.one("SELECT value FROM meta WHERE key = 'election_hash'")
        assert row is not None
        if row["value"] != definition.election_hash:
            raise ElectionMismatch(
                f"this database holds election {row['value'][:16]}…, not "
                f"{definition.id} ({definition.election_hash[:16]}…): use a new database"
            )
        rows = []
        for s in definition.stations:
            commission = definition.commission(s.commission_id)
            district = definition.district(commission.district_id)
            rows.append(
                (
                    s.id,
                    s.number,
                    commission.id,
                    district.id,
                    district.region_id,
                    s.registered_voters,
                )
            )
        tx.executemany(
            "INSERT INTO stations (station_id, number, commission_id, district_id, region_id,"
            " registered) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (station_id) DO NOTHING",
            rows,
        )
        create_level_rows(tx, definition)
    return len(definition.stations)


def accept_batch(
    db: Database, definition: ElectionDefinition, items: Sequence[Item]
) -> list[Decision]:
    """Decide every (envelope, wire bytes, received_at) in one transaction; decisions
    come back in the order of `items`.

    The caller has verified each signature and certificate.  If this raises (the
    database failed), nothing of the batch was stored and nothing may be acked; a
    caller can retry the items one by one.
    """
    decisions: list[Decision | None] = [None] * len(items)
    order = sorted(range(len(items)), key=lambda i: (items[i][0].station, items[i][0].seq, i))
    with db.transaction() as tx:
        station_ids = sorted({items[i][0].station for i in order})
        rows = lock_stations(db, tx, station_ids)
        batch = _Batch(tx, definition)
        by_station: dict[str, list[int]] = {}
        for i in order:
            env, raw, received = items[i]
            early = _precheck(definition, env, raw, rows.get(env.station))
            if early is None:
                by_station.setdefault(env.station, []).append(i)
            else:
                decisions[i] = batch.refuse_early(env, raw, received, early)
        known = batch.known_messages(
            {sid: [items[i][0].seq for i in ix] for sid, ix in by_station.items()}
        )
        batch.changes.prefetch_turnout(tx, sorted(by_station))
        batch.changes.prefetch_tallies(  # the stations a final ASU report may set a tally of
            tx,
            sorted(
                {
                    items[i][0].station
                    for ix in by_station.values()
                    for i in ix
                    if items[i][0].kind == ASU_REPORT and items[i][0].body.get("phase") == FINAL
                }
            ),
            ASU,
        )
        for sid, indexes in sorted(by_station.items()):
            got = batch.station(rows[sid], [items[i] for i in indexes], known.get(sid, {}))
            for n, decision in got:
                decisions[indexes[n]] = decision
        batch.write()
    out = [d for d in decisions if d is not None]
    assert len(out) == len(items)  # one decision per item, or the caller's acks misalign
    return out


# --- inside one batch ----------------------------------------------------------------------


def lock_stations(db: Database, tx: Tx, station_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stations' rows, locked in id order (SQLite: the write transaction already is).

    Whatever else writes a station's alerts against its state (central/watch.py) locks
    the same way, so it and an ingest batch never both decide on a stale row."""
    lock = " ORDER BY station_id FOR UPDATE" if db.kind == "postgresql" else ""
    rows: dict[str, dict[str, Any]] = {}
    for start in range(0, len(station_ids), _CHUNK):
        chunk = station_ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        for r in tx.query(f"SELECT * FROM stations WHERE station_id IN ({marks})" + lock, chunk):
            rows[r["station_id"]] = r
    return rows


def _precheck(
    definition: ElectionDefinition, env: Envelope, raw: bytes, row: dict[str, Any] | None
) -> tuple[str, str] | None:
    """(alert kind, reason) for a message the ingest should already have refused."""
    if env.election != definition.election_hash:
        return "wrong_election", f"the message is for election {env.election[:16]}…, not this one"
    try:
        definition.station(env.station)
    except KeyError:
        return "unknown_device", f"station {env.station} is not in this election"
    if row is None:
        raise RuntimeError("stations are not loaded: run evidence.load_stations first")
    if env.sig.encode("ascii") not in raw:  # cheap: the ingest parsed raw into env strictly
        return "malformed", "the bytes given are not this envelope's wire form"
    return None


class _Batch:
    """State of one accept_batch transaction."""

    def __init__(self, tx: Tx, definition: ElectionDefinition) -> None:
        self.tx = tx
        self.definition = definition
        self.changes = Changes(definition)
        self.messages: list[tuple[Any, ...]] = []
        self.hours: list[tuple[str, str, int, int]] = []
        self.stations: list[_StationState] = []
        self.delivered: list[tuple[str, str]] = []  # (received_at, station id)

    def refuse_early(
        self, env: Envelope, raw: bytes, received: dt.datetime | str, early: tuple[str, str]
    ) -> Decision:
        kind, reason = early
        h = hashlib.sha256(raw).hexdigest()
        raise_alert(
            self.tx,
            kind=kind,
            severity="critical",
            station_id=env.station,
            detail=f"{env.kind} seq {env.seq} from station {env.station} refused: {reason}",
            evidence=[evidence_of(env.station, env.seq, h)],
            at=received,
            key=reason,
        )
        return Decision(REFUSED, reason, env.station, env.seq, h)

    def known_messages(
        self, seqs_by_station: dict[str, list[int]]
    ) -> dict[str, dict[int, tuple[str, str]]]:
        """(hash, prev) of the stored messages at, just below and just above each seq."""
        wanted = sorted(
            {
                (sid, x)
                for sid, seqs in seqs_by_station.items()
                for s in seqs
                for x in (s - 1, s, s + 1)
                if x >= 0
            }
        )
        known: dict[str, dict[int, tuple[str, str]]] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ", ".join("(?, ?)" for _ in chunk)
            for r in self.tx.query(  # a join, not a row-value IN: SQLite would scan for that
                f"SELECT m.station_id, m.seq, m.hash, m.prev FROM (VALUES {marks}) AS w"
                " JOIN messages m ON m.station_id = w.column1 AND m.seq = w.column2",
                [v for pair in chunk for v in pair],
            ):
                known.setdefault(r["station_id"], {})[int(r["seq"])] = (r["hash"], r["prev"])
        return known

    def station(
        self, row: dict[str, Any], items: list[Item], known: dict[int, tuple[str, str]]
    ) -> list[tuple[int, Decision]]:
        """Decide one station's messages (ascending seq) and apply the new ones; `write`
        stores them."""
        sid = row["station_id"]
        st = _StationState(row)
        out: list[tuple[int, Decision]] = []
        for n, (env, raw, received) in enumerate(items):
            h = hashlib.sha256(raw).hexdigest()
            rec = timestamp(received)
            refusal = self._chain_refusal(env, raw, h, rec, known)
            if refusal is not None:
                out.append((n, refusal))
                continue
            known[env.seq] = (h, env.prev)
            self.messages.append(
                (sid, env.seq, env.kind, h, env.prev, env.device, env.time, rec, raw)
            )
            reason = self._apply(st, env, h, rec, read_message(self.definition, env))
            st.accepted.append((env, h, rec))
            out.append((n, Decision(ACCEPTED, reason, sid, env.seq, h)))
        if st.accepted:
            self.stations.append(st)
        return out

    def write(self) -> None:
        """Store the batch's messages, then what they changed: one statement per table
        (psycopg pipelines executemany), so a batch costs a few round trips, not per message."""
        if self.messages:
            self.tx.executemany(
                "INSERT INTO messages (station_id, seq, kind, hash, prev, device_id, signed_at,"
                " received_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.messages,
            )
        for st in self.stations:
            self._gaps(st, st.accepted)
        if self.hours:
            self.tx.executemany(
                "INSERT INTO station_hours (station_id, hour, seq, voted) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (station_id, hour) DO UPDATE SET seq = excluded.seq,"
                " voted = excluded.voted WHERE excluded.seq > station_hours.seq",
                self.hours,
            )
        if self.stations:
            _StationState.save_all(self.tx, self.stations)
        if self.delivered:  # resolve_alerts(kind="not_delivered") of each, in one statement
            self.tx.executemany(
                "UPDATE alerts SET resolved_at = ? WHERE resolved_at IS NULL"
                " AND kind = 'not_delivered' AND station_id = ?",
                self.delivered,
            )
        self.changes.flush(self.tx)

    # --- the chain --------------------------------------------------------------------------

    def _chain_refusal(
        self,
        env: Envelope,
        raw: bytes,
        h: str,
        rec: str,
        known: dict[int, tuple[str, str]],
    ) -> Decision | None:
        sid, n = env.station, env.seq
        same = known.get(n)
        if same is not None:
            if same[0] == h:
                return Decision(
                    DUPLICATE, "already stored (same station, seq and hash): ack again", sid, n, h
                )
            reason = (
                f"equivocation: station {sid} already has a different message with seq {n} "
                f"(stored {same[0][:16]}…, this one {h[:16]}…); the stored one stays"
            )
            self._conflict("equivocation", env, raw, h, rec, reason, [(n, same[0])], key=f"seq {n}")
            return Decision(REFUSED, reason, sid, n, h)
        below, above = known.get(n - 1), known.get(n + 1)
        problem = None
        others: list[tuple[int, str]] = []
        if n == 0 and env.prev != GENESIS_PREV:
            problem = "seq 0 must start the chain (prev of 64 zeros)"
        elif below is not None and env.prev != below[0]:
            problem = f"its prev is not the hash of the stored seq {n - 1} ({below[0][:16]}…)"
            others.append((n - 1, below[0]))
        elif above is not None and above[1] != h:
            problem = f"the stored seq {n + 1} names another message as its prev"
            others.append((n + 1, above[0]))
        if problem is None:
            return None
        reason = f"broken chain: {env.kind} seq {n} of station {sid} refused: {problem}"
        self._conflict("broken_chain", env, raw, h, rec, reason, others, key=f"seq {n}")
        return Decision(REFUSED, reason, sid, n, h)

    def _conflict(
        self,
        kind: str,
        env: Envelope,
        raw: bytes,
        h: str,
        rec: str,
        reason: str,
        stored: list[tuple[int, str]],
        *,
        key: str,
    ) -> None:
        """Alert, and keep the refused bytes as proof (a few per station, not a flood)."""
        sid, n = env.station, env.seq
        kept = self.tx.one(
            "SELECT COUNT(*) AS n FROM conflicting_messages WHERE station_id = ?", (sid,)
        )
        if kept is not None and kept["n"] < MAX_KEPT_CONFLICTS:
            self.tx.execute(
                "INSERT INTO conflicting_messages (station_id, seq, hash, reason, received_at, raw)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (station_id, seq, hash) DO NOTHING",
                (sid, n, h, kind, rec, raw),
            )
        evidence = [evidence_of(sid, seq, x) for seq, x in stored]
        evidence.append(evidence_of(sid, n, h) | {"kept_in": "conflicting_messages"})
        raise_alert(
            self.tx,
            kind=kind,
            severity="critical",
            station_id=sid,
            detail=reason,
            evidence=evidence,
            at=rec,
            key=key,
        )

    def _gaps(self, st: _StationState, accepted: list[tuple[Envelope, str, str]]) -> None:
        """Advance complete_to; resolve the station's `gap` alert when its lowest hole is
        filled (the alert named it; the watch raises one again for a hole that remains
        and lasts: central/watch.py)."""
        sid = st.row["station_id"]
        new = sorted(env.seq for env, _, _ in accepted)
        start = before = st.row["complete_to"]
        had_hole = start < (-1 if st.before_last is None else st.before_last)
        if not had_hole and new == list(range(start + 1, start + 1 + len(new))):
            st.row["complete_to"] = new[-1]  # the usual case: in order, no hole before or now
            return
        present = {
            int(r["seq"])
            for r in self.tx.query(
                "SELECT seq FROM messages WHERE station_id = ? AND seq > ? ORDER BY seq",
                (sid, start),
            )
        }
        while start + 1 in present:
            start += 1
        st.row["complete_to"] = start
        if start > before:  # the lowest hole is filled: the open alert no longer holds
            rec = max(r for _, _, r in accepted)
            resolve_alerts(self.tx, kind="gap", station_id=sid, at=rec)

    # --- applying a stored message ----------------------------------------------------------

    def _apply(self, st: _StationState, env: Envelope, h: str, rec: str, r: Reading) -> str:
        """Update the station's state and contributions; returns the decision's reason."""
        row, seq = st.row, env.seq
        if row["last_seq"] is None or seq > row["last_seq"]:
            row["last_seq"] = seq
        if row["last_message_at"] is None or rec > row["last_message_at"]:
            row["last_message_at"] = rec
        if r.mode is not None and (row["mode_seq"] is None or seq > row["mode_seq"]):
            row["mode"], row["mode_seq"] = r.mode, seq
        if (
            env.kind == HEARTBEAT
            and r.telemetry is not None
            and (row["heartbeat_seq"] is None or seq > row["heartbeat_seq"])
        ):
            row.update(r.telemetry)
            row["heartbeat_seq"], row["last_heartbeat_at"] = seq, rec
        me = evidence_of(row["station_id"], seq, h)
        if r.problem is not None:
            self._alert(r.problem.kind, "critical", row, r.problem.detail, [me], rec, r.problem.key)
            return f"stored as evidence, not counted: {r.problem.detail}"
        if not r.counts:
            if r.mode == "test":
                return "stored as evidence; test mode: never counted"
            return "stored"
        notes: list[str] = []
        if r.asu is not None:
            notes.append(self._apply_asu(st, env, h, rec, r))
        if r.ident is not None:
            notes.append(self._apply_ident(st, env, h, rec, r))
        if r.voted is not None:
            notes.append(self._apply_turnout(st, env, h, rec, r))
        self.hours += [(row["station_id"], slot, seq, v) for slot, v in sorted(r.hours.items())]
        if r.state is not None and STATE_RANK[r.state] > STATE_RANK[row["state"]]:
            row["state"] = r.state
        if row["asu_phase"] == FINAL and row["ident_phase"] == FINAL and row["state"] != DELIVERED:
            row["state"] = DELIVERED
            self.delivered.append((rec, row["station_id"]))  # resolve not_delivered (write)
        return "stored and applied" + "".join(f"; {n}" for n in notes if n)

    def _apply_asu(self, st: _StationState, env: Envelope, h: str, rec: str, r: Reading) -> str:
        assert r.asu is not None
        row, sid, seq, phase = st.row, st.row["station_id"], env.seq, r.asu.phase
        me = evidence_of(sid, seq, h)
        applied = (
            evidence_of(sid, row["asu_seq"], row["asu_hash"])
            if row["asu_seq"] is not None
            else None
        )
        if r.asu.station_problems:
            self._alert(
                "report_problems",
                "medium",
                row,
                f"the final ASU report seq {seq} of station {row['number']} lists problems: "
                + "; ".join(r.asu.station_problems),
                [me],
                rec,
            )
        if phase == FINAL and row["asu_phase"] == FINAL and row["asu_seq"] != seq:
            self._alert(
                "second_final",
                "critical",
                row,
                f"station {row['number']} signed two final ASU reports (seq "
                f"{min(seq, row['asu_seq'])} and {max(seq, row['asu_seq'])}): the later one counts",
                [applied, me],
                rec,
            )
        if row["asu_seq"] is not None and (PHASE_RANK[phase], seq) < (
            PHASE_RANK[row["asu_phase"]],
            row["asu_seq"],
        ):
            if phase == ZERO and row["asu_phase"] == FINAL and seq > row["asu_seq"]:
                self._alert(
                    "stale_report",
                    "critical",
                    row,
                    f"station {row['number']} signed a zero ASU report (seq {seq}) after its "
                    f"final one (seq {row['asu_seq']}): not counted",
                    [applied, me],
                    rec,
                    key="a zero ASU report signed after the final one",
                )
            return f"the ASU report seq {row['asu_seq']} ({row['asu_phase']}) stays applied"
        row.update(asu_seq=seq, asu_phase=phase, asu_hash=h)
        if phase == FINAL:
            for cid, tally in sorted(r.asu.tallies.items()):
                self.changes.set_tally(self.tx, sid, cid, ASU, tally_vec(tally))
        return ""

    def _apply_ident(self, st: _StationState, env: Envelope, h: str, rec: str, r: Reading) -> str:
        assert r.ident is not None
        row, sid, seq, phase = st.row, st.row["station_id"], env.seq, r.ident.phase
        me = evidence_of(sid, seq, h)
        applied = (
            evidence_of(sid, row["ident_seq"], row["ident_hash"])
            if row["ident_seq"] is not None
            else None
        )
        if phase == FINAL and row["ident_phase"] == FINAL and row["ident_seq"] != seq:
            self._alert(
                "second_final",
                "critical",
                row,
                f"station {row['number']} signed two final identification reports (seq "
                f"{min(seq, row['ident_seq'])} and {max(seq, row['ident_seq'])}): the later "
                "one counts",
                [applied, me],
                rec,
            )
        if row["ident_seq"] is not None and (PHASE_RANK[phase], seq) < (
            PHASE_RANK[row["ident_phase"]],
            row["ident_seq"],
        ):
            if phase == FIRST and row["ident_phase"] == FINAL and seq > row["ident_seq"]:
                self._alert(
                    "stale_report",
                    "critical",
                    row,
                    f"station {row['number']} signed a first identification report (seq {seq}) "
                    f"after its final one (seq {row['ident_seq']}): not counted",
                    [applied, me],
                    rec,
                    key="a first identification report signed after the final one",
                )
            return f"the identification report seq {row['ident_seq']} stays applied"
        row.update(ident_seq=seq, ident_phase=phase, ident_hash=h)
        turnout = self.changes.turnout(self.tx, sid) | ident_contribution(r)
        self.changes.set_turnout(self.tx, sid, turnout)
        return ""

    def _apply_turnout(self, st: _StationState, env: Envelope, h: str, rec: str, r: Reading) -> str:
        assert r.voted is not None
        row, sid, seq = st.row, st.row["station_id"], env.seq
        if row["turnout_seq"] is not None and (int(r.final_turnout), seq) < (
            row["turnout_final"],
            row["turnout_seq"],
        ):
            if env.kind == TURNOUT and row["turnout_final"] and seq > row["turnout_seq"]:
                self._alert(
                    "stale_report",
                    "medium",
                    row,
                    f"station {row['number']} sent a turnout figure (seq {seq}) after its "
                    f"final identification report (seq {row['turnout_seq']}): not counted",
                    [evidence_of(sid, seq, h)],
                    rec,
                    key="a turnout figure signed after the final identification report",
                )
            return f"turnout stays at the figure of seq {row['turnout_seq']}"
        row.update(turnout_seq=seq, turnout_final=int(r.final_turnout))
        turnout = self.changes.turnout(self.tx, sid) | {"stations": 1, "voted": r.voted}
        self.changes.set_turnout(self.tx, sid, turnout)
        return ""

    def _alert(
        self,
        kind: str,
        severity: str,
        row: dict[str, Any],
        detail: str,
        evidence: list[Any],
        at: str,
        key: str | None = None,
    ) -> None:
        raise_alert(
            self.tx,
            kind=kind,
            severity=severity,
            station_id=row["station_id"],
            detail=detail,
            evidence=[e for e in evidence if e is not None],
            at=at,
            key=key,
        )


class _StationState:
    """A station's row during the batch; written back once at the end."""

    WRITABLE = (
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

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = dict(row)
        self.before_last: int | None = row["last_seq"]
        self.accepted: list[tuple[Envelope, str, str]] = []

    @classmethod
    def save_all(cls, tx: Tx, states: list[_StationState]) -> None:
        tx.executemany(
            "UPDATE stations SET "
            + ", ".join(f"{c} = ?" for c in cls.WRITABLE)
            + " WHERE station_id = ?",
            [(*(st.row[c] for c in cls.WRITABLE), st.row["station_id"]) for st in states],
        )
