"""Alerts: what the CEC server room must look at, with the evidence that shows it.

An alert is raised inside the transaction of whatever found the problem, so it is
committed with (or rolled back with) the decision it explains.  A flood does not
flood the table: raising an alert whose kind, station and dedup key equal those of
an alert still open only counts it (`repeats`, `last_raised_at`); the first raise's
detail and evidence stay.  Times are stored as UTC ISO strings (`timestamp`), so
they sort as text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from central.db import Database, Tx

# Who raises what: the ingest (signature and certificate checks) raises the refusal
# kinds; evidence.py the chain and report kinds; watch.py (the server's periodic
# watch) `gap` and `not_delivered`; aggregate.py, results.py and outliers.py the count
# kinds.  See docs/central.md.
KINDS = frozenset(
    {
        # refusals before storage (ingest)
        "forged",
        "malformed",
        "oversized",
        "wrong_election",
        "unknown_device",
        # the chain of a station's messages (evidence.py; gap: watch.py)
        "equivocation",
        "gap",
        "broken_chain",
        # what a stored report says (evidence.py)
        "stale_report",
        "second_final",
        "bad_report",
        "report_problems",
        "turnout_over_roll",
        "not_delivered",  # watch.py
        # counts (reconcile.py, results.py, outliers.py)
        "asu_manual_difference",
        "invariant_violation",
        "turnout_outlier",
    }
)
SEVERITIES = ("critical", "high", "medium", "low", "info")
MAX_DETAIL = 2000


@dataclass(frozen=True)
class Alert:
    id: int
    raised_at: str
    kind: str
    severity: str
    station_id: str | None
    detail: str
    evidence: list[Any]
    resolved_at: str | None
    repeats: int
    last_raised_at: str


def timestamp(when: dt.datetime | str) -> str:
    """A moment as stored: UTC, milliseconds, "+00:00" (so text order is time order)."""
    if isinstance(when, str):
        try:
            when = dt.datetime.fromisoformat(when)
        except ValueError:
            raise ValueError(f"{when!r} is not an ISO 8601 date and time") from None
    if when.tzinfo is None:
        raise ValueError(f"{when!r} has no UTC offset: give an aware date and time")
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def raise_alert(
    tx: Tx,
    *,
    kind: str,
    severity: str,
    station_id: str | None,
    detail: str,
    evidence: Sequence[Any],
    at: dt.datetime | str,
    key: str | None = None,
) -> int:
    """Record an alert (or count it again on the open one of the same kind, station
    and `key`, which defaults to `detail`); returns the alert's id.

    `evidence` is JSON: a list of {"station", "seq", "hash"} naming stored messages,
    or short excerpts of what was received.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown alert kind {kind!r} (known: {', '.join(sorted(KINDS))})")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    when = timestamp(at)
    detail = detail if len(detail) <= MAX_DETAIL else detail[: MAX_DETAIL - 1] + "…"
    fingerprint = hashlib.sha256(
        json.dumps([kind, station_id or "", detail if key is None else key]).encode()
    ).hexdigest()
    row = tx.one(
        "INSERT INTO alerts (raised_at, kind, severity, station_id, detail, evidence,"
        " fingerprint, repeats, last_raised_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)"
        " ON CONFLICT (fingerprint) WHERE resolved_at IS NULL DO UPDATE"
        " SET repeats = alerts.repeats + 1, last_raised_at = excluded.last_raised_at"
        " RETURNING id",
        (
            when,
            kind,
            severity,
            station_id,
            detail,
            json.dumps(list(evidence), sort_keys=True, ensure_ascii=False),
            fingerprint,
            when,
        ),
    )
    assert row is not None  # RETURNING always gives the row
    return int(row["id"])


def open_alerts(
    db_or_tx: Database | Tx,
    *,
    kind: str | None = None,
    station_id: str | None = None,
    limit: int = 1000,
) -> list[Alert]:
    """Unresolved alerts, newest first, optionally of one kind and/or station."""
    return _select(db_or_tx, "resolved_at IS NULL", kind, station_id, limit)


def alerts(
    db_or_tx: Database | Tx,
    *,
    kind: str | None = None,
    station_id: str | None = None,
    limit: int = 1000,
) -> list[Alert]:
    """Every alert, resolved ones included, newest first."""
    return _select(db_or_tx, "1 = 1", kind, station_id, limit)


def resolve_alerts(
    tx: Tx,
    *,
    kind: str,
    station_id: str | None,
    at: dt.datetime | str,
    keep_detail: str | None = None,
    detail: str | None = None,
) -> int:
    """Resolve the open alerts of `kind` for `station_id` (except one whose detail is
    `keep_detail`; only the one whose detail is `detail`, if given): the condition they
    describe is over.  Returns how many."""
    sql = "UPDATE alerts SET resolved_at = ? WHERE resolved_at IS NULL AND kind = ?"
    params: list[Any] = [timestamp(at), kind]
    if station_id is None:
        sql += " AND station_id IS NULL"
    else:
        sql += " AND station_id = ?"
        params.append(station_id)
    if keep_detail is not None:
        sql += " AND detail <> ?"
        params.append(keep_detail)
    if detail is not None:
        sql += " AND detail = ?"
        params.append(detail)
    return tx.execute(sql, params)


def resolve_alert(tx: Tx, alert_id: int, at: dt.datetime | str) -> bool:
    """Resolve one alert by id (an operator closed it); False if it was not open."""
    return (
        tx.execute(
            "UPDATE alerts SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL",
            (timestamp(at), alert_id),
        )
        == 1
    )


def evidence_of(station_id: str, seq: int, hash_: str) -> dict[str, Any]:
    """The evidence entry naming one stored (or kept) message."""
    return {"station": station_id, "seq": seq, "hash": hash_}


def _select(
    db_or_tx: Database | Tx, where: str, kind: str | None, station_id: str | None, limit: int
) -> list[Alert]:
    sql = f"SELECT * FROM alerts WHERE {where}"
    params: list[Any] = []
    if kind is not None:
        sql += " AND kind = ?"
        params.append(kind)
    if station_id is not None:
        sql += " AND station_id = ?"
        params.append(station_id)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return [
        Alert(
            id=int(r["id"]),
            raised_at=r["raised_at"],
            kind=r["kind"],
            severity=r["severity"],
            station_id=r["station_id"],
            detail=r["detail"],
            evidence=json.loads(r["evidence"]),
            resolved_at=r["resolved_at"],
            repeats=int(r["repeats"]),
            last_raised_at=r["last_raised_at"],
        )
        for r in db_or_tx.query(sql, params)
    ]
