"""`shailoo sim day`: a small election day per fault profile, against the real Mosquitto and the
real central server, ends with every final report stored exactly once, the published results
equal to the ground truth, and the alerts the profile must raise."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from central.db import open_database
from central.results import latest_published
from shailoo.cli import main
from sim.day import (
    DayConfig,
    DayResult,
    SimClock,
    StationOutcome,
    UplinkTiming,
    alert_time,
    check_deferred,
    check_power_cuts,
    check_spares,
    election_date,
    provision,
    reconcile,
    run_day,
)
from sim.faults import (
    BENIGN_ALERTS,
    PROFILE_DIR,
    FaultError,
    load_profile,
    plan_faults,
    profile_names,
)

STATIONS = 6
VOTERS = 25
SEED = 7
SPEED = 2880.0  # 08:00-20:00 in 15 s


@pytest.fixture(scope="module")
def election(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small parliament election, provisioned once per module (per xdist worker)."""
    base = tmp_path_factory.mktemp("sim-election")
    provision(base, stations=STATIONS, voters=VOTERS, seed=SEED, say=lambda s: None)
    return base


def day(election: Path, out: Path, faults: str, **kw: Any) -> DayResult:
    """The profile's day with fast stations only (the CLI test covers a full station)."""
    kw.setdefault("full", 0)
    kw.setdefault("speed", SPEED)
    cfg = DayConfig(
        stations=STATIONS,
        voters_per_station=VOTERS,
        seed=SEED,
        faults=faults,
        out=out,
        election=election,
        quiet=True,
        **kw,
    )
    return run_day(cfg)


def assert_day_correct(r: DayResult, faults: str) -> None:
    """Results == truth, every message exactly once, each final report once, the alerts."""
    assert r.problems == [], "\n".join(r.problems)
    assert r.ok
    assert r.finals_once == STATIONS
    assert r.messages_signed == r.messages_stored > STATIONS * 10
    # the independent verifier, root pinned, accepts the record the CEC exported at the end
    assert r.verifier["ok"] and r.verifier["identical"], r.verifier
    assert r.verifier["messages"] == r.messages_stored
    for level in ("station", "commission", "district", "region", "nation"):
        assert r.reconciled.get(f"tally {level}", 0) >= 1, r.reconciled
        assert r.reconciled.get(f"turnout {level}", 0) >= 1, r.reconciled
    assert all(s.delivered_at is not None and s.closed_at is not None for s in r.stations)
    assert r.seconds_to_published is not None and r.seconds_to_delivered is not None
    # independently of the driver: the CEC's evidence holds each final report exactly once
    assert r.run_dir is not None
    with open_database(f"sqlite:///{r.run_dir / 'central.sqlite'}") as db:
        rows = db.query(
            "SELECT station_id, kind, raw FROM messages "
            "WHERE kind IN ('asu_report', 'identification_report')"
        )
        finals: dict[tuple[str, str], int] = {}
        for row in rows:
            if json.loads(bytes(row["raw"]))["body"].get("phase") == "final":
                key = (row["station_id"], row["kind"])
                finals[key] = finals.get(key, 0) + 1
        assert len(finals) == 2 * STATIONS and set(finals.values()) == {1}
        assert db.one("SELECT COUNT(*) AS n FROM conflicting_messages") == {"n": 0}
        alerts = db.query("SELECT kind, station_id, resolved_at FROM alerts")
    profile = load_profile(faults)
    kinds = {a["kind"] for a in alerts}
    assert set(profile.expect_alerts) <= kinds
    assert kinds <= set(profile.expect_alerts) | BENIGN_ALERTS
    assert all(a["resolved_at"] for a in alerts if a["kind"] in ("gap", "not_delivered"))


