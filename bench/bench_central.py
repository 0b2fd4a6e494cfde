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

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import Figure, format_table, one_core
from bench.common import StationSigner, tally
from central import aggregate, evidence, results
from central.db import Database, open_database
from crypto.envelope import Envelope
from election.definition import ElectionDefinition
from election.tally import ContestTally
from provisioning.sample import build_definition

STATIONS = 2500
TURNOUTS = 4
BATCH = 300


def _messages(definition: ElectionDefinition, seed: int) -> tuple[list[Envelope], list[Envelope]]:
    """(day messages, closing reports) of every station, signed and chained, in the
    order they would arrive: a batch holds many stations' messages."""
    key = Ed25519PrivateKey.generate()
    rng = random.Random(seed)
    per_station: list[list[Envelope]] = []
    close: list[Envelope] = []
    for s in definition.stations:
        st = StationSigner(definition, s.id, f"dev-{s.number}", key)
        contests = definition.contests_for_station(s.id)
        voted = rng.randint(s.registered_voters // 3, s.registered_voters * 3 // 4)
        day = [st.asu("zero", [ContestTally.zero(c) for c in contests], 7), st.ident("first", 0, 7)]
        day += [st.turnout(voted * (i + 1) // (TURNOUTS + 1), 9 + 3 * i) for i in range(TURNOUTS)]
        per_station.append(day)
        tallies = [tally(c, rng, voted - rng.randint(0, 5)) for c in contests]
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
