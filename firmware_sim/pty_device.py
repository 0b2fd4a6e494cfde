"""The machinery every simulated serial device shares: a real pty, a stable link, one thread.

The device owns the master end of a pty and publishes the slave end under a
stable symlink (e.g. /run/shailoo/ttyASU -> /dev/pts/7), so the station's
driver opens it with pyserial exactly as it would open /dev/ttyUSB0, and
`unplug()` / `plug()` make the device vanish and come back the way a USB cable
does.  All pty descriptors belong to the device's own thread; public methods
queue a command to it and wait until it has run, so "unplug() returned" means
the device is gone.  Subclasses speak their protocol in `_on_frame`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import queue
import select
import threading
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from devices.framing import Frame, FrameFault, FrameParser

__all__ = ["PtyDevice"]

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


class PtyDevice:
    """A simulated device on a pty.  Subclasses implement `_on_frame` (and may use the hooks)."""

    kind = "device"  # for thread names and logs

    def __init__(self, link_path: str | os.PathLike[str], *, max_payload: int) -> None:
        self.link_path = Path(link_path)
        self._master: int | None = None
        self._slave: int | None = None
        self._device_path: str | None = None
        self._parser = FrameParser(max_payload)
        self._commands: queue.Queue[_Command] = queue.Queue()
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._lock = threading.Lock()
        self._host_errors = 0

    # --- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Start the device's thread and plug the device in."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name=f"{self.kind}-sim:{self.link_path.name}", daemon=True
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

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- cable -----------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (garbage, corrupted or half frames, for tests)."""
        self._call(lambda: self._write(bytes(data)))

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
    def host_errors(self) -> int:
        """Bad frames or payloads received from the host."""
        with self._lock:
            return self._host_errors

    # --- for subclasses --------------------------------------------------

    def _on_frame(self, frame: Frame) -> None:
        """A good frame from the host (runs on the device thread)."""
        raise NotImplementedError

    def _on_plugged(self) -> None:
        """Hook: the device was just plugged in (runs on the device thread)."""

    def _count_host_error(self, why: str) -> None:
        log.warning("sim %s: %s", self.kind, why)
        with self._lock:
            self._host_errors += 1

    def _write(self, data: bytes) -> None:
        """Send bytes to the host; lost (as on a real line) when unplugged or not drained."""
        if self._master is None:
            log.info("sim %s: unplugged, %d bytes not sent", self.kind, len(data))
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                _, writable, _ = select.select([], [self._master], [], _WRITE_STALL_S)
                if not writable:
                    log.warning("sim %s: host is not reading; %d bytes lost", self.kind, len(view))
                    return
                continue
            view = view[n:]

    def _call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the device thread and return its result (raises what it raised)."""
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

    # --- the thread ------------------------------------------------------

    def _run(self) -> None:
        assert self._wake_r is not None
        while not self._stopping:
            watch = [self._wake_r] + ([self._master] if self._master is not None else [])
            try:
                ready, _, _ = select.select(watch, [], [])
            except OSError as e:  # an fd closed under us would be a bug; keep serving
                log.error("sim %s: select failed: %s", self.kind, e)
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
        log.info("sim %s: plugged in at %s -> %s", self.kind, self.link_path, self._device_path)
        self._on_plugged()

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
        log.info("sim %s: unplugged from %s", self.kind, self.link_path)

    def _receive(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 65536)
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
                self._on_frame(item)
