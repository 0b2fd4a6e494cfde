"""The operator screen's web app (aiohttp), served on 127.0.0.1 only.

The page is rendered on the server in the chosen language (Kyrgyz or Russian,
`?lang=` sets a cookie), so the labels, the test-mode banner and the current
result are there even before any script runs; `static/desk.js` then polls
`/api/screen` and posts the operator's actions as JSON.  Nothing is loaded
from the internet.

Every runtime call (a face check takes ~0.2 s, every action writes SQLite)
runs in the app's own small thread pool, never on the event loop.  A refused
action answers 400 (bad form: what to fix), 403 (wrong chair code) or 409 (not
now), always with the message in both languages, and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from station.identify import AdmissionReason
from station.runtime import ActionError, StationRuntime, field_missing
from station.texts import LANGS, TEXTS, Lang, both, say

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
LANG_COOKIE = "shailoo_lang"
DEFAULT_LANG: Lang = "ky"
TICK_SECONDS = 5.0

RUNTIME: web.AppKey[StationRuntime] = web.AppKey("runtime", StationRuntime)
EXECUTOR: web.AppKey[ThreadPoolExecutor] = web.AppKey("executor", ThreadPoolExecutor)
TICKER: web.AppKey[asyncio.Task[None]] = web.AppKey("ticker", asyncio.Task)

T = TypeVar("T")
_STATUS = {"invalid": 400, "forbidden": 403, "conflict": 409}


def make_app(runtime: StationRuntime, *, tick_seconds: float = TICK_SECONDS) -> web.Application:
    """The web app for one running station; `tick_seconds` paces the turnout timer."""
    app = web.Application(middlewares=[_same_origin, _action_errors], client_max_size=64 * 1024)
    app[RUNTIME] = runtime
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="station-ui")

    async def start_ticker(app: web.Application) -> None:
        app[TICKER] = asyncio.create_task(_ticker(app, tick_seconds))

    async def stop(app: web.Application) -> None:
        app[TICKER].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await app[TICKER]
        app[EXECUTOR].shutdown(wait=True)

    app.on_startup.append(start_ticker)
    app.on_cleanup.append(stop)
    app.router.add_get("/", page)
    app.router.add_static("/static/", STATIC_DIR)
    app.router.add_get("/api/screen", api_screen)
    app.router.add_get("/api/mobile", api_mobile)
    app.router.add_get("/api/log", api_log)
    app.router.add_get("/api/log/nist", api_log_nist)
    app.router.add_get("/participation.csv", participation_csv)
    for path, handler in _ACTIONS.items():
        app.router.add_post(path, handler)
    return app


async def _run(request: web.Request, fn: Callable[[], T]) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[EXECUTOR], fn)


async def _ticker(app: web.Application, every: float) -> None:
    runtime = app[RUNTIME]
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(every)
        try:
            await loop.run_in_executor(app[EXECUTOR], runtime.tick)
        except Exception:  # the timer must keep running; the failure is in the log
            log.exception("turnout timer failed")


# --- middlewares -------------------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _action_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ActionError as e:
        log.info("%s %s refused: %s", request.method, request.path, e)
        return error_response(e)


@web.middleware
async def _same_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse actions posted by a page from elsewhere (the kiosk browser must not be a relay)."""
    origin = request.headers.get("Origin")
    if request.method == "POST" and origin and origin.split("://", 1)[-1] != request.host:
        return web.json_response({"error": "cross_origin"}, status=403)
    return await handler(request)


def error_response(e: ActionError) -> web.Response:
    body = {"error": e.key, "message": e.message, "detail": str(e)}
    return web.json_response(body, status=_STATUS[e.kind])


# --- reads ---------------------------------------------------------------------------------
async def api_screen(request: web.Request) -> web.Response:
    return web.json_response(await _run(request, request.app[RUNTIME].screen))


async def api_mobile(request: web.Request) -> web.Response:
    return web.json_response({"voters": await _run(request, request.app[RUNTIME].mobile_list)})


