"""The station's driver for the ID-card and biometric combo reader.

Opens the reader's serial device with pyserial, reads frames on its own thread
and hands typed events to one callback.  The serial line is untrusted: garbage,
CRC errors, cut frames and bad payloads become `ReaderFault` events and are
never acted on; a vanished device is reported, reopened with backoff and
asked for its status.  Nothing in here raises into the station.  Wire format:
docs/protocol-combo-reader.md (codec in `devices/`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from devices.combo_reader import (
    COMBO_MAX_PAYLOAD,
    Beep,
    Card,
    CardInsertedMsg,
    CardRemovedMsg,
    CardRequestMsg,
    ComboMessage,
    ErrorMsg,
    IndicateMsg,
    Led,
    PayloadError,
    ReaderState,
    StatusMsg,
    StatusRequestMsg,
    decode_message,
    encode_message,
)
from devices.framing import Frame
from election.pin import mask_pin
from station.serial_link import LinkFaultKind, SerialLink

__all__ = [
    "CardError",
    "CardInserted",
    "CardRemoved",
    "ComboReaderDriver",
    "DriverSettings",
    "FaultKind",
    "ReaderEvent",
    "ReaderFault",
    "ReaderStatus",
]

log = logging.getLogger(__name__)

FaultKind = Literal["crc", "garbage", "truncated", "bad_payload", "disconnected"]
StatusState = Literal["connected", "disconnected", "fault"]


@dataclass(frozen=True, slots=True)
class CardInserted:
    card: Card


@dataclass(frozen=True, slots=True)
class CardRemoved:
    pass


@dataclass(frozen=True, slots=True)
class CardError:
    """The reader saw a card but could not read it (code: an ErrorCode name, lower case)."""

    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class ReaderStatus:
    """Reader health for the operator's status line; `detail` says what to do or what it is."""

    state: StatusState
    detail: str
    firmware_version: str | None = None
    serial_number: str | None = None


@dataclass(frozen=True, slots=True)
class ReaderFault:
    """Something on the line was not a valid message and was ignored."""

    kind: FaultKind
    detail: str


ReaderEvent = CardInserted | CardRemoved | CardError | ReaderStatus | ReaderFault


@dataclass(frozen=True, slots=True)
class DriverSettings:
    """Timings of the driver; tests shrink them, the defaults suit a USB reader at 115200 baud."""

    baudrate: int = 115200
    # Longest a blocking read waits; bounds how fast stop() and timeouts react.
    read_timeout: float = 0.05
    # A reader that stops draining its input must not block the station's requests forever.
    write_timeout: float = 1.0
    # A partial frame followed by this much silence is dropped as "truncated".  A full
    # 1 KiB frame takes under 0.1 s at 115200 baud.
    frame_timeout: float = 0.5
    # Reopen attempts after the device vanished: first delay, growth, ceiling.
    reconnect_initial: float = 0.25
    reconnect_factor: float = 2.0
    reconnect_max: float = 5.0
    # No STATUS answer this long after opening: report the reader as faulty.
    status_timeout: float = 2.0
    max_payload: int = COMBO_MAX_PAYLOAD


