"""The identification desk: one voter at a time, from card read to "issue the ballot".

    idle --card: here, enrolled--> face_check --match--> marked --ballot issued--> idle
    idle --card: no biometrics--> admission  --chair admits by document--> marked
    face_check --3 non-matches (or camera fault)--> admission --chair declines--> idle
    idle --card: elsewhere / not on roll / already voted--> idle (refusal counted)

The voter is marked as voted in a committed transaction *before* the operator
is told to issue the ballot; the primary key of `identifications` makes a
second mark impossible.  A voter marked but not confirmed as issued when the
appliance died is shown to the commission after restart (`pending`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from devices.combo_reader import Card
from election.definition import ElectionDefinition
from election.pin import mask_pin
from station.eventlog import EventLog
from station.store import Store
from station.texts import LANGS, Lang, both, say

MAX_FACE_ATTEMPTS = 3
# The two lookups of a card read (bench/bench_identify.py times exactly these).
VOTER_SQL = "SELECT * FROM voters WHERE pin = ?"
VOTED_SQL = "SELECT status, marked_at FROM identifications WHERE pin = ? AND status != 'cancelled'"


class DeskState(StrEnum):
    IDLE = "idle"
    FACE_CHECK = "face_check"
    ADMISSION = "admission"
    MARKED = "marked"


class Lookup(StrEnum):
    REGISTERED_HERE = "registered_here"
    NO_BIOMETRICS = "no_biometrics"
    REGISTERED_ELSEWHERE = "registered_elsewhere"
    NOT_ON_ROLL = "not_on_roll"
    ALREADY_VOTED = "already_voted"


class AdmissionReason(StrEnum):
    ELDERLY_OR_WORN = "elderly_or_worn"
    DISABILITY = "disability"
    CAMERA_FAULT = "camera_fault"
    NO_BIOMETRICS_ENROLLED = "no_biometrics_enrolled"
    INJURY_OR_COVERING = "injury_or_covering"
    OTHER = "other"


class RefusalReason(StrEnum):
    NOT_ON_ROLL = "not_on_roll"
    REGISTERED_ELSEWHERE = "registered_elsewhere"
    ALREADY_VOTED = "already_voted"
    NOT_ADMITTED = "not_admitted"


class DeskError(RuntimeError):
    """The operator's action is refused; `key` names the text to show (station.texts)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class VoterView:
    """What the operator may see of a voter: name, birth year, masked PIN."""

    masked_pin: str
    last_name: str
    first_name: str
    patronymic: str
    birth_year: int
    biometrics: bool
    home_vote: bool


@dataclass(frozen=True)
class CardResult:
    outcome: Lookup
    message: dict[Lang, str]
    voter: VoterView | None = None
    other_station: int | None = None
    other_address: dict[Lang, str] | None = None
    voted_at: str | None = None  # local HH:MM
    document_matches: bool = True


class FaceOutcome(Protocol):
    """What a 1:1 face check gives (station.facecheck.FaceResult is one)."""

    @property
    def status(self) -> str: ...  # match | no_match | no_face | multiple_faces | unreadable

    @property
    def distance(self) -> float | None: ...


class FaceMatcher(Protocol):
    def __call__(self, frame: np.ndarray, template: np.ndarray, /) -> FaceOutcome: ...


@dataclass(frozen=True)
class FaceAttempt:
    status: str
    distance: float | None
    attempt: int  # comparisons made so far for this voter
    next: DeskState
    message: dict[Lang, str]


class IndexLookup(Protocol):
    def station_of(self, pin: str) -> str | None: ...


Clock = Callable[[], dt.datetime]


@dataclass
class _Current:
    pin: str
    voter: VoterView
    template: np.ndarray | None
    attempts: int = 0
    camera_faults: int = 0
    history: list[str] = field(default_factory=list)


