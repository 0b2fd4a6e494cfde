"""HTML of the public pages, rendered on the server from the page's view (views.py).

Semantic, accessible HTML that works without JavaScript and on a narrow phone:
landmarks (header, nav, main, footer), one h1 per page, tables with captions
and header scopes, every chart beside a table with its numbers, and stable ids
and `data-testid`s on the key numbers for browser tests.  Preliminary (ASU) and
final (manual count) numbers are always in separate, labelled blocks.  Every
value from the database, the definition or an upload goes through `e()`.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from central.site import svg
from central.site.texts import LANG_NAMES, LANGS, Lang, fmt_int, fmt_pct, has, say
from central.site.views import contest_names, unit_href
from election.definition import ElectionDefinition
from election.tally import percent_floor

IDENT_KEYS = ("voted", "identified_by_face", "admitted_by_document", "mobile_box")
LEVEL_KEYS = {
    "nation": "level_nation",
    "region": "level_region",
    "district": "level_district",
    "commission": "level_commission",
    "station": "level_station",
}


_DIFFERS = ' class="differs"'
_CAPTION = re.compile(r"<caption[^>]*>(.*?)</caption>", re.S)
_TAG = re.compile(r"<[^>]+>")


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _signed_int(n: int) -> str:
    return f"+{n}" if n > 0 else str(n)


@dataclass(frozen=True)
class Ctx:
    """What every page needs: its language, the definition, the path without the language
    prefix (for the language switch), the published version and the static file URLs."""

    lang: Lang
    definition: ElectionDefinition
    path: str = "/"
    version: int = 0
    static: Mapping[str, str] = field(default_factory=dict)
    json_href: str | None = None
    live: bool = True

    def t(self, key: str, **values: object) -> str:
        return e(say(key, self.lang, **values))

    def tk(self, prefix: str, code: object) -> str:
        """The text for a code from the data (a phase, a flag...), or the code itself if
        this site has no words for it yet (a new code is shown, never lost)."""
        key = f"{prefix}{code}"
        return self.t(key) if has(key) else e(code if code is not None else "—")

    def n(self, value: object) -> str:
        return e(fmt_int(value, self.lang))

    def n_of(self, n: object, of: object) -> str:
        """ "2 431 of 2 468" in the reader's words."""
        return self.t("n_of", n=fmt_int(n, self.lang), of=fmt_int(of, self.lang))

    def pct(self, value: str | None) -> str:
        return e(fmt_pct(value, self.lang))

    def name(self, names: Mapping[str, str] | None) -> str:
        if not names:
            return ""
        return e(names.get(self.lang) or names.get("ru") or "")

    def href(self, level: str, unit_id: str) -> str:
        return unit_href(level, unit_id, self.lang)

    def time(self, stamp: object) -> str:
        """A stored UTC time as local time in a <time> element (the date unless election day)."""
        if not stamp:
            return "—"
        try:
            when = dt.datetime.fromisoformat(str(stamp))
        except ValueError:
            return e(stamp)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        local = when.astimezone(ZoneInfo(self.definition.timezone))
        shown = local.strftime("%H:%M:%S")
        if local.date() != self.definition.date:
            shown = f"{local.date().isoformat()} {shown}"
        return f'<time datetime="{e(when.isoformat())}">{e(shown)}</time>'


# --- the frame ---------------------------------------------------------------------------
def layout(
    ctx: Ctx,
    title: str,
    body: str,
    *,
    crumbs: Sequence[tuple[str, str]] = (),
    section: str = "results",
    footer_extra: str = "",
) -> str:
    """Every page: skip link, header with navigation and languages, main, footer."""
    lang = ctx.lang
    nav = "".join(
        f'<li><a href="/{lang}{href}"{_current(section == key)}>{ctx.t("nav_" + key)}</a></li>'
        for key, href in (("results", "/"), ("check", "/check"), ("data", "/data"))
    )
    langs = "".join(
        f'<li><a href="/{x}{e(ctx.path)}" hreflang="{x}" lang="{x}"'
        f"{_current(x == lang)}>{e(LANG_NAMES[x])}</a></li>"
        for x in LANGS
    )
    alternates = "".join(
        f'<link rel="alternate" hreflang="{x}" href="/{x}{e(ctx.path)}">' for x in LANGS
    )
    if ctx.json_href:
        alternates += f'<link rel="alternate" type="application/json" href="{e(ctx.json_href)}">'
    trail = ""
    if crumbs:
        items = "".join(f'<li><a href="{e(h)}">{e(t)}</a></li>' for h, t in crumbs)
        trail = (
            f'<nav class="crumbs" aria-label="{ctx.t("crumbs")}"><ol>{items}'
            f'<li aria-current="page">{e(title)}</li></ol></nav>'
        )
    css = ctx.static.get("site.css", "/static/site.css")
    js = ctx.static.get("site.js", "/static/site.js")
    d = ctx.definition
    day = d.date.isoformat()
    live = ' data-live="1"' if ctx.live else ""
    data_links = ""
    if ctx.json_href:
        data_links = f'<a href="{e(ctx.json_href)}" data-testid="page-json">JSON</a> · '
    return f"""<!doctype html>
<html lang="{lang}" data-version="{ctx.version}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} — {ctx.t("site_title")}</title>
<link rel="stylesheet" href="{e(css)}">
{alternates}
<script src="{e(js)}" defer></script>
</head>
<body>
<a class="skip" href="#main">{ctx.t("skip")}</a>
<header class="site">
<div class="brand"><a href="/{lang}/">{ctx.t("site_title")}</a>
<span class="cec">{ctx.t("cec")}</span></div>
<nav class="sections" aria-label="{ctx.t("nav_label")}"><ul>{nav}</ul></nav>
<nav class="langs" aria-label="{ctx.t("language")}"><ul>{langs}</ul></nav>
</header>
<p class="election">{e(d.name.get(lang))} · <time datetime="{day}">{day}</time></p>
<p id="live-status" class="live" role="status" aria-live="polite"
 data-updated="{ctx.t("live_updated", time="{time}")}" data-failed="{ctx.t("live_failed")}"></p>
<main id="main" tabindex="-1"{live}>
{trail}
<h1>{e(title)}</h1>
{body}
</main>
<footer class="site">
<p>{ctx.t("footer_source")}</p>
<p>{data_links}<a href="/{lang}/data">{ctx.t("nav_data")}</a> ·
<a href="/api/openapi.json">OpenAPI</a>{footer_extra}</p>
</footer>
</body>
</html>
"""


def _current(yes: bool) -> str:
    return ' aria-current="page"' if yes else ""


