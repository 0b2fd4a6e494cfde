"""Checks that a test left no thread or file descriptor behind (pty tests open many)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


def _fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


@contextmanager
def no_leaks() -> Iterator[None]:
    """Fail if threads or fds opened inside the block are still there after it."""
    threads, fds = set(threading.enumerate()), _fds()
    yield
    deadline = time.monotonic() + 2.0
    while True:
        extra_threads = [t.name for t in set(threading.enumerate()) - threads if t.is_alive()]
        extra_fds = _fds() - fds
        if not extra_threads and not extra_fds:
            return
        if time.monotonic() > deadline:
            links = {fd: _target(fd) for fd in extra_fds}
            raise AssertionError(f"leaked threads {extra_threads}, fds {links}")
        time.sleep(0.01)


def _target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"
