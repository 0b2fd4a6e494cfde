"""The closing storm: seconds from 20:00 until the published results show every station.

Set-up (real parts, not timed), reusing bench_ingest's: the sample parliament election
of STATIONS stations (37 contests; bench_ingest._election: a CEC root, one device key
and certificate per station, the central kit as `provision build` writes it, every
message signed beforehand, chained per station); Mosquitto with the production
configuration, TLS and ACL (bench_ingest._broker: deploy/mosquitto's templates, plus
the load-generator identity allowed to publish on every station's up topic: one
connection stands in for 2,500 modems); the central server as production runs it,
`python -m shailoo central run --workers WORKERS` in a process of its own (ingest
worker processes on the shared subscription, the results publisher at its default
pacing) on SQLite (WAL, synchronous=FULL) in a temporary directory.

The day (not timed): every station's zero ASU report, first identification report and
4 turnout snapshots are published, stored, and published as results (the bench waits
until the newest published version is byte for byte what the stored day gives).

The storm (timed): at t0 ("20:00") the load generator releases every station's
closing messages at once, station after station: final ASU report, final
identification report, log digest (3 per station), QoS 1, as fast as the client
can hand them to the broker. The bench process polls the server's database every
POLL seconds: messages stored, stations delivered in the database (both final
reports stored), and the newest published version (central.results.latest_published,
what the public site serves), whose `stations.delivered` says how many stations the
public sees delivered. Figures: seconds from t0 until 50%, 90%, 99% and 100% of the
stations are in the newest published version, the same for "stored" (the ingest
alone), and the publisher's share: the time each version took to build (from its
`published_at`, the publisher's clock when it began, to when the bench first saw it),
the time from the last station stored to 100% published, one publish of the complete
election alone after the storm (nothing else running), the CPU seconds each process
used during the storm, where the publisher thread spent the storm (ThreadSampler: on a
CPU, or blocked in which system call: SQLite's busy wait for the write lock, fsync, its
pause between builds), the alerts the server raised and any publisher failure in its log.

Baseline, same run, same broker, before the server starts: the same closing messages
through the same load-generator connection to a plain subscriber on a shared
subscription that does nothing with them (bench_ingest._carry): seconds from the
first publish until 50/90/99/100% of the stations' closing messages have all
arrived. Each storm percentile's ratio is to the baseline's same percentile.

Both cores are used (the bench package's one-core pin is lifted, as bench_ingest does).
Environment: SHAILOO_BENCH_STORM_STATIONS (default 2500).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import Figure, format_table
from bench.bench_ingest import PREFIX, _broker, _carry, _client, _election, _publish_all
from central.mosquitto import Broker
from crypto.envelope import Envelope
from sim.day import CentralProcess

STATIONS = int(os.environ.get("SHAILOO_BENCH_STORM_STATIONS", "2500"))
WORKERS = 2  # `shailoo central run`'s default
CURVE = (50, 90, 99, 100)  # percent of the stations
POLL = 0.02  # seconds between the bench's looks at the server's database
TIMEOUT = 900.0  # seconds the storm may take before the bench gives up
REPO = Path(__file__).resolve().parents[1]


def main() -> list[Figure]:
    return run(STATIONS)


def run(stations: int, workers: int = WORKERS) -> list[Figure]:
    """The whole bench at `stations` stations (the test runs it at a tiny size)."""
    pinned = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    if pinned is not None:  # the server's processes, Mosquitto and the load generator share
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    tmp = Path(tempfile.mkdtemp(prefix="bench-storm-"))
    try:
        return _run(tmp, stations, workers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if pinned is not None:
            os.sched_setaffinity(0, pinned)


# --- what the bench sees -------------------------------------------------------------------------
@dataclass
class Version:
    """One published version as the bench first saw it (seconds after t0)."""

    version: int
    seen: float
    began: float  # its published_at (when the publisher began it), seconds after t0
    delivered: int


@dataclass
class Watch:
    """Everything the bench saw during the storm, in seconds after t0."""

    stations: int
    versions: list[Version] = field(default_factory=list)
    stored_at: dict[int, float] = field(default_factory=dict)  # percent -> when so many delivered
    all_stored: float = math.nan  # every closing message stored
    released: float = math.nan  # the load generator handed over its last message

    def published_at(self, percent: int) -> float:
        need = math.ceil(self.stations * percent / 100)
        return next((v.seen for v in self.versions if v.delivered >= need), math.nan)


def stations_shown(text: str) -> dict[str, Any]:
    """The `stations` part of a published document ({"of", "delivered", "by_state"}), read
    without parsing the other ~20 MB: canonical JSON has sorted keys and no spaces, so it is
    the object right after the top-level "format"."""
    from central.results import FORMAT

    marker = f'"format":"{FORMAT}","stations":'
    at = text.find(marker)
    if at < 0:  # another layout: parse it all
        part: dict[str, Any] = json.loads(text)["stations"]
        return part
    part, _ = json.JSONDecoder().raw_decode(text, at + len(marker))
    return part


def _count(db: Any, sql: str) -> int:
    row = db.one(sql)
    return int(row["n"]) if row and row["n"] is not None else 0


# --- processes -----------------------------------------------------------------------------------
def _server(
    kit: Path, passphrase: str, db_url: str, broker: Broker, tmp: Path, workers: int
) -> tuple[CentralProcess, Path]:
    """`shailoo central run` as the CEC runs it (and the election day), once it is up."""
    (tmp / "central-passphrase.txt").write_text(passphrase)
    log = tmp / "central.log"
    server = CentralProcess(
        kit, tmp / "central-passphrase.txt", db_url, broker.host, broker.port, workers, log
    )
    try:
        server.start(timeout=180)
    except BaseException:
        server.stop()
        raise
    return server, log


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(d.name))
    return out


# What a blocked thread waits in, by x86-64 syscall number (/proc/PID/task/TID/syscall).
_WAITS = {
    "35": "sleeping: SQLite's busy handler waiting for the write lock",  # nanosleep
    "230": "sleeping: SQLite's busy handler waiting for the write lock",  # clock_nanosleep
    "202": "futex: its pause between builds",
    "74": "fsync: committing",
    "75": "fsync: committing",
    "0": "reading or writing the database file",
    "1": "reading or writing the database file",
    "17": "reading or writing the database file",
    "18": "reading or writing the database file",
}
_CPU = "on a CPU (or ready for one)"


class ThreadSampler(threading.Thread):
    """Every `every` seconds, what each thread of `pid` but its main thread (in `central
    run`: the results publisher) is doing, from /proc: on a CPU, or which system call it
    is blocked in. Nothing in the server is changed or slowed but by these reads."""

    def __init__(self, pid: int, every: float = 0.005) -> None:
        super().__init__(name="thread-sampler", daemon=True)
        self.pid, self.every = pid, every
        self.seen: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        tasks = Path(f"/proc/{self.pid}/task")
        while not self.stop.wait(self.every):
            try:
                tids = [t for t in os.listdir(tasks) if t != str(self.pid)]
            except OSError:
                return
            for tid in tids:
                try:
                    first = (tasks / tid / "syscall").read_text().split()[0]
                except (OSError, IndexError):
                    continue
                what = _CPU if first in ("running", "-1") else _WAITS.get(first, f"syscall {first}")
                self.seen[what] += 1

    def shares(self) -> dict[str, float]:
        total = sum(self.seen.values())
        return {k: n / total for k, n in self.seen.most_common()} if total else {}


# --- the run -------------------------------------------------------------------------------------
def _run(tmp: Path, stations: int, workers: int) -> list[Figure]:
    from central.db import open_database

    start = time.perf_counter()
    kit, passphrase, day_by_station, close = _election(tmp, stations, log_digest=True)
    setup_s = time.perf_counter() - start
    day = [m for msgs in zip(*day_by_station, strict=True) for m in msgs]  # as they arrive
    per_station = Counter(m.station for m in close)
    broker = _broker(kit, tmp)
    server: CentralProcess | None = None
    try:
        print(
            f"storm: {stations:,} stations, {len(close):,} closing messages; baseline: the "
            "broker alone",
            file=sys.stderr,
            flush=True,
        )
        base = _baseline_curve(_carry(kit, passphrase, tmp, broker, close), per_station)
        db_url = f"sqlite:///{tmp / 'central.sqlite'}"
        server, log = _server(kit, passphrase, db_url, broker, tmp, workers)
        proc = server.proc
        assert proc is not None
        db = open_database(db_url)
        pub = _client(kit, tmp, broker.port, loadgen=True)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        try:
            time.sleep(0.5)
            day_s = _day(db, pub, day, kit, passphrase)
            print(
                f"storm: the day's {len(day):,} messages stored and published in {day_s:.1f} "
                "s; 20:00: every closing message released",
                file=sys.stderr,
                flush=True,
            )
            pids = {
                "publisher (central run's main process)": [proc.pid],
                "ingest workers": _children(proc.pid),
                "mosquitto": [broker.process.pid] if broker.process else [],
                "load generator + this bench's polling and sampling": [os.getpid()],
            }
            cpu0 = {k: sum(_cpu(p) for p in v) for k, v in pids.items()}
            sampler = ThreadSampler(proc.pid)
            sampler.start()
            watch = _storm(db, pub, close, len(day), stations)
            sampler.stop.set()
            sampler.join(10)
            cpu = {k: sum(_cpu(p) for p in v) - cpu0[k] for k, v in pids.items()}
        finally:
            pub.loop_stop()
            pub.disconnect()
        server.stop()
        server = None
        trouble = _trouble(db, log)
        trouble["publisher"] = sampler.shares()
        alone = _publish_alone(db, kit, passphrase)
        db.close()
    finally:
        if server is not None:
            server.stop()
        broker.stop()
    _print_curve(watch, base)
    return _figures(watch, base, alone, cpu, trouble, setup_s, stations, len(close), workers)


def _baseline_curve(arrivals: list[tuple[float, str]], per_station: Counter[str]) -> Watch:
    """When each station's closing messages had all arrived at the plain subscriber."""
    got: Counter[str] = Counter()
    done: list[float] = []
    for t, topic in arrivals:
        station = topic.removeprefix(f"{PREFIX}/station/").split("/", 1)[0]
        got[station] += 1
        if got[station] == per_station[station]:
            done.append(t)
    watch = Watch(len(per_station), all_stored=arrivals[-1][0])
    for q in CURVE:
        need = math.ceil(len(per_station) * q / 100)
        watch.stored_at[q] = done[need - 1] if len(done) >= need else math.nan
    return watch


