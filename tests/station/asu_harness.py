"""A station stand-in for the ASU driver tests: a real simulated box on a pty, a real driver,
and a tiny durable-store model that catches any sheet counted twice or lost."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from firmware_sim.asu import AsuSim
from station.asu import (
    AsuDriver,
    AsuEvent,
    AsuSettings,
    AsuState,
    AsuStateChanged,
    Decision,
    DropConfirmed,
    DropNotHappened,
    DropUnknown,
    PendingDrop,
    SheetCounted,
    SheetImage,
)

E = TypeVar("E")

FAST = AsuSettings(
    read_timeout=0.01,
    frame_timeout=0.1,
    reconnect_initial=0.01,
    reconnect_max=0.05,
    status_timeout=0.3,
    status_poll=0.05,
    chunk_timeout=0.15,
    max_chunk_retries=3,
    drop_timeout=0.5,
    return_timeout=0.5,
)


def ballot_png(seed: int, *, noisy: bool = False) -> bytes:
    """A small distinct 200x300 grey PNG; `noisy` makes it big enough for several chunks."""
    rng = np.random.default_rng(seed)
    img = np.full((300, 200), 255, np.uint8)
    cv2.rectangle(img, (20, 20 + 10 * (seed % 20)), (60, 50 + 10 * (seed % 20)), 0, -1)
    if noisy:
        img = (img - rng.integers(0, 40, img.shape)).clip(0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


class Station:
    """Plays the station: reads the 'marks' (here: looks the image up), keeps the pending
    records a real station stores durably, and counts on SheetCounted / DropConfirmed."""

    def __init__(self) -> None:
        self.truth_of: dict[bytes, Any] = {}
        self.policy: Callable[[Any], Decision | None] = lambda truth: None
        self.pending: dict[str, tuple[PendingDrop, Any]] = {}
        self.counted: list[Any] = []
        self.errors: list[str] = []
        self.decided: list[int] = []
        self._ids = itertools.count(1)
        self._items: list[AsuEvent] = []
        self._taken: set[int] = set()
        self._cond = threading.Condition()

    def sheet(self, seed: int, truth: Any, *, noisy: bool = False) -> bytes:
        image = ballot_png(seed, noisy=noisy)
        self.truth_of[hashlib.sha256(image).digest()] = truth
        return image

    def decide(self, sheet: SheetImage) -> Decision:
        self.decided.append(sheet.sheet_id)
        truth = self.truth_of[hashlib.sha256(sheet.image).digest()]
        override = self.policy(truth)
        if override is not None:
            return override
        pending_id = f"p{next(self._ids)}"
        self.pending[pending_id] = (sheet.pending(pending_id), truth)  # "durably", before accept
        return Decision.accept(truth, pending_id)

    def __call__(self, event: AsuEvent) -> None:
        match event:
            case SheetCounted(pending_id=pid) | DropConfirmed(pending_id=pid):
                if pid not in self.pending:
                    self.errors.append(f"count of unknown or resolved pending {pid}")
                else:
                    _, truth = self.pending.pop(pid)
                    if isinstance(event, SheetCounted) and event.payload != truth:
                        self.errors.append(f"payload {event.payload!r} is not {truth!r}")
                    self.counted.append(truth)
            case DropNotHappened(pending_id=pid) | DropUnknown(pending_id=pid):
                if self.pending.pop(pid, None) is None:
                    self.errors.append(f"resolution of unknown pending {pid}")
        with self._cond:
            self._items.append(event)
            self._cond.notify_all()

    @property
    def events(self) -> list[AsuEvent]:
        with self._cond:
            return list(self._items)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def wait_for(
        self, kind: type[E], pred: Callable[[E], bool] = lambda e: True, timeout: float = 5.0
    ) -> E:
        """The first event of `kind` matching `pred` not yet waited for; fails on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, e in enumerate(self._items):
                    if isinstance(e, kind) and pred(e) and i not in self._taken:
                        self._taken.add(i)
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kind.__name__} event; got {self._items}")
                self._cond.wait(left)

    def wait_state(self, state: AsuState, timeout: float = 5.0) -> None:
        self.wait_for(AsuStateChanged, lambda e: e.state == state, timeout)


def wait_until(pred: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@contextmanager
def running_driver(
    link: Path,
    station: Station,
    *,
    feeding: bool = True,
    pending: PendingDrop | None = None,
    settings: AsuSettings = FAST,
) -> Iterator[AsuDriver]:
    drv = AsuDriver(
        str(link), station.decide, station, settings=settings, feeding=feeding, pending=pending
    )
    drv.start()
    try:
        yield drv
    finally:
        drv.stop()


@contextmanager
def rig(tmp_path: Path, **sim_kw: Any) -> Iterator[tuple[AsuSim, AsuDriver, Station]]:
    """A box, a station and a driver that has checked the sensors and enabled feeding."""
    station = Station()
    with (
        AsuSim(tmp_path / "ttyASU", **sim_kw) as sim,
        running_driver(sim.link_path, station) as drv,
    ):
        station.wait_state(AsuState.IDLE)
        wait_until(lambda: sim.feeding_enabled, what="ENABLE reaches the box")
        yield sim, drv, station


def assert_every_sheet_accounted(sim: AsuSim, station: Station, fed: list[Any]) -> None:
    """Physical truth: each sheet is in the box, back with the voter, in the path or waiting,
    exactly once; the station counted exactly the sheets in the box, none twice."""
    where = sim.dropped + sim.returned + sim.in_path + sim.waiting
    assert sorted(map(repr, where)) == sorted(map(repr, fed))
    assert sorted(map(repr, station.counted)) == sorted(map(repr, sim.dropped))
    assert not station.errors, station.errors
    assert not station.pending, station.pending