def test_profiles_are_valid_and_plans_reproducible() -> None:
    assert {"none", "modems", "broker_restart", "central_kill", "attacker", "power_cut"} <= set(
        profile_names()
    )
    numbers = [1001, 1002, 2001, 2002, 3001, 4001]
    date = dt.date(2026, 11, 29)
    for name in profile_names():
        p = load_profile(name)
        plan = plan_faults(p, numbers, date, "Asia/Bishkek", 1)
        assert plan == plan_faults(p, numbers, date, "Asia/Bishkek", 1)
    modems = plan_faults(load_profile("modems"), numbers, date, "Asia/Bishkek", 1)
    late = [s for spells in modems.spells.values() for s in spells if s.late]
    assert late and all(s.restore and s.restore.hour >= 22 for s in late)
    for spells in modems.spells.values():  # merged: never down twice at once
        for a, b in zip(spells, spells[1:], strict=False):
            assert a.restore is not None and a.restore < b.cut
    with pytest.raises(FaultError, match="known: "):
        load_profile("no-such-profile")
    assert election_date(dt.date(2026, 11, 23)) == dt.date(2026, 11, 29)
    assert election_date(dt.date(2026, 11, 29)) == dt.date(2026, 12, 6)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"name": "x", "broker": {"at": "25:00"}}', "'25:00' is not a local time HH:MM"),
        ('{"name": "x", "modems": {"window": ["08:00", "9h"]}}', "'9h' is not a local time"),
        ('{"name": "x", "attacker": {"start": "soon"}}', "'soon' is not a local time"),
        ('{"name": "x", "spare": {"spare_minutes": [0, 5]}}', "min >= 1"),
        ('{"name": "x", "brokr": {}}', "brokr"),
        ('{"name": "x",', "not JSON"),
    ],
)
def test_a_bad_profile_file_is_refused_saying_what_is_wrong(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FaultError, match=re.escape(says)):
        load_profile(path)


def test_box_failure_plan_is_seeded_and_within_the_day() -> None:
    numbers = list(range(1001, 1031))
    date = dt.date(2026, 11, 29)
    p = load_profile("box_failure")
    assert p.box is not None

    def plan(profile: Any = p, stations: list[int] = numbers, seed: int = 1) -> Any:
        return plan_faults(profile, stations, date, "Asia/Bishkek", seed, exclude=stations[:1])

    a = plan()
    assert a == plan() and a != plan(seed=2)
    assert numbers[0] not in a.box  # never a full station
    assert len(a.box) == round(p.box.share * (len(numbers) - 1))
    at_close = [o for o in a.box.values() if o.back is None]
    assert at_close and len(at_close) < len(a.box)  # some get a spare ASU during the day
    for o in a.box.values():
        assert dt.time(9) <= o.fails.time() <= dt.time(17) and o.fails.date() == date
        if o.back is not None:
            assert dt.timedelta(minutes=40) <= o.back - o.fails <= dt.timedelta(minutes=180)
            assert o.back.time() < dt.time(20)
    lines = a.describe()
    assert sum("ballot box (ASU) fails" in line for line in lines) == len(a.box)
    assert sum("spare ASU only at the close" in line for line in lines) == len(at_close)
    assert list(plan(stations=[1000, 1001]).box) == [1001]  # a share of one is one
    late = p.model_copy(update={"box": p.box.model_copy(update={"window": ("09:00", "20:30")})})
    with pytest.raises(FaultError, match="before the polls close"):
        plan(late)


def test_clock_runs_at_two_speeds() -> None:
    tz = dt.timezone(dt.timedelta(hours=6))
    sim0 = dt.datetime(2026, 11, 29, 7, 55, tzinfo=tz)
    evening = sim0.replace(hour=20, minute=0)
    c = SimClock(1000.0, sim0, 720.0, evening, 60.0)
    assert c.sim(1000.0) == sim0
    assert c.wall(evening) == pytest.approx(1000.0 + 12 * 3600 / 720 + 5 * 60 / 720)
    later = evening + dt.timedelta(minutes=30)
    assert c.wall(later) == pytest.approx(c.wall(evening) + 30)
    assert c.sim(c.wall(later)) == later


def test_alert_times_after_a_late_close_are_on_that_stations_clock() -> None:
    """The CEC stamps real time; a station that closed late (the machine behind the clock)
    sees its alert resolved an hour after its close, not at the driver's clock time."""
    tz = dt.timezone(dt.timedelta(hours=6))
    sim0 = dt.datetime(2026, 11, 29, 7, 55, tzinfo=tz)
    c = SimClock(1000.0, sim0, 720.0, sim0.replace(hour=20, minute=0), 60.0)
    s = StationOutcome(1001, "uik-1001", "fast")
    s.closed_at, s.closed_wall = sim0.replace(hour=20, minute=5), c.wall0 + 400  # 340 s late

    def real(w: float) -> str:
        return dt.datetime.fromtimestamp(w, dt.UTC).isoformat()

    assert alert_time(real(s.closed_wall + 3600 / 60), c, s) == "21:05"
    driver = c.sim(s.closed_wall + 3600 / 60)
    assert driver.hour == 2 and alert_time(real(s.closed_wall + 60), c) == f"{driver:%H:%M}"
    assert alert_time(real(c.wall0 + 60), c, s) == "19:55"  # before its close: the clock
    assert alert_time("2026-11-29T22:00:00+06:00", c, s) == "22:00"  # the watch's own time
    assert alert_time(None, c) == "-"


