"""The ballot box's count: what to do with each read sheet, and the records that are counted.

A sheet counts only once the box confirms it fell in (`counted`); before the
ACCEPT is sent, the station durably holds what it will count (`hold`), so a
power cut at any step resolves to "counted once" or "returned", never both.

Ballot records keep no time and no order: each is filed under 16 random
bytes in a WITHOUT ROWID table (stored in key order), so nothing lines a
ballot up with the identification sequence.  Counters are updated in the
same transaction as the record and checked against the records at close.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from election.canonical import canonical_json
from election.definition import Contest, ElectionDefinition
from election.tally import ContestTally
from station.eventlog import EventLog
from station.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS ballots (
    id       BLOB PRIMARY KEY,            -- 16 random bytes: no time, no order
    style_id TEXT NOT NULL,
    batch    TEXT NOT NULL CHECK (batch IN ('box', 'deferred')),
    contests TEXT NOT NULL                -- canonical JSON per contest: status, option, ...
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS ballot_counters (
    batch      TEXT NOT NULL,
    contest_id TEXT NOT NULL,
    key        TEXT NOT NULL,             -- ballots, vote:<option>, pref:<cand>, invalid:<why>
    n          INTEGER NOT NULL,
    PRIMARY KEY (batch, contest_id, key)
) WITHOUT ROWID;

-- A sheet the box was told to accept, not yet confirmed in the box.
CREATE TABLE IF NOT EXISTS ballot_pending (
    pending_id   TEXT PRIMARY KEY,
    record       TEXT NOT NULL,
    box_serial   TEXT NOT NULL,          -- with drops_before, tells after a power cut
    drops_before INTEGER NOT NULL        -- whether the sheet fell (station/asu.py)
) WITHOUT ROWID;

-- Sheets given back to the voter, by reason (counts only).
CREATE TABLE IF NOT EXISTS sheet_returns (
    reason TEXT PRIMARY KEY,
    n      INTEGER NOT NULL
) WITHOUT ROWID;
"""


class Condition(StrEnum):
    """Why a sheet is not plainly valid; what happens to it is a setting per condition."""

    OVERVOTE = "overvote"
    BLANK = "blank"
    MARGINAL = "marginal"
    UNREADABLE = "unreadable"


class Action(StrEnum):
    RETURN = "return"  # give it back to the voter with a message; the voter may cast it as is
    ACCEPT_AS_INVALID = "accept_as_invalid"


BATCHES = ("box", "deferred")
BATCH_META = "ballot_batch"  # station meta: the batch sheets are counted in now
DEFERRED_FROM_META = "deferred_batch_from"  # deferred sheets counted before this batch began

SHEET_REFUSALS = frozenset(
    {"foreign_election", "foreign_style", "test_sheet_in_live", "live_sheet_in_test", "unreadable"}
)


@dataclass(frozen=True)
class ContestRead:
    contest_id: str
    status: str  # valid | overvote | blank | marginal | unreadable
    option_id: str | None = None
    candidate_id: str | None = None


@dataclass(frozen=True)
class SheetRead:
    """What the mark reader made of one sheet (station.marks gives one)."""

    status: str  # ok, or one of SHEET_REFUSALS
    style_id: str | None
    contests: tuple[ContestRead, ...] = ()


@dataclass(frozen=True)
class CountSettings:
    policy: dict[Condition, Action] = field(
        default_factory=lambda: {
            Condition.OVERVOTE: Action.RETURN,
            Condition.BLANK: Action.RETURN,
            Condition.MARGINAL: Action.RETURN,
            Condition.UNREADABLE: Action.RETURN,
        }
    )


@dataclass(frozen=True)
class Decision:
    accept: bool
    reasons: tuple[str, ...]  # why it is returned, or what is invalid in it
    record: dict[str, Any] | None = None  # what will be counted when the box confirms


