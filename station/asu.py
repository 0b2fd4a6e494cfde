"""The station's driver for the automatic ballot box (ASU): an explicit state machine.

It receives each scanned sheet, hands the image to `decide` (the station's
mark reader and policy: this module never reads marks and never counts) and
carries out the decision.  A sheet counts only when the box confirms the drop
(SHEET_DROPPED for that sheet), reported as `SheetCounted`.  The serial line
is untrusted, the box can lose power and the station can be killed at any
point, so:

- after every (re)connect, sensor alarm or unanswered command the driver goes
  to CHECKING_SENSORS: it disables feeding, asks STATUS and acts on nothing
  else until the answer says where the paper is;
- an accepted sheet whose drop was not confirmed ("pending") is resolved from
  the box's non-volatile drop counter: counter == drops_before + 1 -> it fell
  (`DropConfirmed`), == drops_before -> it did not (`DropNotHappened`, and the
  sheet, still in the path, is given back to the voter); anything else, or
  another box, -> `DropUnknown` for the commission.  The station persists the
  pending record (`PendingDrop` plus its payload) before `decide` returns an
  accept, and hands unresolved ones back to a new driver after a restart;
- whatever paper is in the path and not accepted is given back (CLEAR_PATH),
  never dropped.

Nothing here raises into the station; `decide` and `on_event` run on the
driver's thread.  Wire format and the state diagram: docs/protocol-asu.md.
"""

from __future__ import annotations

import enum
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from devices.asu import (
    ASU_MAX_PAYLOAD,
    AcceptMsg,
    AsuMessage,
    BoxState,
    ClearPathMsg,
    DisableMsg,
    EnableMsg,
    ImageChunkMsg,
    ImageDoneMsg,
    ImageFormat,
    PayloadError,
    ResendChunkMsg,
    ReturnMsg,
    Sensor,
    SensorMsg,
    SheetDroppedMsg,
    SheetInsertedMsg,
    SheetReturnedMsg,
    StatusMsg,
    StatusRequestMsg,
    decode_message,
    encode_message,
    image_crc32,
)
from devices.framing import Frame
from station.serial_link import LinkFaultKind, SerialLink

__all__ = [
    "AsuConnected",
    "AsuDisconnected",
    "AsuDriver",
    "AsuEvent",
    "AsuSettings",
    "AsuState",
    "AsuStateChanged",
    "Decision",
    "DropConfirmed",
    "DropNotHappened",
    "DropUnknown",
    "PendingDrop",
    "SensorAlert",
    "SensorKind",
    "SheetCounted",
    "SheetImage",
    "SheetReturned",
    "TransferFault",
    "TransferFaultKind",
    "resolve_pending",
]

log = logging.getLogger(__name__)


class AsuState(enum.Enum):
    DISCONNECTED = "disconnected"  # no device; reopening with backoff
    CHECKING_SENSORS = "checking_sensors"  # feeding disabled, waiting for STATUS
    IDLE = "idle"  # feeding enabled, no sheet
    DISABLED = "disabled"  # feeding disabled (polls closed or not open yet)
    RECEIVING = "receiving"  # a sheet's image is arriving
    DECIDING = "deciding"  # `decide` is running
    ACCEPTING = "accepting"  # ACCEPT sent, waiting for SHEET_DROPPED
    RETURNING = "returning"  # RETURN/CLEAR_PATH sent, waiting for SHEET_RETURNED
    JAMMED = "jammed"  # a sheet is stuck; CLEAR_PATH sent
    COVER_OPEN = "cover_open"  # nothing moves until the cover is closed
    BOX_FULL = "box_full"  # no drops until the container is emptied


# Why a sheet went back to the voter (SheetReturned.reason), besides the decision's own reason.
REASON_UNREADABLE_TRANSFER = "unreadable transfer"
REASON_JAM = "jam"
REASON_DOUBLE_FEED = "double feed"
REASON_COVER_OPENED = "cover opened"
REASON_BOX_FULL = "box full"
REASON_PAPER_IN_PATH = "paper in path"
REASON_FEEDING_DISABLED = "feeding disabled"
REASON_CONNECTION_LOST = "connection lost"
REASON_DROP_NOT_CONFIRMED = "drop not confirmed"
REASON_STATION_ERROR = "station error"


