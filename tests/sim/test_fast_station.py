"""The fast station: a whole day on the real station code ends with signed reports that say
exactly what the truth says happened."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crypto import certs
from crypto.envelope import GENESIS_PREV, Envelope, verify_signed_by_certificate
from election import bundle as B
from election.tally import ContestTally
from sim.fast_station import FastStation, PowerCut, SimError
from sim.truth import How, Mix, Popularity, Truth, make_truth, read_roll, with_box_failure
from station import reports
from station.appliance import DB_FILE
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


def assert_reports_match(
    s: FastStation, truth: Truth, final_ident: Envelope, *, returns: dict[str, int] | None = None
) -> None:
    asu = s.last(reports.ASU_REPORT)
    assert asu is not None and asu.body["phase"] == "final"
    got = {t["contest_id"]: ContestTally.from_obj(t) for t in asu.body["tallies"]}
    assert got == truth.tallies()
    assert asu.body["sheets"] == truth.sheets()
    assert asu.body["returned"] == (truth.returns() if returns is None else returns)
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


# --- a ballot box failure: the spare box and the deferred batch ------------------------------


def hour(p: Provisioned, h: int) -> dt.datetime:
    return morning(p).replace(hour=h, minute=0)


def day_with_box_failure(
    p: Provisioned, s: FastStation, fails: dt.datetime, back: dt.datetime | None
) -> Envelope:
    """The day with the box down from `fails` to `back` (None: a spare ASU only at the close)."""
    s.setup(morning(p))
    s.open_polls(hour(p, 8))
    s.tick(fails)
    s.box_fails(fails)
    if back is not None:
        s.tick(back)
        assert s.box_back(back) == s.truth.deferred_sheets()
    closing = hour(p, 20)
    if back is None:
        with pytest.raises(SimError, match="ballot box down"):  # the spare box is not lost
            s.close_polls(closing)
        assert s.box_back(closing) == s.truth.deferred_sheets()
    return s.close_polls(closing)


def assert_deferred_match(s: FastStation, truth: Truth) -> None:
    asu = s.last(reports.ASU_REPORT)
    assert asu is not None and asu.body["phase"] == "final"
    assert asu.body["deferred_sheets"] == truth.deferred_sheets()
    got = {t["contest_id"]: ContestTally.from_obj(t) for t in asu.body["deferred_tallies"]}
    assert got == truth.deferred_tallies()


@pytest.mark.parametrize("at_close", [False, True], ids=["spare-during-the-day", "at-the-close"])
def test_a_box_failure_ends_with_the_spare_box_reported_apart(
    provisioned: Provisioned, tmp_path: Path, stations: list[FastStation], at_close: bool
) -> None:
    here, other = (x.number for x in provisioned.definition.stations[:2])
    plain = truth_for(
        provisioned, here, seed=3, mix=EVERY_PATH, turnout=1.0,
        elsewhere=read_roll(provisioned.bundle(other)),
    )  # fmt: skip
    mobile = min(v.at for v in plain.visits if v.how is How.MOBILE)
    fails = hour(provisioned, 10)
    back = None if at_close else mobile + dt.timedelta(minutes=20)  # the mobile box waits too
    truth = with_box_failure(plain, fails, back)
    spare = [v for v in truth.visits if v.spare_box]
    # the spare box holds desk voters' sheets only, flawed ones among them; nothing else moved
    assert len(spare) >= 5 and all(v.how is not How.MOBILE for v in spare)
    assert {sh.mark.status for v in spare for sh in v.sheets} >= {"valid", "blank", "overvote"}
    assert all(sh.spoiled is None for v in spare for sh in v.sheets)  # nobody gave one back
    assert any(sh.spoiled for v in plain.visits if fails <= v.at for sh in v.sheets)
    assert truth.tallies() == plain.tallies() and truth.sheets() == plain.sheets()
    assert truth.deferred_sheets() == sum(len(v.sheets) for v in spare) > 0
    assert truth.identification_counts() == plain.identification_counts()
    assert all(t.ballots == 0 for t in plain.deferred_tallies().values())

    s = fast(provisioned, here, truth, tmp_path, stations)
    final = day_with_box_failure(provisioned, s, fails, back)
    assert_reports_match(s, truth, final)  # every sheet counted once, both batches
    assert_deferred_match(s, truth)  # ... and the spare box's apart
    events = [(e["name"], e["detail"]) for e in s.appliance.log.entries()]
    names = [n for n, _ in events]
    for name in ("asu_disconnected", "deferred_batch_started", "deferred_batch_ended"):
        assert names.count(name) == 1, name
    spare_asu = [d["serial"] for n, d in events if n == "asu_connected"][1:]
    assert len(spare_asu) == 1 and spare_asu[0].endswith("SPARE1")
    start, end = names.index("deferred_batch_started"), names.index("deferred_batch_ended")
    counted = [d["batch"] for n, d in events[start:end] if n == "sheet_counted"]
    assert counted == ["deferred"] * truth.deferred_sheets()
    assert names.index("asu_disconnected") < start
    # the mobile box came back while the box was down: scanned with the spare ASU, not deferred
    connected = [i for i, (n, _) in enumerate(events) if n == "asu_connected"][1]
    waited = [d["batch"] for n, d in events[connected:start] if n == "sheet_counted"]
    mobile_sheets = sum(
        len(v.sheets) for v in truth.visits if v.how is How.MOBILE and v.at >= fails
    )
    assert mobile_sheets > 0 and waited == ["box"] * mobile_sheets


def test_a_truth_that_disagrees_with_the_box_is_refused(
    provisioned: Provisioned, tmp_path: Path, stations: list[FastStation]
) -> None:
    """The station casts a desk voter's sheets into the spare box exactly when the box is down:
    a truth that knows nothing of the failure (or of another one) is a SimError."""
    number = provisioned.definition.stations[0].number
    plain = truth_for(provisioned, number, turnout=1.0)
    s = fast(provisioned, number, plain, tmp_path, stations)
    s.setup(morning(provisioned))
    s.open_polls(hour(provisioned, 8))
    s.box_fails(hour(provisioned, 9))
    with pytest.raises(SimError, match="the truth casts into the ASU, the ASU is down"):
        s.tick(hour(provisioned, 12))
    with pytest.raises(ValueError, match="after it failed"):
        with_box_failure(plain, hour(provisioned, 12), hour(provisioned, 11))


# --- a power cut in the middle of accepting a sheet ------------------------------------------


@pytest.mark.parametrize("dropped", [True, False], ids=["sheet-had-fallen", "sheet-in-scanner"])
def test_a_power_cut_mid_sheet_resumes_from_the_database_with_every_sheet_once(
    provisioned: Provisioned, tmp_path: Path, stations: list[FastStation], dropped: bool
) -> None:
    here, other = (x.number for x in provisioned.definition.stations[:2])
    truth = truth_for(
        provisioned, here, seed=3, mix=EVERY_PATH, turnout=1.0,
        elsewhere=read_roll(provisioned.bundle(other)),
    )  # fmt: skip
    # the sheet in the box's hands: a flawed one the voter chose to cast as it is (given back
    # at boot, the choice is made again), or one after a spoiled sheet; another sheet to come
    voting = [(i, v) for i, v in enumerate(truth.visits) if v.votes and len(v.sheets) == 2]
    if dropped:
        idx, visit = next((i, v) for i, v in voting if v.sheets[0].spoiled is not None)
    else:
        idx, visit = next((i, v) for i, v in voting if v.sheets[0].mark.status != "valid")
    assert visit.how is not How.MOBILE and idx + 1 < len(truth.visits)
    s = fast(provisioned, here, truth, tmp_path, stations)
    s.setup(morning(provisioned))
    s.open_polls(hour(provisioned, 8))
    s.arm_power_cut(visit.at, dropped=dropped)
    t = hour(provisioned, 8)
    with pytest.raises(PowerCut) as cut:
        while t.hour < 20:
            t += dt.timedelta(minutes=10)
            s.tick(t)
    assert cut.value.at == visit.at and cut.value.dropped is dropped
    assert not s.powered and s.visits_done == idx  # the voter is still at the box
    # the station's disk: the sheet held (the pending record), not counted
    before = sum(len(v.sheets) for v in truth.visits[:idx] if v.votes)
    with sqlite3.connect(s.data_dir / DB_FILE) as db:
        assert db.execute("SELECT COUNT(*) FROM ballot_pending").fetchone() == (1,)
        assert db.execute("SELECT COUNT(*) FROM ballots").fetchone() == (before,)
    with pytest.raises(SimError, match="no power"):
        s.tick(t + dt.timedelta(minutes=10))
    # back after the next voter came: that voter waited and is served at once
    back = max(visit.at + dt.timedelta(minutes=3), truth.visits[idx + 1].at) + dt.timedelta(
        minutes=2
    )
    waited = [v for v in truth.visits[idx + 1 :] if v.at < back]
    assert waited
    assert s.power_on(back) == 1 + len(waited)
    assert s.powered and s.power_cuts == [(visit.at, back, dropped)]
    t = back.replace(minute=back.minute // 10 * 10, second=0) + dt.timedelta(minutes=10)
    while t.hour < 20:
        s.tick(t)
        t += dt.timedelta(minutes=10)
    final = s.close_polls(hour(provisioned, 20))

    # every sheet once: nothing lost, nothing doubled; the sheet given back is one return
    served = dataclasses.replace(
        truth,
        visits=tuple(
            dataclasses.replace(v, at=back) if i > idx and v.at < back else v
            for i, v in enumerate(truth.visits)
        ),
    )
    returns = dict(truth.returns())
    if not dropped:
        returns["drop not confirmed"] = 1
    assert_reports_match(s, served, final, returns=dict(sorted(returns.items())))
    events = [(e["name"], e["detail"]) for e in s.appliance.log.entries()]
    names = [n for n, _ in events]
    assert names.count("app_started") == 2  # the boot after the cut is the real one
    assert [d["fell"] for n, d in events if n == "asu_pending_resolved"] == [dropped]
    assert names.count("sheet_counted") == truth.sheets()
    assert names.count("cast_as_is_chosen") == sum(
        sh.mark.status != "valid" for v in truth.visits if v.votes for sh in v.sheets
    ) + (0 if dropped else 1)  # chosen again for the sheet given back at boot


def test_a_set_up_image_starts_the_station_as_set_up_and_the_day_ends_the_same(
    provisioned: Provisioned, tmp_path: Path, stations: list[FastStation]
) -> None:
    number = provisioned.definition.stations[0].number
    truth = truth_for(provisioned, number, turnout=0.7)
    image = tmp_path / "images" / str(number)
    first = fast(provisioned, number, truth, tmp_path / "a", stations)
    first.setup(morning(provisioned), image=image)
    assert (image / DB_FILE).exists()
    kept = image.stat().st_mtime_ns
    second = fast(provisioned, number, truth, tmp_path / "b", stations)
    second.setup(morning(provisioned), image=image)
    assert image.stat().st_mtime_ns == kept  # started from the image, not set up again
    for s in (first, second):
        final = s.run_day()
        assert_reports_match(s, truth, final)
    # the same day on the same truth: the same signed numbers
    a, b = (s.last(reports.ASU_REPORT) for s in (first, second))
    assert a is not None and b is not None and a.body == b.body
    # the chair's code set at set-up still closes the polls: it came with the image


def test_a_set_up_image_of_a_station_that_already_opened_is_refused(
    provisioned: Provisioned, tmp_path: Path, stations: list[FastStation]
) -> None:
    number = provisioned.definition.stations[0].number
    truth = truth_for(provisioned, number, turnout=0.5)
    used = fast(provisioned, number, truth, tmp_path / "a", stations)
    used.run_day()
    used.close()
    image = tmp_path / "a" / str(number)  # a station's storage after a whole day
    other = fast(provisioned, number, truth, tmp_path / "b", stations)
    with pytest.raises(SimError, match="not of a station just set up"):
        other.setup(morning(provisioned), image=image)