async def api_log(request: web.Request) -> web.Response:
    try:
        limit = max(1, min(int(request.query.get("limit", "200")), 5000))
    except ValueError:
        limit = 200
    runtime = request.app[RUNTIME]
    return web.json_response({"events": await _run(request, lambda: runtime.events(limit))})


async def api_log_nist(request: web.Request) -> web.Response:
    doc = await _run(request, request.app[RUNTIME].export_nist)
    return web.json_response(
        doc,
        dumps=lambda d: json.dumps(d, ensure_ascii=False, indent=1),
        headers={"Content-Disposition": 'attachment; filename="event-log-nist-1500-101.json"'},
    )


async def participation_csv(request: web.Request) -> web.Response:
    text = await _run(request, request.app[RUNTIME].participation_csv)
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="participation.csv"'},
    )


# --- actions -------------------------------------------------------------------------------
async def _body(request: web.Request) -> dict[str, Any]:
    """The JSON object posted; an empty body is {}; anything else is a 400."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise ActionError("invalid", "json_malformed", both("json_malformed"), "not a JSON object")
    return data


def _text(data: dict[str, Any], field: str, default: str | None = None) -> str:
    """A string field; missing or not a string is a 400 naming the field (unless defaulted)."""
    value = data.get(field)
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise field_missing(field)
    return value


def _action(
    call: Callable[[StationRuntime, dict[str, Any]], Callable[[], dict[str, Any]]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A POST handler: parse and check the body on the loop, act in the pool, answer the screen."""

    async def handler(request: web.Request) -> web.Response:
        runtime = request.app[RUNTIME]
        fn = call(runtime, await _body(request))
        result = await _run(request, fn)
        screen = await _run(request, runtime.screen)
        return web.json_response({"ok": True, "result": result, "screen": screen})

    return handler


Thunk = Callable[[], dict[str, Any]]


def _admit(r: StationRuntime, d: dict[str, Any]) -> Thunk:
    code, reason, chair = _text(d, "chair_code"), _text(d, "reason"), _text(d, "chair")
    return lambda: r.admit(code, reason, chair)


def _decline(r: StationRuntime, d: dict[str, Any]) -> Thunk:
    chair = _text(d, "chair")
    return lambda: r.decline(chair)


def _confirm(r: StationRuntime, d: dict[str, Any]) -> Thunk:
    pin, chair = _text(d, "pin"), _text(d, "chair", "chair")
    return lambda: r.confirm_pending(pin, chair)


def _cancel(r: StationRuntime, d: dict[str, Any]) -> Thunk:
    pin, code, chair = _text(d, "pin"), _text(d, "chair_code"), _text(d, "chair", "chair")
    return lambda: r.cancel_pending(pin, code, chair)


def _open(r: StationRuntime, d: dict[str, Any]) -> Thunk:
    actor = _text(d, "chair", "chair")
    return lambda: r.open_polls(actor)


def _close(r: StationRuntime, d: dict[str, Any]) -> Thunk:
    code, actor = _text(d, "chair_code"), _text(d, "chair", "chair")
    return lambda: r.close_polls(code, actor)


def _deferred_start(r: StationRuntime, d: dict[str, Any]) -> Thunk:
    code, chair = _text(d, "chair_code"), _text(d, "chair", "chair")
    return lambda: r.start_deferred_batch(code, chair)


def _deferred_end(r: StationRuntime, d: dict[str, Any]) -> Thunk:
    chair = _text(d, "chair", "chair")
    return lambda: r.end_deferred_batch(chair)


def _mobile(r: StationRuntime, d: dict[str, Any]) -> Thunk:
    pin, code, chair = _text(d, "pin"), _text(d, "chair_code"), _text(d, "chair", "chair")
    return lambda: r.mark_mobile(pin, code, chair)


