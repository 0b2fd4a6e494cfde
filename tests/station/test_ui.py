"""The operator screen over real HTTP: aiohttp's test server, the simulated reader, real photos."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from firmware_sim.combo_reader import ComboReaderSim
from station.runtime import StationRuntime
from station.state import Mode
from station.texts import TEXTS
from station.ui.app import make_app
from tests.station.test_count import cast, party_list, sheet
from tests.station.test_runtime import FAST, insert, no_leaks, photos, start_runtime
from tests.support.clock import FakeClock, election_day
from tests.support.provisioned import Provisioned
from tests.support.station import CHAIR_CODE, StationKit


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_leaks():
        yield


@pytest.fixture
def clock(provisioned: Provisioned) -> FakeClock:
    return election_day(provisioned.definition.date, 7, 45)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[ComboReaderSim]:
    with ComboReaderSim(tmp_path / "ttyREADER", serial_number="KG-0007") as s:
        yield s


@pytest.fixture
def station(
    kit: StationKit, clock: FakeClock, sim: ComboReaderSim, tmp_path: Path
) -> Iterator[StationRuntime]:
    app, rt = start_runtime(kit, clock, tmp_path / "data", sim, opened=True)
    yield rt
    rt.stop()
    app.close()


def served(rt: StationRuntime, body: Callable[[TestClient], Awaitable[None]]) -> None:
    """Run `body` against the real app on a real socket, then shut everything down."""

    async def go() -> None:
        async with TestClient(TestServer(make_app(rt, tick_seconds=3600))) as client:
            await body(client)

    asyncio.run(go())


async def screen(client: TestClient) -> dict[str, Any]:
    r = await client.get("/api/screen")
    assert r.status == 200
    data: dict[str, Any] = await r.json()
    return data


async def post(client: TestClient, path: str, body: Any = None, *, raw: str | None = None) -> Any:
    if raw is not None:
        r = await client.post(path, data=raw, headers={"Content-Type": "application/json"})
    else:
        r = await client.post(path, json=body or {})
    return r.status, await r.json()


def test_card_on_the_reader_appears_on_the_screen_as_registered_here(
    station: StationRuntime, sim: ComboReaderSim, kit: StationKit
) -> None:
    voter = kit.enrolled()[0]

    async def body(client: TestClient) -> None:
        sim.insert_card(voter.card)
        for _ in range(200):
            s = await screen(client)
            if s["result"]["outcome"] == "registered_here":
                break
            await asyncio.sleep(0.02)
        assert s["result"]["outcome"] == "registered_here"
        assert s["result"]["voter"]["last_name"] == voter.record["last_name"]
        page = await (await client.get("/")).text()
        assert voter.record["last_name"] in page
        assert TEXTS["registered_here"]["ky"] in page

    served(station, body)


def test_genuine_face_is_marked_then_issued_and_counted(
    station: StationRuntime, sim: ComboReaderSim, kit: StationKit
) -> None:
    voter = kit.enrolled()[0]
    insert(sim, station, voter, "registered_here")
    station.camera = photos(kit, voter, genuine=True)

    async def body(client: TestClient) -> None:
        status, data = await post(client, "/api/face")
        assert status == 200 and data["result"]["tone"] == "green"
        assert data["result"]["message"] == TEXTS["issue_ballot"]
        assert data["screen"]["desk"] == "marked"
        status, data = await post(client, "/api/issued")
        assert status == 200
        counts = data["screen"]["counts"]
        assert (counts["voted"], counts["identified_by_face"]) == (1, 1)
        csv = await (await client.get("/participation.csv")).text()
        assert voter.record["last_name"] in csv and voter.pin not in csv

    served(station, body)


def test_impostor_three_times_then_admission_by_document_is_counted_by_reason(
    station: StationRuntime, sim: ComboReaderSim, kit: StationKit
) -> None:
    voter = kit.enrolled()[1]
    insert(sim, station, voter, "registered_here")
    station.camera = photos(kit, voter, genuine=False)

    async def body(client: TestClient) -> None:
        for n in (1, 2, 3):
            status, data = await post(client, "/api/face")
            assert status == 200 and data["result"]["attempt"] == n
        assert data["result"]["tone"] == "amber" and data["screen"]["desk"] == "admission"
        page = await (await client.get("/")).text()
        for reason in ("elderly_or_worn", "disability", "camera_fault"):
            assert TEXTS[f"reason_{reason}"]["ky"] in page
        before = await screen(client)

        good = {"chair_code": CHAIR_CODE, "reason": "elderly_or_worn", "chair": "A. Chair"}
        for bad, status_expected, key in (
            ({**good, "chair_code": "1357"}, 403, "wrong_chair_code"),
            ({k: v for k, v in good.items() if k != "chair_code"}, 400, "field_missing"),
            ({**good, "reason": "bribe"}, 400, "reason_unknown"),
            ({**good, "chair": " "}, 400, "field_missing"),
            ({**good, "chair_code": "12a4"}, 400, "chair_code_format"),
        ):
            status, data = await post(client, "/api/admit", bad)
            assert (status, data["error"]) == (status_expected, key), bad
            assert data["message"]["ky"] and data["message"]["ru"]
            after = await screen(client)
            assert (after["desk"], after["counts"]) == (before["desk"], before["counts"])
        status, data = await post(client, "/api/admit", raw="{not json")
        assert status == 400 and data["error"] == "json_malformed"
        assert data["message"]["ru"].startswith("Запрос") and data["message"]["ky"]
        status, data = await post(client, "/api/admit", raw='["a list"]')
        assert status == 400

        status, data = await post(client, "/api/admit", good)
        assert status == 200 and data["result"]["tone"] == "green"
        await post(client, "/api/issued")
        counts = (await screen(client))["counts"]
        assert counts["admitted_by_document"] == 1
        assert counts["admitted_by_document_by_reason"]["elderly_or_worn"] == 1
        log = await (await client.get("/api/log")).json()
        names = [e["name"] for e in log["events"]]
        assert "admission_refused" in names and "admitted_by_document" in names

    served(station, body)


def test_missing_field_messages_name_the_field_in_both_languages(station: StationRuntime) -> None:
    async def body(client: TestClient) -> None:
        status, data = await post(client, "/api/close", {})
        assert status == 400
        assert TEXTS["field_chair_code"]["ky"] in data["message"]["ky"]
        assert TEXTS["field_chair_code"]["ru"] in data["message"]["ru"]
        status, data = await post(client, "/api/pending/confirm", {"pin": 12})
        assert status == 400 and TEXTS["field_pin"]["ru"] in data["message"]["ru"]
        status, data = await post(client, "/api/close", {"chair_code": CHAIR_CODE})
        assert status == 409 and data["error"] == "polls_close_time"  # a live station, 09:15
        assert (await screen(client))["state"] == "open"

    served(station, body)


def test_reader_unplugged_and_plugged_back_shows_on_the_screen_and_in_the_log(
    station: StationRuntime, sim: ComboReaderSim
) -> None:
    async def until_reader(client: TestClient, state: str) -> dict[str, Any]:
        for _ in range(250):
            s = await screen(client)
            if s["reader"]["state"] == state:
                return s
            await asyncio.sleep(0.02)
        raise AssertionError(f"reader never {state}")

    async def body(client: TestClient) -> None:
        sim.unplug()
        s = await until_reader(client, "disconnected")
        assert s["reader"]["text"] == TEXTS["reader_disconnected"]
        sim.plug()
        await until_reader(client, "connected")
        names = [e["name"] for e in (await (await client.get("/api/log")).json())["events"]]
        assert "reader_disconnected" in names
        assert names[names.index("reader_disconnected") + 1 :].count("reader_connected") >= 1
        nist = await (await client.get("/api/log/nist")).json()
        types = [e["Type"] for e in nist["Device"][0]["Event"]]
        assert "reader_disconnected" in types and "reader_connected" in types

    served(station, body)


def test_language_switch_changes_the_page_text_and_sticks(station: StationRuntime) -> None:
    async def body(client: TestClient) -> None:
        page = await (await client.get("/")).text()
        assert TEXTS["btn_face"]["ky"] in page and 'lang="ky"' in page
        r = await client.get("/?lang=ru")
        page = await r.text()
        assert TEXTS["btn_face"]["ru"] in page and TEXTS["btn_face"]["ky"] not in page
        page = await (await client.get("/")).text()  # the cookie remembers
        assert 'lang="ru"' in page and TEXTS["btn_issued"]["ru"] in page
        page = await (await client.get("/?lang=ky")).text()
        assert TEXTS["btn_face"]["ky"] in page
        assert "http://" not in page and "https://" not in page  # nothing from the internet
        js = await client.get("/static/desk.js")
        assert js.status == 200 and "fetch(" in await js.text()

    served(station, body)


def test_test_mode_banner_is_on_the_page_and_the_screen(
    kit: StationKit, provisioned: Provisioned, tmp_path: Path
) -> None:
    clock = election_day(provisioned.definition.date, 7, 45)
    app = kit.start(tmp_path / "data", clock, mode=Mode.TEST)
    rt = StationRuntime(app, reader_path=None, camera=None, clock=clock, reader_settings=FAST)

    async def body(client: TestClient) -> None:
        for lang in ("ky", "ru"):
            page = await (await client.get(f"/?lang={lang}")).text()
            assert TEXTS["test_mode"][lang] in page
        status, data = await post(client, "/api/open")
        assert status == 200 and data["screen"]["banner"] == TEXTS["test_mode"]
        status, data = await post(client, "/api/close", {"chair_code": CHAIR_CODE})
        assert status == 200 and data["screen"]["state"] == "closed"  # test mode: any time

    try:
        served(rt, body)
    finally:
        app.close()


def test_cross_origin_posts_are_refused(station: StationRuntime) -> None:
    async def body(client: TestClient) -> None:
        r = await client.post("/api/clear", json={}, headers={"Origin": "http://evil.example"})
        assert r.status == 403

    served(station, body)


# --- the deferred batch: a spare ordinary box's sheets, scanned when the ASU is back ------------
def _deferred_state(rt: StationRuntime) -> tuple[str, int, list[str]]:
    """What a refused deferred-batch action must leave as it was: the batch, the deferred
    sheets, and the deferred-batch events in the log."""
    app = rt.appliance
    names = [e["name"] for e in app.log.entries() if e["name"].startswith("deferred_batch")]
    return app.box.batch, app.box.sheets("deferred"), names


def _refusals(rt: StationRuntime, action: str) -> list[dict[str, Any]]:
    return [
        e
        for e in rt.appliance.log.entries()
        if e["name"] == "state_change_refused" and e["detail"].get("transition") == action
    ]


def test_deferred_batch_is_started_with_the_chairs_code_shown_counted_apart_and_ended(
    station: StationRuntime, clock: FakeClock
) -> None:
    app = station.appliance
    cid, parties, _ = party_list(app)

    async def refused(client: TestClient, path: str, body: Any, status: int, key: str) -> None:
        before = (_deferred_state(station), (await screen(client))["deferred_batch"])
        if isinstance(body, str):
            got, data = await post(client, path, raw=body)
        else:
            got, data = await post(client, path, body)
        assert (got, data["error"]) == (status, key), (path, body, data)
        assert data["message"]["ky"] and data["message"]["ru"]
        assert data["message"]["ky"] != data["message"]["ru"]
        after = (_deferred_state(station), (await screen(client))["deferred_batch"])
        assert after == before, (path, body)

    async def body(client: TestClient) -> None:
        s = await screen(client)
        assert s["state"] == "open" and s["deferred_batch"] is None
        page = await (await client.get("/")).text()
        assert TEXTS["btn_deferred_start"]["ky"] in page
        assert '<section id="deferred" class="deferred" hidden' in page
        assert cast(app, sheet(cid, "valid", parties[0]))  # the ASU's own sheet, before it failed

        # refused, changing nothing: nothing to end; the code wrong, missing or malformed
        await refused(client, "/api/deferred/end", {}, 409, "deferred_batch_not_started")
        await refused(
            client, "/api/deferred/start", {"chair_code": "1357"}, 403, "wrong_chair_code"
        )
        await refused(client, "/api/deferred/start", {}, 400, "field_missing")
        await refused(client, "/api/deferred/start", {"chair_code": 1234}, 400, "field_missing")
        await refused(
            client, "/api/deferred/start", {"chair_code": "12a4"}, 400, "chair_code_format"
        )
        await refused(client, "/api/deferred/start", "{not json", 400, "json_malformed")
        assert len(_refusals(station, "start_deferred_batch")) == 1  # the wrong code is logged
        assert len(_refusals(station, "end_deferred_batch")) == 1

        status, data = await post(client, "/api/deferred/start", {"chair_code": CHAIR_CODE})
        assert status == 200 and data["result"]["outcome"] == "deferred_batch_started"
        assert data["result"]["message"] == TEXTS["deferred_batch_started_done"]
        assert data["screen"]["deferred_batch"]["sheets"] == 0
        assert app.box.batch == "deferred"
        await refused(
            client, "/api/deferred/start", {"chair_code": CHAIR_CODE}, 409, "deferred_batch_already"
        )

        # the spare box's sheets: counted in the deferred batch, on the screen as they come
        assert cast(app, sheet(cid, "valid", parties[1]))
        assert cast(app, sheet(cid, "valid", parties[1]))
        s = await screen(client)
        assert s["deferred_batch"]["sheets"] == 2
        assert s["deferred_batch"]["text"] == {
            lang: TEXTS["deferred_batch_on"][lang].format(sheets=2) for lang in ("ky", "ru")
        }
        for lang in ("ky", "ru"):
            page = await (await client.get(f"/?lang={lang}")).text()
            assert '<section id="deferred" class="deferred" aria-live' in page
            assert TEXTS["deferred_batch_on"][lang].format(sheets=2) in page
            assert TEXTS["btn_deferred_end"][lang] in page
            assert f'class="secondary" hidden>{TEXTS["btn_deferred_start"][lang]}' in page

        # closing is refused while the batch is open: the spare box may still hold sheets
        clock.set(20, 0)
        status, data = await post(client, "/api/close", {"chair_code": CHAIR_CODE})
        assert (status, data["error"]) == (409, "deferred_batch_in_progress")
        assert data["message"] == TEXTS["deferred_batch_in_progress"]
        assert (await screen(client))["state"] == "open"
        assert not [m for m in app.signer.messages() if m.body.get("phase") == "final"]

        status, data = await post(client, "/api/deferred/end", {})
        assert status == 200 and data["result"]["outcome"] == "deferred_batch_ended"
        assert "2" in data["result"]["message"]["ky"] and "2" in data["result"]["message"]["ru"]
        assert data["screen"]["deferred_batch"] is None and app.box.batch == "box"
        await refused(client, "/api/deferred/end", {}, 409, "deferred_batch_not_started")
        assert cast(app, sheet(cid, "valid", parties[0]))  # the box's own batch again

        status, data = await post(client, "/api/close", {"chair_code": CHAIR_CODE})
        assert status == 200 and data["screen"]["state"] == "closed"
        final = next(m for m in reversed(app.signer.messages()) if m.kind == "asu_report")
        assert final.body["phase"] == "final"
        assert (final.body["sheets"], final.body["deferred_sheets"]) == (4, 2)
        deferred = next(t for t in final.body["deferred_tallies"] if t["contest_id"] == cid)
        assert deferred["votes"][parties[1]] == 2 and deferred["votes"][parties[0]] == 0

        # after the close: no deferred batch any more (the final report is signed)
        await refused(
            client,
            "/api/deferred/start",
            {"chair_code": CHAIR_CODE},
            409,
            "deferred_batch_polls_not_open",
        )
        page = await (await client.get("/?lang=ky")).text()
        assert 'class="secondary" hidden>' + TEXTS["btn_deferred_start"]["ky"] in page

        log = (await (await client.get("/api/log?limit=5000")).json())["events"]
        names = [e["name"] for e in log]
        assert names.count("deferred_batch_started") == names.count("deferred_batch_ended") == 1
        start, end = names.index("deferred_batch_started"), names.index("deferred_batch_ended")
        batches = [e["detail"]["batch"] for e in log if e["name"] == "sheet_counted"]
        assert batches == ["box", "deferred", "deferred", "box"]
        inside = [e["detail"]["batch"] for e in log[start:end] if e["name"] == "sheet_counted"]
        assert inside == ["deferred", "deferred"]
        assert log[end]["detail"]["sheets"] == 2
        assert log[start]["actor"] == log[end]["actor"] == "chair"

    served(station, body)


def test_deferred_batch_outlives_a_restart_and_is_refused_before_the_polls_open(
    kit: StationKit, clock: FakeClock, tmp_path: Path
) -> None:
    app = kit.start(tmp_path / "data", clock)  # in setup: polls not open
    rt = StationRuntime(app, reader_path=None, camera=None, clock=clock, reader_settings=FAST)

    async def in_setup(client: TestClient) -> None:
        status, data = await post(client, "/api/deferred/start", {"chair_code": CHAIR_CODE})
        assert (status, data["error"]) == (409, "deferred_batch_polls_not_open")
        assert data["message"] == TEXTS["deferred_batch_polls_not_open"]
        page = await (await client.get("/")).text()
        assert 'class="secondary" hidden>' + TEXTS["btn_deferred_start"]["ky"] in page
        clock.set(8, 0)
        assert (await post(client, "/api/open"))[0] == 200
        clock.set(17, 30)
        status, data = await post(client, "/api/deferred/start", {"chair_code": CHAIR_CODE})
        assert status == 200

    try:
        served(rt, in_setup)
        cid, parties, _ = party_list(app)
        assert cast(app, sheet(cid, "valid", parties[0]))
        assert _refusals(rt, "start_deferred_batch")[0]["detail"]["why"].endswith("not setup")
    finally:
        app.close()

    app = kit.start(tmp_path / "data", clock)  # the station restarts mid-batch
    rt = StationRuntime(app, reader_path=None, camera=None, clock=clock, reader_settings=FAST)

    async def after_restart(client: TestClient) -> None:
        s = await screen(client)
        assert s["deferred_batch"]["sheets"] == 1  # still in the batch, its sheet still in it
        assert cast(app, sheet(cid, "valid", parties[0]))
        status, data = await post(client, "/api/deferred/end", {"chair": "A. Chair"})
        assert status == 200 and data["screen"]["deferred_batch"] is None
        assert (app.box.sheets(), app.box.sheets("deferred")) == (2, 2)
        ended = [e for e in app.log.entries() if e["name"] == "deferred_batch_ended"]
        assert ended[0]["actor"] == "A. Chair" and ended[0]["detail"]["sheets"] == 2

    try:
        served(rt, after_restart)
    finally:
        app.close()
