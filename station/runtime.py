"""The running station: the combo reader and the camera wired to the identification desk.

Two kinds of caller act on the desk at once: the reader driver's thread (a card
was inserted) and the operator screen's handlers (capture the face, admit,
issue).  Every desk and appliance call therefore goes through one lock, and
nothing the desk refuses is raised into the driver's thread: it becomes the
result the operator sees.

`screen()` is the one snapshot the operator screen renders (station/ui): it
carries every text in Kyrgyz and Russian, never a full PIN (voters waiting for
a decision are named by an opaque per-process `ref`), and the test-mode flag
so no screen can be mistaken for a live one.  `tick()` is the timer the serving
loop calls every few seconds; it signs a turnout snapshot when one is due, on
the appliance's clock, so tests drive it without waiting.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from crypto.envelope import Envelope
from devices.combo_reader import Beep, Led
from station import reports
from station.appliance import Appliance, Health
from station.camera import FrameSource
from station.identify import AdmissionReason, CardResult, DeskError, Lookup, VoterView
from station.reader import (
    CardError,
    CardInserted,
    CardRemoved,
    ComboReaderDriver,
    DriverSettings,
    ReaderEvent,
    ReaderFault,
    ReaderStatus,
)
from station.scanning import DeferredBatchError, end_deferred_batch, start_deferred_batch
from station.state import Mode, State, TransitionError
from station.texts import LANGS, Lang, both, say
from station.uplink import Uplink

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
Tone = Literal["green", "red", "amber", "blue", "grey"]
# How the HTTP layer answers an ActionError: 400 invalid, 403 forbidden, 409 conflict.
ErrorKind = Literal["invalid", "forbidden", "conflict"]

EVENTS_ON_SCREEN = 12
# A line spewing garbage must not flood the hash-chained log: at most one reader_fault
# entry per kind in this many seconds; the ones in between are counted into the next.
FAULT_LOG_INTERVAL_S = 10.0
MIN_CHAIR_CODE = 4

_REFUSALS = (Lookup.REGISTERED_ELSEWHERE, Lookup.NOT_ON_ROLL, Lookup.ALREADY_VOTED)
# DeskError keys raised by actions (not card reads) whose card-read text does not fit.
_DESK_KEYS = {"already_voted": "already_marked", "not_on_roll": "not_on_mobile_list"}


class ActionError(Exception):
    """An operator action was not done; `message` says, in both languages, what to do."""

    def __init__(self, kind: ErrorKind, key: str, message: dict[Lang, str], detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.key = key
        self.message = message


def field_missing(field: str) -> ActionError:
    """400: the form field `field` (chair_code, reason, chair, pin) is missing or empty."""
    label = f"field_{field}"
    message = {lang: say("field_missing", lang, field=say(label, lang)) for lang in LANGS}
    return ActionError("invalid", "field_missing", message, f"missing field {field!r}")


class StationRuntime:
    """Connects the reader driver and the camera to `appliance.desk`; the UI calls the methods.

    Every operator method returns the result now on screen (the same dict as
    `screen()["result"]`) or raises ActionError, leaving nothing changed.
    """

    def __init__(
        self,
        appliance: Appliance,
        *,
        reader_path: Path | str | None,
        camera: FrameSource | None,
        clock: Clock | None = None,
        reader_settings: DriverSettings | None = None,
        events_on_screen: int = EVENTS_ON_SCREEN,
        uplink: Uplink | None = None,
        health: Callable[[], Health] = Health,
    ) -> None:
        self.appliance = appliance
        self.uplink = uplink
        self.health = health
        self.camera = camera
        self.clock = clock or appliance.clock
        self.events_on_screen = events_on_screen
        self._lock = threading.RLock()  # the desk, the store, the screen state
        self._camera_lock = threading.Lock()  # cv2 captures are not thread-safe
        self._ref_key = secrets.token_bytes(16)
        self._result: dict[str, Any] = self._idle_result()
        self._card_present = False
        self._reader: dict[str, Any] = {
            "state": "none" if reader_path is None else "starting",
            "detail": "",
            "serial_number": None,
            "firmware_version": None,
        }
        self._fault_logged: dict[str, float] = {}
        self._fault_suppressed: dict[str, int] = {}
        self._last_turnout: dict[str, Any] | None = None
        self._driver = (
            None
            if reader_path is None
            else ComboReaderDriver(str(reader_path), self.on_reader_event, settings=reader_settings)
        )
        self._started = False

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start the reader driver (its first open attempt runs on its thread)."""
        if self._started:
            raise RuntimeError("runtime already started")
        self._started = True
        if self._driver is not None:
            self._driver.start()
        if self.uplink is not None:
            self.uplink.start()

    def stop(self) -> None:
        """Stop the reader driver; safe twice.  The appliance and camera stay the caller's."""
        # Not under the lock: the driver thread may be waiting for it in on_reader_event.
        if self._driver is not None:
            self._driver.stop()
        if self.uplink is not None and self._started:
            self.uplink.stop()
        self._started = False

    def __enter__(self) -> StationRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the reader (driver thread) --------------------------------------------------
    def on_reader_event(self, event: ReaderEvent) -> None:
        """The driver's callback: a card goes to the desk, status and faults to the log."""
        with self._lock:
            match event:
                case CardInserted(card=card):
                    self._card_present = True
                    try:
                        self._show_card(self.appliance.desk.card_read(card))
                    except DeskError as e:
                        self._result = self._error_result(e.key, str(e))
                        self._indicate(Led.RED, Beep.LONG)
                case CardRemoved():
                    self._card_present = False
                case CardError(code=code, detail=detail):
                    log.info("card unreadable: %s %s", code, detail)
                    self.appliance.log.record("card_unreadable", outcome="failure", code=str(code))
                    self._result = self._result_of(
                        "grey", "card_unreadable", both("card_unreadable")
                    )
                case ReaderStatus():
                    self._reader_status(event)
                case ReaderFault(kind=kind, detail=detail):
                    if kind != "disconnected":  # the ReaderStatus that follows logs it
                        self._reader_fault(kind, detail)

    def _reader_status(self, s: ReaderStatus) -> None:
        previous = self._reader["state"]
        self._reader = {
            "state": s.state,
            "detail": s.detail,
            "serial_number": s.serial_number,
            "firmware_version": s.firmware_version,
        }
        if s.state == previous:
            return
        if s.state == "connected":
            self.appliance.log.record(
                "reader_connected",
                serial=s.serial_number or "",
                firmware=s.firmware_version or "",
            )
        elif s.state == "disconnected":
            self.appliance.log.record("reader_disconnected", outcome="failure", why=s.detail)
        else:
            self.appliance.log.record(
                "reader_fault", outcome="failure", kind="status", why=s.detail
            )

    def _reader_fault(self, kind: str, detail: str) -> None:
        now = time.monotonic()
        last = self._fault_logged.get(kind)
        if last is not None and now - last < FAULT_LOG_INTERVAL_S:
            self._fault_suppressed[kind] = self._fault_suppressed.get(kind, 0) + 1
            return
        self._fault_logged[kind] = now
        self.appliance.log.record(
            "reader_fault",
            outcome="failure",
            kind=kind,
            why=detail[:200],
            suppressed_before=self._fault_suppressed.pop(kind, 0),
        )

    def _indicate(self, led: Led, beep: Beep = Beep.NONE) -> None:
        if self._driver is not None:
            self._driver.indicate(led, beep)

    def _show_card(self, r: CardResult) -> None:
        if r.outcome in _REFUSALS:
            tone: Tone = "red"
            self._indicate(Led.RED, Beep.LONG)
        elif r.outcome is Lookup.NO_BIOMETRICS:
            tone = "amber"
            self._indicate(Led.AMBER, Beep.SHORT)
        else:
            tone = "blue"
            self._indicate(Led.AMBER, Beep.SHORT)
        result = self._result_of(tone, r.outcome.value, r.message, voter=r.voter)
        if not r.document_matches:
            result["warning"] = both("document_mismatch")
        if r.other_station is not None:
            result["other_station"] = r.other_station
            result["other_address"] = r.other_address
        if r.voted_at is not None:
            result["voted_at"] = r.voted_at
        self._result = result

    # --- operator actions ------------------------------------------------------------
    def capture_face(self) -> dict[str, Any]:
        """Take a frame and check it; no frame is "look at the camera", not a camera fault."""
        with self._lock:
            self._require_face_check()
        if self.camera is None:
            raise ActionError("conflict", "camera_absent", both("camera_absent"), "no camera")
        with self._camera_lock:
            frame = self.camera.read()
        with self._lock:
            if frame is None:
                self._require_face_check()
                self._result = self._result_of(
                    "grey", "camera_no_picture", both("camera_no_picture"), keep_voter=True
                )
                return self._result
            a = self._desk_call(lambda: self.appliance.desk.face_attempt(frame))
            voter = self.appliance.desk.current
            if a.status == "match":
                tone: Tone = "green"
                self._indicate(Led.GREEN, Beep.SHORT)
            elif a.next.value == "admission":
                tone = "amber"
                self._indicate(Led.AMBER, Beep.DOUBLE)
            elif a.status == "no_match":
                tone = "red"
            else:
                tone = "grey"
            self._result = self._result_of(tone, f"face_{a.status}", a.message, voter=voter)
            self._result["attempt"] = a.attempt
            return self._result

    def camera_fault(self) -> dict[str, Any]:
        """The operator says the camera is broken: the commission may admit by document."""
        with self._lock:
            voter = self.appliance.desk.current
            self._desk_call(self.appliance.desk.camera_fault)
            self._result = self._result_of(
                "amber", "camera_fault", both("camera_fault_done"), voter=voter
            )
            return self._result

    def retry_camera(self) -> dict[str, Any]:
        """Reopen the camera after the operator reconnected it (only cameras that can)."""
        reopen = getattr(self.camera, "reopen", None)
        if reopen is not None:
            with self._camera_lock:
                try:
                    reopen()
                except Exception as e:  # CameraError, or OpenCV's own
                    log.warning("camera reopen failed: %s", e)
        return self.screen()

    def admit(self, chair_code: str, reason: str, chair: str) -> dict[str, Any]:
        """The chair admits the voter by document, with a reason and a name (counted apart)."""
        code = _chair_code(chair_code)
        why = _reason(reason)
        who = _required(chair, "chair")
        with self._lock:
            voter = self.appliance.desk.current
            self._desk_call(lambda: self.appliance.desk.admit_by_document(code, why, who))
            self._indicate(Led.GREEN, Beep.SHORT)
            self._result = self._result_of("green", "admitted", both("voter_admitted"), voter=voter)
            self._result["reason"] = {lang: say(f"reason_{why.value}", lang) for lang in LANGS}
            return self._result

    def decline(self, chair: str) -> dict[str, Any]:
        """The commission does not admit the voter (counted as refused)."""
        who = _required(chair, "chair")
        with self._lock:
            voter = self.appliance.desk.current
            self._desk_call(lambda: self.appliance.desk.decline(who))
            self._indicate(Led.RED, Beep.LONG)
            self._result = self._result_of("red", "declined", both("voter_declined"), voter=voter)
            return self._result

    def ballot_issued(self) -> dict[str, Any]:
        """The operator handed the ballot over: the desk is free for the next voter."""
        with self._lock:
            self._desk_call(self.appliance.desk.ballot_issued)
            self._indicate(Led.OFF)
            self._result = self._result_of("blue", "issued", both("next_voter"))
            return self._result

    def clear(self) -> dict[str, Any]:
        """The voter left before being marked; nothing is counted."""
        with self._lock:
            self._desk_call(self.appliance.desk.clear)
            self._indicate(Led.OFF)
            self._result = self._idle_result()
            return self._result

    def confirm_pending(self, pin: str, chair: str = "chair") -> dict[str, Any]:
        """A voter marked before a restart did get the ballot (`pin`: the PIN or its ref)."""
        with self._lock:
            real = self._resolve(_required(pin, "pin"), self._pending_pins())
            self._desk_call(lambda: self.appliance.desk.confirm_pending(real, chair))
            self._result = self._result_of(
                "blue", "pending_confirmed", both("pending_confirmed_done")
            )
            return self._result

    def cancel_pending(self, pin: str, chair_code: str, chair: str = "chair") -> dict[str, Any]:
        """A voter marked before a restart did not get the ballot: the chair cancels the mark."""
        code = _chair_code(chair_code)
        with self._lock:
            real = self._resolve(_required(pin, "pin"), self._pending_pins())
            self._desk_call(lambda: self.appliance.desk.cancel_pending(real, code, chair))
            self._result = self._result_of(
                "blue", "pending_cancelled", both("pending_cancelled_done")
            )
            return self._result

    def open_polls(self, actor: str = "chair") -> dict[str, Any]:
        """Open the polls; signs the first identification report (all zeros)."""
        with self._lock:
            self._transition(lambda: self.appliance.open_polls(actor))
            self._result = self._result_of("green", "polls_opened", both("polls_opened"))
            self._notify()
            return self._result

    def close_polls(self, chair_code: str, actor: str = "chair") -> dict[str, Any]:
        """Close the polls with the chair's code; signs the final identification report."""
        code = _chair_code(chair_code)
        with self._lock:
            app = self.appliance
            if app.state is State.OPEN and app.box.batch == "deferred":
                why = "a deferred batch is in progress: end it before closing"
                app.log.record(
                    "state_change_refused",
                    actor=actor,
                    outcome="failure",
                    transition="close_polls",
                    why=why,
                )
                key = "deferred_batch_in_progress"
                raise ActionError("conflict", key, both(key), why)
            self._transition(lambda: self.appliance.close_polls(actor, code))
            self._result = self._result_of("blue", "polls_closed", both("polls_closed"))
            self._notify()
            return self._result

    def start_deferred_batch(self, chair_code: str, chair: str = "chair") -> dict[str, Any]:
        """The chair starts scanning the spare ordinary box's sheets (the ASU had failed):
        they are counted in the deferred batch, reported apart (station.scanning)."""
        code = _chair_code(chair_code)
        with self._lock:
            self._deferred_call(lambda: start_deferred_batch(self.appliance, code, chair))
            self._result = self._result_of(
                "blue", "deferred_batch_started", both("deferred_batch_started_done")
            )
            return self._result

    def end_deferred_batch(self, chair: str = "chair") -> dict[str, Any]:
        """The spare box's sheets are all scanned: back to the box's own batch."""
        with self._lock:
            n = self._deferred_call(lambda: end_deferred_batch(self.appliance, chair))
            self._result = self._result_of(
                "blue", "deferred_batch_ended", both("deferred_batch_ended_done", sheets=n)
            )
            return self._result

    def mark_mobile(self, pin: str, chair_code: str, chair: str = "chair") -> dict[str, Any]:
        """Mark a voter of the mobile-box list when the box returns (`pin`: PIN or its ref)."""
        code = _chair_code(chair_code)
        with self._lock:
            pins = [p for p, _, _ in self.appliance.desk.mobile_list()]
            real = self._resolve(_required(pin, "pin"), pins, missing="not_on_mobile_list")
            self._desk_call(lambda: self.appliance.desk.mark_mobile(real, code, chair))
            self._result = self._result_of("green", "mobile_marked", both("mobile_marked_done"))
            return self._result

    # --- the timer -------------------------------------------------------------------
    def tick(self) -> list[Envelope]:
        """Called every few seconds: signs what is due (turnout, heartbeat, log digest)."""
        signed: list[Envelope] = []
        with self._lock:
            app = self.appliance
            if app.turnout_due():
                env = app.turnout_snapshot()
                self._last_turnout = {
                    "seq": env.seq,
                    "voted": env.body["voted"],
                    "at": self._hhmm(),
                }
                log.info("turnout snapshot %d signed: %d voted", env.seq, env.body["voted"])
                signed.append(env)
            if app.heartbeat_due():
                pending = self.uplink.outbox.pending_count() if self.uplink else 0
                signed.append(app.heartbeat(self.health(), outbox_pending=pending))
            if app.log_digest_due():
                signed.append(app.log_digest())
        if signed:
            self._notify()
        return signed

    def _notify(self) -> None:
        if self.uplink is not None:
            self.uplink.notify()

    # --- what the screen shows -------------------------------------------------------
    def screen(self) -> dict[str, Any]:
        """Everything the operator screen shows, JSON-able, both languages."""
        with self._lock:
            app = self.appliance
            state, mode = app.state, app.mode
            counts = reports.identification_counts(app.store)
            pending = [
                {**self._voter_json(view), "ref": self._ref(pin), "marked_at": at}
                for pin, view, at in app.desk.pending()
            ]
            events = [self._event_json(e) for e in app.log.entries(limit=self.events_on_screen)]
            return {
                "station": {"number": app.station.number, "id": app.station.id},
                "election": app.definition.id,
                "state": state.value,
                "state_text": both(f"state_{state.value}"),
                "mode": mode.value,
                "test_mode": mode is Mode.TEST,
                "banner": both("test_mode") if mode is Mode.TEST else None,
                "desk": app.desk.state.value,
                "time": self._hhmm(),
                "result": dict(self._result),
                "counts": counts,
                "reader": {
                    **self._reader,
                    "card_present": self._card_present,
                    "text": both(f"reader_{self._reader['state']}"),
                },
                "camera": self._camera_json(),
                "pending": pending,
                "pending_message": both("pending_after_restart") if pending else None,
                "turnout": self._last_turnout,
                "deferred_batch": self._deferred_json(),
                "uplink": self._uplink_json(),
                "events": events,
            }

    def mobile_list(self) -> list[dict[str, Any]]:
        """Voters who asked to vote at home (by ref, never a full PIN) and who is marked."""
        with self._lock:
            return [
                {**self._voter_json(view), "ref": self._ref(pin), "marked": marked}
                for pin, view, marked in self.appliance.desk.mobile_list()
            ]

    def events(self, limit: int = 200) -> list[dict[str, Any]]:
        with self._lock:
            return [self._event_json(e) for e in self.appliance.log.entries(limit=limit)]

    def export_nist(self) -> dict[str, Any]:
        """The whole log as NIST SP 1500-101 JSON; the export itself is logged."""
        with self._lock:
            app = self.appliance
            doc = app.log.export_nist_1500_101(
                device_id=app.bundle.device_id, station_id=app.station.id
            )
            app.log.record("log_exported", format="nist-1500-101")
            return doc

    def participation_csv(self) -> str:
        with self._lock:
            return reports.participation_csv(self.appliance.store)

    # --- internals -------------------------------------------------------------------
    def _desk_call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except DeskError as e:
            kind: ErrorKind = "forbidden" if e.key == "wrong_chair_code" else "conflict"
            key = _DESK_KEYS.get(e.key, e.key)
            raise ActionError(kind, key, both(key), str(e)) from e
        except TransitionError as e:
            raise self._transition_error(e) from e

    def _deferred_call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except PermissionError as e:
            key = "wrong_chair_code"
            raise ActionError("forbidden", key, both(key), str(e)) from e
        except DeferredBatchError as e:
            raise ActionError("conflict", e.key, both(e.key), str(e)) from e

    def _transition(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except TransitionError as e:
            raise self._transition_error(e) from e

    def _transition_error(self, e: TransitionError) -> ActionError:
        why = str(e)
        if "chair's code is wrong" in why:
            return ActionError("forbidden", "wrong_chair_code", both("wrong_chair_code"), why)
        if m := re.search(r"polls close at (\d\d:\d\d)", why):
            return ActionError(
                "conflict", "polls_close_time", both("polls_close_time", time=m[1]), why
            )
        if "counters are not zero" in why:
            return ActionError("conflict", "counters_not_zero", both("counters_not_zero"), why)
        if "marked voter" in why:
            return ActionError(
                "conflict", "finish_current_voter", both("finish_current_voter"), why
            )
        state = self.appliance.state.value
        message = {
            lang: say("wrong_state", lang, state=say(f"state_{state}", lang)) for lang in LANGS
        }
        return ActionError("conflict", "wrong_state", message, why)

    def _require_face_check(self) -> None:
        desk = self.appliance.desk.state.value
        if desk != "face_check":
            key = "insert_card" if desk == "idle" else "finish_current_voter"
            raise ActionError(
                "conflict", key, both(key), f"face capture needs face_check, not {desk}"
            )

    def _pending_pins(self) -> list[str]:
        return [pin for pin, _, _ in self.appliance.desk.pending()]

    def _resolve(self, value: str, pins: list[str], *, missing: str = "not_pending") -> str:
        """A PIN given as itself or as the screen's ref; only PINs in `pins` are accepted."""
        for pin in pins:
            if value in (pin, self._ref(pin)):
                return pin
        raise ActionError("conflict", missing, both(missing), f"no such voter for {missing}")

    def _ref(self, pin: str) -> str:
        return hashlib.blake2s(pin.encode(), key=self._ref_key, digest_size=8).hexdigest()

    def _voter_json(self, v: VoterView) -> dict[str, Any]:
        return {
            "name": " ".join(p for p in (v.last_name, v.first_name, v.patronymic) if p),
            "last_name": v.last_name,
            "first_name": v.first_name,
            "patronymic": v.patronymic,
            "birth_year": v.birth_year,
            "masked_pin": v.masked_pin,
            "biometrics": v.biometrics,
            "home_vote": v.home_vote,
        }

    def _result_of(
        self,
        tone: Tone,
        outcome: str,
        message: dict[Lang, str],
        *,
        voter: VoterView | None = None,
        keep_voter: bool = False,
    ) -> dict[str, Any]:
        if keep_voter and voter is None:
            voter = self.appliance.desk.current
        return {
            "tone": tone,
            "outcome": outcome,
            "message": dict(message),
            "voter": None if voter is None else self._voter_json(voter),
            "at": self._hhmm(),
        }

    def _idle_result(self) -> dict[str, Any]:
        return {
            "tone": "grey",
            "outcome": "idle",
            "message": both("insert_card"),
            "voter": None,
            "at": None,
        }

    def _error_result(self, key: str, detail: str) -> dict[str, Any]:
        log.info("desk refused a card: %s", detail)
        result = self._result_of("red", key, both(key), keep_voter=True)
        return result

    def _uplink_json(self) -> dict[str, Any]:
        if self.uplink is None:
            return {"state": "none", "pending": 0, "last_ack": None, "text": both("uplink_none")}
        st = self.uplink.status()
        state = "connected" if st.connected else "down"
        last = (
            st.last_ack_at.astimezone(self.appliance.tz).strftime("%H:%M")
            if st.last_ack_at
            else None
        )
        return {
            "state": state,
            "pending": st.pending,
            "last_ack": last,
            "text": both(f"uplink_{state}"),
        }

    def _deferred_json(self) -> dict[str, Any] | None:
        """The deferred batch in progress (None when none is): sheets counted in it so far."""
        sheets = self.appliance.box.deferred_batch_sheets()
        if sheets is None:
            return None
        return {"sheets": sheets, "text": both("deferred_batch_on", sheets=sheets)}

    def _camera_json(self) -> dict[str, Any]:
        status = "none" if self.camera is None else self.camera.status
        return {"state": status, "text": both(f"camera_{status}")}

    def _event_json(self, e: dict[str, Any]) -> dict[str, Any]:
        at = dt.datetime.fromisoformat(e["at"]).astimezone(self.appliance.tz)
        return {
            "seq": e["seq"],
            "at": at.strftime("%H:%M:%S"),
            "name": e["name"],
            "severity": e["severity"],
            "actor": e["actor"],
            "outcome": e["outcome"],
            "detail": e["detail"],
        }

    def _hhmm(self) -> str:
        return self.clock().astimezone(self.appliance.tz).strftime("%H:%M")


def _required(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise field_missing(field)
    return value.strip()


def _chair_code(value: object) -> str:
    code = _required(value, "chair_code")
    if len(code) < MIN_CHAIR_CODE or not code.isdigit():
        raise ActionError(
            "invalid", "chair_code_format", both("chair_code_format"), "bad chair code"
        )
    return code


def _reason(value: object) -> AdmissionReason:
    text = _required(value, "reason")
    try:
        return AdmissionReason(text)
    except ValueError:
        raise ActionError(
            "invalid", "reason_unknown", both("reason_unknown"), f"unknown reason {text!r}"
        ) from None
