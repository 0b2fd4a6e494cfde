"""Aggregation: station contributions summed up every level, incrementally and from scratch."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central import aggregate
from central.aggregate import (
    ManualCountError,
    apply_manual,
    obj_vec,
    recompute,
    snapshot,
    station_tally,
    tally_vec,
    vec_obj,
)
from central.db import Database
from central.evidence import accept_batch, load_stations
from crypto.envelope import Envelope
from election.tally import ContestTally
from tests.central.fake_stations import (
    RECEIVED,
    FakeStation,
    items,
    random_tally,
    tally,
    tiny_definition,
)

D = tiny_definition()
PRES = D.contest("president")
SMD1 = D.contest("smd-1")
LIST = D.contest("list")


@pytest.fixture
def loaded(db: Database) -> Database:
    load_stations(db, D)
    return db


def _row(
    db: Database, level: str, unit: str, contest: str, source: str = "asu"
) -> dict[str, Any] | None:
    row = db.one(
        "SELECT stations, tally FROM tallies WHERE level = ? AND unit = ? AND contest_id = ?"
        " AND source = ?",
        (level, unit, contest, source),
    )
    return None if row is None else {"stations": row["stations"], **json.loads(row["tally"])}


def _final(sid: str, tallies: dict[str, ContestTally]) -> Envelope:
    f = FakeStation(D, sid)
    return f.at(20, 5).final_report([tallies[c.id] for c in f.contests])


def _tallies(sid: str, rng: random.Random, ballots: int) -> dict[str, ContestTally]:
    return {c.id: random_tally(c, rng, ballots) for c in D.contests_for_station(sid)}


def test_a_station_report_adds_into_every_level_above_it(loaded: Database) -> None:
    rng = random.Random(1)
    t101, t102, t301 = (_tallies(s, rng, 90) for s in ("uik-101", "uik-102", "uik-301"))
    accept_batch(loaded, D, items(_final("uik-101", t101), _final("uik-102", t102)))
    accept_batch(loaded, D, items(_final("uik-301", t301)))
    c1 = t101["president"] + t102["president"]
    for level, unit, expected, n in [
        ("station", "uik-101", t101["president"], 1),
        ("commission", "c1", c1, 2),
        ("district", "d1", c1, 2),
        ("region", "north", c1, 2),
        ("region", "south", t301["president"], 1),
        ("nation", "nation", c1 + t301["president"], 3),
        ("commission", "c2", ContestTally.zero(PRES), 0),
    ]:
        row = _row(loaded, level, unit, "president")
        assert row is not None
        assert row["stations"] == n, (level, unit)
        assert obj_vec(row) == tally_vec(expected), (level, unit)


def test_a_district_contest_is_summed_up_to_its_district_only(loaded: Database) -> None:
    rng = random.Random(2)
    t = _tallies("uik-101", rng, 50)
    accept_batch(loaded, D, items(_final("uik-101", t)))
    district = _row(loaded, "district", "d1", "smd-1")
    assert district is not None and district["stations"] == 1
    assert obj_vec(district) == tally_vec(t["smd-1"])
    assert _row(loaded, "region", "north", "smd-1") is None
    assert _row(loaded, "nation", "nation", "smd-1") is None
    assert _row(loaded, "district", "d2", "smd-1") is None  # d2 does not vote in smd-1


def test_a_manual_count_is_the_final_source_and_a_correction_replaces_it(
    loaded: Database,
) -> None:
    first = tally(PRES, {"p1": 50, "p2": 30}, invalid=2)
    with loaded.transaction() as tx:
        apply_manual(tx, D, "uik-101", {"president": first}, RECEIVED)
    assert station_tally(loaded, "uik-101", "president", "manual") == first
    assert station_tally(loaded, "uik-101", "president", "asu") is None
    corrected = tally(PRES, {"p1": 49, "p2": 31}, invalid=2)
    with loaded.transaction() as tx:
        apply_manual(tx, D, "uik-101", {"president": corrected}, RECEIVED)
    nation = _row(loaded, "nation", "nation", "president", "manual")
    assert nation is not None
    assert nation["stations"] == 1 and nation["votes"]["p1"] == 49 and nation["ballots"] == 82
    assert _row(loaded, "nation", "nation", "president", "asu")["stations"] == 0  # type: ignore[index]


def test_a_manual_count_with_problems_is_refused_whole_naming_each(loaded: Database) -> None:
    good = tally(PRES, {"p1": 5})
    bad = tally(SMD1, {"x1": 5}).model_copy(update={"ballots": 9})
    with pytest.raises(ManualCountError) as e, loaded.transaction() as tx:
        apply_manual(
            tx,
            D,
            "uik-101",
            {"president": good, "smd-1": bad, "smd-3": tally(D.contest("smd-3"), {})},
            RECEIVED,
        )
    assert "smd-1: valid votes (5) plus invalid ballots (0) make 5, not the 9" in str(e.value)
    assert "does not vote in contest smd-3" in str(e.value)
    assert loaded.query("SELECT * FROM manual_tallies") == []
    assert loaded.query("SELECT * FROM tallies WHERE stations > 0") == []
    with pytest.raises(ManualCountError, match="no station"), loaded.transaction() as tx:
        apply_manual(tx, D, "uik-999", {"president": good}, RECEIVED)


def test_a_tally_without_an_invalid_breakdown_sums_like_one_saying_unspecified() -> None:
    plain = ContestTally(
        contest_id="president", ballots=5, invalid=2, votes={"p1": 3, "p2": 0, "p3": 0,
        "against-all": 0},
    )  # fmt: skip
    said = plain.model_copy(update={"invalid_by_reason": {"unspecified": 2}})
    assert tally_vec(plain) == tally_vec(said)
    broken_down = plain.model_copy(update={"invalid_by_reason": {"blank": 2}})
    total = tally_vec(plain)
    aggregate.add_vec(total, tally_vec(broken_down))
    assert vec_obj(PRES, total)["invalid_by_reason"] == {"blank": 2, "unspecified": 2}
    assert ContestTally.from_obj(vec_obj(PRES, total)) == (plain + broken_down)
    aggregate.add_vec(total, tally_vec(broken_down), -1)  # taking it out again
    assert vec_obj(PRES, total) == vec_obj(PRES, tally_vec(plain))
    assert vec_obj(PRES, total)["invalid_by_reason"] == {}


def test_turnout_by_hour_keeps_per_hour_the_figure_of_the_latest_message(
    loaded: Database,
) -> None:
    f = FakeStation(D, "uik-101")
    zero = f.at(7, 55).zero_report()
    first = f.ident_report("first")
    t10 = f.at(10, 20).turnout(120)
    t10b = f.at(10, 50).turnout(150)
    final = f.at(20, 2).ident_report("final", {"08": 40, "09": 60, "10": 55, "14": 100})
    accept_batch(loaded, D, items(zero, final, t10b, first, t10))
    hours = {
        r["hour"]: (r["seq"], r["voted"])
        for r in loaded.query("SELECT * FROM station_hours WHERE station_id = 'uik-101'")
    }
    # the final report states every hour up to its time; later than closing counts as 20
    assert hours == {
        "08": (4, 40),
        "09": (4, 100),
        "10": (4, 155),
        "11": (4, 155),
        "12": (4, 155),
        "13": (4, 155),
        "14": (4, 255),
        **{f"{h}": (4, 255) for h in range(15, 21)},
    }
    row = loaded.one("SELECT * FROM turnout WHERE level = 'nation'")
    assert row is not None
    assert (row["voted"], row["identified_by_face"], row["ident_stations"]) == (255, 229, 1)


def test_recompute_repairs_a_corrupted_aggregate(loaded: Database) -> None:
    rng = random.Random(3)
    accept_batch(loaded, D, items(*(_final(s.id, _tallies(s.id, rng, 70)) for s in D.stations)))
    good = snapshot(loaded)
    with loaded.transaction() as tx:
        tx.execute("UPDATE tallies SET stations = 99 WHERE level = 'region' AND unit = 'north'")
        tx.execute("UPDATE turnout SET voted = voted + 1")
        tx.execute("UPDATE stations SET state = 'open'")
    assert snapshot(loaded) != good
    recompute(loaded, D)
    assert snapshot(loaded) == good


# --- incremental == from scratch, for any arrival order --------------------------------------


def _wipe(db: Database) -> None:
    with db.transaction() as tx:
        for table in ("messages", "conflicting_messages", "alerts", "tallies", "turnout",
                      "station_hours", "manual_tallies", "published", "stations"):  # fmt: skip
            tx.execute(f"DELETE FROM {table}")
    load_stations(db, D)


def _day(f: FakeStation, rng: random.Random) -> list[Envelope]:
    """One station's messages: maybe a test-mode run, then a live day with surprises."""
    out: list[Envelope] = []
    if rng.random() < 0.3:
        out += [f.at(7).zero_report(mode="test"), f.turnout(3, mode="test")]
        out.append(f.final_report(f.tallies(rng, 5), mode="test"))
    out += [f.at(7, 50).zero_report(), f.ident_report("first")]
    voted = 0
    hour = 8
    for _ in range(rng.randint(0, 5)):
        hour += rng.randint(0, 3)
        voted += rng.randint(0, 90)
        f.at(min(hour, 19), rng.randint(0, 59))
        out.append(f.turnout(voted) if rng.random() < 0.6 else f.heartbeat(voted=voted))
    if rng.random() < 0.1:
        out.append(f.turnout(5000))  # over the roll: not counted
    f.at(20, 3)
    by_hour = {"09": voted // 2, "15": voted - voted // 2} if voted else {}
    if rng.random() < 0.8:
        out.append(f.final_report(f.tallies(rng, min(voted, 200) + rng.randint(0, 5))))
    if rng.random() < 0.15:
        out.append(f.final_report(f.tallies(rng, 30)))  # a second final
    if rng.random() < 0.1:
        out.append(f.zero_report())  # a zero after the final
    if rng.random() < 0.8:
        out.append(f.ident_report("final", by_hour))
    out.append(f.heartbeat(state="closed", voted=voted))
    return out


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1))
def test_incremental_aggregates_equal_a_rebuild_from_evidence(db: Database, seed: int) -> None:
    _wipe(db)
    rng = random.Random(seed)
    stream: list[Envelope] = []
    for s in D.stations:
        stream += _day(FakeStation(D, s.id), rng)
    rng.shuffle(stream)  # two workers, resends: any order
    stream += rng.sample(stream, len(stream) // 5)  # duplicates
    stream = [e for e in stream if rng.random() > 0.05]  # some never arrive (gaps)
    manual_at = sorted(rng.sample(range(len(stream) + 1), 4))
    at = RECEIVED
    i = 0
    while i < len(stream):
        n = rng.randint(1, 12)
        at += dt.timedelta(seconds=rng.randint(0, 30))
        accept_batch(db, D, items(*stream[i : i + n], received=at))
        if manual_at and manual_at[0] <= i + n:
            manual_at.pop(0)
            sid = rng.choice(D.stations).id
            counts = {
                c.id: random_tally(c, rng, rng.randint(0, 60)) for c in D.contests_for_station(sid)
            }
            with db.transaction() as tx:
                apply_manual(tx, D, sid, counts, at)
        i += n
    incremental = snapshot(db)
    recompute(db, D)
    rebuilt = snapshot(db)
    for table in incremental:
        assert rebuilt[table] == incremental[table], table
