"""`shailoo sim day`: a whole election day for N stations against the real CEC server.

The driver provisions an election with the real pipeline (sample, roll, key ceremony,
bundles; reused from `--out` when it was made with the same parameters), starts
Mosquitto with the production configuration and the central server as its own
process tree (`shailoo central run`, ingest workers on a shared subscription), and
runs every station's day on a compressed clock:

    07:30  set up from the bundle         08:00  zero report, polls open
    every 10 min: voters (the truth's visits), turnout, heartbeats, log digests
    20:00 + a few minutes: close, final reports, the closing storm
    until every final report is acknowledged (or the deadline): delivery, publication

Stations are "fast" stations (`sim.fast_station`: the real appliance with recorded
reader/camera outcomes and already-read sheets) and, for the first `--full` K, "full"
stations (`sim.full_station`: the real reader driver, face match and mark reader behind
simulated devices), each with its own SQLite database (on /dev/shm when there is one)
and its own `station.uplink.Uplink` (own MQTT connection, own TLS identity).  A few
worker processes each drive a slice of them on the same clock, sharing one
`VerifyCache` and one national index per process.  A fault profile (`sim.faults`)
breaks things on the way.  docs/sim.md has the whole picture.

The day ends with a reconciliation against the ground truth the simulation made
(`sim.truth.Truth`): every published ASU tally (station, commission, district,
region, nation) must equal the sum of the truths, every published turnout the
truths' voters, every message a station signed must be stored at the CEC exactly as
signed (each final report once), each final ASU report's deferred batch must be
exactly the sheets the truth put in a spare box (none where no box failed), each
station whose power failed in the middle of accepting a sheet must count exactly the
truth's sheets (the held one neither lost nor doubled), and the alerts must be the
profile's.  The exit code is non-zero otherwise.  Network timers
(the uplink's resend and backoff) are real seconds, scaled down with the speed but
never below what a link needs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import json
import logging
import multiprocessing as mp
import os
import queue
import random
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sim.faults import (
    BENIGN_ALERTS,
    Attacker,
    AttackLog,
    BoxOutage,
    DeviceSwap,
    FaultError,
    FaultPlan,
    MidSheetCut,
    Profile,
    Spell,
    load_profile,
    plan_faults,
)

log = logging.getLogger("shailoo.sim")

STEP_MINUTES = 10
HEARTBEAT_MINUTES = 60
SHARE_MARKS = (5, 10, 15, 30, 60, 120, 180, 240, 360)  # minutes after 20:00 in the table
KYRGYZSTAN_2021 = "Kyrgyzstan 2021: 84% of stations arrived between 20:00 and 21:00"
PROVISION_MARKER = "provision.json"
SETUP_IMAGES = "setup-images"  # next to the election: fast stations' storage after set-up
PROVISION_FORMAT = 1


class DayError(RuntimeError):
    """The simulation could not run (not: the results are wrong); the message says why."""


@dataclass(frozen=True)
class DayConfig:
    stations: int = 10
    voters_per_station: int = 200
    turnout: float | None = None  # share of the roll that votes; None: seeded per station
    speed: float = 720.0  # simulated seconds per real second
    evening_speed: float | None = None  # after 20:00 (default: speed)
    faults: str = "none"  # profile name (firmware_sim/faults) or path
    full: int = 1  # the first K stations on the full device path (sim.full_station)
    out: Path = Path("sim-day")
    election: Path | None = None  # where the election is provisioned (default OUT/election)
    seed: int = 2026
    db: str | None = None  # central database URL (default: SQLite under OUT/run)
    kind: str = "parliament"
    procs: int | None = None  # station worker processes (default: by N)
    central_workers: int = 2
    close_spread: float = 10.0  # minutes: each station closes at 20:00 + U(0, spread)
    deadline: float = 360.0  # simulated minutes after 20:00 to wait for delivery
    keep_station_data: bool = False
    # keep each fast station's storage right after set-up with the election and start
    # from it next time (sim.fast_station.FastStation.setup(image=...))
    setup_images: bool = False
    quiet: bool = False


# --- the compressed clock -----------------------------------------------------------------


@dataclass(frozen=True)
class SimClock:
    """Simulated time from wall time: `speed` until `evening`, `evening_speed` after."""

    wall0: float  # time.time() at sim0
    sim0: dt.datetime
    speed: float
    evening: dt.datetime
    evening_speed: float

    def sim(self, wall: float | None = None) -> dt.datetime:
        w = time.time() if wall is None else wall
        w_evening = self.wall(self.evening)
        if w <= w_evening:
            return self.sim0 + dt.timedelta(seconds=(w - self.wall0) * self.speed)
        return self.evening + dt.timedelta(seconds=(w - w_evening) * self.evening_speed)

    def wall(self, t: dt.datetime) -> float:
        if t <= self.evening:
            return self.wall0 + (t - self.sim0).total_seconds() / self.speed
        day = (self.evening - self.sim0).total_seconds() / self.speed
        return self.wall0 + day + (t - self.evening).total_seconds() / self.evening_speed


@dataclass(frozen=True)
class UplinkTiming:
    """The uplink's real-time timers for a compressed day (see the module docstring)."""

    resend_after: float
    backoff_initial: float
    backoff_max: float
    poll: float

    @classmethod
    def for_day(cls, speed: float, stations: int) -> UplinkTiming:
        return cls(
            # Production resends after 30 s; on a compressed clock sooner, but never so soon
            # that a busy CEC (thousands of stations on two cores) is answered with a storm
            # of duplicates: at 2,500 stations an 8 s timer made the broker queue grow
            # without bound (acks arrive later than 8 s when every process is loaded).
            resend_after=max(8.0, 30.0 * 60 / speed, stations / 50),
            backoff_initial=max(0.2, 1.0 / speed * 60),
            # Production backs off up to 120 s (with jitter); compressed to the clock, but the
            # handshakes are real: 2,500 stations retrying every 1.5 s were 1,700 TLS
            # handshakes a second, more than two cores do, so every attempt timed out and
            # the day stalled with nobody connected (a reconnect storm that never ends).
            backoff_max=max(1.5, 120.0 / speed, stations / 100),
            poll=min(2.0, max(0.02, stations / 1000)),
        )


# --- provisioning -------------------------------------------------------------------------


def election_date(today: dt.date | None = None) -> dt.date:
    """The next Sunday at least a day ahead (Kyrgyz elections are on Sundays)."""
    d = (today or dt.date.today()) + dt.timedelta(days=1)
    while d.weekday() != 6:
        d += dt.timedelta(days=1)
    return d


def provision(
    base: Path,
    *,
    stations: int,
    voters: int,
    seed: int,
    kind: str = "parliament",
    say: Callable[[str], None] = print,
) -> Path:
    """Provision an election under `base` with the real pipeline; returns the `provisioned`
    directory (bundles, national index, central kit, secrets).  Reused when `base` holds
    one made with the same parameters for an election still ahead."""
    from election.bundle import BrokerSettings
    from provisioning.bundle import build_bundles
    from provisioning.cli import default_faces_dir
    from provisioning.keyceremony import create_root
    from provisioning.roll import validate_roll
    from provisioning.sample import generate_sample

    params = {
        "format": PROVISION_FORMAT,
        "stations": stations,
        "voters": voters,
        "seed": seed,
        "kind": kind,
    }
    marker = base / PROVISION_MARKER
    if marker.exists():
        old = json.loads(marker.read_text())
        ahead = dt.date.fromisoformat(old.get("date", "1970-01-01")) > dt.date.today()
        if ahead and {k: old.get(k) for k in params} == params:
            say(f"   reusing the election provisioned in {base} ({old['seconds']:.0f} s to make)")
            return base / "provisioned"
    for part in ("sample", "roll", "cec", "provisioned", SETUP_IMAGES, PROVISION_MARKER):
        p = base / part
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    base.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    date = election_date()
    now = dt.datetime.now(dt.UTC)
    faces = default_faces_dir()
    if not faces.is_dir():
        raise DayError(f"face photos not found at {faces}; set SHAILOO_FACES")
    sample = generate_sample(
        base / "sample",
        stations=stations,
        voters_per_station=voters,
        seed=seed,
        kind=kind,  # type: ignore[arg-type]
        faces_dir=faces,
        election_date=date,
    )
    say(
        f"   sample election: {stations} stations x {voters} voters, {kind}, {date} "
        f"({time.perf_counter() - started:.0f} s)"
    )
    validate_roll(sample.roll_path, sample.definition, sample.photos_dir, base / "roll", workers=2)
    say(f"   roll validated, faces enrolled ({time.perf_counter() - started:.0f} s)")
    passphrase = secrets.token_urlsafe(18)
    (base / "cec").mkdir(parents=True, exist_ok=True)
    pass_file = base / "cec" / "SIM-ONLY-root-passphrase.txt"
    pass_file.write_text(passphrase + "\n")
    os.chmod(pass_file, 0o600)
    root = create_root(base / "cec", passphrase, now=now)
    build_bundles(
        sample.definition,
        base / "roll",
        root,
        base / "provisioned",
        broker=BrokerSettings(),
        now=now,
        workers=2,
    )
    seconds = time.perf_counter() - started
    say(f"   key ceremony and {stations} signed bundles ({seconds:.0f} s)")
    marker.write_text(json.dumps({**params, "date": date.isoformat(), "seconds": seconds}))
    return base / "provisioned"


def passphrases(prov: Path) -> dict[int, str]:
    lines = (prov / "secrets" / "device-passphrases.csv").read_text().splitlines()[1:]
    return {int(r.split(",")[0]): r.split(",")[2] for r in lines}


def load_definition(prov: Path) -> Any:
    from election import bundle as B
    from election.definition import ElectionDefinition

    return ElectionDefinition.from_json((prov / "central" / B.ELECTION_FILE).read_bytes())


# --- the central server, as its own process tree ------------------------------------------


