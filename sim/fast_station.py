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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from cryptography import x509

from crypto.envelope import Envelope
from sim.truth import FaceTry, How, Mark, Sheet, Truth, Visit
from station.appliance import DB_FILE, Appliance, Health, Settings
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

    # --- access ----------------------------------------------------------------------------
    @property
    def appliance(self) -> Appliance:
        """The real appliance (attach a station.uplink.Uplink to `appliance.store`)."""
        if self._app is None:
            raise SimError("the station is not set up yet: call setup() first")
        return self._app

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
    def setup(self, at: dt.datetime | None = None) -> Appliance:
        """First start from the bundle: verify it, load the roll, set the chair's code."""
        if self._app is not None:
            raise SimError("the station is already set up")
        if (self.data_dir / DB_FILE).exists():
            # The truth is replayed from its first visit: a half-played day cannot resume.
            raise SimError(f"{self.data_dir} already holds a station; use an empty directory")
        with self._at(at):
            app = Appliance.start(
                self.data_dir,
                self.bundle_dir,
                root_cert=self._root_cert,
                passphrase=self._passphrase,
                matcher=self._matcher,
                clock=self.now,
                chair_code=self.chair_code,
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
        self._app = app
        self._styles = _styles(app)
        self._box_serial = f"SIM-{app.station.number}"
        self._drops = app.box.sheets()
        with self._at(at):
            app.log.record("asu_connected", serial=self._box_serial)
        return app

    def open_polls(self, at: dt.datetime) -> Envelope:
        """Zero ASU report and first identification report (returns the latter)."""
        with self._at(at):
            return self.appliance.open_polls(CHAIR)

    def voters_until(self, at: dt.datetime) -> int:
        """Play every visit of the truth before `at`, each at its own instant; how many."""
        visits = self.truth.visits
        start = self._next
        due = start < len(visits) and visits[start].at < at
        if due and self.appliance.state is not State.OPEN:
            raise SimError(f"a voter arrives at {visits[start].at:%H:%M:%S}: open the polls")
        while self._next < len(visits) and visits[self._next].at < at:
            visit = visits[self._next]
            with self._at(visit.at):
                self._play(visit)
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

    def close_polls(self, at: dt.datetime) -> Envelope:
        """Visits before `at`, then close with the chair's code: the final ASU report and the
        final identification report (returned) are signed."""
        self.voters_until(at)
        if self._next < len(self.truth.visits):
            due = self.truth.visits[self._next].at
            raise SimError(f"closing at {at:%H:%M} with a visit still due at {due:%H:%M:%S}")
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

    # --- one visit -------------------------------------------------------------------------
    def _play(self, v: Visit) -> None:
        app = self.appliance
        desk = app.desk
        if v.how is How.MOBILE:
            desk.mark_mobile(v.pin, self.chair_code, CHAIR)
            self._cast(v.sheets)
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
        self._cast(v.sheets)

    def _cast(self, sheets: Sequence[Sheet]) -> None:
        """Each sheet into the box, as station.scanning does with a read sheet."""
        for s in sheets:
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


__all__ = ["DEFAULT_CHAIR_CODE", "FastStation", "RecordedMatcher", "SimError"]
