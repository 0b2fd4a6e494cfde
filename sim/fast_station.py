"""A polling station that runs the real station code through a whole day, fast.

The appliance, its SQLite store, the identification desk, the ballot box's
count, the signer and the reports are the real ones, driven through their
public APIs in the order the real station uses them.  Only the devices are
replaced by recorded outcomes: the combo reader by the roll's card, the camera
and face matcher by the truth's recorded verdicts (no dlib, no image), the
scanner and mark reader by already-read sheets (no OpenCV).  What is left is
SQLite, scrypt (the chair's code) and Ed25519, so many stations fit in one
process.

The caller owns time: every step takes the instant it happens at, so a
simulator can interleave thousands of stations on one clock.  Time only runs
forward; a step first plays every visit of the truth due before its instant.

    st = FastStation(bundle, data, passphrase, root_cert, index_dir, truth, clock)
    st.setup(at=seven_thirty)
    st.open_polls(eight)
    for t in every_ten_minutes:
        st.tick(t)               # visits before t, then turnout/heartbeat/log digest if due
    final = st.close_polls(twenty)

A ballot box failure (`sim.truth.with_box_failure` makes the truth): `st.box_fails(t1)`,
then `st.box_back(t2)` (a spare ASU; the spare box's sheets scanned as the deferred batch)
before `close_polls`, at the latest at the close itself.

A power cut in the middle of accepting a sheet: `st.arm_power_cut(after, dropped=...)`;
the first sheet the box accepts at or after `after` is held (the pending record
committed) and the power fails before it is counted: the appliance's database is
closed and the step raises `PowerCut`.  `st.power_on(t)` boots the appliance again from
that database (`Appliance.start`, the real boot path), resolves the held sheet from the
box's drop counter as the real ballot box driver does (`station.asu.resolve_pending`:
counted if it fell, else given back and fed again), lets the interrupted voter finish and
serves the voters who came while the power was off, at `t`.  What the station knows
comes from its database only; the simulator keeps its own place in the truth (the
world: who came, what fell into the box).

A device replaced mid-day: `st.device_fails(t1)` (the appliance dies; its database is
closed), then `st.take_over(t2, spare_bundle, spare_passphrase, data_dir=...)`: the
storage, moved into the spare, is taken over (`Appliance.take_over`) and the voters who
came in between are served at `t2`.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from cryptography import x509

from crypto.envelope import Envelope
from sim.truth import FaceTry, How, Mark, Sheet, Truth, Visit
from station.appliance import DB_FILE, Appliance, Health, Settings
from station.asu import (
    REASON_DROP_NOT_CONFIRMED,
    DropConfirmed,
    DropNotHappened,
    PendingDrop,
    resolve_pending,
)
from station.bundle import VerifyCache
from station.count import ContestRead, CountSettings, SheetRead
from station.identify import DeskState, FaceOutcome, IndexLookup, Lookup
from station.outbox import Outbox
from station.state import State

Clock = Callable[[], dt.datetime]
DEFAULT_CHAIR_CODE = "2468"
CHAIR = "chair"  # the actor the real runtime names for the chair's actions
# The camera frame handed to the recorded matcher: never looked at, so one pixel will do.
FRAME = np.zeros((1, 1, 3), dtype=np.uint8)
EXPECTED_LOOKUP: dict[How, Lookup] = {
    How.NOT_ON_ROLL: Lookup.NOT_ON_ROLL,
    How.ELSEWHERE: Lookup.REGISTERED_ELSEWHERE,
    How.ALREADY_VOTED: Lookup.ALREADY_VOTED,
}


class SimError(RuntimeError):
    """The station did not do what the truth says it should: a bug in one of the two."""


class PowerCut(Exception):
    """The station's power failed in the middle of accepting a sheet (`arm_power_cut`): its
    appliance is closed; nothing happens at the station until `power_on`."""

    def __init__(self, at: dt.datetime, dropped: bool) -> None:
        fell = "had fallen into the box" if dropped else "was still in the scanner"
        super().__init__(f"power cut at {at:%H:%M:%S} while accepting a sheet, which {fell}")
        self.at = at
        self.dropped = dropped


@dataclass(frozen=True)
class _Held:
    """The sheet in the box's hands when the power failed, and what the voter had left."""

    mark: Mark
    cast_as_is: bool
    dropped: bool  # it fell before the power went (the box's drop counter moved)
    rest: tuple[Sheet, ...]  # the voter's sheets still to cast