class CentralProcess:
    """`shailoo central run` in its own session, so it can be killed with -9 as a whole."""

    def __init__(
        self,
        kit: Path,
        passphrase_file: Path,
        db_url: str,
        host: str,
        port: int,
        workers: int,
        log_path: Path,
    ) -> None:
        self.kit, self.passphrase_file, self.db_url = kit, passphrase_file, db_url
        self.host, self.port, self.workers = host, port, workers
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 90.0) -> None:
        from central.mosquitto import die_with_parent

        before = self._ready_lines()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shailoo",
                    "central",
                    "run",
                    "--kit",
                    str(self.kit),
                    "--passphrase-file",
                    str(self.passphrase_file),
                    "--db",
                    self.db_url,
                    "--broker",
                    f"{self.host}:{self.port}",
                    "--workers",
                    str(self.workers),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                preexec_fn=die_with_parent,  # never outlives the driver
            )
        self.starts += 1
        end = time.monotonic() + timeout
        while self._ready_lines() <= before:
            if self.proc.poll() is not None:
                raise DayError(f"the central server exited at start; see {self.log_path}")
            if time.monotonic() > end:
                raise DayError(f"the central server did not start in {timeout:.0f} s")
            time.sleep(0.05)

    def _ready_lines(self) -> int:
        """How many times `central run` has said it is up (its log is appended to)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return 0
        return sum(line.startswith("central: ") for line in lines)

    def kill9(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill9()


# --- station worker processes -------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSpec:
    index: int
    prov: Path
    data_root: Path
    numbers: tuple[int, ...]
    neighbours: dict[int, int]  # a station whose voters sometimes come here by mistake
    seed: int
    turnout: float | None
    host: str
    port: int
    close_at: dict[int, dt.datetime]
    spells: dict[int, tuple[Spell, ...]]
    latency: dict[int, float]
    modem_stations: frozenset[int]
    timing: UplinkTiming
    setup_at: dt.datetime
    full: frozenset[int] = frozenset()  # played through the real devices (sim.full_station)
    sample_dir: Path | None = None
    power_off: dict[int, int] = field(default_factory=dict)  # minutes without power at close
    box_failure: dict[int, BoxOutage] = field(default_factory=dict)  # fast stations only
    power_mid_sheet: dict[int, MidSheetCut] = field(default_factory=dict)  # fast stations only
    spares: dict[int, SpareDevice] = field(default_factory=dict)  # fast stations only
    images: Path | None = None  # set-up images of fast stations (DayConfig.setup_images)


@dataclass(frozen=True)
class SpareDevice:
    """A station's spare appliance (`provisioning.spare.make_spare`) and when it is needed."""

    swap: DeviceSwap
    station_id: str
    bundle: Path
    passphrase: str
    device_id: str
    cert: Path  # its signing certificate, for the CEC to authorise


def _yield_the_cpu() -> None:  # pragma: no cover - runs in a station worker
    """Give this process the CPU only when the CEC and the broker do not want it.

    A plain nice is not enough where the kernel groups processes by session (autogroup,
    the default on Debian): the CEC runs in its own session, so its group shared the CPU
    equally with the group holding the driver, Mosquitto and every station worker, and in a
    2,500-station run its ingest threads waited 84% of the time for a CPU (schedstat) while
    the stations' messages queued.  So each worker also takes a session of its own and
    gives that group the lowest weight; without autogroup, the nice alone does it."""
    os.nice(10)
    try:
        os.setsid()
        with open("/proc/self/autogroup", "w") as f:
            f.write("19")
    except OSError:
        pass


def _worker_main(spec: WorkerSpec, events: Any, commands: Any) -> None:  # pragma: no cover
    from central.mosquitto import die_with_parent

    die_with_parent()
    logging.basicConfig(level=logging.ERROR)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver stops us with a command
    if not spec.full:
        # The fast stations are the load; the CEC under test (and the full station, whose
        # devices answer on threads with timeouts) must not starve behind them.
        _yield_the_cpu()
        # ~140 uplink threads share this process with the one that plays the voters; at
        # CPython's 5 ms switch interval every waiting thread forces a GIL hand-over, and
        # at 2,500 stations most of the machine went to futex calls (73% system time,
        # measured with strace).  One station per appliance never has this problem; a
        # longer interval only delays this process's uplinks by a few tens of ms.
        sys.setswitchinterval(0.05)
    worker = _Worker(spec, events)
    try:
        worker.prepare()
        cmd = commands.get()
        if cmd[0] == "go":
            worker.run(cmd[1], commands)
    except BaseException:
        events.put(("error", spec.index, traceback.format_exc()))
    finally:
        try:
            worker.finish()
        except BaseException:
            events.put(("error", spec.index, traceback.format_exc()))


@dataclass
class _Station:
    number: int
    station_id: str
    fs: Any  # sim.fast_station.FastStation
    up: Any  # station.uplink.Uplink
    modem: Any | None  # firmware_sim.modem.Modem
    app: Any = None  # station.appliance.Appliance: the one running now (new after a reboot)
    host: str = ""
    port: int = 0
    closed: bool = False
    acked: bool = False
    powered: bool = True
    back_at: dt.datetime | None = None  # without power since a mid-sheet cut, until then


