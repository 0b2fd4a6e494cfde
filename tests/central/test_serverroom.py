"""The server room through HTTP, with aiohttp's test server and client (no browser)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from central import alerts, manual
from central.accounts import MAX_FAILURES
from central.db import Database
from central.serverroom import app as serverroom
from central.serverroom.app import Settings, make_app
from tests.central.staff_support import (
    PASSWORD,
    PDF,
    T0,
    account,
    form_of,
    load,
    operator,
    protocol,
    small_definition,
)

D = small_definition()
S101, S201 = "uik-101", "uik-201"
SETTINGS = Settings(reconcile_seconds=0)
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


class Room:
    """A browser on the server room: a cookie jar that accepts Secure cookies from it."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    async def get(self, path: str, **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        r = await self.client.get(path, allow_redirects=False, **kw)
        return r.status, await r.text(), r

    async def post(
        self, path: str, data: Any, *, csrf: bool = True, **kw: Any
    ) -> tuple[int, str, aiohttp.ClientResponse]:
        if csrf and isinstance(data, dict):
            data = {"csrf": self.csrf, **data}
        elif csrf and isinstance(data, FormData):
            data.add_field("csrf", self.csrf)
        r = await self.client.post(path, data=data, allow_redirects=False, **kw)
        return r.status, await r.text(), r

    async def sign_in(self, username: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        status, text, _ = await self.get("/signin")
        assert status == 200
        (pre,) = CSRF_RE.findall(text)
        r = await self.client.post(
            "/signin",
            data={"csrf": pre, "username": username, "password": password, "next": "/"},
            allow_redirects=False,
        )
        if r.status == 303:
            _, page, _ = await self.get("/")
            self.csrf = CSRF_RE.findall(page)[0]
        return r


@asynccontextmanager
async def _room(
    db_url: str, clock: Callable[[], dt.datetime], settings: Settings
) -> AsyncIterator[Room]:
    server = TestServer(make_app(db_url, D, clock=clock, settings=settings))
    await server.start_server()
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=str(server.make_url("/")))
    client = TestClient(server, cookie_jar=jar)
    await client.start_server()
    try:
        yield Room(client)
    finally:
        await client.close()


def run(
    db_url: str,
    body: Callable[[Room], Awaitable[None]],
    *,
    now: dt.datetime = T0,
    settings: Settings = SETTINGS,
) -> None:
    async def main() -> None:
        async with _room(db_url, lambda: now, settings) as room:
            await body(room)

    asyncio.run(main())


@pytest.fixture
def setup(db: Database) -> Database:
    """The election's stations, a clerk of each commission, an engineer and an observer."""
    load(db, D)
    operator(db, "tik-a", "clerk-a")
    operator(db, "tik-b", "clerk-b")
    account(db, "cec_engineer", "engineer")
    account(db, "observer", "watcher")
    account(db, "admin", "root")
    return db


def _protocol_form(
    station: str, overrides: dict[str, str] | None = None, *, scan: bytes | None = PDF
) -> FormData:
    form = FormData()
    for k, v in {**form_of(protocol(D, station)), **(overrides or {})}.items():
        form.add_field(k, v)
    form.add_field("base_version", "0")
    if scan is not None:
        form.add_field("scan", scan, filename="protocol.pdf", content_type="application/pdf")
    return form


# --- signing in ------------------------------------------------------------------------------
def test_an_anonymous_visitor_is_sent_to_sign_in(db_url: str, setup: Database) -> None:
    async def body(room: Room) -> None:
        for path in ("/", "/manual/s/uik-101", "/reconciliation", "/accounts", "/nowhere"):
            status, _, r = await room.get(path)
            assert status == 303 and r.headers["Location"].startswith("/signin?next=")
        status, _, r = await room.post("/manual/s/uik-101", _protocol_form(S101), csrf=False)
        assert status == 303 and r.headers["Location"].startswith("/signin")

    run(db_url, body)
    assert setup.query("SELECT * FROM manual_protocols") == []


