"""A small published election for the public site's tests, with real signed station messages.

The session's `provisioned` election (4 stations, a party list and one single-member
district each) gives every station's real device key and certificate; FakeStation
(tests/central/fake_stations.py) writes the bodies exactly as a station does and signs
them with that key, so the site's "check a report" verifies them against the CEC root.
The messages go through central.evidence.accept_batch and central.results.publish, as
the ingest and the publisher put them in the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from central.accounts import create_account
from central.db import Database, open_database
from central.evidence import accept_batch, load_stations
from central.manual import ContestCount, Scan, save_protocol
from central.results import publish
from central.site.app import Settings, make_site
from crypto.envelope import Envelope
from election import bundle as B
from election.tally import ContestTally
from tests.central.fake_stations import FakeStation, items
from tests.support.provisioned import Provisioned
from tests.support.signed import DeviceSigner

T = TypeVar("T")
REPORTED = (1001, 2001, 6001)  # final reports in; 7001 only opened
OPEN_ONLY = 7001
VOTED = {1001: 20, 2001: 18, 6001: 22}
CLOSE = dt.datetime(2026, 11, 29, 14, 10, tzinfo=dt.UTC)  # 20:10 in Bishkek
MANUAL_AT = dt.datetime(2026, 11, 29, 17, 0, tzinfo=dt.UTC)


def clock() -> dt.datetime:
    return dt.datetime(2026, 11, 29, 18, 0, tzinfo=dt.UTC)


def device(p: Provisioned, number: int) -> FakeStation:
    """Station `number`'s provisioned device: its own key and device id."""
    signer = DeviceSigner(p, number)
    fs = FakeStation(p.definition, signer.station_id, key=signer.key)
    fs.device = signer.device_id
    return fs


def cert_pem(p: Provisioned, number: int) -> bytes:
    return (p.bundle(number) / B.SIGNING_CERT_FILE).read_bytes()


def png_bytes(colour: int = 200) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (40, 30), colour).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Election:
    """What was signed and published, for the tests to compare the site against."""

    p: Provisioned
    db_url: str
    stations: dict[int, FakeStation] = field(default_factory=dict)
    signed: dict[int, list[Envelope]] = field(default_factory=dict)
    asu: dict[int, Envelope] = field(default_factory=dict)
    ident: dict[int, Envelope] = field(default_factory=dict)
    versions: list[int] = field(default_factory=list)

    @property
    def definition(self) -> Any:
        return self.p.definition

    def station_id(self, number: int) -> str:
        return self.p.definition.station_by_number(number).id


def _by_hour(voted: int) -> dict[str, int]:
    a, b = voted // 3, voted // 2
    return {"08": a, "12": b, "17": voted - a - b}


def build(p: Provisioned, db_url: str, *, manual: bool = True) -> Election:
    """Three stations closed and reported, one only opened; version 1 published.  With
    `manual`: the manual counts of 1001 (the same as its ASU count) and 2001 (three votes
    moved: beyond the reconciliation limits), and version 2."""
    d = p.definition
    e = Election(p, db_url)
    with open_database(db_url) as db:
        load_stations(db, d)
        for number in (*REPORTED, OPEN_ONLY):
            fs = device(p, number)
            e.stations[number] = fs
            envs = [fs.at(7, 55).zero_report(), fs.at(10).turnout(5)]
            if number in REPORTED:
                voted = VOTED[number]
                envs.append(fs.at(14).turnout(voted // 2))
                envs.append(fs.at(20).ident_report("final", _by_hour(voted)))
                e.ident[number] = envs[-1]
                envs.append(fs.at(20, 5).final_report(fs.tallies(random.Random(number), voted)))
                e.asu[number] = envs[-1]
            e.signed[number] = envs
            decisions = accept_batch(db, d, items(*envs))
            assert all(x.status == "accepted" for x in decisions), decisions
        first = publish(db, d, at=CLOSE)
        assert first.new and first.version is not None, first.problems
        e.versions.append(first.version)
        if manual:
            enter_manual(e, db, 1001, shift=0)
            enter_manual(e, db, 2001, shift=3)
            second = publish(db, d, at=MANUAL_AT)
            assert second.new and second.version is not None, second.problems
            e.versions.append(second.version)
    return e


def asu_tallies(env: Envelope) -> dict[str, ContestTally]:
    return {t["contest_id"]: ContestTally.from_obj(t) for t in env.body["tallies"]}


def enter_manual(e: Election, db: Database, number: int, *, shift: int) -> None:
    """The station's manual count: its ASU count, with `shift` votes moved between options."""
    d = e.definition
    station = d.station_by_number(number)
    clerk = create_account(
        db,
        f"clerk-{number}",
        "commission_operator",
        station.commission_id,
        "correct horse battery",
        scrypt_n=2**10,
        at=MANUAL_AT,
    )
    counts = {}
    for cid, t in asu_tallies(e.asu[number]).items():
        votes = dict(t.votes)
        if shift:
            ranked = sorted(votes, key=lambda o: -votes[o])
            moved = min(shift, votes[ranked[0]])
            votes[ranked[0]] -= moved
            votes[ranked[-1]] += moved
        counts[cid] = ContestCount(
            contest_id=cid,
            received=t.ballots + 30,
            issued=t.ballots + 2,
            spoiled=1,
            ballots=t.ballots,
            invalid=t.invalid,
            votes=votes,
            preferences=dict(t.preferences) if shift == 0 else dict.fromkeys(t.preferences, 0),
        )
    save_protocol(
        db, d, clerk, station.id, counts, Scan("image/png", png_bytes(number % 250)), at=MANUAL_AT
    )


def site(e: Election, *, kit_dir: Path | None = None, **settings: Any) -> web.Application:
    s = Settings(**{"poll_seconds": 0.05, **settings})
    return make_site(e.db_url, e.definition, kit_dir=kit_dir, clock=clock, settings=s)


def run(app: web.Application, scenario: Callable[[TestClient[Any, Any]], Awaitable[T]]) -> T:
    """Run `scenario(client)` against the app on a real local port, then stop it."""

    async def main() -> T:
        async with TestClient(TestServer(app)) as client:
            return await scenario(client)

    return asyncio.run(main())


class _Page(HTMLParser):
    """The parts of a page the tests read: texts by data-testid, links, ids, landmarks."""

    VOID = frozenset({"br", "img", "input", "link", "meta", "hr", "source", "rect", "path"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.testids: dict[str, str] = {}
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.id_list: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, dict[str, str]]] = []
        self._open: list[tuple[str, str | None]] = []
        self._text: dict[int, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        self.attrs.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])
            self.id_list.append(a["id"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag in self.VOID:
            return
        self._open.append((tag, a.get("data-testid")))
        if a.get("data-testid"):
            self._text[len(self._open) - 1] = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        self.attrs.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])
            self.id_list.append(a["id"])

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            i = len(self._open) - 1
            name, testid = self._open.pop()
            if testid:
                self.testids[testid] = " ".join("".join(self._text.pop(i, [])).split())
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        for parts in self._text.values():
            parts.append(data)


def parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page