def _day(db: Any, pub: Any, day: list[Envelope], kit: Path, passphrase: str) -> float:
    """Publish the day's messages, wait until all are stored and the newest published
    version is exactly the document the stored day gives (not timed: seconds, for the log)."""
    import hashlib

    from central import results
    from central.kit import load_kit

    start = time.perf_counter()
    _publish_all(pub, day, {})
    _until(
        lambda: _count(db, "SELECT COUNT(*) AS n FROM messages") >= len(day),
        "the day's messages stored",
    )
    definition = load_kit(kit, passphrase).definition
    doc, problems = results.build_document(definition, results.read_aggregates(db))
    if problems:
        raise RuntimeError(f"the day's results break invariants: {problems[:3]}")
    want = hashlib.sha256(results.document_bytes(doc)).hexdigest()

    def published() -> bool:  # the newest version's hash (not its ~20 MB)
        row = db.one("SELECT sha256 FROM published ORDER BY version DESC LIMIT 1")
        return row is not None and row["sha256"] == want

    _until(published, "the day's results published", step=0.2)
    return time.perf_counter() - start


def _until(pred: Any, what: str, timeout: float = 600.0, step: float = 0.05) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise RuntimeError(f"storm: {what}: not reached in {timeout:.0f} s")
        time.sleep(step)