def test_uplink_timers_leave_a_national_day_room_to_connect_and_ack() -> None:
    small, national = UplinkTiming.for_day(720.0, 6), UplinkTiming.for_day(720.0, 2500)
    assert small.resend_after == 8.0 and small.backoff_max == 1.5  # a compressed clock
    # 2,500 stations: resends and reconnects spread so the CEC and the TLS handshakes keep up
    assert national.resend_after >= 50.0 and national.backoff_max >= 25.0
    assert national.backoff_initial == small.backoff_initial


def test_clean_day_through_the_cli(election: Path, tmp_path: Path) -> None:
    code = main(
        [
            "sim",
            "day",
            "--stations",
            str(STATIONS),
            "--voters-per-station",
            str(VOTERS),
            "--seed",
            str(SEED),
            "--speed",
            str(SPEED),
            "--faults",
            "none",
            "--out",
            str(tmp_path),
            "--election",
            str(election),
            "--full",
            "1",
        ]
    )
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["problems"] == []
    assert code == 0
    assert report["ok"] and report["finals_once"] == STATIONS
    kinds = {s["number"]: s["kind"] for s in report["stations"]}
    assert sorted(kinds.values()) == ["fast"] * (STATIONS - 1) + ["full"]
    assert kinds[min(kinds)] == "full"  # the first station: reader, camera, ballot box
    assert report["share_table"][-1][1] == 100.0
    # the reconciliation is a real check: one vote moved at one station is found at every level
    with open_database(f"sqlite:///{tmp_path / 'run' / 'central.sqlite'}") as db:
        pub = latest_published(db)
    assert pub is not None
    doc = pub.document
    truths_ok: list[str] = []
    definition = _definition(election)
    truths = _truths_from_doc(doc)
    assert reconcile(doc, definition, truths, truths_ok) and truths_ok == []
    bad = copy.deepcopy(doc)
    unit = bad["contests"][0]["units"]["station"][0]["asu"]
    a, b = list(unit["votes"])[:2]
    unit["votes"][a] += 1
    unit["votes"][b] -= 1
    problems: list[str] = []
    reconcile(bad, definition, truths, problems)
    assert len(problems) == 1 and "votes differ" in problems[0]


def test_modems_down_for_spells_and_over_the_close(election: Path, tmp_path: Path) -> None:
    r = day(election, tmp_path, "modems", evening_speed=720.0)
    assert_day_correct(r, "modems")
    late = [s for s in r.stations if "down" in s.link and s.delivered_at]
    assert late, "the profile cuts some stations' links"
    latest = max(s.delivered_at for s in late if s.delivered_at)
    assert latest.hour >= 22 or latest.hour < 8  # one stayed out until long after 20:00
    assert any(a["kind"] == "not_delivered" for a in r.alerts)


def test_broker_restarted_in_the_closing_storm(election: Path, tmp_path: Path) -> None:
    r = day(election, tmp_path, "broker_restart", evening_speed=60.0)
    assert_day_correct(r, "broker_restart")
    assert r.run_dir is not None
    assert (r.run_dir / "broker" / "mosquitto.log").read_text().count("--- starting") == 2
    # 20:02 at x60 is 2 s after 20:00: stations were still closing when the broker went
    assert any(s.closed_at and s.closed_at.minute >= 3 for s in r.stations)


def test_central_killed_in_the_closing_storm(election: Path, tmp_path: Path) -> None:
    r = day(election, tmp_path, "central_kill", evening_speed=60.0)
    assert_day_correct(r, "central_kill")
    assert r.run_dir is not None
    lines = (r.run_dir / "central.log").read_text().splitlines()
    assert sum(line.startswith("central: ") for line in lines) == 2  # killed, started again


