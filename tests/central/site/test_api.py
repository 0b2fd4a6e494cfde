"""The open data API: JSON of every page, the document byte for byte, CSV, NIST, the record,
the OpenAPI description, and the caching headers a CDN relies on."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import tarfile
from typing import Any

from aiohttp.test_utils import TestClient

from central.db import open_database
from central.results import latest_published
from central.site.app import STATE, make_site
from central.site.openapi import openapi_document
from crypto.envelope import Envelope
from tests.central.site.support import Election, clock, run, site

Client = TestClient[Any, Any]


def _published(e: Election) -> tuple[str, dict[str, Any]]:
    with open_database(e.db_url) as db:
        p = latest_published(db)
    assert p is not None
    return p.text, p.document


def _entry(doc: dict[str, Any], contest: str, level: str, unit: str) -> dict[str, Any]:
    c = next(c for c in doc["contests"] if c["id"] == contest)
    found: dict[str, Any] = next(x for x in c["units"][level] if x["id"] == unit)
    return found


def test_the_json_of_every_page_is_the_published_numbers(published: Election) -> None:
    _, doc = _published(published)
    d = published.definition

    async def scenario(client: Client) -> None:
        nation = await (await client.get("/api/v1/nation.json")).json()
        assert nation["version"] == 2 and nation["sha256"]
        assert nation["turnout"]["voted"] == doc["turnout"]["nation"][0]["voted"]
        assert nation["stations_by_state"] == doc["stations"]
        for c in nation["contests"]:
            entry = _entry(doc, c["id"], "nation", "nation")
            assert c["asu"] == entry["asu"] and c["manual"] == entry["manual"]
            outcome = next(x for x in doc["contests"] if x["id"] == c["id"])["outcome"]
            assert c["outcome"] == outcome
        assert [x["id"] for x in nation["children"]] == [r.id for r in d.regions]
        for level, units in (
            ("region", d.regions),
            ("district", d.districts),
            ("commission", d.commissions),
            ("station", d.stations),
        ):
            for u in units:
                view = await (await client.get(f"/api/v1/{level}/{u.id}.json")).json()
                assert view["unit"]["id"] == u.id and view["version"] == 2
                for c in view["contests"]:
                    entry = _entry(doc, c["id"], level, u.id)
                    assert (c["asu"], c["manual"]) == (entry["asu"], entry["manual"])
        station = await (
            await client.get(f"/api/v1/station/{published.station_id(2001)}.json")
        ).json()
        ev = station["evidence"]
        assert [m["seq"] for m in ev["messages"]] == [x.seq for x in published.signed[2001]]
        assert ev["manual"]["version"] == 1
        assert {r["status"] for r in ev["reconciliation"]} == {"difference"}
        status = await (await client.get("/api/v1/status.json")).json()
        assert status["version"] == 2 and status["stations"] == {
            "of": 4,
            "delivered": 3,
            "turnout_reported": 4,
        }

    run(site(published), scenario)


def test_the_results_document_is_served_byte_for_byte_and_each_version_stays(
    published: Election,
) -> None:
    text, _ = _published(published)
    sha = hashlib.sha256(text.encode()).hexdigest()

    async def scenario(client: Client) -> None:
        r = await client.get("/api/v1/results.json")
        assert await r.read() == text.encode()
        assert r.headers["X-Results-SHA256"] == sha and r.headers["X-Results-Version"] == "2"
        assert r.headers["ETag"].strip('"').startswith(sha)
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        first = await client.get("/api/v1/results/1.json")
        assert first.status == 200 and "immutable" in first.headers["Cache-Control"]
        assert json.loads(await first.read())["stations"]["delivered"] == 3
        again = await client.get("/api/v1/results/2.json")
        assert await again.read() == text.encode()

    run(site(published), scenario)


def test_etags_give_304_and_pages_are_cached_once_per_version(published: Election) -> None:
    app = site(published)

    async def scenario(client: Client) -> None:
        for path in ("/en/", "/api/v1/nation.json", "/api/v1/csv/turnout/region.csv"):
            plain = await client.get(path, headers={"Accept-Encoding": "identity"})
            body = await plain.read()
            tag = plain.headers["ETag"]
            assert plain.headers["Cache-Control"].startswith("public, max-age=")
            assert "Accept-Encoding" in plain.headers["Vary"]
            not_modified = await client.get(path, headers={"If-None-Match": tag})
            assert not_modified.status == 304 and await not_modified.read() == b""
            assert not_modified.headers["ETag"]
            weak = await client.get(path, headers={"If-None-Match": f'W/{tag}, "other"'})
            assert weak.status == 304
            zipped = await client.get(
                path, headers={"Accept-Encoding": "gzip"}, auto_decompress=False
            )
            if zipped.headers.get("Content-Encoding") == "gzip":
                assert gzip.decompress(await zipped.read()) == body
                assert zipped.headers["ETag"] != tag
                again = await client.get(
                    path,
                    headers={"If-None-Match": zipped.headers["ETag"], "Accept-Encoding": "gzip"},
                )
                assert again.status == 304
            changed = await client.get(path, headers={"If-None-Match": '"someone-elses"'})
            assert changed.status == 200
        renders = app[STATE].cache.renders
        for _ in range(5):
            assert (await client.get("/en/")).status == 200
        assert app[STATE].cache.renders == renders  # served from memory, not rendered again
        static = await client.get(app[STATE].static["site.css"])
        assert static.status == 200 and static.headers["Cache-Control"] == "public, max-age=86400"

    run(app, scenario)


def _csv(body: bytes) -> list[dict[str, str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # a BOM, for spreadsheets
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_csv_per_level_and_contest_matches_the_document(published: Election) -> None:
    _, doc = _published(published)
    d = published.definition

    async def scenario(client: Client) -> None:
        for c in d.contests:
            levels = ("district", "commission", "station") if c.district_id else (
                "nation", "region", "district", "commission", "station",
            )  # fmt: skip
            for level in levels:
                r = await client.get(f"/api/v1/csv/{c.id}/{level}.csv")
                assert r.status == 200 and r.content_type == "text/csv"
                assert "attachment" in r.headers["Content-Disposition"]
                rows = _csv(await r.read())
                units = next(x for x in doc["contests"] if x["id"] == c.id)["units"][level]
                assert len(rows) == 2 * len(units)
                for row in rows:
                    entry = _entry(doc, c.id, level, row["id"])
                    part = entry[row["source"]]
                    if not part:
                        assert row["stations_counted"] == "0" and row["ballots"] == ""
                        continue
                    assert int(row["ballots"]) == part["ballots"]
                    assert int(row["invalid"]) == part["invalid"]
                    for o in c.options:
                        assert int(row[f"votes:{o.id}"]) == part["votes"][o.id]
                        assert row[f"share:{o.id}"] == part["shares"]["percent"].get(o.id, "")
        rows = _csv(await (await client.get("/api/v1/csv/turnout/station.csv")).read())
        by_id = {t["id"]: t for t in doc["turnout"]["station"]}
        assert {r["id"] for r in rows} == {s.id for s in d.stations}
        for row in rows:
            t = by_id[row["id"]]
            assert (int(row["voted"]), row["percent"]) == (t["voted"], t["percent"])
            assert int(row["voted_by_20"]) == t["by_hour"]["20"]

    run(site(published), scenario)


# The required members of the NIST SP 1500-100 v2 JSON schema types we write
# (NIST_V2_election_results_reporting.json, usnistgov/ElectionResultsReporting).
NIST_REQUIRED = {
    "ElectionReport": {"Format", "GeneratedDate", "Issuer", "IssuerAbbreviation", "SequenceEnd",
                       "SequenceStart", "Status", "VendorApplicationId"},
    "Election": {"ElectionScopeId", "EndDate", "Name", "StartDate", "Type"},
    "ReportingUnit": {"Type", "@id"},
    "PartyContest": {"ElectoralDistrictId", "Name", "@id"},
    "CandidateContest": {"VotesAllowed", "ElectoralDistrictId", "Name", "@id"},
    "BallotMeasureContest": {"ElectoralDistrictId", "Name", "@id"},
    "PartySelection": {"PartyIds", "@id"},
    "CandidateSelection": {"CandidateIds", "@id"},
    "BallotMeasureSelection": {"Selection", "@id"},
    "Candidate": {"BallotName", "@id"},
    "Party": {"Name", "@id"},
    "VoteCounts": {"Count", "Type"},
    "SummaryCounts": {"Type"},
    "CountStatus": {"Status", "Type"},
    "InternationalizedText": {"Text"},
    "LanguageString": {"Content", "Language"},
    "Device": set(),
    "ExternalIdentifier": {"Type", "Value"},
}  # fmt: skip


def _walk(obj: Any, found: list[dict[str, Any]]) -> None:
    if isinstance(obj, dict):
        if "@type" in obj:
            found.append(obj)
        for v in obj.values():
            _walk(v, found)
    elif isinstance(obj, list):
        for v in obj:
            _walk(v, found)


def test_nist_report_is_well_formed_and_carries_the_published_counts(published: Election) -> None:
    _, doc = _published(published)
    d = published.definition

    async def scenario(client: Client) -> None:
        r = await client.get("/api/v1/nist.json")
        report = await r.json()
        objects: list[dict[str, Any]] = []
        _walk(report, objects)
        for obj in objects:
            kind = obj["@type"].removeprefix("ElectionResults.")
            assert kind in NIST_REQUIRED, kind
            assert NIST_REQUIRED[kind] <= set(obj), (kind, NIST_REQUIRED[kind] - set(obj))
        ids = [o["@id"] for o in objects if "@id" in o]
        assert len(ids) == len(set(ids))
        units = {o["@id"] for o in objects if o["@type"] == "ElectionResults.ReportingUnit"}
        assert len(units) == 1 + len(d.regions) + len(d.districts) + len(d.commissions) + len(
            d.stations
        )
        refs = [
            v for o in objects for k, v in o.items() if k in ("GpUnitId", "ElectoralDistrictId")
        ]
        assert set(refs) <= units
        assert report["Status"] == "unofficial-partial" and report["Format"] == "precinct-level"
        election = report["Election"][0]
        for c in d.contests:
            contest = next(x for x in election["Contest"] if x["@id"] == f"contest-{c.id}")
            top = ("nation", "nation") if c.district_id is None else ("district", c.district_id)
            gp = "gp-nation" if c.district_id is None else f"gp-district-{c.district_id}"
            entry = _entry(doc, c.id, *top)
            for sel, option in zip(contest["BallotSelection"], c.options, strict=True):
                counts = {
                    v["Device"]["Type"]: v["Count"]
                    for v in sel["VoteCounts"]
                    if v["GpUnitId"] == gp
                }
                for source, device in (("asu", "opscan-precinct"), ("manual", "manual-count")):
                    if entry[source]["stations"]:
                        assert counts[device] == entry[source]["votes"][option.id]
                    else:
                        assert device not in counts

    run(site(published), scenario)


def test_the_election_record_is_one_download_built_once_per_version(published: Election) -> None:
    kit = published.p.central_kit()
    app = site(published, record_kit=kit)

    async def scenario(client: Client) -> None:
        r = await client.get("/api/v1/record.tar.gz")
        assert r.status == 200 and r.content_type == "application/gzip"
        assert r.headers["X-Results-Version"] == "2"
        assert "election-record-" in r.headers["Content-Disposition"]
        data = await r.read()
        built = app[STATE].record
        assert built is not None
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            names = tar.getnames()
            root = names[0].split("/")[0]
            files = {n.removeprefix(root + "/"): n for n in names}
            for needed in ("MANIFEST.json", "election.json", "results.json", "devices.json"):
                assert needed in files
            sid = published.station_id(1001)
            member = tar.extractfile(files[f"messages/{sid}.jsonl"])
            assert member is not None
            lines = member.read().splitlines()
            assert [Envelope.from_bytes(x).hash for x in lines] == [
                x.hash for x in published.signed[1001]
            ]
        again = await client.get("/api/v1/record.tar.gz")
        assert await again.read() == data  # the same archive, not built again
        assert app[STATE].record == built
        tag = again.headers["ETag"]
        assert (
            await client.get("/api/v1/record.tar.gz", headers={"If-None-Match": tag})
        ).status == 304

    run(app, scenario)

    async def without(client: Client) -> None:
        r = await client.get("/api/v1/record.tar.gz")
        assert r.status == 404 and "not offered" in (await r.json())["error"]["message"]

    run(site(published), without)


def test_the_openapi_document_describes_every_api_route(published: Election) -> None:
    app = make_site(published.db_url, published.definition, kit_dir=None, clock=clock)
    routes = {
        r.canonical.replace("{unit}", "{id}")
        for r in app.router.resources()
        if r.canonical.startswith("/api/")
    }
    described = set(openapi_document("x")["paths"])
    assert routes == described

    async def scenario(client: Client) -> None:
        r = await client.get("/api/openapi.json")
        doc = await r.json()
        assert doc["openapi"].startswith("3.1") and set(doc["paths"]) == described

    run(site(published), scenario)


def test_the_page_cache_stays_within_its_bytes(published: Election) -> None:
    app = site(published, cache_bytes=150_000)

    async def scenario(client: Client) -> None:
        cache = app[STATE].cache
        for lang in ("ky", "ru", "en"):
            for path in ("/", "/data", "/check", "/region/chui"):
                assert (await client.get(f"/{lang}{path}")).status == 200
                assert cache.size <= 150_000
        big = await client.get("/api/v1/results.json")  # larger than the whole cache
        assert big.status == 200 and cache.size <= 150_000
        renders = cache.renders
        assert (await client.get("/api/v1/results.json")).status == 200
        assert cache.renders == renders + 1  # not kept, so rendered again

    run(app, scenario)
