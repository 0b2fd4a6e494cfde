"""The simulated modem forwards bytes both ways and breaks the link exactly as a test asks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from firmware_sim.modem import Modem


@dataclass
class Echo:
    port: int
    received: list[bytearray]  # what the far end got, one entry per connection


@pytest.fixture
def echo() -> Iterator[Echo]:
    """A TCP echo server on a free port, stopped after the test."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.05)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    result = Echo(srv.getsockname()[1], [])

    def serve(conn: socket.socket) -> None:
        conn.settimeout(0.05)
        received = bytearray()
        result.received.append(received)
        with conn:
            while not stop.is_set():
                try:
                    data = conn.recv(65536)
                    if not data:
                        return
                    received += data
                    conn.sendall(data)
                except TimeoutError:
                    continue
                except OSError:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            t = threading.Thread(target=serve, args=(conn,))
            t.start()
            threads.append(t)

    acceptor = threading.Thread(target=accept)
    acceptor.start()
    yield result
    stop.set()
    acceptor.join()
    for t in threads:
        t.join()
    srv.close()


@pytest.fixture
def modem(echo: Echo) -> Iterator[Modem]:
    with Modem("127.0.0.1", echo.port) as m:
        yield m


def _roundtrip(port: int, data: bytes, timeout: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def test_clean_link_forwards_both_ways(modem: Modem) -> None:
    assert _roundtrip(modem.port, b"x" * 100_000) == b"x" * 100_000
    assert modem.stats.bytes_up == 100_000
    assert modem.stats.bytes_down >= 65_536  # the last chunk may still be counted after delivery


def test_cut_resets_open_connections_and_refuses_new_until_restored(modem: Modem) -> None:
    s = socket.create_connection(("127.0.0.1", modem.port), timeout=2)
    s.sendall(b"hi")
    assert s.recv(10) == b"hi"
    modem.cut()
    with pytest.raises(OSError):
        s.sendall(b"after cut")
        if not s.recv(10):
            raise ConnectionResetError("closed")
    s.close()
    with pytest.raises(OSError):
        got = _roundtrip(modem.port, b"new")
        if not got:
            raise ConnectionResetError("closed")
    assert modem.stats.refused >= 1
    modem.restore()
    assert _roundtrip(modem.port, b"back") == b"back"


def test_slow_link_adds_latency_each_way(modem: Modem) -> None:
    modem.slow(0.1)
    t0 = time.monotonic()
    assert _roundtrip(modem.port, b"ping") == b"ping"
    assert time.monotonic() - t0 >= 0.2
    modem.slow(0)


def test_drop_after_cuts_the_connection_in_the_middle_of_a_packet(modem: Modem, echo: Echo) -> None:
    modem.drop_after(5, "up")
    try:
        got = _roundtrip(modem.port, b"0123456789")
    except ConnectionResetError:
        got = b""
    assert got in (b"", b"01234")  # never the whole packet: the link died in the middle
    deadline = time.monotonic() + 2
    while (not echo.received or echo.received[0] != b"01234") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bytes(echo.received[0]) == b"01234"  # the far end saw half the packet
    assert modem.stats.dropped_mid_packet == 1
    assert _roundtrip(modem.port, b"whole") == b"whole"  # one-shot: the next connection is clean
