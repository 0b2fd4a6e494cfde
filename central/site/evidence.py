"""What one station signed and what the CEC did with it, read from the evidence tables.

The station page shows the station's own words next to the published numbers:
every stored signed message (its zero report, identification and turnout
reports, ASU report), read with the same reader the acceptance step uses
(central.report_bodies.read_message) so the page says which ones count and why
others do not; the current manual-count protocol and its scan; the comparison of
the two counts; refused conflicting messages; and the station's alerts.

`evidence_key` is a few index lookups that change whenever any of that changes,
so a rendered station page can be cached until it does.
"""

from __future__ import annotations

import json
from typing import Any

from central import manual
from central.db import Database, Tx
from central.report_bodies import (
    ASU_REPORT,
    HEARTBEAT,
    IDENTIFICATION_REPORT,
    TURNOUT,
    is_zero,
    read_message,
)
from crypto.envelope import Envelope
from crypto.errors import CryptoError
from election.definition import ElectionDefinition
from election.tally import ContestTally


def evidence_key(db: Database, station_id: str) -> str:
    """Changes whenever anything the station page shows from the evidence tables changes."""
    with db.transaction() as tx:
        parts = [
            tx.one(
                "SELECT COUNT(*) AS n, COALESCE(MAX(seq), -1) AS s FROM messages "
                "WHERE station_id = ?",
                (station_id,),
            ),
            tx.one(
                "SELECT COALESCE(MAX(id), 0) AS p FROM manual_protocols WHERE station_id = ?",
                (station_id,),
            ),
            tx.one(
                "SELECT COUNT(*) AS n, COALESCE(MAX(checked_at), '') AS c FROM reconciliations "
                "WHERE station_id = ?",
                (station_id,),
            ),
            tx.one(
                "SELECT COUNT(*) AS n, COALESCE(MAX(last_raised_at), '') AS l, "
                "COALESCE(MAX(resolved_at), '') AS r, COALESCE(SUM(repeats), 0) AS k "
                "FROM alerts WHERE station_id = ?",
                (station_id,),
            ),
            tx.one(
                "SELECT COUNT(*) AS n FROM conflicting_messages WHERE station_id = ?",
                (station_id,),
            ),
        ]
    return "|".join(",".join(str(v) for v in (p or {}).values()) for p in parts)


def message_href(station_id: str, seq: int) -> str:
    return f"/api/v1/station/{station_id}/messages/{seq}"


def scan_href(sha256: str) -> str:
    return f"/api/v1/scan/{sha256}"


def station_evidence(
    db: Database, definition: ElectionDefinition, station_id: str
) -> dict[str, Any]:
    """The station's signed reports, manual count, comparison, conflicts and alerts."""
    with db.transaction() as tx:
        rows = tx.query(
            "SELECT seq, kind, hash, device_id, signed_at, received_at, raw FROM messages "
            "WHERE station_id = ? ORDER BY seq",
            (station_id,),
        )
        protocol = manual.current_protocol(tx, station_id)
        versions = tx.one(
            "SELECT COUNT(*) AS n FROM manual_protocols WHERE station_id = ?", (station_id,)
        )
        recon = tx.query(
            "SELECT contest_id, status, max_difference, lines, checked_at FROM reconciliations "
            "WHERE station_id = ? ORDER BY contest_id",
            (station_id,),
        )
        conflicts = tx.query(
            "SELECT seq, hash, reason, received_at FROM conflicting_messages "
            "WHERE station_id = ? ORDER BY seq, received_at",
            (station_id,),
        )
        alerts = _alerts(tx, station_id)
    out: dict[str, Any] = {
        "messages": [],
        "zero_reports": [],
        "identification_reports": [],
        "turnout_reports": [],
        "asu_reports": [],
        "heartbeats": 0,
    }
    order = {c.id: i for i, c in enumerate(definition.contests)}
    for r in rows:
        item, report = _message(definition, station_id, r, order)
        out["messages"].append(item)
        if report is None:
            if item["kind"] == HEARTBEAT:
                out["heartbeats"] += 1
            continue
        if item["kind"] == ASU_REPORT:
            target = "zero_reports" if item.get("phase") == "zero" else "asu_reports"
        elif item["kind"] == IDENTIFICATION_REPORT:
            target = "identification_reports"
        else:
            target = "turnout_reports"
        out[target].append({**item, **report})
    out["manual"] = _protocol(protocol, int((versions or {}).get("n", 0)), order)
    out["reconciliation"] = [
        {
            "contest_id": r["contest_id"],
            "status": r["status"],
            "max_difference": int(r["max_difference"]),
            "lines": json.loads(r["lines"]),
            "checked_at": r["checked_at"],
        }
        for r in sorted(recon, key=lambda r: order.get(r["contest_id"], 0))
    ]
    out["conflicts"] = [
        {
            "seq": int(c["seq"]),
            "hash": c["hash"],
            "reason": c["reason"],
            "received_at": c["received_at"],
        }
        for c in conflicts
    ]
    out["alerts"] = alerts
    out["all_messages"] = f"/api/v1/station/{station_id}/messages.jsonl"
    return out


