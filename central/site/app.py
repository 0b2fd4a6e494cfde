"""The public results site and open data API (aiohttp): `make_site`.

It shows what is published (central.results.latest_published) and, per station,
what that station signed; it never recomputes a result.  A background task
watches the `published` table; each new version is parsed once into a
`Snapshot`, and every page is rendered once per (version, language) and its
bytes cached with a strong ETag (gzip too), so election-night load is served
from memory and a CDN in front can revalidate with If-None-Match (304).  A
station page is also keyed by its evidence (evidence.evidence_key), since a
station's messages and protocol can change between versions.  Each new version
is pushed to browsers as a server-sent event (/api/v1/events); a small script
swaps the page's <main> without a reload, and every page works without it.

Bad input (an unknown station or language, a malformed or oversized upload)
gets a short page in the reader's language (JSON under /api/) with a 4xx
status; an unexpected error a 500 page and the log, never a stack trace.
Every database call and every render runs in a thread pool, never on the event
loop.  Routes and caching: docs/site.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import hashlib
import json
import logging
import shutil
import tarfile
import tempfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from cryptography import x509

from central import results
from central.db import Database, open_database
from central.kit import CentralKit
from central.site import evidence, opendata, pages, views
from central.site.check import CheckRefused, Upload, check_texts, pasted_parts, read_uploads
from central.site.model import NATION, Geo, Key, Snapshot
from central.site.openapi import openapi_document
from central.site.texts import LANGS, Lang, say
from crypto.certs import cert_from_pem
from election import bundle as B
from election.definition import ElectionDefinition, Names

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
DEFAULT_LANG: Lang = "ky"
IMMUTABLE = "public, max-age=31536000, immutable"
NO_STORE = "no-store"
UNIT_LEVELS = ("region", "district", "commission", "station")
OLD_VERSIONS_KEPT = 3

Clock = Callable[[], dt.datetime]
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """What the CEC may tune without a code change."""

    poll_seconds: float = 1.0  # how often to look for a new published version
    max_age: int = 5  # Cache-Control max-age of pages and data that change per version
    stale_while_revalidate: int = 10
    cache_bytes: int = 256 * 1024 * 1024  # rendered pages kept in memory, in all
    max_upload_bytes: int = 20 * 1024 * 1024  # one "check a report" post, photos included
    max_photos: int = 8
    max_photo_pixels: int = 40_000_000
    max_text_chars: int = 200_000
    check_concurrency: int = 2  # image decoding is CPU-heavy: at most this many at once
    check_wait_seconds: float = 20.0  # a check waiting longer for its turn gets 503
    sse_keepalive_seconds: float = 15.0
    max_sse_clients: int = 10_000
    render_threads: int = 2
    evidence_seconds: float = 1.0  # a station page may be this much behind its evidence
    record_kit: CentralKit | None = None  # needed to offer the election record (signs it)
    cache_dir: Path | None = None  # where the record archives go (default: a temp dir)

    def __post_init__(self) -> None:
        if self.poll_seconds <= 0 or self.max_age < 0 or self.cache_bytes < 1:
            raise ValueError("poll_seconds and cache_bytes must be positive, max_age >= 0")
        if self.max_upload_bytes < 1 or self.max_photos < 1 or self.check_concurrency < 1:
            raise ValueError("upload limits and check_concurrency must be positive")

    @property
    def live_cache(self) -> str:
        return (
            f"public, max-age={self.max_age}, stale-while-revalidate={self.stale_while_revalidate}"
        )


# --- the rendered-bytes cache ------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One rendered answer: its bytes, a gzip of them, and the strong ETag of each."""

    body: bytes
    content_type: str
    etag: str
    gz: bytes | None = None
    cache_control: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls,
        body: bytes,
        content_type: str,
        *,
        cache_control: str = "",
        headers: tuple[tuple[str, str], ...] = (),
        etag: str | None = None,
    ) -> Entry:
        tag = etag or hashlib.sha256(body).hexdigest()[:32]
        gz = gzip.compress(body, 6, mtime=0) if len(body) > 1024 else None
        if gz is not None and len(gz) >= len(body):
            gz = None
        return cls(body, content_type, tag, gz, cache_control, headers)

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gz or b"")


