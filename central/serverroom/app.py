"""The CEC server room's web app (aiohttp): sign-in, the live page, manual counts, reconciliation.

Pages are rendered on the server (`pages.py`) in Kyrgyz or Russian (`?lang=` sets a
cookie) and are plain HTML forms: nothing needs JavaScript, the live pages refresh
themselves.  Only signed-in staff see anything: an anonymous request is sent to the
sign-in page.  What each role may do is in `central.accounts`; a commission operator
sees only their own commission.

Security: the session cookie is HttpOnly, SameSite=Strict and Secure (the server room
is served over TLS; `Settings.secure_cookies=False` only for a plain-HTTP laboratory);
every POST carries the session's CSRF token (the sign-in form a cookie-bound one) and is
refused from another origin; a refused form is shown again with every message and
changes nothing; an unexpected error shows a short page in both languages and goes
to the log, never a stack trace to the browser.

Every database call runs in the app's small thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from multidict import MultiDictProxy

from central import accounts, manual, reconcile
from central.accounts import Account, AccountError, Permission, Session
from central.db import Database, open_database
from central.manual import Problem, ProtocolRefused, Scan
from central.reconcile import Thresholds
from central.serverroom import pages
from central.serverroom.pages import AccountsData, Ctx, LiveData, StationRow
from central.serverroom.texts import LANGS, Lang, say
from election.definition import ElectionDefinition, Station

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
LANG_COOKIE = "shailoo_lang"
DEFAULT_LANG: Lang = "ky"
PUBLIC_PATHS = ("/signin", "/static/")

Clock = Callable[[], dt.datetime]
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """What the CEC may tune without a code change."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    delivery_deadline: str = "20:15"  # local time by which every station should have reported
    refresh_seconds: int = 30  # live pages reload themselves this often
    secure_cookies: bool = True  # False only for plain HTTP in a laboratory
    session_lifetime: dt.timedelta = accounts.SESSION_LIFETIME
    max_scan_bytes: int = manual.MAX_SCAN_BYTES
    max_upload_bytes: int = 200 * 1024 * 1024  # a CSV with a commission's scans
    reconcile_seconds: float = 60.0  # re-check manual vs ASU this often; 0 = never
    alerts_shown: int = 200

    def __post_init__(self) -> None:
        try:
            hh, mm = (int(x) for x in self.delivery_deadline.split(":"))
            dt.time(hh, mm)
        except ValueError:
            raise ValueError(
                f"delivery_deadline must be HH:MM, not {self.delivery_deadline!r}"
            ) from None
        if self.refresh_seconds < 1 or self.max_scan_bytes < 1 or self.alerts_shown < 1:
            raise ValueError("refresh_seconds, max_scan_bytes and alerts_shown must be positive")

    @property
    def session_cookie(self) -> str:
        # "__Host-" makes the browser refuse the cookie unless Secure, path / and no domain.
        return "__Host-shailoo_session" if self.secure_cookies else "shailoo_session"

    @property
    def pre_cookie(self) -> str:
        return "__Host-shailoo_signin" if self.secure_cookies else "shailoo_signin"


@dataclass
class _State:
    db_url: str
    definition: ElectionDefinition
    clock: Clock
    settings: Settings
    executor: ThreadPoolExecutor
    db: Database | None = None
    ticker: asyncio.Task[None] | None = None


STATE: web.AppKey[_State] = web.AppKey("state", _State)
SESSION: web.RequestKey[Session | None] = web.RequestKey("session")
POSTED_NEXT: web.RequestKey[str] = web.RequestKey("posted_next", str)


class _Refused(Exception):
    """Stop a request with a short page in both languages (403 forbidden, 404, CSRF...)."""

    def __init__(self, status: int, key: str, **values: object) -> None:
        super().__init__(key)
        self.status, self.key, self.values = status, key, values


