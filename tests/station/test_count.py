"""The box's count: settings decide returns, marginal marks never become votes, nothing twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.appliance import Appliance
from station.count import Action, Condition, ContestRead, CountSettings, SheetRead
from station.state import TransitionError
from tests.support.clock import FakeClock, election_day
from tests.support.provisioned import Provisioned
from tests.support.station import CHAIR_CODE, StationKit


@pytest.fixture
def clock(provisioned: Provisioned) -> FakeClock:
    return election_day(provisioned.definition.date, 7, 30)


@pytest.fixture
def app(kit: StationKit, clock: FakeClock, tmp_path: Path) -> Iterator[Appliance]:
    a = kit.start(tmp_path / "data", clock)
    clock.set(8)
    a.open_polls("chair")
    yield a
    a.close()


def party_list(app: Appliance) -> tuple[str, list[str], list[str]]:
    """The station's party-list contest id, its parties, and the first party's candidates."""
    contest = next(c for c in app.box.contests if c.kind.value == "party_list")
    parties = [o.id for o in contest.options if o.kind.value == "party"]
    candidates = [x.id for x in contest.option(parties[0]).candidates]
    return contest.id, parties, candidates


def sheet(contest_id: str, status: str, option: str | None = None,
          candidate: str | None = None) -> SheetRead:  # fmt: skip
    return SheetRead("ok", f"style-{contest_id}", (ContestRead(contest_id, status, option,
                                                               candidate),))  # fmt: skip


def cast(app: Appliance, s: SheetRead, *, cast_as_is: bool = False) -> bool:
    """Decide, hold, and confirm the drop, as the box driver does for an accepted sheet."""
    d = app.box.decide(s, cast_as_is=cast_as_is)
    if not d.accept:
        app.box.returned(d.reasons)
        return False
    assert d.record is not None
    assert app.box.counted(app.box.hold(d.record))
    return True


def test_valid_sheet_counts_its_vote_and_preference(app: Appliance) -> None:
    cid, parties, candidates = party_list(app)
    assert cast(app, sheet(cid, "valid", parties[0], candidates[1]))
    t = app.box.tallies()[cid]
    assert (t.ballots, t.votes[parties[0]], t.preferences[candidates[1]], t.invalid) == (1, 1, 1, 0)
    assert app.box.consistency_problems() == []


def test_a_confirmed_drop_counts_once_however_often_it_is_reported(app: Appliance) -> None:
    cid, parties, _ = party_list(app)
    d = app.box.decide(sheet(cid, "valid", parties[2]))
    assert d.record is not None
    pending = app.box.hold(d.record)
    assert app.box.counted(pending)
    assert not app.box.counted(pending)
    assert app.box.tallies()[cid].votes[parties[2]] == 1 and app.box.sheets() == 1


def test_a_sheet_that_did_not_fall_in_is_not_counted(app: Appliance) -> None:
    cid, parties, _ = party_list(app)
    d = app.box.decide(sheet(cid, "valid", parties[0]))
    assert d.record is not None
    pending = app.box.hold(d.record)
    app.box.not_dropped(pending, "jam")
    assert app.box.sheets() == 0 and app.box.pending() == []
    assert not app.box.counted(pending)
    assert app.box.returns() == {"jam": 1}


@pytest.mark.parametrize("status", ["overvote", "blank", "marginal", "unreadable"])
def test_flawed_contest_is_returned_by_default_and_cast_as_is_counts_it_invalid(
    app: Appliance, status: str
) -> None:
    cid, parties, _ = party_list(app)
    assert not cast(app, sheet(cid, status, parties[0] if status == "marginal" else None))
    assert app.box.sheets() == 0 and app.box.returns() == {status: 1}
    assert cast(app, sheet(cid, status), cast_as_is=True)
    t = app.box.tallies()[cid]
    assert (t.ballots, t.invalid, t.invalid_by_reason) == (1, 1, {status: 1})
    assert sum(t.votes.values()) == 0


def test_marginal_mark_accepted_by_setting_is_invalid_never_a_vote(
    kit: StationKit, clock: FakeClock, tmp_path: Path
) -> None:
    from station.appliance import Settings
    from station.facecheck import FaceCheck

    policy = dict(CountSettings().policy, **{Condition.MARGINAL: Action.ACCEPT_AS_INVALID})
    app = Appliance.start(
        tmp_path / "d", kit.bundle, root_cert=kit.p.root.cert, passphrase=kit.passphrase,
        matcher=FaceCheck().check,
        clock=clock, chair_code=CHAIR_CODE, index_dir=kit.p.index_dir,
        settings=Settings(count=CountSettings(policy=policy)),
    )  # fmt: skip
    cid, parties, _ = party_list(app)
    assert cast(app, sheet(cid, "marginal", parties[0]))
    t = app.box.tallies()[cid]
    assert t.votes[parties[0]] == 0 and t.invalid_by_reason == {"marginal": 1}
    app.close()


@pytest.mark.parametrize(
    "status", ["foreign_election", "foreign_style", "test_sheet_in_live", "unreadable"]
)
def test_foreign_and_test_sheets_are_always_returned(app: Appliance, status: str) -> None:
    cid, parties, _ = party_list(app)
    refused = SheetRead(status, None)
    assert not app.box.decide(refused, cast_as_is=True).accept
    other = SheetRead("ok", "style-x", (ContestRead("not-our-contest", "valid", parties[0]),))
    assert app.box.decide(other, cast_as_is=True).reasons == ("foreign_style",)


def test_ballot_records_keep_no_time_and_no_order(app: Appliance) -> None:
    cid, parties, _ = party_list(app)
    order = [parties[i % len(parties)] for i in range(60)]
    for p in order:
        assert cast(app, sheet(cid, "valid", p))
    columns = [r["name"] for r in app.store.query("PRAGMA table_info(ballots)")]
    assert columns == ["id", "style_id", "batch", "contests"]
    assert app.store.query("SELECT name FROM pragma_table_list WHERE name = 'ballots'")
    stored = [json.loads(r["contests"])[cid]["option"] for r in
              app.store.query("SELECT contests FROM ballots")]  # fmt: skip
    assert sorted(stored) == sorted(order)
    assert stored != order  # stored in random-key order, not insertion order
    sql = app.store.one("SELECT sql FROM sqlite_master WHERE name = 'ballots'")
    assert sql is not None and "WITHOUT ROWID" in sql["sql"]


def test_tampered_counter_is_found_against_the_records(app: Appliance) -> None:
    cid, parties, _ = party_list(app)
    cast(app, sheet(cid, "valid", parties[0]))
    with app.store.transaction() as tx:
        tx.execute("UPDATE ballot_counters SET n = n + 1 WHERE key = ?", (f"vote:{parties[0]}",))
    assert any("differ from its ballot records" in p for p in app.box.consistency_problems())


def test_deferred_batch_is_counted_and_reported_apart(app: Appliance, clock: FakeClock) -> None:
    cid, parties, _ = party_list(app)
    cast(app, sheet(cid, "valid", parties[0]))
    app.box.batch = "deferred"
    cast(app, sheet(cid, "valid", parties[1]))
    app.box.batch = "box"
    clock.set(20)
    app.close_polls("chair", CHAIR_CODE)
    final = next(m for m in reversed(app.signer.messages()) if m.kind == "asu_report")
    assert final.body["phase"] == "final" and final.body["voters_identified"] == 0
    cid_problem = f"{cid}: 2 ballots counted but 0 voters identified"
    assert final.body["problems"] == [cid_problem]  # shown, never hidden
    assert (final.body["sheets"], final.body["deferred_sheets"]) == (2, 1)
    deferred = next(t for t in final.body["deferred_tallies"] if t["contest_id"] == cid)
    assert deferred["votes"][parties[1]] == 1 and deferred["votes"][parties[0]] == 0


def test_polls_do_not_open_on_a_box_that_has_counted_sheets(
    kit: StationKit, clock: FakeClock, tmp_path: Path
) -> None:
    app = kit.start(tmp_path / "d", clock)
    cid, parties, _ = party_list(app)
    cast(app, sheet(cid, "valid", parties[0]))
    with pytest.raises(TransitionError, match="ballot box has counted sheets"):
        app.open_polls("chair")
    app.close()