def test_signing_in_sets_a_secure_httponly_strict_cookie_and_returns_to_the_page(
    db_url: str, setup: Database
) -> None:
    async def body(room: Room) -> None:
        _, text, _ = await room.get("/signin?next=%2Freconciliation")
        (pre,) = CSRF_RE.findall(text)
        r = await room.client.post(
            "/signin",
            data={
                "csrf": pre,
                "username": "engineer",
                "password": PASSWORD,
                "next": "/reconciliation",
            },
            allow_redirects=False,
        )
        assert r.status == 303 and r.headers["Location"] == "/reconciliation"
        cookie = next(
            c for c in r.headers.getall("Set-Cookie") if c.startswith("__Host-shailoo_session=")
        )
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
        assert "Path=/" in cookie
        status, page, _ = await room.get("/reconciliation")
        assert status == 200 and "engineer" in page

    run(db_url, body)


def test_a_wrong_password_is_refused_and_repeated_failures_lock_with_a_message(
    db_url: str, setup: Database
) -> None:
    async def body(room: Room) -> None:
        r = await room.sign_in("engineer", "wrong password")
        assert r.status == 401
        assert "Колдонуучунун аты же сырсөз туура эмес" in await r.text()
        for _ in range(MAX_FAILURES - 1):
            r = await room.sign_in("engineer", "wrong password")
        text = await r.text()
        assert r.status == 401 and "Кирүү саат 21:45 чейин жабык" in text
        r = await room.sign_in("engineer")  # the right password, but locked
        assert r.status == 401
        assert (await room.get("/"))[0] == 303

    run(db_url, body)


def test_sign_in_without_its_form_token_is_refused(db_url: str, setup: Database) -> None:
    async def body(room: Room) -> None:
        r = await room.client.post(
            "/signin", data={"username": "engineer", "password": PASSWORD}, allow_redirects=False
        )
        assert r.status == 403
        assert (await room.get("/"))[0] == 303

    run(db_url, body)


def test_signing_out_ends_the_session(db_url: str, setup: Database) -> None:
    async def body(room: Room) -> None:
        await room.sign_in("watcher")
        assert (await room.get("/"))[0] == 200
        status, _, r = await room.post("/signout", {})
        assert status == 303 and r.headers["Location"] == "/signin"
        expired = next(
            c for c in r.headers.getall("Set-Cookie") if c.startswith("__Host-shailoo_session=")
        )
        assert "Max-Age=0" in expired and "Secure" in expired  # a browser really drops it
        assert (await room.get("/"))[0] == 303

    run(db_url, body)
    assert setup.query("SELECT * FROM staff_sessions") == []


# --- the live page -------------------------------------------------------------------------------
def _report(db: Database) -> None:
    """What the ingest would have recorded: 101 open (with telemetry), 102 delivered."""
    with db.transaction() as tx:
        tx.execute(
            "UPDATE stations SET state = 'open', last_heartbeat_at = ?, battery_percent = 87, "
            "on_mains = 0, signal_dbm = -71, outbox_pending = 2 WHERE station_id = 'uik-101'",
            ("2026-11-29T14:05:09+00:00",),
        )
        tx.execute("UPDATE stations SET state = 'delivered' WHERE station_id = 'uik-102'")


def _section(page: str, state: str) -> str:
    start = page.index(f'id="state-{state}"')
    end = page.find("</details>", start)
    return page[start:end]


def test_the_live_page_lists_stations_by_state_with_their_last_telemetry(
    db_url: str, setup: Database
) -> None:
    _report(setup)

    async def body(room: Room) -> None:
        await room.sign_in("engineer")
        status, page, _ = await room.get("/?lang=ru")
        assert status == 200
        assert '<meta http-equiv="refresh" content="30">' in page
        assert 'data-station="101"' in _section(page, "open")
        assert 'data-station="102"' in _section(page, "delivered")
        assert 'data-station="201"' in _section(page, "not_opened")
        assert "Не открыты: 1" in page and "Открыты: 1" in page and "Итоги получены: 1" in page
        assert "20:05:09" in page  # the heartbeat in Bishkek time
        assert "87%" in page and "-71 dBm" in page

    run(db_url, body)