_ACTIONS: dict[str, Callable[[web.Request], Awaitable[web.Response]]] = {
    "/api/face": _action(lambda r, d: r.capture_face),
    "/api/camera/fault": _action(lambda r, d: r.camera_fault),
    "/api/camera/retry": _action(lambda r, d: r.retry_camera),
    "/api/admit": _action(_admit),
    "/api/decline": _action(_decline),
    "/api/issued": _action(lambda r, d: r.ballot_issued),
    "/api/clear": _action(lambda r, d: r.clear),
    "/api/pending/confirm": _action(_confirm),
    "/api/pending/cancel": _action(_cancel),
    "/api/open": _action(_open),
    "/api/close": _action(_close),
    "/api/mobile/mark": _action(_mobile),
    "/api/deferred/start": _action(_deferred_start),
    "/api/deferred/end": _action(_deferred_end),
}


# --- the page ------------------------------------------------------------------------------
def request_lang(request: web.Request) -> tuple[Lang, bool]:
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


async def page(request: web.Request) -> web.Response:
    lang, set_cookie = request_lang(request)
    screen = await _run(request, request.app[RUNTIME].screen)
    resp = web.Response(text=render_page(screen, lang), content_type="text/html", charset="utf-8")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:"
    )
    if set_cookie:
        resp.set_cookie(LANG_COOKIE, lang, max_age=10 * 365 * 24 * 3600, samesite="Strict")
    return resp


def render_page(screen: dict[str, Any], lang: Lang) -> str:
    """The whole desk page in `lang`, with the current screen already filled in."""

    def t(key: str, **values: object) -> str:
        return html.escape(say(key, lang, **values))

    def e(value: object) -> str:
        return html.escape(str(value))

    result = screen["result"]
    voter = result.get("voter")
    voter_line = ""
    if voter:
        voter_line = (
            f"{e(voter['name'])} · {t('voter_born', year=voter['birth_year'])} · "
            f"{e(voter['masked_pin'])}"
        )
    banner = screen["banner"][lang] if screen["banner"] else ""
    labels = {k: v[lang] for k, v in TEXTS.items()}
    reasons = "\n".join(
        f'<label class="reason"><input type="radio" name="reason" value="{r.value}">'
        f" {t('reason_' + r.value)}</label>"
        for r in AdmissionReason
    )
    other = [x for x in LANGS if x != lang][0]
    lang_links = " ".join(
        f'<a class="lang{" current" if x == lang else ""}" href="/?lang={x}">{x.upper()}</a>'
        for x in LANGS
    )
    state_text = screen["state_text"][lang]
    deferred = screen["deferred_batch"]  # the end button is in its section
    start_hidden = "" if screen["state"] == "open" and not deferred else " hidden"
    start_label = t("btn_deferred_start")
    return f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t("app_title")} — {t("station_label", number=screen["station"]["number"])}</title>
<link rel="stylesheet" href="/static/desk.css">
</head>
<body data-lang="{lang}" data-other-lang="{other}">
<div id="banner" class="banner"{"" if banner else " hidden"}>{e(banner)}</div>
<header>
  <span class="station">{t("station_label", number=screen["station"]["number"])}</span>
  <span id="state" class="state">{e(state_text)}</span>
  <span id="clock" class="clock">{e(screen["time"])}</span>
  <span class="langs" aria-label="{t("language")}">{lang_links}</span>
