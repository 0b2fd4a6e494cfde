""" "Check a report": a printed report's QR codes, verified and set beside the published numbers.

Anyone photographs the codes on a polling station's door (or copies their text)
and the site rebuilds the signed envelope and checks its hash chain, the device
certificate against the CEC root and the signature, with the same code as
`shailoo verify-qr` (crypto/qrimage.py reads the images, crypto/qrchain.py
verifies).  A verified report is then compared with what the CEC stored (the
same message, a different one with the same number, or none yet) and with the
published station numbers, line by line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509

from central.db import Database
from central.report_bodies import ASU_REPORT, FINAL, IDENTIFICATION_REPORT
from central.site.evidence import message_href
from central.site.model import Snapshot
from crypto.errors import CryptoError
from crypto.qrchain import MAGIC, VerifiedReport, group_parts, verify_parts
from crypto.qrimage import QrImageError, read_qr_texts
from election.definition import ElectionDefinition

IDENT_LINES = ("voted", "identified_by_face", "admitted_by_document", "mobile_box")


class CheckRefused(Exception):
    """The input cannot be checked at all: `key` names the text to show, `status` the HTTP
    status, `detail` the technical reason (English, from the reader or verifier)."""

    def __init__(self, status: int, key: str, detail: str = "", **values: object) -> None:
        super().__init__(detail or key)
        self.status, self.key, self.detail, self.values = status, key, detail, values


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


def pasted_parts(text: str) -> list[str]:
    """QR texts from pasted text: each starts at a `SHAILOO-QR1 ` header line; its content
    is the following line(s), joined (a mail program may have wrapped a long line)."""
    parts: list[list[str]] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.startswith(MAGIC + " "):
            parts.append([line.rstrip(), ""])
        elif parts and line.strip():
            parts[-1][1] += line.strip("\n")
    return [f"{head}\n{content}" for head, content in parts]


def read_uploads(uploads: list[Upload], *, max_pixels: int) -> list[str]:
    """Every QR text found in the uploaded photos (CheckRefused if one is not an image)."""
    texts: list[str] = []
    for up in uploads:
        try:
            texts += read_qr_texts(up.data, max_pixels=max_pixels)
        except QrImageError as e:
            raise CheckRefused(400, "check_bad_image", str(e), name=up.name) from None
    return texts


def check_texts(
    texts: list[str],
    *,
    root: x509.Certificate,
    definition: ElectionDefinition,
    snap: Snapshot,
    db: Database,
) -> dict[str, Any]:
    """Verify every report found in `texts`; each comes back verified or refused."""
    groups = group_parts(texts)
    ignored = sum(1 for t in dict.fromkeys(texts) if not t.startswith(MAGIC + " "))
    if not groups:
        raise CheckRefused(422, "check_no_codes", ignored=ignored)
    reports = []
    for (kind, station, seq), parts in sorted(groups.items()):
        try:
            verified = verify_parts(parts, root)
        except CryptoError as e:
            reports.append(
                {
                    "verified": False,
                    "claimed": {"kind": kind, "station": station, "seq": seq},
                    "error": str(e),
                }
            )
            continue
        reports.append(_verified(verified, definition, snap, db))
    return {
        "ok": all(r["verified"] for r in reports),
        "ignored_codes": ignored,
        "published_version": snap.version or None,
        "reports": reports,
    }


def _verified(
    r: VerifiedReport, definition: ElectionDefinition, snap: Snapshot, db: Database
) -> dict[str, Any]:
    env = r.envelope
    claimed = {"kind": env.kind, "station": env.station, "seq": env.seq}
    if env.election != definition.election_hash:
        return {
            "verified": False,
            "claimed": claimed,
            "error": f"the report is signed for another election ({env.election[:16]}...), "
            f"not this one ({definition.election_hash[:16]}...)",
        }
    try:
        station = definition.station(env.station)
    except KeyError:
        return {
            "verified": False,
            "claimed": claimed,
            "error": f"station {env.station} is not a station of this election",
        }
    row = db.one(
        "SELECT hash FROM messages WHERE station_id = ? AND seq = ?", (env.station, env.seq)
    )
    if row is None:
        received = "not_received"
    elif row["hash"] == env.hash:
        received = "same"
    else:
        received = "different"
    body = env.body
    phase = body.get("phase") if isinstance(body.get("phase"), str) else None
    return {
        "verified": True,
        "report": {
            "kind": env.kind,
            "station": env.station,
            "number": station.number,
            "seq": env.seq,
            "device": env.device,
            "signed_at": env.time,
            "hash": env.hash,
            "phase": phase,
            "mode": body.get("mode"),
            "parts": r.parts,
            "certificate_station": r.identity.station_id,
        },
        "received": received,
        "stored_hash": None if row is None else row["hash"],
        "message": message_href(env.station, env.seq) if row is not None else None,
        "final": phase == FINAL,
        "lines": _lines(definition, env.kind, body, env.station, snap),
        "body": body,
    }


def _line(
    contest: str | None, line: str, key: str | None, signed: Any, published: Any
) -> dict[str, Any]:
    same = None if published is None or not isinstance(signed, int) else signed == published
    return {
        "contest_id": contest,
        "line": line,
        "id": key,
        "signed": signed,
        "published": published,
        "same": same,
    }


def _lines(
    definition: ElectionDefinition, kind: str, body: dict[str, Any], station: str, snap: Snapshot
) -> list[dict[str, Any]]:
    """The report's numbers beside the published station numbers (None: nothing published),
    options in ballot order."""
    out: list[dict[str, Any]] = []
    zero = body.get("phase") == "zero"
    if kind == ASU_REPORT:
        for t in body.get("tallies") or ():
            if not isinstance(t, dict):
                continue
            cid = str(t.get("contest_id"))
            entry = snap.tally(cid, "station", station)
            pub = None if zero or entry is None else entry.get("asu")
            out.append(_line(cid, "ballots", None, t.get("ballots"), pub and pub["ballots"]))
            out.append(_line(cid, "invalid", None, t.get("invalid"), pub and pub["invalid"]))
            votes = t.get("votes")
            votes = votes if isinstance(votes, dict) else {}
            try:
                order = [o.id for o in definition.contest(cid).options]
            except KeyError:
                order = []
            for option in [
                *(o for o in order if o in votes),
                *(o for o in votes if o not in order),
            ]:
                published = None if not pub else pub["votes"].get(option)
                out.append(_line(cid, "votes", option, votes[option], published))
    elif kind == IDENTIFICATION_REPORT:
        t = snap.turnout_of("station", station)
        for key in IDENT_LINES:
            published = None
            if t is not None:
                published = t["voted"] if key == "voted" else t["identification"].get(key)
            out.append(_line(None, key, None, body.get(key), published))
    elif "voted" in body:
        t = snap.turnout_of("station", station)
        out.append(_line(None, "voted", None, body.get("voted"), t and t["voted"]))
    return out
