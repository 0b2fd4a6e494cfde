"""The ballot box at work: the ASU driver, the mark reader and the count, joined.

For each scanned sheet (on the driver's thread): read the marks, decide by the
count settings, and, to accept, durably hold the record *before* the driver
sends ACCEPT; the record is counted only when the box confirms the drop (or,
after a power cut, when its drop counter shows the sheet fell).  A drop the
box cannot account for is left for the commission (`unknown`), never guessed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import cv2
import numpy as np

from station.appliance import Appliance
from station.asu import (
    AsuConnected,
    AsuDisconnected,
    AsuDriver,
    AsuEvent,
    AsuSettings,
    Decision,
    DropConfirmed,
    DropNotHappened,
    DropUnknown,
    PendingDrop,
    SensorAlert,
    SheetCounted,
    SheetImage,
    SheetReturned,
    TransferFault,
)
from station.marks import MarkSettings, SheetReading, read_sheet
from station.state import Mode, State, TransitionError

log = logging.getLogger(__name__)


class DeferredBatchError(TransitionError):
    """A deferred batch cannot start or end now; `key` (station/texts.py) says why."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(why)
        self.key = key


def start_deferred_batch(appliance: Appliance, chair_code: str, actor: str = "chair") -> None:
    """The chair starts scanning the sheets of a spare ordinary box (the ASU had failed and
    is back, or a spare ASU is connected): from now on sheets are counted in the deferred
    batch, reported apart in the final ASU report (and included in its totals).

    Only while the polls are open (before the final report is signed), not twice, and with
    the chair's code: a refusal is logged (`state_change_refused`) and changes nothing else;
    a wrong code raises PermissionError, anything else DeferredBatchError."""
    if appliance.state is not State.OPEN:
        _refused(
            appliance,
            "start_deferred_batch",
            actor,
            "deferred_batch_polls_not_open",
            f"a deferred batch is scanned while the polls are open, not {appliance.state.value}",
        )
    if appliance.box.batch == "deferred":
        _refused(
            appliance,
            "start_deferred_batch",
            actor,
            "deferred_batch_already",
            "a deferred batch is already in progress",
        )
    if not appliance.chair_code_ok(chair_code):
        appliance.log.record(
            "state_change_refused",
            actor=actor,
            outcome="failure",
            transition="start_deferred_batch",
            why="the chair's code is wrong",
        )
        raise PermissionError("the chair's code is wrong")
    with appliance.store.transaction():
        appliance.box.batch = "deferred"
        appliance.log.record("deferred_batch_started", actor=actor)


def end_deferred_batch(appliance: Appliance, actor: str = "chair") -> int:
    """The spare box's sheets are all scanned: sheets count in the box's own batch again.
    Refused (logged, nothing else changed) when no deferred batch is in progress.  Returns
    how many sheets the batch counted."""
    sheets = appliance.box.deferred_batch_sheets()
    if sheets is None:
        _refused(
            appliance,
            "end_deferred_batch",
            actor,
            "deferred_batch_not_started",
            "no deferred batch is in progress",
        )
    with appliance.store.transaction():
        appliance.box.batch = "box"
        appliance.log.record("deferred_batch_ended", actor=actor, sheets=sheets)
    return sheets


def _refused(appliance: Appliance, action: str, actor: str, key: str, why: str) -> NoReturn:
    appliance.log.record(
        "state_change_refused", actor=actor, outcome="failure", transition=action, why=why
    )
    raise DeferredBatchError(key, why)


