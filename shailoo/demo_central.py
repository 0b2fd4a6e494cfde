"""The demo's CEC side: Mosquitto and the central server, and the other stations' day.

The broker runs the production configuration with the certificates `provision
build` made; the central server runs its ingest workers as separate
processes on a shared subscription. Besides the scripted station (demo_station),
every other station of the sample election runs a whole day as a "fast"
station (sim.fast_station: the real station code, with recorded reader and
camera outcomes and already-read ballot sheets) and sends its signed reports
through its own uplink, so the results are aggregated from real signed
messages and can be compared with the ground truth the simulation made.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from central.mosquitto import Broker, start_for_kit
from central.results import latest_published
from central.server import CentralServer, ServerSettings
from crypto import certs
from election.bundle import ROOT_CERT_FILE
from election.definition import ElectionDefinition
from election.tally import ContestTally
from sim.fast_station import FastStation
from sim.truth import Popularity, make_truth, read_roll
from station.appliance import Settings
from station.bundle import VerifyCache
from station.runtime import StationRuntime
from station.uplink import Uplink


@dataclass
class CentralDemo:
    broker: Broker
    server: CentralServer
    db_url: str

    def stop(self) -> None:
        self.server.stop()
        self.broker.stop()


def start_central(out: Path, *, workers: int = 2) -> CentralDemo:
    prov = out / "provisioned"
    broker = start_for_kit(prov / "central", out / "cec" / "broker")
    db_url = f"sqlite:///{out / 'cec' / 'central.sqlite'}"
    passphrase = (prov / "secrets" / "central-passphrase.txt").read_text().strip()
    settings = ServerSettings(
        prov / "central", passphrase, db_url, broker.host, broker.port, workers=workers
    )
    server = CentralServer(settings)
    server.start()
    return CentralDemo(broker, server, db_url)


def run_fast_stations(
    out: Path, central: CentralDemo, skip: set[int], *, seed: int = 2026
) -> dict[str, dict[str, ContestTally]]:
    """Every station not in `skip` runs its day; returns each one's true tallies."""
    definition = central.server.kit.definition
    popularity = Popularity(definition, seed)
    cache = VerifyCache()
    tz = ZoneInfo(definition.timezone)
    day = dt.datetime.combine(definition.date, dt.time(7, 30), tzinfo=tz)
    truths: dict[str, dict[str, ContestTally]] = {}
    uplinks: list[Uplink] = []
    stations: list[FastStation] = []
    try:
        _day(out, central, skip, seed, day, cache, popularity, truths, uplinks, stations)
    finally:
        for up in uplinks:
            up.stop()
        for fs in stations:
            fs.close()
    return truths


def _day(
    out: Path,
    central: CentralDemo,
    skip: set[int],
    seed: int,
    day: dt.datetime,
    cache: VerifyCache,
    popularity: Popularity,
    truths: dict[str, dict[str, ContestTally]],
    uplinks: list[Uplink],
    stations: list[FastStation],
) -> None:
    prov = out / "provisioned"
    definition = central.server.kit.definition
    passphrases = _passphrases(prov)
    root = certs.cert_from_pem((prov / "central" / ROOT_CERT_FILE).read_bytes())
    index = None
    for number in sorted(passphrases):
        if number in skip:
            continue
        bundle = prov / "bundles" / str(number)
        station = next(s for s in definition.stations if s.number == number)
        truth = make_truth(definition, station.id, read_roll(bundle), seed=seed,
                           popularity=popularity)  # fmt: skip
        fs = FastStation(bundle, out / "stations" / str(number), passphrases[number], root,
                         prov / "national-index", truth, clock=lambda: day,
                         settings=Settings(heartbeat_every_minutes=60), cache=cache,
                         index=index)  # fmt: skip
        app = fs.setup(day)
        index = app.index  # one national index in memory for every station of this process
        up = Uplink.from_bundle(app.store, app.bundle, passphrases[number], clock=fs.now,
                                host=central.broker.host, port=central.broker.port)  # fmt: skip
        up.start()
        uplinks.append(up)
        stations.append(fs)
        truths[station.id] = truth.tallies()
    for fs in stations:
        fs.open_polls(day.replace(hour=8, minute=0))
    for hour in range(9, 21):
        at = day.replace(hour=hour, minute=0)
        for fs, up in zip(stations, uplinks, strict=True):
            fs.voters_until(at)
            if hour == 20:
                fs.close_polls(at)
            else:
                fs.tick(at)
            up.notify()
    started = time.perf_counter()
    _wait(lambda: all(u.status().pending == 0 for u in uplinks), "every station delivered", 120)
    print(
        f"   {len(stations)} more stations ran their day (fast stations: the real station code, "
        f"recorded reader/camera outcomes, already-read sheets) and delivered every signed "
        f"message; the last ack came {time.perf_counter() - started:.1f} s after the last close"
    )


