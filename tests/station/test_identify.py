"""The identification desk: every outcome, every refusal, with real photos and a real database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devices.combo_reader import Card
from station.appliance import Appliance
from station.identify import (
    AdmissionReason,
    DeskError,
    DeskState,
    Lookup,
    chair_code_matches,
    hash_chair_code,
)
from station.reports import identification_counts
from tests.support.clock import FakeClock, election_day
from tests.support.provisioned import Provisioned
from tests.support.station import CHAIR_CODE, StationKit


@pytest.fixture
def clock(provisioned: Provisioned) -> FakeClock:
    return election_day(provisioned.definition.date, 7, 45)


@pytest.fixture
def app(kit: StationKit, clock: FakeClock, tmp_path: Path) -> Iterator[Appliance]:
    a = kit.start(tmp_path / "data", clock)
    clock.set(8, 0)
    a.open_polls("chair")
    clock.set(9, 15)
    yield a
    a.close()


def test_registered_voter_whose_face_matches_is_marked_before_the_ballot(
    app: Appliance, kit: StationKit
) -> None:
    voter = kit.enrolled()[0]
    result = app.desk.card_read(voter.card)
    assert result.outcome is Lookup.REGISTERED_HERE
    assert result.voter is not None and result.voter.last_name == voter.record["last_name"]
    attempt = app.desk.face_attempt(kit.frame(voter.person))  # type: ignore[arg-type]
    assert attempt.status == "match" and attempt.next is DeskState.MARKED
    row = app.store.one("SELECT status, method FROM identifications WHERE pin = ?", (voter.pin,))
    assert row is not None and (row["status"], row["method"]) == ("marked", "face")
    app.desk.ballot_issued()
    assert app.desk.state is DeskState.IDLE
    counts = identification_counts(app.store)
    assert (counts["voted"], counts["identified_by_face"]) == (1, 1)


def test_second_attempt_with_the_same_card_is_refused_with_the_first_time(
    app: Appliance, kit: StationKit, clock: FakeClock
) -> None:
    voter = kit.enrolled()[0]
    app.desk.card_read(voter.card)
    app.desk.face_attempt(kit.frame(voter.person))  # type: ignore[arg-type]
    app.desk.ballot_issued()
    clock.set(17, 40)
    again = app.desk.card_read(voter.card)
    assert again.outcome is Lookup.ALREADY_VOTED
    assert again.voted_at == "09:15"
    assert "09:15" in again.message["ky"] and "09:15" in again.message["ru"]
    assert identification_counts(app.store)["refused"]["already_voted"] == 1
    with pytest.raises(DeskError):
        app.desk.face_attempt(kit.frame(voter.person))  # type: ignore[arg-type]


def test_voter_of_another_station_is_told_its_number_and_address(
    app: Appliance, kit: StationKit, provisioned: Provisioned
) -> None:
    other = StationKit(provisioned, provisioned.definition.stations[1].number)
    result = app.desk.card_read(other.voters[0].card)
    assert result.outcome is Lookup.REGISTERED_ELSEWHERE
    assert result.other_station == other.number
    station = provisioned.definition.station_by_number(other.number)
    assert result.other_address == {"ky": station.address.ky, "ru": station.address.ru}
    assert str(other.number) in result.message["ru"]
    assert identification_counts(app.store)["refused"]["registered_elsewhere"] == 1


def test_person_on_no_roll_is_refused(app: Appliance) -> None:
    result = app.desk.card_read(
        Card("21212199000001", "ID0000001", "Жок", "Адам", "", dt.date(1990, 12, 21))
    )
    assert result.outcome is Lookup.NOT_ON_ROLL
    assert identification_counts(app.store)["refused"]["not_on_roll"] == 1
    assert app.desk.state is DeskState.IDLE


def test_impostor_gets_three_attempts_then_only_the_commission_can_admit(
    app: Appliance, kit: StationKit
) -> None:
    voter = kit.enrolled()[0]
    app.desk.card_read(voter.card)
    frame = kit.impostor_frame(voter)
    for n in (1, 2, 3):
        attempt = app.desk.face_attempt(frame)
        assert attempt.status == "no_match" and attempt.attempt == n
    assert attempt.next is DeskState.ADMISSION
    with pytest.raises(DeskError):
        app.desk.face_attempt(frame)
    assert app.store.one("SELECT 1 FROM identifications WHERE pin = ?", (voter.pin,)) is None


def test_admission_by_document_needs_the_chair_code_and_is_counted_apart(
    app: Appliance, kit: StationKit
) -> None:
    voter = kit.enrolled()[1]
    app.desk.card_read(voter.card)
    frame = kit.impostor_frame(voter)
    for _ in range(3):
        app.desk.face_attempt(frame)
    with pytest.raises(DeskError) as wrong:
        app.desk.admit_by_document("0000", AdmissionReason.ELDERLY_OR_WORN, "chair")
    assert wrong.value.key == "wrong_chair_code"
    assert app.desk.state is DeskState.ADMISSION
    app.desk.admit_by_document(CHAIR_CODE, AdmissionReason.ELDERLY_OR_WORN, "chair")
    app.desk.ballot_issued()
    counts = identification_counts(app.store)
    assert counts["admitted_by_document"] == 1
    assert counts["admitted_by_document_by_reason"]["elderly_or_worn"] == 1
    assert counts["identified_by_face"] == 0
    row = app.store.one("SELECT authorised_by, reason FROM identifications WHERE pin = ?",
                        (voter.pin,))  # fmt: skip
    assert row is not None and (row["authorised_by"], row["reason"]) == ("chair", "elderly_or_worn")


def test_voter_without_biometrics_goes_straight_to_admission(
    app: Appliance, kit: StationKit
) -> None:
    voter = kit.without_biometrics()[0]
    result = app.desk.card_read(voter.card)
    assert result.outcome is Lookup.NO_BIOMETRICS
    assert app.desk.state is DeskState.ADMISSION
    app.desk.admit_by_document(CHAIR_CODE, AdmissionReason.NO_BIOMETRICS_ENROLLED, "chair")
    app.desk.ballot_issued()
    counts = identification_counts(app.store)
    assert counts["admitted_by_document_by_reason"]["no_biometrics_enrolled"] == 1


def test_commission_declining_counts_a_refusal_and_marks_nobody(
    app: Appliance, kit: StationKit
) -> None:
    voter = kit.without_biometrics()[0]
    app.desk.card_read(voter.card)
    app.desk.decline("chair")
    counts = identification_counts(app.store)
    assert counts["refused"]["not_admitted"] == 1 and counts["voted"] == 0


def test_no_face_and_several_faces_ask_again_without_using_an_attempt(
    app: Appliance, kit: StationKit, faces: Path
) -> None:
    from biometrics.face import load_rgb

    voter = kit.enrolled()[0]
    app.desk.card_read(voter.card)
    blank = np.full((480, 640, 3), 200, dtype=np.uint8)
    attempt = app.desk.face_attempt(blank)
    assert (attempt.status, attempt.attempt) == ("no_face", 0)
    assert "камер" in attempt.message["ru"]
    crowd = load_rgb((faces / "_multiple_faces" / "two_people.jpg").read_bytes())
    assert crowd is not None
    attempt = app.desk.face_attempt(crowd)
    assert (attempt.status, attempt.attempt) == ("multiple_faces", 0)
    assert app.desk.state is DeskState.FACE_CHECK


def test_camera_fault_lets_the_commission_admit_by_document(
    app: Appliance, kit: StationKit
) -> None:
    voter = kit.enrolled()[0]
    app.desk.card_read(voter.card)
    app.desk.camera_fault()
    app.desk.admit_by_document(CHAIR_CODE, AdmissionReason.CAMERA_FAULT, "chair")
    app.desk.ballot_issued()
    assert identification_counts(app.store)["admitted_by_document_by_reason"]["camera_fault"] == 1


def test_next_card_cannot_be_read_before_the_marked_voter_is_confirmed(
    app: Appliance, kit: StationKit
) -> None:
    a, b = kit.enrolled()[:2]
    app.desk.card_read(a.card)
    app.desk.face_attempt(kit.frame(a.person))  # type: ignore[arg-type]
    with pytest.raises(DeskError) as e:
        app.desk.card_read(b.card)
    assert e.value.key == "finish_current_voter"


def test_identification_is_refused_before_polls_open_and_after_they_close(
    kit: StationKit, clock: FakeClock, tmp_path: Path
) -> None:
    a = kit.start(tmp_path / "d", clock)
    voter = kit.enrolled()[0]
    with pytest.raises(DeskError) as before:
        a.desk.card_read(voter.card)
    assert before.value.key == "polls_not_open"
    clock.set(8)
    a.open_polls("chair")
    clock.set(20, 0)
    a.close_polls("chair", CHAIR_CODE)
    with pytest.raises(DeskError):
        a.desk.card_read(voter.card)
    a.close()


def test_mobile_box_voters_are_marked_on_return_and_counted_apart(
    app: Appliance, kit: StationKit
) -> None:
    listed = app.desk.mobile_list()
    home = [v for v in kit.voters if v.record["home_vote"]]
    assert {pin for pin, _, _ in listed} == {v.pin for v in home}
    if not home:
        pytest.fail("the sample station has no mobile-box voter; pick a larger sample")
    pin = listed[0][0]
    with pytest.raises(DeskError):
        app.desk.mark_mobile(pin, "9999", "chair")
    app.desk.mark_mobile(pin, CHAIR_CODE, "chair")
    assert [done for p, _, done in app.desk.mobile_list() if p == pin] == [True]
    counts = identification_counts(app.store)
    assert (counts["mobile_box"], counts["voted"]) == (1, 1)
    with pytest.raises(DeskError):
        app.desk.mark_mobile(pin, CHAIR_CODE, "chair")
    voter = next(v for v in kit.voters if v.pin == pin)
    assert app.desk.card_read(voter.card).outcome is Lookup.ALREADY_VOTED


def test_a_voter_not_on_the_mobile_list_cannot_be_marked_as_mobile(
    app: Appliance, kit: StationKit
) -> None:
    stay = next(v for v in kit.voters if not v.record["home_vote"])
    with pytest.raises(DeskError):
        app.desk.mark_mobile(stay.pin, CHAIR_CODE, "chair")


def test_a_chair_code_that_matched_is_recognised_without_scrypt_and_a_wrong_one_never(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hashlib

    from station import identify

    stored, other = hash_chair_code("2468"), hash_chair_code("1357")
    calls: list[bytes] = []
    real = hashlib.scrypt

    def counted(password: bytes, **kw: Any) -> bytes:
        calls.append(password)
        return real(password, **kw)

    monkeypatch.setattr(identify.hashlib, "scrypt", counted)
    assert chair_code_matches(stored, "2468")
    assert len(calls) == 1
    for _ in range(5):  # the chair confirming mobile-box voters one after another
        assert chair_code_matches(stored, "2468")
    assert len(calls) == 1
    for wrong in ("2469", "1357", "2468 ", ""):
        assert not chair_code_matches(stored, wrong)
    assert len(calls) == 5  # every wrong attempt paid the whole scrypt
    assert not chair_code_matches(other, "2468")  # a code matched for one hash, not another
    assert chair_code_matches(other, "1357")
    assert not chair_code_matches("not-a-hash", "2468")
    assert not chair_code_matches("zz$00", "2468")