def test_faults_fire_when_the_stations_get_there_not_by_the_drivers_clock(
    election: Path, tmp_path: Path
) -> None:
    """The day far faster than the stations can play it: the driver's 20:03 comes while
    they are still voting, but the kill meant for the closing storm waits for them."""
    r = day(election, tmp_path, "central_kill", speed=200_000.0, evening_speed=6000.0)
    assert_day_correct(r, "central_kill")
    # by the clock 20:03 came 0.03 s after 20:00; the stations ran later than that
    assert r.max_lag > 0.2, "the stations kept up: this run shows nothing"
    (fired,) = [f for f in r.faults_fired if f[0] == "central"]
    at = dt.datetime.fromisoformat(fired[1])
    closed_before = [s for s in r.stations if s.closed_at is not None and s.closed_at <= at]
    assert closed_before, "stations close at 20:00, before the kill at 20:03"
    assert all(s.closed_wall is not None and s.closed_wall <= fired[2] for s in closed_before)


def test_a_worker_behind_the_clock_keeps_the_evenings_spacing(
    election: Path, tmp_path: Path
) -> None:
    """Stations that run late close late; a modem planned back two hours after the close
    still comes back two (simulated) hours after that station's close, not at once."""
    evening = 12_000.0  # so that the stations' lag is simulated hours of the evening
    r = day(election, tmp_path, "modems", speed=200_000.0, evening_speed=evening)
    assert_day_correct(r, "modems")
    # on the driver's clock the modems would come back this much early: over 30 minutes
    # of the 135-210 after the close, more than the 10% the check below allows
    assert r.max_lag * evening > 1800, "the stations kept up: this run shows nothing"
    late = 0
    for s in r.stations:
        spells = re.findall(r"down \d\d:\d\d-(\d\d):(\d\d)", s.link)
        if not spells or int(spells[-1][0]) < 20:
            continue
        assert s.closed_at and s.closed_wall and s.delivered_wall
        back = s.closed_at.replace(hour=int(spells[-1][0]), minute=int(spells[-1][1]))
        planned = (back - s.closed_at).total_seconds() / evening  # real seconds after close
        assert s.delivered_wall - s.closed_wall >= 0.9 * planned, (s.number, s.link)
        late += 1
    assert late, "the profile keeps some links down long after the close"


def test_power_cut_plan_is_seeded_with_both_mid_sheet_cases() -> None:
    numbers = list(range(1001, 1031))
    date = dt.date(2026, 11, 29)
    p = load_profile("power_cut")
    assert p.power is not None and p.power.mid_sheet_share > 0

    def plan(stations: list[int] = numbers, seed: int = 1) -> Any:
        return plan_faults(p, stations, date, "Asia/Bishkek", seed, exclude=stations[:1])

    a = plan()
    assert a == plan() and a != plan(seed=2)
    assert numbers[0] not in a.power_mid_sheet and numbers[0] not in a.power_off  # full
    assert len(a.power_mid_sheet) == round(p.power.mid_sheet_share * (len(numbers) - 1))
    assert a.power_off and a.power_mid_sheet  # one profile: at the close and mid-sheet
    falls = [c.dropped for c in a.power_mid_sheet.values()]
    assert abs(falls.count(True) - falls.count(False)) <= 1  # the two cases alternate
    for c in a.power_mid_sheet.values():
        assert dt.time(9) <= c.after.time() <= dt.time(17) and c.after.date() == date
        assert 3 <= c.off_minutes <= 20
    lines = a.describe()
    assert sum("in the middle of accepting a sheet" in x for x in lines) == len(falls)
    assert sum("which had fallen into the box" in x for x in lines) == falls.count(True)
    assert sum("after signing its final reports" in x for x in lines) == len(a.power_off)
    two = plan(stations=[1000, 1001, 1002, 1003, 1004, 1005, 1006]).power_mid_sheet
    assert {c.dropped for c in two.values()} == {True, False}  # from two stations: both


