"""HTML of the server-room pages, rendered on the server in the reader's language.

Plain HTML forms and links: every page works without JavaScript (the live pages
refresh themselves with a meta refresh).  Every value from the database or a form
goes through `html.escape`.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from central.accounts import Account, Permission, Role
from central.manual import (
    LINES,
    Problem,
    StoredProtocol,
    field_name,
    form_fields_of,
)
from central.reconcile import Reconciliation, Status, Thresholds
from central.serverroom.texts import LANGS, TEXTS, Lang, say
from election.definition import Contest, ElectionDefinition, Station

STATES = ("not_opened", "open", "closed", "delivered")
_EXCEEDED = ' class="exceeded"'


@dataclass(frozen=True)
class Ctx:
    """What every page needs: language, who is reading, their CSRF token, the clock."""

    lang: Lang
    definition: ElectionDefinition
    now: dt.datetime
    path: str = "/"
    account: Account | None = None
    csrf: str = ""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.definition.timezone)

    def t(self, key: str, **values: object) -> str:
        return e(say(key, self.lang, **values))

    def local(self, stamp: object, *, seconds: bool = True) -> str:
        """A stored UTC time as local time (the date only when it is not election day)."""
        if not stamp:
            return ""
        try:
            when = dt.datetime.fromisoformat(str(stamp))
        except ValueError:
            return str(stamp)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        local = when.astimezone(self.tz)
        clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
        if local.date() == self.definition.date:
            return clock
        return f"{local.date().isoformat()} {clock}"


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def csrf_field(ctx: Ctx) -> str:
    return f'<input type="hidden" name="csrf" value="{e(ctx.csrf)}">'


def layout(ctx: Ctx, title: str, body: str, *, refresh: int | None = None) -> str:
    """The frame of every page: header with navigation, language switch and sign-out."""
    nav = ""
    user = ""
    if ctx.account is not None:
        links = [("/", "nav_live"), ("/manual", "nav_manual"), ("/reconciliation", "nav_reconcile")]
        if ctx.account.can(Permission.MANAGE_ACCOUNTS):
            links.append(("/accounts", "nav_accounts"))
        nav = " ".join(
            f'<a href="{href}"{_current(ctx.path, href)}>{ctx.t(key)}</a>' for href, key in links
        )
        role = say(f"role_{ctx.account.role.value}", ctx.lang)
        user = (
            f'<span class="user">{ctx.t("signed_in_as", user=ctx.account.username, role=role)}'
            f"</span>"
            f'<form method="post" action="/signout" class="inline">{csrf_field(ctx)}'
            f'<button type="submit" class="link">{ctx.t("btn_signout")}</button></form>'
        )
    langs = " ".join(
        f'<a class="lang{" current" if x == ctx.lang else ""}" href="?lang={x}">{x.upper()}</a>'
        for x in LANGS
    )
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh else ""
    election = e(ctx.definition.name.get(ctx.lang))
    return f"""<!doctype html>
<html lang="{ctx.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{meta}
<title>{e(title)} — {ctx.t("app_title")}</title>
<link rel="stylesheet" href="/static/serverroom.css">
</head>
<body>
<header>
  <span class="app">{ctx.t("app_title")}</span>
  <nav>{nav}</nav>
  <span class="langs" aria-label="{ctx.t("language")}">{langs}</span>
  {user}
</header>
<div class="election">{election}</div>
<main>
<h1>{e(title)}</h1>
{body}
</main>
</body>
</html>
"""


def _current(path: str, href: str) -> str:
    here = path == href or (href != "/" and path.startswith(href))
    return ' class="current" aria-current="page"' if here else ""


def messages_box(ctx: Ctx, title_key: str, problems: Sequence[Problem]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{e(p.text(ctx.lang))}</li>" for p in problems)
    return f'<div class="refused" role="alert"><p>{ctx.t(title_key)}</p><ul>{items}</ul></div>'


def notice_box(text: str) -> str:
    return f'<div class="notice" role="status">{e(text)}</div>' if text else ""


# --- sign-in and errors ----------------------------------------------------------------------
def signin_page(ctx: Ctx, *, error: str, username: str, pre_token: str, next_path: str) -> str:
    err = f'<div class="refused" role="alert"><p>{e(error)}</p></div>' if error else ""
    body = f"""{err}