def test_stations_not_delivered_by_20_15_are_listed_once_it_is_past(
    db_url: str, setup: Database
) -> None:
    _report(setup)

    async def late(room: Room) -> None:
        await room.sign_in("engineer")
        _, page, _ = await room.get("/?lang=ru")
        assert "Участки без итогов к 20:15: 2" in page
        late_part = page[page.index('class="late"') : page.index("</section>")]
        assert 'data-station="101"' in late_part and 'data-station="201"' in late_part
        assert 'data-station="102"' not in late_part

    async def early(room: Room) -> None:
        await room.sign_in("engineer")
        _, page, _ = await room.get("/?lang=ru")
        assert "Итоги ожидаются до 20:15" in page and 'class="late"' not in page

    run(db_url, late)  # T0 is 21:30 in Bishkek
    run(db_url, early, now=dt.datetime(2026, 11, 29, 13, 0, tzinfo=dt.UTC))  # 19:00


def test_open_alerts_are_shown_with_their_evidence(db_url: str, setup: Database) -> None:
    with setup.transaction() as tx:
        alerts.raise_alert(
            tx,
            kind="equivocation",
            severity="critical",
            station_id=S101,
            detail="two different messages with sequence 7",
            evidence=[{"station": S101, "seq": 7, "hash": "ab<cd>"}],
            at=T0,
        )

    async def body(room: Room) -> None:
        await room.sign_in("watcher")
        _, page, _ = await room.get("/")
        assert "two different messages with sequence 7" in page
        assert "&quot;hash&quot;: &quot;ab&lt;cd&gt;&quot;" in page  # evidence, escaped

    run(db_url, body)


def test_an_operator_sees_only_their_commission(db_url: str, setup: Database) -> None:
    async def body(room: Room) -> None:
        await room.sign_in("clerk-a")
        _, page, _ = await room.get("/")
        assert 'data-station="101"' in page and 'data-station="201"' not in page
        status, _, r = await room.get("/manual")
        assert status == 303 and r.headers["Location"] == "/manual/c/tik-a"
        assert (await room.get("/manual/c/tik-b"))[0] == 403
        assert (await room.get("/manual/s/uik-201"))[0] == 403

    run(db_url, body)


# --- manual count ------------------------------------------------------------------------------
def test_an_operator_enters_a_protocol_with_its_scan(db_url: str, setup: Database) -> None:
    async def body(room: Room) -> None:
        await room.sign_in("clerk-a")
        status, page, _ = await room.get("/manual/s/uik-101")
        assert status == 200 and 'name="list:vote:p1"' in page
        status, _, r = await room.post("/manual/s/uik-101", _protocol_form(S101))
        assert status == 303 and r.headers["Location"] == "/manual/s/uik-101?saved=1"
        _, page, _ = await room.get(r.headers["Location"] + "&lang=ru")
        assert "Протокол участка №101 сохранён (версия 1)" in page

    run(db_url, body)
    (p,) = manual.protocol_history(setup, S101)
    assert p.entered_by == "clerk-a" and p.counts == protocol(D, S101)


def test_an_operator_cannot_enter_another_commissions_station(db_url: str, setup: Database) -> None:
    async def body(room: Room) -> None:
        await room.sign_in("clerk-a")
        status, _, _ = await room.post("/manual/s/uik-201", _protocol_form(S201))
        assert status == 403
        status, page, _ = await room.get("/manual/s/uik-201?lang=ru")
        assert status == 403 and "недоступны для вашей роли" in page
        status, _, _ = await room.post("/manual/c/tik-b/csv", FormData({"reason": ""}))
        assert status == 403

    run(db_url, body)
    assert setup.query("SELECT * FROM manual_protocols") == []


