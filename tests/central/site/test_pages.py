"""The public pages: every page in every language, what they show, drill-down, bad input."""

from __future__ import annotations

import datetime as dt
import html
import random
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from central.db import open_database
from central.evidence import accept_batch, load_stations
from central.results import latest_published, publish
from central.site.app import make_site
from central.site.texts import LANGS, TEXTS, fmt_int, fmt_pct
from tests.central.fake_stations import FakeStation, items, random_tally, tiny_definition
from tests.central.site.support import OPEN_ONLY, Election, clock, parse, run, site

Client = TestClient[Any, Any]


def _document(e: Election) -> dict[str, Any]:
    with open_database(e.db_url) as db:
        published = latest_published(db)
    assert published is not None
    return published.document


def _unit(doc: dict[str, Any], contest: str, level: str, unit: str) -> dict[str, Any]:
    c = next(c for c in doc["contests"] if c["id"] == contest)
    found: dict[str, Any] = next(x for x in c["units"][level] if x["id"] == unit)
    return found


def _pages(e: Election) -> list[str]:
    d = e.definition
    paths = ["/", "/check", "/data"]
    paths += [f"/region/{r.id}" for r in d.regions]
    paths += [f"/district/{x.id}" for x in d.districts]
    paths += [f"/commission/{c.id}" for c in d.commissions]
    paths += [f"/station/{s.id}" for s in d.stations]
    return paths


def test_texts_exist_in_every_language() -> None:
    for key, by_lang in TEXTS.items():
        assert set(by_lang) == set(LANGS), key
        assert all(v.strip() for v in by_lang.values()), key


def test_every_page_in_every_language_is_whole_and_accessible(published: Election) -> None:
    async def scenario(client: Client) -> None:
        for lang in LANGS:
            for path in _pages(published):
                r = await client.get(f"/{lang}{path}")
                text = await r.text()
                assert r.status == 200, (lang, path, text[:500])
                assert r.content_type == "text/html"
                assert f'<html lang="{lang}" data-version="2">' in text
                page = parse(text)
                for landmark in ("header", "nav", "main", "footer"):
                    assert landmark in page.tags, (lang, path, landmark)
                assert page.tags.count("h1") == 1, (lang, path)
                assert "main" in page.ids and "live-status" in page.ids
                assert len(page.id_list) == len(page.ids), (lang, path)  # ids are unique
                assert (
                    '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
                )
                assert 'class="skip" href="#main"' in text
                # the language switch keeps the reader on the same page
                for other in LANGS:
                    assert f'href="/{other}{path}" hreflang="{other}"' in text
                # tables say what they are; charts have a title and a description
                assert text.count("<table") == text.count("<caption")
                assert text.count('<th scope="') >= text.count("<table")
                for tag, attrs in page.attrs:
                    if tag == "svg" and attrs.get("role") == "img":
                        assert attrs["aria-labelledby"].endswith("-d")
                    if tag == "img":
                        assert attrs.get("alt"), (lang, path)
                assert "Traceback" not in text
                assert "{" not in re.sub(r"\{time\}|\{1,8\}", "", text), (lang, path)  # all filled

    run(site(published), scenario)


def test_home_shows_the_published_national_picture(published: Election) -> None:
    doc = _document(published)
    party = next(c for c in published.definition.contests if c.district_id is None)
    nation = _unit(doc, party.id, "nation", "nation")
    turnout = doc["turnout"]["nation"][0]

    async def scenario(client: Client) -> None:
        for lang in LANGS:
            r = await client.get(f"/{lang}/")
            page = parse(await r.text())
            ids = page.testids
            of = {"ky": "4 ичинен 3", "ru": "3 из 4", "en": "3 of 4"}[lang]
            assert ids["stations-reported"] == of
            assert ids["version"] == "2"
            assert ids["turnout-percent"] == fmt_pct(turnout["percent"], lang).replace(
                "\u00a0", " "
            )
            assert ids["turnout-voted"] == fmt_int(turnout["voted"], lang).replace("\u00a0", " ")
            ident = turnout["identification"]
            assert ids["ident-face"] == str(ident["identified_by_face"])
            assert ids["ident-document"] == str(ident["admitted_by_document"])
            assert ids[f"counted-{party.id}-asu"] == of
            assert (
                ids[f"counted-{party.id}-manual"]
                == {
                    "ky": "4 ичинен 2",
                    "ru": "2 из 4",
                    "en": "2 of 4",
                }[lang]
            )
            for source in ("asu", "manual"):
                part = nation[source]
                for o in party.options:
                    assert ids[f"votes-{party.id}-{source}-{o.id}"] == str(part["votes"][o.id])
                    share = part["shares"]["percent"][o.id]
                    assert ids[f"share-{party.id}-{source}-{o.id}"] == fmt_pct(share, lang).replace(
                        "\u00a0", " "
                    )
                assert ids[f"base-{party.id}-{source}"] == fmt_int(
                    part["shares"]["base"], lang
                ).replace("\u00a0", " ")
                outcome = next(c for c in doc["contests"] if c["id"] == party.id)["outcome"]
                for pid, seats in outcome[source]["seats"].items():
                    assert ids[f"seats-{party.id}-{source}-{pid}"] == str(seats)
            for region in published.definition.regions:
                assert f'href="/{lang}/region/{region.id}"' in await r.text()

    run(site(published), scenario)