class RecordedMatcher:
    """A FaceMatcher that gives the next recorded verdict instead of comparing faces."""

    def __init__(self) -> None:
        self._queue: list[FaceTry] = []

    def expect(self, tries: Sequence[FaceTry]) -> None:
        self._queue = list(tries)

    def left(self) -> int:
        return len(self._queue)

    def __call__(self, frame: np.ndarray, template: np.ndarray, /) -> FaceOutcome:
        if not self._queue:
            raise SimError("the desk asked for a face comparison the truth did not record")
        return self._queue.pop(0)


class FastStation:
    """One station's day from a `Truth`, on the real appliance; see the module docstring."""

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
        chair_code: str = DEFAULT_CHAIR_CODE,
        settings: Settings | None = None,
        cache: VerifyCache | None = None,
        index: IndexLookup | None = None,
    ) -> None:
        settings = settings or Settings()
        if settings.count != CountSettings():
            raise ValueError("the truth's expected returns assume the default count settings")
        self.bundle_dir = bundle_dir
        self.data_dir = data_dir
        self.truth = truth
        self.chair_code = chair_code
        self._passphrase = passphrase
        self._root_cert = root_cert
        self._index_dir = index_dir
        self._settings = settings
        self._cache = cache  # shared by the stations of one process: verified once
        self._index = index
        self._clock = clock
        self._now: dt.datetime | None = None  # the instant of the step in progress
        self._last: dt.datetime | None = None  # the latest instant a step happened at
        self._next = 0  # index of the next visit of the truth to play
        self._matcher = RecordedMatcher()
        self._app: Appliance | None = None
        self._styles: dict[str, str] = {}
        self._box_serial = ""
        self._drops = 0  # the simulated box's lifetime drop counter
        self._box_up = True  # False from box_fails() until box_back()
        self._spares = 0  # spare ASUs connected so far
        self._spare_box: list[Sheet] = []  # sheets in the spare ordinary box, in casting order
        self._mobile_box: list[Sheet] = []  # mobile-box sheets waiting for a working ASU
        # A power cut mid-sheet (arm_power_cut): the world's side of it, never the station's.
        self._cut_armed: tuple[dt.datetime, bool] | None = None  # (at or after, dropped)
        self._on_cut: Callable[[], None] | None = None
        self._playing = False  # a visit of the truth is being played
        self._rest: tuple[Sheet, ...] = ()  # the sheets the voter casting now has left
        self._held: _Held | None = None  # the sheet held when the power failed
        self._down_at: dt.datetime | None = None  # the power is off since
        self._up_since: dt.datetime | None = None  # the power came back at
        self.power_cuts: list[tuple[dt.datetime, dt.datetime | None, bool]] = []  # off, on, fell
        self._failed_at: dt.datetime | None = None  # the appliance died (device_fails)

    # --- access ----------------------------------------------------------------------------
    @property
    def appliance(self) -> Appliance:
        """The real appliance (attach a station.uplink.Uplink to `appliance.store`)."""
        if self._down_at is not None:
            raise SimError(f"the station has had no power since {self._down_at:%H:%M:%S}")
        if self._failed_at is not None:
            raise SimError(f"the station's appliance failed at {self._failed_at:%H:%M:%S}")
        if self._app is None:
            raise SimError("the station is not set up yet: call setup() first")
        return self._app

    @property
    def powered(self) -> bool:
        return self._down_at is None

    @property
    def visits_done(self) -> int:
        return self._next

    def now(self) -> dt.datetime:
        """The station's clock: the instant of the step in progress, else the caller's clock."""
        return self._now if self._now is not None else self._clock()

    def messages(self) -> list[Envelope]:
        """Every message the station signed, in order (seq 0, 1, ...)."""
        return self.appliance.signer.messages()

    def last(self, kind: str) -> Envelope | None:
        """The newest signed message of `kind` (e.g. station.reports.ASU_REPORT)."""
        return self.appliance.signer.last(kind)

    # --- the day ---------------------------------------------------------------------------
    def setup(self, at: dt.datetime | None = None, *, image: Path | None = None) -> Appliance:
        """First start from the bundle: verify it, load the roll, set the chair's code.

        `image`: a directory keeping this station's storage as it was right after set-up
        (an appliance set up the day before and switched on in the morning).  If it holds
        one, the storage is copied from it and the appliance boots from it (the real
        resume path: bundle, election, station and device checked) instead of being set
        up again; if not, the station is set up and its storage kept there.  Set-up is
        most of a national run's start (the chair's code is hashed with scrypt), and it
        is the same whatever the day's faults, so repeated runs share it."""
        if self._app is not None:
            raise SimError("the station is already set up")
        if (self.data_dir / DB_FILE).exists():
            # The truth is replayed from its first visit: a used directory cannot be set up
            # (a station that lost power mid-day comes back with power_on()).
            raise SimError(f"{self.data_dir} already holds a station; use an empty directory")
        if image is not None and (image / DB_FILE).exists():
            shutil.copytree(image, self.data_dir, dirs_exist_ok=True)
            app = self._start(at, chair_code=None)
            if app.state is not State.SETUP or app.signer.messages():
                app.close()
                raise SimError(f"the set-up image {image} is not of a station just set up")
        else:
            app = self._start(at, chair_code=self.chair_code)
            if image is not None:
                _keep_image(app, self.data_dir, image)
        self._app = app
        self._styles = _styles(app)
        self._box_serial = f"SIM-{app.station.number}"
        self._drops = app.box.sheets()
        with self._at(at):
            app.log.record("asu_connected", serial=self._box_serial)
        return app

    def _start(self, at: dt.datetime | None, *, chair_code: str | None) -> Appliance:
        """The real boot path: bundle verified, then set up (first start, with the chair's
        code) or resumed from the database (election, station and device checked)."""
        with self._at(at):
            app = Appliance.start(
                self.data_dir,
                self.bundle_dir,
                root_cert=self._root_cert,
                passphrase=self._passphrase,
                matcher=self._matcher,
                clock=self.now,
                chair_code=chair_code,
                index_dir=self._index_dir,
                settings=self._settings,
                cache=self._cache,
                index=self._index,
            )
        if app.station.id != self.truth.station_id:
            app.close()
            raise SimError(f"the bundle is station {app.station.id}, the truth is for another")
        if app.definition != self.truth.definition:
            app.close()
            raise SimError("the bundle and the truth are of different elections")
        return app

    def open_polls(self, at: dt.datetime) -> Envelope:
        """Zero ASU report and first identification report (returns the latter)."""
        with self._at(at):
            return self.appliance.open_polls(CHAIR)

    def voters_until(self, at: dt.datetime) -> int:
        """Play every visit of the truth before `at`, each at its own instant (a voter who
        came while the power was off, at the instant it came back); how many."""
        visits = self.truth.visits
        start = self._next
        due = start < len(visits) and visits[start].at < at
        if due and self.appliance.state is not State.OPEN:
            raise SimError(f"a voter arrives at {visits[start].at:%H:%M:%S}: open the polls")
        while self._next < len(visits) and visits[self._next].at < at:
            visit = visits[self._next]
            served = visit.at
            if self._up_since is not None and served < self._up_since:
                served = self._up_since  # waited for the power
            self._playing = True
            try:
                with self._at(served):
                    self._play(visit)
            finally:
                self._playing = False
            self._next += 1
        self._step(at)
        return self._next - start

    def turnout_due(self, at: dt.datetime | None = None) -> bool:
        """Whether a turnout snapshot is due at `at` (read only: plays no visit)."""
        self._now = at
        try:
            return self.appliance.turnout_due()
        finally:
            self._now = None

    def turnout_snapshot(self, at: dt.datetime | None = None) -> Envelope:
        """Visits before `at`, then the signed turnout snapshot as of `at`."""
        at = at or self._clock()
        self.voters_until(at)
        with self._at(at):
            return self.appliance.turnout_snapshot()

    def tick(self, at: dt.datetime, health: Health | None = None) -> list[Envelope]:
        """What the real runtime's timer does: visits before `at`, then every message due."""
        self.voters_until(at)
        app = self.appliance
        signed: list[Envelope] = []
        with self._at(at):
            if app.turnout_due():
                signed.append(app.turnout_snapshot())
            if app.heartbeat_due():
                pending = Outbox(app.store, self.now).pending_count()
                signed.append(app.heartbeat(health or Health(), outbox_pending=pending))
            if app.log_digest_due():
                signed.append(app.log_digest())
        return signed

    # --- the ballot box fails (sim.truth.with_box_failure) ----------------------------------
    @property
    def box_down(self) -> bool:
        return not self._box_up

    def box_fails(self, at: dt.datetime) -> None:
        """Visits before `at`, then the ballot box (ASU) stops responding, as the real
        driver reports it (`asu_disconnected`).  From now on the desk's voters cast into the
        spare ordinary box (the truth's `spare_box` visits) and the mobile box waits."""
        self.voters_until(at)
        if not self._box_up:
            raise SimError(f"the ballot box fails at {at:%H:%M} but is already down")
        with self._at(at):
            self.appliance.log.record(
                "asu_disconnected",
                outcome="failure",
                detail=f"ballot box {self._box_serial} stopped responding: check its cable and "
                "power",
            )
        self._box_up = False

    def box_back(self, at: dt.datetime) -> int:
        """Visits before `at`, then a spare ASU is connected (its own serial and drop counter)
        and the sheets that waited are scanned: the mobile box's as ever, then the spare
        ordinary box's as the deferred batch, started and ended by the chair as
        station.scanning's `start_deferred_batch` / `end_deferred_batch` do.  Returns how
        many sheets the deferred batch counted.  At the close: call before `close_polls`."""
        self.voters_until(at)
        if self._box_up:
            raise SimError(f"a spare ballot box at {at:%H:%M}, but the box has not failed")
        app = self.appliance
        with self._at(at):
            self._spares += 1
            self._box_serial = f"SIM-{app.station.number}-SPARE{self._spares}"
            self._drops = 0
            app.log.record("asu_connected", serial=self._box_serial)
            self._box_up = True
            mobile, self._mobile_box = self._mobile_box, []
            self._cast(mobile)
            spare, self._spare_box = self._spare_box, []
            if not spare:
                return 0
            before = app.box.sheets("deferred")
            if not app.chair_code_ok(self.chair_code):
                raise SimError("the chair's code was refused for the deferred batch")
            app.box.batch = "deferred"
            app.log.record("deferred_batch_started", actor=CHAIR)
            try:
                self._cast(spare)
            finally:
                app.box.batch = "box"
                app.log.record("deferred_batch_ended", actor=CHAIR)
            return app.box.sheets("deferred") - before

    def close_polls(self, at: dt.datetime) -> Envelope:
        """Visits before `at`, then close with the chair's code: the final ASU report and the
        final identification report (returned) are signed."""
        self.voters_until(at)
        if self._next < len(self.truth.visits):
            due = self.truth.visits[self._next].at
            raise SimError(f"closing at {at:%H:%M} with a visit still due at {due:%H:%M:%S}")
        if not self._box_up:
            raise SimError(
                f"closing at {at:%H:%M} with the ballot box down: {len(self._spare_box)} sheet(s) "
                "of the spare box not scanned (box_back first)"
            )
        with self._at(at):
            return self.appliance.close_polls(CHAIR, self.chair_code)

    def run_day(
        self, *, step: dt.timedelta = dt.timedelta(minutes=10), setup_at: dt.datetime | None = None
    ) -> Envelope:
        """The whole day on its own (one station, no interleaving): set up half an hour before
        opening, tick every `step`, close at the closing hour; the final identification report."""
        d = self.truth.definition
        opening = _local(d.date, d.polls_open, d.timezone)
        closing = _local(d.date, d.polls_close, d.timezone)
        if self._app is None:
            self.setup(setup_at or opening - dt.timedelta(minutes=30))
        self.open_polls(opening)
        t = opening + step
        while t < closing:
            self.tick(t)
            t += step
        return self.close_polls(closing)

    def close(self) -> None:
        if self._app is not None:
            self._app.close()

    # --- a power cut in the middle of accepting a sheet ------------------------------------
    def arm_power_cut(
        self,
        after: dt.datetime,
        *,
        dropped: bool,
        on_cut: Callable[[], None] | None = None,
    ) -> None:
        """The power fails at the first sheet the box accepts from a voter served at or after
        `after`: the sheet held (its pending record committed), not counted; `dropped`: it
        had already fallen into the box (the box's drop counter moved), else it is still in
        the scanner.  `on_cut` runs at that instant, before the database goes (a simulator
        stops the station's uplink there).  That step raises `PowerCut`; then `power_on`."""
        if self._down_at is not None or self._held is not None:
            raise SimError("the station is already without power")
        self._cut_armed = (after, dropped)
        self._on_cut = on_cut

    @property
    def power_cut_armed(self) -> bool:
        """An armed power cut has not happened yet (no sheet accepted since `after`)."""
        return self._cut_armed is not None

    def power_on(self, at: dt.datetime) -> int:
        """Power is back at `at`: the appliance boots from its database (`Appliance.start`:
        bundle, election and device checked), the ballot box's driver resolves the held sheet
        from the box's drop counter (counted if it fell; else given back to the voter, who
        feeds it again), the interrupted voter finishes, and the voters who came while the
        power was off are served, at `at`.  Returns how many visits were played."""
        if self._down_at is None or self._held is None:
            raise SimError("power_on() without a power cut")
        if at < self._down_at:
            raise SimError(f"power back at {at:%H:%M:%S}, before it failed")
        held, off = self._held, self._down_at
        self._down_at = None
        app = self._start(at, chair_code=None)
        self._app = app
        self._held = None
        self._up_since = at
        self.power_cuts[-1] = (off, at, held.dropped)
        with self._at(at):
            app.log.record("asu_connected", serial=self._box_serial)
            self._resolve_held(app, held)
            if not held.dropped:  # given back to the voter, who feeds it again
                again = self._feed(held.mark, cast_as_is=held.cast_as_is)
                _expect(again, None, "a sheet fed again after a power cut was refused")
            self._cast(held.rest)
        self._next += 1  # the interrupted visit is over
        return 1 + self.voters_until(at)

    def _resolve_held(self, app: Appliance, held: _Held) -> None:
        """What the real station does at boot: `station.scanning.Scanner` hands the pending
        record from its database to the ASU driver, which resolves it from the box's STATUS
        (`station.asu.resolve_pending`: serial, drop counter, paper in the path), and
        `Scanner.on_event` applies the outcome to the count."""
        drops = app.box.pending_drops()
        if len(drops) != 1:
            raise SimError(f"after the power cut the station holds {len(drops)} sheets, not 1")
        event = resolve_pending(
            PendingDrop(*drops[0]),
            serial_number=self._box_serial,
            drops_total=self._drops,  # the box's non-volatile counter: the world's
            paper_in_path=not held.dropped,
        )
        match event:
            case DropConfirmed(pending_id=pid):
                _expect(held.dropped, None, "the box counted a sheet that did not fall")
                app.box.counted(pid)
                app.log.record("asu_pending_resolved", outcome="success", fell=True)
            case DropNotHappened(pending_id=pid, in_path=in_path):
                _expect(not held.dropped, None, "a sheet that fell was not counted")
                app.box.not_dropped(pid, None if in_path else "not_dropped")
                app.log.record("asu_pending_resolved", outcome="success", fell=False)
                if in_path:  # the driver gives it back (CLEAR_PATH): one SheetReturned
                    app.box.returned((REASON_DROP_NOT_CONFIRMED,))
            case _:
                raise SimError(f"the held sheet was left to the commission: {event}")

    def _power_fails(self, mark: Mark, cast_as_is: bool) -> None:
        """The armed power cut: the sheet is held, not counted; the appliance goes down."""
        assert self._cut_armed is not None and self._app is not None
        dropped = self._cut_armed[1]
        self._cut_armed = None
        at = self.now()
        if dropped:
            self._drops += 1  # it fell: the box writes its non-volatile counter first
        self._held = _Held(mark, cast_as_is, dropped, self._rest)
        self._down_at = at
        self.power_cuts.append((at, None, dropped))
        app, self._app = self._app, None
        try:
            if self._on_cut is not None:
                self._on_cut()
        finally:
            app.close()
        raise PowerCut(at, dropped)

    # --- the appliance fails; a spare device takes its storage over ------------------------
    def device_fails(self, at: dt.datetime, on_fail: Callable[[], None] | None = None) -> None:
        """Visits before `at`, then the appliance dies: `on_fail` runs (a simulator stops the
        station's uplink there), its database is closed, and nothing happens at the station
        until a spare takes the storage over (`take_over`)."""
        self.voters_until(at)
        app = self.appliance
        self._failed_at = at
        self._app = None
        try:
            if on_fail is not None:
                on_fail()
        finally:
            app.close()

    @property
    def failed(self) -> bool:
        return self._failed_at is not None

    def take_over(
        self, at: dt.datetime, bundle_dir: Path, passphrase: str, *, data_dir: Path | None = None
    ) -> Appliance:
        """The failed appliance's storage, moved into a spare device (now in `data_dir`, if it
        moved), is taken over by the spare at `at` (`Appliance.take_over`: the spare's bundle,
        the chair's code), which connects to the ballot box and serves the voters who came
        meanwhile, at `at`.  From now on the spare's bundle and passphrase are the station's
        (a later restart boots the spare)."""
        if self._failed_at is None:
            raise SimError("take_over() without a failed appliance")
        if at < self._failed_at:
            raise SimError(f"a spare at {at:%H:%M:%S}, before the appliance failed")
        data_dir = data_dir or self.data_dir
        with self._at(at):
            app = Appliance.take_over(
                data_dir,
                bundle_dir,
                root_cert=self._root_cert,
                passphrase=passphrase,
                chair_code=self.chair_code,
                matcher=self._matcher,
                clock=self.now,
                actor=CHAIR,
                index_dir=self._index_dir,
                settings=self._settings,
                cache=self._cache,
                index=self._index,
            )
            app.log.record("asu_connected", serial=self._box_serial)
        self._app = app
        self.data_dir, self.bundle_dir, self._passphrase = data_dir, bundle_dir, passphrase
        self._failed_at = None
        self._up_since = at  # who came while there was no appliance is served now
        return app

    # --- one visit -------------------------------------------------------------------------
    def _play(self, v: Visit) -> None:
        app = self.appliance
        desk = app.desk
        if v.how is How.MOBILE:
            desk.mark_mobile(v.pin, self.chair_code, CHAIR)
            self._into_box(v)
            return
        if v.card is None:
            raise SimError(f"a {v.how.value} visit without a card")
        result = desk.card_read(v.card)
        if v.how in EXPECTED_LOOKUP:
            _expect(result.outcome is EXPECTED_LOOKUP[v.how], v, f"card read {result.outcome}")
            return
        if result.outcome is Lookup.NO_BIOMETRICS:
            _expect(not v.faces and not v.camera_fault, v, "the voter has no face template")
        else:
            _expect(result.outcome is Lookup.REGISTERED_HERE, v, f"card read {result.outcome}")
            self._matcher.expect(v.faces)
            for _ in v.faces:
                desk.face_attempt(FRAME)
            _expect(self._matcher.left() == 0, v, "the desk stopped asking for faces early")
            if v.camera_fault:
                desk.camera_fault()
        if v.how is How.FACE:
            _expect(desk.state is DeskState.MARKED, v, f"desk is {desk.state} after a match")
        else:
            _expect(desk.state is DeskState.ADMISSION, v, f"desk is {desk.state}, not admission")
            if v.how is How.DECLINED:
                desk.decline(CHAIR)
                return
            if v.reason is None:
                raise SimError("an admission by document without a reason")
            desk.admit_by_document(self.chair_code, v.reason, CHAIR)
        desk.ballot_issued()
        self._into_box(v)

    def _into_box(self, v: Visit) -> None:
        """The visit's sheets into the ASU; while it is down, a desk voter's into the spare
        ordinary box (unchecked, scanned later in the deferred batch), the mobile box's wait."""
        spare = not self._box_up and v.how is not How.MOBILE
        where = "the spare box" if v.spare_box else "the ASU"
        state = "up" if self._box_up else "down"
        _expect(v.spare_box == spare, v, f"the truth casts into {where}, the ASU is {state}")
        if spare:
            self._spare_box.extend(v.sheets)
        elif not self._box_up:
            self._mobile_box.extend(v.sheets)
        else:
            self._cast(v.sheets)

    def _cast(self, sheets: Sequence[Sheet]) -> None:
        """Each sheet into the box, as station.scanning does with a read sheet."""
        for i, s in enumerate(sheets):
            self._rest = tuple(sheets[i + 1 :])  # left to cast if the power fails on this one
            if s.spoiled is not None:
                _expect(not self._feed(s.spoiled), None, "a spoiled sheet was not given back")
            if not self._feed(s.mark):  # given back: the voter casts it as it is
                _expect(self._feed(s.mark, cast_as_is=True), None, "a sheet cast as is refused")

    def _feed(self, mark: Mark, *, cast_as_is: bool = False) -> bool:
        app = self.appliance
        box = app.box
        read = SheetRead(
            "ok",
            self._styles[mark.contest_id],
            (ContestRead(mark.contest_id, mark.status, mark.option_id, mark.candidate_id),),
        )
        d = box.decide(read, cast_as_is=cast_as_is)
        if cast_as_is:
            app.log.record("cast_as_is_chosen")
        if not d.accept or d.record is None:
            box.returned(d.reasons)
            return False
        pending = box.hold(d.record, box_serial=self._box_serial, drops_before=self._drops)
        armed = self._cut_armed
        if armed is not None and self._playing and self.now() >= armed[0]:
            self._power_fails(mark, cast_as_is)  # raises PowerCut: held, not counted
        _expect(box.counted(pending), None, "the box did not count a held sheet")
        self._drops += 1
        return True

    # --- time ------------------------------------------------------------------------------
    def _step(self, at: dt.datetime | None) -> None:
        """Time only runs forward: a station's log and chain must never go back."""
        if at is None:
            return
        if at.tzinfo is None:
            raise ValueError("the simulated clock needs aware datetimes")
        if self._last is not None and at < self._last:
            raise SimError(f"time ran backwards: {at.isoformat()} after {self._last.isoformat()}")
        self._last = at

    @contextmanager
    def _at(self, at: dt.datetime | None) -> Iterator[None]:
        """The station's clock stands at `at` (None: the caller's clock) for one step."""
        self._step(at)
        self._now = at
        try:
            yield
        finally:
            self._now = None