def _storm(db: Any, pub: Any, close: list[Envelope], before: int, stations: int) -> Watch:
    from central.results import latest_published

    watch = Watch(stations)
    total = before + len(close)
    wall0 = time.time()
    t0 = time.perf_counter()
    released: list[float] = []

    def release() -> None:
        _publish_all(pub, close, {})
        released.append(time.perf_counter() - t0)

    sender = threading.Thread(target=release, name="storm-release", daemon=True)
    sender.start()
    last = None
    while True:
        now = time.perf_counter() - t0
        if now > TIMEOUT:
            raise RuntimeError(
                f"storm: not every station published in {TIMEOUT:.0f} s: stored "
                f"{_count(db, 'SELECT COUNT(*) AS n FROM messages') - before} of {len(close)}, "
                f"published {watch.versions[-1].delivered if watch.versions else 0} stations"
            )
        delivered = _count(db, "SELECT COUNT(*) AS n FROM stations WHERE state = 'delivered'")
        for q in CURVE:
            if q not in watch.stored_at and delivered >= math.ceil(stations * q / 100):
                watch.stored_at[q] = now
        if (
            math.isnan(watch.all_stored)
            and _count(db, "SELECT COUNT(*) AS n FROM messages") >= total
        ):
            watch.all_stored = now
        version = _count(db, "SELECT MAX(version) AS n FROM published")
        if version != last:
            latest = latest_published(db)
            seen = time.perf_counter() - t0
            if latest is not None:
                last = latest.version
                began = dt.datetime.fromisoformat(latest.published_at).timestamp() - wall0
                shown = stations_shown(latest.text)
                watch.versions.append(Version(latest.version, seen, began, shown["delivered"]))
        if not math.isnan(watch.published_at(100)) and not math.isnan(watch.all_stored):
            break
        time.sleep(POLL)
    sender.join(60)
    for q in CURVE:  # crossed between two looks: stored by the time it was published
        watch.stored_at.setdefault(q, watch.published_at(q))
    watch.released = released[0] if released else math.nan
    return watch