<form method="post" action="/signin" class="signin">
  <input type="hidden" name="csrf" value="{e(pre_token)}">
  <input type="hidden" name="next" value="{e(next_path)}">
  <label>{ctx.t("field_username")}
    <input name="username" value="{e(username)}" autocomplete="username" required
           maxlength="64" autofocus></label>
  <label>{ctx.t("field_password")}
    <input name="password" type="password" autocomplete="current-password" required
           maxlength="256"></label>
  <button type="submit">{ctx.t("btn_signin")}</button>
</form>"""
    return layout(ctx, say("signin_title", ctx.lang), body)


def error_page(ctx: Ctx, key: str, **values: object) -> str:
    body = f'<div class="refused" role="alert"><p>{ctx.t(key, **values)}</p></div>'
    if ctx.account is not None:
        body += f'<p><a href="/">{ctx.t("back")}</a></p>'
    return layout(ctx, say("app_title", ctx.lang), body)


# --- the live page ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StationRow:
    station: Station
    state: str
    last_heartbeat_at: object = None
    battery_percent: object = None
    on_mains: object = None
    signal_dbm: object = None
    outbox_pending: object = None


@dataclass(frozen=True)
class LiveData:
    rows: Sequence[StationRow]
    alerts: Sequence[Mapping[str, Any]]
    alerts_total: int
    deadline: dt.datetime
    refresh: int


def live_page(ctx: Ctx, data: LiveData) -> str:
    by_state: dict[str, list[StationRow]] = {s: [] for s in STATES}
    for row in data.rows:
        by_state.setdefault(row.state, []).append(row)
    counts = "".join(
        f'<div class="count state-{s}"><span class="n">{len(by_state.get(s, []))}</span>'
        f'<span class="what">{ctx.t("state_" + s)}</span></div>'
        for s in STATES
    )
    deadline_text = ctx.local(data.deadline.isoformat(), seconds=False)
    late = [r for r in data.rows if r.state != "delivered"]
    if ctx.now >= data.deadline:
        if late:
            late_html = (
                f'<section class="late"><h2>'
                f"{ctx.t('late_title', deadline=deadline_text, count=len(late))}</h2>"
                f"{_station_table(ctx, late, with_state=True)}</section>"
            )
        else:
            late_html = f'<p class="ok">{ctx.t("late_none")}</p>'
    else:
        late_html = f"<p>{ctx.t('late_pending', deadline=deadline_text)}</p>"
    alerts_html = _alerts(ctx, data.alerts, data.alerts_total)
    sections = ""
    for s in STATES:
        rows = by_state.get(s, [])
        opened = " open" if s != "delivered" and rows else ""
        sections += (
            f'<details class="state-list"{opened} id="state-{s}"><summary>'
            f"{ctx.t('stations_title', state=say('state_' + s, ctx.lang), count=len(rows))}"
            f"</summary>{_station_table(ctx, rows) if rows else ''}</details>"
        )
    updated = ctx.t(
        "updated_at", time=ctx.now.astimezone(ctx.tz).strftime("%H:%M:%S"), seconds=data.refresh
    )
    body = f"""<p class="updated">{updated}</p>
