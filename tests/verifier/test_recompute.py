"""The verifier's own reading of docs/central.md "Which report counts" and "Aggregates",
checked rule by rule on signed messages (no database, no server code involved)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from election.tally import ContestTally
from tests.central.fake_stations import FakeStation, tally, tiny_definition
from verifier.recompute import Sum, count_station, read, rebuild

D = tiny_definition(registered=500)


def _final(f: FakeStation, votes: int) -> list[ContestTally]:
    return [tally(c, {c.options[0].id: votes}) for c in f.contests]


def test_an_older_report_never_overwrites_a_newer_one_whatever_the_arrival_order() -> None:
    f = FakeStation(D, "uik-101")
    envs = [f.zero_report(), f.at(20).final_report(_final(f, 40)), f.at(20, 30).zero_report()]
    for order in (envs, envs[::-1], [envs[1], envs[2], envs[0]]):
        c = count_station(D, order)
        assert c.asu["list"].votes["pa"] == 40  # the zero report signed after it never wins
        assert c.state == "closed"


def test_of_two_final_reports_the_later_signed_one_counts() -> None:
    f = FakeStation(D, "uik-101")
    first, second = f.final_report(_final(f, 40)), f.final_report(_final(f, 41))
    for order in ([first, second], [second, first]):
        assert count_station(D, order).asu["list"].votes["pa"] == 41


def test_test_mode_never_reaches_a_count_a_turnout_or_the_state() -> None:
    f = FakeStation(D, "uik-101")
    envs = [
        f.final_report(_final(f, 40), mode="test"),
        f.ident_report("final", {"09": 30}, mode="test"),
        f.turnout(30, mode="test"),
        f.heartbeat(state="closed", mode="test", voted=30),
    ]
    c = count_station(D, envs)
    assert (c.asu, c.voted, c.ident, c.hours, c.state) == ({}, None, None, {}, "not_opened")
    assert [why.split(" ")[0] for _, why in c.not_counted] == ["test"] * 4


def test_turnout_follows_the_final_identification_report_not_a_later_snapshot() -> None:
    f = FakeStation(D, "uik-101")
    envs = [
        f.at(10).turnout(50),
        f.at(20, 5).ident_report("final", {"09": 100, "15": 20}),
        f.at(20, 30).turnout(7),  # signed after the final report: stale, does not count
    ]
    c = count_station(D, envs)
    assert c.voted == 120
    assert c.ident is not None and sum(c.ident) == 120


def test_by_hour_figures_take_the_highest_seq_per_slot_and_clamp_to_polling_hours() -> None:
    f = FakeStation(D, "uik-101")
    envs = [
        f.at(7, 30).turnout(5),  # before opening: the opening hour's slot
        f.at(8, 40).turnout(20),  # same slot, later seq: wins
        f.at(13, 0).heartbeat(voted=90),
        f.at(21, 10).ident_report("final", {"08": 20, "13": 70, "19": 10}),
    ]
    c = count_station(D, envs)
    assert c.hours["08"] == 20  # the identification report states 08 too, at a higher seq
    assert c.hours["13"] == 90 and c.hours["19"] == 100 and c.hours["20"] == 100


def test_reports_that_do_not_read_or_exceed_the_roll_count_for_nothing() -> None:
    f = FakeStation(D, "uik-101")
    bad = _final(f, 40)
    bad[0] = bad[0].model_copy(update={"ballots": 41})
    envs = [f.final_report(bad), f.turnout(501), f.ident_report("first", {"٠٨": 3})]
    c = count_station(D, envs)
    assert c.asu == {} and c.voted is None
    assert [why.split(":")[0] for _, why in c.not_counted] == [
        "the signed body does not read",
        "501 voted is more than the 500 registered",
        "the signed body does not read",  # hour keys are ASCII digits only
    ]


def test_unknown_kinds_and_log_digests_count_for_nothing() -> None:
    f = FakeStation(D, "uik-101")
    r = read(D, f.sign("log_digest", {"mode": "live", "head": "0" * 64}))
    assert not r.counts and r.why == "a log_digest carries no counts"


def test_invalid_ballots_without_a_breakdown_sum_as_unspecified() -> None:
    contest = D.contest("referendum")
    with_reasons = tally(contest, {"yes": 5}, invalid=2)  # {"blank": 2}
    without = with_reasons.model_copy(update={"invalid_by_reason": {}})
    s = Sum()
    s.add_tally(with_reasons)
    s.add_tally(without)
    assert s.tally(contest).invalid_by_reason == {"blank": 2, "unspecified": 2}
    only = Sum()
    only.add_tally(without)
    assert only.tally(contest).invalid_by_reason == {}  # "unspecified" alone is not shown


def test_single_member_contests_are_summed_to_their_district_only() -> None:
    rng = random.Random(3)
    msgs = {}
    for s in D.stations:
        f = FakeStation(D, s.id)
        msgs[s.id] = [f.final_report(f.tallies(rng, 100))]
    doc = rebuild(D, msgs, {}).document
    smd = next(c for c in doc["contests"] if c["id"] == "smd-1")
    assert sorted(smd["units"]) == ["commission", "district", "station"]
    assert [u["id"] for u in smd["units"]["station"]] == ["uik-101", "uik-102", "uik-103"]
    district = smd["units"]["district"][0]["asu"]
    assert district["stations"] == 3
    assert district["ballots"] == 300
    assert sum(int(p.replace(".", "")) for p in district["shares"]["percent"].values()) == 10_000


def test_a_body_that_breaks_date_arithmetic_reads_as_not_counted() -> None:
    """A year-9999 time west of UTC overflows when moved to Bishkek time (OverflowError,
    not a ValueError): it must count for nothing, not stop the verifier."""
    f = FakeStation(D, "uik-101")
    env = f.sign(
        "turnout",
        {"mode": "live", "as_of": "9999-12-31T23:59:59-10:00", "registered": 500, "voted": 3},
    )
    r = read(D, env)
    assert not r.counts and r.why is not None and "out of range" in r.why


def test_the_verifier_loads_no_server_or_station_code() -> None:
    """Independence: a bug in central/'s bookkeeping must not be repeated by the verifier."""
    code = (
        "import sys, verifier.cli, verifier.__main__\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('central', 'station'))\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
