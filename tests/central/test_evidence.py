"""The acceptance step: storing the evidence, the chain, what a message changes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import threading

import pytest

from central import aggregate, evidence
from central.alerts import alerts, open_alerts
from central.db import Database, open_database
from central.evidence import accept_batch, load_stations
from central.watch import check_gaps, check_not_delivered
from tests.central.fake_stations import RECEIVED, FakeStation, item, items, tiny_definition

D = tiny_definition()


@pytest.fixture
def loaded(db: Database) -> Database:
    load_stations(db, D)
    return db


def _station(db: Database, sid: str = "uik-101") -> dict[str, object]:
    row = db.one("SELECT * FROM stations WHERE station_id = ?", (sid,))
    assert row is not None
    return row


def _turnout(db: Database, level: str = "station", unit: str = "uik-101") -> int | None:
    row = db.one("SELECT voted FROM turnout WHERE level = ? AND unit = ?", (level, unit))
    return None if row is None else int(row["voted"])


def _asu(db: Database, contest: str = "president", level: str = "nation", unit: str = "nation"):
    return db.one(
        "SELECT stations, tally FROM tallies WHERE level = ? AND unit = ? AND contest_id = ?"
        " AND source = 'asu'",
        (level, unit, contest),
    )


# --- loading -------------------------------------------------------------------------------


def test_load_stations_is_idempotent_and_binds_the_database_to_one_election(
    db: Database,
) -> None:
    assert load_stations(db, D) == 6
    assert load_stations(db, D) == 6
    assert len(db.query("SELECT * FROM stations")) == 6
    row = _station(db, "uik-301")
    assert (row["commission_id"], row["district_id"], row["region_id"]) == ("c4", "d3", "south")
    assert row["state"] == "not_opened" and row["registered"] == 1000
    with pytest.raises(evidence.ElectionMismatch, match="use a new database"):
        load_stations(db, tiny_definition(election_id="kg-other"))


# --- storing, duplicates, refusals ----------------------------------------------------------


def test_a_new_message_is_stored_byte_for_byte_and_decisions_keep_the_input_order(
    loaded: Database,
) -> None:
    a, b = FakeStation(D, "uik-101"), FakeStation(D, "uik-301")
    envs = [b.zero_report(), a.zero_report(), a.ident_report("first"), b.ident_report("first")]
    decisions = accept_batch(loaded, D, items(*envs))
    assert [(d.status, d.station, d.seq) for d in decisions] == [
        ("accepted", "uik-301", 0),
        ("accepted", "uik-101", 0),
        ("accepted", "uik-101", 1),
        ("accepted", "uik-301", 1),
    ]
    assert all(d.ack for d in decisions)
    stored = loaded.one("SELECT * FROM messages WHERE station_id = 'uik-101' AND seq = 1")
    assert stored is not None
    assert stored["raw"] == envs[2].to_bytes()
    assert stored["hash"] == envs[2].hash == decisions[2].hash
    assert (stored["kind"], stored["prev"], stored["device_id"]) == (
        "identification_report",
        envs[1].hash,
        "dev-101",
    )
    assert stored["signed_at"] == envs[2].time
    assert stored["received_at"] == "2026-11-29T14:00:00.000+00:00"


def test_a_duplicate_changes_nothing_and_is_acked_again(loaded: Database) -> None:
    f = FakeStation(D, "uik-101")
    envs = [f.zero_report(), f.ident_report("first"), f.at(10).turnout(40)]
    accept_batch(loaded, D, items(*envs))
    before = aggregate.snapshot(loaded)
    later = RECEIVED + dt.timedelta(hours=1)
    again = accept_batch(loaded, D, items(*envs, received=later))
    assert [d.status for d in again] == ["duplicate"] * 3
    assert all(d.ack for d in again)
    assert aggregate.snapshot(loaded) == before  # not even last_message_at moves


def test_the_same_message_twice_in_one_batch_is_stored_once(loaded: Database) -> None:
    f = FakeStation(D, "uik-101")
    env = f.zero_report()
    decisions = accept_batch(loaded, D, items(env, env))
    assert [d.status for d in decisions] == ["accepted", "duplicate"]
    assert len(loaded.query("SELECT * FROM messages")) == 1


def test_a_different_message_with_a_used_seq_is_an_equivocation_and_changes_nothing(
    loaded: Database,
) -> None:
    f = FakeStation(D, "uik-101")
    accept_batch(loaded, D, items(f.zero_report(), f.at(10).turnout(40)))
    before = aggregate.snapshot(loaded)
    f.seq, f.prev = 1, loaded.query("SELECT hash FROM messages WHERE seq = 0")[0]["hash"]
    forged = f.turnout(400)  # seq 1 again, other contents, validly signed
    (d,) = accept_batch(loaded, D, items(forged))
    assert d.status == "refused" and not d.ack
    assert "equivocation" in d.reason
    assert aggregate.snapshot(loaded) == before
    assert _turnout(loaded) == 40
    (a,) = open_alerts(loaded, kind="equivocation")
    stored_hash = loaded.one("SELECT hash FROM messages WHERE seq = 1")["hash"]  # type: ignore[index]
    assert {e["hash"] for e in a.evidence} == {stored_hash, forged.hash}
    kept = loaded.one("SELECT raw FROM conflicting_messages WHERE hash = ?", (forged.hash,))
    assert kept is not None and kept["raw"] == forged.to_bytes()
    # a flood of other forgeries for the same seq is one alert, counted
    for voted in range(401, 420):
        f.seq = 1
        accept_batch(loaded, D, items(f.turnout(voted)))
    (a,) = open_alerts(loaded, kind="equivocation")
    assert a.repeats == 20
    assert len(loaded.query("SELECT * FROM conflicting_messages")) == evidence.MAX_KEPT_CONFLICTS


def test_a_message_whose_prev_is_not_the_stored_predecessor_is_a_broken_chain(
    loaded: Database,
) -> None:
    f = FakeStation(D, "uik-101")
    accept_batch(loaded, D, items(f.zero_report()))
    bad = f.sign("turnout", {"mode": "live", "as_of": "2026-11-29T10:00:00+06:00",
                             "registered": 1000, "voted": 5}, prev="ab" * 32)  # fmt: skip
    (d,) = accept_batch(loaded, D, items(bad))
    assert d.status == "refused" and "broken chain" in d.reason
    assert loaded.one("SELECT * FROM messages WHERE seq = 1") is None
    (a,) = open_alerts(loaded, kind="broken_chain")
    assert a.severity == "critical" and bad.hash in {e["hash"] for e in a.evidence}


def test_a_message_the_stored_successor_does_not_point_to_is_a_broken_chain(
    loaded: Database,
) -> None:
    f = FakeStation(D, "uik-101")
    zero, first = f.zero_report(), f.ident_report("first")
    accept_batch(loaded, D, items(first))  # seq 1 came first: seq 0 is a hole
    imposter = FakeStation(D, "uik-101").zero_report(mode="test")  # signed, but not seq 1's prev
    (d,) = accept_batch(loaded, D, items(imposter))
    assert d.status == "refused" and "stored seq 1 names another message" in d.reason
    (a,) = open_alerts(loaded, kind="broken_chain")
    assert {e["hash"] for e in a.evidence} == {first.hash, imposter.hash}
    (d,) = accept_batch(loaded, D, items(zero))
    assert d.status == "accepted"
    assert open_alerts(loaded, kind="gap") == []


def test_seq_0_must_start_the_chain(loaded: Database) -> None:
    f = FakeStation(D, "uik-101")
    bad = f.sign("heartbeat", {"mode": "live", "state": "setup"}, prev="cd" * 32)
    (d,) = accept_batch(loaded, D, items(bad))
    assert d.status == "refused" and "seq 0 must start the chain" in d.reason
    assert open_alerts(loaded, kind="broken_chain")


def test_a_message_of_another_election_or_station_is_refused_as_a_safety_net(
    loaded: Database,
) -> None:
    other = tiny_definition(election_id="kg-other")
    (d,) = accept_batch(loaded, D, items(FakeStation(other, "uik-101").zero_report()))
    assert d.status == "refused" and "election" in d.reason
    assert open_alerts(loaded, kind="wrong_election")
    env = FakeStation(D, "uik-101").zero_report()
    (d,) = accept_batch(loaded, D, [(dataclasses.replace(env, station="uik-999"), env.to_bytes(),
                                     RECEIVED)])  # fmt: skip
    assert d.status == "refused" and "not in this election" in d.reason
    assert loaded.query("SELECT * FROM messages") == []


# --- out of order ----------------------------------------------------------------------------


def test_a_message_above_a_hole_is_stored_and_counted_and_the_gap_alert_resolves(
    loaded: Database,
) -> None:
    f = FakeStation(D, "uik-101")
    m = [f.zero_report(), f.ident_report("first"), f.at(10).turnout(30), f.at(11).turnout(55)]
    accept_batch(loaded, D, items(m[0], m[3]))
    assert _turnout(loaded) == 55
    assert _station(loaded)["complete_to"] == 0
    assert open_alerts(loaded, kind="gap") == []  # not at ingest: the watch raises it
    later = RECEIVED + dt.timedelta(minutes=2)  # the hole outlived the watch's grace
    check_gaps(loaded, later)
    (gap,) = open_alerts(loaded, kind="gap")
    assert "messages 1-2 have not arrived" in gap.detail
    accept_batch(loaded, D, items(m[2]))  # the hole shrinks: the watch's next round says so
    check_gaps(loaded, later)
    (gap,) = open_alerts(loaded, kind="gap")
    assert "messages 1 have not arrived" in gap.detail
    accept_batch(loaded, D, items(m[1]))
    assert open_alerts(loaded, kind="gap") == []
    assert all(a.resolved_at for a in alerts(loaded, kind="gap"))
    assert _station(loaded)["complete_to"] == 3
    assert _turnout(loaded) == 55  # the older snapshots did not lower it


def test_a_batch_out_of_order_is_decided_in_seq_order_and_raises_no_gap(
    loaded: Database,
) -> None:
    f = FakeStation(D, "uik-101")
    m = [f.zero_report(), f.ident_report("first"), f.at(10).turnout(30)]
    decisions = accept_batch(loaded, D, items(m[2], m[0], m[1]))
    assert [d.seq for d in decisions] == [2, 0, 1]
    assert all(d.status == "accepted" for d in decisions)
    assert alerts(loaded, kind="gap") == []


def test_an_older_turnout_arriving_later_never_lowers_turnout(loaded: Database) -> None:
    f = FakeStation(D, "uik-101")
    zero, t1, t2 = f.zero_report(), f.at(10).turnout(100), f.at(12).turnout(250)
    accept_batch(loaded, D, items(zero, t2))
    (d,) = accept_batch(loaded, D, items(t1))
    assert d.status == "accepted" and "turnout stays at the figure of seq 2" in d.reason
    assert _turnout(loaded) == 250
    assert _turnout(loaded, "nation", "nation") == 250


def test_a_zero_report_never_replaces_a_final_one(loaded: Database) -> None:
    f = FakeStation(D, "uik-101")
    zero = f.zero_report()
    final = f.at(20, 5).final_report(f.tallies(random.Random(2), 80))
    accept_batch(loaded, D, items(final))
    (d,) = accept_batch(loaded, D, items(zero))  # resent zero arrives after the final
    assert "stays applied" in d.reason
    assert _asu(loaded)["stations"] == 1  # type: ignore[index]
    assert open_alerts(loaded, kind="stale_report") == []  # out of order is normal
    # a zero report SIGNED after the final one is not normal
    late_zero = f.zero_report()
    (d,) = accept_batch(loaded, D, items(late_zero))
    assert d.status == "accepted" and "stays applied" in d.reason
    (a,) = open_alerts(loaded, kind="stale_report")
    assert "after its final one" in a.detail
    assert _asu(loaded)["stations"] == 1  # type: ignore[index]


@pytest.mark.parametrize("arrival", ["in order", "later one first"])
def test_a_second_final_report_the_later_counts_whatever_the_arrival_order(
    loaded: Database, arrival: str
) -> None:
    f = FakeStation(D, "uik-101")
    zero = f.zero_report()
    first = f.at(20, 5).final_report(f.tallies(random.Random(3), 80))
    second = f.at(20, 40).final_report(f.tallies(random.Random(4), 90))
    order = [zero, first, second] if arrival == "in order" else [zero, second, first]
    for env in order:
        accept_batch(loaded, D, items(env))
    row = _station(loaded)
    assert (row["asu_seq"], row["asu_phase"], row["asu_hash"]) == (2, "final", second.hash)
    tally = aggregate.station_tally(loaded, "uik-101", "president", "asu")
    assert tally is not None and tally.ballots == 90
    (a,) = open_alerts(loaded, kind="second_final")
    assert {e["hash"] for e in a.evidence} == {first.hash, second.hash}
    assert a.severity == "critical"


# --- what a message changes ------------------------------------------------------------------


def test_test_mode_messages_are_evidence_only_and_never_counted(loaded: Database) -> None:
    f = FakeStation(D, "uik-101")
    envs = [
        f.zero_report(mode="test"),
        f.ident_report("first", mode="test"),
        f.at(9).turnout(5, mode="test"),
        f.heartbeat(mode="test", voted=5, battery=55),
        f.at(9, 30).final_report(f.tallies(random.Random(5), 20), mode="test"),
        f.ident_report("final", {"09": 20}, mode="test"),
    ]
    decisions = accept_batch(loaded, D, items(*envs))
    assert all(d.status == "accepted" and "test mode" in d.reason for d in decisions)
    assert len(loaded.query("SELECT * FROM messages")) == 6
    row = _station(loaded)
    assert row["state"] == "not_opened"  # test data changes no state
    assert (row["mode"], row["last_seq"], row["battery_percent"]) == ("test", 5, 55)
    assert loaded.query("SELECT * FROM turnout") == []
    assert loaded.query("SELECT * FROM station_hours") == []
    assert loaded.query("SELECT * FROM tallies WHERE stations > 0") == []
    # live messages after leaving test mode continue the same chain and count
    accept_batch(loaded, D, items(f.at(8).zero_report(), f.ident_report("first")))
    row = _station(loaded)
    assert (row["mode"], row["state"], row["complete_to"]) == ("live", "open", 7)


def test_a_signed_report_that_does_not_add_up_is_kept_acked_and_not_counted(
    loaded: Database,
) -> None:
    f = FakeStation(D, "uik-101")
    tallies = f.tallies(random.Random(6), 50)
    broken = tallies[0].model_copy(update={"ballots": tallies[0].ballots + 7})
    final = f.final_report([broken, *tallies[1:]])
    (d,) = accept_batch(loaded, D, items(final))
    assert d.status == "accepted" and d.ack
    assert "not counted" in d.reason and "ballots counted" in d.reason
    assert loaded.one("SELECT * FROM messages") is not None
    assert loaded.query("SELECT * FROM tallies WHERE stations > 0") == []
    (a,) = open_alerts(loaded, kind="bad_report")
    assert a.evidence == [{"station": "uik-101", "seq": 0, "hash": final.hash}]


@pytest.mark.parametrize(
    "body_change, problem",
    [
        ({"phase": "middle"}, "phase must be zero or final"),
        ({"tallies": "all of them"}, "tallies must be a list"),
        ({"sheets": -1}, "sheets must be a count"),
        ({"mode": "demo"}, "mode must be live or test"),
        ({"problems": "none"}, "problems must be a list"),
    ],
)
def test_an_unreadable_asu_report_body_is_a_bad_report(
    loaded: Database, body_change: dict[str, object], problem: str
) -> None:
    f = FakeStation(D, "uik-101")
    body = {**f.final_report().body, **body_change}
    f.seq, f.prev = 0, "0" * 64
    (d,) = accept_batch(loaded, D, items(f.sign("asu_report", body)))
    assert d.status == "accepted" and problem in d.reason
    assert open_alerts(loaded, kind="bad_report")


def test_a_resent_flood_of_one_bad_message_kind_is_one_alert(loaded: Database) -> None:
    f = FakeStation(D, "uik-101")
    bad = [f.sign("heartbeat", {"mode": "demo", "state": "open"}) for _ in range(30)]
    decisions = accept_batch(loaded, D, items(*bad))
    assert all(d.status == "accepted" for d in decisions)
    (a,) = open_alerts(loaded, kind="bad_report")
    assert a.repeats == 30


def test_a_log_digest_is_stored_and_changes_only_last_seen(loaded: Database) -> None:
    f = FakeStation(D, "uik-101")
    digest = {"from_seq": 0, "to_seq": 40, "count": 41, "head_hash": "ab" * 32,
              "by_severity": {"info": 40, "warning": 1}}  # fmt: skip
    (d,) = accept_batch(loaded, D, items(f.sign("log_digest", digest)))
    assert (d.status, d.reason) == ("accepted", "stored")
    row = _station(loaded)
    assert (row["last_seq"], row["state"], row["mode"]) == (0, "not_opened", None)
    assert loaded.query("SELECT * FROM turnout") == []


def test_a_zero_report_that_is_not_zero_is_a_bad_report(loaded: Database) -> None:
    f = FakeStation(D, "uik-101")
    body = f.final_report(f.tallies(random.Random(1), 3)).body | {"phase": "zero"}
    f.seq, f.prev = 0, "0" * 64
    (d,) = accept_batch(loaded, D, items(f.sign("asu_report", body)))
    assert "the zero report is not zero" in d.reason
    assert _station(loaded)["state"] == "not_opened"


def test_the_station_s_own_problems_raise_an_alert_and_the_report_still_counts(
    loaded: Database,
) -> None:
    f = FakeStation(D, "uik-101")
    final = f.final_report(
        f.tallies(random.Random(7), 60),
        voters_identified=50,
        problems=["president: 60 ballots counted but 50 voters identified"],
    )
    accept_batch(loaded, D, items(final))
    (a,) = open_alerts(loaded, kind="report_problems")
    assert "60 ballots counted but 50 voters identified" in a.detail
    assert _asu(loaded)["stations"] == 1  # type: ignore[index]


def test_more_voters_than_registered_is_not_counted_and_alerts(loaded: Database) -> None:
    f = FakeStation(D, "uik-101")
    accept_batch(loaded, D, items(f.zero_report(), f.at(10).turnout(300)))
    (d,) = accept_batch(loaded, D, items(f.at(11).turnout(1001)))
    assert d.status == "accepted" and "1000 registered voters: not counted" in d.reason
    assert _turnout(loaded) == 300
    (a,) = open_alerts(loaded, kind="turnout_over_roll")
    assert a.severity == "critical" and a.station_id == "uik-101"


def test_a_turnout_figure_signed_after_the_final_identification_report_is_stale(
    loaded: Database,
) -> None:
    f = FakeStation(D, "uik-101")
    accept_batch(loaded, D, items(f.zero_report(), f.at(20, 1).ident_report("final", {"10": 70})))
    (d,) = accept_batch(loaded, D, items(f.at(20, 30).turnout(90)))
    assert "turnout stays" in d.reason
    assert _turnout(loaded) == 70
    assert open_alerts(loaded, kind="stale_report")


def test_station_state_goes_from_not_opened_to_delivered(loaded: Database) -> None:
    f = FakeStation(D, "uik-101")

    def state() -> object:
        return _station(loaded)["state"]

    assert state() == "not_opened"
    accept_batch(loaded, D, items(f.heartbeat(state="setup")))
    assert state() == "not_opened"
    accept_batch(loaded, D, items(f.at(8).zero_report()))
    assert state() == "open"
    accept_batch(loaded, D, items(f.at(20, 1).final_report()))
    assert state() == "closed"
    accept_batch(loaded, D, items(f.heartbeat(state="open")))  # never backwards
    assert state() == "closed"
    ids = check_not_delivered(loaded, D, dt.datetime(2026, 11, 29, 22, 30, tzinfo=dt.UTC))
    assert len(ids) == 6
    assert open_alerts(loaded, kind="not_delivered", station_id="uik-101")
    accept_batch(loaded, D, items(f.ident_report("final", {"09": 10})))
    assert state() == "delivered"
    assert open_alerts(loaded, kind="not_delivered", station_id="uik-101") == []
    assert len(open_alerts(loaded, kind="not_delivered")) == 5


def test_the_latest_heartbeat_gives_the_telemetry_even_in_test_mode(loaded: Database) -> None:
    f = FakeStation(D, "uik-101")
    h1 = f.at(10).heartbeat(battery=90)
    h2 = f.at(10, 5).heartbeat(battery=70, mode="test")
    accept_batch(loaded, D, items(h2))
    accept_batch(loaded, D, [item(h1, RECEIVED + dt.timedelta(minutes=5))])  # older, later
    row = _station(loaded)
    assert (row["battery_percent"], row["on_mains"], row["signal_dbm"]) == (70, 1, -71)
    assert row["last_heartbeat_at"] == "2026-11-29T14:00:00.000+00:00"
    assert row["last_message_at"] == "2026-11-29T14:05:00.000+00:00"
    assert row["heartbeat_seq"] == 1


def test_a_failing_batch_stores_nothing(loaded: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    f = FakeStation(D, "uik-101")

    def boom(self: object, tx: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(aggregate.Changes, "flush", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        accept_batch(loaded, D, items(f.zero_report(), f.ident_report("first")))
    assert loaded.query("SELECT * FROM messages") == []
    assert _station(loaded)["last_seq"] is None


# --- two workers -----------------------------------------------------------------------------


def test_two_workers_accepting_the_same_stations_at_once_store_each_message_once(
    loaded: Database, db_url: str
) -> None:
    rng = random.Random(8)
    streams = []
    for s in D.stations:
        f = FakeStation(D, s.id)
        streams.append(
            [f.zero_report(), f.ident_report("first")]
            + [f.at(9 + i).turnout(10 * (i + 1)) for i in range(6)]
            + [f.at(20, 2).final_report(f.tallies(rng, 80)), f.ident_report("final", {"12": 60})]
        )
    every = [e for stream in streams for e in stream]
    # each worker gets every message, in its own order and batching, at the same time
    orders = [list(every), list(reversed(every))]
    results: list[list[evidence.Decision]] = [[], []]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(n: int) -> None:
        try:
            with open_database(db_url) as mine:
                barrier.wait()
                msgs = orders[n]
                for i in range(0, len(msgs), 7):
                    results[n] += accept_batch(mine, D, items(*msgs[i : i + 7]))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    decided = [d for r in results for d in r]
    assert len(decided) == 2 * len(every)
    assert {d.status for d in decided} == {"accepted", "duplicate"}
    assert sum(d.status == "accepted" for d in decided) == len(every)
    assert len(loaded.query("SELECT * FROM messages")) == len(every)
    incremental = aggregate.snapshot(loaded)
    aggregate.recompute(loaded, D)
    assert aggregate.snapshot(loaded) == incremental


def test_a_heartbeat_with_absurd_telemetry_is_stored_and_shows_unknown() -> None:
    """A value that would not fit a column must not fail the batch: it reads as unknown."""
    from central.report_bodies import read_message

    body = {"state": "open", "mode": "live", "battery_percent": 2**50, "on_mains": True,
            "signal_dbm": -70, "outbox_pending": -5}  # fmt: skip
    env = FakeStation(D, "uik-101").sign("heartbeat", body)
    assert read_message(D, env).telemetry == {
        "battery_percent": None, "on_mains": 1, "signal_dbm": -70, "outbox_pending": None,
    }  # fmt: skip


def test_a_time_beyond_the_calendar_makes_the_report_unreadable_not_the_batch() -> None:
    from central.report_bodies import read_message

    body = {"mode": "live", "as_of": "9999-12-31T23:59:59-10:00", "registered": 10, "voted": 1}
    env = FakeStation(D, "uik-101").sign("turnout", body)
    reading = read_message(D, env)
    assert reading.problem is not None and reading.problem.kind == "bad_report"
