"""The server room's watch: a hole in a station's messages is an alert only once it has
lasted the grace; stations without their final reports 2 h after closing."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from central import watch
from central.alerts import alerts, open_alerts, resolve_alerts
from central.db import Database
from central.evidence import accept_batch, load_stations
from central.watch import check_gaps, check_not_delivered, watch_once
from tests.central.fake_stations import RECEIVED, FakeStation, items, tiny_definition

D = tiny_definition()
T = RECEIVED  # when the first message above the hole arrived
GRACE = dt.timedelta(seconds=60)


@pytest.fixture
def loaded(db: Database) -> Database:
    load_stations(db, D)
    return db


def _at(seconds: float) -> dt.datetime:
    return T + dt.timedelta(seconds=seconds)


def _complete_to(db: Database, sid: str = "uik-101") -> int:
    row = db.one("SELECT complete_to FROM stations WHERE station_id = ?", (sid,))
    assert row is not None
    return int(row["complete_to"])


# --- gap ------------------------------------------------------------------------------------


def test_a_message_stored_above_a_hole_raises_nothing_within_the_grace(loaded: Database) -> None:
    f = FakeStation(D, "uik-101")
    zero, first = f.zero_report(), f.ident_report("first")
    (d,) = accept_batch(loaded, D, items(first, received=T))  # seq 1 without seq 0
    assert d.status == "accepted"
    assert _complete_to(loaded) == -1
    assert alerts(loaded, kind="gap") == []  # not at ingest
    assert check_gaps(loaded, _at(59.999)) == []
    assert alerts(loaded) == []
    accept_batch(loaded, D, items(zero, received=_at(1)))  # the usual case: a second later
    assert check_gaps(loaded, _at(3600)) == []
    assert alerts(loaded) == []


def test_a_hole_that_outlives_the_grace_raises_one_gap_alert_until_it_is_filled(
    loaded: Database,
) -> None:
    f, other = FakeStation(D, "uik-101"), FakeStation(D, "uik-301")
    zero, first = f.zero_report(), f.ident_report("first")
    accept_batch(loaded, D, items(first, other.zero_report(), received=T))
    (gap_id,) = check_gaps(loaded, _at(60))  # exactly the grace: it is due
    (gap,) = open_alerts(loaded, kind="gap")
    assert gap.id == gap_id and gap.station_id == "uik-101" and gap.severity == "medium"
    assert gap.detail == (
        "station 101: messages 0 have not arrived (later ones have): stored and counted, "
        "the hole is watched"
    )
    assert gap.evidence == [{"station": "uik-101", "seq": 1, "hash": first.hash}]
    assert gap.raised_at == "2026-11-29T14:01:00.000+00:00"  # when the watch found it due
    assert check_gaps(loaded, _at(65)) == [gap_id]  # again: the same alert, not counted again
    assert check_gaps(loaded, _at(600), GRACE) == [gap_id]
    (again,) = alerts(loaded, kind="gap")
    assert again.repeats == 1 and again.resolved_at is None
    accept_batch(loaded, D, items(zero, received=_at(700)))  # the hole is filled
    assert open_alerts(loaded, kind="gap") == []
    (done,) = alerts(loaded, kind="gap")
    assert done.resolved_at == "2026-11-29T14:11:40.000+00:00"  # at once, by the ingest
    assert check_gaps(loaded, _at(800)) == []
    assert len(alerts(loaded, kind="gap")) == 1


def test_a_different_hole_replaces_the_alert(loaded: Database) -> None:
    f = FakeStation(D, "uik-101")
    m = [f.zero_report(), f.at(9).turnout(10), f.at(10).turnout(20), f.at(11).turnout(30)]
    accept_batch(loaded, D, items(m[1], received=T))
    (first_id,) = check_gaps(loaded, _at(60))
    accept_batch(loaded, D, items(m[3], received=_at(100)))  # a second hole: 0 and 2
    (second_id,) = check_gaps(loaded, _at(101))  # the hole below has lasted: not waited for
    assert second_id != first_id
    (gap,) = open_alerts(loaded, kind="gap")
    assert gap.id == second_id
    assert "station 101: messages 0, 2 have not arrived" in gap.detail
    assert gap.evidence == [{"station": "uik-101", "seq": 3, "hash": m[3].hash}]
    old = next(a for a in alerts(loaded, kind="gap") if a.id == first_id)
    assert old.resolved_at == "2026-11-29T14:01:41.000+00:00"


def test_filling_the_lowest_hole_resolves_and_what_remains_waits_for_its_own_grace(
    loaded: Database,
) -> None:
    f = FakeStation(D, "uik-101")
    m = [f.zero_report(), f.at(9).turnout(10), f.at(10).turnout(20), f.at(11).turnout(30)]
    accept_batch(loaded, D, items(m[1], received=T))
    check_gaps(loaded, _at(60))
    accept_batch(loaded, D, items(m[3], received=_at(100)))
    accept_batch(loaded, D, items(m[0], received=_at(110)))  # 0 came: only 2 is missing
    assert _complete_to(loaded) == 1
    assert open_alerts(loaded, kind="gap") == []  # "messages 0, ..." no longer holds
    assert check_gaps(loaded, _at(120)) == []  # seq 3 came 20 s ago
    (gap_id,) = check_gaps(loaded, _at(160))
    (gap,) = open_alerts(loaded, kind="gap")
    assert gap.id == gap_id and "station 101: messages 2 have not arrived" in gap.detail


def test_holes_of_several_stations_are_watched_each_on_its_own(loaded: Database) -> None:
    a, b = FakeStation(D, "uik-101"), FakeStation(D, "uik-201")
    a.zero_report()
    b.zero_report()
    b.turnout(5)
    accept_batch(loaded, D, items(a.turnout(5), received=T))
    accept_batch(loaded, D, items(b.turnout(9), received=_at(30)))
    assert len(check_gaps(loaded, _at(60))) == 1
    assert {x.station_id for x in open_alerts(loaded, kind="gap")} == {"uik-101"}
    assert len(check_gaps(loaded, _at(90))) == 2
    (gb,) = open_alerts(loaded, kind="gap", station_id="uik-201")
    assert "station 201: messages 0-1 have not arrived" in gb.detail


def test_a_round_raises_a_bounded_number_of_gaps_and_the_next_rounds_the_rest(
    loaded: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write lock is the ingest's: a round never raises a flood in one go."""
    monkeypatch.setattr(watch, "RAISES_PER_ROUND", 1)
    a, b = FakeStation(D, "uik-101"), FakeStation(D, "uik-201")
    a.zero_report()
    b.zero_report()
    accept_batch(loaded, D, items(a.turnout(5), b.turnout(9), received=T))
    assert len(check_gaps(loaded, _at(60))) == 1
    assert len(open_alerts(loaded, kind="gap")) == 1
    assert len(check_gaps(loaded, _at(65))) == 2  # the one raised and the one raised now
    assert {x.station_id for x in open_alerts(loaded, kind="gap")} == {"uik-101", "uik-201"}
    assert len(check_gaps(loaded, _at(70))) == 2  # nothing new
    assert len(alerts(loaded, kind="gap")) == 2