def _trouble(db: Any, log: Path) -> dict[str, Any]:
    """What went wrong on the server during the run: alerts by kind and the publisher's
    logged failures (a cycle that raised publishes nothing; its time is lost)."""
    alerts = {r["kind"]: (int(r["n"]), int(r["open"])) for r in db.query(
        "SELECT kind, SUM(repeats) AS n, SUM(resolved_at IS NULL) AS open FROM alerts"
        " GROUP BY kind ORDER BY kind")}  # fmt: skip
    lines = log.read_text(errors="replace").splitlines()
    failed = [i for i, line in enumerate(lines) if "publisher: could not publish" in line]
    reason = next((line for line in lines[failed[0] :] if "Error" in line), "") if failed else ""
    return {"alerts": alerts, "publish_failures": len(failed), "reason": reason.strip()}


def _publish_alone(db: Any, kit: Path, passphrase: str) -> list[float]:
    """`results.publish` of the complete election after the storm, the server stopped: what
    one publisher cycle costs with nothing else running (the document is unchanged, so
    nothing is stored: check outliers, read every aggregate, build, check, serialise, hash)."""
    from central import results
    from central.kit import load_kit

    definition = load_kit(kit, passphrase).definition
    out = []
    for _ in range(2):
        start = time.perf_counter()
        results.publish(db, definition, at=dt.datetime.now(dt.UTC))
        out.append(time.perf_counter() - start)
    return out


# --- output --------------------------------------------------------------------------------------
def _print_curve(watch: Watch, base: Watch) -> None:
    n = watch.stations
    print(f"\nclosing storm, {n:,} stations: published versions after 20:00 (t0)")
    print("   seen  version  stations published  publish began  build+store")
    for v in watch.versions:
        print(
            f"{v.seen:6.2f} s  {v.version:7d}  {v.delivered:6,} ({100 * v.delivered / n:5.1f}%)"
            f"    {v.began:+8.2f} s     {v.seen - v.began:6.2f} s"
        )
    print("   share  broker alone  stored (ingest)  published")
    for q in CURVE:
        print(
            f"  {q:4d}%  {base.stored_at.get(q, math.nan):10.2f} s  "
            f"{watch.stored_at.get(q, math.nan):13.2f} s  {watch.published_at(q):7.2f} s"
        )
    print(
        f"  every closing message stored {watch.all_stored:.2f} s after t0; handed to the "
        f"client by {watch.released:.2f} s\n",
        flush=True,
    )


