"""A simulated automatic ballot box (ASU) on a real pseudo-terminal.

It speaks `devices.asu` frames over the pty machinery of
`firmware_sim.pty_device` (stable symlink, unplug/plug, one thread).  Tests
`feed()` sheets (image bytes plus a ground truth the box keeps) and inject
faults; the simulator keeps the physical truth of every sheet exactly: waiting
at the slot, in the path, in the box (`dropped`) or given back (`returned`),
so a test can check that no sheet was counted twice or lost, whatever the
host did.

Behaviour the station may rely on (the same as the reference firmware):
- It powers up with feeding disabled; it takes a sheet only when enabled,
  with an empty path, the cover closed, not jammed and not full.  Any alarm
  (jam, double feed, cover open, box full) disables feeding: the host enables
  it again once it has checked the sensors, so nothing moves behind its back;
  ENABLE is ignored while an alarm is active or paper is in the path.
- ACCEPT is acted on only for the sheet awaiting a decision while the box is
  ready; otherwise it is ignored, never remembered for later.
- The non-volatile drop counter is incremented by the drop sensor before
  SHEET_DROPPED is sent, so it survives a power cut between the two.
- A power cut keeps the paper where it is; at power-up a sheet found in the
  path gets a new sheet id and is reported with SENSOR PAPER_IN_PATH.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, get_args

from devices.asu import (
    ASU_MAX_PAYLOAD,
    MAX_CHUNK_DATA,
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
    chunk_image,
    decode_message,
    encode_message,
    image_crc32,
)
from devices.framing import Frame
from firmware_sim.pty_device import PtyDevice

__all__ = ["AsuSim", "JamPoint", "PowerCutPoint"]

log = logging.getLogger(__name__)

PowerCutPoint = Literal[
    "after_inserted",  # SHEET_INSERTED sent, no chunk yet
    "after_image_done",  # whole image sent, sheet waits for a decision
    "after_accept",  # ACCEPT received, sheet not dropped yet
    "after_drop",  # sheet fell and was counted by the box, SHEET_DROPPED not sent
    "after_return_command",  # RETURN/CLEAR_PATH received, sheet not moved yet
    "after_returned",  # sheet given back, SHEET_RETURNED not sent
]
POWER_CUT_POINTS: tuple[str, ...] = get_args(PowerCutPoint)
JamPoint = Literal["scan", "drop"]


@dataclass
class _Sheet:
    image: bytes
    truth: Any


class AsuSim(PtyDevice):
    """One simulated ballot box; see the module docstring for what it guarantees."""

    kind = "asu"

    def __init__(
        self,
        link_path: str | os.PathLike[str],
        *,
        firmware_version: str = "ASU-SIM 1.0.0",
        serial_number: str = "ASU-000001",
        chunk_size: int = 4000,
        image_format: ImageFormat = ImageFormat.PNG,
        drops_total: int = 0,
    ) -> None:
        super().__init__(link_path, max_payload=ASU_MAX_PAYLOAD)
        if not 1 <= chunk_size <= MAX_CHUNK_DATA:
            raise ValueError(f"chunk size must be 1..{MAX_CHUNK_DATA}")
        self.firmware_version = firmware_version
        self.serial_number = serial_number
        self.chunk_size = chunk_size
        self.image_format = image_format
        # physical truth
        self._waiting: deque[_Sheet] = deque()
        self._path: list[_Sheet] = []
        self._dropped: list[Any] = []
        self._returned: list[Any] = []
        self._drops_total = drops_total  # non-volatile
        self._jammed = False
        self._cover_open = False
        self._full = False
        # volatile (lost at power loss)
        self._feeding = False
        self._next_id = 1
        self._drops_since = 0
        self._path_id = 0
        self._chunks: list[bytes] = []
        self._awaiting = False
        self._double = False
        # armed faults
        self._corrupt_chunks = 0
        self._drop_chunks = 0
        self._drop_done = 0
        self._jam_at: JamPoint | None = None
        self._double_next = False
        self._cut_at: PowerCutPoint | None = None
        self._power_cycles = 0
        self._restart = True
        self._received: list[AsuMessage] = []

    # --- what voters, operators and tests do ---------------------------------

    def feed(self, image: bytes, truth: Any) -> None:
        """A voter puts a sheet in the slot; the box takes it when it can."""

        def go() -> None:
            self._waiting.append(_Sheet(bytes(image), truth))
            self._maybe_take()

        self._call(go)

    def corrupt_next_chunk(self, times: int = 1) -> None:
        """Flip a byte in the next `times` chunk frames sent (resends included)."""
        self._call(lambda: setattr(self, "_corrupt_chunks", self._corrupt_chunks + times))

    def drop_next_chunk(self, times: int = 1) -> None:
        """Do not send the next `times` chunk frames at all (resends included)."""
        self._call(lambda: setattr(self, "_drop_chunks", self._drop_chunks + times))

    def drop_next_image_done(self) -> None:
        """Do not send the next IMAGE_DONE (the host must notice by its chunk timeout)."""
        self._call(lambda: setattr(self, "_drop_done", self._drop_done + 1))

    def jam_next(self, at: JamPoint = "scan") -> None:
        """The next sheet jams: half-way through the scan, or on its way into the box."""
        self._call(lambda: setattr(self, "_jam_at", at))

    def double_feed_next(self) -> None:
        """The next intake pulls two sheets at once (if two are waiting)."""
        self._call(lambda: setattr(self, "_double_next", True))

    def open_cover(self) -> None:
        """The operator opens the cover: the box stops moving paper."""

        def go() -> None:
            self._cover_open = True
            self._feeding = False
            self._send(SensorMsg(Sensor.COVER_OPEN, self._path_id))

        self._call(go)

    def close_cover(self) -> None:
        def go() -> None:
            self._cover_open = False
            self._send(SensorMsg(Sensor.COVER_CLOSED, self._path_id))
            self._maybe_take()

        self._call(go)

    def box_full(self) -> None:
        """The container's full sensor fires: no more drops."""

        def go() -> None:
            self._full = True
            self._feeding = False
            self._send(SensorMsg(Sensor.BOX_FULL, self._path_id))

        self._call(go)

    def empty_box(self) -> None:
        """The commission replaces the full container (its sheets stay in `dropped`)."""

        def go() -> None:
            self._full = False
            self._send(SensorMsg(Sensor.BOX_EMPTIED, self._path_id))
            self._maybe_take()

        self._call(go)

    def power_cut(self, at: PowerCutPoint | None = None, *, restart: bool = True) -> None:
        """Cut the power now (at=None) or when the box next reaches point `at`.  The box
        restarts at once, or, with restart=False, when `power_on()` is called."""
        if at is not None and at not in POWER_CUT_POINTS:
            raise ValueError(f"unknown power cut point {at!r}; known: {POWER_CUT_POINTS}")

        def go() -> None:
            self._restart = restart
            if at is None:
                self._power_cycle()
            else:
                self._cut_at = at

        self._call(go)

    def power_on(self) -> None:
        """Power comes back after `power_cut(restart=False)`."""
        self._call(self._plug)

    # --- the truth ---------------------------------------------------------------

    @property
    def dropped(self) -> list[Any]:
        """Truths of the sheets that fell into the box, in order."""
        return self._call(lambda: list(self._dropped))

    @property
    def returned(self) -> list[Any]:
        """Truths of the sheets given back to the voter, in order."""
        return self._call(lambda: list(self._returned))

    @property
    def in_path(self) -> list[Any]:
        return self._call(lambda: [s.truth for s in self._path])

    @property
    def waiting(self) -> list[Any]:
        """Sheets fed but not taken yet (feeding disabled, or the box busy)."""
        return self._call(lambda: [s.truth for s in self._waiting])

    @property
    def drops_total(self) -> int:
        return self._call(lambda: self._drops_total)

    @property
    def feeding_enabled(self) -> bool:
        return self._call(lambda: self._feeding)

    @property
    def power_cycles(self) -> int:
        return self._call(lambda: self._power_cycles)

    @property
    def received(self) -> list[AsuMessage]:
        """Every valid message the host sent, oldest first (a copy)."""
        with self._lock:
            return list(self._received)

    # --- the box (device thread) ------------------------------------------------

    def _send(self, msg: AsuMessage) -> None:
        self._write(encode_message(msg).encode())

    def _cut(self, point: PowerCutPoint) -> bool:
        """Cut the power here if a test armed this point; True when it did."""
        if self._cut_at != point:
            return False
        self._cut_at = None
        log.info("sim asu: power cut at %s", point)
        self._power_cycle()
        return True

    def _power_cycle(self) -> None:
        self._unplug()
        self._power_cycles += 1
        self._feeding = False
        self._next_id = 1
        self._drops_since = 0
        self._chunks = []
        self._awaiting = False
        self._double = False
        self._path_id = 0
        if self._path:  # the paper is still there; the box sees it at power-up
            self._path_id = self._new_id()
        if self._restart:
            self._plug()

    def _on_plugged(self) -> None:
        if self._path:
            self._send(SensorMsg(Sensor.PAPER_IN_PATH, self._path_id))

    def _new_id(self) -> int:
        sheet_id = self._next_id
        self._next_id += 1
        return sheet_id

    def _maybe_take(self) -> None:
        if self._master is None or not self._feeding or self._path or not self._waiting:
            return
        if self._jammed or self._cover_open or self._full:
            return
        self._path_id = self._new_id()
        if self._double_next and len(self._waiting) >= 2:
            self._double_next = False
            self._path = [self._waiting.popleft(), self._waiting.popleft()]
            self._double = True
            self._feeding = False
            self._send(SensorMsg(Sensor.DOUBLE_FEED, self._path_id))
            return
        sheet = self._waiting.popleft()
        self._path = [sheet]
        self._chunks = chunk_image(sheet.image, self.chunk_size)
        self._send(
            SheetInsertedMsg(
                self._path_id,
                len(sheet.image),
                len(self._chunks),
                self.image_format,
                image_crc32(sheet.image),
            )
        )
        if self._cut("after_inserted"):
            return
        jam = self._jam_at == "scan"
        last = len(self._chunks) // 2 if jam else len(self._chunks)
        for i in range(last):
            self._send_chunk(i)
        if jam:
            self._jam_at = None
            self._jam()
            return
        if self._drop_done:
            self._drop_done -= 1
        else:
            self._send(ImageDoneMsg(self._path_id))
        self._awaiting = True
        self._cut("after_image_done")

    def _jam(self) -> None:
        self._jammed = True
        self._feeding = False
        self._awaiting = False
        self._send(SensorMsg(Sensor.JAM, self._path_id))

    def _send_chunk(self, index: int) -> None:
        if self._drop_chunks:
            self._drop_chunks -= 1
            log.info("sim asu: chunk %d of sheet %d lost", index, self._path_id)
            return
        wire = bytearray(
            encode_message(ImageChunkMsg(self._path_id, index, self._chunks[index])).encode()
        )
        if self._corrupt_chunks:
            self._corrupt_chunks -= 1
            wire[len(wire) // 2] ^= 0x10  # a payload byte: only the CRC can tell
        self._write(bytes(wire))

    def _on_frame(self, frame: Frame) -> None:
        msg = decode_message(frame)
        if isinstance(msg, PayloadError):
            self._count_host_error(f"bad payload from host: {msg.reason}: {msg.detail}")
            return
        with self._lock:
            self._received.append(msg)
        match msg:
            case StatusRequestMsg():
                self._send(self._status())
            case ResendChunkMsg(sheet_id=sid, index=i):
                if sid == self._path_id and self._chunks and i < len(self._chunks):
                    self._send_chunk(i)
                else:
                    log.info("sim asu: RESEND_CHUNK %d/%d for no such chunk ignored", sid, i)
            case AcceptMsg(sheet_id=sid):
                self._accept(sid)
            case ReturnMsg(sheet_id=sid):
                if sid == self._path_id and self._path:
                    self._give_back()
                else:
                    log.info("sim asu: RETURN for sheet %d not in the path ignored", sid)
            case ClearPathMsg():
                if self._path:
                    self._give_back()
            case EnableMsg():
                if self._cover_open or self._jammed or self._full or self._path:
                    log.info("sim asu: ENABLE ignored while an alarm or paper is pending")
                    return
                self._feeding = True
                self._maybe_take()
            case DisableMsg():
                self._feeding = False
            case _:
                self._count_host_error(f"host sent a box-to-host message {type(msg).__name__}")

    def _accept(self, sheet_id: int) -> None:
        ready = not (self._jammed or self._cover_open or self._full or self._double)
        if sheet_id != self._path_id or not self._awaiting or not ready:
            log.info("sim asu: ACCEPT for sheet %d ignored: not awaiting, or not ready", sheet_id)
            return
        if self._cut("after_accept"):
            return
        if self._jam_at == "drop":
            self._jam_at = None
            self._jam()
            return
        sheet_id = self._path_id
        self._dropped.extend(s.truth for s in self._path)
        self._path, self._chunks, self._awaiting, self._path_id = [], [], False, 0
        self._drops_total += 1  # the drop sensor writes the non-volatile counter first
        self._drops_since += 1
        if self._cut("after_drop"):
            return
        self._send(SheetDroppedMsg(sheet_id, self._drops_total))
        self._maybe_take()

    def _give_back(self) -> None:
        if self._cover_open:
            log.info("sim asu: cover open, paper not moved")
            return
        if self._cut("after_return_command"):
            return
        sheet_id = self._path_id
        self._returned.extend(s.truth for s in self._path)
        self._path, self._chunks, self._awaiting, self._path_id = [], [], False, 0
        self._jammed = self._double = False
        if self._cut("after_returned"):
            return
        self._send(SheetReturnedMsg(sheet_id))
        self._maybe_take()

    def _status(self) -> StatusMsg:
        if self._cover_open:
            state = BoxState.COVER_OPEN
        elif self._jammed:
            state = BoxState.JAMMED
        elif self._path:
            state = BoxState.AWAITING_DECISION
        elif self._full:
            state = BoxState.BOX_FULL
        else:
            state = BoxState.READY
        return StatusMsg(
            state=state,
            feeding_enabled=self._feeding,
            paper_in_path=bool(self._path),
            jammed=self._jammed,
            cover_open=self._cover_open,
            box_full=self._full,
            sheet_in_path=self._path_id if self._path else 0,
            drops_since_power_up=self._drops_since,
            drops_total=self._drops_total,
            firmware_version=self.firmware_version,
            serial_number=self.serial_number,
        )
