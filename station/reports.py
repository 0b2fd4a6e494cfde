"""The identification reports, turnout snapshots and the participation list.

Reports are counts only, derived from the store in one read, and signed as
envelopes (station.signer) in the same transaction as the state change they
belong to.  The participation list (who voted: name and year of birth) is
what the CEC posts at the station and publishes; it never carries a PIN.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

from station.identify import AdmissionReason, RefusalReason
from station.store import Store

IDENTIFICATION_REPORT = "identification_report"
TURNOUT = "turnout"
ASU_REPORT = "asu_report"
HEARTBEAT = "heartbeat"
LOG_DIGEST = "log_digest"


def identification_counts(store: Store) -> dict[str, Any]:
    """Every counter of the identification report, zeros included."""
    registered = _scalar(store, "SELECT COUNT(*) FROM voters")
    methods = dict.fromkeys(("face", "document", "mobile"), 0)
    by_reason = dict.fromkeys((r.value for r in AdmissionReason), 0)
    pending = 0
    cancelled = 0
    by_hour: dict[str, int] = {}
    for r in store.query("SELECT status, method, reason, hour FROM identifications"):
        if r["status"] == "cancelled":
            cancelled += 1
            continue
        pending += r["status"] == "marked"
        methods[r["method"]] += 1
        if r["method"] == "document":
            by_reason[r["reason"]] += 1
        key = f"{r['hour']:02d}"
        by_hour[key] = by_hour.get(key, 0) + 1
    refused = dict.fromkeys((r.value for r in RefusalReason), 0)
    for r in store.query("SELECT reason, COUNT(*) AS n FROM refusals GROUP BY reason"):
        refused[r["reason"]] = r["n"]
    voted = sum(methods.values())
    return {
        "registered": registered,
        "voted": voted,
        "identified_by_face": methods["face"],
        "admitted_by_document": methods["document"],
        "admitted_by_document_by_reason": by_reason,
        "mobile_box": methods["mobile"],
        "awaiting_confirmation": pending,
        "cancelled": cancelled,
        "refused": refused,
        "by_hour": dict(sorted(by_hour.items())),
        "mobile_list": _scalar(store, "SELECT COUNT(*) FROM voters WHERE home_vote = 1"),
    }


def identification_report(
    store: Store, tz: ZoneInfo, *, phase: str, mode: str, at: dt.datetime
) -> dict[str, Any]:
    """Body of a signed identification report (`phase` first or final)."""
    if phase not in ("first", "final"):
        raise ValueError("phase is first or final")
    return {
        "phase": phase,
        "mode": mode,
        "as_of": at.astimezone(tz).isoformat(timespec="seconds"),
        **identification_counts(store),
    }


def turnout_snapshot(store: Store, tz: ZoneInfo, *, mode: str, at: dt.datetime) -> dict[str, Any]:
    """Counts only: how many of the roll have voted so far."""
    counts = identification_counts(store)
    return {
        "mode": mode,
        "as_of": at.astimezone(tz).isoformat(timespec="seconds"),
        "registered": counts["registered"],
        "voted": counts["voted"],
    }


def participation_list(store: Store) -> list[dict[str, Any]]:
    """Who voted (name and year of birth), in alphabetical order, as the CEC posts it."""
    rows = store.query(
        "SELECT v.last_name, v.first_name, v.patronymic, v.birth_date, i.method "
        "FROM identifications i JOIN voters v USING (pin) WHERE i.status != 'cancelled' "
        "ORDER BY v.last_name, v.first_name, v.patronymic, v.birth_date"
    )
    return [
        {
            "last_name": r["last_name"],
            "first_name": r["first_name"],
            "patronymic": r["patronymic"],
            "birth_year": int(r["birth_date"][:4]),
            "mobile_box": r["method"] == "mobile",
        }
        for r in rows
    ]


def participation_csv(store: Store) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["last_name", "first_name", "patronymic", "birth_year", "mobile_box"])
    for p in participation_list(store):
        w.writerow(
            [
                p["last_name"],
                p["first_name"],
                p["patronymic"],
                p["birth_year"],
                int(p["mobile_box"]),
            ]
        )
    return buf.getvalue()


def _scalar(store: Store, sql: str) -> int:
    row = store.one(sql)
    return 0 if row is None else int(row[0])