class PageCache:
    """Rendered answers of the current version, bounded in bytes (least recently used go).

    Keys start with the version; on a new version the old entries are dropped, and a
    render that finishes for an old version is not stored.  Concurrent requests for
    one key wait for one render (single flight).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.version = -1
        self._entries: OrderedDict[tuple[Any, ...], Entry] = OrderedDict()
        self._bytes = 0
        self._inflight: dict[tuple[Any, ...], asyncio.Future[Entry]] = {}
        self.renders = 0

    @property
    def size(self) -> int:
        """Bytes held now (bodies and their gzip forms)."""
        return self._bytes

    def new_version(self, version: int) -> None:
        self.version = version
        for key in [k for k in self._entries if k[0] != version]:
            self._bytes -= self._entries.pop(key).size

    async def get(self, key: tuple[Any, ...], build: Callable[[], Awaitable[Entry]]) -> Entry:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            return found
        task = self._inflight.get(key)
        if task is None:  # its own task: a reader who leaves does not cancel the render
            task = asyncio.ensure_future(self._fill(key, build))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._inflight[key] = task
        return await asyncio.shield(task)

    async def _fill(self, key: tuple[Any, ...], build: Callable[[], Awaitable[Entry]]) -> Entry:
        try:
            entry = await build()
        finally:
            self._inflight.pop(key, None)
        self.renders += 1
        if key[0] == self.version and entry.size <= self.max_bytes:
            self._entries[key] = entry
            self._bytes += entry.size
            while self._bytes > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self._bytes -= old.size
        return entry


# --- state -------------------------------------------------------------------------------
@dataclass
class _State:
    db_url: str
    definition: ElectionDefinition
    geo: Geo
    clock: Clock
    settings: Settings
    root: x509.Certificate | None
    static: dict[str, str]
    db_pool: ThreadPoolExecutor
    render_pool: ThreadPoolExecutor
    check_pool: ThreadPoolExecutor
    record_pool: ThreadPoolExecutor
    cache: PageCache
    db: Database | None = None
    snap: Snapshot = field(default_factory=Snapshot.empty)
    subscribers: set[asyncio.Queue[bytes | None]] = field(default_factory=set)
    poller: asyncio.Task[None] | None = None
    check_sem: asyncio.Semaphore | None = None
    record_lock: asyncio.Lock | None = None
    record: tuple[int, Path] | None = None
    cache_dir: Path | None = None
    own_cache_dir: bool = False
    issuer: Names = field(default_factory=lambda: Names(ky="-", ru="-"))
    versions: OrderedDict[int, Entry] = field(default_factory=OrderedDict)  # older documents
    evidence_keys: dict[str, tuple[float, str]] = field(default_factory=dict)


STATE: web.AppKey[_State] = web.AppKey("site_state", _State)


class _Refused(Exception):
    """Stop a request with a short page (or JSON error) saying what is wrong."""

    def __init__(self, status: int, key: str, **values: object) -> None:
        super().__init__(key)
        self.status, self.key, self.values = status, key, values


class _BadLanguage(Exception):
    def __init__(self, asked: str) -> None:
        super().__init__(asked)
        self.asked = asked


def make_site(
    db_url: str,
    definition: ElectionDefinition,
    *,
    kit_dir: Path | None,
    clock: Clock,
    settings: Settings | None = None,
) -> web.Application:
    """The public site over the central database at `db_url` (opened at start-up).

    `kit_dir` (OUT/central from `provision build`) gives the CEC root certificate
    that "check a report" verifies against; without it that page says it is off.
    """
    settings = settings or Settings()
    root = None
    if kit_dir is not None:
        root = cert_from_pem((kit_dir / B.ROOT_CERT_FILE).read_bytes())
    app = web.Application(
        middlewares=[_errors],
        client_max_size=settings.max_upload_bytes,
    )
    nation = Names(
        ky=say("nation_name", "ky"), ru=say("nation_name", "ru"), en=say("nation_name", "en")
    )
    app[STATE] = _State(
        db_url=db_url,
        definition=definition,
        geo=Geo(definition, nation),
        clock=clock,
        settings=settings,
        root=root,
        static=_static_urls(),
        db_pool=ThreadPoolExecutor(max_workers=1, thread_name_prefix="site-db"),
        render_pool=ThreadPoolExecutor(
            max_workers=settings.render_threads, thread_name_prefix="site-render"
        ),
        check_pool=ThreadPoolExecutor(
            max_workers=settings.check_concurrency, thread_name_prefix="site-check"
        ),
        record_pool=ThreadPoolExecutor(max_workers=1, thread_name_prefix="site-record"),
        cache=PageCache(settings.cache_bytes),
        issuer=Names(ky=say("cec", "ky"), ru=say("cec", "ru"), en=say("cec", "en")),
    )
    app.on_startup.append(_start)
    app.on_shutdown.append(_shutdown)
    app.on_cleanup.append(_stop)
    app.on_response_prepare.append(_headers)
    r = app.router
    r.add_static("/static/", STATIC_DIR)
    r.add_get("/api/openapi.json", openapi_json)
    r.add_get("/api/v1/status.json", status_json)
    r.add_get("/api/v1/events", events)
    r.add_get("/api/v1/results.json", results_json)
    r.add_get(r"/api/v1/results/{version:\d{1,12}}.json", results_version_json)
    r.add_get("/api/v1/nation.json", nation_json)
    r.add_get("/api/v1/nist.json", nist_json)
    r.add_get("/api/v1/record.tar.gz", record)
    r.add_get(r"/api/v1/csv/turnout/{level}.csv", turnout_csv)
    r.add_get(r"/api/v1/csv/{contest}/{level}.csv", contest_csv)
    r.add_get("/api/v1/station/{unit}/messages.jsonl", station_messages)
    r.add_get(r"/api/v1/station/{unit}/messages/{seq:\d{1,12}}", station_message)
    r.add_get("/api/v1/scan/{sha256}", scan)
    r.add_post("/api/v1/check", check_api)
    r.add_get("/api/v1/{level}/{unit}.json", unit_json)
    r.add_get("/", root_redirect)
    r.add_get(r"/{lang:[A-Za-z_-]{1,16}}", lang_redirect)
    r.add_get(r"/{lang:[A-Za-z_-]{1,16}}/", home)
    r.add_get(r"/{lang:[A-Za-z_-]{1,16}}/check", check_form)
    r.add_post(r"/{lang:[A-Za-z_-]{1,16}}/check", check_post)
    r.add_get(r"/{lang:[A-Za-z_-]{1,16}}/data", data_page)
    r.add_get(r"/{lang:[A-Za-z_-]{1,16}}/station", find_station)
    r.add_get(r"/{lang:[A-Za-z_-]{1,16}}/{level}/{unit}", unit_page)
    return app


def _static_urls() -> dict[str, str]:
    """Static files linked with a content hash, so a new file is never read from a stale cache."""
    out = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            out[path.name] = f"/static/{path.name}?v={digest}"
    return out


# --- life cycle --------------------------------------------------------------------------
async def _start(app: web.Application) -> None:
    state = app[STATE]
    state.check_sem = asyncio.Semaphore(state.settings.check_concurrency)
    state.record_lock = asyncio.Lock()
    loop = asyncio.get_running_loop()
    state.db = await loop.run_in_executor(state.db_pool, open_database, state.db_url)
    if state.settings.cache_dir is not None:
        state.cache_dir = state.settings.cache_dir
        state.cache_dir.mkdir(parents=True, exist_ok=True)
    else:
        state.cache_dir = Path(tempfile.mkdtemp(prefix="shailoo-site-"))
        state.own_cache_dir = True
    try:
        await refresh(app)
    except BaseException:  # start-up failed: leave no connection or thread behind
        await _stop(app)
        raise
    state.poller = asyncio.create_task(_poll(app))


async def _shutdown(app: web.Application) -> None:
    """Close the event streams, so the server can stop without waiting for them."""
    for q in list(app[STATE].subscribers):
        _offer(q, None)


async def _stop(app: web.Application) -> None:
    state = app[STATE]
    if state.poller is not None:
        state.poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await state.poller
    loop = asyncio.get_running_loop()
    if state.db is not None:
        db, state.db = state.db, None
        await loop.run_in_executor(state.db_pool, db.close)
    for pool in (state.db_pool, state.render_pool, state.check_pool, state.record_pool):
        pool.shutdown(wait=True)
    if state.own_cache_dir and state.cache_dir is not None:
        shutil.rmtree(state.cache_dir, ignore_errors=True)
        state.cache_dir = None


async def _poll(app: web.Application) -> None:
    state = app[STATE]
    while True:
        await asyncio.sleep(state.settings.poll_seconds)
        try:
            await refresh(app)
        except Exception:  # the site keeps serving the version it has; the cause is in the log
            log.exception("could not read the latest published results")


async def refresh(app: web.Application) -> int:
    """Load the latest published version if it is new; tell the live pages.  Returns the
    version now shown (0: nothing published).  Called by the poller; callable directly."""
    state = app[STATE]
    loop = asyncio.get_running_loop()

    def latest() -> int:
        row = _db(state).one("SELECT MAX(version) AS v FROM published")
        return int(row["v"]) if row and row["v"] is not None else 0

    version = await loop.run_in_executor(state.db_pool, latest)
    if version == state.snap.version and state.cache.version == version:
        return version
    published = await loop.run_in_executor(
        state.db_pool, lambda: results.latest_published(_db(state))
    )
    snap = await loop.run_in_executor(state.render_pool, Snapshot.of, published)
    if snap.doc is not None and snap.doc["election"]["hash"] != state.definition.election_hash:
        raise RuntimeError(
            f"published results version {snap.version} are of another election "
            f"({snap.doc['election']['id']}): this site serves {state.definition.id}; "
            "point it at that election's database"
        )
    if snap.version < state.snap.version:  # never step back (a late read of an old row)
        return state.snap.version
    state.snap = snap
    state.cache.new_version(snap.version)
    event = _event(state)
    for q in list(state.subscribers):
        _offer(q, event)
    return snap.version


def _db(state: _State) -> Database:
    if state.db is None:
        raise RuntimeError("the database is not open yet")
    return state.db


async def _in(pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(pool, fn)


# --- middleware and headers --------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def _path_lang(request: web.Request) -> Lang:
    """The page's language; for a path without one, the reader's (Accept-Language)."""
    asked = request.match_info.get("lang") or request.path.split("/")[1]
    for lang in LANGS:
        if asked == lang:
            return lang
    return _negotiate(request.headers.get("Accept-Language", ""))


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a short page (JSON under /api/); tracebacks go to the log."""
    try:
        if request.path.startswith("/static/"):  # aiohttp answers a missing file with no body
            name = request.path.removeprefix("/static/")
            if name not in request.app[STATE].static:
                raise web.HTTPNotFound()
        return await handler(request)
    except _Refused as r:
        return _refusal(request, r.status, r.key, **r.values)
    except _BadLanguage as b:
        if _is_api(request):
            return _refusal(request, 404, "not_found")
        ctx = _ctx(request, _path_lang(request), live=False)
        return _html(pages.language_error_page(ctx, b.asked[:16]), 404)
    except web.HTTPRequestEntityTooLarge:
        mb = request.app[STATE].settings.max_upload_bytes // (1024 * 1024)
        return _refusal(request, 413, "upload_too_large", max=mb)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        key = {404: "not_found", 405: "method_not_allowed"}.get(exc.status)
        if key is None:
            return _refusal(request, exc.status, "bad_request", detail=exc.reason)
        return _refusal(request, exc.status, key)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return _refusal(request, 500, "internal_error")


