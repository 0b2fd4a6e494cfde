"""The election record: everything anyone needs to check the published results on their own.

    OUT/election.json            the definition (its SHA-256 is the election hash)
    OUT/cec-root.pem             the trust anchor
    OUT/cec-central.pem          the server's certificate (signs acks and this record)
    OUT/devices.json             every device authorised to sign for a station
    OUT/messages/<station>.jsonl every accepted signed message, original bytes, seq order
    OUT/manual/<station>.json    the current manual-count protocol, who entered it, its scan's hash
    OUT/scans/<sha256>.<ext>     the protocol scans
    OUT/results.json             the latest published results, byte for byte as published
    OUT/alerts.json              every alert raised, with its evidence
    OUT/MANIFEST.json            SHA-256 of every file above, signed by the server

Written into a temporary directory and renamed at the end, so a reader never
sees half a record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from central.db import Database
from central.devices import all_devices
from central.kit import CentralKit
from central.results import publish
from crypto import certs
from crypto.envelope import CEC_STATION, GENESIS_PREV, format_time, sign_envelope
from election import bundle as B

RECORD_KIND = "election_record"
MANIFEST = "MANIFEST.json"
CENTRAL_CERT = "cec-central.pem"
_EXT = {"image/png": "png", "image/jpeg": "jpg", "application/pdf": "pdf"}


class RecordError(RuntimeError):
    """The record cannot be written; the message says why."""


def export_record(
    db: Database, kit: CentralKit, out: Path, *, at: dt.datetime | None = None
) -> str:
    """Write the record to `out` (a new directory); returns a one-line summary."""
    if out.exists():
        raise RecordError(f"{out} exists: export into a new directory")
    at = at or dt.datetime.now(dt.UTC)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "messages").mkdir(parents=True)
    # One transaction that holds off ingest: publish the results of exactly the evidence
    # exported, so the record verifies (a report accepted in between would differ).
    with db.transaction() as tx:
        if db.kind == "postgresql":
            tx.execute("LOCK TABLE messages, manual_protocols IN SHARE MODE")
        publish(db, kit.definition, at=at)
        return _export(db, kit, out, tmp, at)


def _export(db: Database, kit: CentralKit, out: Path, tmp: Path, at: dt.datetime) -> str:
    files: dict[str, bytes] = {
        B.ELECTION_FILE: kit.definition.canonical_bytes(),
        B.ROOT_CERT_FILE: certs.cert_to_pem(kit.root_cert),
        CENTRAL_CERT: certs.cert_to_pem(kit.ack_cert),
    }
    devices = [
        {
            "station_id": d.station_id,
            "device_id": d.device_id,
            "signing_cert": certs.cert_to_pem(d.cert).decode("ascii"),
        }
        for d in sorted(all_devices(db, kit), key=lambda d: (d.station_id, d.device_id))
    ]
    files["devices.json"] = _json({"devices": devices})
    count = 0
    by_station: dict[str, list[bytes]] = {}
    for r in db.query("SELECT station_id, seq, raw FROM messages ORDER BY station_id, seq"):
        by_station.setdefault(r["station_id"], []).append(bytes(r["raw"]))
        count += 1
    for station, raws in by_station.items():
        files[f"messages/{station}.jsonl"] = b"".join(raw + b"\n" for raw in raws)
    files.update(_manual(db))
    latest = db.one("SELECT version, published_at, document FROM published "
                    "ORDER BY version DESC LIMIT 1")  # fmt: skip
    if latest is not None:
        files["results.json"] = latest["document"].encode("utf-8")
    alerts = db.query(
        "SELECT id, raised_at, kind, severity, station_id, detail, evidence, resolved_at, "
        "repeats FROM alerts ORDER BY id"
    )
    files["alerts.json"] = _json(
        {"alerts": [{**a, "evidence": json.loads(a["evidence"])} for a in alerts]}
    )
    for name, data in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    body = {
        "election": kit.definition.election_hash,
        "exported_at": format_time(at),
        "results_version": latest["version"] if latest else None,
        "messages": count,
        "files": {n: hashlib.sha256(d).hexdigest() for n, d in sorted(files.items())},
    }
    manifest = sign_envelope(
        kit.ack_key,
        kind=RECORD_KIND,
        election=kit.definition.election_hash,
        station=CEC_STATION,
        device=kit.ack_device_id,
        seq=0,
        prev=GENESIS_PREV,
        time=format_time(at),
        body=body,
    )
    (tmp / MANIFEST).write_bytes(manifest.to_bytes())
    os.replace(tmp, out)
    return (
        f"election record written to {out}: {count} signed messages from "
        f"{len(by_station)} stations, {len(files)} files, manifest signed by the CEC server"
    )


def _manual(db: Database) -> dict[str, bytes]:
    """The current protocol of each station, with its counts and its scan."""
    out: dict[str, bytes] = {}
    protocols = db.query(
        "SELECT id, station_id, version, entered_at, entered_by, source, reason, scan_sha256 "
        "FROM manual_protocols WHERE superseded_at IS NULL ORDER BY station_id"
    )
    for p in protocols:
        counts = db.query(
            "SELECT contest_id, received, issued, spoiled, ballots, invalid, tally "
            "FROM manual_counts WHERE protocol_id = ? ORDER BY contest_id",
            (p["id"],),
        )
        scan = db.one(
            "SELECT media_type, data FROM manual_scans WHERE sha256 = ?", (p["scan_sha256"],)
        )
        doc: dict[str, Any] = {
            k: p[k]
            for k in (
                "station_id",
                "version",
                "entered_at",
                "entered_by",
                "source",
                "reason",
                "scan_sha256",
            )  # fmt: skip
        }
        doc["contests"] = [{**c, "tally": json.loads(c["tally"])} for c in counts]
        out[f"manual/{p['station_id']}.json"] = _json(doc)
        if scan is not None:
            ext = _EXT.get(scan["media_type"], "bin")
            out[f"scans/{p['scan_sha256']}.{ext}"] = bytes(scan["data"])
    return out


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode("utf-8")
