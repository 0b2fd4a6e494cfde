"""Election-night load: a few hundred stations, 200 clients at once on the home page and the
national JSON.  Each page is rendered once per version, then served from memory.

Prints the figures (pytest -s); the assertions are loose bounds so a slow CI machine passes
while a page rendered per request (or a blocked event loop) would not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from central.db import open_database
from central.evidence import accept_batch, load_stations
from central.results import publish
from central.site.app import STATE, Settings, make_site
from election.definition import ElectionDefinition
from provisioning.sample import build_definition
from tests.central.fake_stations import FakeStation, items
from tests.central.site.support import clock, run

Client = TestClient[Any, Any]
STATIONS = 300
CLIENTS = 200


def _election(path: Path) -> tuple[str, ElectionDefinition]:
    d = build_definition(stations=STATIONS, voters_per_station=1000, seed=11)
    url = f"sqlite:///{path}"
    with open_database(url) as db:
        load_stations(db, d)
        batch = []
        for i, s in enumerate(d.stations):
            f = FakeStation(d, s.id)
            rng = random.Random(i)
            v = rng.randint(300, 700)
            hours = {"08": v // 3, "12": v // 3, "17": v - 2 * (v // 3)}
            batch += items(
                f.at(7, 55).zero_report(),
                f.at(10).turnout(v // 3),
                f.at(20).ident_report("final", hours),
                f.at(20, 5).final_report(f.tallies(rng, v)),
            )
        accept_batch(db, d, batch)
        assert publish(db, d, at=dt.datetime(2026, 11, 29, 15, tzinfo=dt.UTC)).new
    return url, d


async def _burst(client: Client, path: str) -> tuple[float, list[int]]:
    """CLIENTS requests at once on their own connections; seconds for all and their statuses."""
    url = str(client.make_url(path))
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> int:
            async with session.get(url, headers={"Accept-Encoding": "gzip"}) as r:
                await r.read()
                return r.status

        t = time.perf_counter()
        statuses = await asyncio.gather(*(one() for _ in range(CLIENTS)))
        return time.perf_counter() - t, list(statuses)


def test_home_and_national_json_under_two_hundred_clients(tmp_path: Path) -> None:
    url, d = _election(tmp_path / "big.sqlite")
    app = make_site(url, d, kit_dir=None, clock=clock, settings=Settings(poll_seconds=60))
    figures: dict[str, float] = {}

    async def scenario(client: Client) -> None:
        before = app[STATE].cache.renders
        burst = await asyncio.gather(*(client.get("/en/") for _ in range(50)))
        assert {r.status for r in burst} == {200}
        assert app[STATE].cache.renders == before + 1  # fifty readers, one render
        t = time.perf_counter()
        cold_home = await client.get("/ru/")
        body = await cold_home.read()
        figures["home first render s"] = time.perf_counter() - t
        t = time.perf_counter()
        cold_json = await client.get("/api/v1/nation.json")
        await cold_json.read()
        figures["nation.json first build s"] = time.perf_counter() - t
        assert cold_home.status == cold_json.status == 200
        t = time.perf_counter()
        r = await client.get("/ru/")
        await r.read()
        figures["home cached s"] = time.perf_counter() - t
        t = time.perf_counter()
        r = await client.get(f"/ru/station/{d.stations[0].id}")
        await r.read()
        figures["station page first render s"] = time.perf_counter() - t
        renders = app[STATE].cache.renders
        for path in ("/ru/", "/api/v1/nation.json"):
            seconds, statuses = await _burst(client, path)
            assert statuses == [200] * CLIENTS
            figures[f"{CLIENTS} clients {path} s"] = seconds
        assert app[STATE].cache.renders == renders  # every one of them from memory
        figures["home KiB"] = len(body) / 1024

    run(app, scenario)
    print()
    for k, v in figures.items():
        print(f"  {k}: {v:.3f}")
    assert figures["home first render s"] < 10
    assert figures[f"{CLIENTS} clients /ru/ s"] < 10
    assert figures[f"{CLIENTS} clients /api/v1/nation.json s"] < 10
