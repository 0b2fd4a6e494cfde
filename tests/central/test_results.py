"""The published results document: outcomes, shares, turnout, invariants, versions."""

from __future__ import annotations

import datetime as dt
import json
import random
from fractions import Fraction
from typing import Any

import pytest

from central import outliers, results
from central.aggregate import apply_manual
from central.alerts import open_alerts
from central.db import Database
from central.evidence import accept_batch, load_stations
from election.definition import ElectionDefinition
from election.outcome import contest_outcome
from election.tally import ContestTally, parse_percent_units
from tests.central.fake_stations import (
    RECEIVED,
    FakeStation,
    items,
    random_tally,
    tally,
    tiny_definition,
)

D = tiny_definition()
AT = dt.datetime(2026, 11, 29, 16, 0, tzinfo=dt.UTC)


def _chosen(sid: str) -> list[ContestTally]:
    """Per station (x1 in 6): party list pa 50%, pb 30%, pc 3% (under the threshold);
    president p1 ahead of p2, nobody over half; referendum yes 60%; smd-1 won by x2;
    smd-3 led by "against all"."""
    out = []
    for c in D.contests_for_station(sid):
        votes = {
            "list": {"pa": 200, "pb": 120, "pc": 12, "against-all": 60},
            "president": {"p1": 160, "p2": 140, "p3": 80, "against-all": 12},
            "referendum": {"yes": 240, "no": 152},
            "smd-1": {"x1": 100, "x2": 200, "x3": 52, "against-all": 40},
            "smd-3": {"y1": 100, "y2": 90, "against-all": 202},
        }[c.id]
        prefs = {"pa-c6": 50, "pa-c5": 40, "pb-c2": 30} if c.id == "list" else None
        out.append(tally(c, votes, invalid=8, prefs=prefs))
    return out


def _close_all(db: Database, stations: list[str] | None = None) -> None:
    envs = []
    for sid in stations or [s.id for s in D.stations]:
        f = FakeStation(D, sid)
        envs += [
            f.at(7, 55).zero_report(),
            f.ident_report("first"),
            f.at(11, 10).turnout(150),
            f.at(20, 2).final_report(_chosen(sid), voters_identified=400),
            f.ident_report("final", {"08": 100, "10": 100, "13": 100, "19": 100}),
        ]
    accept_batch(db, D, items(*envs))


@pytest.fixture
def closed(db: Database) -> Database:
    load_stations(db, D)
    _close_all(db)
    return db


def _doc(db: Database) -> dict[str, Any]:
    latest = results.latest_published(db)
    assert latest is not None
    return latest.document


def _contest(doc: dict[str, Any], cid: str) -> dict[str, Any]:
    return next(c for c in doc["contests"] if c["id"] == cid)


def _unit(contest: dict[str, Any], level: str, unit: str) -> dict[str, Any]:
    return next(u for u in contest["units"][level] if u["id"] == unit)


def _floats(x: Any) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, dict):
        return any(_floats(v) for v in x.values())
    if isinstance(x, list):
        return any(_floats(v) for v in x)
    return False