class Scanner:
    def __init__(
        self,
        appliance: Appliance,
        asu_path: Path | str,
        *,
        settings: AsuSettings | None = None,
        marks: MarkSettings | None = None,
        on_change: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.appliance = appliance
        self.marks = marks or MarkSettings()
        self.layouts = appliance.bundle.layouts()
        ours = {c.id for c in appliance.box.contests}
        self.allowed_styles = {
            s.style_id for s in self.layouts.styles if {c.contest_id for c in s.contests} <= ours
        }
        self._lock = threading.Lock()
        self._on_change = on_change
        self.cast_as_is_next = False
        self.last: dict[str, Any] = {"outcome": "idle"}
        self.unknown: list[str] = []  # pending ids the commission must resolve
        drops = appliance.box.pending_drops()
        pending = PendingDrop(*drops[0]) if drops else None
        if len(drops) > 1:  # one sheet is in flight at a time; more means a damaged store
            self.unknown = [d[0] for d in drops[1:]]
        self.driver = AsuDriver(
            str(asu_path),
            self.decide,
            self.on_event,
            settings=settings,
            pending=pending,
            feeding=appliance.state is State.OPEN,
        )

    def start(self) -> None:
        self.driver.start()

    def stop(self) -> None:
        self.driver.stop()

    # --- on the driver's thread -------------------------------------------------------
    def decide(self, sheet: SheetImage) -> Decision:
        reading = self.read(sheet.image)
        with self._lock:
            cast_as_is, self.cast_as_is_next = self.cast_as_is_next, False
        d = self.appliance.box.decide(reading, cast_as_is=cast_as_is)  # type: ignore[arg-type]
        if cast_as_is:
            self.appliance.log.record("cast_as_is_chosen")
        if not d.accept or d.record is None:
            self._show("returned", reasons=list(d.reasons))
            return Decision.give_back(",".join(d.reasons))
        pending_id = self.appliance.box.hold(
            d.record, box_serial=sheet.box_serial, drops_before=sheet.drops_before
        )
        self._show("accepting", reasons=list(d.reasons))
        return Decision.accept(d.record, pending_id)

    def read(self, image_bytes: bytes) -> SheetReading:
        image = cv2.imdecode(np.frombuffer(image_bytes, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
        if image is None:
            image = np.zeros((8, 8), dtype=np.uint8)  # an undecodable image reads as unreadable
        return read_sheet(
            image,
            self.layouts,
            expected_test_mode=self.appliance.mode is Mode.TEST,
            allowed_styles=self.allowed_styles,
            settings=self.marks,
        )

    def on_event(self, event: AsuEvent) -> None:
        box, logbook = self.appliance.box, self.appliance.log
        match event:
            case SheetCounted(pending_id=pid):
                box.counted(pid)
                self._show("counted")
            case DropConfirmed(pending_id=pid):
                box.counted(pid)
                logbook.record("asu_pending_resolved", outcome="success", fell=True)
            case DropNotHappened(pending_id=pid, in_path=in_path):
                # Still in the path: the driver gives it back next, and that SheetReturned
                # is its one return; else it is gone and counts as returned here.
                box.not_dropped(pid, None if in_path else "not_dropped")
                logbook.record("asu_pending_resolved", outcome="success", fell=False)
            case DropUnknown(pending_id=pid, detail=detail):
                self.unknown.append(pid)
                logbook.record("asu_fault", outcome="failure", kind="drop_unknown", detail=detail)
            case SheetReturned(reason=reason):
                box.returned(tuple(reason.split(",")) if reason else ("returned",))
            case SensorAlert(kind=kind, detail=detail):
                logbook.record("asu_fault", outcome="failure", kind=kind, detail=detail)
                self._show("alert", kind=kind)
            case TransferFault(kind=kind, detail=detail):
                logbook.record("asu_fault", outcome="failure", kind=kind, detail=detail)
            case AsuConnected(serial_number=serial):
                logbook.record("asu_connected", serial=serial)
            case AsuDisconnected(detail=detail):
                logbook.record("asu_disconnected", outcome="failure", detail=detail)
            case _:
                pass

    # --- operator ---------------------------------------------------------------------
    def cast_as_is(self) -> None:
        """The voter chose to cast the returned sheet as it is: applies to the next sheet."""
        with self._lock:
            self.cast_as_is_next = True

    def start_deferred_batch(self, chair_code: str, actor: str = "chair") -> None:
        """Ballots from a spare ordinary box (the ASU failed): counted and reported apart."""
        start_deferred_batch(self.appliance, chair_code, actor)

    def end_deferred_batch(self, actor: str = "chair") -> None:
        end_deferred_batch(self.appliance, actor)

    def resolve_unknown(self, pending_id: str, *, fell: bool, chair_code: str) -> None:
        """The commission opened the box and saw whether the sheet fell."""
        if not self.appliance.chair_code_ok(chair_code):
            raise PermissionError("the chair's code is wrong")
        if pending_id not in self.unknown:
            raise KeyError("no such unresolved sheet")
        if fell:
            self.appliance.box.counted(pending_id)
        else:
            self.appliance.box.not_dropped(pending_id, "commission")
        self.unknown.remove(pending_id)
        self.appliance.log.record("asu_pending_resolved", actor="chair", fell=fell)

    def _show(self, outcome: str, **detail: Any) -> None:
        self.last = {"outcome": outcome, **detail}
        if self._on_change:
            self._on_change(self.last)