def make_app(
    db_url: str,
    definition: ElectionDefinition,
    *,
    clock: Clock,
    settings: Settings | None = None,
) -> web.Application:
    """The server-room app over the central database at `db_url` (opened at start-up)."""
    settings = settings or Settings()
    app = web.Application(
        middlewares=[_errors, _same_origin, _authenticate],
        client_max_size=settings.max_upload_bytes,
    )
    app[STATE] = _State(
        db_url,
        definition,
        clock,
        settings,
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="serverroom"),
    )
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    app.on_response_prepare.append(_headers)
    r = app.router
    r.add_get("/signin", signin_page)
    r.add_post("/signin", signin_post)
    r.add_post("/signout", signout_post)
    r.add_get("/", live_page)
    r.add_get("/manual", manual_index)
    r.add_get("/manual/c/{commission}", commission_page)
    r.add_get("/manual/c/{commission}/template.csv", commission_template)
    r.add_post("/manual/c/{commission}/csv", commission_csv)
    r.add_get("/manual/s/{station}", station_page)
    r.add_post("/manual/s/{station}", station_post)
    r.add_get("/manual/scan/{sha256}", scan_file)
    r.add_get("/reconciliation", reconciliation_page)
    r.add_get("/accounts", accounts_page)
    r.add_post("/accounts", accounts_create)
    r.add_post("/accounts/{username}/{action}", accounts_action)
    r.add_static("/static/", STATIC_DIR)
    return app


async def _start(app: web.Application) -> None:
    state = app[STATE]
    loop = asyncio.get_running_loop()
    state.db = await loop.run_in_executor(state.executor, open_database, state.db_url)
    if state.settings.reconcile_seconds > 0:
        state.ticker = asyncio.create_task(_reconcile_ticker(state))


async def _stop(app: web.Application) -> None:
    state = app[STATE]
    if state.ticker is not None:
        state.ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await state.ticker
    if state.db is not None:
        state.db.close()
    state.executor.shutdown(wait=True)


async def _reconcile_ticker(state: _State) -> None:
    """Re-compare manual counts with ASU counts that may have arrived since they were entered."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(state.settings.reconcile_seconds)
        try:
            await loop.run_in_executor(
                state.executor,
                lambda: reconcile.reconcile_all(
                    _db(state), state.definition, state.settings.thresholds, state.clock()
                ),
            )
        except Exception:  # the timer must keep running; the failure is in the log
            log.exception("reconciliation run failed")


def _db(state: _State) -> Database:
    if state.db is None:
        raise RuntimeError("the database is not open yet")
    return state.db


async def _run(request: web.Request, fn: Callable[[], T]) -> T:
    state = request.app[STATE]
    return await asyncio.get_running_loop().run_in_executor(state.executor, fn)


# --- middlewares -----------------------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a short page in the reader's language; tracebacks go to the log."""
    try:
        return await handler(request)
    except _Refused as r:
        return _html(request, pages.error_page(_ctx(request), r.key, **r.values), r.status)
    except web.HTTPRequestEntityTooLarge:
        max_mb = request.app[STATE].settings.max_upload_bytes // (1024 * 1024)
        return _html(request, pages.error_page(_ctx(request), "upload_too_large", max=max_mb), 413)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        key = {404: "not_found", 403: "forbidden", 405: "not_found"}.get(exc.status)
        if key is None:
            raise
        return _html(request, pages.error_page(_ctx(request), key), exc.status)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return _html(request, pages.error_page(_ctx(request), "internal_error"), 500)


@web.middleware
async def _same_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a form posted by a page of another site (on top of SameSite and CSRF)."""
    origin = request.headers.get("Origin") or "null"
    if request.method == "POST" and origin != "null" and origin.split("://", 1)[-1] != request.host:
        raise _Refused(403, "csrf_failed")
    return await handler(request)


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Find the session; anyone without one is sent to sign in (except to the sign-in page)."""
    state = request.app[STATE]
    token = request.cookies.get(state.settings.session_cookie)
    session = None
    if token:
        session = await _run(
            request, lambda: accounts.session_for(_db(state), token, at=_now(state))
        )
    request[SESSION] = session
    if session is None and not request.path.startswith(PUBLIC_PATHS):
        target = request.path_qs if request.method == "GET" else "/"
        raise web.HTTPSeeOther(f"/signin?next={quote(target, safe='')}")
    response = await handler(request)
    lang, set_cookie = _request_lang(request)
    if set_cookie and not response.prepared:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=10 * 365 * 24 * 3600, samesite="Strict", httponly=True
        )
    return response


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    )


# --- helpers ---------------------------------------------------------------------------------
def _now(state: _State) -> dt.datetime:
    now = state.clock()
    if now.tzinfo is None:
        raise ValueError("the clock must give timezone-aware times")
    return now


def _request_lang(request: web.Request) -> tuple[Lang, bool]:
    """The language asked for (query beats cookie), and whether the cookie must be set."""
    asked = request.query.get("lang")
    for lang in LANGS:
        if asked == lang:
            return lang, request.cookies.get(LANG_COOKIE) != lang
    cookie = request.cookies.get(LANG_COOKIE)
    for lang in LANGS:
        if cookie == lang:
            return lang, False
    return DEFAULT_LANG, False