def test_every_contest_kind_gets_its_outcome_by_the_election_rules(closed: Database) -> None:
    pub = results.publish(closed, D, at=AT)
    assert pub.new and pub.version == 1 and pub.problems == ()
    doc = _doc(closed)
    party = _contest(doc, "list")["outcome"]["asu"]
    assert party["status"] == "seats_allocated"
    assert party["seats"] == {"pa": 6, "pb": 4, "pc": 0}  # pc is under 5%: no seat
    assert sum(party["seats"].values()) == 10
    assert party["elected"]["pa"][:2] == ["pa-c6", "pa-c5"]  # open list: preference votes first
    women = sum(c.endswith(("c3", "c6")) for cs in party["elected"].values() for c in cs)
    assert women >= 3  # 30% of 10 seats
    president = _contest(doc, "president")["outcome"]["asu"]
    assert president["status"] == "runoff" and president["runoff"] == ["p1", "p2"]
    referendum = _contest(doc, "referendum")["outcome"]["asu"]
    assert referendum["status"] == "passed"
    assert referendum["turnout"] == {
        "registered": 6000,
        "voted": 2400,
        "fraction": "2/5",
        "percent": "40.00",
    }
    smd1 = _contest(doc, "smd-1")["outcome"]["asu"]
    assert smd1["status"] == "winner" and smd1["winners"] == ["x2"]
    assert smd1["turnout"]["registered"] == 3000  # district d1 only
    smd3 = _contest(doc, "smd-3")["outcome"]["asu"]
    assert smd3["status"] == "repeat_election" and "against_all_leads" in smd3["flags"]
    assert all(_contest(doc, c.id)["outcome"]["manual"] is None for c in D.contests)


def test_shares_add_up_to_100_with_their_base_and_match_the_outcome(closed: Database) -> None:
    results.publish(closed, D, at=AT)
    doc = _doc(closed)
    for c in doc["contests"]:
        for level, units in c["units"].items():
            for u in units:
                shares = u["asu"]["shares"]
                assert shares["base"] > 0
                assert sum(parse_percent_units(p) for p in shares["percent"].values()) == 10_000
                assert shares["base_name"] in ("valid_votes", "ballots", "party_votes"), level
        top = c["units"]["nation" if c["district_id"] is None else "district"][0]
        outcome = c["outcome"]["asu"]["shares"]
        assert {k: v for k, v in outcome.items() if k != "counts"} == top["asu"]["shares"]
    president = _unit(_contest(doc, "president"), "nation", "nation")["asu"]
    assert president["shares"]["base_name"] == "ballots"  # invalid ballots are in the base
    assert "_invalid" in president["shares"]["percent"]


def test_preliminary_and_final_are_side_by_side_with_stations_reported(db: Database) -> None:
    load_stations(db, D)
    _close_all(db, ["uik-101", "uik-102", "uik-301"])
    manual = {
        c.id: t for c, t in zip(D.contests_for_station("uik-101"), _chosen("uik-101"), strict=True)
    }
    manual["president"] = tally(D.contest("president"), {"p1": 161, "p2": 139, "p3": 80,
                                                         "against-all": 12}, invalid=8)  # fmt: skip
    with db.transaction() as tx:
        apply_manual(tx, D, "uik-101", manual, RECEIVED)
    results.publish(db, D, at=AT)
    president = _contest(_doc(db), "president")
    nation = _unit(president, "nation", "nation")
    assert nation["stations"] == 6
    assert nation["asu"]["stations"] == 3 and nation["manual"]["stations"] == 1
    station = _unit(president, "station", "uik-101")
    assert station["number"] == 101
    assert station["asu"]["votes"]["p1"] == 160 and station["manual"]["votes"]["p1"] == 161
    assert _unit(president, "station", "uik-201")["asu"] is None
    assert president["outcome"]["asu"]["complete"] is False
    assert president["outcome"]["manual"]["turnout"]["voted"] == 1200
    smd1 = _contest(_doc(db), "smd-1")
    assert [
        (u["id"], u["stations"], u["asu"]["stations"]) for u in smd1["units"]["commission"]
    ] == [
        ("c1", 2, 2),
        ("c2", 1, 0),
    ]
    assert set(smd1["units"]) == {"district", "commission", "station"}