@dataclass(frozen=True, slots=True)
class AsuSettings:
    """Timings of the driver; tests shrink them.  The defaults suit a USB box at full speed."""

    baudrate: int = 115200  # ignored by USB CDC; kept for a real UART
    read_timeout: float = 0.05  # longest blocking read: bounds how fast timeouts react
    write_timeout: float = 1.0
    frame_timeout: float = 0.5  # silence after a partial frame before it is dropped
    reconnect_initial: float = 0.25
    reconnect_factor: float = 2.0
    reconnect_max: float = 5.0
    status_timeout: float = 2.0  # CHECKING_SENSORS: STATUS not answered -> ask again
    status_poll: float = 0.2  # STATUS says paper is moving -> ask again after this
    chunk_timeout: float = 1.0  # RECEIVING: silence before missing chunks are asked again
    max_chunk_retries: int = 3  # RESEND_CHUNK per chunk before the sheet is given back
    drop_timeout: float = 3.0  # ACCEPTING: no SHEET_DROPPED -> check the sensors
    return_timeout: float = 3.0  # RETURNING/JAMMED: no SHEET_RETURNED -> check the sensors
    max_image_size: int = 32 * 1024 * 1024  # an announced image larger than this is refused


@dataclass(frozen=True, slots=True)
class SheetImage:
    """A scanned sheet handed to `decide`.  `box_serial` and `drops_before` go into the
    station's durable pending record if it accepts (see `PendingDrop`)."""

    sheet_id: int
    image: bytes = field(repr=False)
    image_format: Literal["png", "jpeg"]
    box_serial: str
    drops_before: int

    def pending(self, pending_id: str) -> PendingDrop:
        """The record the station must store durably before returning an accept."""
        return PendingDrop(pending_id, self.box_serial, self.drops_before)


@dataclass(frozen=True, slots=True)
class PendingDrop:
    """An accepted sheet whose drop is not confirmed yet, as the station stores it."""

    pending_id: str
    box_serial: str
    drops_before: int


@dataclass(frozen=True, slots=True)
class Decision:
    """What `decide` returns: accept (with the payload to count once the drop is confirmed
    and the id of the pending record already stored) or give back with a reason."""

    action: Literal["accept", "return"]
    payload: Any = None
    pending_id: str | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.action == "accept" and not self.pending_id:
            raise ValueError("an accept needs the pending_id the station stored durably")

    @classmethod
    def accept(cls, payload: Any, pending_id: str) -> Decision:
        return cls("accept", payload, pending_id)

    @classmethod
    def give_back(cls, reason: str) -> Decision:
        return cls("return", reason=reason)


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AsuConnected:
    firmware_version: str
    serial_number: str
    drops_total: int


@dataclass(frozen=True, slots=True)
class AsuDisconnected:
    detail: str


@dataclass(frozen=True, slots=True)
class AsuStateChanged:
    state: AsuState


@dataclass(frozen=True, slots=True)
class SheetCounted:
    """The box confirmed the drop: count `payload` now (idempotently by pending_id)."""

    sheet_id: int
    payload: Any
    pending_id: str


@dataclass(frozen=True, slots=True)
class SheetReturned:
    sheet_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class DropConfirmed:
    """A pending sheet did fall (found after a power loss or a lost message): count it."""

    pending_id: str


@dataclass(frozen=True, slots=True)
class DropNotHappened:
    """A pending sheet did not fall: discard the pending record; the voter gets it back.

    `in_path`: the sheet is still in the box's path, and the driver gives it back next (a
    `SheetReturned` follows: that is the one return to count).  False: it is no longer
    there (already given back, or taken out while the box was off)."""

    pending_id: str
    in_path: bool = False


@dataclass(frozen=True, slots=True)
class DropUnknown:
    """The box cannot tell (another box, or its counter moved oddly): the commission decides."""

    pending_id: str
    detail: str


SensorKind = Literal[
    "jam", "double_feed", "cover_open", "cover_closed", "box_full", "box_emptied", "paper_in_path"
]


