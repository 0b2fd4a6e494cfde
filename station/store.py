"""The station's own SQLite database: every state change that matters, durably.

WAL with `synchronous=FULL`: a transaction that returned has reached the disk,
so a voter marked as voted stays marked through `kill -9` and power loss.
Writes go through `transaction()` (BEGIN IMMEDIATE), one writer at a time.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The station's slice of the roll, from the verified bundle.
CREATE TABLE IF NOT EXISTS voters (
    pin          TEXT PRIMARY KEY,
    last_name    TEXT NOT NULL,
    first_name   TEXT NOT NULL,
    patronymic   TEXT NOT NULL,
    birth_date   TEXT NOT NULL,
    gender       TEXT NOT NULL,
    document_no  TEXT NOT NULL,
    home_vote    INTEGER NOT NULL,
    biometrics   TEXT NOT NULL,           -- enrolled | none
    no_bio_reason TEXT,
    template     INTEGER REFERENCES templates(idx)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS templates (
    idx      INTEGER PRIMARY KEY,
    encoding BLOB NOT NULL                -- 128 float32, little endian
);

-- One row per voter who was marked: the primary key is "one voter, one identification".
CREATE TABLE IF NOT EXISTS identifications (
    pin           TEXT PRIMARY KEY REFERENCES voters(pin),
    status        TEXT NOT NULL CHECK (status IN ('marked', 'issued', 'cancelled')),
    method        TEXT NOT NULL CHECK (method IN ('face', 'document', 'mobile')),
    reason        TEXT,                   -- admission by document: why
    authorised_by TEXT,                   -- admission by document: who
    marked_at     TEXT NOT NULL,          -- UTC ISO 8601
    hour          INTEGER NOT NULL,       -- local hour of marking, for the by-hour report
    issued_at     TEXT,
    cancelled_at  TEXT
) WITHOUT ROWID;

-- Voters turned away (not on the roll, registered elsewhere, already voted, not admitted).
-- Counts only: no PIN, so the refusal counters reveal nobody.
CREATE TABLE IF NOT EXISTS refusals (
    id     INTEGER PRIMARY KEY,
    reason TEXT NOT NULL,
    hour   INTEGER NOT NULL
);

-- Hash-chained event log (station/eventlog.py).
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    name     TEXT NOT NULL,
    severity TEXT NOT NULL,
    actor    TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    detail   TEXT NOT NULL,               -- canonical JSON
    hash     TEXT NOT NULL
);

-- Every signed message of this device, in signing order (the uplink sends these).
CREATE TABLE IF NOT EXISTS messages (
    seq      INTEGER PRIMARY KEY,
    kind     TEXT NOT NULL,
    hash     TEXT NOT NULL UNIQUE,
    body     BLOB NOT NULL,               -- the envelope's bytes, exactly as signed
    acked_at TEXT
);
"""


class StoreError(RuntimeError):
    """The database is not usable as it is; the message says what to do."""


class Store:
    """One connection, one writer lock; readers see committed data only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=5000",
        ):
            self._conn.execute(pragma)
        with self.transaction():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            version = self.meta("schema_version")
            if version is None:
                self.set_meta("schema_version", str(SCHEMA_VERSION))
            elif int(version) != SCHEMA_VERSION:
                raise StoreError(
                    f"{path} has schema {version}; this software expects {SCHEMA_VERSION}"
                )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing; nested calls join the outer transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
            return row

    def meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