def test_power_cut_mid_sheet_and_between_signing_and_sending(
    election: Path, tmp_path: Path
) -> None:
    r = day(election, tmp_path, "power_cut", evening_speed=720.0)
    # ... including `check_power_cuts`: each mid-sheet station's final ASU report counts
    # exactly its truth's sheets, and gives back the held sheet once where it had not fallen
    assert_day_correct(r, "power_cut")
    cut = [s for s in r.stations if "power cut after signing" in s.link]
    assert cut
    for s in cut:  # nothing left before the power went; everything came after it returned
        minutes = int(s.link.split("power cut after signing, ")[1].split(" min")[0])
        assert s.closed_at is not None and s.delivered_at is not None
        assert s.delivered_at >= s.closed_at + dt.timedelta(minutes=minutes)
    # in the middle of accepting a sheet, during the day: every planned cut happened, both
    # cases (the sheet had fallen into the box / was still in the scanner), back in the day
    planned = [s for s in r.stations if "power cut mid-sheet" in s.link]
    assert planned and all(len(s.power_cuts) == 1 for s in planned)
    assert all(not s.power_cuts for s in r.stations if s not in planned)
    assert {s.power_cuts[0]["fell"] for s in planned} == {True, False}
    cuts = {
        s.station_id: [
            (dt.datetime.fromisoformat(c["off"]), dt.datetime.fromisoformat(c["back"]), c["fell"])
            for c in s.power_cuts
        ]
        for s in planned
    }
    for ((off, back, _fell),) in cuts.values():
        assert off < back <= off + dt.timedelta(minutes=20) and back.hour < 20
    # the check is a real one: a held sheet lost, counted twice or given back twice is found
    assert r.run_dir is not None
    with open_database(f"sqlite:///{r.run_dir / 'central.sqlite'}") as db:
        rows = db.query("SELECT station_id, raw FROM messages WHERE kind = 'asu_report'")
    bodies = {
        row["station_id"]: body
        for row in rows
        if (body := json.loads(bytes(row["raw"]))["body"])["phase"] == "final"
    }
    again = "drop not confirmed"
    truths = {  # as stored (only to exercise `check_power_cuts` itself)
        sid: {
            "sheets": bodies[sid]["sheets"],
            "returns": {k: n for k, n in bodies[sid]["returned"].items() if k != again},
        }
        for sid in cuts
    }
    problems: list[str] = []
    assert check_power_cuts(bodies, truths, cuts, problems) == len(cuts) and problems == []
    inside = next(sid for sid, ((_o, _b, fell),) in cuts.items() if not fell)
    fallen = next(sid for sid, ((_o, _b, fell),) in cuts.items() if fell)
    assert bodies[inside]["returned"][again] == 1  # given back once at boot, then fed again
    for sid, wrong in (
        (inside, {"sheets": bodies[inside]["sheets"] - 1}),  # the sheet given back: lost
        (inside, {"sheets": bodies[inside]["sheets"] + 1}),  # ... or counted twice
        (inside, {"returned": {**bodies[inside]["returned"], again: 2}}),  # given back twice
        (fallen, {"sheets": bodies[fallen]["sheets"] - 1}),  # the sheet that had fallen: lost
    ):
        problems = []
        check_power_cuts({**bodies, sid: {**bodies[sid], **wrong}}, truths, cuts, problems)
        assert len(problems) == 1 and "power cut mid-sheet" in problems[0], problems


def test_attacker_on_the_broker_network(election: Path, tmp_path: Path) -> None:
    r = day(election, tmp_path, "attacker")
    assert_day_correct(r, "attacker")
    assert r.attack is not None and r.attack.tls_forged_root_refused is True
    assert r.attack.published == len(r.attack.sent)
    victim = max(s.number for s in r.stations)
    victim_id = next(s.station_id for s in r.stations if s.number == victim)
    refusals = [a for a in r.alerts if a["kind"] in load_profile("attacker").expect_alerts]
    assert refusals and {a["station_id"] for a in refusals} == {victim_id}
    malformed = sum(a["repeats"] for a in refusals if a["kind"] == "malformed")
    flood = load_profile("attacker").attacker.flood  # type: ignore[union-attr]
    assert malformed >= 4 + flood // 2  # four malformed payloads and the flood's garbage, counted