<div class="counts">{counts}</div>
{late_html}
{alerts_html}
{sections}"""
    return layout(ctx, say("live_title", ctx.lang), body, refresh=data.refresh)


def _station_table(ctx: Ctx, rows: Sequence[StationRow], *, with_state: bool = False) -> str:
    head = [
        ctx.t("col_station"),
        ctx.t("col_commission"),
        *([ctx.t("col_state")] if with_state else []),
        ctx.t("col_heartbeat"),
        ctx.t("col_battery"),
        ctx.t("col_signal"),
        ctx.t("col_outbox"),
    ]
    out = [
        '<table class="stations"><thead><tr>',
        "".join(f"<th>{h}</th>" for h in head),
        "</tr></thead><tbody>",
    ]
    for r in rows:
        s = r.station
        commission = ctx.definition.commission(s.commission_id).name.get(ctx.lang)
        battery = "" if r.battery_percent is None else f"{e(r.battery_percent)}%"
        if r.on_mains:
            battery = f"{battery} ({ctx.t('on_mains')})".strip()
        signal = "" if r.signal_dbm is None else f"{e(r.signal_dbm)} dBm"
        heartbeat = ctx.local(r.last_heartbeat_at) or ctx.t("never")
        state = f"<td>{_station_state(ctx, r.state)}</td>" if with_state else ""
        outbox = "" if r.outbox_pending is None else e(r.outbox_pending)
        out.append(
            f'<tr data-station="{s.number}"><td class="n">{s.number}</td><td>{e(commission)}</td>'
            f'{state}<td>{heartbeat}</td><td class="n">{battery}</td>'
            f'<td class="n">{signal}</td><td class="n">{outbox}</td></tr>'
        )
    out.append("</tbody></table>")
    return "".join(out)


def _station_state(ctx: Ctx, state: str) -> str:
    key = f"station_state_{state}"
    return ctx.t(key) if key in TEXTS else e(state)


def _alerts(ctx: Ctx, alerts: Sequence[Mapping[str, Any]], total: int) -> str:
    head = f"<h2>{ctx.t('alerts_title', count=total)}</h2>"
    if not alerts:
        return f'<section class="alerts">{head}<p class="ok">{ctx.t("alerts_none")}</p></section>'
    rows = []
    for a in alerts:
        station = ""
        if a.get("station_id"):
            try:
                station = str(ctx.definition.station(str(a["station_id"])).number)
            except KeyError:
                station = str(a["station_id"])
        rows.append(
            f'<tr class="sev-{e(a.get("severity", ""))}"><td>{e(ctx.local(a.get("raised_at")))}'
            f"</td><td>{e(a.get('severity', ''))}</td><td>{e(a.get('kind', ''))}</td>"
            f'<td class="n">{e(station)}</td><td>{e(a.get("detail", ""))}'
            f"<details><summary>{ctx.t('evidence')}</summary>"
            f"<pre>{e(_pretty(a.get('evidence')))}</pre></details></td></tr>"
        )
    return (
        f'<section class="alerts">{head}<table><thead><tr><th>{ctx.t("col_raised")}</th>'
        f"<th>{ctx.t('col_severity')}</th><th>{ctx.t('col_kind')}</th>"
        f"<th>{ctx.t('col_station')}</th><th>{ctx.t('col_detail')}</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _pretty(evidence: object) -> str:
    if evidence is None:
        return ""
    if isinstance(evidence, str):
        try:
            evidence = json.loads(evidence)
        except ValueError:
            return str(evidence)
    return json.dumps(evidence, ensure_ascii=False, indent=1, sort_keys=True)


# --- manual count ----------------------------------------------------------------------------
def commissions_page(ctx: Ctx, rows: Sequence[tuple[str, int, int]]) -> str:
    """rows: (commission id, stations, protocols entered)."""
    items = "".join(
        f'<tr><td><a href="/manual/c/{e(cid)}">'
        f"{e(ctx.definition.commission(cid).name.get(ctx.lang))}</a></td>"
        f'<td class="n">{entered} / {n}</td></tr>'
        for cid, n, entered in rows
    )
    body = (
        f"<table><thead><tr><th>{ctx.t('col_commission')}</th><th>{ctx.t('col_protocol')}"
        f"</th></tr></thead><tbody>{items}</tbody></table>"
    )
    return layout(ctx, say("commissions_title", ctx.lang), body)


def commission_page(
    ctx: Ctx,
    commission_id: str,
    protocols: Mapping[str, StoredProtocol],
    recon: Mapping[str, Sequence[Reconciliation]],
    *,
    can_enter: bool,
    problems: Sequence[Problem] = (),
    notice: str = "",
) -> str:
    commission = ctx.definition.commission(commission_id)
    rows = []
    for s in ctx.definition.stations:
        if s.commission_id != commission_id:
            continue
        p = protocols.get(s.id)
        if p is None:
            state = ctx.t("not_entered")
            who = ""
            action = "btn_enter" if can_enter else "btn_view"
        else:
            state = ctx.t("version_n", n=p.version)
            who = ctx.t("entered_by", who=p.entered_by, time=ctx.local(p.entered_at))
            action = "btn_correct" if can_enter else "btn_view"
        rec = " ".join(_recon_badge(ctx, r) for r in recon.get(s.id, ()))
        rows.append(
            f'<tr data-station="{s.number}"><td class="n">{s.number}</td><td>{state}</td>'
            f"<td>{who}</td><td>{rec}</td>"
            f'<td><a class="button" href="/manual/s/{e(s.id)}">{ctx.t(action)}</a></td></tr>'
        )
    table = (
        f"<table><thead><tr><th>{ctx.t('col_station')}</th><th>{ctx.t('col_protocol')}</th>"
        f"<th>{ctx.t('col_entered')}</th><th>{ctx.t('col_reconcile')}</th><th></th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )
    upload = ""
    if can_enter:
        upload = f"""<section class="csv">