def test_turnout_now_and_by_hour_up_to_the_latest_report(db: Database) -> None:
    load_stations(db, D)
    fs = [FakeStation(D, s.id) for s in D.stations]
    accept_batch(db, D, items(*(f.at(7, 58).zero_report() for f in fs)))
    accept_batch(db, D, items(*(f.ident_report("first") for f in fs)))
    accept_batch(db, D, items(*(f.at(9, 30).turnout(100) for f in fs[:4])))
    accept_batch(db, D, items(fs[0].at(11, 45).turnout(260)))
    results.publish(db, D, at=AT)
    turnout = _doc(db)["turnout"]
    assert turnout["hours"] == ["08", "09", "10", "11"]  # up to the latest report's hour
    nation = turnout["nation"][0]
    assert (nation["voted"], nation["registered"], nation["percent"]) == (560, 6000, "9.33")
    assert nation["stations"] == {"reported": 6, "of": 6}
    assert nation["by_hour"] == {"08": 0, "09": 400, "10": 400, "11": 560}
    c1 = next(u for u in turnout["commission"] if u["id"] == "c1")
    assert c1["by_hour"] == {"08": 0, "09": 200, "10": 200, "11": 360}
    assert next(u for u in turnout["station"] if u["id"] == "uik-101")["number"] == 101


def test_the_document_has_no_floats_and_the_same_data_gives_the_same_bytes(
    closed: Database,
) -> None:
    first = results.publish(closed, D, at=AT)
    again = results.publish(closed, D, at=AT + dt.timedelta(minutes=1))
    assert again == results.Publication(first.version, False)
    agg = results.read_aggregates(closed)
    doc1, _ = results.build_document(D, agg)
    doc2, _ = results.build_document(D, results.read_aggregates(closed))
    assert results.document_bytes(doc1) == results.document_bytes(doc2)
    latest = results.latest_published(closed)
    assert latest is not None and latest.text.encode() == results.document_bytes(doc1)
    assert not _floats(json.loads(latest.text))
    assert doc1["as_of"] == "2026-11-29T14:02:00+00:00"  # the latest signed report counted
    assert doc1["stations"]["by_state"]["delivered"] == 6


def test_a_change_publishes_a_new_version(closed: Database) -> None:
    assert results.publish(closed, D, at=AT).version == 1
    manual = {
        c.id: t for c, t in zip(D.contests_for_station("uik-301"), _chosen("uik-301"), strict=True)
    }
    with closed.transaction() as tx:
        apply_manual(tx, D, "uik-301", manual, RECEIVED)
    pub = results.publish(closed, D, at=AT + dt.timedelta(minutes=5))
    assert pub.new and pub.version == 2
    latest = results.latest_published(closed)
    assert latest is not None and latest.version == 2
    assert latest.published_at == "2026-11-29T16:05:00.000+00:00"


def test_the_inputs_fingerprint_changes_with_every_message_and_manual_count(db: Database) -> None:
    load_stations(db, D)
    empty = results.inputs_fingerprint(db)
    assert results.inputs_fingerprint(db) == empty  # nothing new: the publisher rests
    _close_all(db, ["uik-301"])
    closed = results.inputs_fingerprint(db)
    assert closed != empty
    manual = {
        c.id: t for c, t in zip(D.contests_for_station("uik-301"), _chosen("uik-301"), strict=True)
    }
    with db.transaction() as tx:
        apply_manual(tx, D, "uik-301", manual, RECEIVED)
    entered = results.inputs_fingerprint(db)
    assert entered != closed
    fixed = dict(manual)
    fixed["list"] = tally(
        D.contest("list"), {"pa": 201, "pb": 119, "pc": 12, "against-all": 60}, invalid=8
    )
    with db.transaction() as tx:  # a correction: the same rows, another tally
        apply_manual(tx, D, "uik-301", fixed, RECEIVED + dt.timedelta(minutes=1))
    assert results.inputs_fingerprint(db) != entered