def _crumbs(ctx: Ctx, path: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    out = []
    for p in path:
        label = say("level_nation_short", ctx.lang) if p["level"] == "nation" else ""
        label = label or _unit_title(ctx, p)
        out.append((ctx.href(p["level"], p["id"]), label))
    return out


def _names(ctx: Ctx, contest: Mapping[str, Any]) -> dict[str, Mapping[str, str]]:
    """Option and candidate id -> names (candidates from the definition: a view lists them
    only where the outcome is decided)."""
    out: dict[str, Mapping[str, str]] = dict(contest_names(contest))
    try:
        c = ctx.definition.contest(contest["id"])
    except KeyError:
        return out
    for o in c.options:
        for cand in o.candidates:
            out.setdefault(cand.id, {lang: cand.name.get(lang) for lang in LANGS})
    return out


def _unit_title(ctx: Ctx, u: Mapping[str, Any]) -> str:
    if u["level"] == "station":
        return say("station_title", ctx.lang, number=u["number"])
    return u["name"].get(ctx.lang) or u["name"].get("ru") or u["id"]


def _published_footer(ctx: Ctx, view: Mapping[str, Any]) -> str:
    if not view.get("version"):
        return ""
    return (
        f' · {ctx.t("version_label")} <span data-testid="footer-version">{view["version"]}</span>'
        f' · SHA-256 <code class="hash">{e((view.get("sha256") or "")[:16])}…</code>'
    )


# --- shared blocks -----------------------------------------------------------------------
def status_block(ctx: Ctx, view: Mapping[str, Any]) -> str:
    """How far the count is, when the numbers were published, which version."""
    if not view.get("version"):
        return (
            f'<section id="status" class="status" aria-labelledby="status-h">'
            f'<h2 id="status-h">{ctx.t("status_title")}</h2>'
            f'<p class="notice" data-testid="not-published">{ctx.t("not_published")}</p></section>'
        )
    rows = []
    states = view.get("stations_by_state")
    t = view.get("turnout")
    if states is not None:
        rows.append(
            (
                "stations_delivered",
                f'<span data-testid="stations-reported">'
                f"{ctx.n_of(states['delivered'], states['of'])}"
                "</span>",
            )
        )
    if t is not None:
        st = t["stations"]
        rows.append(
            (
                "stations_turnout",
                f'<span data-testid="turnout-stations">{ctx.n_of(st["reported"], st["of"])}</span>',
            )
        )
    rows.append(
        ("last_update", f'<span data-testid="last-update">{ctx.time(view["published_at"])}</span>')
    )
    rows.append(("latest_report", f'<span data-testid="as-of">{ctx.time(view["as_of"])}</span>'))
    rows.append(("version_label", f'<span data-testid="version">{view["version"]}</span>'))
    items = "".join(f"<div><dt>{ctx.t(k)}</dt><dd>{v}</dd></div>" for k, v in rows)
    return (
        f'<section id="status" class="status" aria-labelledby="status-h">'
        f'<h2 id="status-h">{ctx.t("status_title")}</h2><dl class="facts">{items}</dl></section>'
    )


def turnout_block(ctx: Ctx, view: Mapping[str, Any], *, heading: str = "h2") -> str:
    t = view.get("turnout")
    title = ctx.t("turnout_title")
    if t is None or not view.get("version"):
        return (
            f'<section id="turnout" aria-labelledby="turnout-h"><{heading} id="turnout-h">'
            f"{title}</{heading}><p>{ctx.t('no_data')}</p></section>"
        )
    ident = t["identification"]
    facts = [
        (
            "turnout_now",
            f'<strong class="big" data-testid="turnout-percent">{ctx.pct(t["percent"])}</strong>',
        ),
        (
            "turnout_voted",
            f'<span data-testid="turnout-voted">{ctx.n(t["voted"])}</span> '
            f"{ctx.t('of_registered', n=fmt_int(t['registered'], ctx.lang))}",
        ),
        (
            "ident_face",
            f'<span data-testid="ident-face">{ctx.n(ident["identified_by_face"])}</span>',
        ),
        (
            "ident_document",
            f'<span data-testid="ident-document">{ctx.n(ident["admitted_by_document"])}</span>',
        ),
        ("ident_mobile", f'<span data-testid="ident-mobile">{ctx.n(ident["mobile_box"])}</span>'),
        (
            "ident_stations",
            ctx.t(
                "n_of",
                n=fmt_int(ident["stations"], ctx.lang),
                of=fmt_int(t["stations"]["of"], ctx.lang),
            ),
        ),
    ]
    items = "".join(f"<div><dt>{ctx.t(k)}</dt><dd>{v}</dd></div>" for k, v in facts)
    return (
        f'<section id="turnout" aria-labelledby="turnout-h"><{heading} id="turnout-h">{title}'
        f'</{heading}><dl class="facts">{items}</dl>{turnout_chart(ctx, t, "turnout-chart")}'
        "</section>"
    )


def turnout_chart(ctx: Ctx, t: Mapping[str, Any], svg_id: str) -> str:
    """Turnout over the day: the published voted-by-hour figures as a line and a table."""
    hours: list[str] = list(t.get("hours") or t["by_hour"].keys())
    registered = int(t["registered"])
    if not hours:
        return ""
    points = []
    rows = []
    for h in hours:
        voted = int(t["by_hour"].get(h, 0))
        share = percent_floor(Fraction(voted, registered)) if registered else None
        label = f"{h}:00"
        tip = f"{label}: {fmt_int(voted, ctx.lang)} ({fmt_pct(share, ctx.lang)})"
        points.append((label, float(share or 0), tip))
        rows.append(
            f'<tr><th scope="row">{e(say("by_end_of_hour", ctx.lang, hour=h))}</th>'
            f"<td>{ctx.n(voted)}</td><td>{ctx.pct(share)}</td></tr>"
        )
    chart = svg.line_chart(
        points,
        svg_id=svg_id,
        title=say("chart_turnout_title", ctx.lang),
        desc=say("chart_turnout_desc", ctx.lang, n=len(hours)),
    )
    table = (
        f'<table class="numbers"><caption>{ctx.t("chart_turnout_title")}</caption><thead><tr>'
        f'<th scope="col">{ctx.t("col_hour")}</th><th scope="col">{ctx.t("col_voted")}</th>'
        f'<th scope="col">{ctx.t("col_turnout")}</th></tr></thead><tbody>{"".join(rows)}'
        "</tbody></table>"
    )
    return (
        f'<figure class="chart">{chart}<figcaption><details><summary>{ctx.t("show_table")}'
        f"</summary>{_scroll(table)}</details></figcaption></figure>"
    )


def _scroll(table: str) -> str:
    """A wide table scrolls inside its own box on a phone, reachable by keyboard and named
    by the table's caption."""
    found = _CAPTION.search(table)
    label = html.unescape(_TAG.sub("", found.group(1))) if found else ""
    return f'<div class="scroll" tabindex="0" role="region" aria-label="{e(label)}">{table}</div>'


def _rules(ctx: Ctx, contest: Mapping[str, Any]) -> str:
    r = contest["rules"]
    kind = r["kind"]
    if kind == "party_list":
        base = say("base_" + r["threshold_base"], ctx.lang)
        return ctx.t(
            "rules_party_list",
            seats=r["seats"],
            threshold=r["threshold_percent"],
            base=base,
            method=r["method"].replace("_", "-").title(),
        )
    if kind == "plurality":
        if r["seats"] == 1:
            return ctx.t("rules_plurality_one")
        return ctx.t("rules_plurality", seats=r["seats"])
    if kind == "majority":
        return ctx.t("rules_majority", percent=r["majority_percent"])
    return ctx.t(
        "rules_referendum", turnout=r["turnout_threshold_percent"], percent=r["pass_percent"]
    )


def contest_block(
    ctx: Ctx,
    contest: Mapping[str, Any],
    *,
    heading: str = "h2",
    outcome: bool = True,
    map_svg: str = "",
) -> str:
    """One contest at one unit: the preliminary and the final count side by side."""
    cid = contest["id"]
    names = _names(ctx, contest)
    colours = svg.option_colours([(o["id"], o["kind"]) for o in contest["options"]])
    sub = "h3" if heading == "h2" else "h4"
    parts = []
    for source in ("asu", "manual"):
        parts.append(
            _source_block(ctx, contest, source, names, colours, heading=sub, outcome=outcome)
        )
    at = ""
    if not outcome and contest.get("outcome_at"):
        at = f'<p class="note">{ctx.t("outcome_elsewhere")}</p>'
    return (
        f'<article class="contest" id="contest-{e(cid)}" aria-labelledby="contest-{e(cid)}-h">'
        f'<{heading} id="contest-{e(cid)}-h">{ctx.name(contest["name"])}</{heading}>'
        f'<p class="rules">{_rules(ctx, contest)}</p>{at}'
        f'<div class="sources">{"".join(parts)}</div>{map_svg}</article>'
    )


def _source_block(
    ctx: Ctx,
    contest: Mapping[str, Any],
    source: str,
    names: Mapping[str, Mapping[str, str]],
    colours: Mapping[str, str],
    *,
    heading: str,
    outcome: bool,
) -> str:
    cid = contest["id"]
    part = contest.get(source)
    badge = "badge_prelim" if source == "asu" else "badge_final"
    title = (
        f'<{heading}><span class="badge {source}">{ctx.t(badge)}</span> '
        f"{ctx.t('source_' + source)}</{heading}>"
    )
    counted = part["stations"] if part else 0
    progress = (
        f'<p class="progress">{ctx.t("stations_counted")} <strong data-testid="counted-{e(cid)}-'
        f'{source}">{ctx.n_of(counted, contest["stations"])}'
        "</strong></p>"
    )
    out = [
        f'<section class="source {source}" data-source="{source}" '
        f'aria-label="{ctx.t("source_" + source)}">{title}{progress}'
    ]
    if not part or not part["stations"]:
        out.append(f'<p class="empty">{ctx.t("no_count_" + source)}</p>')
    else:
        out.append(_tally(ctx, contest, source, part, names, colours))
    if outcome and "outcome" in contest:
        out.append(_outcome(ctx, contest, source, names))
    out.append("</section>")
    return "".join(out)


def _tally(
    ctx: Ctx,
    contest: Mapping[str, Any],
    source: str,
    part: Mapping[str, Any],
    names: Mapping[str, Mapping[str, str]],
    colours: Mapping[str, str],
) -> str:
    cid = contest["id"]
    shares = part["shares"]
    percent: Mapping[str, str] = shares["percent"]
    rows = []
    bar_rows = []
    keys = [o["id"] for o in contest["options"]]
    if "_invalid" in percent:
        keys.append("_invalid")
    for key in keys:
        label = (
            say("invalid_ballots", ctx.lang)
            if key == "_invalid"
            else (names[key].get(ctx.lang) or key)
        )
        votes = part["invalid"] if key == "_invalid" else part["votes"].get(key, 0)
        share = percent.get(key)
        tid = f"{e(cid)}-{source}-{e(key)}"
        rows.append(
            f'<tr><th scope="row"><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true">'
            f'<rect width="10" height="10" fill="{colours.get(key, svg.NO_DATA)}"/></svg>'
            f"{e(label)}</th>"
            f'<td data-testid="votes-{tid}">{ctx.n(votes)}</td>'
            f'<td data-testid="share-{tid}">{ctx.pct(share)}</td></tr>'
        )
        if share is not None:
            bar_rows.append(
                svg.Bar(
                    label,
                    share,
                    colours.get(key, svg.NO_DATA),
                    f"{fmt_pct(share, ctx.lang)} ({fmt_int(votes, ctx.lang)})",
                )
            )
    base_name = say("base_" + shares["base_name"], ctx.lang)
    foot = (
        f'<tr class="base"><th scope="row">{ctx.t("base_label", base=base_name)}</th>'
        f'<td data-testid="base-{e(cid)}-{source}">{ctx.n(shares["base"])}</td>'
        f"<td>{ctx.pct('100.00') if percent else '—'}</td></tr>"
        f'<tr><th scope="row">{ctx.t("ballots_total")}</th>'
        f'<td data-testid="ballots-{e(cid)}-{source}">{ctx.n(part["ballots"])}</td><td></td></tr>'
        f'<tr><th scope="row">{ctx.t("invalid_ballots")}</th>'
        f'<td data-testid="invalid-{e(cid)}-{source}">{ctx.n(part["invalid"])}</td><td></td></tr>'
    )
    table = (
        f'<table class="tally" id="tally-{e(cid)}-{source}"><caption>'
        f"{ctx.t('tally_caption', source=say('source_' + source, ctx.lang))}</caption><thead><tr>"
        f'<th scope="col">{ctx.t("col_option")}</th><th scope="col">{ctx.t("col_votes")}</th>'
        f'<th scope="col">{ctx.t("col_share")}</th></tr></thead><tbody>{"".join(rows)}</tbody>'
        f"<tfoot>{foot}</tfoot></table>"
    )
    rules = contest["rules"]
    threshold = None
    if rules["kind"] == "party_list" and "outcome" in contest:  # where the threshold applies
        threshold = rules.get("threshold_percent")
    chart = ""
    if bar_rows:
        chart = svg.bars(
            bar_rows,
            svg_id=f"bars-{cid}-{source}",
            title=say("chart_shares_title", ctx.lang, source=say("source_" + source, ctx.lang)),
            desc=say("chart_shares_desc", ctx.lang, base=base_name),
            threshold=threshold,
            threshold_label=say("threshold_line", ctx.lang, percent=threshold or 0),
        )
    return f'<figure class="chart">{chart}</figure>{_scroll(table)}'


def _outcome(
    ctx: Ctx, contest: Mapping[str, Any], source: str, names: Mapping[str, Mapping[str, str]]
) -> str:
    """The published outcome (seats, winners, runoff, referendum) of one source."""
    cid = contest["id"]
    o = (contest.get("outcome") or {}).get(source)
    if not o:
        return ""

    order = {x["id"]: i for i, x in enumerate(contest["options"])}

    def nm(i: str) -> str:
        return e((names.get(i) or {}).get(ctx.lang) or i)

    def _subject(i: str) -> str:
        return ctx.t("col_turnout") if i == "turnout" else nm(i)

    lines = [f'<p class="status-{e(o["status"])}" data-testid="outcome-{e(cid)}-{source}">']
    lines.append(f"<strong>{ctx.tk('status_', o['status'])}</strong>")
    if o["winners"]:
        lines.append(": " + ", ".join(f'<span class="winner">{nm(w)}</span>' for w in o["winners"]))
    if o["runoff"]:
        lines.append(": " + ", ".join(nm(w) for w in o["runoff"]))
    if o["tied"]:
        lines.append(" (" + ctx.t("tied") + ": " + ", ".join(nm(w) for w in o["tied"]) + ")")
    lines.append("</p>")
    if not o.get("complete"):
        lines.append(f'<p class="warning">{ctx.t("outcome_incomplete")}</p>')
    for flag in o.get("flags") or ():
        lines.append(f'<p class="warning flag">{ctx.tk("flag_", flag)}</p>')
    if o["seats"]:
        rows = "".join(
            f'<tr><th scope="row">{nm(p)}</th><td data-testid="seats-{e(cid)}-{source}-{e(p)}">'
            f"{ctx.n(n)}</td><td>{', '.join(nm(c) for c in o['elected'].get(p, ()))}</td></tr>"
            for p, n in sorted(o["seats"].items(), key=lambda kv: order.get(kv[0], 0))
        )
        lines.append(
            _scroll(
                f'<table class="seats"><caption>{ctx.t("seats_caption")}</caption><thead><tr>'
                f'<th scope="col">{ctx.t("col_party")}</th><th scope="col">{ctx.t("col_seats")}'
                f'</th><th scope="col">{ctx.t("col_elected")}</th></tr></thead><tbody>{rows}'
                "</tbody></table>"
            )
        )
    if o["checks"]:
        rows = "".join(
            f'<tr><th scope="row">{_subject(c["subject"])}'
            f"</th><td>{ctx.tk('rule_', c['rule'])}</td>"
            f"<td>{ctx.n(c['count'])} / {ctx.n(c['base'])} "
            f"({ctx.tk('base_', c['base_name'])})</td>"
            f"<td>{ctx.pct(c['percent'])}</td>"
            f"<td>{e(c['comparison'])} {c['threshold_percent']}%</td>"
            f'<td class="{"met" if c["met"] else "unmet"}">'
            f"{ctx.t('yes' if c['met'] else 'no')}</td></tr>"
            for c in o["checks"]
        )
        lines.append(
            _scroll(
                f'<table class="checks"><caption>{ctx.t("checks_caption")}</caption><thead><tr>'
                f'<th scope="col">{ctx.t("col_subject")}</th><th scope="col">{ctx.t("col_rule")}'
                f'</th><th scope="col">{ctx.t("col_count_base")}</th><th scope="col">'
                f'{ctx.t("col_share_floor")}</th><th scope="col">{ctx.t("col_threshold")}</th>'
                f'<th scope="col">{ctx.t("col_met")}</th></tr></thead><tbody>{rows}</tbody>'
                "</table>"
            )
        )
    return f'<div class="outcome">{"".join(lines)}</div>'


def children_table(ctx: Ctx, view: Mapping[str, Any], *, table_id: str = "children") -> str:
    """The units one level down, each with its turnout and who leads each contest."""
    children = view.get("children") or []
    if not children:
        return ""
    level = children[0]["level"]
    contests = list(view["contests"])
    names = {c["id"]: contest_names(c) for c in contests}
    head = "".join(f'<th scope="col">{ctx.name(c["name"])}</th>' for c in contests)
    rows = []
    for ch in children:
        t = ch.get("turnout")
        reported = "—"
        percent = "—"
        if t is not None:
            reported = ctx.t(
                "n_of",
                n=fmt_int(t["stations"]["reported"], ctx.lang),
                of=fmt_int(t["stations"]["of"], ctx.lang),
            )
            percent = ctx.pct(t["percent"])
        label = _unit_title(ctx, ch)
        if level == "station":
            label = f"{label} — {ch['name'].get(ctx.lang) or ''}"
        cells = []
        for c in contests:
            lead = ch["leaders"].get(c["id"])
            if not lead:
                cells.append("<td>—</td>")
                continue
            who = (
                e((names[c["id"]].get(lead["option"]) or {}).get(ctx.lang) or lead["option"])
                if lead["option"]
                else ctx.t("no_leader")
            )
            share = f" {ctx.pct(lead['percent'])}" if lead["percent"] else ""
            cells.append(
                f'<td><span class="badge {lead["source"]}" '
                f'title="{ctx.t("source_" + lead["source"])}">'
                f"{ctx.t('short_' + lead['source'])}</span> {who}{share}</td>"
            )
        rows.append(
            f'<tr data-unit="{e(ch["id"])}"><th scope="row"><a href="{ctx.href(level, ch["id"])}">'
            f"{e(label)}</a></th><td>{percent}</td><td>{reported}</td>{''.join(cells)}</tr>"
        )
    table = (
        f'<table class="children" id="{table_id}-table"><caption>'
        f"{ctx.t('children_caption', level=say(LEVEL_KEYS[level] + '_plural', ctx.lang))}"
        f'</caption><thead><tr><th scope="col">{ctx.t(LEVEL_KEYS[level])}</th>'
        f'<th scope="col">{ctx.t("col_turnout")}</th><th scope="col">{ctx.t("col_reported")}</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return (
        f'<section id="{table_id}" aria-labelledby="{table_id}-h"><h2 id="{table_id}-h">'
        f"{ctx.t(LEVEL_KEYS[level] + '_plural')}</h2>{_scroll(table)}</section>"
    )


def district_contests_table(ctx: Ctx, view: Mapping[str, Any]) -> str:
    """Single-member contests below this unit: one line each, decided on the district page."""
    items = view.get("district_contests") or []
    if not items:
        return ""
    rows = []
    for c in items:
        names = {o["id"]: o["name"] for o in c["options"]}
        lead = c.get("summary")
        if lead and lead["option"]:
            who = (
                f'<span class="badge {lead["source"]}">{ctx.t("short_" + lead["source"])}</span> '
                f"{ctx.name(names.get(lead['option']))} {ctx.pct(lead['percent'])}"
            )
            counted = ctx.t(
                "n_of", n=fmt_int(lead["stations"], ctx.lang), of=fmt_int(lead["of"], ctx.lang)
            )
        else:
            who, counted = "—", "—"
        d = c["district"]
        rows.append(
            f'<tr><th scope="row"><a href="{ctx.href("district", d["id"])}#contest-{e(c["id"])}">'
            f"{ctx.name(c['name'])}</a></th><td>{ctx.name(d['name'])}</td><td>{who}</td>"
            f"<td>{counted}</td></tr>"
        )
    table = (
        f'<table class="districts"><caption>{ctx.t("district_contests")}</caption><thead><tr>'
        f'<th scope="col">{ctx.t("col_contest")}</th><th scope="col">{ctx.t("level_district")}'
        f'</th><th scope="col">{ctx.t("col_leader")}</th><th scope="col">'
        f"{ctx.t('stations_counted')}</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return (
        f'<section id="district-contests" aria-labelledby="district-contests-h">'
        f'<h2 id="district-contests-h">{ctx.t("district_contests")}</h2>{_scroll(table)}</section>'
    )


# --- maps ----------------------------------------------------------------------------------
def _region_areas(ctx: Ctx, view: Mapping[str, Any], fill: Any, value: Any) -> list[svg.Area]:
    kinds = {r.id: r.kind.value for r in ctx.definition.regions}
    return [
        svg.Area(
            id=ch["id"],
            name=ch["name"].get(ctx.lang) or ch["id"],
            fill=fill(ch),
            href=ctx.href("region", ch["id"]),
            value=value(ch),
            kind=kinds.get(ch["id"], "oblast"),
        )
        for ch in view.get("children") or []
    ]


def turnout_map(ctx: Ctx, view: Mapping[str, Any]) -> str:
    def fill(ch: Mapping[str, Any]) -> str:
        t = ch.get("turnout")
        return svg.turnout_colour(t["percent"] if t and t["stations"]["reported"] else None)

    def value(ch: Mapping[str, Any]) -> str:
        t = ch.get("turnout")
        return fmt_pct(t["percent"], ctx.lang) if t and t["stations"]["reported"] else "—"

    legend = svg.turnout_legend([say(f"turnout_bin_{i}", ctx.lang) for i in range(5)])
    legend.append((svg.NO_DATA, say("no_data", ctx.lang)))
    drawing = svg.region_map(
        _region_areas(ctx, view, fill, value),
        svg_id="map-turnout",
        title=say("map_turnout_title", ctx.lang),
        desc=say("map_desc", ctx.lang),
        legend=legend,
    )
    return (
        f'<figure class="map-figure" id="map">{drawing}<figcaption>{ctx.t("map_note")}'
        "</figcaption></figure>"
    )


def leader_map(ctx: Ctx, view: Mapping[str, Any], contest: Mapping[str, Any]) -> str:
    cid = contest["id"]
    names = _names(ctx, contest)
    colours = svg.option_colours([(o["id"], o["kind"]) for o in contest["options"]])
    seen: dict[str, str] = {}

    def lead(ch: Mapping[str, Any]) -> Mapping[str, Any] | None:
        got: Mapping[str, Any] | None = ch["leaders"].get(cid)
        return got if got and got["option"] else None

    def fill(ch: Mapping[str, Any]) -> str:
        got = lead(ch)
        if got is None:
            return svg.NO_DATA
        seen[got["option"]] = colours.get(got["option"], svg.NO_DATA)
        return colours.get(got["option"], svg.NO_DATA)

    def value(ch: Mapping[str, Any]) -> str:
        got = lead(ch)
        if got is None:
            return "—"
        who = (names.get(got["option"]) or {}).get(ctx.lang) or got["option"]
        return f"{who} {fmt_pct(got['percent'], ctx.lang)}"

    areas = _region_areas(ctx, view, fill, value)
    legend = [(c, (names.get(o) or {}).get(ctx.lang) or o) for o, c in seen.items()]
    legend.append((svg.NO_DATA, say("no_data", ctx.lang)))
    drawing = svg.region_map(
        areas,
        svg_id=f"map-{cid}",
        title=say("map_leader_title", ctx.lang, contest=contest["name"].get(ctx.lang)),
        desc=say("map_desc", ctx.lang),
        legend=legend,
    )
    return (
        f'<figure class="map-figure" id="map-{e(cid)}-figure">{drawing}<figcaption>'
        f"{ctx.t('map_leader_note')}</figcaption></figure>"
    )


# --- pages ---------------------------------------------------------------------------------
def home_page(ctx: Ctx, view: Mapping[str, Any]) -> str:
    """The national picture: progress, turnout, every nationwide contest, the regions."""
    body = [status_block(ctx, view)]
    if view.get("version"):
        body.append(turnout_block(ctx, view))
        body.append(turnout_map(ctx, view))
    contests = "".join(
        contest_block(ctx, c, map_svg=leader_map(ctx, view, c) if view.get("version") else "")
        for c in view["contests"]
    )
    body.append(
        f'<section id="results" aria-labelledby="results-h"><h2 id="results-h" class="sr-only">'
        f"{ctx.t('results_title')}</h2>{contests}</section>"
    )
    body.append(district_contests_table(ctx, view))
    body.append(children_table(ctx, view, table_id="regions"))
    body.append(find_station_form(ctx))
    return layout(
        ctx,
        say("home_title", ctx.lang),
        "\n".join(body),
        footer_extra=_published_footer(ctx, view),
    )


def unit_page(ctx: Ctx, view: Mapping[str, Any]) -> str:
    """A region, district or territorial commission."""
    u = view["unit"]
    title = _unit_title(ctx, u)
    level_word = say(LEVEL_KEYS[u["level"]], ctx.lang)
    body = [f'<p class="kind">{e(level_word)}</p>', status_block(ctx, view)]
    if view.get("version"):
        body.append(turnout_block(ctx, view))
    contests = "".join(contest_block(ctx, c, outcome="outcome" in c) for c in view["contests"])
    body.append(
        f'<section id="results" aria-labelledby="results-h"><h2 id="results-h" class="sr-only">'
        f"{ctx.t('results_title')}</h2>{contests}</section>"
    )
    body.append(district_contests_table(ctx, view))
    body.append(children_table(ctx, view))
    return layout(
        ctx,
        title,
        "\n".join(body),
        crumbs=_crumbs(ctx, u["path"]),
        footer_extra=_published_footer(ctx, view),
    )


def station_page(ctx: Ctx, view: Mapping[str, Any]) -> str:
    """One station: the published numbers, then everything the station signed."""
    u = view["unit"]
    s = view["station"]
    ev = view["evidence"]
    title = say("station_title", ctx.lang, number=s["number"])
    facts = [
        ("station_name", ctx.name(s["name"])),
        ("station_address", ctx.name(s["address"])),
        (
            "station_registered",
            f'<span data-testid="station-registered">{ctx.n(s["registered_voters"])}</span>',
        ),
    ]
    items = "".join(f"<div><dt>{ctx.t(k)}</dt><dd>{v}</dd></div>" for k, v in facts)
    body = [f'<dl class="facts station-facts">{items}</dl>']
    body.append(
        f'<section id="published" aria-labelledby="published-h"><h2 id="published-h">'
        f"{ctx.t('published_title')}</h2><p>{ctx.t('published_note')}</p>"
        f"{turnout_block(ctx, view, heading='h3')}"
        + "".join(contest_block(ctx, c, heading="h3", outcome=False) for c in view["contests"])
        + "</section>"
    )
    body.append(_signed_reports(ctx, view, ev))
    return layout(
        ctx,
        title,
        "\n".join(body),
        crumbs=_crumbs(ctx, u["path"]),
        footer_extra=_published_footer(ctx, view),
    )


def _signed_reports(ctx: Ctx, view: Mapping[str, Any], ev: Mapping[str, Any]) -> str:
    contests = {c["id"]: c for c in view["contests"]}
    out = [
        f'<section id="reports" aria-labelledby="reports-h"><h2 id="reports-h">'
        f"{ctx.t('reports_title')}</h2><p>{ctx.t('reports_note')}</p>"
    ]
    for c in ev["conflicts"]:
        out.append(
            f'<p class="warning" role="alert" data-testid="conflict">'
            f"{ctx.t('conflict', seq=c['seq'])}"
            f" {ctx.time(c['received_at'])}: {e(c['reason'])}</p>"
        )
    # zero report
    out.append(f'<h3 id="zero-report">{ctx.t("zero_title")}</h3>')
    if not ev["zero_reports"]:
        out.append(f'<p class="empty">{ctx.t("none_received")}</p>')
    for z in ev["zero_reports"]:
        verdict = "zero_ok" if z.get("all_zero") else "zero_not_ok"
        out.append(
            f'<p data-testid="zero-report">{ctx.t("signed_at")} {ctx.time(z["signed_at"])} — '
            f"{ctx.t(verdict)} {_counted(ctx, z)} {_download(ctx, z)}</p>"
        )
    # turnout snapshots
    out.append(f'<h3 id="turnout-reports">{ctx.t("turnout_reports_title")}</h3>')
    if not ev["turnout_reports"]:
        out.append(f'<p class="empty">{ctx.t("none_received")}</p>')
    else:
        rows = "".join(
            f"<tr><td>{ctx.time(r['as_of'])}</td><td>{ctx.n(r['voted'])}</td>"
            f"<td>{_counted(ctx, r)}</td><td>{_download(ctx, r)}</td></tr>"
            for r in ev["turnout_reports"]
        )
        out.append(
            _scroll(
                f'<table class="turnout-reports"><caption class="sr-only">'
                f"{ctx.t('turnout_reports_title')}"
                f'</caption><thead><tr><th scope="col">{ctx.t("col_as_of")}</th><th scope="col">'
                f'{ctx.t("col_voted")}</th><th scope="col">{ctx.t("col_counted")}</th>'
                f'<th scope="col">{ctx.t("col_message")}</th></tr></thead><tbody>{rows}</tbody>'
                "</table>"
            )
        )
    # identification
    out.append(f'<h3 id="identification-reports">{ctx.t("ident_reports_title")}</h3>')
    if not ev["identification_reports"]:
        out.append(f'<p class="empty">{ctx.t("none_received")}</p>')
    else:
        rows = "".join(
            f'<tr data-phase="{e(r.get("phase"))}"><td>{ctx.tk("phase_", r.get("phase"))}'
            f"</td><td>{ctx.time(r['signed_at'])}</td>"
            + "".join(
                f'<td data-testid="ident-{r["seq"]}-{k}">{ctx.n(r[k])}</td>' for k in IDENT_KEYS
            )
            + f"<td>{_counted(ctx, r)}</td><td>{_download(ctx, r)}</td></tr>"
            for r in ev["identification_reports"]
        )
        out.append(
            _scroll(
                f'<table class="ident-reports"><caption class="sr-only">'
                f"{ctx.t('ident_reports_title')}</caption>"
                f'<thead><tr><th scope="col">{ctx.t("col_phase")}</th><th scope="col">'
                f'{ctx.t("signed_at")}</th><th scope="col">{ctx.t("col_voted")}</th>'
                f'<th scope="col">{ctx.t("ident_face")}</th><th scope="col">'
                f'{ctx.t("ident_document")}</th><th scope="col">{ctx.t("ident_mobile")}</th>'
                f'<th scope="col">{ctx.t("col_counted")}</th><th scope="col">'
                f"{ctx.t('col_message')}</th></tr></thead><tbody>{rows}</tbody></table>"
            )
        )
    # ASU reports
    out.append(f'<h3 id="asu-reports">{ctx.t("asu_reports_title")}</h3>')
    if not ev["asu_reports"]:
        out.append(f'<p class="empty">{ctx.t("none_received")}</p>')
    for r in ev["asu_reports"]:
        out.append(
            f"<p>{ctx.t('signed_at')} {ctx.time(r['signed_at'])} — {ctx.t('sheets')} "
            f"{ctx.n(r['sheets'])}; {_counted(ctx, r)} {_download(ctx, r)}</p>"
        )
        if r.get("deferred_sheets"):
            n = fmt_int(r["deferred_sheets"], ctx.lang)
            out.append(
                f'<p class="note" data-testid="deferred-sheets">{ctx.t("deferred_sheets", n=n)}</p>'
            )
        for p in r.get("station_problems") or ():
            out.append(f'<p class="warning">{ctx.t("station_listed_problem")}: {e(p)}</p>')
        for t in r["tallies"]:
            c = contests.get(str(t.get("contest_id")))
            if c is None:
                continue
            out.append(_signed_tally(ctx, c, t))
    # manual count
    out.append(_manual(ctx, ev, contests))
    # alerts
    out.append(f'<h3 id="alerts">{ctx.t("alerts_title")}</h3>')
    if not ev["alerts"]:
        out.append(f'<p class="empty">{ctx.t("no_alerts")}</p>')
    else:
        rows = "".join(
            f'<tr class="severity-{e(a["severity"])}"><td>{ctx.time(a["raised_at"])}</td>'
            f"<td>{e(a['kind'])}</td><td>{e(a['severity'])}</td><td>{e(a['detail'])}</td>"
            f"<td>{ctx.time(a['resolved_at']) if a['resolved_at'] else ctx.t('open')}</td></tr>"
            for a in ev["alerts"]
        )
        out.append(
            _scroll(
                f'<table class="alerts"><caption class="sr-only">{ctx.t("alerts_title")}</caption>'
                f"<thead><tr>"
                f'<th scope="col">{ctx.t("col_raised")}</th><th scope="col">{ctx.t("col_kind")}'
                f'</th><th scope="col">{ctx.t("col_severity")}</th><th scope="col">'
                f'{ctx.t("col_detail")}</th><th scope="col">{ctx.t("col_resolved")}</th></tr>'
                f"</thead><tbody>{rows}</tbody></table>"
            )
        )
    # every message
    rows = "".join(
        f"<tr><td>{m['seq']}</td><td>{ctx.tk('kind_', m['kind'])}</td>"
        f"<td>{ctx.tk('phase_', m['phase']) if m.get('phase') else ''}</td>"
        f"<td>{ctx.time(m['signed_at'])}</td><td>{ctx.time(m['received_at'])}</td>"
        f'<td>{_counted(ctx, m)}</td><td><code class="hash">{e(m["hash"][:16])}…</code></td>'
        f'<td><a href="{e(m["href"])}" download>{ctx.t("download")}</a></td></tr>'
        for m in ev["messages"]
    )
    out.append(
        f'<h3 id="messages">{ctx.t("messages_title")}</h3><p>{ctx.t("messages_note")} '
        f'<a href="{e(ev["all_messages"])}" data-testid="all-messages" download>'
        f"{ctx.t('all_messages')}</a></p>"
    )
    if ev["messages"]:
        out.append(
            _scroll(
                f'<table class="messages" id="messages-table"><caption class="sr-only">'
                f"{ctx.t('messages_title')}"
                f'</caption><thead><tr><th scope="col">№</th><th scope="col">{ctx.t("col_kind")}'
                f'</th><th scope="col">{ctx.t("col_phase")}</th><th scope="col">'
                f'{ctx.t("signed_at")}</th><th scope="col">{ctx.t("col_received")}</th>'
                f'<th scope="col">{ctx.t("col_counted")}</th><th scope="col">SHA-256</th>'
                f'<th scope="col">{ctx.t("col_message")}</th></tr></thead><tbody>{rows}</tbody>'
                "</table>"
            )
        )
    out.append("</section>")
    return "".join(out)


def _option_suffix(ctx: Ctx, names: Mapping[str, Mapping[str, str]], oid: str | None) -> str:
    if not oid:
        return ""
    return " — " + e((names.get(oid) or {}).get(ctx.lang) or oid)


def _counted(ctx: Ctx, m: Mapping[str, Any]) -> str:
    if m.get("counted"):
        return f'<span class="counted">{ctx.t("counted")}</span>'
    if m.get("mode") == "test":
        return f'<span class="not-counted">{ctx.t("test_mode")}</span>'
    if m.get("problem"):
        return f'<span class="not-counted">{ctx.t("not_counted")}: {e(m["problem"])}</span>'
    return ""


def _download(ctx: Ctx, m: Mapping[str, Any]) -> str:
    return f'<a href="{e(m["href"])}" download>{ctx.t("signed_message", seq=m["seq"])}</a>'


def _signed_tally(ctx: Ctx, contest: Mapping[str, Any], t: Mapping[str, Any]) -> str:
    """A tally as the station signed it, beside the published station tally."""
    names = _names(ctx, contest)
    pub = contest.get("asu")
    rows = []

    def row(label: str, signed: Any, published: Any) -> str:
        same = published is not None and signed == published
        mark = "—" if published is None else ctx.t("same" if same else "differs")
        cls = "" if published is None or same else ' class="differs"'
        return (
            f'<tr{cls}><th scope="row">{e(label)}</th><td>{ctx.n(signed)}</td>'
            f"<td>{ctx.n(published) if published is not None else '—'}</td><td>{mark}</td></tr>"
        )

    rows.append(row(say("ballots_total", ctx.lang), t.get("ballots"), pub and pub["ballots"]))
    rows.append(row(say("invalid_ballots", ctx.lang), t.get("invalid"), pub and pub["invalid"]))
    votes = t.get("votes") or {}
    order = [o["id"] for o in contest["options"]]
    for oid in [*[o for o in order if o in votes], *[o for o in votes if o not in order]]:
        label = (names.get(oid) or {}).get(ctx.lang) or oid
        rows.append(row(label, votes[oid], pub["votes"].get(oid) if pub else None))
    return _scroll(
        f'<table class="signed-tally" data-contest="{e(contest["id"])}"><caption>'
        f"{ctx.name(contest['name'])}: {ctx.t('signed_vs_published')}</caption><thead><tr>"
        f'<th scope="col">{ctx.t("col_line")}</th><th scope="col">{ctx.t("col_signed")}</th>'
        f'<th scope="col">{ctx.t("col_published")}</th><th scope="col">{ctx.t("col_same")}</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _manual(ctx: Ctx, ev: Mapping[str, Any], contests: Mapping[str, Mapping[str, Any]]) -> str:
    out = [f'<h3 id="manual-count">{ctx.t("manual_title")}</h3>']
    m = ev.get("manual")
    if m is None:
        out.append(f'<p class="empty" data-testid="no-manual">{ctx.t("no_manual")}</p>')
    else:
        scan = m["scan"]
        out.append(
            f'<p data-testid="manual-protocol">'
            f"{ctx.t('manual_version', version=m['version'], versions=m['versions'])}"
            f" — {ctx.t('entered_at')} {ctx.time(m['entered_at'])} ({e(m['source'])})"
            + (f" — {ctx.t('reason')}: {e(m['reason'])}" if m["reason"] else "")
            + "</p>"
        )
        link = f'<a href="{e(scan["href"])}" data-testid="scan-link">{ctx.t("scan_link")}</a>'
        if scan["media_type"].startswith("image/"):
            out.append(
                f'<figure class="scan"><a href="{e(scan["href"])}"><img src="{e(scan["href"])}" '
                f'alt="{ctx.t("scan_alt")}" loading="lazy" width="300"></a>'
                f"<figcaption>{link}</figcaption></figure>"
            )
        else:
            out.append(f"<p>{link}</p>")
        for count in m["contests"]:
            c = contests.get(count["contest_id"])
            if c is None:
                continue
            names = _names(ctx, c)
            lines = [
                (say("line_" + k, ctx.lang), count[k])
                for k in ("received", "issued", "spoiled", "ballots", "invalid")
            ]
            lines += [
                ((names.get(o) or {}).get(ctx.lang) or o, n) for o, n in count["votes"].items()
            ]
            rows = "".join(
                f'<tr><th scope="row">{e(label)}</th><td>{ctx.n(n)}</td></tr>' for label, n in lines
            )
            out.append(
                _scroll(
                    f'<table class="manual" data-contest="{e(c["id"])}"><caption>'
                    f"{ctx.name(c['name'])}: {ctx.t('manual_title')}</caption><thead><tr>"
                    f'<th scope="col">{ctx.t("col_line")}</th><th scope="col">{ctx.t("col_votes")}'
                    f"</th></tr></thead><tbody>{rows}</tbody></table>"
                )
            )
    # the comparison with the ASU count
    out.append(f'<h3 id="reconciliation">{ctx.t("recon_title")}</h3>')
    if not ev["reconciliation"]:
        out.append(f'<p class="empty">{ctx.t("no_recon")}</p>')
    for r in ev["reconciliation"]:
        c = contests.get(r["contest_id"])
        cname = ctx.name(c["name"]) if c else e(r["contest_id"])
        names = _names(ctx, c) if c else {}
        status = r["status"]
        cls = "warning" if status == "difference" else "note"
        out.append(
            f'<p class="{cls}" data-testid="recon-{e(r["contest_id"])}" data-status="{e(status)}">'
            f"{cname}: <strong>{ctx.tk('recon_', status)}</strong></p>"
        )
        if r["lines"]:
            rows = "".join(
                f'<tr{_DIFFERS if ln["exceeded"] else ""}><th scope="row">'
                f"{ctx.tk('line_', ln['line'])}"
                f"{_option_suffix(ctx, names, ln['id'])}"
                f"</th><td>{ctx.n(ln['asu'])}</td><td>{ctx.n(ln['manual'])}</td>"
                f"<td>{_signed_int(ln['difference'])}</td>"
                f"<td>{ctx.t('yes' if ln['exceeded'] else 'no')}</td></tr>"
                for ln in r["lines"]
            )
            out.append(
                _scroll(
                    f'<table class="recon"><caption>{cname}: {ctx.t("recon_title")}</caption>'
                    f'<thead><tr><th scope="col">{ctx.t("col_line")}</th><th scope="col">'
                    f'{ctx.t("short_asu")}</th><th scope="col">{ctx.t("short_manual")}</th>'
                    f'<th scope="col">{ctx.t("col_difference")}</th><th scope="col">'
                    f"{ctx.t('col_exceeded')}</th></tr></thead><tbody>{rows}</tbody></table>"
                )
            )
    return "".join(out)


def find_station_form(ctx: Ctx) -> str:
    return (
        f'<section id="find" aria-labelledby="find-h"><h2 id="find-h">{ctx.t("find_title")}</h2>'
        f'<form method="get" action="/{ctx.lang}/station" class="find">'
        f'<label for="find-number">{ctx.t("find_label")}</label> '
        f'<input id="find-number" name="number" inputmode="numeric" pattern="[0-9]{{1,8}}" '
        f'maxlength="8" required> <button type="submit">{ctx.t("find_button")}</button></form>'
        "</section>"
    )


# --- check a report ------------------------------------------------------------------------
def check_page(
    ctx: Ctx,
    *,
    result: Mapping[str, Any] | None = None,
    refused: tuple[str, str, Mapping[str, object]] | None = None,
    names: Mapping[str, Mapping[str, Any]] | None = None,
    max_mb: int = 20,
    enabled: bool = True,
) -> str:
    """The form, and (after a post) each report found: verified and compared, or refused."""
    body = [f"<p>{ctx.t('check_intro')}</p>"]
    if refused is not None:
        key, detail, values = refused
        body.append(
            f'<div class="refused" role="alert" id="check-refused"><p>{ctx.t(key, **values)}</p>'
            + (f'<p class="detail" lang="en">{e(detail)}</p>' if detail else "")
            + "</div>"
        )
    if result is not None:
        for i, r in enumerate(result["reports"]):
            body.append(_check_report(ctx, r, i, names or {}, result.get("published_version")))
        if result.get("ignored_codes"):
            body.append(f'<p class="note">{ctx.t("check_ignored", n=result["ignored_codes"])}</p>')
    if not enabled:
        body.append(f'<p class="warning">{ctx.t("check_disabled")}</p>')
    else:
        body.append(
            f'<form method="post" action="/{ctx.lang}/check" enctype="multipart/form-data" '
            f'class="check" id="check-form">'
            f'<p><label for="check-photo">{ctx.t("check_photo_label")}</label><br>'
            f'<input id="check-photo" type="file" name="photo" multiple '
            f'accept="image/png,image/jpeg,image/webp" aria-describedby="check-photo-hint">'
            f'<br><small id="check-photo-hint">{ctx.t("check_photo_hint", max=max_mb)}</small></p>'
            f'<p><label for="check-text">{ctx.t("check_text_label")}</label><br>'
            f'<textarea id="check-text" name="text" rows="6" cols="60" spellcheck="false" '
            f'autocomplete="off"></textarea></p>'
            f'<p><button type="submit">{ctx.t("check_button")}</button></p></form>'
        )
    return layout(ctx, say("check_title", ctx.lang), "\n".join(body), section="check")


_LINE_KEYS = {
    "ballots": "ballots_total",
    "invalid": "invalid_ballots",
    "voted": "col_voted",
    "identified_by_face": "ident_face",
    "admitted_by_document": "ident_document",
    "mobile_box": "ident_mobile",
}


def _check_report(
    ctx: Ctx,
    r: Mapping[str, Any],
    i: int,
    names: Mapping[str, Mapping[str, Any]],
    version: int | None,
) -> str:
    if not r["verified"]:
        c = r["claimed"]
        return (
            f'<section class="check-result refused" id="report-{i}" data-verified="false" '
            f'role="alert"><h2>{ctx.t("check_failed_title")}</h2>'
            f"<p>{ctx.t('check_failed', kind=c['kind'], station=c['station'], seq=c['seq'])}</p>"
            f'<p class="detail" lang="en" data-testid="check-error">{e(r["error"])}</p></section>'
        )
    rep = r["report"]
    kind_key = "kind_" + rep["kind"]
    kind = say(kind_key, ctx.lang) if has(kind_key) else rep["kind"]
    out = [
        f'<section class="check-result verified" id="report-{i}" data-verified="true" '
        f'aria-labelledby="report-{i}-h"><h2 id="report-{i}-h">{ctx.t("check_ok_title")}</h2>',
        f"<p>{ctx.t('check_ok', number=rep['number'], kind=kind, seq=rep['seq'])}"
        f" {ctx.t('signed_at')} {ctx.time(rep['signed_at'])}.</p>",
    ]
    if rep.get("phase"):
        out.append(f"<p>{ctx.t('col_phase')}: {ctx.tk('phase_', rep['phase'])}</p>")
    if rep.get("mode") == "test":
        out.append(f'<p class="warning">{ctx.t("check_test_mode")}</p>')
    received_key = {
        "same": "check_received_same",
        "different": "check_received_different",
        "not_received": "check_not_received",
    }[r["received"]]
    cls = "warning" if r["received"] == "different" else "note"
    out.append(f'<p class="{cls}" data-testid="check-received">{ctx.t(received_key)}</p>')
    if r.get("message"):
        out.append(f'<p><a href="{e(r["message"])}">{ctx.t("check_stored_message")}</a></p>')
    if not r["final"]:
        out.append(f'<p class="note">{ctx.t("check_not_final")}</p>')
    rows = []
    for ln in r["lines"]:
        contest = names.get(ln["contest_id"] or "") or {}
        cname = (contest.get("name") or {}).get(ctx.lang, "") if contest else ""
        if ln["line"] == "votes":
            label = (contest.get("options", {}).get(ln["id"]) or {}).get(ctx.lang) or ln["id"]
        else:
            label = say(_LINE_KEYS.get(ln["line"], "col_line"), ctx.lang)
        same = ln["same"]
        mark = "—" if same is None else ctx.t("same" if same else "differs")
        rows.append(
            f"<tr{_DIFFERS if same is False else ''}><td>{e(cname)}</td>"
            f'<th scope="row">{e(label)}</th><td>{ctx.n(ln["signed"])}</td>'
            f"<td>{ctx.n(ln['published']) if ln['published'] is not None else '—'}</td>"
            f"<td>{mark}</td></tr>"
        )
    if rows:
        out.append(
            _scroll(
                f'<table class="check-lines" id="report-{i}-lines"><caption>'
                f"{ctx.t('check_lines_caption', version=version or '—')}</caption><thead><tr>"
                f'<th scope="col">{ctx.t("col_contest")}</th><th scope="col">{ctx.t("col_line")}'
                f'</th><th scope="col">{ctx.t("col_signed")}</th><th scope="col">'
                f'{ctx.t("col_published")}</th><th scope="col">{ctx.t("col_same")}</th></tr>'
                f"</thead><tbody>{''.join(rows)}</tbody></table>"
            )
        )
    out.append(
        f'<p><a href="{ctx.href("station", rep["station"])}">'
        f"{ctx.t('station_title', number=rep['number'])}</a> · SHA-256 "
        f'<code class="hash">{e(rep["hash"])}</code></p></section>'
    )
    return "".join(out)


# --- open data -----------------------------------------------------------------------------
def data_page(ctx: Ctx, view: Mapping[str, Any]) -> str:
    """Every download: the published document, NIST, the record, CSV per contest and level."""
    levels = ("nation", "region", "district", "commission", "station")
    rows = []
    for c in ctx.definition.contests:
        own = ("district", "commission", "station") if c.district_id else levels
        links = " · ".join(
            f'<a href="/api/v1/csv/{e(c.id)}/{lv}.csv">{ctx.t(LEVEL_KEYS[lv] + "_plural")}</a>'
            for lv in own
        )
        rows.append(f'<tr><th scope="row">{e(c.name.get(ctx.lang))}</th><td>{links}</td></tr>')
    turnout_links = " · ".join(
        f'<a href="/api/v1/csv/turnout/{lv}.csv">{ctx.t(LEVEL_KEYS[lv] + "_plural")}</a>'
        for lv in levels
    )
    rows.append(f'<tr><th scope="row">{ctx.t("turnout_title")}</th><td>{turnout_links}</td></tr>')
    version = view.get("version")
    sha = view.get("sha256") or ""
    csv_table = (
        f'<table class="csv"><caption>{ctx.t("csv_title")}</caption>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    body = f"""<p>{ctx.t("data_intro")}</p>
<ul class="downloads" id="downloads">
<li><a href="/api/v1/results.json" data-testid="dl-results">{ctx.t("dl_results")}</a>
 — {ctx.t("dl_results_note", version=version or "—")} <code class="hash">{e(sha)}</code></li>
<li><a href="/api/v1/nist.json" data-testid="dl-nist">{ctx.t("dl_nist")}</a></li>
<li><a href="/api/v1/record.tar.gz" data-testid="dl-record">{ctx.t("dl_record")}</a>
 — {ctx.t("dl_record_note")}</li>
<li><a href="/api/v1/status.json">{ctx.t("dl_status")}</a></li>
<li><a href="/api/v1/nation.json">{ctx.t("dl_json")}</a></li>
<li><a href="/api/openapi.json">{ctx.t("dl_openapi")}</a></li>
</ul>
<section id="csv" aria-labelledby="csv-h"><h2 id="csv-h">{ctx.t("csv_title")}</h2>
<p>{ctx.t("csv_note")}</p>
{_scroll(csv_table)}
</section>
{find_station_form(ctx)}"""
    return layout(ctx, say("data_title", ctx.lang), body, section="data")


def error_page(ctx: Ctx, key: str, **values: object) -> str:
    body = (
        f'<div class="refused" role="alert" id="error"><p>{ctx.t(key, **values)}</p></div>'
        f'<p><a href="/{ctx.lang}/">{ctx.t("back_home")}</a></p>'
    )
    return layout(ctx, say("error_title", ctx.lang), body, section="")


def language_error_page(ctx: Ctx, asked: str) -> str:
    """An unknown language: say so in all three, with a link to each."""
    items = "".join(
        f'<li lang="{x}"><a href="/{x}/" hreflang="{x}">{e(say("bad_language", x, name=asked))}'
        "</a></li>"
        for x in LANGS
    )
    body = f'<div class="refused" role="alert" id="error"><ul>{items}</ul></div>'
    return layout(ctx, say("error_title", ctx.lang), body, section="")