def _session(request: web.Request) -> Session | None:
    return request.get(SESSION)


def _account(request: web.Request) -> Account:
    session = _session(request)
    if session is None:  # _authenticate lets no anonymous request this far
        raise _Refused(403, "forbidden")
    return session.account


def _ctx(request: web.Request) -> Ctx:
    state = request.app[STATE]
    session = _session(request)
    return Ctx(
        lang=_request_lang(request)[0],
        definition=state.definition,
        now=state.clock(),
        path=request.path,
        account=session.account if session else None,
        csrf=session.csrf_token if session else "",
    )


def _html(request: web.Request, text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _require(request: web.Request, permission: Permission) -> Account:
    account = _account(request)
    if not account.can(permission):
        raise _Refused(403, "forbidden")
    return account


async def _form(request: web.Request) -> MultiDictProxy[Any]:
    """The posted form, after checking the session's CSRF token."""
    data = await request.post()
    session = _session(request)
    posted = data.get("csrf")
    if session is None or not accounts.csrf_ok(
        session, posted if isinstance(posted, str) else None
    ):
        raise _Refused(403, "csrf_failed")
    return data


def _text(data: MultiDictProxy[Any], name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


def _file(data: MultiDictProxy[Any], name: str) -> list[tuple[str, bytes]]:
    """The uploaded files of a field (an empty file input posts a nameless empty part)."""
    out = []
    for value in data.getall(name, []):
        if isinstance(value, web.FileField) and value.filename:
            out.append((value.filename, value.file.read()))
    return out


def _station_or_404(request: web.Request) -> Station:
    try:
        return request.app[STATE].definition.station(request.match_info["station"])
    except KeyError:
        raise _Refused(404, "not_found") from None


def _commission_or_404(request: web.Request) -> str:
    cid = request.match_info["commission"]
    try:
        request.app[STATE].definition.commission(cid)
    except KeyError:
        raise _Refused(404, "not_found") from None
    return cid


def _sees(account: Account, commission_id: str) -> None:
    if not account.can(Permission.VIEW) or not account.sees_commission(commission_id):
        raise _Refused(403, "forbidden")


def _enters(account: Account, commission_id: str) -> bool:
    return account.can(Permission.ENTER_MANUAL) and account.commission_id == commission_id


def _safe_next(path: str) -> str:
    """Only a path on this site (no //host, no scheme) may follow the sign-in."""
    if path.startswith("/") and not path.startswith(("//", "/\\")) and "\n" not in path:
        return path
    return "/"


def _redirect(location: str) -> NoReturn:
    raise web.HTTPSeeOther(location)


def _see_other(location: str) -> web.Response:
    """A redirect that can carry cookies (a returned, not raised, response)."""
    return web.Response(status=303, headers={"Location": location})


def _set_cookie(
    response: web.StreamResponse, settings: Settings, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=settings.secure_cookies,
    )


def _del_cookie(response: web.StreamResponse, settings: Settings, name: str) -> None:
    # a "__Host-" cookie is only replaced (here: expired) by one with the same attributes
    response.del_cookie(
        name, path="/", secure=settings.secure_cookies, httponly=True, samesite="Strict"
    )


# --- sign-in ---------------------------------------------------------------------------------
async def signin_page(request: web.Request) -> web.StreamResponse:
    if _session(request) is not None:
        _redirect("/")
    return _signin(request, error="", username="", status=200)


def _signin(request: web.Request, *, error: str, username: str, status: int) -> web.Response:
    settings = request.app[STATE].settings
    pre = secrets.token_urlsafe(24)
    next_path = _safe_next(request.query.get("next", "") or _posted_next(request))
    text = pages.signin_page(
        _ctx(request), error=error, username=username, pre_token=pre, next_path=next_path
    )
    response = _html(request, text, status)
    _set_cookie(response, settings, settings.pre_cookie, pre, 3600)
    return response


def _posted_next(request: web.Request) -> str:
    return request.get(POSTED_NEXT, "/")


async def signin_post(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    data = await request.post()
    username, password = _text(data, "username")[:64], _text(data, "password")[:256]
    request[POSTED_NEXT] = _text(data, "next")
    lang = _request_lang(request)[0]
    pre = request.cookies.get(state.settings.pre_cookie, "")
    if not pre or not secrets.compare_digest(pre.encode(), _text(data, "csrf").encode()):
        return _signin(request, error=say("csrf_failed", lang), username=username, status=403)
    outcome = await _run(
        request,
        lambda: accounts.sign_in(
            _db(state), username, password, at=_now(state), lifetime=state.settings.session_lifetime
        ),
    )
    if outcome.session is None or outcome.token is None:
        if outcome.refused == "locked" and outcome.locked_until is not None:
            until = outcome.locked_until.astimezone(ZoneInfo(state.definition.timezone))
            error = say("locked", lang, time=until.strftime("%H:%M"))
        else:
            error = say("bad_credentials", lang)
        return _signin(request, error=error, username=username, status=401)
    response = _see_other(_safe_next(_text(data, "next")))
    lifetime = int(state.settings.session_lifetime.total_seconds())
    _set_cookie(response, state.settings, state.settings.session_cookie, outcome.token, lifetime)
    _del_cookie(response, state.settings, state.settings.pre_cookie)
    return response


async def signout_post(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    await _form(request)
    token = request.cookies.get(state.settings.session_cookie)
    await _run(request, lambda: accounts.sign_out(_db(state), token, at=_now(state)))
    response = _see_other("/signin")
    _del_cookie(response, state.settings, state.settings.session_cookie)
    return response


# --- live page -------------------------------------------------------------------------------
def _deadline(state: _State) -> dt.datetime:
    hh, mm = (int(x) for x in state.settings.delivery_deadline.split(":"))
    tz = ZoneInfo(state.definition.timezone)
    return dt.datetime.combine(state.definition.date, dt.time(hh, mm), tzinfo=tz)


def live_data(
    db: Database, definition: ElectionDefinition, account: Account, *, alerts_shown: int
) -> tuple[list[StationRow], list[dict[str, Any]], int]:
    """Each station the account sees with its last reported state, and the open alerts."""
    seen = {s.id: s for s in definition.stations if account.sees_commission(s.commission_id)}
    reported = {str(r["station_id"]): r for r in db.query("SELECT * FROM stations")}
    rows = []
    for s in sorted(seen.values(), key=lambda s: s.number):
        r = reported.get(s.id) or {}
        rows.append(
            StationRow(
                station=s,
                state=str(r.get("state") or "not_opened"),
                last_heartbeat_at=r.get("last_heartbeat_at"),
                battery_percent=r.get("battery_percent"),
                on_mains=r.get("on_mains"),
                signal_dbm=r.get("signal_dbm"),
                outbox_pending=r.get("outbox_pending"),
            )
        )
    alerts = [
        a
        for a in db.query(
            "SELECT * FROM alerts WHERE resolved_at IS NULL ORDER BY raised_at DESC, id DESC"
        )
        if account.commission_id is None or str(a.get("station_id") or "") in seen
    ]
    return rows, alerts[:alerts_shown], len(alerts)


async def live_page(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    account = _require(request, Permission.VIEW)
    rows, alerts, total = await _run(
        request,
        lambda: live_data(
            _db(state), state.definition, account, alerts_shown=state.settings.alerts_shown
        ),
    )
    data = LiveData(rows, alerts, total, _deadline(state), state.settings.refresh_seconds)
    return _html(request, pages.live_page(_ctx(request), data))


# --- manual count ----------------------------------------------------------------------------
async def manual_index(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    account = _require(request, Permission.VIEW)
    if account.commission_id is not None:
        _redirect(f"/manual/c/{quote(account.commission_id)}")
    current = await _run(request, lambda: manual.current_protocols(_db(state)))
    rows = []
    for c in state.definition.commissions:
        ids = [s.id for s in state.definition.stations if s.commission_id == c.id]
        rows.append((c.id, len(ids), sum(i in current for i in ids)))
    return _html(request, pages.commissions_page(_ctx(request), rows))


async def commission_page(request: web.Request) -> web.StreamResponse:
    return await _commission(request, problems=(), notice="", status=200)


async def _commission(
    request: web.Request,
    *,
    problems: tuple[Problem, ...] | list[Problem],
    notice: str,
    status: int,
) -> web.Response:
    state = request.app[STATE]
    account = _account(request)
    cid = _commission_or_404(request)
    _sees(account, cid)

    def load() -> tuple[
        dict[str, manual.StoredProtocol], dict[str, list[reconcile.Reconciliation]]
    ]:
        db = _db(state)
        current = manual.current_protocols(db)
        recon: dict[str, list[reconcile.Reconciliation]] = {}
        for r in reconcile.listing(db, state.definition, commission_id=cid):
            recon.setdefault(r.station_id, []).append(r)
        return current, recon

    current, recon = await _run(request, load)
    text = pages.commission_page(
        _ctx(request),
        cid,
        current,
        recon,
        can_enter=_enters(account, cid),
        problems=problems,
        notice=notice,
    )
    return _html(request, text, status)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f}"


async def commission_template(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    account = _account(request)
    cid = _commission_or_404(request)
    _sees(account, cid)
    lang = _request_lang(request)[0]
    current = await _run(request, lambda: _current_full(state, cid))
    body = manual.csv_template(state.definition, cid, lang, current)
    return web.Response(
        body=body,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="manual-count-{cid}.csv"'},
    )


def _current_full(state: _State, cid: str) -> dict[str, manual.StoredProtocol]:
    db = _db(state)
    out = {}
    for s in state.definition.stations:
        if s.commission_id == cid:
            p = manual.current_protocol(db, s.id)
            if p is not None:
                out[s.id] = p
    return out


async def commission_csv(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    account = _account(request)
    cid = _commission_or_404(request)
    if not _enters(account, cid):
        raise _Refused(403, "forbidden")
    data = await _form(request)
    files = _file(data, "csv")
    scans = dict(_file(data, "scans"))
    reason = _text(data, "reason")
    if not files:
        return await _commission(
            request, problems=[Problem("csv_missing", "csv")], notice="", status=400
        )
    try:
        saved = await _run(
            request,
            lambda: manual.save_csv(
                _db(state),
                state.definition,
                account,
                files[0][1],
                scans,
                reason=reason,
                at=_now(state),
                thresholds=state.settings.thresholds,
                max_scan_bytes=state.settings.max_scan_bytes,
            ),
        )
    except ProtocolRefused as e:
        return await _commission(request, problems=e.problems, notice="", status=400)
    lang = _request_lang(request)[0]
    notice = " ".join(
        say("saved" if s.changed else "unchanged", lang, number=s.number, version=s.version)
        for s in saved
    )
    return await _commission(request, problems=(), notice=notice, status=200)


async def station_page(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    account = _account(request)
    station = _station_or_404(request)
    _sees(account, station.commission_id)
    history = await _run(request, lambda: manual.protocol_history(_db(state), station.id))
    current = next((p for p in history if p.current), None)
    asked = request.query.get("version")
    shown = current
    can_enter = _enters(account, station.commission_id)
    if asked is not None:
        shown = next((p for p in history if str(p.version) == asked), None)
        if shown is None:
            raise _Refused(404, "not_found")
        can_enter = can_enter and shown.current
    notice = ""
    saved = request.query.get("saved")
    if saved and saved.isdigit():
        notice = say("saved", _request_lang(request)[0], number=station.number, version=saved)
    values = _values_of(state.definition, station, shown)
    text = pages.station_page(
        _ctx(request),
        station,
        can_enter=can_enter,
        values=values,
        notice=notice,
        history=history,
        shown=shown,
        base_version=current.version if current else 0,
        max_scan_mb=_mb(state.settings.max_scan_bytes),
    )
    return _html(request, text)


def _values_of(
    definition: ElectionDefinition, station: Station, protocol: manual.StoredProtocol | None
) -> dict[str, str]:
    if protocol is None:
        return {}
    out = {}
    for c in definition.contests_for_station(station.id):
        count = protocol.counts.get(c.id)
        for f in manual.form_fields_of(c):
            v = count.value(f) if count else None
            if v is not None:
                out[f] = str(v)
    return out


async def station_post(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    account = _account(request)
    station = _station_or_404(request)
    _sees(account, station.commission_id)
    if not _enters(account, station.commission_id):
        raise _Refused(403, "forbidden")
    data = await _form(request)
    fields = {k: v for k, v in data.items() if isinstance(v, str) and ":" in k}
    reason = _text(data, "reason")
    base = _text(data, "base_version")
    base_version = int(base) if base.isdigit() else None
    problems: list[Problem] = []
    counts: dict[str, manual.ContestCount] = {}
    try:
        counts = manual.counts_from_form(state.definition, station.id, fields)
    except ProtocolRefused as e:
        problems += e.problems
    scan: Scan | None = None
    uploaded = _file(data, "scan")
    if uploaded:
        name, blob = uploaded[0]
        try:
            scan = manual.read_scan(blob, name, max_bytes=state.settings.max_scan_bytes)
        except ProtocolRefused as e:
            problems += e.problems
    if not problems:
        try:
            saved = await _run(
                request,
                lambda: manual.save_protocol(
                    _db(state),
                    state.definition,
                    account,
                    station.id,
                    counts,
                    scan,
                    reason=reason,
                    at=_now(state),
                    base_version=base_version,
                    thresholds=state.settings.thresholds,
                ),
            )
        except ProtocolRefused as e:
            problems += e.problems
        else:
            _redirect(f"/manual/s/{quote(station.id)}?saved={saved.version}")
    history = await _run(request, lambda: manual.protocol_history(_db(state), station.id))
    text = pages.station_page(
        _ctx(request),
        station,
        can_enter=True,
        values=fields,
        problems=problems,
        history=history,
        base_version=base_version or 0,
        reason=reason,
        max_scan_mb=_mb(state.settings.max_scan_bytes),
    )
    return _html(request, text, 400)


async def scan_file(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    account = _require(request, Permission.VIEW)
    sha = request.match_info["sha256"]

    def load() -> tuple[Scan | None, list[str]]:
        db = _db(state)
        stations = [
            str(r["station_id"])
            for r in db.query(
                "SELECT DISTINCT station_id FROM manual_protocols WHERE scan_sha256 = ?", (sha,)
            )
        ]
        return manual.get_scan(db, sha), stations

    scan, stations = await _run(request, load)
    if scan is None:
        raise _Refused(404, "not_found")
    if account.commission_id is not None and not any(
        state.definition.station(s).commission_id == account.commission_id
        for s in stations
        if s in {x.id for x in state.definition.stations}
    ):
        raise _Refused(403, "forbidden")
    inline = scan.media_type != "application/pdf"
    disposition = "inline" if inline else "attachment"
    return web.Response(
        body=scan.data,
        content_type=scan.media_type,
        headers={
            "Content-Disposition": f'{disposition}; filename="protocol-{sha[:12]}.'
            f'{scan.extension}"',
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


# --- reconciliation --------------------------------------------------------------------------
async def reconciliation_page(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    account = _require(request, Permission.VIEW)
    rows = await _run(
        request,
        lambda: reconcile.listing(
            _db(state), state.definition, commission_id=account.commission_id
        ),
    )
    text = pages.reconcile_page(
        _ctx(request), rows, state.settings.thresholds, refresh=state.settings.refresh_seconds
    )
    return _html(request, text)


# --- accounts (admin) ------------------------------------------------------------------------
async def accounts_page(request: web.Request) -> web.StreamResponse:
    _require(request, Permission.MANAGE_ACCOUNTS)
    return await _accounts(request, AccountsData(()), 200)


async def _accounts(request: web.Request, data: AccountsData, status: int) -> web.Response:
    state = request.app[STATE]
    rows = await _run(request, lambda: accounts.list_accounts(_db(state)))
    data = AccountsData(rows, data.message, data.refused, data.form)
    return _html(request, pages.accounts_page(_ctx(request), data), status)


async def accounts_create(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    admin = _require(request, Permission.MANAGE_ACCOUNTS)
    data = await _form(request)
    form = {k: _text(data, k) for k in ("username", "role", "commission_id")}
    try:
        created = await _run(
            request,
            lambda: accounts.create_account(
                _db(state),
                form["username"].strip(),
                form["role"],
                form["commission_id"] or None,
                _text(data, "password"),
                definition=state.definition,
                at=_now(state),
                by=admin.username,
            ),
        )
    except AccountError as e:
        return await _accounts(request, AccountsData((), str(e), True, form), 400)
    return await _accounts(request, AccountsData((), created.username), 200)


async def accounts_action(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    admin = _require(request, Permission.MANAGE_ACCOUNTS)
    await _form(request)
    username, action = request.match_info["username"], request.match_info["action"]
    at = _now(state)
    db = _db(state)
    calls: dict[str, Callable[[], None]] = {
        "unlock": lambda: accounts.unlock(db, username, at=at, by=admin.username),
        "disable": lambda: accounts.set_disabled(db, username, True, at=at, by=admin.username),
        "enable": lambda: accounts.set_disabled(db, username, False, at=at, by=admin.username),
    }
    call = calls.get(action)
    if call is None:
        raise _Refused(404, "not_found")
    if action == "disable" and username == admin.username:
        return await _accounts(
            request, AccountsData((), "an admin cannot disable their own account", True), 400
        )
    try:
        await _run(request, call)
    except AccountError as e:
        return await _accounts(request, AccountsData((), str(e), True), 400)
    return await _accounts(request, AccountsData((), username), 200)
