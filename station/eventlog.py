"""The station's event log: who did what, when, with what result, hash-chained.

Each entry's hash covers the previous entry's hash and the entry itself, so a
deleted, reordered or edited entry breaks the chain at that point.  The log
never holds face templates or images, and names a voter only by masked PIN.
It exports as NIST SP 1500-101 JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from crypto.hashchain import GENESIS, link_hash, verify_chain
from election.canonical import canonical_json
from election.events import event
from station.store import Store

Clock = Callable[[], dt.datetime]
FORBIDDEN_KEYS = frozenset({"pin", "template", "encoding", "image", "frame", "photo"})


class EventLog:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def record(
        self, name: str, *, actor: str = "system", outcome: str = "success", **detail: Any
    ) -> int:
        """Append one event (inside the caller's transaction, if any); returns its sequence."""
        kind = event(name)
        leaked = FORBIDDEN_KEYS & set(detail)
        if leaked:
            raise ValueError(f"event detail may not carry {sorted(leaked)}: mask or drop it")
        at = self._clock().astimezone(dt.UTC).isoformat(timespec="seconds")
        detail_json = canonical_json(detail).decode()
        with self._store.transaction() as tx:
            last = tx.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
            seq = 1 if last is None else last["seq"] + 1
            prev = GENESIS if last is None else last["hash"]
            payload = _payload(seq, at, kind.id, name, actor, outcome, detail_json)
            tx.execute(
                "INSERT INTO events (seq, at, event_id, name, severity, actor, outcome, detail, "
                "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    seq,
                    at,
                    kind.id,
                    name,
                    kind.severity.value,
                    actor,
                    outcome,
                    detail_json,
                    link_hash(prev, payload),
                ),
            )
        return int(seq)

    def head(self) -> tuple[int, str]:
        """The last entry's sequence and chained hash (0 and the genesis hash when empty)."""
        row = self._store.one("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
        return (0, GENESIS) if row is None else (int(row["seq"]), str(row["hash"]))

    def severities(self, after: int, upto: int) -> dict[str, int]:
        """How many entries of each severity lie in (after, upto]."""
        rows = self._store.query(
            "SELECT severity, COUNT(*) AS n FROM events WHERE seq > ? AND seq <= ? "
            "GROUP BY severity ORDER BY severity",
            (after, upto),
        )
        return {r["severity"]: int(r["n"]) for r in rows}

    def entries(self, since: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM events WHERE seq > ? ORDER BY seq"
        if limit is not None:
            sql = f"SELECT * FROM ({sql} DESC LIMIT {int(limit)}) ORDER BY seq"
        return [
            {**dict(r), "detail": json.loads(r["detail"])} for r in self._store.query(sql, (since,))
        ]

    def first_break(self) -> int | None:
        """Sequence number of the first entry whose chain is broken, or None if intact."""
        rows = self._store.query("SELECT * FROM events ORDER BY seq")
        items = [
            (
                r["hash"],
                _payload(
                    r["seq"],
                    r["at"],
                    r["event_id"],
                    r["name"],
                    r["actor"],
                    r["outcome"],
                    r["detail"],
                ),
            )
            for r in rows
        ]
        broken = verify_chain(items)
        if broken is None:
            # a row deleted from the middle leaves a gap the hashes alone would not show
            for i, r in enumerate(rows, start=1):
                if r["seq"] != i:
                    return int(r["seq"])
            return None
        return int(rows[broken]["seq"])

    def export_nist_1500_101(self, *, device_id: str, station_id: str) -> dict[str, Any]:
        """The log as a NIST SP 1500-101 ElectionEventLog (JSON)."""
        events = []
        for r in self.entries():
            events.append(
                {
                    "@type": "EventLogging.Event",
                    "Id": str(r["event_id"]),
                    "Sequence": str(r["seq"]),
                    "TimeStamp": r["at"],
                    "Type": r["name"],
                    "Description": event(r["name"]).description,
                    "Details": json.dumps(r["detail"], ensure_ascii=False, sort_keys=True),
                    "Disposition": _DISPOSITION.get(r["outcome"], "other"),
                    **(
                        {"OtherDisposition": r["outcome"]}
                        if r["outcome"] not in _DISPOSITION
                        else {}
                    ),
                    "Severity": r["severity"],
                    "UserId": r["actor"],
                    "Hash": r["hash"],
                }
            )
        return {
            "@type": "EventLogging.ElectionEventLog",
            "GeneratedTime": self._clock().astimezone(dt.UTC).isoformat(timespec="seconds"),
            "Details": f"Shailoo polling station {station_id}",
            "Device": [
                {
                    "@type": "EventLogging.Device",
                    "Id": device_id,
                    "Type": "other",
                    "OtherType": "shailoo-station",
                    "HashType": "sha-256",
                    "Event": events,
                }
            ],
        }


_DISPOSITION = {"success": "success", "failure": "failure", "na": "na"}


def _payload(
    seq: int, at: str, event_id: int, name: str, actor: str, outcome: str, detail: str
) -> bytes:
    return canonical_json(
        {
            "seq": seq,
            "at": at,
            "id": event_id,
            "name": name,
            "actor": actor,
            "outcome": outcome,
            "detail": detail,
        }
    )
