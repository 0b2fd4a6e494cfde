"""The public results site under election-night load: wrk on loopback, reports still arriving.

Set-up: the sample parliament election at full size (STATIONS stations, the party
list plus the single-member districts), on SQLite (WAL) in a temporary directory;
every station's day messages and the closing reports of the first half of them
accepted (`evidence.accept_batch`, messages signed beforehand as in
bench_central) and published (`results.publish`).  The site (`make_site`, as
`shailoo central run --serve` starts it: one aiohttp process, default Settings,
logging at WARNING) runs in a subprocess of its own, so wrk, the site and the
reporter do not share a GIL; the one-core pin of the bench package is lifted for
this bench (both cores: the site, wrk and the reporter share them).

While wrk runs, reports keep arriving: a thread accepts the next stations' closing
reports and publishes a new version about every second (the site picks each up
within its 1 s poll, parses it once and renders every page again on demand), so
the figures include the cost of new versions, not only of a warm cache.

Figures, `wrk -t2 -c200 -dSECONDS --latency` (200 concurrent clients), each run
with and without `Accept-Encoding: gzip` where the answer is compressible:
- requests per second and p99 latency of the home page `/ru/` and of
  `/api/v1/nation.json` (the JSON of the home page);
- the note says the body size, the versions published during the run and any
  non-2xx answer or socket error;
- the same for the gzip forms once the reports stopped arriving (no new version
  during the run: every answer from the warm cache), to tell the cost of new
  versions from the cost of serving.
Baseline: the same figures for a static file served by the same process
(`/static/site.css`, aiohttp's static route) in the same run.

Needs `wrk` (Debian package `wrk`; `make bench` installs it).  Environment:
SHAILOO_BENCH_STATIONS (default 2500), SHAILOO_BENCH_SITE_SECONDS (default 10 per run,
seven runs).
`python -m bench.bench_site serve DB_URL DEFINITION_JSON PORT` is the site process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import Figure, format_table
from bench.bench_central import _messages
from central import evidence, results
from central.db import open_database
from crypto.envelope import Envelope
from election.definition import ElectionDefinition
from provisioning.sample import build_definition

STATIONS = int(os.environ.get("SHAILOO_BENCH_STATIONS", "2500"))
SECONDS = int(os.environ.get("SHAILOO_BENCH_SITE_SECONDS", "10"))
CLIENTS = 200
THREADS = 2
PUBLISH_EVERY = 1.0  # seconds between the reporter's new versions
BATCH = 300
REPO = Path(__file__).resolve().parents[1]
STATIC = "/static/site.css"
HOME = "/ru/"
NATION = "/api/v1/nation.json"


def main() -> list[Figure]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError(
            "wrk (the HTTP load generator) is not installed: run `make bench`, which installs "
            "the Debian package wrk (deploy/install-system-packages.sh), or `apt-get install wrk`"
        )
    pinned = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    if pinned is not None:  # the site, wrk and the reporter use every core
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    tmp = Path(tempfile.mkdtemp(prefix="bench-site-"))
    try:
        return _run(wrk, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if pinned is not None:
            os.sched_setaffinity(0, pinned)


# --- the election ------------------------------------------------------------------------
def _accept(db_url: str, definition: ElectionDefinition, envs: list[Envelope]) -> None:
    at = dt.datetime.now(dt.UTC)
    with open_database(db_url) as db:
        for i in range(0, len(envs), BATCH):
            chunk = envs[i : i + BATCH]
            evidence.accept_batch(db, definition, [(e, e.to_bytes(), at) for e in chunk])


class Reporter(threading.Thread):
    """Stations' closing reports arriving: accept the next few, publish, about every second."""

    def __init__(self, db_url: str, definition: ElectionDefinition, pending: list[Envelope],
                 per_publish: int) -> None:  # fmt: skip
        super().__init__(name="reporter", daemon=True)
        self.db_url, self.definition = db_url, definition
        self.pending = pending  # (final ASU report, final identification report) per station
        self.per_publish = per_publish
        self.stop = threading.Event()
        self.versions = 0
        self.publish_seconds: list[float] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with open_database(self.db_url) as db:
                while not self.stop.is_set() and self.pending:
                    start = time.monotonic()
                    n = 2 * self.per_publish
                    batch, self.pending = self.pending[:n], self.pending[n:]
                    at = dt.datetime.now(dt.UTC)
                    evidence.accept_batch(
                        db, self.definition, [(e, e.to_bytes(), at) for e in batch]
                    )
                    t = time.monotonic()
                    pub = results.publish(db, self.definition, at=dt.datetime.now(dt.UTC))
                    self.publish_seconds.append(time.monotonic() - t)
                    if pub.problems:
                        raise RuntimeError(f"publish refused: {pub.problems[:3]}")
                    self.versions += int(pub.new)
                    self.stop.wait(max(0.0, PUBLISH_EVERY - (time.monotonic() - start)))
        except BaseException as exc:  # reported by the bench after the run
            self.error = exc