def test_a_refused_form_is_shown_again_with_the_messages_and_what_was_typed(
    db_url: str, setup: Database
) -> None:
    async def body(room: Room) -> None:
        await room.sign_in("clerk-a")
        form = _protocol_form(S101, {"list:invalid": "9", "smd-1:issued": "lots"})
        status, page, _ = await room.post("/manual/s/uik-101?lang=ru", form)
        assert status == 400
        assert "Протокол не сохранён; ничего не изменено" in page
        assert "«Округ №1 — Выдано бюллетеней избирателям»: введите целое число" in page
        assert 'name="smd-1:issued" value="lots"' in page
        assert re.search(r'name="smd-1:issued" value="lots"[^>]*aria-invalid="true"', page)

    run(db_url, body)
    assert setup.query("SELECT * FROM manual_protocols") == []


def test_a_form_without_the_csrf_token_is_refused(db_url: str, setup: Database) -> None:
    async def body(room: Room) -> None:
        await room.sign_in("clerk-a")
        status, page, _ = await room.post("/manual/s/uik-101", _protocol_form(S101), csrf=False)
        assert status == 403 and "Форма эскирген" in page
        form = _protocol_form(S101)
        form.add_field("csrf", "guessed")
        status, _, _ = await room.post("/manual/s/uik-101", form, csrf=False)
        assert status == 403

    run(db_url, body)
    assert setup.query("SELECT * FROM manual_protocols") == []


def test_a_form_posted_from_another_site_is_refused(db_url: str, setup: Database) -> None:
    async def body(room: Room) -> None:
        await room.sign_in("clerk-a")
        status, _, _ = await room.post(
            "/manual/s/uik-101", _protocol_form(S101), headers={"Origin": "https://evil.example"}
        )
        assert status == 403

    run(db_url, body)
    assert setup.query("SELECT * FROM manual_protocols") == []


def test_read_only_roles_see_protocols_but_cannot_post_them(db_url: str, setup: Database) -> None:
    clerk = operator(setup, "tik-a", "clerk-a3")
    manual.save_protocol(
        setup, D, clerk, S101, protocol(D, S101), manual.Scan("application/pdf", PDF), at=T0
    )

    async def body(room: Room) -> None:
        await room.sign_in("watcher")
        status, page, _ = await room.get("/manual/s/uik-101")
        assert status == 200 and '<form method="post" action="/manual/s/' not in page
        assert '<span class="v">560</span>' in page
        status, _, _ = await room.post("/manual/s/uik-101", _protocol_form(S101))
        assert status == 403
        sha = manual.current_protocol(setup, S101).scan_sha256  # type: ignore[union-attr]
        status, _, r = await room.get(f"/manual/scan/{sha}")
        assert status == 200 and await r.read() == PDF
        assert r.headers["Content-Disposition"].startswith("attachment")

    run(db_url, body)
    assert len(manual.protocol_history(setup, S101)) == 1


def test_a_scan_of_another_commission_is_not_shown_to_an_operator(
    db_url: str, setup: Database
) -> None:
    clerk_b = operator(setup, "tik-b", "clerk-b2")
    manual.save_protocol(
        setup, D, clerk_b, S201, protocol(D, S201), manual.Scan("application/pdf", PDF), at=T0
    )
    sha = manual.current_protocol(setup, S201).scan_sha256  # type: ignore[union-attr]

    async def body(room: Room) -> None:
        await room.sign_in("clerk-a")
        assert (await room.get(f"/manual/scan/{sha}"))[0] == 403

    run(db_url, body)