class BallotBox:
    def __init__(
        self,
        store: Store,
        log: EventLog,
        definition: ElectionDefinition,
        contests: tuple[Contest, ...],
        settings: CountSettings | None = None,
    ) -> None:
        self._store = store
        self._log = log
        self._definition = definition
        self.contests = contests
        self.settings = settings or CountSettings()
        with store.transaction() as tx:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    tx.execute(statement)

    # --- the batch: sheets of the box itself, or of a spare ordinary box --------------------
    @property
    def batch(self) -> str:
        """The batch sheets are counted in now: "box", or "deferred" while the sheets of a
        spare ordinary box (the ASU failed) are scanned.  Persisted: a restart in the middle
        of a deferred batch is still in it."""
        return self._store.meta(BATCH_META) or "box"

    @batch.setter
    def batch(self, value: str) -> None:
        if value not in BATCHES:
            raise ValueError(f"no such batch {value!r}")
        with self._store.transaction():
            if value == "deferred" and self.batch != "deferred":
                self._store.set_meta(DEFERRED_FROM_META, str(self.sheets("deferred")))
            self._store.set_meta(BATCH_META, value)

    def deferred_batch_sheets(self) -> int | None:
        """Sheets counted in the deferred batch in progress; None when none is."""
        if self.batch != "deferred":
            return None
        return self.sheets("deferred") - int(self._store.meta(DEFERRED_FROM_META) or 0)

    # --- deciding --------------------------------------------------------------------------
    def decide(self, sheet: SheetRead, *, cast_as_is: bool = False) -> Decision:
        """Accept (with the record to count) or return, by the settings; never a marginal vote."""
        if sheet.status != "ok" or sheet.style_id is None:
            return Decision(False, (sheet.status,))
        ours = {c.id for c in self.contests}
        record: dict[str, Any] = {}
        back: list[str] = []
        invalid: list[str] = []
        for c in sheet.contests:
            if c.contest_id not in ours:
                return Decision(False, ("foreign_style",))
            if c.status == "valid" and c.option_id is not None:
                record[c.contest_id] = {
                    "status": "valid",
                    "option": c.option_id,
                    "candidate": c.candidate_id,
                }
                continue
            known = {x.value for x in Condition}
            condition = Condition(c.status) if c.status in known else Condition.UNREADABLE
            action = self.settings.policy[condition]
            if action is Action.RETURN and not cast_as_is:
                back.append(f"{c.contest_id}:{condition.value}")
            invalid.append(f"{c.contest_id}:{condition.value}")
            record[c.contest_id] = {"status": "invalid", "reason": condition.value}
        if back:
            return Decision(False, tuple(back))
        return Decision(True, tuple(invalid), {"style": sheet.style_id, "contests": record})

    # --- the two-step count ----------------------------------------------------------------
    def hold(self, record: dict[str, Any], *, box_serial: str = "", drops_before: int = 0) -> str:
        """Durably note the sheet about to be accepted; returns its pending id.

        `box_serial` and `drops_before` (the box's lifetime drop counter before this
        sheet) let the box driver tell after a power cut whether the sheet fell.
        """
        pending_id = secrets.token_hex(8)
        with self._store.transaction() as tx:
            tx.execute(
                "INSERT INTO ballot_pending (pending_id, record, box_serial, drops_before) "
                "VALUES (?, ?, ?, ?)",
                (pending_id, canonical_json(record).decode(), box_serial, drops_before),
            )
        return pending_id

    def counted(self, pending_id: str) -> bool:
        """The box confirmed the drop: count the held record exactly once."""
        with self._store.transaction() as tx:
            row = tx.execute(
                "SELECT record FROM ballot_pending WHERE pending_id = ?", (pending_id,)
            ).fetchone()
            if row is None:
                return False  # already counted (or never held): never twice
            record = json.loads(row["record"])
            batch = self.batch
            tx.execute("DELETE FROM ballot_pending WHERE pending_id = ?", (pending_id,))
            tx.execute(
                "INSERT INTO ballots (id, style_id, batch, contests) VALUES (?, ?, ?, ?)",
                (
                    secrets.token_bytes(16),
                    record["style"],
                    batch,
                    canonical_json(record["contests"]).decode(),
                ),
            )
            for contest_id, r in record["contests"].items():
                for key in _keys(r):
                    tx.execute(
                        "INSERT INTO ballot_counters (batch, contest_id, key, n) "
                        "VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE SET n = n + 1",
                        (batch, contest_id, key),
                    )
            self._log.record("sheet_counted", batch=batch)
        return True

    def not_dropped(self, pending_id: str, reason: str | None) -> None:
        """The held sheet did not fall in (returned, jam, power cut): forget it, and count it
        as given back for `reason` (None: its return is counted when the box gives it back)."""
        with self._store.transaction() as tx:
            tx.execute("DELETE FROM ballot_pending WHERE pending_id = ?", (pending_id,))
            if reason is not None:
                self._returned(tx, reason)

    def returned(self, reasons: tuple[str, ...]) -> None:
        with self._store.transaction() as tx:
            for r in reasons or ("unspecified",):
                self._returned(tx, r.split(":")[-1])

    def _returned(self, tx: Any, reason: str) -> None:
        tx.execute(
            "INSERT INTO sheet_returns (reason, n) VALUES (?, 1) "
            "ON CONFLICT DO UPDATE SET n = n + 1",
            (reason,),
        )
        self._log.record("sheet_returned", reason=reason)

    def pending(self) -> list[str]:
        return [r["pending_id"] for r in self._store.query("SELECT pending_id FROM ballot_pending")]

    def pending_drops(self) -> list[tuple[str, str, int]]:
        """(pending id, box serial, drops before) of sheets accepted but not confirmed."""
        rows = self._store.query("SELECT pending_id, box_serial, drops_before FROM ballot_pending")
        return [(r["pending_id"], r["box_serial"], int(r["drops_before"])) for r in rows]

    # --- counts ----------------------------------------------------------------------------
    def sheets(self, batch: str | None = None) -> int:
        sql, params = "SELECT COUNT(*) FROM ballots", ()
        if batch:
            sql, params = sql + " WHERE batch = ?", (batch,)  # type: ignore[assignment]
        row = self._store.one(sql, params)
        return 0 if row is None else int(row[0])

    def tallies(self, batch: str | None = None) -> dict[str, ContestTally]:
        """Per contest, from the counters (both batches unless one is named)."""
        counts: dict[str, Counter[str]] = {c.id: Counter() for c in self.contests}
        sql = "SELECT contest_id, key, n FROM ballot_counters"
        params: tuple[Any, ...] = ()
        if batch:
            sql, params = sql + " WHERE batch = ?", (batch,)
        for r in self._store.query(sql, params):
            counts.setdefault(r["contest_id"], Counter())[r["key"]] += r["n"]
        return {c.id: _tally(c, counts[c.id]) for c in self.contests}

    def tallies_from_records(self, batch: str | None = None) -> dict[str, ContestTally]:
        """The same tallies recomputed from the ballot records (checked at close)."""
        counts: dict[str, Counter[str]] = {c.id: Counter() for c in self.contests}
        sql = "SELECT contests FROM ballots"
        params: tuple[Any, ...] = ()
        if batch:
            sql, params = sql + " WHERE batch = ?", (batch,)
        for r in self._store.query(sql, params):
            for contest_id, rec in json.loads(r["contests"]).items():
                counts[contest_id].update(_keys(rec))
        return {c.id: _tally(c, counts[c.id]) for c in self.contests}

    def consistency_problems(self) -> list[str]:
        problems = []
        for batch in ("box", "deferred"):
            a, b = self.tallies(batch), self.tallies_from_records(batch)
            for cid in a:
                if a[cid] != b[cid]:
                    problems.append(f"{batch} counters of {cid} differ from its ballot records")
        for contest in self.contests:
            problems += [f"{contest.id}: {p}" for p in self.tallies()[contest.id].problems(contest)]
        return problems

    def returns(self) -> dict[str, int]:
        return {
            r["reason"]: r["n"] for r in self._store.query("SELECT reason, n FROM sheet_returns")
        }

    def clear_test_data(self) -> None:
        with self._store.transaction() as tx:
            for table in ("ballots", "ballot_counters", "ballot_pending", "sheet_returns"):
                tx.execute(f"DELETE FROM {table}")
            self.batch = "box"

    def report_body(self, *, phase: str, mode: str) -> dict[str, Any]:
        """Body of a signed ASU report: zero (at opening) or final (at close)."""
        return {
            "phase": phase,
            "mode": mode,
            "sheets": self.sheets(),
            "deferred_sheets": self.sheets("deferred"),
            "returned": dict(sorted(self.returns().items())),
            "tallies": [t.to_obj() for t in self.tallies().values()],
            "deferred_tallies": [t.to_obj() for t in self.tallies("deferred").values()],
        }


def _keys(rec: dict[str, Any]) -> list[str]:
    keys = ["ballots"]
    if rec["status"] == "valid":
        keys.append(f"vote:{rec['option']}")
        if rec.get("candidate"):
            keys.append(f"pref:{rec['candidate']}")
    else:
        keys.append(f"invalid:{rec['reason']}")
    return keys


def _tally(contest: Contest, counts: Counter[str]) -> ContestTally:
    invalid_by_reason = {
        k.split(":", 1)[1]: n for k, n in sorted(counts.items()) if k.startswith("invalid:")
    }
    return ContestTally(
        contest_id=contest.id,
        ballots=counts["ballots"],
        invalid=sum(invalid_by_reason.values()),
        invalid_by_reason=invalid_by_reason,
        votes={o.id: counts[f"vote:{o.id}"] for o in contest.options},
        preferences={x.id: counts[f"pref:{x.id}"] for o in contest.options for x in o.candidates},
    )
