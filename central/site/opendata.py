"""Open data formats built from one published version: CSV per contest and level, NIST SP 1500-100.

Each is a re-arrangement of the published document, never a recount: the CSV
rows are the document's unit entries (both sources), the NIST report carries
the same counts as VoteCounts per reporting unit, with the source told apart by
its Device type (ASU: opscan-precinct, manual count: manual-count).
docs/site.md maps every field.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from central.site.model import LEVELS, NATION, SOURCES, Geo, Snapshot
from central.site.views import LANGS
from election.definition import Contest, ContestKind, ElectionDefinition, Names, OptionKind

CSV_ENCODING = "utf-8-sig"  # a BOM, so spreadsheet programs read Cyrillic names right


class NoSuchTable(KeyError):
    """No such contest, or the contest has no such level."""


def _csv(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerows(rows)
    return buf.getvalue().encode(CSV_ENCODING)


def _area_cols(geo: Geo, level: str, unit: str) -> list[Any]:
    u = geo.units[(level, unit)]
    ids = {p.level: p.id for p in geo.path((level, unit))}
    return [
        level,
        unit,
        u.station.number if u.station is not None else "",
        *(u.name.get(lang) for lang in LANGS),
        ids.get("region", ""),
        ids.get("district", ""),
        ids.get("commission", ""),
    ]


AREA_HEADER = [
    "level", "id", "number", "name_ky", "name_ru", "name_en", "region_id", "district_id",
    "commission_id",
]  # fmt: skip


def contest_csv(snap: Snapshot, geo: Geo, contest_id: str, level: str) -> bytes:
    """One row per unit of `level` and source: counts, votes per option, published shares."""
    try:
        contest = geo.definition.contest(contest_id)
    except KeyError:
        raise NoSuchTable(contest_id) from None
    if level not in LEVELS or (contest.district_id is not None and level in (NATION, "region")):
        raise NoSuchTable(level)
    options = [o.id for o in contest.options]
    header = [
        *AREA_HEADER, "stations", "source", "stations_counted", "ballots", "invalid",
        "share_base_name", "share_base",
        *(f"votes:{o}" for o in options), *(f"share:{o}" for o in options), "share:_invalid",
    ]  # fmt: skip
    rows: list[list[Any]] = [header]
    units = [u for (lv, u) in _units(geo, contest, level)]
    for unit in units:
        entry = snap.tally(contest.id, level, unit) or {}
        for source in SOURCES:
            part: Mapping[str, Any] | None = entry.get(source)
            base = _area_cols(geo, level, unit) + [geo.units[(level, unit)].stations, source]
            if not part:
                rows.append(base + [0] + [""] * (len(header) - len(base) - 1))
                continue
            pct = part["shares"]["percent"]
            rows.append(
                base
                + [
                    part["stations"],
                    part["ballots"],
                    part["invalid"],
                    part["shares"]["base_name"],
                    part["shares"]["base"],
                    *(part["votes"].get(o, 0) for o in options),
                    *(pct.get(o, "") for o in options),
                    pct.get("_invalid", ""),
                ]
            )
    return _csv(rows)


def _units(geo: Geo, contest: Contest, level: str) -> list[tuple[str, str]]:
    """The units of `level` a contest covers, in definition order."""
    return [
        k
        for k in geo.units
        if k[0] == level
        and (contest.district_id is None or geo.district_of(k) == contest.district_id)
    ]


def turnout_csv(snap: Snapshot, geo: Geo, level: str) -> bytes:
    if level not in LEVELS:
        raise NoSuchTable(level)
    hours = snap.hours
    header = [
        *AREA_HEADER, "registered", "voted", "percent", "fraction", "stations_reported",
        "stations", "ident_stations", "identified_by_face", "admitted_by_document", "mobile_box",
        *(f"voted_by_{h}" for h in hours),
    ]  # fmt: skip
    rows: list[list[Any]] = [header]
    for key in geo.units:
        if key[0] != level:
            continue
        t = snap.turnout_of(*key)
        base = _area_cols(geo, *key)
        if t is None:
            rows.append(base + [geo.units[key].registered] + [""] * (len(header) - len(base) - 1))
            continue
        ident = t["identification"]
        rows.append(
            base
            + [
                t["registered"],
                t["voted"],
                t["percent"] or "",
                t["fraction"] or "",
                t["stations"]["reported"],
                t["stations"]["of"],
                ident["stations"],
                ident["identified_by_face"],
                ident["admitted_by_document"],
                ident["mobile_box"],
                *(t["by_hour"].get(h, "") for h in hours),
            ]
        )
    return _csv(rows)


# --- NIST SP 1500-100 (version 2) JSON ------------------------------------------------------
NIST = "ElectionResults."
DEVICE = {"asu": "opscan-precinct", "manual": "manual-count"}
_UNIT_TYPE = {"nation": ("country", None), "station": ("precinct", None)}
_OTHER_TYPE = {
    "region": "region",
    "district": "electoral-district",
    "commission": "territorial-election-commission",
}
_VARIATION = {"party_list": "proportional", "plurality": "plurality", "majority": "majority"}


def gp_id(level: str, unit: str) -> str:
    return "gp-nation" if level == NATION else f"gp-{level}-{unit}"


def _text(n: Names | Mapping[str, str]) -> dict[str, Any]:
    get = n.get
    return {
        "@type": NIST + "InternationalizedText",
        "Text": [
            {"@type": NIST + "LanguageString", "Language": lang, "Content": get(lang) or ""}
            for lang in LANGS
        ],
    }


def _device(source: str) -> dict[str, str]:
    return {"@type": NIST + "Device", "Type": DEVICE[source]}


def nist_report(snap: Snapshot, geo: Geo, *, issuer: Names) -> dict[str, Any]:
    """The published version as an ElectionResults.ElectionReport (precinct level)."""
    d: ElectionDefinition = geo.definition
    gp_units = [_gp_unit(snap, geo, key) for key in geo.units]
    contests, candidates, parties = [], [], []
    complete = True
    for i, c in enumerate(d.contests, start=1):
        built, cands, pts, done = _contest(snap, geo, c, i)
        contests.append(built)
        candidates += cands
        parties += pts
        complete = complete and done
    return {
        "@type": NIST + "ElectionReport",
        "Format": "precinct-level",
        "GeneratedDate": snap.published_at or "",
        "Issuer": issuer.get("en"),
        "IssuerAbbreviation": "CEC KR",
        "IsTest": False,
        "Notes": f"Shailoo published results version {snap.version}, SHA-256 {snap.sha256} "
        f"(/api/v1/results/{snap.version}.json). Two counts per unit: Device opscan-precinct "
        "is the preliminary ASU count, manual-count the final manual count.",
        "SequenceStart": 1,
        "SequenceEnd": 1,
        "Status": "unofficial-complete" if complete else "unofficial-partial",
        "VendorApplicationId": "Shailoo public results site (shailoo-site/1)",
        "Election": [
            {
                "@type": NIST + "Election",
                "ElectionScopeId": "gp-nation",
                "Name": _text(d.name),
                "StartDate": d.date.isoformat(),
                "EndDate": d.date.isoformat(),
                "Type": "general",
                "Contest": contests,
                "Candidate": candidates,
            }
        ],
        "GpUnit": gp_units,
        "Party": parties,
    }


def _gp_unit(snap: Snapshot, geo: Geo, key: tuple[str, str]) -> dict[str, Any]:
    u = geo.units[key]
    kind, other = _UNIT_TYPE.get(u.level, ("other", _OTHER_TYPE.get(u.level)))
    t = snap.turnout_of(*key)
    out: dict[str, Any] = {
        "@type": NIST + "ReportingUnit",
        "@id": gp_id(*key),
        "Type": kind,
        "Name": u.name.get("en"),
        "VotersRegistered": u.registered,
        "TotalSubUnits": u.stations,
        "SubUnitsReported": t["stations"]["reported"] if t else 0,
        "ExternalIdentifier": [
            {"@type": NIST + "ExternalIdentifier", "Type": "local-level", "Value": u.id}
        ],
    }
    if other:
        out["OtherType"] = other
    if u.station is not None:
        out["Number"] = str(u.station.number)
    if t is not None:
        out["VotersParticipated"] = t["voted"]
    if u.children:
        out["ComposingGpUnitIds"] = [gp_id(*k) for k in u.children]
    return out


def _contest(
    snap: Snapshot, geo: Geo, c: Contest, order: int
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], bool]:
    top = geo.contest_top(c)
    levels = [lv for lv in LEVELS if lv not in ((NATION, "region") if c.district_id else ())]
    units = [k for lv in levels for k in _units(geo, c, lv)]
    outcome = snap.outcomes.get(c.id) or {}
    final = outcome.get("manual") if (outcome.get("manual") or {}).get("complete") else None
    shown = final or outcome.get("asu")
    winners = set((shown or {}).get("winners", ()))
    runoff = set((shown or {}).get("runoff", ()))
    elected = {x for ids in (shown or {}).get("elected", {}).values() for x in ids}
    status_word = "winner" if final else "projected-winner"

    def counts(option: str) -> list[dict[str, Any]]:
        out = []
        for key in units:
            entry = snap.tally(c.id, *key) or {}
            for source in SOURCES:
                part = entry.get(source)
                if part and part["stations"]:
                    n = part["invalid"] if option == "_invalid" else part["votes"].get(option, 0)
                    out.append(
                        {
                            "@type": NIST + "VoteCounts",
                            "GpUnitId": gp_id(*key),
                            "Type": "total",
                            "Device": _device(source),
                            "Count": n,
                        }
                    )
        return out

    candidates: list[dict[str, Any]] = []
    parties: list[dict[str, Any]] = []
    selections: list[dict[str, Any]] = []
    for i, o in enumerate(c.options, start=1):
        sel_id = f"sel-{c.id}-{o.id}"
        if c.kind is ContestKind.REFERENDUM:
            selections.append(
                {
                    "@type": NIST + "BallotMeasureSelection",
                    "@id": sel_id,
                    "SequenceOrder": i,
                    "Selection": _text(o.name),
                    "VoteCounts": counts(o.id),
                }
            )
            continue
        if o.kind is OptionKind.PARTY:
            party_id = f"party-{c.id}-{o.id}"
            parties.append({"@type": NIST + "Party", "@id": party_id, "Name": _text(o.name)})
            for cand in o.candidates:
                item: dict[str, Any] = {
                    "@type": NIST + "Candidate",
                    "@id": f"cand-{c.id}-{cand.id}",
                    "BallotName": _text(cand.name),
                    "PartyId": party_id,
                }
                if cand.id in elected:
                    item["PostElectionStatus"] = status_word
                candidates.append(item)
            selections.append(
                {
                    "@type": NIST + "PartySelection",
                    "@id": sel_id,
                    "SequenceOrder": i,
                    "PartyIds": [party_id],
                    "VoteCounts": counts(o.id),
                }
            )
            continue
        cand_id = f"cand-{c.id}-{o.id}"
        item = {"@type": NIST + "Candidate", "@id": cand_id, "BallotName": _text(o.name)}
        if o.id in winners:
            item["PostElectionStatus"] = status_word
        elif o.id in runoff:
            item["PostElectionStatus"] = "advanced-to-runoff"
        candidates.append(item)
        selections.append(
            {
                "@type": NIST + "CandidateSelection",
                "@id": sel_id,
                "SequenceOrder": i,
                "CandidateIds": [cand_id],
                "VoteCounts": counts(o.id),
            }
        )
    top_entry = snap.tally(c.id, *top) or {}
    status = []
    done = True
    for source in SOURCES:
        part = top_entry.get(source)
        n = part["stations"] if part else 0
        total = geo.units[top].stations
        word = "completed" if n == total and n else ("in-process" if n else "not-processed")
        done = done and (source != "manual" or word == "completed")
        status.append(
            {"@type": NIST + "CountStatus", "Type": "other", "OtherType": source, "Status": word}
        )
    summary = []
    for key in units:
        entry = snap.tally(c.id, *key) or {}
        for source in SOURCES:
            part = entry.get(source)
            if not part or not part["stations"]:
                continue
            reasons = part.get("invalid_by_reason") or {}
            s: dict[str, Any] = {
                "@type": NIST + "SummaryCounts",
                "GpUnitId": gp_id(*key),
                "Type": "total",
                "Device": _device(source),
                "BallotsCast": part["ballots"],
                "BallotsRejected": part["invalid"],
            }
            if "overvote" in reasons:
                s["Overvotes"] = reasons["overvote"]
            if "blank" in reasons:
                s["Undervotes"] = reasons["blank"]
            summary.append(s)
    asu_top = top_entry.get("asu")
    contest: dict[str, Any] = {
        "@id": f"contest-{c.id}",
        "Name": c.name.get("en"),
        "BallotTitle": _text(c.name),
        "ElectoralDistrictId": gp_id(*top),
        "SequenceOrder": order,
        "TotalSubUnits": geo.units[top].stations,
        "SubUnitsReported": asu_top["stations"] if asu_top else 0,
        "CountStatus": status,
        "SummaryCounts": summary,
        "BallotSelection": selections,
    }
    rules = c.rules.model_dump(mode="json")
    if c.kind is ContestKind.REFERENDUM:
        contest["@type"] = NIST + "BallotMeasureContest"
        contest["Type"] = "referendum"
    elif c.kind is ContestKind.PARTY_LIST:
        contest["@type"] = NIST + "PartyContest"
        contest["VoteVariation"] = "proportional"
    else:
        contest["@type"] = NIST + "CandidateContest"
        contest["VotesAllowed"] = 1
        contest["NumberElected"] = rules.get("seats", 1)
        contest["VoteVariation"] = _VARIATION.get(rules["kind"], "other")
        if rules["kind"] == "majority":
            contest["NumberRunoff"] = 2
    return contest, candidates, parties, done


def nist_bytes(snap: Snapshot, geo: Geo, *, issuer: Names) -> bytes:
    return json.dumps(nist_report(snap, geo, issuer=issuer), ensure_ascii=False).encode("utf-8")