def test_preliminary_and_final_are_labelled_apart_and_the_threshold_is_drawn(
    published: Election,
) -> None:
    async def scenario(client: Client) -> None:
        text = await (await client.get("/en/")).text()
        assert text.count('data-source="asu"') == text.count('data-source="manual"') >= 1
        assert "Preliminary</span> automatic ballot counting boxes (ASU)" in text
        assert "Final</span> manual count protocols" in text
        assert 'class="threshold"' in text and "threshold 5%" in text
        assert 'id="map-turnout"' in text and 'class="chart line"' in text
        assert 'id="district-contests"' in text and 'id="regions"' in text

    run(site(published), scenario)


def test_drill_down_reaches_every_station_and_no_link_is_broken(published: Election) -> None:
    async def scenario(client: Client) -> None:
        seen: dict[str, int] = {}
        todo = ["/ru/"]
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            r = await client.get(path)
            seen[path] = r.status
            assert r.status == 200, path
            if r.content_type != "text/html":
                await r.read()
                continue
            for href in parse(await r.text()).links:
                target = href.split("#")[0]
                if target.startswith("/ru/") or target.startswith("/api/v1/station/"):
                    todo.append(target)
        stations = {p for p in seen if p.startswith("/ru/station/")}
        assert stations == {f"/ru/station/{s.id}" for s in published.definition.stations}
        assert {p for p in seen if p.startswith("/ru/commission/")} == {
            f"/ru/commission/{c.id}" for c in published.definition.commissions
        }

    run(site(published), scenario)


def test_the_station_page_shows_what_the_station_signed(published: Election) -> None:
    number = 2001
    sid = published.station_id(number)
    ident = published.ident[number].body

    async def scenario(client: Client) -> None:
        r = await client.get(f"/en/station/{sid}")
        text = await r.text()
        page = parse(text)
        assert page.testids["zero-report"].startswith("Signed")
        assert "every counter is zero" in page.testids["zero-report"]
        for anchor in ("zero-report", "turnout-reports", "identification-reports", "asu-reports"):
            assert anchor in page.ids
        seq = published.ident[number].seq
        for key in ("voted", "identified_by_face", "admitted_by_document", "mobile_box"):
            assert page.testids[f"ident-{seq}-{key}"] == str(ident[key])
        # the ASU report as signed, line by line beside the published station numbers
        assert text.count('class="signed-tally"') == len(published.asu[number].body["tallies"])
        assert "DIFFERS" not in text.split('id="manual-count"')[0]
        # the manual count, its scan, and the difference flagged
        assert page.testids["manual-protocol"].startswith("Version 1 of 1")
        assert 'data-status="difference"' in text
        assert "DIFFERENCE BEYOND THE LIMITS" in text
        scan = await client.get(page_link(page.links, "/api/v1/scan/"))
        assert scan.status == 200 and scan.content_type == "image/png"
        assert (await scan.read()).startswith(b"\x89PNG")
        assert "immutable" in scan.headers["Cache-Control"]
        # every signed message, downloadable byte for byte
        for env in published.signed[number]:
            m = await client.get(f"/api/v1/station/{sid}/messages/{env.seq}")
            assert m.status == 200
            assert await m.read() == env.to_bytes()
            assert "immutable" in m.headers["Cache-Control"]
        all_of = await client.get(f"/api/v1/station/{sid}/messages.jsonl")
        assert await all_of.read() == b"".join(
            x.to_bytes() + b"\n" for x in published.signed[number]
        )

        other = await (await client.get(f"/en/station/{published.station_id(OPEN_ONLY)}")).text()
        assert parse(other).testids["no-manual"]
        assert "None received yet." in other  # no ASU final report, no identification report

    run(site(published), scenario)