def test_box_failure_with_a_deferred_batch(election: Path, tmp_path: Path) -> None:
    # The shipped profile, its outages made long enough for a 25-voter station's voters to
    # reach the spare box before a spare ASU comes during the day (same stations and times).
    profile = json.loads((PROFILE_DIR / "box_failure.json").read_text())
    profile["box"]["down_minutes"] = [180, 240]
    faults = tmp_path / "box_failure.json"
    faults.write_text(json.dumps(profile))
    r = day(election, tmp_path / "out", str(faults))
    assert_day_correct(r, str(faults))  # totals (both batches) equal the truth at every level
    failed = [s for s in r.stations if "ASU failed" in s.link]
    assert failed and len(failed) < STATIONS
    # reported apart: the spare box's sheets at the failed stations (checked against their
    # truths by the driver), none anywhere else; a spare box with no sheet proves nothing
    assert all(s.deferred_sheets == 0 for s in r.stations if s not in failed)
    at_close = [s for s in failed if "spare ASU at the close" in s.link]  # scanned after 20:00
    assert at_close and any(s.deferred_sheets for s in at_close)
    assert any(s.deferred_sheets for s in failed if s not in at_close)  # during the day
    # the check is a real one: a deferred batch lost, doubled or not reported apart is found
    assert r.run_dir is not None
    with open_database(f"sqlite:///{r.run_dir / 'central.sqlite'}") as db:
        rows = db.query("SELECT station_id, raw FROM messages WHERE kind = 'asu_report'")
    bodies = {
        row["station_id"]: body
        for row in rows
        if (body := json.loads(bytes(row["raw"]))["body"])["phase"] == "final"
    }
    truths = {  # as stored (only to exercise `check_deferred` itself)
        sid: {
            "deferred_sheets": b["deferred_sheets"],
            "deferred_tallies": {t["contest_id"]: t for t in b["deferred_tallies"]},
        }
        for sid, b in bodies.items()
    }
    problems: list[str] = []
    assert check_deferred(bodies, truths, problems) == STATIONS and problems == []
    sid = next(s.station_id for s in failed if s.deferred_sheets)
    zero = {"ballots": 0, "invalid": 0, "invalid_by_reason": {}, "votes": {}, "preferences": {}}
    for wrong in (
        {"deferred_sheets": 0, "deferred_tallies": []},  # not reported apart (or lost)
        {"deferred_sheets": 2 * bodies[sid]["deferred_sheets"]},  # doubled
        {"deferred_tallies": [{**t, **zero} for t in bodies[sid]["deferred_tallies"]]},
    ):
        problems = []
        check_deferred({**bodies, sid: {**bodies[sid], **wrong}}, truths, problems)
        assert len(problems) == 1 and "deferred" in problems[0], problems


def test_spare_device_takes_over_mid_day(election: Path, tmp_path: Path) -> None:
    r = day(election, tmp_path, "spare_device")
    assert_day_correct(r, "spare_device")  # results = truth, each final report once, verified
    swapped = [s for s in r.stations if s.takeover is not None]
    assert swapped and len(swapped) < STATIONS
    assert {s.number for s in swapped} == {s.number for s in r.stations if "spare runs" in s.link}
    for s in swapped:  # the chain went on: the spare signed from the next seq
        assert s.takeover is not None and s.takeover["from_device"] != s.takeover["to_device"]
    # a spare that ran before the CEC authorised it was refused, then its resent messages
    # were accepted (every message stored, checked above) and the alert resolved
    unknown = [a for a in r.alerts if a["kind"] == "unknown_device"]
    assert unknown and all(a["resolved_at"] for a in unknown)
    assert {a["station_id"] for a in unknown} <= {s.station_id for s in swapped}
    assert r.run_dir is not None
    with open_database(f"sqlite:///{r.run_dir / 'central.sqlite'}") as db:
        authorised = {(d["station_id"], d["device_id"]) for d in db.query("SELECT * FROM devices")}
        assert authorised == {(s.station_id, s.takeover["to_device"]) for s in swapped}  # type: ignore[index]
        record = json.loads((r.run_dir / "record" / "devices.json").read_text())["devices"]
        assert authorised <= {(d["station_id"], d["device_id"]) for d in record}
        # the check is a real one: a takeover said to be a message later is found
        definition = _definition(election)
        numbers = [s.number for s in definition.stations]
        plan = plan_faults(load_profile("spare_device"), numbers, definition.date,
                           definition.timezone, SEED)  # fmt: skip
        assert set(plan.spares) == {s.number for s in swapped}
        wrong = copy.deepcopy(r)
        wrong.problems = []
        moved = next(s for s in wrong.stations if s.takeover is not None)
        moved.takeover["last_seq"] -= 1  # type: ignore[index]
        check_spares(db, plan, wrong)
        assert wrong.problems and all(f"station {moved.number}:" in p for p in wrong.problems)


# --- helpers ---------------------------------------------------------------------------------


def _definition(election: Path) -> Any:
    from sim.day import load_definition

    return load_definition(election / "provisioned")


def _truths_from_doc(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Station truths as the published station rows (only to exercise `reconcile` itself)."""
    keys = ("ballots", "invalid", "invalid_by_reason", "votes", "preferences")
    truths: dict[str, dict[str, Any]] = {}
    for contest in doc["contests"]:
        for unit in contest["units"]["station"]:
            t = truths.setdefault(unit["id"], {"tallies": {}, "voted": 0})
            t["tallies"][contest["id"]] = {k: unit["asu"][k] for k in keys}
    for unit in doc["turnout"]["station"]:
        truths[unit["id"]]["voted"] = unit["voted"]
    return truths
