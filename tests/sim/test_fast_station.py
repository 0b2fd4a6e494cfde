"""The fast station: a whole day on the real station code ends with signed reports that say
exactly what the truth says happened."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crypto import certs
from crypto.envelope import GENESIS_PREV, Envelope, verify_signed_by_certificate
from election import bundle as B
from election.tally import ContestTally
from sim.fast_station import FastStation, SimError
from sim.truth import How, Mix, Popularity, Truth, make_truth, read_roll
from station import reports
from tests.support.clock import BISHKEK, FakeClock
from tests.support.provisioned import Provisioned, provision

# Every path several times over at a 25-voter station (the defaults are realistic, so rare).
EVERY_PATH = Mix(
    face_retry=0.3,
    face_failed=0.25,
    declined=0.3,
    camera_fault=0.08,
    not_on_roll=0.15,
    elsewhere=0.15,
    already_voted=0.15,
    mobile=1.0,
    blank=0.12,
    overvote=0.12,
    spoiled=0.12,
    not_cast=0.05,
    preference=0.6,
)


def truth_for(
    p: Provisioned, number: int, seed: int = 1, *, mix: Mix | None = None, **kw: Any
) -> Truth:
    station = p.definition.station_by_number(number)
    return make_truth(
        p.definition, station.id, read_roll(p.bundle(number)), seed=seed, mix=mix, **kw
    )


def morning(p: Provisioned) -> dt.datetime:
    return dt.datetime.combine(p.definition.date, dt.time(7, 30), tzinfo=BISHKEK)


@pytest.fixture
def stations() -> Iterator[list[FastStation]]:
    """Fast stations made on demand (closed at the end of the test)."""
    made: list[FastStation] = []
    yield made
    for s in made:
        s.close()


def fast(
    p: Provisioned, number: int, truth: Truth, data: Path, made: list[FastStation]
) -> FastStation:
    clock = FakeClock(morning(p))
    s = FastStation(
        p.bundle(number),
        data / str(number),
        p.passphrases()[number],
        p.root.cert,
        p.index_dir,
        truth,
        clock,
    )
    made.append(s)
    return s


def assert_reports_match(s: FastStation, truth: Truth, final_ident: Envelope) -> None:
    asu = s.last(reports.ASU_REPORT)
    assert asu is not None and asu.body["phase"] == "final"
    got = {t["contest_id"]: ContestTally.from_obj(t) for t in asu.body["tallies"]}
    assert got == truth.tallies()
    assert asu.body["sheets"] == truth.sheets()
    assert asu.body["returned"] == truth.returns()
    assert asu.body["voters_identified"] == truth.voted
    assert asu.body["problems"] == []
    assert final_ident.kind == reports.IDENTIFICATION_REPORT
    assert final_ident.body["phase"] == "final"
    expected = truth.identification_counts()
    assert {k: final_ident.body[k] for k in expected} == expected


def test_a_day_at_default_rates_ends_with_reports_equal_to_the_truth(
    provisioned: Provisioned, tmp_path: Path, stations: list[FastStation]
) -> None:
    truth = truth_for(provisioned, provisioned.definition.stations[0].number, turnout=0.7)
    assert truth.voted > 10
    s = fast(provisioned, provisioned.definition.stations[0].number, truth, tmp_path, stations)
    final = s.run_day()
    assert s.visits_done == len(truth.visits)
    assert_reports_match(s, truth, final)


def test_every_path_through_the_desk_and_the_box_ends_equal_to_the_truth(
    provisioned: Provisioned, tmp_path: Path, stations: list[FastStation]
) -> None:
    here, other = (x.number for x in provisioned.definition.stations[:2])
    truth = truth_for(
        provisioned,
        here,
        seed=3,
        mix=EVERY_PATH,
        turnout=1.0,
        elsewhere=read_roll(provisioned.bundle(other)),
    )
    # the truth really takes every path (else this test would prove less than it says)
    kinds = {v.how for v in truth.visits}
    assert kinds == set(How), set(How) - kinds
    sheets = [sh for v in truth.visits if v.votes for sh in v.sheets]
    assert {sh.mark.status for sh in sheets} == {"valid", "blank", "overvote"}
    assert any(sh.spoiled for sh in sheets) and any(sh.mark.candidate_id for sh in sheets)
    assert any(len(v.faces) > 1 and v.how is How.FACE for v in truth.visits)
    assert any(v.camera_fault for v in truth.visits)
    reasons = truth.identification_counts()["admitted_by_document_by_reason"]
    assert sum(n > 0 for n in reasons.values()) >= 3

    s = fast(provisioned, here, truth, tmp_path, stations)
    final = s.run_day()
    assert_reports_match(s, truth, final)
    assert final.body["mobile_box"] >= 1
    assert all(final.body["refused"].values())


@pytest.fixture(scope="module")
def presidential(tmp_path_factory: pytest.TempPathFactory) -> Provisioned:
    """A nationwide president contest and a referendum (the session's election is parliament)."""
    return provision(tmp_path_factory.mktemp("presidential"), stations=1, voters=30,
                     kind="presidential")  # fmt: skip


def test_a_presidential_day_with_a_referendum_ends_equal_to_the_truth(
    presidential: Provisioned, tmp_path: Path, stations: list[FastStation]
) -> None:
    number = presidential.definition.stations[0].number
    truth = truth_for(presidential, number, seed=4, mix=EVERY_PATH, turnout=0.9)
    assert {c.kind.value for c in truth.contests} == {"president", "referendum"}
    s = fast(presidential, number, truth, tmp_path, stations)
    assert_reports_match(s, truth, s.run_day())


def test_the_same_seed_gives_the_same_truth(provisioned: Provisioned) -> None:
    number = provisioned.definition.stations[0].number
    a, b = truth_for(provisioned, number, 7), truth_for(provisioned, number, 7)
    assert a == b
    assert a.tallies() == b.tallies()
    assert truth_for(provisioned, number, 8) != a
    # one shared popularity model gives the same truth as a private one
    shared = Popularity(provisioned.definition, 7)
    assert truth_for(provisioned, number, 7, popularity=shared) == a


def test_preferences_differ_by_region(provisioned: Provisioned) -> None:
    d = provisioned.definition
    contest = next(c for c in d.contests if c.district_id is None)  # the national list
    pop = Popularity(d, 1)
    shares = []
    for station in d.stations:
        w = pop.option_weights(contest, station.id)
        shares.append([x / sum(w) for x in w])
    assert len({pop.region_of(s.id) for s in d.stations}) > 1
    spread = max(
        max(s[i] for s in shares) - min(s[i] for s in shares) for i in range(len(shares[0]))
    )
    assert spread > 0.03  # a party's share moves by more than 3 points across the map
    aa = next(i for i, o in enumerate(contest.options) if o.kind.value == "against_all")
    assert all(s[aa] < 0.08 for s in shares)


def test_the_days_messages_chain_and_verify(
    provisioned: Provisioned, tmp_path: Path, stations: list[FastStation]
) -> None:
    number = provisioned.definition.stations[1].number
    truth = truth_for(provisioned, number, seed=2, turnout=0.8)
    s = fast(provisioned, number, truth, tmp_path, stations)
    s.run_day()
    messages = s.messages()
    assert [m.seq for m in messages] == list(range(len(messages)))
    assert messages[0].prev == GENESIS_PREV
    for before, after in zip(messages, messages[1:], strict=False):
        assert after.prev == before.hash
        assert after.when >= before.when
    cert = certs.cert_from_pem((provisioned.bundle(number) / B.SIGNING_CERT_FILE).read_bytes())
    for m in messages:
        verify_signed_by_certificate(m, cert, provisioned.root.cert, m.when)
    phases = [(m.kind, m.body.get("phase")) for m in messages if "phase" in m.body]
    assert phases == [
        (reports.ASU_REPORT, "zero"),
        (reports.IDENTIFICATION_REPORT, "first"),
        (reports.ASU_REPORT, "final"),
        (reports.IDENTIFICATION_REPORT, "final"),
    ]
    turnouts = [m for m in messages if m.kind == reports.TURNOUT]
    assert len(turnouts) >= 11  # hourly through the day
    assert [m.body["voted"] for m in turnouts] == [truth.voted_before(m.when) for m in turnouts]


def test_two_stations_interleave_on_one_clock(
    provisioned: Provisioned, tmp_path: Path, stations: list[FastStation]
) -> None:
    """What a many-station simulator does: one timeline, each station stepped in turn."""
    numbers = [x.number for x in provisioned.definition.stations[2:4]]
    truths = [truth_for(provisioned, n, seed=5, turnout=0.6) for n in numbers]
    day = [
        fast(provisioned, n, t, tmp_path, stations) for n, t in zip(numbers, truths, strict=True)
    ]
    t = morning(provisioned)
    for s in day:
        s.setup(t)
    t = t.replace(hour=8, minute=0)
    for s in day:
        s.open_polls(t)
    while t.hour < 20:
        t += dt.timedelta(minutes=30)
        for s in day:
            if t.hour < 20:
                s.tick(t)
    for s, truth in zip(day, truths, strict=True):
        assert_reports_match(s, truth, s.close_polls(t))


def test_time_only_runs_forward_and_polls_must_be_open(
    provisioned: Provisioned, tmp_path: Path, stations: list[FastStation]
) -> None:
    number = provisioned.definition.stations[0].number
    truth = truth_for(provisioned, number, turnout=1.0)
    s = fast(provisioned, number, truth, tmp_path, stations)
    s.setup(morning(provisioned))
    with pytest.raises(SimError, match="open the polls"):
        s.voters_until(morning(provisioned).replace(hour=21))
    noon = morning(provisioned).replace(hour=12)
    s.open_polls(noon)
    with pytest.raises(SimError, match="backwards"):
        s.tick(noon - dt.timedelta(minutes=1))


def test_a_truth_of_another_station_is_refused(
    provisioned: Provisioned, tmp_path: Path, stations: list[FastStation]
) -> None:
    a, b = (x.number for x in provisioned.definition.stations[:2])
    s = fast(provisioned, a, truth_for(provisioned, b), tmp_path, stations)
    with pytest.raises(SimError, match="another"):
        s.setup(morning(provisioned))