def _message(
    definition: ElectionDefinition, station_id: str, r: dict[str, Any], order: dict[str, int]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One stored message as listed, and (for reports) the numbers its body states."""
    item: dict[str, Any] = {
        "seq": int(r["seq"]),
        "kind": r["kind"],
        "hash": r["hash"],
        "device": r["device_id"],
        "signed_at": r["signed_at"],
        "received_at": r["received_at"],
        "href": message_href(station_id, int(r["seq"])),
    }
    try:
        env = Envelope.from_bytes(bytes(r["raw"]))
    except (CryptoError, ValueError) as e:  # cannot happen to a stored message; say so if it does
        item.update(counted=False, problem=f"stored bytes do not read: {e}", mode=None)
        return item, None
    reading = read_message(definition, env)
    body = env.body
    item["mode"] = reading.mode
    item["counted"] = reading.counts
    item["problem"] = reading.problem.detail if reading.problem else None
    if isinstance(body.get("phase"), str):
        item["phase"] = body["phase"]
    if env.kind not in (ASU_REPORT, IDENTIFICATION_REPORT, TURNOUT):
        return item, None
    if env.kind == TURNOUT:
        return item, {"as_of": body.get("as_of"), "voted": body.get("voted")}
    if env.kind == IDENTIFICATION_REPORT:
        keys = ("as_of", "registered", "voted", "identified_by_face", "admitted_by_document")
        report = {k: body.get(k) for k in (*keys, "mobile_box", "by_hour")}
        report["admitted_by_document_by_reason"] = body.get("admitted_by_document_by_reason")
        return item, report
    tallies = []
    for obj in body.get("tallies") or ():
        if isinstance(obj, dict):
            tallies.append(obj)
    tallies.sort(key=lambda t: order.get(str(t.get("contest_id")), 0))
    deferred = body.get("deferred_sheets")
    report = {
        "sheets": body.get("sheets"),
        # sheets of a spare ordinary box, scanned after the ASU failed: in `sheets` too
        "deferred_sheets": deferred if type(deferred) is int and deferred > 0 else 0,
        "voters_identified": body.get("voters_identified"),
        "tallies": tallies,
        "station_problems": body.get("problems") or [],
    }
    if item.get("phase") == "zero":
        try:
            report["all_zero"] = not body.get("sheets") and all(
                is_zero(ContestTally.from_obj(t)) for t in tallies
            )
        except ValueError:
            report["all_zero"] = False
    return item, report


def _protocol(
    p: manual.StoredProtocol | None, versions: int, order: dict[str, int]
) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "version": p.version,
        "versions": versions,
        "entered_at": p.entered_at,
        "entered_by": p.entered_by,
        "source": p.source,
        "reason": p.reason,
        "scan": {
            "sha256": p.scan_sha256,
            "media_type": p.scan_media_type,
            "href": scan_href(p.scan_sha256),
        },
        "contests": [
            p.counts[cid].to_obj() for cid in sorted(p.counts, key=lambda c: order.get(c, 0))
        ],
    }


def _alerts(tx: Tx, station_id: str) -> list[dict[str, Any]]:
    rows = tx.query(
        "SELECT id, raised_at, kind, severity, detail, resolved_at, repeats FROM alerts "
        "WHERE station_id = ? ORDER BY id",
        (station_id,),
    )
    return [
        {
            "id": int(a["id"]),
            "raised_at": a["raised_at"],
            "kind": a["kind"],
            "severity": a["severity"],
            "detail": a["detail"],
            "resolved_at": a["resolved_at"],
            "repeats": int(a["repeats"]),
        }
        for a in rows
    ]


def stored_message(db: Database, station_id: str, seq: int) -> bytes | None:
    row = db.one("SELECT raw FROM messages WHERE station_id = ? AND seq = ?", (station_id, seq))
    return None if row is None else bytes(row["raw"])


def stored_messages(db: Database, station_id: str) -> bytes:
    """Every stored message of the station, one per line in seq order (as in the record)."""
    rows = db.query("SELECT raw FROM messages WHERE station_id = ? ORDER BY seq", (station_id,))
    return b"".join(bytes(r["raw"]) + b"\n" for r in rows)


def public_scan(db: Database, sha256: str) -> manual.Scan | None:
    """A protocol scan, if some protocol of some station refers to it."""
    with db.transaction() as tx:
        used = tx.one(
            "SELECT 1 AS x FROM manual_protocols WHERE scan_sha256 = ? LIMIT 1", (sha256,)
        )
        return manual.get_scan(tx, sha256) if used else None