@dataclass(frozen=True, slots=True)
class SensorAlert:
    """For the operator: what the box sensed and what to do."""

    kind: SensorKind
    sheet_id: int
    detail: str


TransferFaultKind = Literal[
    "crc",
    "garbage",
    "truncated",
    "bad_payload",
    "missing_chunk",
    "unreadable_transfer",
    "unexpected",
    "no_status",
]


@dataclass(frozen=True, slots=True)
class TransferFault:
    kind: TransferFaultKind
    detail: str


AsuEvent = (
    AsuConnected
    | AsuDisconnected
    | AsuStateChanged
    | SheetCounted
    | SheetReturned
    | DropConfirmed
    | DropNotHappened
    | DropUnknown
    | SensorAlert
    | TransferFault
)

_SENSOR_ADVICE: dict[Sensor, tuple[SensorKind, str]] = {
    Sensor.JAM: ("jam", "a sheet is stuck; the box tries to give it back; if not, open the cover"),
    Sensor.DOUBLE_FEED: ("double_feed", "two sheets went in together; both are given back"),
    Sensor.COVER_OPEN: ("cover_open", "cover open: close it to continue"),
    Sensor.COVER_CLOSED: ("cover_closed", "cover closed"),
    Sensor.BOX_FULL: ("box_full", "the box is full: replace the container"),
    Sensor.BOX_EMPTIED: ("box_emptied", "container replaced"),
    Sensor.PAPER_IN_PATH: ("paper_in_path", "a sheet was left in the box's path"),
}


@dataclass
class _Transfer:
    msg: SheetInsertedMsg
    chunks: dict[int, bytes] = field(default_factory=dict)
    tries: dict[int, int] = field(default_factory=dict)

    def missing(self) -> list[int]:
        return [i for i in range(self.msg.chunk_count) if i not in self.chunks]


@dataclass
class _Pending:
    record: PendingDrop
    sheet_id: int | None  # None: carried over from before a restart
    payload: Any = None


@dataclass
class _Return:
    sheet_id: int
    reason: str
    recovery: bool  # True: check the sensors afterwards


