"""Central bookkeeping at national size: accepting messages, publishing, rebuilding.

Set-up: the sample parliament election at full size (STATIONS stations, the party
list with its 16 parties and ~250 candidates plus 36 single-member districts, so 37
contests), an empty SQLite database in a temporary directory (WAL,
synchronous=FULL), `evidence.load_stations`.  Every station's messages are signed
with a real Ed25519 key beforehand (not timed): zero report, first identification
report, TURNOUTS turnout snapshots, final ASU report with random consistent
tallies, final identification report.

Figures:
- accept: `evidence.accept_batch` in batches of BATCH, one transaction each
  (group commit), separately for the day's small messages and for the closing
  storm of final reports (the heavy ones: every contest's tally at 5 levels);
- publish: `results.publish` of the complete election (read every aggregate,
  check every invariant, build and store the document), and its size;
- recompute: `aggregate.recompute`, the rebuild from the stored evidence.

Baseline: one `accept_batch` of BATCH duplicates (read and compare only).
`SHAILOO_BENCH_PG=postgresql://...` (an empty database) runs it on PostgreSQL instead.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import Figure, format_table, one_core
from central import aggregate, evidence, results
from central.db import Database, open_database
from crypto.envelope import GENESIS_PREV, Envelope, format_time, sign_envelope
from election.definition import Contest, ElectionDefinition
from election.tally import ContestTally
from provisioning.sample import build_definition

STATIONS = 2500
TURNOUTS = 4
BATCH = 300
TZ = ZoneInfo("Asia/Bishkek")
DAY = dt.date(2026, 11, 29)


def _tally(contest: Contest, rng: random.Random, ballots: int) -> ContestTally:
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


class _Station:
    """One station's device: signs its day's messages, chained."""

    def __init__(self, definition: ElectionDefinition, number: int, key: Ed25519PrivateKey):
        self.definition = definition
        self.station = definition.station_by_number(number)
        self.key = key
        self.seq, self.prev = 0, GENESIS_PREV

    def sign(self, kind: str, body: dict[str, Any], hh: int) -> Envelope:
        env = sign_envelope(
            self.key, kind=kind, election=self.definition.election_hash, station=self.station.id,
            device=f"dev-{self.station.number}", seq=self.seq, prev=self.prev,
            time=format_time(dt.datetime.combine(DAY, dt.time(hh, 1), tzinfo=TZ)), body=body,
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
                "as_of": dt.datetime.combine(DAY, dt.time(hh, 1), tzinfo=TZ).isoformat(),
                "voted": n, "identified_by_face": n, "admitted_by_document": 0,
                "mobile_box": 0, "by_hour": {"08": n} if n else {}}  # fmt: skip
        return self.sign("identification_report", body, hh)

    def turnout(self, voted: int, hh: int) -> Envelope:
        at = dt.datetime.combine(DAY, dt.time(hh, 1), tzinfo=TZ).isoformat()
        body = {"mode": "live", "as_of": at, "registered": self.station.registered_voters,
                "voted": voted}  # fmt: skip
        return self.sign("turnout", body, hh)


def _messages(definition: ElectionDefinition, seed: int) -> tuple[list[Envelope], list[Envelope]]:
    """(day messages, closing reports) of every station, signed and chained, in the
    order they would arrive: a batch holds many stations' messages."""
    key = Ed25519PrivateKey.generate()
    rng = random.Random(seed)
    per_station: list[list[Envelope]] = []
    close: list[Envelope] = []
    for s in definition.stations:
        st = _Station(definition, s.number, key)
        contests = definition.contests_for_station(s.id)
        voted = rng.randint(s.registered_voters // 3, s.registered_voters * 3 // 4)
        day = [st.asu("zero", [ContestTally.zero(c) for c in contests], 7), st.ident("first", 0, 7)]
        day += [st.turnout(voted * (i + 1) // (TURNOUTS + 1), 9 + 3 * i) for i in range(TURNOUTS)]
        per_station.append(day)
        tallies = [_tally(c, rng, voted - rng.randint(0, 5)) for c in contests]
        close.append(st.asu("final", tallies, 20, voters_identified=voted, problems=[]))
        close.append(st.ident("final", voted, 20))
    # as they arrive: every station's first message, then every station's second, ...
    return [m for msgs in zip(*per_station, strict=True) for m in msgs], close


def _accept(db: Database, definition: ElectionDefinition, envs: list[Envelope]) -> float:
    at = dt.datetime(2026, 11, 29, 15, 0, tzinfo=dt.UTC)
    start = time.perf_counter()
    for i in range(0, len(envs), BATCH):
        chunk = envs[i : i + BATCH]
        evidence.accept_batch(db, definition, [(e, e.to_bytes(), at) for e in chunk])
    return time.perf_counter() - start


def main() -> list[Figure]:
    definition = build_definition(stations=STATIONS, voters_per_station=1500, seed=1)
    day, close = _messages(definition, 1)
    pg = os.environ.get("SHAILOO_BENCH_PG")
    with tempfile.TemporaryDirectory(prefix="shailoo-bench-central-") as tmp:
        db = open_database(pg or f"sqlite:///{Path(tmp) / 'central.sqlite'}")
        where = db.kind
        evidence.load_stations(db, definition)
        t_day = _accept(db, definition, day)
        t_close = _accept(db, definition, close)
        t_dup = _accept(db, definition, close[:BATCH])
        start = time.perf_counter()
        pub = results.publish(db, definition, at=dt.datetime.now(dt.UTC))
        t_pub = time.perf_counter() - start
        assert pub.new and not pub.problems, pub.problems
        latest = results.latest_published(db)
        assert latest is not None
        size = len(latest.text.encode("utf-8"))
        start = time.perf_counter()
        agg = results.read_aggregates(db)
        t_read = time.perf_counter() - start
        start = time.perf_counter()
        results.build_document(definition, agg)
        t_build = time.perf_counter() - start
        start = time.perf_counter()
        aggregate.recompute(db, definition)
        t_re = time.perf_counter() - start
        db.close()
    base = Figure(f"accept {BATCH} duplicates ({where})", t_dup, "s")
    n_day, n_close = len(day), len(close)
    note = f"{STATIONS} stations, {len(definition.contests)} contests, {where}"
    return [
        base,
        Figure("accept day messages", n_day / t_day, "msg/s", None, "", f"{n_day} messages"),
        Figure("accept final reports", n_close / t_close, "msg/s", None, "", f"{n_close} reports"),
        Figure("publish (read+check+build+store)", t_pub, "s", t_pub / t_dup, base.name, note),
        Figure("  of which read aggregates", t_read, "s"),
        Figure("  of which build + check", t_build, "s"),
        Figure("results document", size / 1e6, "MB"),
        Figure("recompute from evidence", t_re, "s", t_re / t_dup, base.name, note),
    ]


if __name__ == "__main__":
    print(f"one core ({one_core()})")
    print(format_table([("central", f) for f in main()]))
    sys.exit(0)