@pytest.mark.parametrize(
    "corruption, problem",
    [
        (
            "UPDATE tallies SET tally = REPLACE(tally, '\"p1\":320', '\"p1\":321')"
            " WHERE level = 'region' AND contest_id = 'president' AND source = 'asu'",
            "votes (",
        ),
        (
            "UPDATE tallies SET stations = 7 WHERE level = 'nation' AND contest_id = 'list'"
            " AND source = 'asu'",
            "stations reported of",
        ),
        (
            "UPDATE turnout SET voted = 3001 WHERE level = 'station' AND unit = 'uik-101'",
            "voted of 1000 registered",
        ),
        (
            "UPDATE turnout SET voted = voted + 1 WHERE level = 'district' AND unit = 'd1'",
            "is not the sum of its commissions",
        ),
        (
            "UPDATE tallies SET tally = REPLACE(REPLACE(tally, '\"x2\":200', '\"x2\":201'),"
            " '\"ballots\":400', '\"ballots\":401')"
            " WHERE level = 'station' AND unit = 'uik-101' AND contest_id = 'smd-1'",
            "is not the sum of its stations",
        ),
    ],
)
def test_a_broken_invariant_keeps_the_previous_version_and_raises_an_alert(
    closed: Database, corruption: str, problem: str
) -> None:
    assert results.publish(closed, D, at=AT).version == 1
    before = results.latest_published(closed)
    with closed.transaction() as tx:
        tx.execute(corruption)
    pub = results.publish(closed, D, at=AT + dt.timedelta(minutes=1))
    assert not pub.new and pub.version == 1
    assert any(problem in p for p in pub.problems), pub.problems
    assert results.latest_published(closed) == before
    (a,) = open_alerts(closed, kind="invariant_violation")
    assert a.severity == "critical" and "version 1 stays" in a.detail
    assert a.id == pub.alert_id


def test_shares_match_election_outcome_for_a_random_tally() -> None:
    rng = random.Random(4)
    for contest in D.contests:
        t = random_tally(contest, rng, 500)
        base_name, counts = results.share_counts(contest, t.to_obj())
        outcome = contest_outcome(contest, t, registered=1000, voted=600)
        assert (base_name, counts) == (outcome.shares.base_name, outcome.shares.counts)


# --- turnout outliers ----------------------------------------------------------------------


def test_the_outlier_rule_needs_both_a_big_gap_and_many_deviations() -> None:
    normal = {f"s{i}": Fraction(50 + (i % 5), 100) for i in range(12)}
    assert outliers.outliers(normal) == []
    assert outliers.outliers({**normal, "high": Fraction(95, 100)}) == ["high"]
    assert outliers.outliers({**normal, "near": Fraction(69, 100)}) == []  # < 20 points off
    few = {f"s{i}": Fraction(50, 100) for i in range(8)}
    assert outliers.outliers({**few, "high": Fraction(99, 100)}) == []  # too few stations
    spread = {f"s{i}": Fraction(10 + 8 * i, 100) for i in range(11)}
    assert outliers.outliers(spread) == []  # far, but within the region's usual spread


def _big_definition() -> ElectionDefinition:
    data = D.model_dump(mode="json")
    template = data["stations"][0]
    data["stations"] = [
        {**template, "id": f"uik-{500 + i}", "number": 500 + i, "commission_id": "c1"}
        for i in range(12)
    ]
    return ElectionDefinition.model_validate(data)


def test_a_closed_station_far_from_its_region_raises_turnout_outlier(db: Database) -> None:
    big = _big_definition()
    load_stations(db, big)
    envs = []
    for i, s in enumerate(big.stations):
        f = FakeStation(big, s.id)
        voted = 950 if i == 0 else 500 + 10 * (i % 4)
        envs += [f.at(20, 1).ident_report("final", {"10": voted})]
    accept_batch(db, big, items(*envs))
    results.publish(db, big, at=AT)
    (a,) = open_alerts(db, kind="turnout_outlier")
    assert a.station_id == "uik-500"
    assert "turnout 95.00% against a median of 52.00%" in a.detail
    results.publish(db, big, at=AT)  # still an outlier: no second alert
    assert len(open_alerts(db, kind="turnout_outlier")) == 1