# --- not_delivered --------------------------------------------------------------------------


def test_not_delivered_waits_for_the_grace_period_after_closing(
    loaded: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "RAISES_PER_ROUND", 4)  # raised in chunks, all of them
    at_21 = dt.datetime(2026, 11, 29, 21, 0, tzinfo=ZoneInfo("Asia/Bishkek"))
    assert check_not_delivered(loaded, D, at_21) == []
    assert open_alerts(loaded) == []
    ids = check_not_delivered(loaded, D, at_21, grace=dt.timedelta(minutes=30))
    assert len(ids) == 6
    (one,) = open_alerts(loaded, station_id="uik-101")
    assert one.kind == "not_delivered" and "has not delivered both final reports" in one.detail
    assert one.detail.endswith("0 h 30 min after polls closed")


def test_not_delivered_is_raised_once_and_only_for_stations_not_delivered(
    loaded: Database,
) -> None:
    f = FakeStation(D, "uik-101")
    finals = [f.at(8).zero_report(), f.at(20, 1).final_report(), f.ident_report("final")]
    accept_batch(loaded, D, items(*finals))
    at_22 = dt.datetime(2026, 11, 29, 22, 0, tzinfo=ZoneInfo("Asia/Bishkek"))
    first = check_not_delivered(loaded, D, at_22)
    assert len(first) == 5
    late = {f"uik-{n}" for n in (102, 103, 201, 301, 302)}
    assert {a.station_id for a in open_alerts(loaded, kind="not_delivered")} == late
    assert check_not_delivered(loaded, D, at_22 + dt.timedelta(minutes=5)) == first
    assert [a.repeats for a in alerts(loaded)] == [1] * 5  # watched every few seconds: once


# --- one round ------------------------------------------------------------------------------


def test_one_round_raises_both_and_a_failing_check_does_not_stop_the_other(
    loaded: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = FakeStation(D, "uik-101")
    f.zero_report()
    accept_batch(loaded, D, items(f.turnout(5), received=T))
    at_22 = dt.datetime(2026, 11, 29, 22, 0, tzinfo=ZoneInfo("Asia/Bishkek"))
    assert at_22 > _at(60)
    watch_once(loaded, D, at_22)
    assert len(open_alerts(loaded, kind="gap")) == 1
    assert len(open_alerts(loaded, kind="not_delivered")) == 6

    def broken(*_: object) -> list[int]:
        raise RuntimeError("the gap check broke")

    monkeypatch.setattr(watch, "check_gaps", broken)
    with loaded.transaction() as tx:  # an operator closed uik-102's: it is raised again
        resolve_alerts(tx, kind="not_delivered", station_id="uik-102", at=at_22)
    with pytest.raises(ExceptionGroup) as failed:
        watch_once(loaded, D, at_22)
    assert [str(e) for e in failed.value.exceptions] == ["the gap check broke"]
    assert open_alerts(loaded, kind="not_delivered", station_id="uik-102")
