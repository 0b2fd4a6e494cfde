"""Live updates, on SQLite and PostgreSQL: a new publish reaches the pages and the event stream."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from central.db import open_database
from central.evidence import accept_batch
from central.results import publish
from tests.central.fake_stations import items
from tests.central.site.support import OPEN_ONLY, Election, build, parse, run, site
from tests.support.provisioned import Provisioned

Client = TestClient[Any, Any]


async def _next_event(stream: ClientResponse, timeout: float = 10.0) -> dict[str, str]:
    """The next `event:` block of a server-sent event stream (comments skipped)."""
    fields: dict[str, str] = {}
    async with asyncio.timeout(timeout):
        while True:
            line = (await stream.content.readline()).decode("utf-8").rstrip("\n")
            if not line:
                if "event" in fields:
                    return fields
                fields = {}
                continue
            if line.startswith(":"):
                fields["comment"] = line
                continue
            key, _, value = line.partition(": ")
            fields[key] = value


def _close_the_last_station(e: Election) -> None:
    """Station 7001 closes and reports; the publisher publishes the next version."""
    fs = e.stations[OPEN_ONLY]
    envs = [
        fs.at(20).ident_report("final", {"09": 6, "16": 9}),
        fs.at(20, 3).final_report(fs.tallies(random.Random(7), 15)),
    ]
    with open_database(e.db_url) as db:
        assert [d.status for d in accept_batch(db, e.definition, items(*envs))] == ["accepted"] * 2
        done = publish(db, e.definition, at=dt.datetime(2026, 11, 29, 14, 30, tzinfo=dt.UTC))
        assert done.new and done.version == 2, done.problems


def test_a_new_publish_reaches_the_event_stream_and_the_pages(
    provisioned: Provisioned, db_url: str
) -> None:
    e = build(provisioned, db_url, manual=False)
    sid = e.station_id(OPEN_ONLY)

    async def scenario(client: Client) -> None:
        stream = await client.get("/api/v1/events")
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert stream.headers["Cache-Control"] == "no-cache"
        first = await _next_event(stream)
        assert (first["event"], first["id"]) == ("version", "1")
        assert json.loads(first["data"])["stations"]["delivered"] == 3
        keepalive = await _next_event_or_comment(stream)
        assert keepalive == ": keepalive"

        home = await client.get("/en/")
        before = home.headers["ETag"]
        assert parse(await home.text()).testids["stations-reported"] == "3 of 4"
        station = await (await client.get(f"/en/station/{sid}")).text()
        assert 'id="asu-reports"' in station and "message 3" not in station

        await asyncio.to_thread(_close_the_last_station, e)
        event = await _next_event(stream)
        data = json.loads(event["data"])
        assert (event["id"], data["version"]) == ("2", 2)
        assert data["stations"] == {"of": 4, "delivered": 4, "turnout_reported": 4}

        home = await client.get("/en/", headers={"If-None-Match": before})
        text = await home.text()
        assert home.status == 200 and home.headers["ETag"] != before
        assert 'data-version="2"' in text
        assert parse(text).testids["stations-reported"] == "4 of 4"
        station = await (await client.get(f"/en/station/{sid}")).text()
        assert "message 3" in station and "message 2" in station
        status = await (await client.get("/api/v1/status.json")).json()
        assert status["version"] == 2
        stream.close()

    run(site(e, sse_keepalive_seconds=0.2), scenario)


async def _next_event_or_comment(stream: ClientResponse) -> str:
    async with asyncio.timeout(5):
        while True:
            line = (await stream.content.readline()).decode("utf-8").strip()
            if line.startswith(":"):
                return line