class ComboReaderDriver(SerialLink[DriverSettings]):
    """Reads the combo reader at `path` and calls `on_event` (from the driver's thread).

    `sleep` (default: an interruptible wait) and `clock` (default time.monotonic)
    are injectable so tests control reconnect backoff without waiting.  An
    exception raised by `on_event` is logged and does not stop the driver.
    """

    def __init__(
        self,
        path: str,
        on_event: Callable[[ReaderEvent], None],
        *,
        settings: DriverSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        settings = settings or DriverSettings()
        super().__init__(
            path,
            settings,
            max_payload=settings.max_payload,
            name="combo reader",
            thread_name="combo-reader-driver",
            log=log,
            clock=clock,
            sleep=sleep,
        )
        self._on_event = on_event
        self._state: StatusState | None = None
        self._status_deadline: float | None = None

    @property
    def connected(self) -> bool:
        return self._port is not None

    # --- host -> reader --------------------------------------------------

    def request_status(self) -> bool:
        """Ask the reader for STATUS (answered as a ReaderStatus event); False if not sent."""
        return self._send(StatusRequestMsg())

    def request_card(self) -> bool:
        """Ask the reader to resend the card state, e.g. after a fault hid a card event."""
        return self._send(CardRequestMsg())

    def indicate(self, led: Led, beep: Beep = Beep.NONE) -> bool:
        """Show an outcome on the reader's LED and beeper; False if not sent."""
        return self._send(IndicateMsg(led, beep))

    def _send(self, msg: ComboMessage) -> bool:
        return self._write(encode_message(msg).encode())

    # --- link hooks (the driver's thread) --------------------------------

    def _on_open_failed(self) -> None:
        if self._state != "disconnected":
            self._set_state("disconnected", f"reader not found at {self.path}: plug it in")

    def _on_connected(self) -> None:
        self._status_deadline = self._clock() + self.settings.status_timeout
        self.request_status()

    def _on_disconnected(self) -> None:
        self._emit(ReaderFault("disconnected", f"reader at {self.path} stopped responding"))
        self._set_state("disconnected", "reader disconnected: check its cable")

    def _on_closed(self) -> None:
        self._status_deadline = None

    def _on_fault(self, kind: LinkFaultKind, detail: str) -> None:
        self._emit(ReaderFault(kind, detail))

    def _tick(self, now: float) -> None:
        if self._status_deadline is not None and now >= self._status_deadline:
            self._status_deadline = None
            self._set_state(
                "fault",
                "reader does not answer status requests: check the cable, "
                "then unplug and plug the reader back in",
            )

    def _on_frame(self, frame: Frame) -> None:
        msg = decode_message(frame)
        if isinstance(msg, PayloadError):
            self._bad_payload(msg.msg_type, msg.reason, msg.detail)
            return
        self._dispatch(msg)

    def _dispatch(self, msg: ComboMessage) -> None:
        match msg:
            case CardInsertedMsg(card=card):
                log.info("combo reader: card inserted, PIN %s", mask_pin(card.pin))
                self._emit(CardInserted(card))
            case CardRemovedMsg():
                log.info("combo reader: card removed")
                self._emit(CardRemoved())
            case ErrorMsg(code=code, detail=detail):
                log.info("combo reader: card error %s %s", code.name, detail)
                self._emit(CardError(code.name.lower(), detail))
            case StatusMsg():
                self._status_deadline = None
                if msg.state == ReaderState.OK:
                    state: StatusState = "connected"
                    detail = f"reader {msg.serial_number} ready (firmware {msg.firmware_version})"
                else:
                    state = "fault"
                    detail = f"reader fault {msg.state.name.lower()}" + (
                        f": {msg.detail}" if msg.detail else ""
                    )
                self._set_state(state, detail, msg.firmware_version, msg.serial_number, force=True)
            case _:
                detail = f"reader sent a host-to-reader message {type(msg).__name__}"
                log.warning("combo reader: %s", detail)
                self._emit(ReaderFault("bad_payload", detail))

    def _set_state(
        self,
        state: StatusState,
        detail: str,
        firmware: str | None = None,
        serial_number: str | None = None,
        *,
        force: bool = False,
    ) -> None:
        """Report a status change; repeats are suppressed unless the reader itself answered."""
        if state == self._state and not force:
            return
        self._state = state
        log.log(
            logging.INFO if state == "connected" else logging.WARNING,
            "combo reader: %s: %s",
            state,
            detail,
        )
        self._emit(ReaderStatus(state, detail, firmware, serial_number))

    def _emit(self, event: ReaderEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            log.exception("combo reader: event handler failed on %s", type(event).__name__)