def _keep_image(app: Appliance, data_dir: Path, image: Path) -> None:
    """Copy a just-set-up station's storage to `image` (whole or not at all)."""
    app.store.query("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    tmp = image.with_name(f".{image.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(data_dir, tmp)
    shutil.rmtree(image, ignore_errors=True)
    tmp.rename(image)


def _styles(app: Appliance) -> dict[str, str]:
    """Contest -> the ballot style that carries it alone (one contest per Kyrgyz sheet)."""
    ours = {c.id for c in app.box.contests}
    out: dict[str, str] = {}
    for s in app.bundle.layouts().styles:
        ids = [c.contest_id for c in s.contests]
        if len(ids) == 1 and ids[0] in ours:
            out.setdefault(ids[0], s.style_id)
    if missing := ours - set(out):
        raise SimError(f"no ballot style in the bundle for contest {sorted(missing)[0]}")
    return out


def _local(date: dt.date, hhmm: str, tz: str) -> dt.datetime:
    return dt.datetime.combine(date, dt.time.fromisoformat(hhmm), tzinfo=ZoneInfo(tz))


def _expect(ok: bool, visit: Visit | None, what: str) -> None:
    if not ok:
        where = f" (visit {visit.how.value} at {visit.at:%H:%M:%S})" if visit else ""
        raise SimError(f"the station disagrees with the truth: {what}{where}")


__all__ = ["DEFAULT_CHAIR_CODE", "FastStation", "PowerCut", "RecordedMatcher", "SimError"]