def _refusal(request: web.Request, status: int, key: str, **values: object) -> web.Response:
    lang = _path_lang(request)
    if _is_api(request):
        body = {"error": {"status": status, "message": say(key, "en", **values)}}
        return web.Response(
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            status=status,
            content_type="application/json",
            headers={"Cache-Control": NO_STORE},
        )
    ctx = _ctx(request, lang, live=False)
    return _html(pages.error_page(ctx, key, **values), status)


def _html(text: str, status: int) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": NO_STORE},
    )


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    h.setdefault(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    if request.path.startswith("/static/"):
        h.setdefault("Cache-Control", "public, max-age=86400")
    elif _is_api(request):
        h.setdefault("Access-Control-Allow-Origin", "*")  # open data: any site may read it
        h.setdefault("Access-Control-Expose-Headers", "ETag, X-Results-Version, X-Results-SHA256")
    h.setdefault("Cache-Control", NO_STORE)


# --- answering from the cache ------------------------------------------------------------
def _matches(header: str | None, etag: str) -> bool:
    """If-None-Match against our strong tag (weak comparison, as RFC 9110 says for it)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    for part in header.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == etag or tag.strip('"') == etag + "-gz":
            return True
    return False


def _respond(request: web.Request, entry: Entry, *, version: int | None = None) -> web.Response:
    """The cached bytes, gzip if the client takes it, or 304 if the client has them."""
    state = request.app[STATE]
    cache_control = entry.cache_control or state.settings.live_cache
    headers = {"Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    headers.update(entry.headers)
    if version is not None:
        headers["X-Results-Version"] = str(version)
    gz = entry.gz is not None and "gzip" in request.headers.get("Accept-Encoding", "")
    tag = entry.etag + ("-gz" if gz else "")
    headers["ETag"] = f'"{tag}"'
    if _matches(request.headers.get("If-None-Match"), entry.etag):
        return web.Response(status=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
    response = web.Response(
        body=entry.gz if gz and entry.gz is not None else entry.body, headers=headers
    )
    response.content_type = entry.content_type.split(";")[0]
    if "charset" in entry.content_type:
        response.charset = "utf-8"
    return response


async def _cached(
    request: web.Request,
    key: tuple[Any, ...],
    build: Callable[[Snapshot], Entry],
    *,
    pool: str = "render",
) -> web.Response:
    """Answer `key` for the current version, rendering it once (in a thread) if needed."""
    state = request.app[STATE]
    snap = state.snap
    executor = state.render_pool if pool == "render" else state.db_pool

    async def make() -> Entry:
        return await _in(executor, lambda: build(snap))

    entry = await state.cache.get((snap.version, *key), make)
    return _respond(request, entry, version=snap.version or None)


HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode(
        "utf-8"
    )


def _ctx(
    request: web.Request, lang: Lang, *, live: bool = True, json_href: str | None = None
) -> pages.Ctx:
    state = request.app[STATE]
    prefix = f"/{request.match_info.get('lang', '')}"
    path = request.path[len(prefix) :] if request.path.startswith(prefix + "/") else "/"
    return pages.Ctx(
        lang=lang,
        definition=state.definition,
        path=path or "/",
        version=state.snap.version,
        static=state.static,
        json_href=json_href,
        live=live,
    )


def _lang(request: web.Request) -> Lang:
    asked = request.match_info.get("lang", "")
    for lang in LANGS:
        if asked == lang:
            return lang
    raise _BadLanguage(asked)


# --- HTML pages --------------------------------------------------------------------------
async def root_redirect(request: web.Request) -> web.StreamResponse:
    """/ -> the reader's language (Accept-Language), Kyrgyz by default."""
    lang = _negotiate(request.headers.get("Accept-Language", ""))
    return web.Response(
        status=302,
        headers={
            "Location": f"/{lang}/",
            "Vary": "Accept-Language",
            "Cache-Control": "public, max-age=300",
        },
    )


def _negotiate(header: str) -> Lang:
    best: tuple[float, int, Lang] | None = None
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        for lang in LANGS:
            if primary == lang and q > 0 and (best is None or (q, -i) > (best[0], best[1])):
                best = (q, -i, lang)
    return best[2] if best else DEFAULT_LANG


async def lang_redirect(request: web.Request) -> web.StreamResponse:
    lang = _lang(request)
    raise web.HTTPMovedPermanently(f"/{lang}/")


async def home(request: web.Request) -> web.StreamResponse:
    lang = _lang(request)
    state = request.app[STATE]
    ctx = _ctx(request, lang, json_href="/api/v1/nation.json")

    def build(snap: Snapshot) -> Entry:
        view = views.unit_view(snap, state.geo, (NATION, NATION))
        return Entry.of(pages.home_page(ctx, view).encode("utf-8"), HTML)

    return await _cached(request, ("html", lang, "home"), build)


def _unit_key(request: web.Request) -> Key:
    state = request.app[STATE]
    level, unit = request.match_info["level"], request.match_info["unit"]
    if level not in UNIT_LEVELS:
        raise _Refused(404, "not_found")
    if (level, unit) not in state.geo.units:
        word = say(pages.LEVEL_KEYS[level], _path_lang(request))
        raise _Refused(404, "unit_not_found", id=unit[:80], level=word[:1].lower() + word[1:])
    return (level, unit)


async def unit_page(request: web.Request) -> web.StreamResponse:
    lang = _lang(request)
    state = request.app[STATE]
    key = _unit_key(request)
    ctx = _ctx(request, lang, json_href=views.unit_href(*key))
    if key[0] == "station":
        ev_key = await _evidence_key(state, key[1])

        def build_station(snap: Snapshot) -> Entry:
            view = _station_view(state, snap, key[1])
            return Entry.of(pages.station_page(ctx, view).encode("utf-8"), HTML)

        return await _cached(request, ("html", lang, *key, ev_key), build_station)

    def build(snap: Snapshot) -> Entry:
        view = views.unit_view(snap, state.geo, key)
        return Entry.of(pages.unit_page(ctx, view).encode("utf-8"), HTML)

    return await _cached(request, ("html", lang, *key), build)


async def _evidence_key(state: _State, station_id: str) -> str:
    """The station's evidence key, read at most once per `evidence_seconds` (a crowd on one
    station page costs the database one small query a second, not one per reader)."""
    now = asyncio.get_running_loop().time()
    known = state.evidence_keys.get(station_id)
    if known is not None and now - known[0] < state.settings.evidence_seconds:
        return known[1]
    key = await _in(state.db_pool, lambda: evidence.evidence_key(_db(state), station_id))
    if len(state.evidence_keys) > 100_000:
        state.evidence_keys.clear()
    state.evidence_keys[station_id] = (now, key)
    return key


def _station_view(state: _State, snap: Snapshot, station_id: str) -> dict[str, Any]:
    view = views.unit_view(snap, state.geo, ("station", station_id))
    view["evidence"] = evidence.station_evidence(_db(state), state.definition, station_id)
    return view


async def find_station(request: web.Request) -> web.StreamResponse:
    """?number=1001 -> that station's page."""
    lang = _lang(request)
    state = request.app[STATE]
    raw = request.query.get("number", "").strip()
    if not raw.isdigit() or len(raw) > 8:
        raise _Refused(400, "bad_number")
    try:
        station = state.definition.station_by_number(int(raw))
    except KeyError:
        raise _Refused(404, "station_number_not_found", number=int(raw)) from None
    raise web.HTTPSeeOther(f"/{lang}/station/{station.id}")


async def data_page(request: web.Request) -> web.StreamResponse:
    lang = _lang(request)
    ctx = _ctx(request, lang, live=False)

    def build(snap: Snapshot) -> Entry:
        return Entry.of(pages.data_page(ctx, views.header(snap)).encode("utf-8"), HTML)

    return await _cached(request, ("html", lang, "data"), build)


async def check_form(request: web.Request) -> web.StreamResponse:
    lang = _lang(request)
    state = request.app[STATE]
    ctx = _ctx(request, lang, live=False)
    mb = state.settings.max_upload_bytes // (1024 * 1024)

    def build(snap: Snapshot) -> Entry:
        text = pages.check_page(ctx, max_mb=mb, enabled=state.root is not None)
        return Entry.of(text.encode("utf-8"), HTML)

    return await _cached(request, ("html", lang, "check"), build)


# --- check a report ----------------------------------------------------------------------
async def _checked(request: web.Request) -> dict[str, Any]:
    """Read the posted photos and text, verify every report in them (CheckRefused if none)."""
    state = request.app[STATE]
    s = state.settings
    if state.root is None:
        raise CheckRefused(503, "check_disabled")
    text = ""
    uploads: list[Upload] = []
    if request.content_type == "text/plain":
        raw = await request.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CheckRefused(400, "check_bad_form", "the text is not UTF-8") from None
    else:
        try:
            form = await request.post()
        except web.HTTPException:
            raise
        except (HttpProcessingError, ValueError, AssertionError, RuntimeError) as e:  # malformed
            raise CheckRefused(400, "check_bad_form", str(e)) from None
        value = form.get("text")
        text = value if isinstance(value, str) else ""
        for item in form.getall("photo", []):
            if isinstance(item, web.FileField) and item.filename:
                uploads.append(Upload(item.filename[:100], item.file.read()))
    if len(text) > s.max_text_chars:
        raise CheckRefused(400, "check_text_too_long", max=s.max_text_chars)
    if len(uploads) > s.max_photos:
        raise CheckRefused(400, "check_too_many", max=s.max_photos)
    if not text.strip() and not uploads:
        raise CheckRefused(400, "check_empty")
    sem = state.check_sem
    assert sem is not None
    try:
        await asyncio.wait_for(sem.acquire(), s.check_wait_seconds)
    except TimeoutError:
        raise CheckRefused(503, "check_busy") from None
    try:
        texts = pasted_parts(text)
        if uploads:
            texts += await _in(
                state.check_pool, lambda: read_uploads(uploads, max_pixels=s.max_photo_pixels)
            )
        snap = state.snap
        root = state.root
        return await _in(
            state.check_pool,
            lambda: check_texts(
                texts, root=root, definition=state.definition, snap=snap, db=_db(state)
            ),
        )
    finally:
        sem.release()


def _check_names(definition: ElectionDefinition) -> dict[str, dict[str, Any]]:
    return {
        c.id: {
            "name": views.names(c.name),
            "options": {o.id: views.names(o.name) for o in c.options},
        }
        for c in definition.contests
    }


async def check_post(request: web.Request) -> web.StreamResponse:
    lang = _lang(request)
    state = request.app[STATE]
    ctx = _ctx(request, lang, live=False)
    mb = state.settings.max_upload_bytes // (1024 * 1024)
    enabled = state.root is not None
    try:
        result = await _checked(request)
    except CheckRefused as r:
        text = pages.check_page(
            ctx, refused=(r.key, r.detail, r.values), max_mb=mb, enabled=enabled
        )
        return _html(text, r.status)
    text = pages.check_page(
        ctx, result=result, names=_check_names(state.definition), max_mb=mb, enabled=enabled
    )
    return _html(text, 200 if result["ok"] else 422)


async def check_api(request: web.Request) -> web.StreamResponse:
    try:
        result = await _checked(request)
    except CheckRefused as r:
        body = {
            "error": {
                "status": r.status,
                "message": say(r.key, "en", **r.values),
                "detail": r.detail or None,
            }
        }
        return web.Response(
            body=_json_bytes(body), status=r.status, content_type="application/json",
            headers={"Cache-Control": NO_STORE},
        )  # fmt: skip
    return web.Response(
        body=_json_bytes(result),
        status=200 if result["ok"] else 422,
        content_type="application/json",
        headers={"Cache-Control": NO_STORE},
    )


# --- JSON --------------------------------------------------------------------------------
async def status_json(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]

    def build(snap: Snapshot) -> Entry:
        return Entry.of(_json_bytes(views.status_view(snap, state.geo)), JSON)

    return await _cached(request, ("json", "status"), build)


async def nation_json(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]

    def build(snap: Snapshot) -> Entry:
        return Entry.of(_json_bytes(views.unit_view(snap, state.geo, (NATION, NATION))), JSON)

    return await _cached(request, ("json", "nation"), build)


async def unit_json(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    key = _unit_key(request)
    if key[0] == "station":
        ev_key = await _evidence_key(state, key[1])

        def build_station(snap: Snapshot) -> Entry:
            return Entry.of(_json_bytes(_station_view(state, snap, key[1])), JSON)

        return await _cached(request, ("json", *key, ev_key), build_station)

    def build(snap: Snapshot) -> Entry:
        return Entry.of(_json_bytes(views.unit_view(snap, state.geo, key)), JSON)

    return await _cached(request, ("json", *key), build)


async def results_json(request: web.Request) -> web.StreamResponse:
    """The published document, byte for byte; its SHA-256 is the ETag."""
    state = request.app[STATE]
    snap = state.snap
    if snap.text is None or snap.sha256 is None:
        raise _Refused(404, "not_published_yet")
    sha = snap.sha256

    def build(s: Snapshot) -> Entry:
        assert s.text is not None
        return Entry.of(
            s.text.encode("utf-8"),
            JSON,
            etag=sha,
            headers=(("X-Results-SHA256", sha),),
        )

    return await _cached(request, ("json", "results"), build)


async def results_version_json(request: web.Request) -> web.StreamResponse:
    """Any published version, byte for byte (each version is kept and never changes)."""
    state = request.app[STATE]
    version = int(request.match_info["version"])
    entry = state.versions.get(version)
    if entry is None:

        def load() -> Entry | None:
            row = _db(state).one(
                "SELECT sha256, document FROM published WHERE version = ?", (version,)
            )
            if row is None:
                return None
            return Entry.of(
                row["document"].encode("utf-8"),
                JSON,
                etag=row["sha256"],
                cache_control=IMMUTABLE,
                headers=(("X-Results-SHA256", row["sha256"]),),
            )

        entry = await _in(state.db_pool, load)
        if entry is None:
            raise _Refused(404, "not_found")
        state.versions[version] = entry
        while len(state.versions) > OLD_VERSIONS_KEPT:
            state.versions.popitem(last=False)
    return _respond(request, entry, version=version)


async def nist_json(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if not state.snap.published:
        raise _Refused(404, "not_published_yet")

    def build(snap: Snapshot) -> Entry:
        return Entry.of(opendata.nist_bytes(snap, state.geo, issuer=state.issuer), JSON)

    return await _cached(request, ("json", "nist"), build)


async def openapi_json(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]

    def build(snap: Snapshot) -> Entry:
        title = say("site_title", "en") + " — " + (state.definition.name.get("en"))
        return Entry.of(
            _json_bytes(openapi_document(title)), JSON, cache_control="public, max-age=3600"
        )

    return await _cached(request, ("json", "openapi"), build)


# --- CSV ---------------------------------------------------------------------------------
def _csv_entry(body: bytes, name: str) -> Entry:
    return Entry.of(
        body,
        "text/csv; charset=utf-8",
        headers=(("Content-Disposition", f'attachment; filename="{name}"'),),
    )


async def contest_csv(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    contest, level = request.match_info["contest"], request.match_info["level"]
    try:
        state.definition.contest(contest)
    except KeyError:
        raise _Refused(404, "not_found") from None
    if level not in ("nation", *UNIT_LEVELS):
        raise _Refused(404, "not_found")
    if state.definition.contest(contest).district_id is not None and level in ("nation", "region"):
        raise _Refused(404, "not_found")

    def build(snap: Snapshot) -> Entry:
        body = opendata.contest_csv(snap, state.geo, contest, level)
        return _csv_entry(body, f"{contest}-{level}-v{snap.version}.csv")

    return await _cached(request, ("csv", contest, level), build)


async def turnout_csv(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    level = request.match_info["level"]
    if level not in ("nation", *UNIT_LEVELS):
        raise _Refused(404, "not_found")

    def build(snap: Snapshot) -> Entry:
        return _csv_entry(
            opendata.turnout_csv(snap, state.geo, level), f"turnout-{level}-v{snap.version}.csv"
        )

    return await _cached(request, ("csv", "turnout", level), build)


# --- evidence downloads ------------------------------------------------------------------
def _station_id(request: web.Request) -> str:
    state = request.app[STATE]
    unit = request.match_info["unit"]
    if ("station", unit) not in state.geo.units:
        raise _Refused(404, "unit_not_found", id=unit[:80], level="polling station")
    return unit


async def station_message(request: web.Request) -> web.StreamResponse:
    """One signed message as the station signed it (immutable: a seq is never reused)."""
    state = request.app[STATE]
    station = _station_id(request)
    seq = int(request.match_info["seq"])

    def load() -> Entry | None:
        raw = evidence.stored_message(_db(state), station, seq)
        if raw is None:
            return None
        disposition = f'attachment; filename="{station}-{seq}.json"'
        return Entry.of(
            raw, JSON, cache_control=IMMUTABLE, headers=(("Content-Disposition", disposition),)
        )

    entry = await _in(state.db_pool, load)
    if entry is None:
        raise _Refused(404, "not_found")
    return _respond(request, entry)


async def station_messages(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    station = _station_id(request)
    entry = await _in(
        state.db_pool,
        lambda: Entry.of(
            evidence.stored_messages(_db(state), station),
            "application/x-ndjson",
            headers=(("Content-Disposition", f'attachment; filename="{station}.jsonl"'),),
        ),
    )
    return _respond(request, entry)


async def scan(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    sha = request.match_info["sha256"]
    found = await _in(state.db_pool, lambda: evidence.public_scan(_db(state), sha))
    if found is None:
        raise _Refused(404, "not_found")
    inline = found.media_type != "application/pdf"
    entry = Entry(
        found.data,
        found.media_type,
        sha[:32],
        None,
        IMMUTABLE,
        (
            (
                "Content-Disposition",
                f'{"inline" if inline else "attachment"}; filename="protocol-{sha[:12]}.'
                f'{found.extension}"',
            ),
            ("Content-Security-Policy", "sandbox; default-src 'none'"),
        ),
    )
    return _respond(request, entry)


# --- the election record ------------------------------------------------------------------
async def record(request: web.Request) -> web.StreamResponse:
    """central/record.py's export as one tar.gz, built once per published version."""
    state = request.app[STATE]
    kit = state.settings.record_kit
    if kit is None:
        raise _Refused(404, "record_unavailable")
    version = state.snap.version
    lock = state.record_lock
    assert lock is not None and state.cache_dir is not None
    async with lock:
        if state.record is None or state.record[0] != version or not state.record[1].exists():
            cache_dir = state.cache_dir
            path = await _in(
                state.record_pool,
                lambda: _build_record(state.db_url, kit, cache_dir, version, state.clock()),
            )
            old = state.record
            state.record = (version, path)
            if old is not None and old[1] != path:
                old[1].unlink(missing_ok=True)
        path = state.record[1]
    response = web.FileResponse(
        path,
        headers={
            "Content-Type": "application/gzip",
            "Content-Disposition": f'attachment; filename="{path.name}"',
            "Cache-Control": state.settings.live_cache,
            "X-Results-Version": str(version),
        },
    )
    return response


def _build_record(
    db_url: str, kit: CentralKit, cache_dir: Path, version: int, at: dt.datetime
) -> Path:
    """Export into a temporary directory (own database connection) and pack it."""
    from central.record import export_record

    work = Path(tempfile.mkdtemp(prefix="record-", dir=cache_dir))
    try:
        name = f"election-record-{kit.definition.id}-v{version}"
        with open_database(db_url) as db:
            export_record(db, kit, work / name, at=at)
        out = cache_dir / f"{name}.tar.gz"
        partial = cache_dir / f".{name}.tar.gz.partial"
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(work / name, arcname=name)
        partial.replace(out)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- server-sent events ------------------------------------------------------------------
def _event(state: _State) -> bytes:
    snap = state.snap
    data = json.dumps(views.status_view(snap, state.geo), ensure_ascii=False, sort_keys=True)
    return f"id: {snap.version}\nevent: version\ndata: {data}\n\n".encode()


def _offer(q: asyncio.Queue[bytes | None], item: bytes | None) -> None:
    """A slow client keeps only the newest events (each one states the whole status)."""
    while q.full():
        q.get_nowait()
    q.put_nowait(item)


async def events(request: web.Request) -> web.StreamResponse:
    """The current version at once, then one `version` event per newly published version."""
    state = request.app[STATE]
    if len(state.subscribers) >= state.settings.max_sse_clients:
        raise _Refused(503, "too_many_streams")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    q: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4)
    state.subscribers.add(q)
    try:
        await response.write(b"retry: 5000\n\n" + _event(state))
        while True:
            try:
                item = await asyncio.wait_for(q.get(), state.settings.sse_keepalive_seconds)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if item is None:
                break
            await response.write(item)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        state.subscribers.discard(q)
    return response