class AsuDriver(SerialLink[AsuSettings]):
    """Drives the ballot box at `path`; `decide` and `on_event` run on the driver's thread.

    `pending` is an unresolved PendingDrop the station found in its store at
    start-up; it is resolved against the box before anything else happens.
    `feeding` is whether the box may take sheets once checked (polls open).
    """

    def __init__(
        self,
        path: str,
        decide: Callable[[SheetImage], Decision],
        on_event: Callable[[AsuEvent], None],
        *,
        settings: AsuSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        pending: PendingDrop | None = None,
        feeding: bool = False,
    ) -> None:
        super().__init__(
            path,
            settings or AsuSettings(),
            max_payload=ASU_MAX_PAYLOAD,
            name="asu",
            thread_name="asu-driver",
            log=log,
            clock=clock,
            sleep=sleep,
        )
        self._decide = decide
        self._on_event = on_event
        self._commands: queue.Queue[Callable[[], None]] = queue.Queue()
        self._state = AsuState.DISCONNECTED
        self._deadline: float | None = None
        self._want_feeding = feeding
        self._box_feeding: bool | None = None
        self._status: StatusMsg | None = None
        self._announced = False  # AsuConnected sent for this connection
        self._transfer: _Transfer | None = None
        self._pending = _Pending(pending, None) if pending is not None else None
        self._returning: _Return | None = None
        self._interrupt: str | None = None  # why paper found in the path goes back
        self._no_status_reported = False
        self._status_asked = False  # a STATUS_REQUEST is unanswered
        self._absent_reported = False  # AsuDisconnected already said for this absence

    @property
    def state(self) -> AsuState:
        return self._state

    @property
    def status(self) -> StatusMsg | None:
        """The box's last STATUS answer."""
        return self._status

    # --- the station's commands (any thread) -----------------------------------------

    def enable_feeding(self) -> None:
        """Polls open: the box may take sheets (once the sensors are checked)."""
        self._commands.put(lambda: self._set_feeding(True))

    def disable_feeding(self) -> None:
        """Polls closed: the box takes no more sheets; a sheet already inside is finished."""
        self._commands.put(lambda: self._set_feeding(False))

    def _set_feeding(self, want: bool) -> None:
        self._want_feeding = want
        if self._state in (AsuState.IDLE, AsuState.DISABLED):
            self._ready()

    # --- link hooks (the driver's thread) ----------------------------------------------

    # A handler may lose the connection; the rest of that read is not acted on.
    _drop_frames_when_closed = True

    def _before_read(self) -> None:
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            cmd()

    def _on_open_failed(self) -> None:
        if not self._absent_reported:
            self._absent_reported = True
            self._emit(AsuDisconnected(f"ballot box not found at {self.path}: plug it in"))

    def _on_connected(self) -> None:
        self._absent_reported = False
        self._announced = False
        self._check_sensors()

    def _on_disconnected(self) -> None:
        # _drop_connection() is idempotent: the link has already run it.
        self._lost(f"ballot box at {self.path} stopped responding: check its cable and power")

    def _on_loop_error(self) -> None:
        self._lost("driver error; reconnecting")

    def _on_closed(self) -> None:
        self._deadline = None

    def _on_fault(self, kind: LinkFaultKind, detail: str) -> None:
        self._emit(TransferFault(kind, detail))

    def _tick(self, now: float) -> None:
        if self._deadline is not None and self._clock() >= self._deadline:
            self._deadline = None
            self._on_timeout()

    def _lost(self, detail: str) -> None:
        self._drop_connection()
        if self._transfer is not None:
            self._transfer = None
            self._interrupt = self._interrupt or REASON_CONNECTION_LOST
        self._box_feeding = None
        self._enter(AsuState.DISCONNECTED)
        self._absent_reported = True
        self._emit(AsuDisconnected(detail))

    def _send(self, msg: AsuMessage) -> bool:
        # A failed write: the next read notices the loss; the check afterwards resolves it.
        return self._write(encode_message(msg).encode())

    def _enter(self, state: AsuState, timeout: float | None = None) -> None:
        self._deadline = None if timeout is None else self._clock() + timeout
        if state != self._state:
            log.info("asu: %s -> %s", self._state.value, state.value)
            self._state = state
            self._emit(AsuStateChanged(state))

    def _emit(self, event: AsuEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            log.exception("asu: event handler failed on %s", type(event).__name__)

    # --- frames in -------------------------------------------------------------------

    def _on_frame(self, frame: Frame) -> None:
        msg = decode_message(frame)
        if isinstance(msg, PayloadError):
            self._bad_payload(msg.msg_type, msg.reason, msg.detail)
            return
        self._dispatch(msg)

    def _dispatch(self, msg: AsuMessage) -> None:
        match msg:
            case StatusMsg():
                self._on_status(msg)
            case SensorMsg():
                self._on_sensor(msg)
            case SheetInsertedMsg():
                self._on_inserted(msg)
            case ImageChunkMsg():
                self._on_chunk(msg)
            case ImageDoneMsg(sheet_id=sid):
                self._on_done(sid)
            case SheetDroppedMsg():
                self._on_dropped(msg)
            case SheetReturnedMsg(sheet_id=sid):
                self._on_returned(sid)
            case _:
                self._unexpected(f"box sent a host-to-box message {type(msg).__name__}")

    def _unexpected(self, detail: str) -> None:
        log.warning("asu: %s", detail)
        self._emit(TransferFault("unexpected", detail))

    # --- checking the sensors ----------------------------------------------------------

    def _check_sensors(self) -> None:
        """Stop the feeder and ask where the paper is; nothing else happens until STATUS."""
        self._transfer = None
        self._send(DisableMsg())
        self._box_feeding = False
        self._status_asked = self._send(StatusRequestMsg())
        self._enter(AsuState.CHECKING_SENSORS, self.settings.status_timeout)

    def _on_status(self, status: StatusMsg) -> None:
        self._status = status
        if self._state != AsuState.CHECKING_SENSORS:
            return
        self._status_asked = self._no_status_reported = False
        if not self._announced:
            self._announced = True
            self._emit(
                AsuConnected(status.firmware_version, status.serial_number, status.drops_total)
            )
        if status.state in (BoxState.DROPPING, BoxState.RETURNING, BoxState.SCANNING):
            self._enter(AsuState.CHECKING_SENSORS, self.settings.status_poll)  # moving: wait
            return
        self._resolve_pending(status)
        ret = self._returning
        if ret is not None and not status.paper_in_path:
            self._returning = None  # it left while we were not looking
            self._emit(SheetReturned(ret.sheet_id, ret.reason))
        if status.cover_open:
            self._enter(AsuState.COVER_OPEN)
            return
        if status.paper_in_path:
            if ret is not None:
                reason = ret.reason
            else:
                reason = self._interrupt or REASON_PAPER_IN_PATH
                if self._interrupt is None:
                    self._emit(
                        SensorAlert(
                            "paper_in_path",
                            status.sheet_in_path,
                            "a sheet was left in the box's path: it is given back to the voter",
                        )
                    )
            self._returning = _Return(status.sheet_in_path, reason, recovery=True)
            self._send(ClearPathMsg())
            jammed = AsuState.JAMMED if status.jammed else AsuState.RETURNING
            self._enter(jammed, self.settings.return_timeout)
            return
        self._interrupt = None
        if status.box_full:
            self._enter(AsuState.BOX_FULL)
            return
        self._ready()

    def _resolve_pending(self, status: StatusMsg) -> None:
        p = self._pending
        if p is None:
            return
        self._pending = None
        rec = p.record
        event = resolve_pending(
            rec,
            serial_number=status.serial_number,
            drops_total=status.drops_total,
            paper_in_path=status.paper_in_path,
        )
        match event:
            case DropConfirmed():
                log.info("asu: pending %s fell before the interruption", rec.pending_id)
            case DropNotHappened():
                log.info("asu: pending %s did not fall", rec.pending_id)
                self._interrupt = self._interrupt or REASON_DROP_NOT_CONFIRMED
            case DropUnknown(detail=detail):
                log.warning("asu: pending %s: %s", rec.pending_id, detail)
        self._emit(event)

    def _ready(self) -> None:
        """Nothing in the path and nothing wrong: feed or not, as the station wants."""
        want = self._want_feeding
        if self._box_feeding != want:
            self._send(EnableMsg() if want else DisableMsg())
            self._box_feeding = want
        self._enter(AsuState.IDLE if want else AsuState.DISABLED)

    # --- sensors -----------------------------------------------------------------------

    def _on_sensor(self, msg: SensorMsg) -> None:
        kind, advice = _SENSOR_ADVICE[msg.sensor]
        if msg.sensor != Sensor.PAPER_IN_PATH:  # reported by the check, with what happens
            self._emit(SensorAlert(kind, msg.sheet_id, advice))
        log.warning("asu: sensor %s (sheet %d)", kind, msg.sheet_id)
        busy = self._transfer is not None or self._state in (
            AsuState.DECIDING,
            AsuState.ACCEPTING,
            AsuState.RECEIVING,
        )
        self._transfer = None
        match msg.sensor:
            case Sensor.JAM:
                self._interrupt = REASON_JAM
                self._returning = _Return(msg.sheet_id, REASON_JAM, recovery=True)
                self._send(ClearPathMsg())
                self._enter(AsuState.JAMMED, self.settings.return_timeout)
            case Sensor.DOUBLE_FEED:
                self._interrupt = REASON_DOUBLE_FEED
                self._returning = _Return(msg.sheet_id, REASON_DOUBLE_FEED, recovery=True)
                self._send(ClearPathMsg())
                self._enter(AsuState.RETURNING, self.settings.return_timeout)
            case Sensor.COVER_OPEN:
                if busy:
                    self._interrupt = REASON_COVER_OPENED
                self._enter(AsuState.COVER_OPEN)
            case Sensor.BOX_FULL:
                if busy:
                    self._interrupt = REASON_BOX_FULL
                self._check_sensors()
            case Sensor.COVER_CLOSED | Sensor.BOX_EMPTIED | Sensor.PAPER_IN_PATH:
                self._check_sensors()

    # --- a sheet -----------------------------------------------------------------------

    def _on_inserted(self, msg: SheetInsertedMsg) -> None:
        if self._state == AsuState.CHECKING_SENSORS:
            log.info("asu: sheet %d inserted during the check; STATUS will show it", msg.sheet_id)
            return
        if self._state == AsuState.DISABLED:
            self._give_back(msg.sheet_id, REASON_FEEDING_DISABLED)
            return
        if self._state != AsuState.IDLE:
            self._unexpected(f"sheet {msg.sheet_id} inserted while {self._state.value}")
            self._check_sensors()
            return
        if msg.image_size > self.settings.max_image_size:
            self._emit(TransferFault("unreadable_transfer", f"image of {msg.image_size} bytes"))
            self._give_back(msg.sheet_id, REASON_UNREADABLE_TRANSFER)
            return
        self._transfer = _Transfer(msg)
        self._enter(AsuState.RECEIVING, self.settings.chunk_timeout)

    def _current(self, sheet_id: int, what: str) -> _Transfer | None:
        t = self._transfer
        if self._state == AsuState.RECEIVING and t is not None and t.msg.sheet_id == sheet_id:
            return t
        if self._state == AsuState.IDLE:
            # SHEET_INSERTED was lost: the image cannot be trusted; give the sheet back.
            self._unexpected(f"{what} for sheet {sheet_id} that was never announced")
            self._give_back(sheet_id, REASON_UNREADABLE_TRANSFER)
        return None

    def _on_chunk(self, msg: ImageChunkMsg) -> None:
        t = self._current(msg.sheet_id, "image chunk")
        if t is None:
            return
        if msg.index >= t.msg.chunk_count:
            self._unexpected(f"chunk {msg.index} of a {t.msg.chunk_count}-chunk image")
            return
        t.chunks[msg.index] = msg.data
        self._enter(AsuState.RECEIVING, self.settings.chunk_timeout)
        if not t.missing():
            self._complete(t)

    def _on_done(self, sheet_id: int) -> None:
        t = self._current(sheet_id, "image done")
        if t is None:
            return
        if t.missing():
            self._ask_again(t)
        else:
            self._complete(t)

    def _ask_again(self, t: _Transfer) -> None:
        """Ask for every missing chunk once more, or give the sheet back after too many tries."""
        missing = t.missing()
        if any(t.tries.get(i, 0) >= self.settings.max_chunk_retries for i in missing):
            detail = f"sheet {t.msg.sheet_id}: chunks {missing} still missing after resends"
            log.warning("asu: %s", detail)
            self._emit(TransferFault("unreadable_transfer", detail))
            self._give_back(t.msg.sheet_id, REASON_UNREADABLE_TRANSFER)
            return
        self._emit(TransferFault("missing_chunk", f"sheet {t.msg.sheet_id}: resend {missing}"))
        for i in missing:
            t.tries[i] = t.tries.get(i, 0) + 1
            self._send(ResendChunkMsg(t.msg.sheet_id, i))
        self._enter(AsuState.RECEIVING, self.settings.chunk_timeout)

    def _complete(self, t: _Transfer) -> None:
        self._transfer = None
        image = b"".join(t.chunks[i] for i in range(t.msg.chunk_count))
        if len(image) != t.msg.image_size or image_crc32(image) != t.msg.image_crc32:
            self._emit(
                TransferFault("unreadable_transfer", f"sheet {t.msg.sheet_id}: image CRC-32 bad")
            )
            self._give_back(t.msg.sheet_id, REASON_UNREADABLE_TRANSFER)
            return
        status = self._status
        assert status is not None  # IDLE is reached only through a STATUS
        sheet = SheetImage(
            sheet_id=t.msg.sheet_id,
            image=image,
            image_format="png" if t.msg.image_format == ImageFormat.PNG else "jpeg",
            box_serial=status.serial_number,
            drops_before=status.drops_total,
        )
        self._enter(AsuState.DECIDING)
        try:
            decision = self._decide(sheet)
        except Exception:
            log.exception("asu: decide failed on sheet %d", sheet.sheet_id)
            decision = Decision.give_back(REASON_STATION_ERROR)
        if decision.action == "accept":
            assert decision.pending_id is not None
            # The station has stored the pending record: from here a power cut is resolved
            # by the drop counter, whatever happens to the ACCEPT frame.
            self._pending = _Pending(
                sheet.pending(decision.pending_id), sheet.sheet_id, decision.payload
            )
            self._send(AcceptMsg(sheet.sheet_id))
            self._enter(AsuState.ACCEPTING, self.settings.drop_timeout)
        else:
            self._give_back(sheet.sheet_id, decision.reason or "returned")

    def _give_back(self, sheet_id: int, reason: str) -> None:
        self._transfer = None
        self._returning = _Return(sheet_id, reason, recovery=False)
        self._send(ReturnMsg(sheet_id))
        self._enter(AsuState.RETURNING, self.settings.return_timeout)

    def _on_dropped(self, msg: SheetDroppedMsg) -> None:
        if self._status is not None:
            self._status = _with_drops(self._status, msg.drops_total)
        p = self._pending
        if p is None or p.sheet_id != msg.sheet_id:
            self._unexpected(f"box reports sheet {msg.sheet_id} dropped without an accept")
            return
        self._pending = None
        if msg.drops_total != p.record.drops_before + 1:
            self._unexpected(
                f"drop counter {msg.drops_total} after a drop, expected {p.record.drops_before + 1}"
            )
        log.info("asu: sheet %d dropped", msg.sheet_id)
        self._emit(SheetCounted(msg.sheet_id, p.payload, p.record.pending_id))
        if self._state == AsuState.ACCEPTING:
            self._ready()

    def _on_returned(self, sheet_id: int) -> None:
        ret = self._returning
        if ret is None or ret.sheet_id != sheet_id:
            self._unexpected(f"box reports sheet {sheet_id} returned; none was being returned")
            return
        self._returning = None
        log.info("asu: sheet %d returned: %s", sheet_id, ret.reason)
        self._emit(SheetReturned(sheet_id, ret.reason))
        if ret.recovery or self._pending is not None:
            self._check_sensors()
        elif self._state == AsuState.RETURNING:
            self._ready()

    # --- timeouts ----------------------------------------------------------------------

    def _on_timeout(self) -> None:
        state = self._state
        if state == AsuState.CHECKING_SENSORS:
            if self._status_asked and not self._no_status_reported:
                self._no_status_reported = True
                self._emit(
                    TransferFault("no_status", "the box does not answer: check cable and power")
                )
            self._status_asked = self._send(StatusRequestMsg())
            self._enter(AsuState.CHECKING_SENSORS, self.settings.status_timeout)
        elif state == AsuState.RECEIVING and self._transfer is not None:
            if self._transfer.missing():
                self._ask_again(self._transfer)
            else:
                self._complete(self._transfer)
        elif state in (AsuState.ACCEPTING, AsuState.RETURNING, AsuState.JAMMED):
            log.warning("asu: no confirmation while %s: checking the sensors", state.value)
            self._check_sensors()


def resolve_pending(
    record: PendingDrop, *, serial_number: str, drops_total: int, paper_in_path: bool
) -> DropConfirmed | DropNotHappened | DropUnknown:
    """The resolution rule for a pending accept, from the box's STATUS (serial number,
    non-volatile drop counter, paper in the path): see the module docstring."""
    if record.box_serial != serial_number:
        return DropUnknown(
            record.pending_id,
            f"sheet accepted on box {record.box_serial}, now box {serial_number}: "
            "the commission must check whether it fell",
        )
    if drops_total == record.drops_before + 1:
        return DropConfirmed(record.pending_id)
    if drops_total == record.drops_before:
        return DropNotHappened(record.pending_id, in_path=paper_in_path)
    return DropUnknown(
        record.pending_id,
        f"box drop counter is {drops_total}, expected "
        f"{record.drops_before} or {record.drops_before + 1}: the commission must check",
    )


def _with_drops(status: StatusMsg, drops_total: int) -> StatusMsg:
    return replace(status, drops_total=drops_total)