def _figures(
    watch: Watch,
    base: Watch,
    alone: list[float],
    cpu: dict[str, float],
    trouble: dict[str, Any],
    setup_s: float,
    stations: int,
    messages: int,
    workers: int,
) -> list[Figure]:
    out: list[Figure] = []
    base_fig = {}
    for q in CURVE:
        f = Figure(
            f"broker alone: {q}% of stations' closing messages carried",
            base.stored_at[q],
            "s",
            note=f"{messages:,} messages, TLS, plain subscriber" if q == 100 else "",
        )
        base_fig[q] = f
        out.append(f)
    how = (
        f"{stations:,} stations x 3 signed closing messages (final ASU, final identification, "
        "log digest) released at once at t0 over one load-generator TLS connection to real "
        f"Mosquitto (production config + ACL) and `shailoo central run` ({workers} ingest "
        "workers, SQLite, results publisher at its default pacing); seconds from t0 until "
        "central.results.latest_published shows every station delivered; baseline: the "
        "same messages, same broker, to a plain subscriber"
    )
    during = [v for v in watch.versions if v.began > 0]
    for q in CURVE:
        v = watch.published_at(q)
        b = base_fig[q]
        note = ""
        if q == 100:
            note = f"{len(during)} versions published after t0"
        out.append(
            Figure(
                f"closing storm: {q}% of stations published",
                v,
                "s",
                v / b.value if b.value > 0 else None,
                b.name,
                note,
                issue="closing storm" if q == 100 else "",
                how=how if q == 100 else "",
            )
        )
    for q in CURVE:
        v = watch.stored_at[q]
        b = base_fig[q]
        out.append(
            Figure(
                f"  {q}% of stations stored (ingest alone)",
                v,
                "s",
                v / b.value if b.value > 0 else None,
                b.name,
            )
        )
    out.append(
        Figure(
            "  every closing message stored",
            watch.all_stored,
            "s",
            note=f"load generator done handing them over at {watch.released:.2f} s",
        )
    )
    lag = watch.published_at(100) - watch.stored_at[100]
    out.append(
        Figure(
            "  publisher: last station stored -> published",
            lag,
            "s",
            note="what the publisher adds to the storm",
        )
    )
    builds = sorted(v.seen - v.began for v in during)
    if builds:
        out.append(
            Figure(
                "  publisher: one version during the storm (median)",
                builds[len(builds) // 2],
                "s",
                note=f"its published_at -> seen; max {builds[-1]:.2f} s, {len(builds)} versions",
            )
        )
    if len(during) > 1:
        gaps = sorted(b.seen - a.seen for a, b in zip(during, during[1:], strict=False))
        out.append(Figure("  publisher: time between versions (median)", gaps[len(gaps) // 2], "s"))
    out.append(
        Figure(
            "  one publish cycle, complete election, nothing else running",
            min(alone),
            "s",
            note="results.publish after the storm: read, build, check, hash",
        )
    )
    out.append(
        Figure(
            "  publisher: cycles that failed (server log)",
            trouble["publish_failures"],
            "",
            note=trouble["reason"][:120],
        )
    )
    alerts = ", ".join(f"{k} {n} ({o} still open)" for k, (n, o) in trouble["alerts"].items())
    raised = sum(n for n, _ in trouble["alerts"].values())
    out.append(Figure("  alerts raised during the run", raised, "", note=alerts))
    for what, share in trouble["publisher"].items():
        out.append(Figure(f"  publisher thread: {what}", round(100 * share, 1), "% of the storm"))
    window = watch.published_at(100)
    for who, seconds in cpu.items():
        out.append(
            Figure(
                f"  CPU during the storm: {who}",
                seconds,
                "s",
                note=f"{seconds / window:.2f} cores" if window > 0 else "",
            )
        )
    out.append(
        Figure(
            "set-up: sign every message, issue every certificate",
            setup_s,
            "s",
            note=f"{stations:,} stations",
        )
    )
    return out


if __name__ == "__main__":
    print(format_table([("storm", f) for f in main()]))