<h2>{ctx.t("csv_title")}</h2>
<p><a href="/manual/c/{e(commission_id)}/template.csv">{ctx.t("csv_template")}</a></p>
<form method="post" action="/manual/c/{e(commission_id)}/csv" enctype="multipart/form-data">
  {csrf_field(ctx)}
  <label>{ctx.t("field_csv")} <input type="file" name="csv" accept=".csv,text/csv"></label>
  <label>{ctx.t("field_scans")}
    <input type="file" name="scans" multiple accept=".pdf,.png,.jpg,.jpeg"></label>
  <label>{ctx.t("field_reason")}
    <input name="reason" maxlength="500"></label>
  <button type="submit">{ctx.t("btn_upload")}</button>
</form></section>"""
    body = notice_box(notice) + messages_box(ctx, "csv_refused_title", problems) + upload + table
    return layout(ctx, commission.name.get(ctx.lang), body)


def _recon_badge(ctx: Ctx, r: Reconciliation) -> str:
    try:
        title = ctx.definition.contest(r.contest_id).name.get(ctx.lang)
    except KeyError:
        title = r.contest_id
    return (
        f'<span class="badge recon-{r.status.value}" title="{e(title)}">'
        f"{ctx.t('recon_' + r.status.value)}</span>"
    )


def station_page(
    ctx: Ctx,
    station: Station,
    *,
    can_enter: bool,
    values: Mapping[str, str],
    problems: Sequence[Problem] = (),
    notice: str = "",
    history: Sequence[StoredProtocol] = (),
    shown: StoredProtocol | None = None,
    base_version: int = 0,
    reason: str = "",
    max_scan_mb: str = "10",
) -> str:
    """The protocol form (an operator of the station's commission) or the protocol read-only."""
    contests = ctx.definition.contests_for_station(station.id)
    bad = {p.field for p in problems}
    parts = [notice_box(notice), messages_box(ctx, "refused_title", problems)]
    title = say("protocol_for", ctx.lang, number=station.number)
    if can_enter:
        parts.append(
            f'<form method="post" action="/manual/s/{e(station.id)}" '
            f'enctype="multipart/form-data" class="protocol" novalidate>'
            f"{csrf_field(ctx)}"
            f'<input type="hidden" name="base_version" value="{int(base_version)}">'
        )
        for c in contests:
            parts.append(_contest_fieldset(ctx, c, values, bad, editable=True))
        keep = f"<small>{ctx.t('scan_keep_hint')}</small>" if base_version else ""
        scan_bad = _bad("scan" in bad)
        reason_bad = _bad("reason" in bad)
        parts.append(
            f'<fieldset class="submit"><label{scan_bad}>{ctx.t("field_scan", max=max_scan_mb)}'
            f'<input type="file" name="scan" accept=".pdf,.png,.jpg,.jpeg"></label>{keep}'
            f"<label{reason_bad}>{ctx.t('field_reason')}"
            f'<input name="reason" maxlength="500" value="{e(reason)}"></label>'
            f'<button type="submit">{ctx.t("btn_save")}</button></fieldset></form>'
        )
    elif shown is not None:
        shown_values = {
            f: str(v)
            for c in contests
            if c.id in shown.counts
            for f in _fields(c)
            if (v := shown.counts[c.id].value(f)) is not None
        }
        parts.append(f"<p>{ctx.t('version_n', n=shown.version)}</p>")
        for c in contests:
            parts.append(_contest_fieldset(ctx, c, shown_values, set(), editable=False))
    else:
        parts.append(f"<p>{ctx.t('not_entered')}</p>")
    if history:
        parts.append(_history(ctx, station, history))
    back = f'<p><a href="/manual/c/{e(station.commission_id)}">{ctx.t("back")}</a></p>'
    return layout(ctx, title, "".join(parts) + back)


def _fields(contest: Contest) -> list[str]:
    return form_fields_of(contest)


def _bad(flag: bool) -> str:
    return ' class="bad"' if flag else ""


def _input(
    ctx: Ctx, name: str, values: Mapping[str, str], bad: set[str], editable: bool, label: str
) -> str:
    value = values.get(name, "")
    if not editable:
        return f'<span class="v">{e(value)}</span>'
    invalid = ' aria-invalid="true" class="bad"' if name in bad else ""
    return (
        f'<input name="{e(name)}" value="{e(value)}" inputmode="numeric" '
        f'pattern="[0-9 ]*" size="7" autocomplete="off" aria-label="{e(label)}"{invalid}>'
    )


def _contest_fieldset(
    ctx: Ctx, contest: Contest, values: Mapping[str, str], bad: set[str], *, editable: bool
) -> str:
    lang = ctx.lang
    rows = []
    for line in LINES:
        f = field_name(contest.id, line)
        label = say("line_" + line, lang)
        rows.append(
            f"<tr{_bad(f in bad)}><th>{e(label)}</th>"
            f'<td class="n">{_input(ctx, f, values, bad, editable, label)}</td></tr>'
        )
    rows.append(
        f'<tr class="head"><th>{ctx.t("col_option")}</th><th>{ctx.t("col_votes")}</th></tr>'
    )
    for o in contest.options:
        f = field_name(contest.id, "vote", o.id)
        label = o.name.get(lang)
        rows.append(
            f"<tr{_bad(f in bad)}><th>{e(label)}</th>"
            f'<td class="n">{_input(ctx, f, values, bad, editable, label)}</td></tr>'
        )
    prefs = ""
    fields = set(_fields(contest))
    parties = [o for o in contest.options if o.candidates]
    if parties and any(
        field_name(contest.id, "pref", c.id) in fields for c in parties[0].candidates
    ):
        blocks = []
        for o in parties:
            names = [field_name(contest.id, "pref", c.id) for c in o.candidates]
            opened = " open" if any(n in bad for n in names) else ""
            cand_rows = "".join(
                f"<tr{_bad(n in bad)}><th>{c.position}. {e(c.name.get(lang))}</th>"
                f'<td class="n">'
                f"{_input(ctx, n, values, bad, editable, f'{c.position}. {c.name.get(lang)}')}"
                f"</td></tr>"
                for c, n in zip(o.candidates, names, strict=True)
            )
            blocks.append(
                f"<details{opened}><summary>{e(o.name.get(lang))}</summary>"
                f"<table>{cand_rows}</table></details>"
            )
        prefs = f'<div class="prefs"><h3>{ctx.t("parties_preferences")}</h3>{"".join(blocks)}</div>'
    legend_bad = _bad(contest.id in bad)
    return (
        f'<fieldset class="contest" id="contest-{e(contest.id)}"><legend{legend_bad}>'
        f"{e(contest.name.get(lang))}</legend><table>{''.join(rows)}</table>{prefs}</fieldset>"
    )


def _history(ctx: Ctx, station: Station, history: Sequence[StoredProtocol]) -> str:
    rows = []
    for p in history:
        status = ctx.t("current") if p.current else ctx.t("superseded")
        rows.append(
            f'<tr><td><a href="/manual/s/{e(station.id)}?version={p.version}">{p.version}</a>'
            f"</td><td>{status}</td><td>{e(ctx.local(p.entered_at))}</td>"
            f"<td>{e(p.entered_by)}</td><td>{ctx.t('source_' + p.source)}</td>"
            f"<td>{e(p.reason)}</td>"
            f'<td><a href="/manual/scan/{e(p.scan_sha256)}">{e(p.scan_sha256[:12])}</a></td></tr>'
        )
    return (
        f'<section class="history"><h2>{ctx.t("history_title")}</h2><table><thead><tr>'
        f"<th>{ctx.t('col_version')}</th><th></th><th>{ctx.t('col_raised')}</th>"
        f"<th>{ctx.t('col_username')}</th><th>{ctx.t('col_source')}</th>"
        f"<th>{ctx.t('col_reason')}</th><th>{ctx.t('col_scan')}</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


# --- reconciliation --------------------------------------------------------------------------
def reconcile_page(
    ctx: Ctx, rows: Sequence[Reconciliation], thresholds: Thresholds, *, refresh: int
) -> str:
    rule = ctx.t(
        "reconcile_rule", abs=thresholds.max_abs, percent=thresholds.to_obj()["max_percent"]
    )
    if not rows:
        body = f"<p>{rule}</p><p>{ctx.t('reconcile_none')}</p>"
        return layout(ctx, say("reconcile_title", ctx.lang), body, refresh=refresh)
    out = []
    for r in rows:
        station = ctx.definition.station(r.station_id)
        try:
            contest: Contest | None = ctx.definition.contest(r.contest_id)
            cname = contest.name.get(ctx.lang) if contest else r.contest_id
        except KeyError:
            contest, cname = None, r.contest_id
        detail = ""
        if r.lines:
            lines = "".join(
                f"<tr{_EXCEEDED if x.exceeded else ''}>"
                f"<td>{e(_line_name(ctx, contest, x.line, x.id))}</td>"
                f'<td class="n">{x.asu}</td><td class="n">{x.manual}</td>'
                f'<td class="n">{x.difference:+d}</td></tr>'
                for x in r.lines
            )
            detail = (
                f"<details{' open' if r.status is Status.DIFFERENCE else ''}><summary>"
                f"{ctx.t('col_difference')}: {r.max_difference}</summary><table><thead><tr>"
                f"<th>{ctx.t('col_line')}</th><th>{ctx.t('col_asu')}</th>"
                f"<th>{ctx.t('col_manual')}</th><th>{ctx.t('col_difference')}</th></tr>"
                f"</thead><tbody>{lines}</tbody></table></details>"
            )
        out.append(
            f'<tr class="recon-{r.status.value}" data-station="{station.number}">'
            f'<td class="n"><a href="/manual/s/{e(station.id)}">{station.number}</a></td>'
            f"<td>{e(cname)}</td><td>{_recon_badge(ctx, r)}</td><td>{detail}</td></tr>"
        )
    body = (
        f"<p>{rule}</p><table><thead><tr><th>{ctx.t('col_station')}</th>"
        f"<th>{ctx.t('col_contest')}</th><th>{ctx.t('col_reconcile')}</th>"
        f"<th>{ctx.t('col_difference')}</th></tr></thead><tbody>{''.join(out)}</tbody></table>"
    )
    return layout(ctx, say("reconcile_title", ctx.lang), body, refresh=refresh)


def _line_name(ctx: Ctx, contest: Contest | None, line: str, id_: str | None) -> str:
    if id_ is None:
        return say(f"line_{line}", ctx.lang)
    if contest is not None:
        for o in contest.options:
            if o.id == id_:
                return o.name.get(ctx.lang)
            for c in o.candidates:
                if c.id == id_:
                    return f"{o.name.get(ctx.lang)}: {c.position}. {c.name.get(ctx.lang)}"
    return id_


# --- accounts (admin) ------------------------------------------------------------------------
@dataclass(frozen=True)
class AccountsData:
    accounts: Sequence[Mapping[str, Any]]
    message: str = ""
    refused: bool = False
    form: Mapping[str, str] = field(default_factory=dict)


def accounts_page(ctx: Ctx, data: AccountsData) -> str:
    rows = []
    for a in data.accounts:
        name = str(a["username"])
        locked = bool(a.get("locked_until")) and str(a["locked_until"]) > ctx.now.astimezone(
            dt.UTC
        ).isoformat(timespec="seconds")
        commission = ""
        if a.get("commission_id"):
            try:
                commission = ctx.definition.commission(str(a["commission_id"])).name.get(ctx.lang)
            except KeyError:
                commission = str(a["commission_id"])
        buttons = ""
        if locked:
            buttons += _account_button(ctx, name, "unlock", "btn_unlock")
        if a.get("disabled"):
            buttons += _account_button(ctx, name, "enable", "btn_enable")
        elif ctx.account is None or name != ctx.account.username:
            buttons += _account_button(ctx, name, "disable", "btn_disable")
        rows.append(
            f"<tr><td>{e(name)}</td><td>{ctx.t('role_' + str(a['role']))}</td>"
            f"<td>{e(commission)}</td>"
            f"<td>{ctx.t('yes') if locked else ''}</td>"
            f"<td>{ctx.t('yes') if a.get('disabled') else ''}</td><td>{buttons}</td></tr>"
        )
    roles = "".join(
        f'<option value="{r.value}"{" selected" if data.form.get("role") == r.value else ""}>'
        f"{ctx.t('role_' + r.value)}</option>"
        for r in Role
    )
    commissions = '<option value=""></option>' + "".join(
        f'<option value="{e(c.id)}"'
        f"{' selected' if data.form.get('commission_id') == c.id else ''}>"
        f"{e(c.name.get(ctx.lang))}</option>"
        for c in ctx.definition.commissions
    )
    message = ""
    if data.message:
        key = "account_refused" if data.refused else "account_done"
        cls = "refused" if data.refused else "notice"
        value = {"detail": data.message} if data.refused else {"user": data.message}
        message = f'<div class="{cls}" role="alert"><p>{ctx.t(key, **value)}</p></div>'
    body = f"""{message}
<table><thead><tr><th>{ctx.t("col_username")}</th><th>{ctx.t("col_role")}</th>
<th>{ctx.t("col_commission")}</th><th>{ctx.t("col_locked")}</th><th>{ctx.t("col_disabled")}</th>
<th></th></tr></thead><tbody>{"".join(rows)}</tbody></table>
<section><h2>{ctx.t("account_create_title")}</h2>
<form method="post" action="/accounts" class="account">
  {csrf_field(ctx)}
  <label>{ctx.t("col_username")}
    <input name="username" value="{e(data.form.get("username", ""))}" maxlength="64"></label>
  <label>{ctx.t("col_role")} <select name="role">{roles}</select></label>
  <label>{ctx.t("col_commission")} <select name="commission_id">{commissions}</select></label>
  <label>{ctx.t("field_password")}
    <input name="password" type="password" autocomplete="new-password" maxlength="256"></label>
  <button type="submit">{ctx.t("btn_create")}</button>
</form></section>"""
    return layout(ctx, say("accounts_title", ctx.lang), body)


def _account_button(ctx: Ctx, username: str, action: str, key: str) -> str:
    return (
        f'<form method="post" action="/accounts/{e(username)}/{action}" class="inline">'
        f'{csrf_field(ctx)}<button type="submit" class="small">{ctx.t(key)}</button></form>'
    )