class Desk:
    def __init__(
        self,
        store: Store,
        log: EventLog,
        definition: ElectionDefinition,
        index: IndexLookup,
        matcher: FaceMatcher,
        clock: Clock,
        *,
        polls_open: Callable[[], bool],
        chair_code_ok: Callable[[str], bool],
    ) -> None:
        self._store = store
        self._log = log
        self._definition = definition
        self._index = index
        self._matcher = matcher
        self._clock = clock
        self._polls_open = polls_open
        self._chair_code_ok = chair_code_ok
        self._tz = ZoneInfo(definition.timezone)
        self.state = DeskState.IDLE
        self._current: _Current | None = None

    @property
    def current(self) -> VoterView | None:
        return self._current.voter if self._current else None

    # --- card ----------------------------------------------------------------------------
    def card_read(self, card: Card) -> CardResult:
        if not self._polls_open():
            raise DeskError(
                "polls_not_open", "identification is possible only while polls are open"
            )
        if self.state is DeskState.MARKED:
            raise DeskError("finish_current_voter", "confirm the current voter's ballot first")
        if self._current is not None:
            self._log.record("voter_session_abandoned", pin_masked=mask_pin(self._current.pin))
            self._current = None
            self.state = DeskState.IDLE
        masked = mask_pin(card.pin)
        self._log.record("card_read", pin_masked=masked)
        row = self._store.one(VOTER_SQL, (card.pin,))
        if row is None:
            return self._not_here(card.pin)
        voter = _view(row)
        done = self._store.one(VOTED_SQL, (card.pin,))
        if done is not None:
            local = self._local(done["marked_at"])
            self._refuse(RefusalReason.ALREADY_VOTED, pin_masked=masked, first_marked=local)
            self._log.record("voter_already_voted", outcome="failure", pin_masked=masked)
            return CardResult(
                Lookup.ALREADY_VOTED, both("already_voted", time=local), voter, voted_at=local
            )
        document_ok = card.document_number == row["document_no"]
        self._log.record("voter_registered_here", pin_masked=masked, document_matches=document_ok)
        template = self._template(row["template"])
        self._current = _Current(card.pin, voter, template)
        if template is None:
            self.state = DeskState.ADMISSION
            return CardResult(
                Lookup.NO_BIOMETRICS, both("no_biometrics"), voter, document_matches=document_ok
            )
        self.state = DeskState.FACE_CHECK
        return CardResult(
            Lookup.REGISTERED_HERE, both("registered_here"), voter, document_matches=document_ok
        )

    def _not_here(self, pin: str) -> CardResult:
        masked = mask_pin(pin)
        station_id = self._index.station_of(pin)
        if station_id is None:
            self._refuse(RefusalReason.NOT_ON_ROLL, pin_masked=masked)
            self._log.record("voter_not_on_roll", outcome="failure", pin_masked=masked)
            return CardResult(Lookup.NOT_ON_ROLL, both("not_on_roll"))
        other = self._definition.station(station_id)
        self._refuse(RefusalReason.REGISTERED_ELSEWHERE, pin_masked=masked)
        self._log.record(
            "voter_registered_elsewhere", outcome="failure", pin_masked=masked, station=other.number
        )
        address: dict[Lang, str] = {"ky": other.address.ky, "ru": other.address.ru}
        message = {
            lang: say("registered_elsewhere", lang, station=other.number, address=address[lang])
            for lang in LANGS
        }
        return CardResult(
            Lookup.REGISTERED_ELSEWHERE, message, other_station=other.number, other_address=address
        )

    # --- face ----------------------------------------------------------------------------
    def face_attempt(self, frame: np.ndarray) -> FaceAttempt:
        cur = self._require(DeskState.FACE_CHECK)
        assert cur.template is not None
        result = self._matcher(frame, cur.template)
        masked = mask_pin(cur.pin)
        distance = None if result.distance is None else round(float(result.distance), 4)
        if result.status in ("no_face", "multiple_faces", "unreadable"):
            self._log.record(
                "face_not_acquired", outcome="failure", pin_masked=masked, status=result.status
            )
            key = "multiple_faces" if result.status == "multiple_faces" else "no_face"
            return FaceAttempt(result.status, None, cur.attempts, self.state, both(key))
        cur.attempts += 1
        if result.status == "match":
            self._log.record("face_match", pin_masked=masked, distance=str(distance))
            self._mark(cur, method="face")
            return FaceAttempt("match", distance, cur.attempts, self.state, both("issue_ballot"))
        self._log.record(
            "face_no_match",
            outcome="failure",
            pin_masked=masked,
            distance=str(distance),
            attempt=cur.attempts,
        )
        if cur.attempts >= MAX_FACE_ATTEMPTS:
            self.state = DeskState.ADMISSION
            msg = both("face_failed", attempts=MAX_FACE_ATTEMPTS)
        else:
            msg = both("face_no_match", attempt=cur.attempts, attempts=MAX_FACE_ATTEMPTS)
        return FaceAttempt("no_match", distance, cur.attempts, self.state, msg)

    def camera_fault(self) -> None:
        """The camera gives no frame: the commission may admit by document."""
        cur = self._require(DeskState.FACE_CHECK)
        cur.camera_faults += 1
        self._log.record("camera_fault", outcome="failure", pin_masked=mask_pin(cur.pin))
        self.state = DeskState.ADMISSION

    # --- admission by document ------------------------------------------------------------
    def admit_by_document(self, chair_code: str, reason: AdmissionReason, chair: str) -> None:
        cur = self._require(DeskState.ADMISSION)
        reason = AdmissionReason(reason)
        if not self._chair_code_ok(chair_code):
            self._log.record(
                "admission_refused",
                actor=chair,
                outcome="failure",
                pin_masked=mask_pin(cur.pin),
                why="wrong chair code",
            )
            raise DeskError("wrong_chair_code", "the chair's code is wrong")
        self._mark(cur, method="document", reason=reason.value, authorised_by=chair)

    def decline(self, chair: str) -> None:
        """The commission does not admit the voter (counted as refused)."""
        cur = self._require(DeskState.ADMISSION)
        self._refuse(RefusalReason.NOT_ADMITTED, pin_masked=mask_pin(cur.pin))
        self._log.record(
            "admission_refused",
            actor=chair,
            outcome="failure",
            pin_masked=mask_pin(cur.pin),
            why="declined",
        )
        self._current = None
        self.state = DeskState.IDLE

    # --- issuing -------------------------------------------------------------------------
    def ballot_issued(self) -> None:
        cur = self._require(DeskState.MARKED)
        self._confirm(cur.pin)
        self._current = None
        self.state = DeskState.IDLE

    def clear(self) -> None:
        """The voter left before being marked; nothing is counted."""
        if self.state is DeskState.MARKED:
            raise DeskError("finish_current_voter", "a marked voter must be confirmed or cancelled")
        if self._current is not None:
            self._log.record("voter_session_abandoned", pin_masked=mask_pin(self._current.pin))
        self._current = None
        self.state = DeskState.IDLE

    # --- after a restart -----------------------------------------------------------------
    def pending(self) -> list[tuple[str, VoterView, str]]:
        """Voters marked but not confirmed as issued (pin, view, local time of marking)."""
        rows = self._store.query(
            "SELECT v.*, i.marked_at FROM identifications i JOIN voters v USING (pin) "
            "WHERE i.status = 'marked' ORDER BY i.marked_at"
        )
        current = self._current.pin if self._current else None
        return [
            (r["pin"], _view(r), self._local(r["marked_at"])) for r in rows if r["pin"] != current
        ]

    def confirm_pending(self, pin: str, chair: str) -> None:
        """The commission saw the voter get the ballot: count it as issued."""
        self._pending_row(pin)
        self._confirm(pin, event="pending_confirmed", actor=chair)

    def cancel_pending(self, pin: str, chair_code: str, chair: str) -> None:
        """The voter did not get a ballot: cancel the mark so the voter can be identified again."""
        self._pending_row(pin)
        if not self._chair_code_ok(chair_code):
            self._log.record(
                "admission_refused",
                actor=chair,
                outcome="failure",
                pin_masked=mask_pin(pin),
                why="wrong chair code",
            )
            raise DeskError("wrong_chair_code", "the chair's code is wrong")
        with self._store.transaction() as tx:
            tx.execute(
                "UPDATE identifications SET status = 'cancelled', cancelled_at = ? WHERE pin = ?",
                (self._utc(), pin),
            )
            self._log.record("identification_cancelled", actor=chair, pin_masked=mask_pin(pin))

    # --- mobile ballot box ---------------------------------------------------------------
    def mobile_list(self) -> list[tuple[str, VoterView, bool]]:
        """Voters who asked to vote at home, and whether each is already marked."""
        rows = self._store.query(
            "SELECT v.*, i.status AS istatus FROM voters v LEFT JOIN identifications i "
            "USING (pin) WHERE v.home_vote = 1 ORDER BY v.last_name, v.first_name"
        )
        return [(r["pin"], _view(r), r["istatus"] in ("marked", "issued")) for r in rows]

    def mark_mobile(self, pin: str, chair_code: str, chair: str) -> None:
        """Mark a voter of the mobile-box list when the box returns (chair confirms)."""
        if not self._polls_open():
            raise DeskError("polls_not_open", "the mobile box is marked while polls are open")
        if not self._chair_code_ok(chair_code):
            self._log.record(
                "admission_refused",
                actor=chair,
                outcome="failure",
                pin_masked=mask_pin(pin),
                why="wrong chair code",
            )
            raise DeskError("wrong_chair_code", "the chair's code is wrong")
        row = self._store.one("SELECT * FROM voters WHERE pin = ? AND home_vote = 1", (pin,))
        if row is None:
            raise DeskError("not_on_roll", "this voter is not on the mobile-box list")
        cur = _Current(pin, _view(row), None)
        self._mark(cur, method="mobile", authorised_by=chair, issued=True)

    # --- internals -----------------------------------------------------------------------
    def _mark(
        self,
        cur: _Current,
        *,
        method: str,
        reason: str | None = None,
        authorised_by: str | None = None,
        issued: bool = False,
    ) -> None:
        now = self._clock()
        hour = now.astimezone(self._tz).hour
        masked = mask_pin(cur.pin)
        status = "issued" if issued else "marked"
        with self._store.transaction() as tx:
            prior = tx.execute(
                "SELECT status, marked_at FROM identifications WHERE pin = ?", (cur.pin,)
            ).fetchone()
            if prior is not None and prior["status"] != "cancelled":
                raise DeskError("already_voted", "this voter is already marked")
            tx.execute(
                "DELETE FROM identifications WHERE pin = ? AND status = 'cancelled'", (cur.pin,)
            )
            tx.execute(
                "INSERT INTO identifications (pin, status, method, reason, authorised_by, "
                "marked_at, hour, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    cur.pin,
                    status,
                    method,
                    reason,
                    authorised_by,
                    self._utc(now),
                    hour,
                    self._utc(now) if issued else None,
                ),
            )
            detail: dict[str, Any] = {"pin_masked": masked, "method": method}
            if reason:
                detail["reason"] = reason
            name = {"document": "admitted_by_document", "mobile": "mobile_box_voter_marked"}
            if method in name:
                self._log.record(name[method], actor=authorised_by or "system", **detail)
            self._log.record("voter_marked", **detail)
        if not issued:
            self._current = cur
            self.state = DeskState.MARKED

    def _confirm(self, pin: str, *, event: str = "ballot_issued", actor: str = "operator") -> None:
        with self._store.transaction() as tx:
            n = tx.execute(
                "UPDATE identifications SET status = 'issued', issued_at = ? "
                "WHERE pin = ? AND status = 'marked'",
                (self._utc(), pin),
            ).rowcount
            if n != 1:
                raise DeskError("finish_current_voter", "no marked voter to confirm")
            self._log.record(event, actor=actor, pin_masked=mask_pin(pin))

    def _pending_row(self, pin: str) -> None:
        if self._current is not None and self._current.pin == pin:
            raise DeskError("finish_current_voter", "this voter is at the desk now")
        row = self._store.one(
            "SELECT 1 FROM identifications WHERE pin = ? AND status = 'marked'", (pin,)
        )
        if row is None:
            raise DeskError("finish_current_voter", "this voter is not waiting for confirmation")

    def _refuse(self, reason: RefusalReason, **_: object) -> None:
        hour = self._clock().astimezone(self._tz).hour
        with self._store.transaction() as tx:
            tx.execute("INSERT INTO refusals (reason, hour) VALUES (?, ?)", (reason.value, hour))

    def _require(self, state: DeskState) -> _Current:
        if self.state is not state or self._current is None:
            raise DeskError(
                "finish_current_voter",
                f"this action needs the desk in {state.value}, it is {self.state.value}",
            )
        return self._current

    def _template(self, idx: int | None) -> np.ndarray | None:
        if idx is None:
            return None
        row = self._store.one("SELECT encoding FROM templates WHERE idx = ?", (idx,))
        if row is None:
            return None
        return np.frombuffer(row["encoding"], dtype="<f4")

    def _utc(self, when: dt.datetime | None = None) -> str:
        return (when or self._clock()).astimezone(dt.UTC).isoformat(timespec="seconds")

    def _local(self, utc_iso: str) -> str:
        return dt.datetime.fromisoformat(utc_iso).astimezone(self._tz).strftime("%H:%M")


