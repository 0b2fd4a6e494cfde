"""A "full" simulated station: a `Truth` played through the real devices, not recorded outcomes.

Where `sim.fast_station` hands the desk recorded face verdicts and the box already-read
sheets, this station runs what `shailoo demo`'s station runs:

- the ID-card combo reader simulator on a pseudo-terminal, read by the real driver
  (`station.runtime.StationRuntime`): each visitor's card is inserted and removed;
- the camera: real photos of the voter's person (the sample's probe photos), of another
  person for a recorded non-match, an empty frame for "no face", the test set's two-people
  photo for "several faces", checked by the real 1:1 face match (`station.facecheck`);
- the ballot box: each sheet is rendered from the bundle's layout, marked as the truth
  says (a filled box, two for an overvote, none for a blank), fed to the ASU simulator
  on a second pseudo-terminal and read by the real mark reader (`station.scanning`).

Same interface as `FastStation` (setup, open_polls, tick, close_polls on a caller-owned
clock), so `sim.day` drives both alike.  The real face match and mark reader may
disagree with the truth's recorded verdicts; the desk is followed where it leads (a
voter whose real photo does not match is admitted by document, as a commission would)
and every such difference is kept in `deviations`, so a wrong count is explained.
It costs real time: about a second per voter on this machine.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
from cryptography import x509

from crypto.envelope import Envelope
from sim.fast_station import CHAIR, DEFAULT_CHAIR_CODE, EXPECTED_LOOKUP, SimError
from sim.truth import FaceTry, How, Mark, Sheet, Truth, Visit
from station.appliance import Appliance, Health, Settings
from station.bundle import VerifyCache
from station.identify import AdmissionReason, DeskState, IndexLookup

Clock = Callable[[], dt.datetime]
NO_FACE = np.full((480, 640, 3), 205, dtype=np.uint8)  # a wall: no face in the frame


class FullStation:
    """One station's day from a `Truth` through the real reader, camera and ballot box."""

    def __init__(
        self,
        bundle_dir: Path,
        data_dir: Path,
        passphrase: str,
        root_cert: x509.Certificate,
        index_dir: Path | None,
        truth: Truth,
        clock: Clock,
        *,
        sample_dir: Path,
        faces_dir: Path,
        chair_code: str = DEFAULT_CHAIR_CODE,
        settings: Settings | None = None,
        cache: VerifyCache | None = None,
        index: IndexLookup | None = None,
    ) -> None:
        self.bundle_dir = bundle_dir
        self.data_dir = data_dir
        self.truth = truth
        self.chair_code = chair_code
        self.deviations: list[str] = []
        self._passphrase = passphrase
        self._root_cert = root_cert
        self._index_dir = index_dir
        self._settings = settings or Settings()
        self._cache = cache
        self._index = index
        self._clock = clock
        self._now: dt.datetime | None = None
        self._next = 0
        self._app: Appliance | None = None
        self._runtime: Any = None  # station.runtime.StationRuntime
        self._reader: Any = None  # firmware_sim.combo_reader.ComboReaderSim
        self._box: Any = None  # firmware_sim.asu.AsuSim
        self._scanner: Any = None  # station.scanning.Scanner
        self._photos = _Photos(sample_dir, faces_dir, bundle_dir)
        self._pages: dict[str, np.ndarray] = {}
        self._rng = np.random.default_rng([truth.seed, zlib.crc32(truth.station_id.encode())])
        self._sheet_id = 0
        self.seconds = 0.0  # real time spent playing visits

    # --- access (as FastStation) ---------------------------------------------------------
    @property
    def appliance(self) -> Appliance:
        if self._app is None:
            raise SimError("the station is not set up yet: call setup() first")
        return self._app

    def now(self) -> dt.datetime:
        return self._now if self._now is not None else self._clock()

    def messages(self) -> list[Envelope]:
        return self.appliance.signer.messages()

    # --- the day -------------------------------------------------------------------------
    def setup(self, at: dt.datetime | None = None) -> Appliance:
        from firmware_sim.combo_reader import ComboReaderSim
        from station.facecheck import FaceCheck
        from station.runtime import StationRuntime

        with self._at(at):
            app = Appliance.start(
                self.data_dir,
                self.bundle_dir,
                root_cert=self._root_cert,
                passphrase=self._passphrase,
                matcher=FaceCheck().check,
                clock=self.now,
                chair_code=self.chair_code,
                index_dir=self._index_dir,
                settings=self._settings,
                cache=self._cache,
                index=self._index,
            )
        self._app = app
        self._reader = ComboReaderSim(
            self.data_dir / "ttyREADER", serial_number=f"SIM-{app.station.number}"
        )
        self._reader.start()
        # The uplink is the caller's (as for fast stations): the runtime only drives devices.
        self._runtime = StationRuntime(
            app, reader_path=self._reader.device_path, camera=None, clock=self.now
        )
        self._runtime.start()
        _wait(lambda: self._runtime.screen()["reader"]["state"] == "connected", "reader", 20)
        return app

    def open_polls(self, at: dt.datetime) -> None:
        from firmware_sim.asu import AsuSim
        from station.asu import AsuSettings
        from station.scanning import Scanner

        with self._at(at):
            self._runtime.open_polls(CHAIR)
        link = self.data_dir / "ttyASU"
        self._box = AsuSim(link, serial_number=f"ASU-SIM-{self.appliance.station.number}")
        self._box.start()
        self._scanner = Scanner(self.appliance, link, settings=AsuSettings(status_poll=0.02))
        self._scanner.start()

    def voters_until(self, at: dt.datetime) -> int:
        visits = self.truth.visits
        start = self._next
        began = time.perf_counter()
        while self._next < len(visits) and visits[self._next].at < at:
            v = visits[self._next]
            with self._at(v.at):
                self._play(v)
            self._next += 1
        self.seconds += time.perf_counter() - began
        return self._next - start

    def tick(self, at: dt.datetime, health: Health | None = None) -> list[Envelope]:
        self.voters_until(at)
        with self._at(at):
            signed: list[Envelope] = self._runtime.tick()
        return signed

    def close_polls(self, at: dt.datetime) -> None:
        self.voters_until(at)
        if self._scanner is not None:
            self._scanner.stop()
            self._scanner = None
        if self._box is not None:
            self._box.stop()
            self._box = None
        with self._at(at):
            self._runtime.close_polls(self.chair_code, CHAIR)

    def close(self) -> None:
        for part in (self._scanner, self._box):
            if part is not None:
                part.stop()
        if self._runtime is not None:
            self._runtime.stop()
        if self._reader is not None:
            self._reader.stop()
        if self._app is not None:
            self._app.close()

    # --- one visit -----------------------------------------------------------------------
    def _play(self, v: Visit) -> None:
        rt, desk = self._runtime, self.appliance.desk
        if v.how is How.MOBILE:
            rt.mark_mobile(v.pin, self.chair_code, CHAIR)
            self._cast(v.sheets)
            return
        if v.card is None:
            raise SimError(f"a {v.how.value} visit without a card")
        before = self._last_card_read()
        _device(lambda: self._reader.insert_card(v.card))
        _wait(lambda: self._last_card_read() > before, "the desk reads the card", 60)
        _device(self._reader.remove_card)
        outcome = rt.screen()["result"]["outcome"]
        if v.how in EXPECTED_LOOKUP:
            if outcome != EXPECTED_LOOKUP[v.how].value:
                self._deviate(v, f"card read as {outcome}")
            if desk.state is not DeskState.IDLE:
                rt.clear()
            return
        template = self._photos.template(v.pin)
        tries = list(v.faces)
        while desk.state is DeskState.FACE_CHECK and tries:
            rt.camera = self._photos.frame(tries.pop(0), template)
            rt.capture_face()
        if v.camera_fault and desk.state is DeskState.FACE_CHECK:
            rt.camera_fault()
        if desk.state is DeskState.FACE_CHECK:
            # the real match said "no" where the truth recorded a match: more photos of the
            # voter until it matches or the desk hands over to the commission
            self._deviate(v, "the real face match did not match the voter's photo at once")
            while desk.state is DeskState.FACE_CHECK:
                rt.camera = self._photos.frame(FaceTry("match", None), template, other=True)
                rt.capture_face()
        if desk.state is DeskState.MARKED:
            if v.how is not How.FACE:
                self._deviate(v, f"the real face match marked a voter the truth {v.how.value}")
            rt.ballot_issued()
            self._cast(v.sheets if v.votes else ())
            return
        if desk.state is not DeskState.ADMISSION:
            raise SimError(f"the desk is {desk.state} after the faces")
        if v.how is How.DECLINED:
            rt.decline(CHAIR)
            return
        if v.how is How.FACE:
            self._deviate(v, "the real face match failed three times: admitted by document")
        reason = v.reason or AdmissionReason.OTHER
        rt.admit(self.chair_code, reason.value, CHAIR)
        rt.ballot_issued()
        self._cast(v.sheets)

    def _last_card_read(self) -> int:
        rows = self.appliance.store.query(
            "SELECT MAX(seq) AS s FROM events WHERE name = 'card_read'"
        )
        return int(rows[0]["s"] or 0) if rows else 0

    def _deviate(self, v: Visit, what: str) -> None:
        self.deviations.append(f"{v.at:%H:%M:%S} {v.how.value}: {what}")

    # --- the ballot box ------------------------------------------------------------------
    def _cast(self, sheets: tuple[Sheet, ...]) -> None:
        for s in sheets:
            if s.spoiled is not None and self._feed(s.spoiled):
                self._deviate_sheet(s.spoiled, "a spoiled sheet was counted")
            if not self._feed(s.mark):
                self._scanner.cast_as_is()
                if not self._feed(s.mark):
                    raise SimError("a sheet cast as is was given back again")

    def _deviate_sheet(self, m: Mark, what: str) -> None:
        self.deviations.append(f"{self.now():%H:%M:%S} sheet {m.contest_id} {m.status}: {what}")

    def _feed(self, mark: Mark) -> bool:
        """One sheet through the box: True if it fell, False if it was given back."""
        import cv2

        self._sheet_id += 1
        sid = self._sheet_id
        ok, png = cv2.imencode(".png", self._sheet(mark))
        if not ok:
            raise SimError("could not encode a ballot image")
        _device(lambda: self._box.feed(png.tobytes(), sid))
        _wait(lambda: sid in self._box.dropped or sid in self._box.returned, "the box", 60)
        if sid in self._box.dropped:
            # counted once the box confirms the drop (the scanner's thread): wait for it
            _wait(lambda: not self.appliance.box.pending(), "the count", 10)
            return True
        return False

    def _sheet(self, mark: Mark) -> np.ndarray:
        from firmware_sim.ballot_marks import Intent, MarkKind, mark_sheet, to_gray
        from firmware_sim.ballot_marks import Mark as Ink
        from provisioning.ballots import render_png

        layouts = self.appliance.bundle.layouts()
        style = next(
            s for s in layouts.styles if [c.contest_id for c in s.contests] == [mark.contest_id]
        )
        page = self._pages.get(style.style_id)
        if page is None:
            page = self._pages[style.style_id] = to_gray(render_png(layouts, style.style_id))
        contest = self.appliance.definition.contest(mark.contest_id)
        inks: list[Ink] = []
        if mark.status == "valid" and mark.option_id is not None:
            inks.append(Ink(mark.contest_id, mark.option_id, MarkKind.FILL))
            if mark.candidate_id:
                inks.append(
                    Ink(
                        mark.contest_id,
                        mark.option_id,
                        MarkKind.FILL,
                        candidate_id=mark.candidate_id,
                    )
                )
        elif mark.status == "overvote":
            for o in contest.options[:2]:
                inks.append(Ink(mark.contest_id, o.id, MarkKind.FILL))
        return mark_sheet(page, style, Intent(tuple(inks)), self._rng)

    # --- time ----------------------------------------------------------------------------
    @contextmanager
    def _at(self, at: dt.datetime | None) -> Iterator[None]:
        self._now = at
        try:
            yield
        finally:
            self._now = None