</header>
<main>
  <section id="result" class="result tone-{e(result["tone"])}" aria-live="assertive">
    <div id="message" class="message">{e(result["message"][lang])}</div>
    <div id="voter" class="voter">{voter_line}</div>
    <div id="warning" class="warning" hidden></div>
  </section>
  <div id="error" class="error" role="alert" hidden></div>
  <section id="deferred" class="deferred"{"" if deferred else " hidden"} aria-live="polite">
    <h2>{t("deferred_title")}</h2>
    <p id="deferred-message">{e(deferred["text"][lang]) if deferred else ""}</p>
    <button id="btn-deferred-end" class="amber">{t("btn_deferred_end")}</button>
  </section>
  <section id="actions" class="actions">
    <button id="btn-face" data-desk="face_check">{t("btn_face")}</button>
    <button id="btn-camera-fault" data-desk="face_check"
            class="secondary">{t("btn_camera_fault")}</button>
    <button id="btn-admit-dialog" data-desk="admission"
            class="amber">{t("btn_admit_dialog")}</button>
    <button id="btn-issued" data-desk="marked" class="green">{t("btn_issued")}</button>
    <button id="btn-clear" data-desk="face_check admission"
            class="secondary">{t("btn_clear")}</button>
  </section>
  <section id="pending" class="pending" hidden>
    <h2>{t("pending_title")}</h2>
    <p id="pending-message"></p>
    <ul id="pending-list"></ul>
  </section>
  <section class="status">
    <span id="reader-status" class="dot">{e(screen["reader"]["text"][lang])}</span>
    <span id="camera-status" class="dot">{e(screen["camera"]["text"][lang])}</span>
  </section>
  <div class="columns">
    <section class="counters">
      <h2>{t("counters_title")}</h2>
      <table id="counters"></table>
    </section>
    <section class="log">
      <h2>{t("log_title")}</h2>
      <ol id="events"></ol>
    </section>
  </div>
  <section class="polls">
    <button id="btn-open" data-state="setup" class="green">{t("btn_open")}</button>
    <button id="btn-close" data-state="open" class="secondary">{t("btn_close")}</button>
    <button id="btn-mobile" data-state="open" class="secondary">{t("mobile_title")}</button>
    <button id="btn-deferred-start" class="secondary"{start_hidden}>{start_label}</button>
  </section>
  <section id="mobile" class="mobile" hidden>
    <h2>{t("mobile_title")}</h2>
    <ul id="mobile-list"></ul>
  </section>
</main>
<div id="dialog" class="dialog" hidden>
  <form id="dialog-form" class="dialog-box" autocomplete="off">
    <h2 id="dialog-title">{t("admit_title")}</h2>
    <fieldset id="dialog-reasons" class="reasons">
      <legend>{t("field_reason")}</legend>
      {reasons}
    </fieldset>
    <label id="dialog-chair-row">{t("field_chair")}
      <input id="dialog-chair" name="chair" type="text" maxlength="80"></label>
    <label>{t("field_chair_code")}
      <input id="dialog-code" name="chair_code" type="password" inputmode="numeric"
             pattern="[0-9]*" maxlength="12"></label>
    <div id="dialog-error" class="error" role="alert" hidden></div>
    <div class="dialog-buttons">
      <button id="dialog-ok" type="submit" class="green">{t("btn_admit")}</button>
      <button id="dialog-decline" type="button" class="red">{t("btn_decline")}</button>
      <button id="dialog-cancel" type="button" class="secondary">{t("btn_cancel")}</button>
    </div>
  </form>
</div>
<script id="labels" type="application/json">{_script_json(labels)}</script>
<script id="initial-screen" type="application/json">{_script_json(screen)}</script>
<script src="/static/desk.js"></script>
</body>
</html>
"""


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element (no "</" can close it)."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


async def serve(runtime: StationRuntime, port: int) -> int:
    """Serve the operator screen on 127.0.0.1 until SIGTERM or SIGINT."""
    import asyncio
    import signal

    runner = web.AppRunner(make_app(runtime), handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        try:
            await site.start()
        except OSError as e:
            raise SystemExit(f"error: cannot listen on 127.0.0.1:{port}: {e.strerror}") from e
        bound = runner.addresses[0][1]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        number = runtime.appliance.station.number
        print(f"station {number}: operator screen at http://127.0.0.1:{bound}/", flush=True)
        await stop.wait()
        print(f"station {number}: stopping", flush=True)
    finally:
        await runner.cleanup()
    return 0
