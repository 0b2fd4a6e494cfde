"""The data of every page, as one JSON-shaped dict: the page's HTML and its JSON are the same view.

A view only copies and arranges what the published document says (a unit's
turnout, its tallies with their shares and bases, a contest's outcome at its own
level) and, for a station, what the station signed (central/site/evidence.py).
Nothing here adds up votes or computes a share: the one choice a view makes is
which published share leads a unit, for the one-line summaries of maps and lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from central.site.model import (
    NATION,
    Geo,
    Key,
    Snapshot,
    Unit,
    leader,
    shown_source,
)
from election.definition import Contest, Names

SITE_FORMAT = "shailoo-site/1"
LANGS = ("ky", "ru", "en")


def names(n: Names) -> dict[str, str]:
    return {lang: n.get(lang) for lang in LANGS}


def unit_href(level: str, unit_id: str, lang: str | None = None) -> str:
    """The page of a unit: /{lang}/... for HTML, /api/v1/... for its JSON (lang None)."""
    base = "/api/v1" if lang is None else f"/{lang}"
    if level == NATION:
        return f"{base}/nation.json" if lang is None else f"{base}/"
    tail = f"/{level}/{unit_id}"
    return f"{base}{tail}.json" if lang is None else f"{base}{tail}"


def unit_ref(u: Unit) -> dict[str, Any]:
    return {
        "level": u.level,
        "id": u.id,
        "name": names(u.name),
        "number": u.station.number if u.station is not None else None,
        "json": unit_href(u.level, u.id),
    }


def header(snap: Snapshot) -> dict[str, Any]:
    return {
        "format": SITE_FORMAT,
        "version": snap.version or None,
        "published_at": snap.published_at,
        "as_of": snap.as_of,
        "sha256": snap.sha256,
    }


def option_list(contest: Contest, *, with_candidates: bool) -> list[dict[str, Any]]:
    out = []
    for o in contest.options:
        item: dict[str, Any] = {"id": o.id, "kind": o.kind.value, "name": names(o.name)}
        if with_candidates and o.candidates:
            item["candidates"] = [
                {
                    "id": c.id,
                    "name": names(c.name),
                    "gender": c.gender.value,
                    "position": c.position,
                }
                for c in o.candidates
            ]
        out.append(item)
    return out


def contest_view(snap: Snapshot, geo: Geo, contest: Contest, key: Key) -> dict[str, Any]:
    """A contest at one unit: both sources as published, and the outcome if decided here."""
    entry = snap.tally(contest.id, *key)
    top = geo.contest_top(contest) == key
    out: dict[str, Any] = {
        "id": contest.id,
        "kind": contest.kind.value,
        "name": names(contest.name),
        "district_id": contest.district_id,
        "rules": contest.rules.model_dump(mode="json"),
        "options": option_list(contest, with_candidates=top),
        "stations": geo.units[key].stations,
        "asu": None if entry is None else entry.get("asu"),
        "manual": None if entry is None else entry.get("manual"),
    }
    if top:
        outcome = snap.outcomes.get(contest.id)
        out["outcome"] = dict(outcome) if outcome is not None else {"asu": None, "manual": None}
    else:
        out["outcome_at"] = unit_href(*geo.contest_top(contest))
    return out


def turnout_view(snap: Snapshot, u: Unit) -> dict[str, Any] | None:
    entry = snap.turnout_of(u.level, u.id)
    return None if entry is None else {**entry, "hours": snap.hours}


def summary(snap: Snapshot, geo: Geo, u: Unit) -> dict[str, Any]:
    """One line about a unit: its turnout and who leads each contest that covers it."""
    t = snap.turnout_of(u.level, u.id)
    leaders: dict[str, Any] = {}
    for c in geo.contests_at[u.key]:
        entry = snap.tally(c.id, u.level, u.id)
        source = shown_source(entry)
        if entry is None or source is None:
            leaders[c.id] = None
            continue
        part = entry[source]
        lead = leader(part)
        leaders[c.id] = {
            "source": source,
            "stations": part["stations"],
            "of": entry["stations"],
            "option": lead[0] if lead else None,
            "percent": lead[1] if lead else None,
        }
    return {
        **unit_ref(u),
        "registered": u.registered,
        "stations": u.stations,
        "turnout": None
        if t is None
        else {
            "voted": t["voted"],
            "percent": t["percent"],
            "stations": t["stations"],
        },
        "leaders": leaders,
    }


def unit_view(snap: Snapshot, geo: Geo, key: Key) -> dict[str, Any]:
    """The page of the nation, a region, a district or a commission (and a station's base)."""
    u = geo.units[key]
    path = geo.path(key)
    view: dict[str, Any] = {
        **header(snap),
        "unit": {
            **unit_ref(u),
            "registered": u.registered,
            "stations": u.stations,
            "path": [unit_ref(p) for p in path[:-1]],
        },
        "turnout": turnout_view(snap, u),
        "contests": [contest_view(snap, geo, c, key) for c in geo.contests_at[key]],
        "district_contests": [
            {
                "id": c.id,
                "name": names(c.name),
                "district": unit_ref(geo.units[("district", c.district_id or "")]),
                "summary": summary(snap, geo, geo.units[("district", c.district_id or "")])[
                    "leaders"
                ].get(c.id),
                "options": option_list(c, with_candidates=False),
            }
            for c in geo.smd_below(key)
        ],
        "children": [summary(snap, geo, geo.units[k]) for k in u.children],
    }
    if key[0] == NATION:
        view["stations_by_state"] = snap.station_states
    if u.station is not None:
        s = u.station
        view["station"] = {
            "number": s.number,
            "name": names(s.name),
            "address": names(s.address),
            "lat": str(s.lat),
            "lon": str(s.lon),
            "registered_voters": s.registered_voters,
            "abroad": s.abroad,
        }
    return view


def status_view(snap: Snapshot, geo: Geo) -> dict[str, Any]:
    """The small document a poller (or the live script) reads: which version, how complete."""
    nation = snap.turnout_of(NATION, NATION)
    return {
        **header(snap),
        "stations": {
            "of": geo.units[(NATION, NATION)].stations,
            "delivered": (snap.station_states or {}).get("delivered", 0),
            "turnout_reported": nation["stations"]["reported"] if nation else 0,
        },
        "links": {
            "results": "/api/v1/results.json",
            "nation": "/api/v1/nation.json",
            "events": "/api/v1/events",
            "openapi": "/api/openapi.json",
        },
    }


def contest_names(contest: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Option and candidate id -> names, from a contest view."""
    out: dict[str, dict[str, str]] = {}
    for o in contest["options"]:
        out[o["id"]] = o["name"]
        for c in o.get("candidates", ()):
            out[c["id"]] = c["name"]
    return out