def test_csv_upload_good_and_bad(db_url: str, setup: Database) -> None:
    async def body(room: Room) -> None:
        await room.sign_in("clerk-a")
        status, template, r = await room.get("/manual/c/tik-a/template.csv?lang=ru")
        assert status == 200 and r.headers["Content-Type"].startswith("text/csv")
        rows = [line.split(";") for line in template.lstrip("\ufeff").splitlines()]
        values = form_of(protocol(D, S101))
        filled = [rows[0]] + [[*r[:5], values[_field_of(r)]] for r in rows[1:] if r[0] == "101"]
        good = "\r\n".join(";".join(r) for r in filled).encode("utf-8-sig")
        bad_rows = [[*r[:5], "x"] if r[1:3] == ["list", "issued"] else r for r in filled]
        bad = "\r\n".join(";".join(r) for r in bad_rows).encode("utf-8-sig")

        form = FormData()
        form.add_field("csv", bad, filename="tik-a.csv", content_type="text/csv")
        form.add_field("scans", PDF, filename="101.pdf", content_type="application/pdf")
        status, page, _ = await room.post("/manual/c/tik-a/csv?lang=ru", form)
        assert status == 400 and "Файл не принят" in page and "Строка 3, участок №101" in page

        form = FormData()
        form.add_field("csv", good, filename="tik-a.csv", content_type="text/csv")
        form.add_field("scans", PDF, filename="101.pdf", content_type="application/pdf")
        status, page, _ = await room.post("/manual/c/tik-a/csv?lang=ru", form)
        assert status == 200 and "Протокол участка №101 сохранён (версия 1)" in page

    run(db_url, body)
    assert [p.version for p in manual.protocol_history(setup, S101)] == [1]


def _field_of(row: list[str]) -> str:
    _, contest, line, key = row[:4]
    kind = {"votes": "vote", "preference": "pref"}.get(line)
    return f"{contest}:{kind}:{key}" if kind else f"{contest}:{line}"


def test_the_reconciliation_page_lists_entered_protocols(db_url: str, setup: Database) -> None:
    clerk = operator(setup, "tik-a", "clerk-a4")
    manual.save_protocol(
        setup, D, clerk, S101, protocol(D, S101), manual.Scan("application/pdf", PDF), at=T0
    )

    async def body(room: Room) -> None:
        await room.sign_in("engineer")
        status, page, _ = await room.get("/reconciliation?lang=ru")
        assert status == 200 and 'data-station="101"' in page and "нет итога АСУ" in page

    run(db_url, body)


# --- accounts and errors -------------------------------------------------------------------------
def test_only_an_admin_manages_accounts(db_url: str, setup: Database) -> None:
    async def body(room: Room) -> None:
        await room.sign_in("engineer")
        assert (await room.get("/accounts"))[0] == 403
        status, _, _ = await room.post(
            "/accounts", {"username": "x-user", "role": "admin", "password": PASSWORD * 2}
        )
        assert status == 403

    async def admin(room: Room) -> None:
        await room.sign_in("root")
        status, page, _ = await room.post(
            "/accounts",
            {
                "username": "clerk-new",
                "role": "commission_operator",
                "commission_id": "tik-b",
                "password": "a long enough password",
            },
        )
        assert status == 200 and "clerk-new" in page
        status, page, _ = await room.post(
            "/accounts", {"username": "nobody", "role": "commission_operator", "password": "short"}
        )
        assert status == 400 and "at least" in page

    run(db_url, body)
    run(db_url, admin)
    names = {r["username"] for r in setup.query("SELECT username FROM staff_accounts")}
    assert "clerk-new" in names and "x-user" not in names and "nobody" not in names


def test_an_unexpected_error_shows_a_short_page_and_no_traceback(
    db_url: str, setup: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(serverroom, "live_data", broken)

    async def body(room: Room) -> None:
        await room.sign_in("engineer")
        status, page, _ = await room.get("/")
        assert status == 500
        assert "Серверде ката кетти" in page
        assert "secret internal detail" not in page and "Traceback" not in page

    run(db_url, body)


def test_the_language_switch_is_remembered(db_url: str, setup: Database) -> None:
    async def body(room: Room) -> None:
        await room.sign_in("engineer")
        _, page, _ = await room.get("/?lang=ru")
        assert "Состояние избирательных участков" in page
        _, page, _ = await room.get("/")
        assert "Состояние избирательных участков" in page
        _, page, _ = await room.get("/?lang=ky")
        assert "Шайлоо участокторунун абалы" in page

    run(db_url, body)
