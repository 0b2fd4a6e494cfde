"""`shailoo sim day`: a small election day per fault profile, against the real Mosquitto and the
real central server, ends with every final report stored exactly once, the published results
equal to the ground truth, and the alerts the profile must raise."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from central.db import open_database
from central.results import latest_published
from shailoo.cli import main
from sim.day import DayConfig, DayResult, SimClock, election_date, provision, reconcile, run_day
from sim.faults import BENIGN_ALERTS, FaultError, load_profile, plan_faults, profile_names

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
    cfg = DayConfig(
        stations=STATIONS,
        voters_per_station=VOTERS,
        seed=SEED,
        speed=SPEED,
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


def test_power_cut_between_signing_and_sending(election: Path, tmp_path: Path) -> None:
    r = day(election, tmp_path, "power_cut", evening_speed=720.0)
    assert_day_correct(r, "power_cut")
    cut = [s for s in r.stations if "power cut" in s.link]
    assert cut
    for s in cut:  # nothing left before the power went; everything came after it returned
        minutes = int(s.link.split("power cut after signing, ")[1].split(" min")[0])
        assert s.closed_at is not None and s.delivered_at is not None
        assert s.delivered_at >= s.closed_at + dt.timedelta(minutes=minutes)


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