class _Worker:
    def __init__(self, spec: WorkerSpec, events: Any) -> None:
        self.spec = spec
        self.events = events
        self.clock: SimClock | None = None
        self.stations: list[_Station] = []
        self.by_number: dict[int, _Station] = {}
        self.max_lag = 0.0
        self._rng = random.Random(f"shailoo-sim/{spec.seed}/worker/{spec.index}")
        self._heap: list[tuple[dt.datetime, int, tuple[Any, ...]]] = []
        self._pushed = 0
        self._boot: dict[str, Any] = {}  # what an appliance needs to start again

    def _push(self, at: dt.datetime, action: tuple[Any, ...]) -> None:
        heapq.heappush(self._heap, (at, self._pushed, action))
        self._pushed += 1

    def now(self) -> dt.datetime:
        return self.clock.sim() if self.clock is not None else self.spec.setup_at

    def prepare(self) -> None:
        from crypto import certs
        from election import bundle as B
        from firmware_sim.modem import Modem
        from sim.fast_station import FastStation
        from sim.truth import Popularity, make_truth, read_roll, with_box_failure
        from station.appliance import Settings
        from station.bundle import VerifyCache
        from station.uplink import Backoff, Uplink

        s = self.spec
        definition = load_definition(s.prov)
        root = certs.cert_from_pem((s.prov / "central" / B.ROOT_CERT_FILE).read_bytes())
        secret = passphrases(s.prov)
        popularity = Popularity(definition, s.seed)
        cache = VerifyCache()
        index = None
        truths = []
        t = s.timing
        for number in s.numbers:
            bundle = s.prov / "bundles" / str(number)
            station = definition.station_by_number(number)
            roll = read_roll(bundle)
            other = s.neighbours.get(number)
            elsewhere = read_roll(s.prov / "bundles" / str(other))[:40] if other else ()
            truth = make_truth(
                definition,
                station.id,
                roll,
                seed=s.seed,
                turnout=s.turnout,
                elsewhere=elsewhere,
                popularity=popularity,
            )
            if number in s.box_failure:  # the sheets cast while the box was down: spare box
                outage = s.box_failure[number]
                truth = with_box_failure(truth, outage.fails, outage.back)
            common = (bundle, s.data_root / str(number), secret[number], root,
                      s.prov / "national-index", truth)  # fmt: skip
            options: dict[str, Any] = {
                "clock": self.now,
                "settings": Settings(heartbeat_every_minutes=HEARTBEAT_MINUTES),
                "cache": cache,
                "index": index,
            }
            fs: Any
            if number in s.full:
                from provisioning.cli import default_faces_dir
                from sim.full_station import FullStation

                assert s.sample_dir is not None
                fs = FullStation(
                    *common, sample_dir=s.sample_dir, faces_dir=default_faces_dir(), **options
                )
            else:
                fs = FastStation(*common, **options)
            if isinstance(fs, FastStation) and s.images is not None:
                app = fs.setup(s.setup_at, image=s.images / str(number))
            else:
                app = fs.setup(s.setup_at)
            index = app.index  # one national index in memory for the whole process
            # A station's WAL grows to SQLite's default checkpoint size (~4 MB) and stays
            # that big: nothing on one appliance, 10 GB of RAM for 2,500 on /dev/shm.
            app.store.query("PRAGMA wal_autocheckpoint = 100")
            app.store.query("PRAGMA journal_size_limit = 524288")
            host, port, modem = s.host, s.port, None
            if number in s.modem_stations:
                modem = Modem(s.host, s.port).start()
                host, port = "127.0.0.1", modem.port
                if s.latency.get(number):
                    modem.slow(s.latency[number])
            up = Uplink.from_bundle(
                app.store,
                app.bundle,
                secret[number],
                clock=fs.now,
                host=host,
                port=port,
                resend_after=t.resend_after,
                poll_interval=t.poll,
                backoff=Backoff(initial=t.backoff_initial, maximum=t.backoff_max),
            )
            st = _Station(number, station.id, fs, up, modem, app, host, port)
            self.stations.append(st)
            cut = s.power_mid_sheet.get(number)
            if cut is not None and number not in s.full:
                # the power fails in the middle of accepting a sheet; the uplink goes with it
                fs.arm_power_cut(cut.after, dropped=cut.dropped, on_cut=up.stop)
            self.by_number[number] = st
            truths.append(
                {
                    "number": number,
                    "station_id": station.id,
                    "registered": truth.registered,
                    "voted": truth.voted,
                    "visits": len(truth.visits),
                    "tallies": {cid: t.to_obj() for cid, t in truth.tallies().items()},
                    "sheets": truth.sheets(),
                    "returns": truth.returns(),
                    "deferred_sheets": truth.deferred_sheets(),
                    "deferred_tallies": {
                        cid: t.to_obj() for cid, t in truth.deferred_tallies().items()
                    },
                }
            )
        self._boot = {"root": root, "secret": secret, "cache": cache, "index": index}
        self.events.put(("truths", s.index, truths))
        for st in self.stations:
            st.up.start()
        self.events.put(("ready", s.index))

    def run(self, clock: SimClock, commands: Any) -> None:
        self.clock = clock
        definition = self.stations[0].fs.truth.definition if self.stations else None
        if definition is None:
            return
        tz = ZoneInfo(definition.timezone)
        opening = dt.datetime.combine(
            definition.date, dt.time.fromisoformat(definition.polls_open), tzinfo=tz
        )
        closing = dt.datetime.combine(
            definition.date, dt.time.fromisoformat(definition.polls_close), tzinfo=tz
        )
        heap = self._heap
        push = self._push
        push(opening, ("open",))
        t = opening + dt.timedelta(minutes=STEP_MINUTES)
        while t < closing:
            push(t, ("tick",))
            t += dt.timedelta(minutes=STEP_MINUTES)
        for st in self.stations:
            push(self.spec.close_at[st.number], ("close", st.number))
        for number, spells in self.spec.spells.items():
            if number not in self.by_number:
                continue
            for sp in spells:
                push(sp.cut, ("cut", number))
                if sp.restore is not None:
                    push(sp.restore, ("restore", number, sp.mid_packet))
        for number, spare in self.spec.spares.items():
            if number in self.by_number:
                push(spare.swap.fails, ("device_fails", number))
                push(spare.swap.runs, ("take_over", number))
        for number, outage in self.spec.box_failure.items():
            if number in self.by_number:
                push(outage.fails, ("box_fails", number))
                if outage.back is not None:  # else at the close, before the final reports
                    push(outage.back, ("box_back", number))
        driver = clock  # the driver's clock; `clock` is this worker's (see below)
        played = opening  # the simulated instant of the last step played
        last_check = 0.0
        last_position = 0.0
        hour_reported = opening.hour - 1
        while True:
            try:
                while True:
                    cmd = commands.get_nowait()
                    if cmd[0] == "stop":
                        return
                    self._modem(cmd)
            except queue.Empty:
                pass
            now = time.time()
            # a worker behind the clock plays what is due in slices, so that between them
            # it reads the driver's commands (a modem stolen) and says where it is
            slice_end = now + 0.2
            while heap and now < slice_end:
                due = max(heap[0][0], played)  # re-queued steps wait for the power, not time
                late = now - clock.wall(due)
                if late < 0:
                    break
                # the worker's clock never runs ahead of its stations: when the machine cannot
                # keep up, it waits for them, so what follows keeps its spacing (a modem back
                # two hours after the close comes two hours after this worker's close)
                clock = replace(clock, wall0=clock.wall0 + late)
                self.clock = clock
                at, _, action = heapq.heappop(heap)
                played = max(played, at)
                self._act(at, action)
                if action[0] != "power_back":  # may be due before a tick just played
                    self.max_lag = max(self.max_lag, time.time() - driver.wall(at))
                if at.hour != hour_reported and action[0] in ("tick", "open"):
                    hour_reported = at.hour
                    self.events.put(("progress", self.spec.index, at, self.max_lag))
                now = time.time()
            if now - last_position >= 0.5:
                # where this worker's stations are in the day: the driver times its faults
                # on the slowest worker, not on the clock the stations may run behind
                last_position = now
                at = clock.sim(now) if not heap else min(clock.sim(now), max(heap[0][0], played))
                self.events.put(("at", self.spec.index, at, self.max_lag))
            if all(st.closed for st in self.stations) and now - last_check >= 0.25:
                last_check = now
                for st in self.stations:
                    if st.powered and not st.acked and st.up.outbox.pending_count() == 0:
                        st.acked = True
                        self.events.put(("acked", st.number, time.time()))
            wait = 0.05 if not heap else min(0.05, max(0.0, clock.wall(heap[0][0]) - now))
            time.sleep(wait)

    # one station's steps that must happen (a tick is skipped while a station has no power)
    STATION_STEPS = ("close", "box_fails", "box_back")

    def _act(self, at: dt.datetime, action: tuple[Any, ...]) -> None:
        """`_do`, with the mid-sheet power cuts: a station without power does nothing (its
        steps wait until the power is back); a step in which the power fails (the station
        raises `PowerCut`) is done again then."""
        from sim.fast_station import PowerCut

        st = self.by_number.get(action[1]) if action[0] in self.STATION_STEPS else None
        if action[0] == "power_back":
            self._power_back(self.by_number[action[1]], at)
        elif st is not None and st.back_at is not None:
            self._push(max(at, st.back_at), action)
        else:
            try:
                self._do(at, action)
            except PowerCut as cut:
                if st is None:
                    raise
                self._cut_mid_sheet(st, cut)
                assert st.back_at is not None
                self._push(max(at, st.back_at), action)

    def _off(self, st: _Station) -> int:
        return self.spec.power_mid_sheet[st.number].off_minutes

    def _cut_mid_sheet(self, st: _Station, cut: Any) -> None:
        """The station's power failed in the middle of accepting a sheet (its uplink stopped
        and its database closed at that instant, by `FastStation.arm_power_cut`)."""
        st.powered = False
        st.back_at = cut.at + dt.timedelta(minutes=self._off(st))
        self._push(st.back_at, ("power_back", st.number))

    def _power_back(self, st: _Station, at: dt.datetime) -> None:
        """Power is back after a mid-sheet cut: the appliance boots from its database and
        resolves the held sheet (`FastStation.power_on`); the voters who waited are served;
        a new uplink sends the outbox."""
        st.fs.power_on(at)
        st.back_at = None
        st.app = st.fs.appliance
        st.app.store.query("PRAGMA wal_autocheckpoint = 100")
        st.app.store.query("PRAGMA journal_size_limit = 524288")
        st.powered = True
        self._start_uplink(st, clock=st.fs.now)
        self.events.put(("power_on", st.number, at, time.time()))

    def _do(self, at: dt.datetime, action: tuple[Any, ...]) -> None:
        from sim.fast_station import PowerCut

        what = action[0]
        if what == "open":
            for st in self.stations:
                st.fs.open_polls(at)
                st.up.notify()
        elif what == "tick":
            for st in self.stations:
                if not st.closed and st.back_at is None and st.powered:  # no power: no tick
                    try:
                        st.fs.tick(at)
                    except PowerCut as cut:  # the voters of the spell wait for the power
                        self._cut_mid_sheet(st, cut)
                        continue
                    st.up.notify()
        elif what == "close":
            st = self.by_number[action[1]]
            off = self.spec.power_off.get(st.number)
            if off is not None:
                st.up.stop()  # the power is failing: nothing more leaves the station
            if getattr(st.fs, "box_down", False):  # a spare ASU only now: the deferred batch
                st.fs.box_back(at)
            st.fs.close_polls(at)
            st.closed = True
            st.up.notify()
            self.events.put(("closed", st.number, at, time.time()))
            if off is not None:  # ... and goes, after the reports were signed, before sending
                st.app.close()
                st.powered = False
                self._push(at + dt.timedelta(minutes=off), ("power_on", st.number))
        elif what == "power_on":
            self._power_on(self.by_number[action[1]])
        elif what == "device_fails":
            self._device_fails(self.by_number[action[1]], at)
        elif what == "take_over":
            self._take_over(self.by_number[action[1]], at)
        elif what == "box_fails":
            self.by_number[action[1]].fs.box_fails(at)
        elif what == "box_back":
            self.by_number[action[1]].fs.box_back(at)
        else:
            self._modem(action)

    def _device_fails(self, st: _Station, at: dt.datetime) -> None:
        """The appliance dies mid-day: its uplink stops (what it had not sent stays in the
        outbox, in its storage) and its database is closed; no appliance, no voter served."""
        st.fs.device_fails(at, on_fail=st.up.stop)
        st.powered = False

    def _take_over(self, st: _Station, at: dt.datetime) -> None:
        """The failed appliance's storage moves into the spare device (its data directory,
        as Brazil moves the flash cards), which takes it over with its own bundle and key
        (`Appliance.take_over`, the chair's code) and signs from the next seq on; a new
        uplink with the spare's TLS identity sends the outbox, the failed device's last
        messages as they were signed.  The voters who waited are served."""
        spare = self.spec.spares[st.number]
        old = st.app.bundle.device_id
        moved = self.spec.data_root / f"{st.number}-in-{spare.device_id}"
        os.rename(st.fs.data_dir, moved)
        app = st.fs.take_over(at, spare.bundle, spare.passphrase, data_dir=moved)
        app.store.query("PRAGMA wal_autocheckpoint = 100")
        app.store.query("PRAGMA journal_size_limit = 524288")
        st.app = app
        st.powered = True
        self._boot["secret"][st.number] = spare.passphrase  # the station's device is the spare
        self._start_uplink(st, clock=st.fs.now)
        last_seq = app.signer.last("heartbeat").body["device_change"]["last_seq"]
        self.events.put(("takeover", st.number, at, old, spare.device_id, last_seq, time.time()))

    def _power_on(self, st: _Station, *, uplink: bool = True) -> None:
        """Power is back: the appliance starts from its database (the real boot path, which
        checks the bundle, the election and the device) and its uplink sends the outbox."""
        from station.appliance import Appliance, Settings

        s, b = self.spec, self._boot
        bundle = s.prov / "bundles" / str(st.number)

        def no_camera(frame: Any, template: Any) -> Any:
            raise RuntimeError("no voters after the close")

        app = Appliance.start(
            s.data_root / str(st.number),
            bundle,
            root_cert=b["root"],
            passphrase=b["secret"][st.number],
            matcher=no_camera,
            clock=self.now,
            index_dir=s.prov / "national-index",
            settings=Settings(heartbeat_every_minutes=HEARTBEAT_MINUTES),
            cache=b["cache"],
            index=b["index"],
        )
        app.store.query("PRAGMA wal_autocheckpoint = 100")
        app.store.query("PRAGMA journal_size_limit = 524288")
        st.app = app
        st.powered = True
        if not uplink:
            return
        self._start_uplink(st, clock=self.now)
        self.events.put(("power_on", st.number, self.now(), time.time()))

    def _start_uplink(self, st: _Station, *, clock: Callable[[], dt.datetime]) -> None:
        """A new uplink for the station's running appliance (after a reboot)."""
        from station.uplink import Backoff, Uplink

        t = self.spec.timing
        st.up = Uplink.from_bundle(
            st.app.store,
            st.app.bundle,
            self._boot["secret"][st.number],
            clock=clock,
            host=st.host,
            port=st.port,
            resend_after=t.resend_after,
            poll_interval=t.poll,
            backoff=Backoff(initial=t.backoff_initial, maximum=t.backoff_max),
        )
        st.up.start()

    def _modem(self, cmd: tuple[Any, ...]) -> None:
        st = self.by_number.get(cmd[1])
        if st is None or st.modem is None:
            return
        if cmd[0] == "cut":
            st.modem.cut()
        elif cmd[0] == "restore":
            if len(cmd) > 2 and cmd[2]:
                st.modem.drop_after(self._rng.randint(20, 900), "up")  # dies mid-packet
            st.modem.restore()

    def finish(self) -> None:
        stoppers = [threading.Thread(target=st.up.stop) for st in self.stations]
        for th in stoppers:
            th.start()
        for th in stoppers:
            th.join()
        for st in self.stations:
            if st.modem is not None:
                st.modem.stop()
        final = []
        for st in self.stations:
            if not st.powered:  # still off at the end: read what its disk holds
                self._power_on(st, uplink=False)
            msgs = st.app.signer.messages()
            final.append(
                {
                    "number": st.number,
                    "station_id": st.station_id,
                    "messages": [(m.seq, m.kind, m.hash) for m in msgs],
                    "pending": st.up.outbox.pending_count(),
                    "connects": st.up.status().connects,
                    "deviations": list(getattr(st.fs, "deviations", [])),
                    "busy": getattr(st.fs, "seconds", 0.0),
                    "power_cuts": [  # mid-sheet: (off, back, the sheet had fallen)
                        (off, back, fell) for off, back, fell in getattr(st.fs, "power_cuts", [])
                    ],
                }
            )
            if not getattr(st.fs, "powered", True) or st.app is not st.fs.appliance:
                st.app.close()
            st.fs.close()
        self.events.put(("final", self.spec.index, final, self.max_lag))


# --- the result ---------------------------------------------------------------------------


