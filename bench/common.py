"""What more than one bench needs: where the shared photos are, the issue's budget, 640x480
frames, and the signed station messages of the central benches (`tally`, `StationSigner`).

The one-core set-up and the timing helpers are in `bench/__init__.py` (they must
run before numpy, OpenCV or dlib load); this module holds the data side.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crypto.envelope import GENESIS_PREV, Envelope, format_time, sign_envelope
from election.definition import Contest, ElectionDefinition
from election.tally import ContestTally

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("SHAILOO_FACES", REPO.parent / "shared" / "data" / "faces"))
BUDGET = 0.5  # seconds: the aim for the p95 decision time
FRAME_W, FRAME_H = 640, 480
TZ = ZoneInfo("Asia/Bishkek")


def letterbox(rgb: np.ndarray, w: int = FRAME_W, h: int = FRAME_H) -> np.ndarray:
    """The whole photo fitted into a w x h grey frame (no crop), as a 640x480 camera frames a voter.

    Scaled with area interpolation so its long side fills the frame, centred, grey bars
    on the other side; the result is always exactly h x w x 3, RGB uint8.
    """
    import cv2

    scale = min(w / rgb.shape[1], h / rgb.shape[0])
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    fitted = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    frame = np.full((h, w, 3), 128, dtype=np.uint8)
    y, x = (h - size[1]) // 2, (w - size[0]) // 2
    frame[y : y + size[1], x : x + size[0]] = fitted
    return frame


# --- signed station messages (bench_central, bench_ingest, bench_site, bench_storm, bench_verify)
def tally(contest: Contest, rng: random.Random, ballots: int) -> ContestTally:
    """A random consistent count of `ballots` ballots: up to 5% invalid (blank), the rest
    spread over the options, half of each option's votes as preferences over its candidates."""
    invalid = rng.randint(0, ballots // 20)
    weights = [rng.random() for _ in contest.options]
    total = sum(weights)
    votes = {
        o.id: int((ballots - invalid) * w / total)
        for o, w in zip(contest.options, weights, strict=True)
    }
    votes[contest.options[0].id] += ballots - invalid - sum(votes.values())
    prefs = {
        c.id: votes[o.id] // (2 * len(o.candidates)) for o in contest.options for c in o.candidates
    }
    return ContestTally(
        contest_id=contest.id,
        ballots=ballots,
        invalid=invalid,
        invalid_by_reason={"blank": invalid} if invalid else {},
        votes=votes,
        preferences=prefs,
    )


class StationSigner:
    """One station's device: signs its messages on election day (local time hh:mm), chained."""

    def __init__(self, definition: ElectionDefinition, station_id: str, device: str,
                 key: Ed25519PrivateKey) -> None:  # fmt: skip
        self.definition, self.station = definition, definition.station(station_id)
        self.device, self.key = device, key
        self.seq, self.prev = 0, GENESIS_PREV

    def at(self, hh: int, mm: int = 1) -> dt.datetime:
        return dt.datetime.combine(self.definition.date, dt.time(hh, mm), tzinfo=TZ)

    def sign(self, kind: str, body: dict[str, Any], hh: int, mm: int = 1) -> Envelope:
        env = sign_envelope(
            self.key, kind=kind, election=self.definition.election_hash, station=self.station.id,
            device=self.device, seq=self.seq, prev=self.prev, time=format_time(self.at(hh, mm)),
            body=body,
        )  # fmt: skip
        self.seq, self.prev = self.seq + 1, env.hash
        return env

    def asu(self, phase: str, tallies: list[ContestTally], hh: int, **extra: Any) -> Envelope:
        body = {"phase": phase, "mode": "live", "sheets": max(t.ballots for t in tallies),
                "deferred_sheets": 0, "returned": {}, "tallies": [t.to_obj() for t in tallies],
                "deferred_tallies": [], **extra}  # fmt: skip
        return self.sign("asu_report", body, hh)

    def ident(self, phase: str, n: int, hh: int) -> Envelope:
        body = {"phase": phase, "mode": "live", "registered": self.station.registered_voters,
                "as_of": self.at(hh).isoformat(), "voted": n, "identified_by_face": n,
                "admitted_by_document": 0, "mobile_box": 0,
                "by_hour": {"08": n} if n else {}}  # fmt: skip
        return self.sign("identification_report", body, hh)

    def turnout(self, voted: int, hh: int) -> Envelope:
        body = {"mode": "live", "as_of": self.at(hh).isoformat(),
                "registered": self.station.registered_voters, "voted": voted}  # fmt: skip
        return self.sign("turnout", body, hh)

    def log_digest(self, hh: int, entries: int) -> Envelope:
        """The signed head of the event log, as `Appliance.log_digest` signs it at close."""
        # the log itself stays on the device; its head is some 64-hex hash
        head = hashlib.sha256(f"{self.station.id} log {entries}".encode()).hexdigest()
        body = {"from_seq": 1, "to_seq": entries, "count": entries, "head_hash": head,
                "by_severity": {"info": entries}, "mode": "live"}  # fmt: skip
        return self.sign("log_digest", body, hh)