class _Photos:
    """Who is in front of the camera: the sample's photos, by the voter's face template."""

    def __init__(self, sample_dir: Path, faces_dir: Path, bundle_dir: Path) -> None:
        from election import bundle as B
        from provisioning.sample import sample_faces

        person_of, probes = sample_faces(sample_dir)
        faces = json.loads((sample_dir / "faces.json").read_text())
        self.enrolled: dict[str, Path] = {}  # person -> the enrolment photo
        for name, person in faces["photos"].items():
            self.enrolled.setdefault(person, sample_dir / "photos" / name)
        self.person_of = person_of
        self.probes = probes
        self.people = sorted(set(person_of.values()))
        many = sorted((faces_dir / "_multiple_faces").glob("*"))
        self.several = many[0] if many else None
        self.template_of: dict[str, str] = {}
        with (bundle_dir / B.ROLL_FILE).open("rb") as f:
            for line in f:
                v = json.loads(line)
                if v.get("template"):
                    self.template_of[v["pin"]] = v["template"]
        self._turn = 0

    def template(self, pin: str) -> str | None:
        return self.template_of.get(pin)

    def frame(self, t: FaceTry, template: str | None, *, other: bool = False) -> Any:
        from station.camera import PhotoFrames

        person = self.person_of.get(template or "")
        if t.status == "no_face":
            return PhotoFrames([NO_FACE])
        if t.status == "multiple_faces":
            return PhotoFrames([self.several if self.several else NO_FACE])
        if t.status == "no_match":
            others = [p for p in self.people if p != person] or self.people
            self._turn += 1
            who = others[self._turn % len(others)]
            return PhotoFrames([self._photo_of(who)])
        if person is None:
            return PhotoFrames([NO_FACE])
        return PhotoFrames([self._photo_of(person, other=other)])

    def _photo_of(self, person: str, *, other: bool = False) -> Path:
        photos = self.probes.get(person) or []
        if other or not photos:
            photos = [*photos, self.enrolled[person]]
            self._turn += 1
            return photos[self._turn % len(photos)]
        return photos[0]


def _device(action: Callable[[], object]) -> None:
    """A person acting on a simulated device.  On a loaded machine the device's thread may
    not answer in time; the action stays queued and happens when it runs (the caller then
    waits for its effect), so that is not an error."""
    with suppress(TimeoutError):
        action()


def _wait(pred: Callable[[], bool], what: str, timeout: float) -> None:
    """Until `pred()`; a simulated device too busy to answer a look counts as "not yet"."""
    end = time.monotonic() + timeout

    def ready() -> bool:
        try:
            return pred()
        except TimeoutError:
            return False

    while not ready():
        if time.monotonic() > end:
            raise SimError(f"full station: timed out waiting for {what}")
        time.sleep(0.005)


__all__ = ["FullStation"]