@dataclass
class StationOutcome:
    number: int
    station_id: str
    kind: str  # "fast" | "full"
    closed_at: dt.datetime | None = None  # simulated
    closed_wall: float | None = None  # when the station really signed its final reports
    delivered_at: dt.datetime | None = None  # simulated, from the CEC's receipt times
    delivered_wall: float | None = None
    acked_wall: float | None = None  # the station saw every message acknowledged
    link: str = ""  # the fault plan for its link, if any
    deviations: list[str] = field(default_factory=list)  # full path: devices vs the truth
    busy: float = 0.0  # full path: real seconds spent with the voters
    deferred_sheets: int | None = None  # the stored final ASU report's (spare box sheets)
    # power cuts in the middle of accepting a sheet: {"off", "back" (simulated, ISO), "fell"}
    power_cuts: list[dict[str, Any]] = field(default_factory=list)
    # a spare device took over: {"at" (simulated, ISO), "from_device", "to_device", "last_seq",
    # "wall" (real)}; and when the CEC authorised it (real)
    takeover: dict[str, Any] | None = None
    spare_authorised_wall: float | None = None


@dataclass
class DayResult:
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    profile: str = ""
    stations: list[StationOutcome] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    share_table: list[tuple[str, float, int, float]] = field(default_factory=list)
    seconds_to_delivered: float | None = None  # real seconds from 20:00 (simulated)
    seconds_to_published: float | None = None
    # real seconds from a station signing its final reports to both stored at the CEC
    close_to_stored: dict[str, float] = field(default_factory=dict)  # p50, p90, max
    published_version: int | None = None
    reconciled: dict[str, int] = field(default_factory=dict)  # level -> units equal to truth
    messages_signed: int = 0
    messages_stored: int = 0
    finals_once: int = 0
    max_lag: float = 0.0
    attack: AttackLog | None = None
    # the driver's faults as they fired: what, its time in the day, time.time() then
    faults_fired: list[tuple[str, str, float]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    run_dir: Path | None = None
    # `shailoo verify` of the record exported at the end: ok, what it checked, findings
    verifier: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_dir"] = str(self.run_dir) if self.run_dir else None
        for s in d["stations"]:
            for k in ("closed_at", "delivered_at"):
                s[k] = s[k].isoformat() if s[k] else None
        return d


# --- the driver ---------------------------------------------------------------------------


def _data_root(run_dir: Path) -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm / f"shailoo-sim-{uuid.uuid4().hex[:12]}"
    return run_dir / "stations"


# paho-mqtt's loop() uses select(), which cannot watch a file descriptor above 1023, and
# each station holds about 6 (its SQLite database, WAL and shared memory, its MQTT socket
# and paho's internal socket pair; a simulated modem 4 more): measured ~1,030 descriptors
# in a process of 179 stations, whose uplinks then failed.  So at most this many share one.
MAX_PER_PROC = 140


def default_procs(stations: int, modems: int = 0) -> int:
    """Station worker processes: 1 for a small day, else 2 (the machine's cores), more when
    the file-descriptor limit above asks for it."""
    wanted = 1 if stations <= 20 else 2
    return max(wanted, -(-(stations + modems) // MAX_PER_PROC))


def run_day(cfg: DayConfig) -> DayResult:
    """Run the day; see the module docstring.  Raises DayError if it cannot run at all."""
    say: Callable[[str], None] = (lambda s: None) if cfg.quiet else (lambda s: print(s, flush=True))
    if not 0 <= cfg.full <= cfg.stations:
        raise DayError("--full K: between 0 and the number of stations")
    if cfg.stations < 1 or cfg.voters_per_station < 1:
        raise DayError("--stations and --voters-per-station must be at least 1")
    if cfg.turnout is not None and not 0 <= cfg.turnout <= 1:
        raise DayError("--turnout is a share of the roll, 0..1")
    if cfg.speed <= 0 or (cfg.evening_speed is not None and cfg.evening_speed <= 0):
        raise DayError("--speed must be positive")
    try:
        profile = load_profile(cfg.faults)
    except FaultError as e:
        raise DayError(str(e)) from None
    out = cfg.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    result = DayResult(profile=profile.name)
    t_start = time.perf_counter()
    say(
        f"== Provisioning ({cfg.stations} stations x {cfg.voters_per_station} voters, "
        f"seed {cfg.seed})"
    )
    prov = provision(
        (cfg.election or out / "election").resolve(),
        stations=cfg.stations,
        voters=cfg.voters_per_station,
        seed=cfg.seed,
        kind=cfg.kind,
        say=say,
    )
    result.timings["provision"] = time.perf_counter() - t_start
    run_dir = out / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    result.run_dir = run_dir
    data_root = _data_root(run_dir)
    data_root.mkdir(parents=True)
    try:
        _run(cfg, profile, prov, run_dir, data_root, result, say)
    finally:
        if not cfg.keep_station_data:
            shutil.rmtree(data_root, ignore_errors=True)
    (run_dir / "report.json").write_text(json.dumps(result.to_json(), indent=1, default=str))
    return result


def _run(
    cfg: DayConfig,
    profile: Profile,
    prov: Path,
    run_dir: Path,
    data_root: Path,
    result: DayResult,
    say: Callable[[str], None],
) -> None:
    from central.db import open_database
    from central.mosquitto import start_for_kit

    definition = load_definition(prov)
    tz = ZoneInfo(definition.timezone)
    numbers = sorted(s.number for s in definition.stations)
    plan = plan_faults(
        profile,
        numbers,
        definition.date,
        definition.timezone,
        cfg.seed,
        exclude=numbers[: cfg.full],
        closing=definition.polls_close,
    )
    opening = dt.datetime.combine(
        definition.date, dt.time.fromisoformat(definition.polls_open), tzinfo=tz
    )
    closing = dt.datetime.combine(
        definition.date, dt.time.fromisoformat(definition.polls_close), tzinfo=tz
    )
    rng = random.Random(f"shailoo-sim/{cfg.seed}/close")
    close_at = {
        n: closing + dt.timedelta(seconds=round(rng.uniform(0, cfg.close_spread * 60)))
        for n in numbers
    }
    for n in numbers:
        result.stations.append(
            StationOutcome(
                n,
                definition.station_by_number(n).id,
                "full" if n in numbers[: cfg.full] else "fast",
                link=_link(plan, n),
            )
        )
    outcome = {s.number: s for s in result.stations}
    say(f"== Fault profile {profile.name!r}: {profile.description}")
    for line in plan.describe()[:40]:
        say(f"   {line}")
    if len(plan.describe()) > 40:
        say(f"   ... and {len(plan.describe()) - 40} more")

    broker = start_for_kit(prov / "central", run_dir / "broker")
    db_url = cfg.db or f"sqlite:///{run_dir / 'central.sqlite'}"
    central = CentralProcess(
        prov / "central",
        prov / "secrets" / "central-passphrase.txt",
        db_url,
        broker.host,
        broker.port,
        cfg.central_workers,
        run_dir / "central.log",
    )
    db = None
    procs: list[Any] = []
    commands: list[Any] = []
    threads: list[threading.Thread] = []
    events: Any = None
    try:
        db = open_database(db_url)
        from central import evidence, watch

        evidence.load_stations(db, definition)
        row = db.one("SELECT COUNT(*) AS n FROM messages")
        if row and int(row["n"]):
            raise DayError(
                f"the central database {db_url} already holds messages: use an empty one"
            )
        central.start()
        say(
            f"== CEC: Mosquitto on {broker.host}:{broker.port} (production config, mutual TLS); "
            f"central server with {cfg.central_workers} ingest workers, {db.kind}"
        )

        spares = _make_spares(prov, plan, run_dir / "spares", say)

        # station workers
        full = numbers[: cfg.full]
        fast = numbers[cfg.full :]
        modems = sum(1 for n in fast if n in plan.modem_stations)
        nfast = cfg.procs or default_procs(len(fast), modems)
        nfast = max(1, min(nfast, len(fast))) if fast else 0
        if fast and -(-(len(fast) + modems) // nfast) > MAX_PER_PROC:
            raise DayError(
                f"--procs {nfast}: more than {MAX_PER_PROC} stations per process would exceed "
                "what paho-mqtt's select() can watch; use more processes"
            )
        # modem stations spread evenly (each costs file descriptors twice)
        ordered = [n for n in fast if n in plan.modem_stations] + [
            n for n in fast if n not in plan.modem_stations
        ]
        slices = [tuple(sorted(ordered[i::nfast])) for i in range(nfast)]
        if full:  # the full path blocks for real seconds per voter: its own process
            slices.append(tuple(full))
        nprocs = len(slices)
        timing = UplinkTiming.for_day(cfg.speed, len(numbers))
        ctx = mp.get_context("spawn")
        events = ctx.Queue()
        neighbours = {n: numbers[(i + 1) % len(numbers)] for i, n in enumerate(numbers)}
        if len(numbers) == 1:
            neighbours = {}
        setup_at = opening - dt.timedelta(minutes=30)
        for i, mine in enumerate(slices):
            spec = WorkerSpec(
                index=i,
                prov=prov,
                data_root=data_root,
                numbers=mine,
                neighbours={n: neighbours[n] for n in mine if n in neighbours},
                seed=cfg.seed,
                turnout=cfg.turnout,
                host=broker.host,
                port=broker.port,
                close_at={n: close_at[n] for n in mine},
                spells={n: plan.spells[n] for n in mine if n in plan.spells},
                latency={n: plan.latency[n] for n in mine if n in plan.latency},
                modem_stations=frozenset(n for n in mine if n in plan.modem_stations),
                timing=timing,
                setup_at=setup_at,
                full=frozenset(n for n in mine if n in set(full)),
                sample_dir=prov.parent / "sample",
                power_off={n: plan.power_off[n] for n in mine if n in plan.power_off},
                box_failure={n: plan.box[n] for n in mine if n in plan.box},
                power_mid_sheet={
                    n: plan.power_mid_sheet[n] for n in mine if n in plan.power_mid_sheet
                },
                spares={n: spares[n] for n in mine if n in spares},
                images=prov.parent / SETUP_IMAGES if cfg.setup_images else None,
            )
            cq = ctx.Queue()
            p = ctx.Process(target=_worker_main, args=(spec, events, cq), name=f"stations-{i}")
            p.start()
            procs.append(p)
            commands.append(cq)
        owner = {n: i for i, mine in enumerate(slices) for n in mine}
        t0 = time.perf_counter()
        truths: dict[str, dict[str, Any]] = {}
        ready = 0
        while ready < nprocs:
            ev = _get(events, procs, 600)
            if ev[0] == "truths":
                for t in ev[2]:
                    truths[t["station_id"]] = t
            elif ev[0] == "ready":
                ready += 1
            elif ev[0] == "error":
                raise DayError(f"station worker {ev[1]} failed:\n{ev[2]}")
        result.timings["stations_setup"] = time.perf_counter() - t0
        say(
            f"== {len(numbers)} stations set up from their bundles in {nprocs} worker "
            f"process(es), station data on {data_root} ({result.timings['stations_setup']:.1f} s);"
            f" each has its own uplink (MQTT over TLS with its own certificate)"
        )
        say(
            f"   fast stations (real station code, recorded reader/camera outcomes, already-read "
            f"sheets): {_ranges(fast)}"
        )
        say(
            f"   full stations (combo reader on a pty, real photos and face match, ASU "
            f"simulator with rendered sheets read by the mark reader): {_ranges(full)}"
        )

        # the day
        sim0 = opening - dt.timedelta(minutes=5)
        evening_speed = cfg.evening_speed or cfg.speed
        clock = SimClock(time.time() + 0.5, sim0, cfg.speed, closing, evening_speed)
        for cq in commands:
            cq.put(("go", clock))
        day_real = (closing - sim0).total_seconds() / cfg.speed
        say(
            f"== The day at x{cfg.speed:g} (08:00-20:00 in {day_real:.0f} s real"
            + (f", x{evening_speed:g} after 20:00)" if evening_speed != cfg.speed else ")")
        )
        deadline_wall = max(
            clock.wall(closing + dt.timedelta(minutes=cfg.deadline)), clock.wall(closing) + 120
        )
        final: dict[int, Any] = {}
        lags: dict[int, float] = {}
        attack_box: dict[str, Any] = {}
        pending_events = list(plan.events)
        positions: dict[int, dt.datetime] = {}  # each worker's place in the day
        last_watch = 0.0
        last_hour = sim0  # the last hour of the stations' day reported
        all_closed_wall: float | None = None
        central_all_wall: float | None = None
        acked = 0
        while True:
            wait = 0.05 if pending_events else 0.1
            batch = []
            with contextlib.suppress(queue.Empty):
                batch.append(events.get(timeout=wait))
                while len(batch) < 1000:
                    batch.append(events.get_nowait())
            for ev in batch:
                kind = ev[0]
                if kind == "closed":
                    outcome[ev[1]].closed_at = ev[2]
                    outcome[ev[1]].closed_wall = ev[3]
                elif kind == "acked":
                    outcome[ev[1]].acked_wall = ev[2]
                    acked += 1
                elif kind == "takeover":
                    _, n, at, old, new, last_seq, wall = ev
                    outcome[n].takeover = {"at": at.isoformat(), "from_device": old,
                                           "to_device": new, "last_seq": last_seq,
                                           "wall": wall}  # fmt: skip
                    say(
                        f"   {at:%H:%M}  station {n}: its storage moved into spare device {new}, "
                        f"which took over from {old} after seq {last_seq}"
                    )
                elif kind == "at":
                    positions[ev[1]] = ev[2]
                    lags[ev[1]] = ev[3]
                elif kind == "progress":
                    lags[ev[1]] = ev[3]
                elif kind == "error":
                    raise DayError(f"station worker {ev[1]} failed:\n{ev[2]}")
            _check_alive(procs)
            # faults happen in the stations' day: at the slowest worker's place in it (the
            # same as the clock when the machine keeps up; hours behind it when it cannot)
            now = min(positions.values()) if len(positions) == nprocs else sim0
            hour = now.replace(minute=0, second=0, microsecond=0)
            if hour > last_hour and now <= closing:
                last_hour = hour
                stored = db.one("SELECT COUNT(*) AS n FROM messages")
                say(
                    f"   {hour:%H:%M}  real +{time.time() - clock.wall0:6.1f} s  "
                    f"messages stored at the CEC: {stored['n'] if stored else 0}  "
                    f"(station workers behind the clock by at most "
                    f"{max(lags.values(), default=0.0):.1f} s)"
                )
            while pending_events and pending_events[0].at <= now:
                e = pending_events.pop(0)
                if (
                    e.what == "modem_back"
                    and attack_box.get("thread") is not None
                    and (attack_box["thread"].is_alive())
                ):
                    pending_events.insert(0, e)  # the attacker still holds the stolen identity
                    break
                if e.what == "authorise":
                    assert e.station is not None
                    if not _authorise_spare(db, prov, e.station, spares[e.station], say):
                        pending_events.insert(0, e)  # not before its refusal shows
                        break
                    outcome[e.station].spare_authorised_wall = time.time()
                    continue
                result.faults_fired.append((e.what, e.at.isoformat(), time.time()))
                th = _fault(
                    e.what,
                    e.at,  # fired when the slowest station worker got there
                    plan,
                    broker,
                    central,
                    commands,
                    owner,
                    prov,
                    db_url,
                    attack_box,
                    say,
                )
                if th is not None:
                    threads.append(th)
            if now >= closing + dt.timedelta(hours=2) and time.time() - last_watch >= 1.0:
                last_watch = time.time()
                watch.check_not_delivered(db, definition, now)  # the server room's watch
            closed = sum(s.closed_at is not None for s in result.stations)
            if closed == len(numbers) and all_closed_wall is None:
                all_closed_wall = time.time()
                say(f"   {now:%H:%M}  every station has closed and signed its final reports")
            if acked == len(numbers) and central_all_wall is None:
                row = db.one("SELECT COUNT(*) AS n FROM stations WHERE state = 'delivered'")
                if row and int(row["n"]) == len(numbers):
                    central_all_wall = time.time()
                    say(f"   {now:%H:%M}  every station's final reports are acknowledged")
            if (
                central_all_wall is not None
                and not pending_events
                and not any(t.is_alive() for t in threads)
            ):
                break
            # the deadline is in simulated time: stations running behind the clock (the
            # machine could not keep up) get it as late as they are behind
            if time.time() > deadline_wall + max(lags.values(), default=0.0):
                result.problems.append(
                    f"deadline: {len(numbers) - acked} station(s) still had unacknowledged "
                    f"messages {cfg.deadline:.0f} simulated minutes after 20:00"
                )
                break
        pub_version, pub_wall = _wait_published(db, len(numbers), timeout=120)
        if pub_version is None:
            result.problems.append("no published version showed every station delivered")
        else:
            result.published_version = pub_version
            result.seconds_to_published = pub_wall - clock.wall(closing)
        for t in threads:
            t.join(120)
        result.attack = attack_box.get("log")
        if attack_box.get("error"):
            result.problems.append(f"the attacker failed: {attack_box['error']}")
        # stop the stations, collect what each signed
        for cq in commands:
            cq.put(("stop",))
        reported: set[int] = set()
        while len(reported) < nprocs:
            ev = _get(events, procs, 300)
            if ev[0] == "final":
                for f in ev[2]:
                    final[f["number"]] = f
                lags[ev[1]] = ev[3]
                reported.add(ev[1])
            elif ev[0] == "acked":
                outcome[ev[1]].acked_wall = ev[2]
            elif ev[0] == "error":
                result.problems.append(f"station worker {ev[1]} failed:\n{ev[2]}")
                if not any(p.is_alive() for p in procs):
                    break
        for p in procs:
            p.join(60)
        result.max_lag = max(lags.values(), default=0.0)
        _analyse(db, definition, clock, closing, truths, final, profile, plan, result)
        check_spares(db, plan, result)
        _verify_record(db, prov, run_dir, result)
        _print(result, cfg, clock, closing, say)
    finally:
        for cq in commands:
            with contextlib.suppress(Exception):
                cq.put(("stop",))
                cq.cancel_join_thread()  # never block our exit on a dead worker's queue
        end = time.monotonic() + 60
        while any(p.is_alive() for p in procs) and time.monotonic() < end:
            # read what they still send, or a worker blocks at exit flushing its queue
            with contextlib.suppress(Exception):
                while events is not None:
                    events.get(timeout=0.1)
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(5)
        central.stop()
        broker.stop()
        if db is not None:
            db.close()


def _verify_record(db: Any, prov: Path, run_dir: Path, result: DayResult) -> None:
    """Export the election record as the CEC would and check it with the independent
    verifier, its trust pinned to the key ceremony's root: what an observer would do."""
    from central.kit import load_kit
    from central.record import export_record
    from verifier.cli import verify_directory

    t0 = time.perf_counter()
    secret = (prov / "secrets" / "central-passphrase.txt").read_text().strip()
    kit = load_kit(prov / "central", secret)
    out = run_dir / "record"
    export_record(db, kit, out)
    result.timings["export_record"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = verify_directory(out, str(out), root=kit.root_cert, strict=False)
    result.timings["verify_record"] = time.perf_counter() - t0
    errors = [f"{f.subject}: {f.message}" for f in report.errors]
    identical = report.comparison is not None and report.comparison.identical
    result.verifier = {
        "ok": report.ok,
        "identical": identical,
        "messages": sum(len(m) for m in report.checked.messages.values()),
        "errors": errors[:20],
        "warnings": len(report.warnings),
        "record": str(out),
    }
    if not report.ok:
        shown = "; ".join(errors[:5]) or "the rebuilt results differ from the published ones"
        result.problems.append(f"shailoo verify of the exported record failed: {shown}")


def _make_spares(
    prov: Path, plan: FaultPlan, out: Path, say: Callable[[str], None]
) -> dict[int, SpareDevice]:
    """A spare device for each station the plan replaces: new keys and certificates under
    the CEC root (`provisioning.spare.make_spare`, as `shailoo provision spare` does), its
    bundle made from the station's own."""
    if not plan.spares:
        return {}
    from provisioning.keyceremony import load_root
    from provisioning.spare import make_spare

    cec = prov.parent / "cec"
    root = load_root(cec, (cec / "SIM-ONLY-root-passphrase.txt").read_text().strip())
    now = dt.datetime.now(dt.UTC)
    out.mkdir(parents=True, exist_ok=True)
    made: dict[int, SpareDevice] = {}
    for n, swap in sorted(plan.spares.items()):
        spare = make_spare(
            prov, root, n, now=now, out_dir=out, secrets_file=out / "spare-passphrases.csv"
        )
        made[n] = SpareDevice(swap, spare.station_id, spare.bundle_dir, spare.passphrase,
                              spare.device_id, spare.cert_path)  # fmt: skip
    say(f"   spare devices issued under the CEC root for stations {_ranges(sorted(made))}")
    return made


_KITS: dict[Path, Any] = {}


def _authorise_spare(
    db: Any, prov: Path, number: int, spare: SpareDevice, say: Callable[[str], None]
) -> bool:
    """The CEC authorises the spare's certificate (`central.devices.authorise_device`, as
    `shailoo central authorise-device` does) against the running server's database; the
    ingest workers look it up when its messages come.  A spare that runs before it is
    authorised is authorised only once the server room shows its refusal (`unknown_device`):
    False until then."""
    from central.devices import authorise_device
    from central.kit import load_kit

    if spare.swap.early and not db.one(
        "SELECT id FROM alerts WHERE kind = 'unknown_device' AND station_id = ?",
        (spare.station_id,),
    ):
        return False
    kit = _KITS.get(prov)
    if kit is None:
        passphrase = (prov / "secrets" / "central-passphrase.txt").read_text().strip()
        kit = _KITS[prov] = load_kit(prov / "central", passphrase)
    authorise_device(db, kit, spare.cert.read_bytes(), by="CEC engineer (sim)",
                     at=dt.datetime.now(dt.UTC))  # fmt: skip
    say(f"   {spare.swap.authorised:%H:%M}  the CEC authorises station {number}'s spare device "
        f"{spare.device_id}")  # fmt: skip
    return True


def check_spares(db: Any, plan: FaultPlan, result: DayResult) -> None:
    """Each replaced station: every stored message up to the takeover signed by the build's
    device, every one after it by the spare, the first of them the heartbeat that says so;
    `unknown_device` raised only for spares that ran before the CEC authorised them (as it
    happened: the plan's times are simulated, the two are separate processes), naming
    them, and resolved (their messages were resent and accepted)."""
    if not plan.spares:
        return
    problems = result.problems
    outcome = {s.number: s for s in result.stations}
    early: dict[str, str] = {}
    for n in sorted(plan.spares):
        o = outcome[n]
        if o.takeover is None:
            problems.append(f"station {n}: its spare device never took over")
            continue
        t = o.takeover
        if o.spare_authorised_wall is None or t["wall"] < o.spare_authorised_wall:
            early[o.station_id] = t["to_device"]
        rows = db.query(
            "SELECT seq, kind, device_id, raw FROM messages WHERE station_id = ? ORDER BY seq",
            (o.station_id,),
        )
        before = [r for r in rows if r["seq"] <= t["last_seq"]]
        after = [r for r in rows if r["seq"] > t["last_seq"]]
        if {r["device_id"] for r in before} != {t["from_device"]}:
            problems.append(f"station {n}: messages before the takeover not all by its device")
        if not after or {r["device_id"] for r in after} != {t["to_device"]}:
            problems.append(f"station {n}: messages after the takeover not all by the spare")
        elif after[0]["kind"] != "heartbeat" or json.loads(bytes(after[0]["raw"]))["body"].get(
            "device_change"
        ) != {"from_device": t["from_device"], "last_seq": t["last_seq"]}:
            problems.append(f"station {n}: the spare's first message does not say it took over")
    victim = outcome[plan.victim].station_id if plan.victim is not None else None
    for a in result.alerts:
        if a["kind"] != "unknown_device" or a["station_id"] == victim:  # the attacker's: apart
            continue
        device = early.get(a["station_id"])
        if device is None or repr(device) not in a["detail"]:
            problems.append(
                f"unknown_device names {a['station_id']}, not a spare that ran before it was "
                f"authorised: {a['detail'][:120]}"
            )
        elif a["resolved_at"] is None:
            problems.append(f"unknown_device ({a['station_id']}) still open at the end")


def _check_alive(procs: Sequence[Any]) -> None:
    for p in procs:
        if p.exitcode is not None:
            why = f"killed by signal {-p.exitcode}" if p.exitcode < 0 else f"exit {p.exitcode}"
            hint = " (out of memory? see free -m, /dev/shm)" if p.exitcode == -9 else ""
            raise DayError(f"station worker {p.name} died during the day: {why}{hint}")


def _get(events: Any, procs: Sequence[Any], timeout: float) -> Any:
    end = time.monotonic() + timeout
    while True:
        try:
            return events.get(timeout=0.5)
        except queue.Empty:
            if time.monotonic() > end:
                raise DayError(f"no word from the station workers in {timeout:.0f} s") from None
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise DayError(f"station worker {dead[0].name} died ({dead[0].exitcode})") from None


def _link(plan: FaultPlan, number: int) -> str:
    parts = []
    for s in plan.spells.get(number, ()):
        end = f"{s.restore:%H:%M}" if s.restore else "?"
        parts.append(f"down {s.cut:%H:%M}-{end}")
    if number == plan.victim:
        parts.append("modem stolen (attacker)")
    if number in plan.latency:
        parts.append(f"slow link {plan.latency[number]} s")
    if number in plan.power_off:
        parts.append(f"power cut after signing, {plan.power_off[number]} min")
    if number in plan.spares:
        swap = plan.spares[number]
        parts.append(
            f"appliance fails {swap.fails:%H:%M}, spare runs {swap.runs:%H:%M}, "
            f"authorised {swap.authorised:%H:%M}"
        )
    if number in plan.power_mid_sheet:
        c = plan.power_mid_sheet[number]
        fell = "fallen into the box" if c.dropped else "still in the scanner"
        parts.append(f"power cut mid-sheet from {c.after:%H:%M} ({fell}), {c.off_minutes} min")
    if number in plan.box:
        o = plan.box[number]
        back = f"{o.back:%H:%M}" if o.back else "at the close"
        parts.append(f"ASU failed {o.fails:%H:%M}, spare ASU {back} (deferred batch)")
    return "; ".join(parts)


def _fault(
    what: str,
    at: dt.datetime,
    plan: FaultPlan,
    broker: Any,
    central: CentralProcess,
    commands: list[Any],
    owner: dict[int, int],
    prov: Path,
    db_url: str,
    attack_box: dict[str, Any],
    say: Callable[[str], None],
) -> threading.Thread | None:
    """Apply one driver-side fault; the attacker works on its own thread (returned)."""
    profile = plan.profile

    def broker_restart() -> None:
        assert profile.broker is not None
        how = "killed (-9)" if profile.broker.signal == "kill" else "stopped"
        say(f"   {at:%H:%M}  FAULT: Mosquitto {how}, back in {profile.broker.down_seconds:g} s")
        if profile.broker.signal == "kill":
            broker.kill()
        else:
            broker.stop()
        time.sleep(profile.broker.down_seconds)
        broker.start()

    def central_kill() -> None:
        assert profile.central is not None
        say(
            f"   {at:%H:%M}  FAULT: the central server killed with -9 (main process and ingest "
            f"workers), started again in {profile.central.down_seconds:g} s"
        )
        central.kill9()
        time.sleep(profile.central.down_seconds)
        central.start()

    def stolen() -> None:
        assert plan.victim is not None
        say(f"   {at:%H:%M}  FAULT: station {plan.victim}'s modem is stolen (its link is down)")
        commands[owner[plan.victim]].put(("cut", plan.victim))

    def modem_back() -> None:
        assert plan.victim is not None
        say(f"   {at:%H:%M}  station {plan.victim} gets a spare modem (link up)")
        commands[owner[plan.victim]].put(("restore", plan.victim))

    def attack() -> None:
        from central.db import open_database

        assert plan.victim is not None and plan.accomplice is not None
        a = profile.attacker
        assert a is not None

        def public() -> list[dict[str, Any]]:
            with open_database(db_url) as pdb:
                rows = pdb.query("SELECT station_id, seq, kind, raw FROM messages")
            return [{**r, "raw": bytes(r["raw"])} for r in rows]

        say(
            f"   {at:%H:%M}  FAULT: an attacker with station {plan.victim}'s stolen modem (its TLS "
            f"identity) and station {plan.accomplice}'s signing key attacks on the broker network"
        )
        try:
            attacker = Attacker(
                prov, plan.victim, plan.accomplice, broker.host, broker.port, public, flood=a.flood
            )
            attack_box["log"] = attacker.run()
            say(
                f"   attacker done: {len(attack_box['log'].sent)} payloads in "
                f"{attack_box['log'].seconds:.1f} s"
            )
        except Exception as e:  # reported as a problem of the run
            attack_box["error"] = f"{type(e).__name__}: {e}"
            log.exception("attacker")

    if what != "attacker":
        # On this (the main) thread: Mosquitto and the central server die with the thread
        # that started them (PR_SET_PDEATHSIG), so a helper thread must not start them.
        {
            "broker": broker_restart,
            "central": central_kill,
            "stolen": stolen,
            "modem_back": modem_back,
        }[what]()
        return None
    th = threading.Thread(target=attack, name="attacker", daemon=True)
    th.start()
    attack_box["thread"] = th
    return th


def _wait_published(db: Any, stations: int, timeout: float) -> tuple[int | None, float]:
    """The first version whose document says every station delivered, and when it was seen."""
    end = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < end:
        row = db.one("SELECT version FROM published ORDER BY version DESC LIMIT 1")
        if row is not None and int(row["version"]) != seen:
            seen = int(row["version"])
            doc = db.one("SELECT published_at, document FROM published WHERE version = ?", (seen,))
            if doc is not None and json.loads(doc["document"])["stations"]["delivered"] == stations:
                at = dt.datetime.fromisoformat(doc["published_at"]).timestamp()
                return seen, at
        time.sleep(0.2)
    return None, 0.0


# --- the reconciliation -------------------------------------------------------------------


def _analyse(
    db: Any,
    definition: Any,
    clock: SimClock,
    closing: dt.datetime,
    truths: dict[str, dict[str, Any]],
    final: dict[int, Any],
    profile: Profile,
    plan: FaultPlan,
    result: DayResult,
) -> None:
    from central.results import latest_published

    problems = result.problems
    outcome = {s.number: s for s in result.stations}
    # 1. every signed message stored exactly as signed; each final report once
    stored = {
        (r["station_id"], int(r["seq"])): r["hash"]
        for r in db.query("SELECT station_id, seq, hash FROM messages")
    }
    signed: dict[tuple[str, int], str] = {}
    for f in final.values():
        for seq, _kind, h in f["messages"]:
            signed[(f["station_id"], seq)] = h
        o = outcome.get(f["number"])
        if o is not None:
            o.deviations, o.busy = list(f.get("deviations", [])), float(f.get("busy", 0.0))
            o.power_cuts = [
                {"off": off.isoformat(), "back": back.isoformat() if back else None, "fell": fell}
                for off, back, fell in f.get("power_cuts", [])
            ]
        if f["pending"]:
            problems.append(f"station {f['number']}: {f['pending']} message(s) never acknowledged")
    result.messages_signed, result.messages_stored = len(signed), len(stored)
    missing = sorted(k for k in signed if k not in stored)
    extra = sorted(k for k in stored if k not in signed)
    differ = sorted(k for k in signed if k in stored and stored[k] != signed[k])
    if missing:
        problems.append(
            f"{len(missing)} signed message(s) not stored at the CEC, e.g. {missing[:3]}"
        )
    if extra:
        problems.append(f"{len(extra)} stored message(s) no station signed, e.g. {extra[:3]}")
    if differ:
        problems.append(
            f"{len(differ)} stored message(s) differ from what was signed: {differ[:3]}"
        )
    if len(final) != len(definition.stations):
        problems.append(f"only {len(final)} of {len(definition.stations)} stations reported back")
    finals: dict[str, dict[str, int]] = {}
    received: dict[str, list[str]] = {}
    final_asu: dict[str, dict[str, Any]] = {}  # station -> its stored final ASU report's body
    for r in db.query(
        "SELECT station_id, kind, received_at, raw FROM messages "
        "WHERE kind IN ('asu_report', 'identification_report')"
    ):
        body = json.loads(bytes(r["raw"]))["body"]
        if body.get("phase") == "final":
            f = finals.setdefault(r["station_id"], {})
            f[r["kind"]] = f.get(r["kind"], 0) + 1
            received.setdefault(r["station_id"], []).append(r["received_at"])
            if r["kind"] == "asu_report":
                final_asu[r["station_id"]] = body
    once = 0
    for s in definition.stations:
        got = finals.get(s.id, {})
        if got.get("asu_report") == 1 and got.get("identification_report") == 1:
            once += 1
        else:
            problems.append(f"station {s.number}: final reports stored {got or 'never'}")
        if s.id in received and len(received[s.id]) == 2:
            wall = max(dt.datetime.fromisoformat(x).timestamp() for x in received[s.id])
            o = outcome[s.number]
            o.delivered_wall = wall
            o.delivered_at = clock.sim(wall)
            if result.max_lag > 5 and o.closed_at is not None and o.closed_wall is not None:
                # on the station's own clock: it closed long after the driver's 20:00 (the
                # machine could not keep up); the network and the CEC took the real seconds
                # since, which the evening clock turns into simulated minutes
                o.delivered_at = o.closed_at + dt.timedelta(
                    seconds=max(0.0, wall - o.closed_wall) * clock.evening_speed
                )
    result.finals_once = once
    # the spare ordinary box's sheets (a box failure) reported apart: exactly the truth's
    check_deferred(final_asu, truths, problems)
    # a sheet held when the power failed: counted once or given back once, never lost or doubled
    cuts = {f["station_id"]: f.get("power_cuts", []) for f in final.values()}
    check_power_cuts(final_asu, truths, cuts, problems)
    for s in result.stations:
        if s.station_id in final_asu:
            s.deferred_sheets = int(final_asu[s.station_id].get("deferred_sheets", 0))
    lat = sorted(
        s.delivered_wall - s.closed_wall
        for s in result.stations
        if s.delivered_wall is not None and s.closed_wall is not None
    )
    if lat:
        result.close_to_stored = {
            "p50": lat[len(lat) // 2],
            "p90": lat[min(len(lat) - 1, int(len(lat) * 0.9))],
            "max": lat[-1],
        }
    walls = [s.delivered_wall for s in result.stations]
    if walls and all(w is not None for w in walls):
        result.seconds_to_delivered = max(w for w in walls if w is not None) - clock.wall(closing)
    conflicts = db.one("SELECT COUNT(*) AS n FROM conflicting_messages")
    if conflicts and int(conflicts["n"]):
        problems.append(f"{conflicts['n']} conflicting message(s) kept (equivocation/broken chain)")

    # 2. the share delivered over time after 20:00
    n = len(definition.stations)
    delivered = sorted(s.delivered_at for s in result.stations if s.delivered_at)
    last = delivered[-1] if delivered else closing
    marks = [m for m in SHARE_MARKS if closing + dt.timedelta(minutes=m) <= last]
    marks += [m for m in SHARE_MARKS if m not in marks][:1]
    for m in marks:
        t = closing + dt.timedelta(minutes=m)
        k = sum(1 for d in delivered if d <= t)
        result.share_table.append((f"{t:%H:%M}", 100.0 * k / n, k, m * 60 / clock.evening_speed))

    # 3. alerts
    rows = db.query(
        "SELECT kind, severity, station_id, detail, repeats, raised_at, "
        "last_raised_at, resolved_at FROM alerts ORDER BY id"
    )
    result.alerts = [dict(r) for r in rows]
    kinds = {a["kind"] for a in result.alerts}
    for want in profile.expect_alerts:
        if want not in kinds:
            problems.append(f"expected alert {want!r} was not raised")
    for a in result.alerts:
        k = a["kind"]
        if k not in profile.expect_alerts and k not in BENIGN_ALERTS:
            problems.append(f"unexpected alert {k} ({a['station_id']}): {a['detail'][:160]}")
        elif k in ("gap", "not_delivered") and a["resolved_at"] is None:
            problems.append(f"alert {k} ({a['station_id']}) still open at the end")
    if plan.victim is not None:
        victim_id = definition.station_by_number(plan.victim).id
        for a in result.alerts:
            if (
                a["kind"]
                in ("forged", "malformed", "oversized", "wrong_election", "unknown_device")
                and a["station_id"] != victim_id
            ):
                problems.append(f"alert {a['kind']} names {a['station_id']}, not the victim")
        if result.attack is not None and result.attack.tls_forged_root_refused is False:
            problems.append("the broker accepted a TLS login under the attacker's own root")

    # 4. the published results against the truth
    pub = latest_published(db)
    if pub is None:
        problems.append("nothing was published")
        return
    doc = pub.document
    result.published_version = result.published_version or pub.version
    result.reconciled = reconcile(doc, definition, truths, problems)


def reconcile(
    doc: dict[str, Any],
    definition: Any,
    truths: dict[str, dict[str, Any]],
    problems: list[str],
) -> dict[str, int]:
    """Compare every published ASU tally and turnout with the sums of the truths; append a
    line to `problems` per difference; return per level how many units were equal."""
    areas: dict[str, list[tuple[str, str]]] = {}
    for s in definition.stations:
        commission = definition.commission(s.commission_id)
        district = definition.district(commission.district_id)
        areas[s.id] = [
            ("station", s.id),
            ("commission", commission.id),
            ("district", district.id),
            ("region", district.region_id),
            ("nation", "nation"),
        ]
    equal: dict[str, int] = {}

    def ok(level: str) -> None:
        equal[level] = equal.get(level, 0) + 1

    for contest in doc["contests"]:
        cid = contest["id"]
        want: dict[tuple[str, str], dict[str, Any]] = {}
        for sid, t in truths.items():
            tally = t["tallies"].get(cid)
            if tally is None:
                continue
            for area in areas[sid]:
                _add(want.setdefault(area, _zero()), tally)
        for level, units in contest["units"].items():
            for unit in units:
                got = unit.get("asu")
                exp = want.get((level, unit["id"]))
                where = f"contest {cid} {level} {unit['id']}"
                if exp is None:
                    if got is not None and got.get("ballots"):
                        problems.append(f"{where}: published {got['ballots']} ballots, truth none")
                    continue
                if got is None:
                    problems.append(f"{where}: nothing published, truth {exp['ballots']} ballots")
                    continue
                diff = _diff(got, exp)
                if diff:
                    problems.append(f"{where}: {diff}")
                else:
                    ok(f"tally {level}")
    voted: dict[tuple[str, str], int] = {}
    for sid, t in truths.items():
        for area in areas[sid]:
            voted[area] = voted.get(area, 0) + int(t["voted"])
    for level, units in doc["turnout"].items():
        if level == "hours":
            continue
        for unit in units:
            exp_voted = voted.get((level, unit["id"]), 0)
            if unit.get("voted") != exp_voted:
                problems.append(
                    f"turnout {level} {unit['id']}: published {unit.get('voted')}, "
                    f"truth {exp_voted}"
                )
            else:
                ok(f"turnout {level}")
    return equal


def check_deferred(
    final_asu: dict[str, dict[str, Any]],
    truths: dict[str, dict[str, Any]],
    problems: list[str],
) -> int:
    """Each stored final ASU report (station id -> body) reports apart exactly the sheets
    of the station's spare ordinary box (`deferred_sheets`, `deferred_tallies`): the truth's
    after a box failure, none elsewhere.  The overall `tallies` hold both batches and are
    checked against the truth by `reconcile`.  Appends a line to `problems` per difference;
    returns how many stations' deferred batches were equal to their truth."""
    equal = 0
    for sid, body in sorted(final_asu.items()):
        truth = truths.get(sid)
        if truth is None:
            continue  # a station no worker made a truth for: already a problem
        name = f"station {truth.get('number', sid)}"
        want_sheets = int(truth.get("deferred_sheets", 0))
        want = truth.get("deferred_tallies", {})
        got = {t["contest_id"]: t for t in body.get("deferred_tallies", [])}
        wrong = []
        if body.get("deferred_sheets") != want_sheets:
            wrong.append(f"deferred_sheets {body.get('deferred_sheets')} != truth {want_sheets}")
        for cid in sorted(set(got) | set(want)):
            g, e = _counts(got.get(cid)), _counts(want.get(cid))
            if g != e:
                keys = [k for k in e if g[k] != e[k]]
                wrong.append(f"deferred_tallies of {cid} differ in {', '.join(keys)}")
        if wrong:
            problems.append(f"{name}: {'; '.join(wrong)}")
        else:
            equal += 1
    return equal


def check_power_cuts(
    final_asu: dict[str, dict[str, Any]],
    truths: dict[str, dict[str, Any]],
    cuts: Mapping[str, Sequence[tuple[dt.datetime, dt.datetime | None, bool]]],
    problems: list[str],
) -> int:
    """Each station whose power failed in the middle of accepting a sheet (station id ->
    [(off, back, the sheet had fallen)]) came back, and its stored final ASU report (station
    id -> body) counts exactly the truth's sheets (the held sheet neither lost nor counted
    twice) and gives back what the truth gives back plus, per cut before the sheet fell, the
    one sheet the box gave back at boot ("drop not confirmed").  Appends a line to
    `problems` per difference; returns how many such stations were equal to their truth."""
    from station.asu import REASON_DROP_NOT_CONFIRMED

    equal = 0
    for sid, station_cuts in sorted(cuts.items()):
        truth, body = truths.get(sid), final_asu.get(sid)
        if not station_cuts or truth is None or body is None:
            continue  # no cut, or no truth / final report: already a problem
        name = f"station {truth.get('number', sid)}"
        what = ", ".join(
            f"{off:%H:%M:%S} (the sheet {'had fallen' if fell else 'in the scanner'})"
            for off, _back, fell in station_cuts
        )
        wrong = [f"no power since {off:%H:%M:%S}" for off, b, _ in station_cuts if b is None]
        if body.get("sheets") != truth["sheets"]:
            verb = "lost" if int(body.get("sheets", 0)) < truth["sheets"] else "counted twice"
            wrong.append(
                f"its final ASU report counts {body.get('sheets')} sheets, the truth "
                f"{truth['sheets']}: a held sheet {verb}"
            )
        back: dict[str, int] = dict(truth["returns"])
        if again := sum(not fell for _off, _back, fell in station_cuts):
            back[REASON_DROP_NOT_CONFIRMED] = back.get(REASON_DROP_NOT_CONFIRMED, 0) + again
        if body.get("returned") != dict(sorted(back.items())):
            wrong.append(f"sheets given back {body.get('returned')}, expected {back}")
        if wrong:
            problems.append(f"{name}, power cut mid-sheet at {what}: {'; '.join(wrong)}")
        else:
            equal += 1
    return equal


def _counts(t: dict[str, Any] | None) -> dict[str, Any]:
    """A contest tally's counts, zeros left out (a report lists every option, even at 0)."""
    t = t or {}
    out: dict[str, Any] = {"ballots": t.get("ballots", 0), "invalid": t.get("invalid", 0)}
    for key in ("votes", "preferences", "invalid_by_reason"):
        out[key] = {k: v for k, v in (t.get(key) or {}).items() if v}
    return out


def _zero() -> dict[str, Any]:
    return {
        "ballots": 0,
        "invalid": 0,
        "invalid_by_reason": {},
        "votes": {},
        "preferences": {},
        "stations": 0,
    }


def _add(acc: dict[str, Any], t: dict[str, Any]) -> None:
    acc["ballots"] += t["ballots"]
    acc["invalid"] += t["invalid"]
    acc["stations"] += 1
    for key in ("invalid_by_reason", "votes", "preferences"):
        for k, v in t[key].items():
            acc[key][k] = acc[key].get(k, 0) + v


def _diff(got: dict[str, Any], exp: dict[str, Any]) -> str:
    out = []
    for key in ("ballots", "invalid", "stations"):
        if got.get(key) != exp[key]:
            out.append(f"{key} {got.get(key)} != truth {exp[key]}")
    for key in ("votes", "preferences", "invalid_by_reason"):
        g = {k: v for k, v in (got.get(key) or {}).items() if v}
        e = {k: v for k, v in exp[key].items() if v}
        if g != e:
            wrong = sorted(k for k in set(g) | set(e) if g.get(k) != e.get(k))
            out.append(f"{key} differ at {wrong[:4]}")
    return "; ".join(out)


# --- the printout -------------------------------------------------------------------------


def _print(
    r: DayResult, cfg: DayConfig, clock: SimClock, closing: dt.datetime, say: Callable[[str], None]
) -> None:
    say(
        "\n== Stations (fast: real station code, recorded device outcomes; full: real reader, "
        "camera, face match, ballot box and mark reader)"
    )
    rows = sorted(r.stations, key=lambda s: s.number)
    shown = (
        rows
        if len(rows) <= 60
        else rows[:20]
        + sorted(rows, key=lambda s: s.delivered_at or closing + dt.timedelta(days=1))[-20:]
    )
    say(f"   {'station':>8} {'kind':5} {'closed':>8} {'delivered':>9}  link")
    for s in shown:
        closed = f"{s.closed_at:%H:%M:%S}" if s.closed_at else "-"
        deliv = f"{s.delivered_at:%H:%M:%S}" if s.delivered_at else "NOT"
        say(f"   {s.number:>8} {s.kind:5} {closed:>8} {deliv:>9}  {s.link}")
    for s in rows:
        if s.kind == "full":
            say(
                f"   full station {s.number}: {s.busy:.0f} s (real) with its voters; where the "
                f"real devices differed from the truth's recorded outcomes: "
                + ("; ".join(s.deviations[:8]) if s.deviations else "nowhere")
            )
    if len(rows) > len(shown):
        say(
            f"   ... ({len(rows)} stations; the first 20 and the last 20 delivered shown; "
            f"all in {r.run_dir}/report.json)"
        )
    say("\n== Delivered after 20:00 (final ASU and identification reports stored at the CEC)")
    say(f"   {'by':>6} {'share':>7} {'stations':>9} {'real s after 20:00':>19}")
    for t, pct, k, real in r.share_table:
        say(f"   {t:>6} {pct:6.1f}% {k:>9} {real:19.1f}")
    say(
        f"   (compare {KYRGYZSTAN_2021}; here the network and the CEC work in real time while "
        f"the day runs x{clock.evening_speed:g}: one real second is "
        f"{clock.evening_speed / 60:.1f} simulated minutes)"
    )
    if r.max_lag > 5:
        say(
            "   (the stations ran behind the clock, so each is timed on its own: its close plus "
            "the real seconds from its close until both reports were stored)"
        )
    if r.seconds_to_delivered is not None:
        say(f"   100% delivered {r.seconds_to_delivered:.1f} s (real) after 20:00 (simulated)")
    if r.seconds_to_published is not None:
        say(
            f"   published with every station delivered (version {r.published_version}) "
            f"{r.seconds_to_published:.1f} s after 20:00"
        )
    closes = [s.closed_wall for s in r.stations if s.closed_wall is not None]
    if r.max_lag > 5 and closes and r.seconds_to_delivered is not None:
        after = max(closes) - clock.wall(closing)
        say(
            f"   the stations ran late: the last one closed {after:.1f} s (real) after 20:00; "
            f"from that moment 100% delivered in {r.seconds_to_delivered - after:.1f} s"
            + (
                f", published in {r.seconds_to_published - after:.1f} s"
                if r.seconds_to_published is not None
                else ""
            )
        )
    if r.close_to_stored:
        c = r.close_to_stored
        say(
            f"   from a station signing its final reports to both stored at the CEC (real): "
            f"median {c['p50']:.2f} s, p90 {c['p90']:.2f} s, max {c['max']:.2f} s"
        )
    say(
        f"   station workers were at most {r.max_lag:.1f} s (real) behind the clock"
        + (" (the machine could not keep up at this speed)" if r.max_lag > 5 else "")
    )
    if r.attack is not None:
        say("\n== The attacker sent")
        for line in r.attack.summary():
            say(f"   {line}")
    say(f"\n== Alerts raised at the CEC ({len(r.alerts)})")
    transient = [a for a in r.alerts if a["kind"] == "gap" and a["resolved_at"]]
    if transient:
        spans = [_seconds(a["raised_at"], a["resolved_at"]) for a in transient]
        say(
            f"   {'gap':15} {'medium':8} {len({a['station_id'] for a in transient})} stations "
            f"x{len(transient)}: a hole in a station's messages that lasted over a minute "
            f"(the watch's grace); each resolved within {max(spans):.2f} s real"
        )
    by_id = {s.station_id: s for s in r.stations}
    for a in r.alerts:
        if a in transient:
            continue
        st = by_id.get(a["station_id"])
        state = (
            f"resolved {alert_time(a['resolved_at'], clock, st)}" if a["resolved_at"] else "OPEN"
        )
        say(
            f"   {a['kind']:15} {a['severity']:8} {a['station_id'] or '-':10} x{a['repeats']:<5} "
            f"raised {alert_time(a['raised_at'], clock, st)}, {state}: {a['detail'][:110]}"
        )
    say("\n== Reconciliation against the ground truth")
    say(
        f"   messages signed by the stations: {r.messages_signed}; stored at the CEC: "
        f"{r.messages_stored}; stations whose two final reports are stored exactly once: "
        f"{r.finals_once} of {len(r.stations)}"
    )
    levels = ", ".join(f"{k} {v}" for k, v in sorted(r.reconciled.items()))
    say(f"   published units equal to the sum of the truths: {levels}")
    spare = [s for s in rows if s.deferred_sheets or "ASU failed" in s.link]
    if spare:
        say(
            f"   deferred batches at {len(spare)} station(s) (the spare box's sheets, reported "
            "apart in the final ASU report; checked against the truth): "
            + _first(
                [f"station {s.number}: {s.deferred_sheets} sheet(s)" for s in spare], r.run_dir
            )
        )
    cut = [s for s in rows if s.power_cuts or "power cut mid-sheet" in s.link]
    if cut:

        def what(c: dict[str, Any]) -> str:
            off, back = dt.datetime.fromisoformat(c["off"]), c["back"]
            upto = f"{dt.datetime.fromisoformat(back):%H:%M:%S}" if back else "the end"
            held = (
                "had fallen: counted at boot"
                if c["fell"]
                else "in the scanner: given back at boot, fed again"
            )
            return f"{off:%H:%M:%S}-{upto} (the sheet {held})"

        cuts = [c for s in cut for c in s.power_cuts]
        fell = sum(bool(c["fell"]) for c in cuts)
        say(
            f"   power cuts in the middle of accepting a sheet at {len(cut)} station(s): "
            f"{fell} after the sheet had fallen, {len(cuts) - fell} with it in the scanner, "
            f"{sum(not s.power_cuts for s in cut)} planned but no sheet came after (each final "
            "ASU report checked: the truth's sheets, the held one neither lost nor doubled): "
            + _first(
                [
                    f"station {s.number}: "
                    + (
                        ", ".join(what(c) for c in s.power_cuts)
                        or "did not happen (no sheet after)"
                    )
                    for s in cut
                ],
                r.run_dir,
            )
        )
    v = r.verifier
    if v:
        say(
            f"   shailoo verify of the exported record ({v['record']}, root pinned to the key "
            f"ceremony's): {'VERIFIED' if v['ok'] else 'FAILED'}, {v['messages']:,} signed "
            f"messages, rebuilt results byte-identical to the published: "
            f"{'yes' if v['identical'] else 'NO'}, {v['warnings']} warning(s) "
            f"(export {r.timings.get('export_record', 0):.1f} s, "
            f"verify {r.timings.get('verify_record', 0):.1f} s)"
        )
    if r.problems:
        say(f"   PROBLEMS ({len(r.problems)}):")
        for p in r.problems[:40]:
            say(f"   - {p}")
    r.ok = not r.problems
    say("   published results equal the truth: " + ("YES" if r.ok else "NO"))


def _first(items: list[str], run_dir: Path | None, n: int = 10) -> str:
    """The first `n` of a list for the printout; all of them are in the run's report.json."""
    more = f"; ... {len(items) - n} more in {run_dir}/report.json" if len(items) > n else ""
    return "; ".join(items[:n]) + more


def alert_time(stamp: str | None, clock: SimClock, station: StationOutcome | None = None) -> str:
    """An alert time as simulated local time (the CEC stamps real time; the watch sim time).
    After a station's close, on that station's own clock: it closed late if it ran late."""
    if not stamp:
        return "-"
    t = dt.datetime.fromisoformat(stamp)
    if abs((t - clock.sim0).total_seconds()) > 2 * 86400:  # a real-time stamp
        w = t.timestamp()
        s = station
        if s is not None and s.closed_at and s.closed_wall is not None and w >= s.closed_wall:
            t = s.closed_at + dt.timedelta(seconds=(w - s.closed_wall) * clock.evening_speed)
        else:
            t = clock.sim(w)
    return f"{t.astimezone(clock.sim0.tzinfo):%H:%M}"


def _seconds(a: str, b: str) -> float:
    return (dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a)).total_seconds()


def _ranges(numbers: Sequence[int]) -> str:
    if not numbers:
        return "none"
    if len(numbers) <= 12:
        return ", ".join(map(str, numbers))
    return (
        f"{', '.join(map(str, numbers[:6]))} ... {', '.join(map(str, numbers[-3:]))} "
        f"({len(numbers)})"
    )


__all__ = [
    "DayConfig",
    "DayError",
    "DayResult",
    "SimClock",
    "check_deferred",
    "check_power_cuts",
    "check_spares",
    "provision",
    "reconcile",
    "run_day",
]