def page_link(links: list[str], prefix: str) -> str:
    return next(x for x in links if x.startswith(prefix))


def test_bad_input_gets_a_clear_4xx_page_never_a_stack_trace(published: Election) -> None:
    async def scenario(client: Client) -> None:
        cases = [
            (
                "/en/station/no-such-station",
                404,
                "This election has no polling station “no-such-station”",
            ),
            ("/ky/station/no-such-station", 404, "«no-such-station» деген шайлоо участогу жок"),
            ("/en/region/atlantis", 404, "This election has no region “atlantis”"),
            ("/en/planet/mars", 404, "There is no such page."),
            ("/xx/", 404, "There is no language “xx”"),
            ("/xx/station/uik-1001", 404, "Языка «xx» нет"),
            ("/en/station?number=abc", 400, "Type the station number in digits"),
            ("/en/station?number=99999", 404, "There is no polling station No. 99999"),
            ("/static/nothing.css", 404, "Мындай барак жок."),
        ]
        for path, status, said in cases:
            r = await client.get(path)
            text = await r.text()
            assert r.status == status, (path, r.status)
            assert said in text, (path, text[:300])
            assert r.headers["Cache-Control"] == "no-store"
            assert "Traceback" not in text
        api = [
            ("/api/v1/station/no-such-station.json", 404),
            ("/api/v1/csv/no-such-contest/nation.csv", 404),
            ("/api/v1/csv/turnout/galaxy.csv", 404),
            ("/api/v1/station/uik-1001/messages/999", 404),
            ("/api/v1/scan/" + "0" * 64, 404),
            ("/api/v1/results/999.json", 404),
            ("/api/v2/anything", 404),
        ]
        smd = next(c for c in published.definition.contests if c.district_id is not None)
        api.append((f"/api/v1/csv/{smd.id}/nation.csv", 404))
        for path, status in api:
            r = await client.get(path)
            assert r.status == status, path
            body = await r.json()
            assert body["error"]["status"] == status and body["error"]["message"]
        r = await client.post("/en/")
        assert r.status == 405 and "does not accept" in await r.text()
        r = await client.get("/")
        assert r.status == 200 and str(r.url).endswith("/ky/")
        r = await client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9,ru;q=0.8"})
        assert str(r.url).endswith("/en/")
        r = await client.get("/ru")
        assert str(r.url).endswith("/ru/")

    run(site(published), scenario)


def test_a_page_from_before_the_first_publication_says_so(
    published: Election, tmp_path: Path
) -> None:
    empty = Election(published.p, f"sqlite:///{tmp_path / 'empty.sqlite'}")

    async def scenario(client: Client) -> None:
        r = await client.get("/en/")
        page = parse(await r.text())
        assert r.status == 200 and page.testids["not-published"].startswith("No results")
        status = await (await client.get("/api/v1/status.json")).json()
        assert status["version"] is None
        assert (await client.get("/api/v1/results.json")).status == 404
        assert (await client.get("/api/v1/nist.json")).status == 404
        assert (await client.get(f"/en/station/{published.station_id(1001)}")).status == 200

    run(site(empty), scenario)


def test_the_site_refuses_to_show_another_elections_results(published: Election) -> None:
    app = make_site(published.db_url, tiny_definition(), kit_dir=None, clock=clock)

    async def scenario(client: Client) -> None:
        raise AssertionError("the site started")

    with pytest.raises(RuntimeError, match="another election"):
        run(app, scenario)


