"""A simulated ID-card and biometric combo reader on a real pseudo-terminal.

The simulator owns the master end of a pty and publishes the slave end under a
stable symlink (e.g. /run/shailoo/ttyREADER -> /dev/pts/7), so the station's
driver opens it with pyserial exactly as it would open /dev/ttyUSB0, and
`unplug()` / `plug()` make the device vanish and come back the way a USB cable
does.  It speaks `devices.combo_reader` frames and answers the host's
requests.  Tests drive it through the methods; demos run it as a process:

    python -m firmware_sim.combo_reader /tmp/ttyREADER --cards cards.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import queue
import select
import signal
import threading
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from devices.combo_reader import (
    COMBO_MAX_PAYLOAD,
    Card,
    CardInsertedMsg,
    CardRemovedMsg,
    CardRequestMsg,
    ComboMessage,
    ErrorCode,
    ErrorMsg,
    IndicateMsg,
    PayloadError,
    ReaderState,
    StatusMsg,
    StatusRequestMsg,
    decode_message,
    encode_message,
)
from devices.framing import Frame, FrameFault, FrameParser
from election.pin import mask_pin

__all__ = ["ComboReaderSim", "card_from_json", "main"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_WRITE_STALL_S = 0.5  # a host that reads nothing for this long loses bytes, like a UART overrun
_CALL_TIMEOUT_S = 5.0


@dataclass
class _Command:
    fn: Callable[[], Any]
    done: threading.Event
    result: Any = None
    error: BaseException | None = None


class ComboReaderSim:
    """One simulated reader.  All pty file descriptors belong to its own thread.

    Public methods queue a command to that thread and wait until it has run,
    so "unplug() returned" means the device is gone.
    """

    def __init__(
        self,
        link_path: str | os.PathLike[str],
        *,
        firmware_version: str = "CR-SIM 1.0.0",
        serial_number: str = "SIM-000001",
    ) -> None:
        self.link_path = Path(link_path)
        self.firmware_version = firmware_version
        self.serial_number = serial_number
        self._state = ReaderState.OK
        self._state_detail = ""
        self._card: Card | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._device_path: str | None = None
        self._parser = FrameParser(COMBO_MAX_PAYLOAD)
        self._commands: queue.Queue[_Command] = queue.Queue()
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._lock = threading.Lock()
        self._received: list[ComboMessage] = []
        self._host_errors = 0

    # --- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Start the reader's thread and plug the device in."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name=f"combo-reader-sim:{self.link_path.name}", daemon=True
        )
        self._thread.start()
        self.plug()

    def stop(self) -> None:
        """Unplug, stop the thread and close every descriptor; safe to call twice."""
        if self._thread is None:
            return
        self._call(self._shutdown)
        self._thread.join(_CALL_TIMEOUT_S)
        self._thread = None
        for fd in (self._wake_r, self._wake_w):
            if fd is not None:
                os.close(fd)
        self._wake_r = self._wake_w = None

    def __enter__(self) -> ComboReaderSim:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what a person or a test does to the reader ----------------------

    def insert_card(self, card: Card) -> None:
        """A voter puts a card in: the reader sends CARD_INSERTED."""

        def go() -> None:
            self._card = card
            log.info("sim: card inserted, PIN %s", mask_pin(card.pin))
            self._send(CardInsertedMsg(card))

        self._call(go)

    def remove_card(self) -> None:
        """The card is taken out: the reader sends CARD_REMOVED."""

        def go() -> None:
            self._card = None
            self._send(CardRemovedMsg())

        self._call(go)

    def card_error(self, code: ErrorCode, detail: str = "") -> None:
        """A card the reader could not read: the reader sends ERROR."""
        self._call(lambda: self._send(ErrorMsg(code, detail)))

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (garbage, corrupted or half frames, for tests)."""
        self._call(lambda: self._write(bytes(data)))

    def set_state(self, state: ReaderState, detail: str = "") -> None:
        """What the next STATUS reports (e.g. a failed biometric sensor)."""

        def go() -> None:
            self._state, self._state_detail = state, detail

        self._call(go)

    def unplug(self) -> None:
        """Pull the cable: close the pty and remove the link, so the host's reads fail."""
        self._call(self._unplug)

    def plug(self) -> None:
        """Plug the cable back in: a new pty, the link pointing to its slave."""
        self._call(self._plug)

    @property
    def plugged(self) -> bool:
        return self._master is not None

    @property
    def device_path(self) -> str | None:
        """The current /dev/pts/N behind the link, None when unplugged."""
        return self._device_path

    @property
    def received(self) -> list[ComboMessage]:
        """Every valid message the host sent, oldest first (a copy)."""
        with self._lock:
            return list(self._received)

    @property
    def host_errors(self) -> int:
        """Bad frames or payloads received from the host."""
        with self._lock:
            return self._host_errors

    # --- the thread ------------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        if self._thread is None or self._wake_w is None:
            raise RuntimeError("simulator not started")
        if threading.current_thread() is self._thread:
            return fn()
        cmd = _Command(fn, threading.Event())
        self._commands.put(cmd)
        os.write(self._wake_w, b"x")
        if not cmd.done.wait(_CALL_TIMEOUT_S):
            raise TimeoutError("simulator thread did not answer")
        if cmd.error is not None:
            raise cmd.error
        result: T = cmd.result
        return result

    def _run(self) -> None:
        assert self._wake_r is not None
        while not self._stopping:
            watch = [self._wake_r] + ([self._master] if self._master is not None else [])
            try:
                ready, _, _ = select.select(watch, [], [])
            except OSError as e:  # an fd closed under us would be a bug; keep serving
                log.error("sim: select failed: %s", e)
                continue
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
                self._run_commands()
            if self._master is not None and self._master in ready:
                self._receive()

    def _run_commands(self) -> None:
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                cmd.result = cmd.fn()
            except BaseException as e:  # handed back to the caller's thread
                cmd.error = e
            cmd.done.set()

    def _shutdown(self) -> None:
        self._unplug()
        self._stopping = True

    def _plug(self) -> None:
        if self._master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation: binary frames pass untouched
        fcntl.fcntl(master, fcntl.F_SETFL, fcntl.fcntl(master, fcntl.F_GETFL) | os.O_NONBLOCK)
        self._master, self._slave = master, slave
        self._device_path = os.ttyname(slave)
        self._parser.reset()
        tmp = self.link_path.with_name(self.link_path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(self._device_path, tmp)
        os.replace(tmp, self.link_path)  # atomic: the link is never half-written
        log.info("sim: reader plugged in at %s -> %s", self.link_path, self._device_path)

    def _unplug(self) -> None:
        if self._master is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.link_path.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        self._device_path = None
        log.info("sim: reader unplugged from %s", self.link_path)

    def _receive(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno == errno.EIO:  # no one holds the slave; cannot happen while we hold it
                return
            raise
        for item in self._parser.feed(data):
            if isinstance(item, FrameFault):
                self._count_host_error(f"frame fault from host: {item.detail}")
            else:
                self._handle(item)

    def _handle(self, frame: Frame) -> None:
        msg = decode_message(frame)
        if isinstance(msg, PayloadError):
            self._count_host_error(f"bad payload from host: {msg.reason}: {msg.detail}")
            return
        with self._lock:
            self._received.append(msg)
        match msg:
            case StatusRequestMsg():
                self._send(
                    StatusMsg(
                        state=self._state,
                        firmware_version=self.firmware_version,
                        serial_number=self.serial_number,
                        card_present=self._card is not None,
                        detail=self._state_detail,
                    )
                )
            case CardRequestMsg():
                self._send(CardInsertedMsg(self._card) if self._card else CardRemovedMsg())
            case IndicateMsg(led=led, beep=beep):
                log.info("sim: LED %s, beep %s", led.name, beep.name)
            case _:
                self._count_host_error(f"host sent a reader-to-host message {type(msg).__name__}")

    def _count_host_error(self, why: str) -> None:
        log.warning("sim: %s", why)
        with self._lock:
            self._host_errors += 1

    def _send(self, msg: ComboMessage) -> None:
        self._write(encode_message(msg).encode())

    def _write(self, data: bytes) -> None:
        if self._master is None:
            log.info("sim: unplugged, %d bytes not sent", len(data))
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                _, writable, _ = select.select([], [self._master], [], _WRITE_STALL_S)
                if not writable:
                    log.warning("sim: host is not reading; %d bytes lost", len(view))
                    return
                continue
            view = view[n:]


# --- standalone process -------------------------------------------------------


def card_from_json(obj: dict[str, Any]) -> Card:
    """A card from a script entry: pin, document_number, last_name, first_name,
    patronymic (optional), birth_date (YYYY-MM-DD)."""
    return Card(
        pin=str(obj["pin"]),
        document_number=str(obj["document_number"]),
        last_name=str(obj["last_name"]),
        first_name=str(obj["first_name"]),
        patronymic=str(obj.get("patronymic", "")),
        birth_date=dt.date.fromisoformat(str(obj["birth_date"])),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run a reader on LINK, insert each scripted card in turn, then serve until SIGTERM/SIGINT."""
    ap = argparse.ArgumentParser(prog="combo-reader-sim", description=main.__doc__)
    ap.add_argument("link", type=Path, help="symlink to create for the device, e.g. /tmp/ttyREADER")
    ap.add_argument("--cards", type=Path, help="JSON list of cards to insert in order")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between cards")
    ap.add_argument("--hold", type=float, default=2.0, help="seconds each card stays inserted")
    ap.add_argument("--serial-number", default="SIM-000001")
    ap.add_argument("--exit-when-done", action="store_true", help="stop after the last card")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    cards: list[Card] = []
    if args.cards is not None:
        try:
            cards = [card_from_json(o) for o in json.loads(args.cards.read_text("utf-8"))]
            for c in cards:
                encode_message(CardInsertedMsg(c))  # refuse a script the reader could not send
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"combo-reader-sim: bad card script {args.cards}: {e}")
            return 2

    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with ComboReaderSim(args.link, serial_number=args.serial_number) as sim:
        print(f"combo reader at {args.link} -> {sim.device_path}", flush=True)
        for card in cards:
            if done.wait(args.interval):
                break
            sim.insert_card(card)
            if done.wait(args.hold):
                break
            sim.remove_card()
        if not args.exit_when_done:
            done.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
