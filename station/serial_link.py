"""The serial-port machinery shared by the station's device drivers.

`SerialLink` owns one device path: a reading thread, opening the device with
pyserial, reopening it with exponential backoff (through an injectable sleep
and clock), feeding the bytes read into a `FrameParser`, dropping a partial
frame after a silence, writing frames and closing.  A driver subclasses it
and keeps only its protocol and state machine, reached through the `_on_*`
hooks and `_tick`, all called on the link's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, Literal, Protocol, TypeVar

import serial

from devices.framing import Frame, FrameFault, FrameParser

__all__ = ["LinkFaultKind", "LinkSettings", "SerialLink"]

LinkFaultKind = Literal["crc", "garbage", "truncated", "bad_payload"]

_FRAME_FAULT_KIND: dict[str, LinkFaultKind] = {
    "crc": "crc",
    "garbage": "garbage",
    "length": "garbage",  # an impossible length is a false start byte in noise
    "truncated": "truncated",
}


class LinkSettings(Protocol):
    """The timings `SerialLink` needs; a driver's settings dataclass provides them."""

    @property
    def baudrate(self) -> int: ...
    @property
    def read_timeout(self) -> float: ...  # longest blocking read: bounds stop() and timeouts
    @property
    def write_timeout(self) -> float: ...
    @property
    def frame_timeout(self) -> float: ...  # silence after a partial frame before it is dropped
    @property
    def reconnect_initial(self) -> float: ...
    @property
    def reconnect_factor(self) -> float: ...
    @property
    def reconnect_max(self) -> float: ...


S = TypeVar("S", bound=LinkSettings)


class SerialLink(Generic[S]):
    """One serial device read on its own thread; subclasses override the hooks.

    `name` prefixes log lines and names the thread; `log` is the driver's logger.
    `sleep` (default: a wait that stop() interrupts) and `clock` (default
    time.monotonic) are injectable so tests control backoff without waiting.
    """

    # Stop handling the frames of one read once the port is gone (a hook closed it).
    _drop_frames_when_closed = False

    def __init__(
        self,
        path: str,
        settings: S,
        *,
        max_payload: int,
        name: str,
        thread_name: str,
        log: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.path = str(path)
        self.settings = settings
        self._name = name
        self._thread_name = thread_name
        self._log = log
        self._clock = clock
        self._stop = threading.Event()
        self._sleep = sleep or (lambda seconds: self._stop.wait(seconds) and None)
        self._parser = FrameParser(max_payload)
        self._port: serial.Serial | None = None
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # --- hooks -----------------------------------------------------------------------

    def _on_open_failed(self) -> None:
        """The device could not be opened (it is retried after a backoff)."""

    def _on_connected(self) -> None:
        """The device was opened and the parser reset."""

    def _on_frame(self, frame: Frame) -> None:
        """A well-framed message arrived."""

    def _on_fault(self, kind: LinkFaultKind, detail: str) -> None:
        """Something on the line was not a valid message, or a partial frame was lost."""

    def _on_disconnected(self) -> None:
        """A read failed: the device went away; the port is closed, the parser reset."""

    def _on_loop_error(self) -> None:
        """An unexpected exception escaped the loop; by default the port is closed."""
        self._close()

    def _on_closed(self) -> None:
        """The port was closed (by the link, a hook or stop())."""

    def _before_read(self) -> None:
        """Called before each read while connected."""

    def _tick(self, now: float) -> None:
        """Called after each read while connected, with the time it completed."""

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the driver's thread; the first open attempt happens there."""
        if self._thread is not None:
            raise RuntimeError("driver already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close the port; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._close()

    # --- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.settings.reconnect_initial
        last_rx = self._clock()
        while not self._stop.is_set():
            try:
                if self._port is None:
                    if self._open():
                        delay = self.settings.reconnect_initial
                        last_rx = self._clock()
                    else:
                        self._sleep(delay)
                        delay = min(
                            delay * self.settings.reconnect_factor, self.settings.reconnect_max
                        )
                    continue
                self._before_read()
                data = self._read()
                if data is None:
                    continue
                now = self._clock()
                if data:
                    last_rx = now
                    self._consume(self._parser.feed(data))
                elif self._parser.buffered and now - last_rx >= self.settings.frame_timeout:
                    self._consume(self._parser.flush())
                self._tick(now)
            except Exception:  # the driver must outlive any bug below it
                self._log.exception("%s: unexpected error in the driver loop", self._name)
                self._on_loop_error()
                self._sleep(delay)

    def _open(self) -> bool:
        try:
            port = serial.Serial(
                self.path,
                baudrate=self.settings.baudrate,
                timeout=self.settings.read_timeout,
                write_timeout=self.settings.write_timeout,
            )
        except (serial.SerialException, OSError, ValueError) as e:
            self._log.debug("%s: cannot open %s: %s", self._name, self.path, e)
            self._on_open_failed()
            return False
        with self._write_lock:
            self._port = port
        self._parser.reset()
        self._log.info("%s: opened %s", self._name, self.path)
        self._on_connected()
        return True

    def _read(self) -> bytes | None:
        """Bytes read (b"" on timeout), or None when the device went away."""
        port = self._port
        assert port is not None
        try:
            return bytes(port.read(port.in_waiting or 1))
        except (serial.SerialException, OSError, TypeError) as e:
            # pyserial raises TypeError from in_waiting's ioctl on a closed fd.
            self._log.warning("%s: %s lost: %s", self._name, self.path, e)
            self._drop_connection()
            self._on_disconnected()
            return None

    def _drop_connection(self) -> None:
        """Close the port and discard a partial frame, reporting it as truncated."""
        self._close()
        if self._parser.buffered:
            self._on_fault("truncated", "a partial frame was lost with the connection")
        self._parser.reset()

    def _close(self) -> None:
        with self._write_lock:
            port, self._port = self._port, None
        self._on_closed()
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as e:
                self._log.debug("%s: close failed: %s", self._name, e)

    def _write(self, data: bytes) -> bool:
        """Write one encoded frame; False if not connected or the write failed."""
        with self._write_lock:
            port = self._port
            if port is None:
                return False
            try:
                port.write(data)
                return True
            except (serial.SerialException, OSError) as e:
                # The reading thread notices the loss on its next read and reconnects.
                self._log.warning("%s: write to %s failed: %s", self._name, self.path, e)
                return False

    def _consume(self, items: list[Frame | FrameFault]) -> None:
        for item in items:
            if self._drop_frames_when_closed and self._port is None:
                return  # the connection went away while handling an earlier frame
            if isinstance(item, FrameFault):
                self._log.warning("%s: %s fault: %s", self._name, item.kind, item.detail)
                self._on_fault(_FRAME_FAULT_KIND[item.kind], item.detail)
                continue
            self._on_frame(item)

    def _bad_payload(self, msg_type: int, reason: str, detail: str) -> None:
        """Report a well-framed message whose payload does not decode."""
        text = f"message type {msg_type:#04x}: {reason}: {detail}"
        self._log.warning("%s: bad payload: %s", self._name, text)
        self._on_fault("bad_payload", text)