def print_results(central: CentralDemo, definition: ElectionDefinition) -> dict[str, Any]:
    central.server.publish_now()
    pub = latest_published(central.server.db)
    if pub is None:
        raise RuntimeError("nothing published: see the alerts in the server room")
    doc: dict[str, Any] = pub.document
    st = doc["stations"]
    nation_turnout = doc["turnout"]["nation"][0] if isinstance(doc["turnout"].get("nation"),
                                                               list) else None  # fmt: skip
    print(
        f"   published results version {pub.version} (as of {doc['as_of']}): "
        f"{st['delivered']} of {st['of']} stations delivered their final reports"
    )
    if nation_turnout:
        print(f"   turnout: {nation_turnout['voted']} of {nation_turnout['registered']} "
              f"({nation_turnout.get('percent', '?')}%)")  # fmt: skip
    names = {o.id: o.name.ru for c in definition.contests for o in c.options}
    for contest in doc["contests"]:
        if contest["district_id"] is not None:
            continue
        nation = contest["units"]["nation"][0]["asu"]
        if not nation:
            continue
        pct = nation["shares"]["percent"]
        top = sorted(pct.items(), key=lambda kv: -float(kv[1]))[:5]
        shown = ", ".join(f"{names.get(k, k)} {v}%" for k, v in top)
        print(f"   {contest['id']} (preliminary, ASU; base: {nation['shares']['base_name']}): "
              f"{shown}")  # fmt: skip
        outcome = contest["outcome"].get("asu") or {}
        if outcome.get("seats"):
            seats = ", ".join(f"{names.get(k, k)} {n}" for k, n in outcome["seats"].items() if n)
            print(f"      seats: {seats}")
        if outcome.get("winners"):
            print(f"      winner: {', '.join(names.get(w, w) for w in outcome['winners'])}")
    return doc


def compare_with_truth(
    doc: dict[str, Any], truths: dict[str, dict[str, ContestTally]]
) -> tuple[int, int]:
    """(station contests equal to the truth, station contests compared)."""
    same = total = 0
    for contest in doc["contests"]:
        for unit in contest["units"].get("station", []):
            want = truths.get(unit["id"], {}).get(contest["id"])
            if want is None or unit.get("asu") is None:
                continue
            total += 1
            got = unit["asu"]
            same += got["votes"] == want.votes and got["invalid"] == want.invalid
    return same, total


def _passphrases(prov: Path) -> dict[int, str]:
    lines = (prov / "secrets" / "device-passphrases.csv").read_text().splitlines()[1:]
    return {int(r.split(",")[0]): r.split(",")[2] for r in lines}


def _wait(pred: Callable[[], bool], what: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise RuntimeError(f"{what}: not reached in {timeout:.0f} s")
        time.sleep(0.05)


async def serve_all(central: CentralDemo, runtime: StationRuntime, port: int) -> None:
    """The public site, the server room and the station's screen, until Ctrl-C or SIGTERM."""
    import asyncio
    import signal

    from aiohttp import web

    from central.cli import public_site
    from central.serverroom.app import make_app as server_room
    from station.ui.app import make_app as station_screen

    server = central.server
    apps = [
        ("public results site", public_site(server), port),
        ("server room (staff; `shailoo central account add` makes an account)",
         server_room(server.settings.db_url, server.kit.definition, clock=server.clock),
         port + 1),
        (f"station {runtime.appliance.station.number}'s operator screen",
         station_screen(runtime), port + 2),
    ]  # fmt: skip
    runners = []
    for what, app, p in apps:
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", p).start()
        runners.append(runner)
        print(f"   {what}: http://127.0.0.1:{p}/", flush=True)
    print("Running with the finished election day on it (Ctrl-C to stop).", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for runner in runners:
            await runner.cleanup()