def _view(row: Any) -> VoterView:
    return VoterView(
        masked_pin=mask_pin(row["pin"]),
        last_name=row["last_name"],
        first_name=row["first_name"],
        patronymic=row["patronymic"],
        birth_year=int(row["birth_date"][:4]),
        biometrics=row["biometrics"] == "enrolled",
        home_vote=bool(row["home_vote"]),
    )


# The stored hash of a chair's code -> a keyed digest of the code that last matched it.  The
# chair confirms every mobile-box voter and every deferred batch with the code; a scrypt each
# time is ~60 ms of CPU (more on an appliance), seconds of it when the mobile box returns.  A
# code that matched once is recognised again by this digest; any other attempt pays the whole
# scrypt, so guessing is as slow as before.  The key lives only in this process's memory.
_MATCHED: dict[str, bytes] = {}
_MATCH_KEY = secrets.token_bytes(32)


def chair_code_matches(stored: str, attempt: str) -> bool:
    """Constant-time check of the chair's code against its stored scrypt hash."""
    quick = hmac.new(_MATCH_KEY, attempt.encode(), "sha256").digest()
    known = _MATCHED.get(stored)
    if known is not None and hmac.compare_digest(known, quick):
        return True
    try:
        salt_hex, digest_hex = stored.split("$", 1)
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    digest = hashlib.scrypt(attempt.encode(), salt=salt, n=2**14, r=8, p=1)
    if not hmac.compare_digest(digest.hex(), digest_hex):
        return False
    _MATCHED[stored] = quick
    return True


def hash_chair_code(code: str) -> str:
    if len(code) < 4 or not code.isdigit():
        raise ValueError("the chair's code must be at least 4 digits")
    salt = secrets.token_bytes(16)
    return salt.hex() + "$" + hashlib.scrypt(code.encode(), salt=salt, n=2**14, r=8, p=1).hex()
