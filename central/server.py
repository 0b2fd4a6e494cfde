"""The central server as one command: ingest workers, the results publisher, the watch,
the web pages.

Each ingest worker is its own process (both cores verify signatures), with its
own database and MQTT connections, on one shared subscription. The main
process publishes results when something changed (at most every
`publish_every` seconds), runs the server room's watch (central/watch.py: a hole
in a station's messages that outlived `gap_grace`, stations not delivered 2 h after
closing) every `watch_every` seconds, and serves the server room (and, later, the
public site) with aiohttp. Everything durable is in the database; any process can
be killed and started again.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing as mp
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from central import results, watch
from central.db import open_database
from central.ingest import IngestWorker
from central.kit import load_kit

log = logging.getLogger("shailoo.central")
Clock = Callable[[], dt.datetime]
KEEP_VERSIONS = 10
FORCE_EVERY = 60.0  # seconds: publish at least this often even if no input changed


@dataclass(frozen=True)
class ServerSettings:
    kit_dir: Path
    passphrase: str
    db_url: str
    host: str
    port: int
    workers: int = 2
    publish_every: float = 0.5
    gap_grace: float = watch.GAP_GRACE.total_seconds()  # a hole is an alert once this old
    watch_every: float = 5.0


def _worker_main(s: ServerSettings, index: int, ready: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    from central.mosquitto import die_with_parent

    die_with_parent()  # a worker never outlives the server (kill -9 of the server included)
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, _exit)
    kit = load_kit(s.kit_dir, s.passphrase)
    worker = IngestWorker(kit, s.db_url, host=s.host, port=s.port, identity=index + 1)
    worker.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        worker.stop()


def _exit(*_: object) -> None:
    raise SystemExit(0)


class CentralServer:
    """Start the workers, the publisher and the watch; `stop()` ends them all."""

    def __init__(self, settings: ServerSettings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.kit = load_kit(settings.kit_dir, settings.passphrase)
        self._procs: list[mp.process.BaseProcess] = []
        self._stopping = threading.Event()
        self._publisher: threading.Thread | None = None
        self._watch: threading.Thread | None = None
        self.db = open_database(settings.db_url)
        from central import evidence

        evidence.load_stations(self.db, self.kit.definition)

    def start(self, timeout: float = 30.0) -> None:
        ctx = mp.get_context("spawn")
        readies = []
        for i in range(self.settings.workers):
            ready = ctx.Event()
            p: mp.process.BaseProcess = ctx.Process(
                target=_worker_main, args=(self.settings, i, ready), name=f"ingest-{i}"
            )
            p.start()
            self._procs.append(p)
            readies.append(ready)
        for ready, p in zip(readies, self._procs, strict=True):
            if not ready.wait(timeout):
                self.stop()
                raise RuntimeError(f"{p.name} did not start (see its log)")
        self._publisher = threading.Thread(target=self._publish_loop, name="publisher", daemon=True)
        self._publisher.start()
        self._watch = threading.Thread(target=self._watch_loop, name="watch", daemon=True)
        self._watch.start()

    def publish_now(self) -> None:
        pub = results.publish(self.db, self.kit.definition, at=self.clock())
        if pub.new and pub.version is not None:
            # A national document is ~20 MB: keep the newest few, not one per half second.
            # The evidence (every signed message) is kept whole; any version can be rebuilt.
            with self.db.transaction() as tx:
                tx.execute("DELETE FROM published WHERE version <= ?",
                           (pub.version - KEEP_VERSIONS,))  # fmt: skip

    def _publish_loop(self) -> None:
        """Publish when the inputs changed, paced by how long a build takes.

        A national build costs about a second of CPU (read, check, serialise ~20 MB), so
        rebuilding every half second whatever happened kept a core busy all day.  Now:
        nothing is built while no message or manual count arrived (checked with a few
        counts, ~10 ms), at least every FORCE_EVERY seconds anyway, and after a build of
        b seconds the next waits max(publish_every, b): at most half a core, and a new
        report still shows within about two builds.
        """
        wait, last_inputs, last_build = self.settings.publish_every, None, 0.0
        while not self._stopping.wait(wait):
            try:
                inputs = results.inputs_fingerprint(self.db)
                if inputs == last_inputs and time.monotonic() - last_build < FORCE_EVERY:
                    wait = self.settings.publish_every
                    continue
                start = time.monotonic()
                self.publish_now()
                last_inputs, last_build = inputs, time.monotonic()
                wait = max(self.settings.publish_every, last_build - start)
            except Exception:
                wait = self.settings.publish_every
                log.exception("publisher: could not publish; the previous results stay")

    def _watch_loop(self) -> None:
        """The server room's watch every `watch_every` seconds, on the server's clock
        (real UTC time).  A failed round is logged; the next one runs as usual."""
        grace = dt.timedelta(seconds=self.settings.gap_grace)
        while not self._stopping.wait(self.settings.watch_every):
            try:
                watch.watch_once(self.db, self.kit.definition, self.clock(), gap_grace=grace)
            except Exception:
                log.exception("watch: a check failed; it runs again in a few seconds")

    def stop(self) -> None:
        self._stopping.set()
        for thread in (self._publisher, self._watch):
            if thread is not None:
                thread.join(10)
        for p in self._procs:
            p.terminate()
        for p in self._procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        self._procs.clear()
        self.db.close()

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]