def test_every_contest_kind_renders_with_its_outcome(tmp_path: Path) -> None:
    """President (runoff), referendum (turnout rule), party list and two single-member
    districts, over regions the map has no shapes for (a tile map is drawn instead)."""
    d = tiny_definition()
    url = f"sqlite:///{tmp_path / 'kinds.sqlite'}"
    with open_database(url) as db:
        load_stations(db, d)
        for i, s in enumerate(d.stations):
            f = FakeStation(d, s.id)
            v = 300 + 40 * i
            envs = [
                f.at(7, 55).zero_report(),
                f.at(20).ident_report("final", {"09": v // 2, "15": v - v // 2}),
                f.at(20, 5).final_report(f.tallies(random.Random(i), v)),
            ]
            accept_batch(db, d, items(*envs))
        assert publish(db, d, at=dt.datetime(2026, 11, 29, 15, tzinfo=dt.UTC)).new
        shown = latest_published(db)
        assert shown is not None
        outcomes = {c["id"]: c["outcome"]["asu"] for c in shown.document["contests"]}
    app = make_site(url, d, kit_dir=None, clock=clock)

    async def scenario(client: Client) -> None:
        for lang in LANGS:
            text = await (await client.get(f"/{lang}/")).text()
            assert 'class="map tiles"' in text
            for contest in ("list", "president", "referendum"):
                assert f'id="contest-{contest}"' in text
            page = parse(text)
            for contest in ("list", "president", "referendum"):
                assert page.testids[f"outcome-{contest}-asu"], (lang, contest)
            for district in ("d1", "d3"):
                r = await client.get(f"/{lang}/district/{district}")
                assert r.status == 200
                assert f"outcome-smd-{district[1]}-asu" in parse(await r.text()).testids
        en = parse(await (await client.get("/en/")).text()).testids
        for contest in ("president", "referendum", "list"):
            said = TEXTS["status_" + outcomes[contest]["status"]]["en"]
            assert en[f"outcome-{contest}-asu"].startswith(said)
        nist = await (await client.get("/api/v1/nist.json")).json()
        kinds = {c["@type"] for c in nist["Election"][0]["Contest"]}
        assert kinds == {
            "ElectionResults.PartyContest",
            "ElectionResults.CandidateContest",
            "ElectionResults.BallotMeasureContest",
        }

    run(app, scenario)


def test_the_station_page_says_how_many_sheets_a_deferred_batch_counted(tmp_path: Path) -> None:
    """A station whose ASU failed: its final ASU report names the sheets of the spare box,
    counted apart (and in the totals); the page says so in every language, and says
    nothing for a station without a deferred batch."""
    d = tiny_definition()
    url = f"sqlite:///{tmp_path / 'deferred.sqlite'}"
    spare, plain = d.stations[0], d.stations[1]
    with open_database(url) as db:
        load_stations(db, d)
        for i, s in enumerate((spare, plain)):
            f = FakeStation(d, s.id)
            deferred = None
            if s is spare:
                deferred = [random_tally(c, random.Random(7), 1234) for c in f.contests]
            envs = [
                f.at(7, 55).zero_report(),
                f.at(20).ident_report("final", {"09": 1500, "15": 1500}),
                f.at(20, 5).final_report(f.tallies(random.Random(i), 3000), deferred=deferred),
            ]
            assert all(x.status == "accepted" for x in accept_batch(db, d, items(*envs)))
        assert publish(db, d, at=dt.datetime(2026, 11, 29, 15, tzinfo=dt.UTC)).new

    async def scenario(client: Client) -> None:
        for lang in LANGS:
            text = await (await client.get(f"/{lang}/station/{spare.id}")).text()
            said = parse(text).testids["deferred-sheets"]
            assert said == " ".join(
                TEXTS["deferred_sheets"][lang].format(n=fmt_int(1234, lang)).split()
            )
            said_raw = TEXTS["deferred_sheets"][lang].format(n=fmt_int(1234, lang))
            assert html.escape(said_raw) in text  # "1 234" (no-break space) / "1,234"
            asu = text.split('id="asu-reports"', 1)[1].split('id="manual-count"', 1)[0]
            assert 'data-testid="deferred-sheets"' in asu  # with the ASU report it comes from
            other = await (await client.get(f"/{lang}/station/{plain.id}")).text()
            assert "deferred-sheets" not in parse(other).testids
            assert TEXTS["deferred_sheets"][lang][:12] not in other
        view = await (await client.get(f"/api/v1/station/{spare.id}.json")).json()
        assert [r["deferred_sheets"] for r in view["evidence"]["asu_reports"]] == [1234]
        view = await (await client.get(f"/api/v1/station/{plain.id}.json")).json()
        assert [r["deferred_sheets"] for r in view["evidence"]["asu_reports"]] == [0]

    run(make_site(url, d, kit_dir=None, clock=clock), scenario)
