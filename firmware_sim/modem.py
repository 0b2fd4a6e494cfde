"""A simulated modem link: a TCP proxy between the station and the broker that tests can break.

The station connects to `Modem.port` on 127.0.0.1 instead of the broker; the
modem forwards bytes both ways.  A test can cut the link (open connections
are reset and new ones refused, as when the 3G signal goes), restore it, add
latency, or make the next connection drop in the middle of a packet (after
a given number of bytes in one direction), which is how a real modem loses
a TLS record halfway.  Everything runs on daemon-free threads that `stop()`
joins, so a test leaks nothing.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

Direction = Literal["up", "down"]
_CHUNK = 65536
# How often an idle thread looks whether it should stop.  Closing a link shuts its sockets
# down, which wakes a thread blocked on them at once, so this is only a backstop: at 0.05 s
# the 811 modems of a 2,500-station day were ~50,000 wake-ups a second fighting for the GIL.
_TICK = 1.0


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees the link die, not a polite FIN.  The
    read side is shut down first so that a thread blocked reading it wakes up now."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


@dataclass
class ModemStats:
    connections: int = 0
    refused: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    dropped_mid_packet: int = 0


class _Link:
    """One station connection and its broker connection, pumped by two threads."""

    def __init__(self, modem: Modem, client: socket.socket, server: socket.socket) -> None:
        self.modem = modem
        self.client = client
        self.server = server
        self.closed = threading.Event()
        self.threads = [
            threading.Thread(target=self._pump, args=(client, server, "up"), name="modem-up"),
            threading.Thread(target=self._pump, args=(server, client, "down"), name="modem-down"),
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            _reset(self.client)
            _reset(self.server)

    def _pump(self, src: socket.socket, dst: socket.socket, direction: Direction) -> None:
        try:
            src.settimeout(_TICK)
            while not self.closed.is_set():
                try:
                    data = src.recv(_CHUNK)
                except TimeoutError:
                    continue
                if not data:
                    break
                latency = self.modem.latency
                if latency:
                    time.sleep(latency)
                data, drop = self.modem._budget(direction, data)
                if data:
                    dst.sendall(data)
                    self.modem._count(direction, len(data))
                if drop:
                    break
        except OSError:
            pass
        finally:
            self.close()


class Modem:
    """TCP proxy 127.0.0.1:port -> target; `cut()`, `restore()`, `slow()`, `drop_after()`."""

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.latency = 0.0
        self.stats = ModemStats()
        self._up = True
        self._lock = threading.Lock()
        self._links: list[_Link] = []  # open connections (cut() resets them)
        self._all: list[_Link] = []  # every connection whose threads may still run
        self._drop: dict[Direction, int | None] = {"up": None, "down": None}
        self._stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(64)
        self._listener.settimeout(_TICK)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name="modem-accept")

    # --- control, from tests ---------------------------------------------------------------
    def start(self) -> Modem:
        self._acceptor.start()
        return self

    def cut(self) -> None:
        """The link goes down: reset every open connection and refuse new ones."""
        with self._lock:
            self._up = False
            links, self._links = self._links, []
        for link in links:
            link.close()

    def restore(self) -> None:
        """The link is back: new connections are forwarded again."""
        with self._lock:
            self._up = True

    @property
    def is_up(self) -> bool:
        return self._up

    def slow(self, latency: float) -> None:
        """Delay every forwarded chunk by `latency` seconds (0 for a clean link)."""
        self.latency = latency

    def drop_after(self, n_bytes: int, direction: Direction = "up") -> None:
        """Forward `n_bytes` more in `direction`, then cut that connection mid-stream.

        With n_bytes inside a packet, the broker (up) or station (down) receives a
        truncated packet, and then the connection dies.  One-shot.
        """
        with self._lock:
            self._drop[direction] = n_bytes

    def stop(self) -> None:
        """Close everything and join every thread."""
        self._stopping.set()
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the acceptor at once
        if self._acceptor.is_alive():
            self._acceptor.join()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            links = list(self._all)
        for link in links:
            link.close()
            for t in link.threads:
                if t.is_alive():
                    t.join()

    def __enter__(self) -> Modem:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- internals -----------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._up:
                self.stats.refused += 1
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=2)
            except OSError:
                self.stats.refused += 1
                _reset(client)
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, server)
            with self._lock:
                self._links = [x for x in self._links if not x.closed.is_set()]
                self._links.append(link)
                self._all = [x for x in self._all if any(t.is_alive() for t in x.threads)]
                self._all.append(link)
                self.stats.connections += 1
            link.start()

    def _budget(self, direction: Direction, data: bytes) -> tuple[bytes, bool]:
        with self._lock:
            left = self._drop[direction]
            if left is None or left >= len(data):
                if left is not None:
                    self._drop[direction] = left - len(data)
                return data, False
            self._drop[direction] = None
            self.stats.dropped_mid_packet += 1
            return data[:left], True

    def _count(self, direction: Direction, n: int) -> None:
        with self._lock:
            if direction == "up":
                self.stats.bytes_up += n
            else:
                self.stats.bytes_down += n
