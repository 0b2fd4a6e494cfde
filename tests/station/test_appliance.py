"""The appliance's life cycle, its signed reports and its event log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from crypto import certs
from crypto.envelope import GENESIS_PREV, verify_signed_by_certificate
from election import bundle as B
from station.appliance import Appliance
from station.reports import participation_list
from station.state import Mode, State, TransitionError
from tests.support.clock import FakeClock, election_day
from tests.support.provisioned import Provisioned
from tests.support.station import CHAIR_CODE, StationKit


@pytest.fixture
def clock(provisioned: Provisioned) -> FakeClock:
    return election_day(provisioned.definition.date, 7, 30)


@pytest.fixture
def app(kit: StationKit, clock: FakeClock, tmp_path: Path) -> Iterator[Appliance]:
    a = kit.start(tmp_path / "data", clock)
    yield a
    a.close()


def vote(app: Appliance, kit: StationKit, i: int) -> None:
    voter = kit.enrolled()[i]
    app.desk.card_read(voter.card)
    assert app.desk.face_attempt(kit.frame(voter.person)).status == "match"  # type: ignore[arg-type]
    app.desk.ballot_issued()


def check_signed(app: Appliance, kit: StationKit, env_bytes: bytes) -> dict:
    from crypto.envelope import Envelope

    env = Envelope.from_bytes(env_bytes)
    cert = certs.cert_from_pem((kit.bundle / B.SIGNING_CERT_FILE).read_bytes())
    ident = verify_signed_by_certificate(env, cert, kit.p.root.cert, app.clock())
    assert ident.station_id == app.station.id
    return env.body


def test_opening_signs_a_first_report_with_every_counter_zero(
    app: Appliance, kit: StationKit, clock: FakeClock
) -> None:
    clock.set(8)
    env = app.open_polls("chair")
    body = check_signed(app, kit, env.to_bytes())
    assert body["phase"] == "first" and body["mode"] == "live"
    assert body["voted"] == 0 and not any(body["refused"].values())
    assert body["registered"] == len(kit.voters)
    zero, first = app.signer.messages()
    assert (zero.kind, zero.seq, zero.prev) == ("asu_report", 0, GENESIS_PREV)
    assert zero.body["phase"] == "zero" and zero.body["sheets"] == 0
    assert all(t["ballots"] == 0 and not any(t["votes"].values()) for t in zero.body["tallies"])
    assert (first.seq, first.prev) == (1, zero.hash) and env == first
    assert app.state is State.OPEN


def test_opening_twice_is_refused_and_logged(app: Appliance) -> None:
    app.open_polls("chair")
    with pytest.raises(TransitionError, match="while the station is open"):
        app.open_polls("chair")
    last = app.log.entries()[-1]
    assert last["name"] == "state_change_refused" and last["outcome"] == "failure"


def test_live_polls_do_not_close_before_20_00(app: Appliance, clock: FakeClock) -> None:
    app.open_polls("chair")
    clock.set(19, 59)
    with pytest.raises(TransitionError, match="20:00"):
        app.close_polls("chair", CHAIR_CODE)
    clock.set(20, 0)
    with pytest.raises(TransitionError, match="code"):
        app.close_polls("chair", "0000")
    app.close_polls("chair", CHAIR_CODE)
    assert app.state is State.CLOSED


def test_final_report_counts_the_day_and_chains_to_the_first(
    app: Appliance, kit: StationKit, clock: FakeClock
) -> None:
    clock.set(8)
    first = app.open_polls("chair")
    clock.set(10, 30)
    vote(app, kit, 0)
    clock.set(14, 5)
    vote(app, kit, 1)
    snap = app.turnout_snapshot()
    clock.set(20, 0)
    final = app.close_polls("chair", CHAIR_CODE)
    body = check_signed(app, kit, final.to_bytes())
    assert body["phase"] == "final"
    assert body["voted"] == body["identified_by_face"] == 2
    assert body["by_hour"] == {"10": 1, "14": 1}
    assert snap.prev == first.hash
    messages = app.signer.messages()
    assert [m.seq for m in messages] == list(range(len(messages)))
    assert all(b.prev == a.hash for a, b in zip(messages, messages[1:], strict=False))
    assert [m.kind for m in messages][-3:] == ["asu_report", "identification_report", "log_digest"]
    assert messages[-2] == final and messages[-3].body["phase"] == "final"


def test_turnout_snapshot_is_counts_only_and_due_every_interval(
    app: Appliance, kit: StationKit, clock: FakeClock
) -> None:
    assert not app.turnout_due()
    clock.set(8)
    app.open_polls("chair")
    assert app.turnout_due()
    vote(app, kit, 0)
    env = app.turnout_snapshot()
    body = check_signed(app, kit, env.to_bytes())
    assert set(body) == {"mode", "as_of", "registered", "voted"}
    assert body["voted"] == 1
    clock.advance(minutes=59)
    assert not app.turnout_due()
    clock.advance(minutes=1)
    assert app.turnout_due()


def test_test_mode_is_on_every_report_and_cleared_before_live(
    kit: StationKit, clock: FakeClock, tmp_path: Path
) -> None:
    app = kit.start(tmp_path / "data", clock)
    app.enter_test_mode("operator")
    first = app.open_polls("operator")
    assert first.body["mode"] == "test"
    vote(app, kit, 0)
    clock.set(11)  # before 20:00: allowed in test mode only
    final = app.close_polls("chair", CHAIR_CODE)
    assert final.body["mode"] == "test" and final.body["voted"] == 1
    app.leave_test_mode("chair", CHAIR_CODE)
    assert (app.state, app.mode) == (State.SETUP, Mode.LIVE)
    clock.set(12)
    live = app.open_polls("chair")
    assert live.body["mode"] == "live" and live.body["voted"] == 0
    signed = app.signer.messages()
    assert signed[-1] == live and signed.index(final) < len(signed) - 1
    assert all(b.prev == a.hash for a, b in zip(signed, signed[1:], strict=False))  # one chain
    app.close()


def test_test_mode_cannot_start_once_polls_are_open(app: Appliance) -> None:
    app.open_polls("chair")
    with pytest.raises(TransitionError):
        app.enter_test_mode("operator")


def test_participation_list_names_voters_without_pins(app: Appliance, kit: StationKit) -> None:
    app.open_polls("chair")
    vote(app, kit, 0)
    rows = participation_list(app.store)
    voter = kit.enrolled()[0]
    assert rows == [
        {
            "last_name": voter.record["last_name"],
            "first_name": voter.record["first_name"],
            "patronymic": voter.record["patronymic"],
            "birth_year": int(voter.record["birth_date"][:4]),
            "mobile_box": False,
        }
    ]
    assert voter.pin not in json.dumps(rows)


def test_event_log_is_chained_and_names_voters_only_by_masked_pin(
    app: Appliance, kit: StationKit
) -> None:
    app.open_polls("chair")
    vote(app, kit, 0)
    assert app.log.first_break() is None
    dump = json.dumps(app.log.entries(), ensure_ascii=False)
    for v in kit.voters:
        assert v.pin not in dump
    names = [e["name"] for e in app.log.entries()]
    assert names[:3] == ["device_setup", "app_started", "polls_opened"]
    assert {"card_read", "voter_registered_here", "face_match", "voter_marked",
            "ballot_issued"} <= set(names)  # fmt: skip


def test_edited_or_deleted_log_entry_breaks_the_chain(app: Appliance) -> None:
    app.open_polls("chair")
    with app.store.transaction() as tx:
        tx.execute("UPDATE events SET actor = 'someone else' WHERE seq = 3")
    assert app.log.first_break() == 3
    with app.store.transaction() as tx:
        tx.execute("DELETE FROM events WHERE seq = 3")
    assert app.log.first_break() == 4


def test_log_exports_as_nist_1500_101(app: Appliance) -> None:
    app.open_polls("chair")
    doc = app.log.export_nist_1500_101(device_id=app.bundle.device_id, station_id=app.station.id)
    assert doc["@type"] == "EventLogging.ElectionEventLog"
    device = doc["Device"][0]
    assert device["Id"] == app.bundle.device_id and device["HashType"] == "sha-256"
    events = device["Event"]
    assert [e["Sequence"] for e in events] == [str(i) for i in range(1, len(events) + 1)]
    assert all(e["@type"] == "EventLogging.Event" and e["Disposition"] for e in events)
    assert events[-1]["Type"] == "report_signed"


def test_log_refuses_details_that_could_identify_a_voter(app: Appliance) -> None:
    with pytest.raises(ValueError, match="pin"):
        app.log.record("card_read", pin="21501199012345")