# --- the site process --------------------------------------------------------------------
def serve(db_url: str, definition_path: str, port: int) -> None:
    """The site in this process, until SIGTERM (what `python -m bench.bench_site serve` runs)."""
    from aiohttp import web

    from central.site.app import make_site

    logging.basicConfig(level=logging.WARNING)
    definition = ElectionDefinition.from_json(Path(definition_path).read_bytes())
    app = make_site(db_url, definition, kit_dir=None, clock=lambda: dt.datetime.now(dt.UTC))
    web.run_app(app, host="127.0.0.1", port=port, print=None, shutdown_timeout=2.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str, *, gz: bool = False, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip" if gz else "identity"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> int:
    """The published version the site serves, once it answers."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the site exited ({proc.returncode}): {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            status, _, body = _get(base + "/api/v1/status.json", timeout=5)
            version = json.loads(body).get("version") if status == 200 else None
            if version:
                return int(version)
        time.sleep(0.2)
    raise RuntimeError(f"the site did not start in 120 s: {log.read_text()[-2000:]}")


def _rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- wrk ---------------------------------------------------------------------------------
@dataclass
class Run:
    path: str
    gzip: bool
    rps: float
    p99: float  # seconds
    requests: int
    bad: int  # non-2xx/3xx answers
    socket_errors: int
    size: int  # bytes of one answer's body, as sent
    versions: int = 0  # new versions published during the run
    quiet: bool = False  # run after the reports stopped arriving

    @property
    def label(self) -> str:
        quiet = ", no reports arriving" if self.quiet else ""
        return f"{self.path}{' gzip' if self.gzip else ''}{quiet}"


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if m is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(output: str) -> tuple[float, float, int, int, int]:
    """(requests/s, p99 seconds, requests, non-2xx/3xx answers, socket errors) of wrk's report."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"^\s+(\d+) requests in", output, re.M)
    if rps is None or p99 is None or total is None:
        raise RuntimeError(f"cannot read wrk's output (was --latency given?):\n{output}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = sum(int(x) for x in sock.groups()) if sock else 0
    return (
        float(rps.group(1)),
        _seconds(p99.group(1)),
        int(total.group(1)),
        int(bad.group(1)) if bad else 0,
        errors,
    )


def _wrk(wrk: str, base: str, path: str, *, gz: bool, reporter: Reporter) -> Run:
    status, headers, body = _get(base + path, gz=gz)  # warm: rendered and cached
    if status != 200:
        raise RuntimeError(f"{path}: HTTP {status}")
    if gz:  # the site's own gzip form, a real one
        if headers.get("content-encoding") != "gzip":
            raise RuntimeError(f"{path}: no gzip form with Accept-Encoding: gzip")
        gzip.decompress(body)
    cmd = [wrk, f"-t{THREADS}", f"-c{CLIENTS}", f"-d{SECONDS}s", "--latency", "--timeout", "10s"]
    cmd += ["-H", f"Accept-Encoding: {'gzip' if gz else 'identity'}", base + path]
    before = reporter.versions
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=SECONDS + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    rps, p99, total, bad, errors = parse_wrk(done.stdout)
    return Run(path, gz, rps, p99, total, bad, errors, len(body), reporter.versions - before)


def _run(wrk: str, tmp: Path) -> list[Figure]:
    definition = build_definition(stations=STATIONS, voters_per_station=1500, seed=1)
    day, close = _messages(definition, 1)
    half = 2 * (STATIONS // 2)  # two closing messages per station
    db_url = f"sqlite:///{tmp / 'central.sqlite'}"
    with open_database(db_url) as db:
        evidence.load_stations(db, definition)
    _accept(db_url, definition, day)
    _accept(db_url, definition, close[:half])
    with open_database(db_url) as db:
        first = results.publish(db, definition, at=dt.datetime.now(dt.UTC))
        assert first.new and not first.problems, first.problems
    definition_path = tmp / "election.json"
    definition_path.write_text(definition.model_dump_json(), encoding="utf-8")

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / "site.log"
    cmd = [sys.executable, "-m", "bench.bench_site", "serve", db_url, str(definition_path),
           str(port)]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(base, proc, log)
        plan = [(STATIC, False), (HOME, False), (HOME, True), (NATION, False), (NATION, True)]
        pending = close[half:]
        publishes = max(1, round(len(plan) * (SECONDS + 2) / PUBLISH_EVERY))
        reporter = Reporter(db_url, definition, pending, max(1, len(pending) // 2 // publishes))
        reporter.start()
        try:
            runs = [_wrk(wrk, base, path, gz=gz, reporter=reporter) for path, gz in plan]
        finally:
            reporter.stop.set()
            reporter.join(60)
        if reporter.error is not None:
            raise RuntimeError(f"the reporter failed: {reporter.error!r}") from reporter.error
        time.sleep(2 * PUBLISH_EVERY + 1)  # the site has loaded the last version
        quiet = [_wrk(wrk, base, path, gz=True, reporter=reporter) for path in (HOME, NATION)]
        for r in quiet:
            r.quiet = True
        rss = _rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return _figures(runs + quiet, reporter, rss)


def _figures(runs: list[Run], reporter: Reporter, rss: float) -> list[Figure]:
    static = runs[0]
    base_rps = Figure(f"{static.label} req/s (static)", static.rps, "req/s", None, "",
                      _note(static))  # fmt: skip
    base_p99 = Figure(f"{static.label} p99 (static)", static.p99, "s")
    out = [base_rps, base_p99]
    for r in runs[1:]:
        out.append(
            Figure(f"{r.label} req/s", r.rps, "req/s", r.rps / static.rps, base_rps.name, _note(r))
        )
        if (r.path, r.gzip, r.quiet) == (HOME, True, False):
            out[-1] = out[-1].answers(
                "site requests per second",
                f"wrk -t{THREADS} -c{CLIENTS} -d{SECONDS}s on loopback against the public site "
                f"(make_site, one aiohttp process) of a {STATIONS:,}-station election on SQLite, "
                f"home page {HOME} with gzip, while a new results version is published about "
                f"every {PUBLISH_EVERY:g} s; baseline: {STATIC} from the same process, same run",
            )
        out.append(Figure(f"{r.label} p99", r.p99, "s", r.p99 / static.p99, base_p99.name))
    pub = sorted(reporter.publish_seconds)
    out.append(
        Figure("versions published during the runs", reporter.versions, "", None, "",
               f"publish p50 {pub[len(pub) // 2]:.2f} s" if pub else "")
    )  # fmt: skip
    out.append(Figure("site process memory (RSS)", rss, "MB", None, "", f"{STATIONS} stations"))
    return out


def _note(r: Run) -> str:
    parts = [
        f"{r.size / 1024:,.0f} KiB",
        f"{r.versions} new version{'' if r.versions == 1 else 's'}",
    ]
    if r.bad:
        parts.append(f"{r.bad} non-2xx")
    if r.socket_errors:
        parts.append(f"{r.socket_errors} socket errors")
    return ", ".join(parts)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        print(format_table([("site", f) for f in main()]))
