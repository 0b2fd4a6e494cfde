"""Decision time at the identification desk, card read to "issue the ballot", on one core.

Set-up (real code throughout, no test fixtures): a sample election of STATIONS
stations x VOTERS voters with the shared photos (generate_sample, validate_roll,
create_root, build_bundles) in a temporary directory; the appliance of the first
station started from its verified bundle (Appliance.start, FaceCheck().check as
the matcher, a fixed clock at 09:00 on election day, polls opened); a simulated
combo reader on a real pseudo-terminal (firmware_sim) read by the station's
driver (station.reader) on its own thread, all in this one process on one core.

Per voter (DECISIONS voters with a probe photo, their people taken in turn):

    t0  sim.insert_card(card)
        driver delivers CardInserted          -> reader latency
        desk.card_read(card)                  -> roll lookup (+ its event-log commits)
        camera frame (PhotoFrames, 640x480)   -> frame read
        desk.face_attempt(frame)              -> face check (FaceResult.seconds)
                                                 + mark voted and its log (the rest)
    t1  desk says MARKED: "issue the ballot"
        desk.ballot_issued()                  (after the decision; shown apart)

Frames: each probe photo letterboxed to exactly 640x480 (bench.common.letterbox:
the whole photo scaled to fit, grey bars, no crop), served by station.camera.
PhotoFrames, whose downscale to 640 px leaves them as they are.  A voter whose
frame shows no face gets the next probe of the same person (up to 3 frames).

Baseline for the decision figures: the face check alone (FaceCheck().check on
the same frames and templates, in this run), each percentile against the same
percentile, so what the station adds around the face check is the ratio's excess.

Lookups: the two queries card_read makes (voter by PIN, then "already voted?")
on the station's own SQLite store with VOTERS voters, 20% of PINs not there;
card_read for a voter of another station and one on no roll (national index of
the bundle, a refusal and its log written durably); the national PIN index
(election.pin_index) of NATIONAL PINs: build, size, lookup.  Baseline: a dict
lookup timed the same way in this run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import json
import queue
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from bench import Figure, format_table, one_core, percentile, timings
from bench.common import BUDGET, FACES, FRAME_H, FRAME_W, letterbox

STATIONS = 2  # the second station's voters are "registered elsewhere"
VOTERS = 5_000  # per station
SEED = 7
DECISIONS = 60
WARMUP = 2  # decisions run first and left out of the figures (models, caches, pages)
MAX_FRAMES = 3
ELSEWHERE = 100  # card_read of voters of the other station, and of PINs on no roll
LOOKUPS = 10_000
NATIONAL = 4_000_000
NATIONAL_STATIONS = 2_500
CHAIR_CODE = "2468"
PASSPHRASE = "bench root passphrase"
PROVISIONED_AT = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=6)))

CARD_READ = "  roll lookup: desk.card_read"
# What desk.card_read asks the store (station/identify.py), for the lookup figure.


# --- figures ---------------------------------------------------------------------------------
def spread(
    name: str,
    samples: list[float],
    *,
    baseline: dict[int, Figure] | Figure | None = None,
    note: str = "",
    qs: tuple[int, ...] = (50, 95, 100),
) -> list[Figure]:
    """p50, p95 and max of samples; the ratio is to the baseline at the same percentile
    (a dict by percentile) or to one baseline figure."""
    out = []
    for q in qs:
        base = baseline.get(q) if isinstance(baseline, dict) else baseline
        value = percentile(samples, q)
        out.append(
            Figure(
                f"{name} {'max' if q == 100 else f'p{q}'}",
                value,
                "s",
                value / base.value if base and base.value > 0 else None,
                base.name.strip() if base else "",
                note if q == qs[0] else "",
            )
        )
    return out


# --- the election ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Voter:
    card: Any  # devices.combo_reader.Card
    person: str | None  # whose real face the template is; None without biometrics


@dataclass
class Election:
    base: Path
    definition: Any  # election.definition.ElectionDefinition
    root_cert: Any  # x509.Certificate
    out: Path
    seconds: float
    probes: dict[str, list[Path]] = field(default_factory=dict)
    person_of_photo: dict[str, str] = field(default_factory=dict)

    def bundle(self, number: int) -> Path:
        return self.out / "bundles" / str(number)

    def passphrase(self, number: int) -> str:
        rows = (self.out / "secrets" / "device-passphrases.csv").read_text().splitlines()[1:]
        return {int(r.split(",")[0]): r.split(",")[2] for r in rows}[number]

    def voters(self, number: int) -> list[Voter]:
        from devices.combo_reader import Card
        from election import bundle as B

        out = []
        for line in (self.bundle(number) / B.ROLL_FILE).read_text().splitlines():
            v = json.loads(line)
            card = Card(
                v["pin"],
                v["document_no"],
                v["last_name"],
                v["first_name"],
                v.get("patronymic") or "",
                dt.date.fromisoformat(v["birth_date"]),
            )
            out.append(Voter(card, self.person_of_photo.get(v.get("template") or "")))
        return out


def provision(base: Path, faces: Path = FACES) -> Election:
    """A sample election through the real provisioning pipeline, as the CEC would run it."""
    from election.bundle import BrokerSettings
    from provisioning.bundle import build_bundles
    from provisioning.keyceremony import create_root
    from provisioning.roll import validate_roll
    from provisioning.sample import generate_sample

    start = time.perf_counter()
    sample = generate_sample(
        base / "sample", stations=STATIONS, voters_per_station=VOTERS, seed=SEED, faces_dir=faces
    )
    # workers=1: this process is pinned to one core, a pool would only add start-up time
    validate_roll(sample.roll_path, sample.definition, sample.photos_dir, base / "roll", workers=1)
    root = create_root(base / "cec", PASSPHRASE, now=PROVISIONED_AT)
    build_bundles(
        sample.definition,
        base / "roll",
        root,
        base / "provisioned",
        broker=BrokerSettings(),
        now=PROVISIONED_AT,
        workers=1,
    )
    faces_json = json.loads((base / "sample" / "faces.json").read_text())
    photos = base / "sample" / "photos"
    return Election(
        base,
        sample.definition,
        root.cert,
        base / "provisioned",
        time.perf_counter() - start,
        probes={
            person: [base / "sample" / rel for rel in rels]
            for person, rels in faces_json["probes"].items()
        },
        person_of_photo={
            hashlib.sha256((photos / name).read_bytes()).hexdigest(): person
            for name, person in faces_json["photos"].items()
        },
    )


def camera_frames(election: Election) -> dict[str, list[np.ndarray]]:
    """Each person's probes as 640x480 RGB frames (letterboxed), decoded before any timing."""
    from biometrics.face import load_rgb

    frames: dict[str, list[np.ndarray]] = {}
    for person, paths in sorted(election.probes.items()):
        for path in paths:
            image = load_rgb(path.read_bytes())
            if image is not None:
                frames.setdefault(person, []).append(letterbox(image))
    return frames


def queue_of_voters(voters: list[Voter], people: list[str], n: int) -> list[Voter]:
    """n distinct voters whose person has frames, taking the people in turn."""
    by_person = {p: [v for v in voters if v.person == p] for p in people}
    out: list[Voter] = []
    while len(out) < n and any(by_person.values()):
        for p in people:
            if by_person[p] and len(out) < n:
                out.append(by_person[p].pop(0))
    return out


# --- the reader ------------------------------------------------------------------------------
class Reader:
    """The simulated combo reader on a pty and the station's driver; card events are timed."""

    def __init__(self, link: Path) -> None:
        from firmware_sim.combo_reader import ComboReaderSim
        from station.reader import ComboReaderDriver, ReaderEvent

        self.sim = ComboReaderSim(link)
        self.inserted: queue.Queue[tuple[float, Any]] = queue.Queue()
        self.other: queue.Queue[ReaderEvent] = queue.Queue()
        self.driver = ComboReaderDriver(str(link), self._on_event)

    def _on_event(self, event: Any) -> None:
        from station.reader import CardInserted

        now = time.perf_counter()  # first thing: the moment the driver delivers it
        if isinstance(event, CardInserted):
            self.inserted.put((now, event))
        else:
            self.other.put(event)

    def wait_for(self, kind: type, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            event = self.other.get(timeout=max(0.0, deadline - time.monotonic()))
            if isinstance(event, kind):
                return event

    def __enter__(self) -> Reader:
        from station.reader import ReaderStatus

        self.sim.start()
        try:
            self.driver.start()
            status = self.wait_for(ReaderStatus)
            if status.state != "connected":
                raise RuntimeError(f"combo reader not ready: {status.detail}")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.driver.stop()
        self.sim.stop()


# --- the decision loop -----------------------------------------------------------------------
@dataclass
class Decision:
    total: float
    reader: float
    handoff: float
    lookup: float
    frame: float
    face: float
    mark: float  # face_attempt time minus the face check: logging + the durable mark
    issued: float
    frames: int


@dataclass
class Station:
    app: Any  # station.appliance.Appliance
    face_seconds: list[float]  # FaceResult.seconds of each check the desk asked for


def decide(st: Station, reader: Reader, voter: Voter, frames: list[np.ndarray]) -> Decision | str:
    """One voter from card to "issue the ballot"; the outcome's name if it did not get there."""
    from station.camera import PhotoFrames
    from station.identify import DeskState, Lookup
    from station.reader import CardRemoved

    desk = st.app.desk
    camera = PhotoFrames(frames[:MAX_FRAMES])
    face_seconds = st.face_seconds
    face_seconds.clear()
    frame_s = attempt_s = 0.0
    used = 0

    t0 = time.perf_counter()
    reader.sim.insert_card(voter.card)
    t_event, event = reader.inserted.get(timeout=5.0)
    t_desk = time.perf_counter()
    result = desk.card_read(event.card)
    t_read = time.perf_counter()
    outcome = result.outcome.value
    if result.outcome is Lookup.REGISTERED_HERE:
        while desk.state is DeskState.FACE_CHECK and used < MAX_FRAMES:
            a = time.perf_counter()
            frame = camera.read()
            b = time.perf_counter()
            frame_s += b - a
            if frame is None:
                break
            used += 1
            desk.face_attempt(frame)
            attempt_s += time.perf_counter() - b
        outcome = desk.state.value
    t1 = time.perf_counter()

    issued = 0.0
    if desk.state is DeskState.MARKED:
        a = time.perf_counter()
        desk.ballot_issued()
        issued = time.perf_counter() - a
    elif desk.state is DeskState.ADMISSION:
        desk.decline("bench")
    else:
        desk.clear()
    reader.sim.remove_card()
    reader.wait_for(CardRemoved)
    if outcome != DeskState.MARKED.value:
        return outcome
    return Decision(
        total=t1 - t0,
        reader=t_event - t0,
        handoff=t_desk - t_event,
        lookup=t_read - t_desk,
        frame=frame_s,
        face=sum(face_seconds),
        mark=attempt_s - sum(face_seconds),
        issued=issued,
        frames=used,
    )


@contextlib.contextmanager
def station(election: Election, number: int, data: Path) -> Iterator[Station]:
    """The real appliance of one station, polls open, its clock fixed at 09:00 on election day."""
    from station.appliance import Appliance
    from station.facecheck import FaceCheck, FaceResult

    tz = ZoneInfo(election.definition.timezone)
    at_nine = dt.datetime.combine(election.definition.date, dt.time(9, 0), tzinfo=tz)
    check = FaceCheck().check
    face_seconds: list[float] = []

    def matcher(frame: np.ndarray, template: np.ndarray) -> FaceResult:
        result = check(frame, template)
        face_seconds.append(result.seconds)  # FaceCheck's own timing of the check
        return result

    app = Appliance.start(
        data,
        election.bundle(number),
        root_cert=election.root_cert,
        passphrase=election.passphrase(number),
        matcher=matcher,
        clock=lambda: at_nine,
        chair_code=CHAIR_CODE,
        index_dir=election.out / "national-index",
    )
    try:
        app.open_polls("bench")
        yield Station(app, face_seconds)
    finally:
        app.close()


def decision_figures(election: Election, st: Station, tmp: Path) -> list[Figure]:
    from station.facecheck import FaceCheck

    number = election.definition.stations[0].number
    frames = camera_frames(election)
    people = sorted(frames)
    if not people:
        raise RuntimeError(f"no usable probe photos under {election.base / 'sample'}")
    voters = queue_of_voters(election.voters(number), people, WARMUP + DECISIONS)
    decisions: list[Decision] = []
    failed: dict[str, int] = {}
    shapes = {f.shape for fs in frames.values() for f in fs}
    assert shapes == {(FRAME_H, FRAME_W, 3)}, shapes
    # The k-th voter of a person starts at that person's k-th probe, so every probe is used.
    timed: list[tuple[Voter, np.ndarray]] = []
    seen: dict[str, int] = {}
    with Reader(tmp / "ttyREADER") as reader:
        for i, voter in enumerate(voters):
            assert voter.person is not None
            own = frames[voter.person]
            k = seen.get(voter.person, 0) % len(own)
            seen[voter.person] = seen.get(voter.person, 0) + 1
            got = decide(st, reader, voter, own[k:] + own[:k])
            if isinstance(got, str):
                failed[got] = failed.get(got, 0) + 1
            elif i >= WARMUP:
                decisions.append(got)
                timed.append((voter, own[k]))
    if not decisions:
        raise RuntimeError(f"no voter reached 'issue the ballot': {failed}")

    # Baseline: the face check alone, same frames and templates, same order.
    check = FaceCheck()
    templates = {
        row["pin"]: np.frombuffer(row["encoding"], dtype="<f4")
        for row in st.app.store.query(
            "SELECT v.pin, t.encoding FROM voters v JOIN templates t ON t.idx = v.template"
        )
    }
    alone = []
    for voter, frame in timed:
        alone.append(check.check(frame, templates[voter.card.pin]).seconds)
    base = {
        q: Figure(
            f"face check alone {'max' if q == 100 else f'p{q}'}",
            percentile(alone, q),
            "s",
            note=f"baseline: FaceCheck().check, same {len(alone)} frames" if q == 50 else "",
        )
        for q in (50, 95, 100)
    }

    n = len(decisions)
    extra = sum(d.frames for d in decisions) - n
    miss = ", ".join(f"{k} {v}" for k, v in sorted(failed.items()))
    note = (
        f"{n} voters of {VOTERS:,} on the station, "
        f"{sum(map(len, frames.values()))} probes of {len(people)} people, "
        f"640x480 letterboxed; {extra} extra frames" + (f"; not marked: {miss}" if miss else "")
    )
    figs = spread(
        "decision, card in -> issue ballot", [d.total for d in decisions], baseline=base, note=note
    )
    budget = Figure("0.5 s budget (issue)", BUDGET, "s")
    figs[1] = figs[1].answers(
        "identification decision time",
        f"{n} voters on one core: simulated combo reader on a pty, the station's driver, "
        f"desk.card_read on a {VOTERS:,}-voter SQLite roll, a 640x480 frame, FaceCheck, the "
        "voter marked and logged (FULL-sync commits); t0 card inserted, t1 desk says 'issue "
        "the ballot'; baseline: FaceCheck().check alone on the same frames",
    )
    p95 = figs[1]
    figs.append(
        Figure("  decision p95 / 0.5 s budget", p95.value, "s", p95.value / BUDGET, budget.name)
    )
    parts = [
        (
            "  reader: insert -> CardInserted",
            "reader",
            "sim writes a frame to the pty, driver parses",
        ),
        ("  driver -> desk handoff", "handoff", "queue between threads"),
        (CARD_READ, "lookup", "2 queries + 2 event-log commits"),
        ("  camera frame read", "frame", "PhotoFrames, 640x480"),
        ("  face check (in the desk)", "face", "FaceResult.seconds"),
        ("  mark voted + event log", "mark", "face_attempt minus face check: durable commits"),
    ]
    for name, attr, why in parts:
        figs += spread(name, [getattr(d, attr) for d in decisions], baseline=base, note=why)
    rest = [d.total - d.face for d in decisions]
    figs += spread("  everything but the face check", rest, baseline=base)
    issued = [d.issued for d in decisions]
    figs += spread("ballot issued (after the decision)", issued, baseline=base, note="one commit")
    return figs + list(base.values())


# --- lookups ---------------------------------------------------------------------------------
def _pin(i: int) -> str:
    """A unique, well-formed 14-digit PIN for each i < 2 * 100000 * 20000."""
    sex = 1 + (i & 1)
    j = i >> 1
    serial, day = j % 100_000, j // 100_000
    born = 1940 * 365 + (day * 997) % (60 * 365)  # spread over 60 years of birth dates
    year, rest = divmod(born, 365)
    month, dd = 1 + (rest // 31) % 12, 1 + rest % 28
    return f"{sex}{dd:02d}{month:02d}{year:04d}{serial:05d}"


def _dict_baseline(pins: list[str], queries: list[str]) -> Figure:
    table = {pin: n for n, pin in enumerate(pins)}
    it = iter(queries)
    samples = timings(lambda: table.get(next(it)), len(queries))
    return Figure("dict lookup (baseline) p50", percentile(samples, 50), "s")


def station_lookup_figures(election: Election, app: Any, card_read: Figure) -> list[Figure]:
    """The station's own store (real schema, VOTERS voters), and card_read's refusals compared
    with `card_read`, the p50 of a card_read for a voter registered here."""
    from devices.combo_reader import Card
    from station.identify import VOTED_SQL, VOTER_SQL, Lookup

    here_no, there_no = (s.number for s in election.definition.stations[:2])
    here = [v.card.pin for v in election.voters(here_no)]
    there = [v.card for v in election.voters(there_no)]
    rng = random.Random(SEED)
    on_roll = set(here) | {c.pin for c in there}
    nowhere = [p for p in (_pin(i) for i in range(50_000_000, 50_100_000)) if p not in on_roll]
    misses = [rng.choice(nowhere) for _ in range(LOOKUPS // 10)]
    misses += [rng.choice(there).pin for _ in range(LOOKUPS // 10)]
    queries = [rng.choice(here) for _ in range(LOOKUPS - len(misses))] + misses
    rng.shuffle(queries)
    baseline = _dict_baseline(here, queries)
    store = app.store

    def lookup(pin: str) -> None:
        if store.one(VOTER_SQL, (pin,)) is not None:
            store.one(VOTED_SQL, (pin,))

    it = iter(queries)
    found = timings(lambda: lookup(next(it)), len(queries))
    n_here = app.store.one("SELECT count(*) AS n FROM voters")["n"]
    figs = [baseline]
    figs += spread(
        f"roll lookup, station store {n_here:,} voters",
        found,
        baseline=baseline,
        note=f"{LOOKUPS:,} PINs, 20% not here; card_read's 2 queries, station.store schema",
    )

    desk = app.desk
    strangers = [
        Card(pin, "ID0000000", "X", "Y", "", dt.date(1980, 1, 1)) for pin in nowhere[:ELSEWHERE]
    ]
    cases = [
        (
            "card_read, registered elsewhere",
            rng.sample(there, ELSEWHERE),
            Lookup.REGISTERED_ELSEWHERE,
        ),
        ("card_read, not on any roll", strangers, Lookup.NOT_ON_ROLL),
    ]
    for label, cards, want in cases:
        samples = []
        for card in cards:
            start = time.perf_counter()
            result = desk.card_read(card)
            samples.append(time.perf_counter() - start)
            if result.outcome is not want:
                raise RuntimeError(f"{label}: got {result.outcome.value}")
        figs += spread(
            label,
            samples,
            baseline=card_read,
            note=f"{len(cards)} cards; bundle's national index, refusal + log committed",
        )
    return figs


def national_figures(entries: int = NATIONAL, lookups: int = LOOKUPS) -> list[Figure]:
    """The national PIN index at full size: build, size, lookup."""
    from election.pin_index import PinIndex, build_index, pin_key

    secret = b"bench national index secret 32b"
    station_ids = [f"S{n:04d}" for n in range(1, NATIONAL_STATIONS + 1)]
    rng = random.Random(11)
    start = time.perf_counter()
    data = build_index(
        ((_pin(i), i % NATIONAL_STATIONS) for i in range(entries)), secret, NATIONAL_STATIONS
    )
    built = time.perf_counter() - start
    index = PinIndex(data, secret, station_ids)
    hits = [_pin(rng.randrange(entries)) for _ in range(lookups - lookups // 5)]
    queries = hits + [_pin(entries + i) for i in range(lookups // 5)]
    rng.shuffle(queries)
    baseline = _dict_baseline(hits, queries)
    it = iter(queries)
    looked = timings(lambda: index.station_of(next(it)), len(queries))
    it = iter(queries)
    hashed = timings(lambda: pin_key(secret, next(it)), len(queries))
    figures = [
        Figure(
            f"national index build, {entries:,} PINs",
            built,
            "s",
            note=f"{len(data) / 1e6:.0f} MB; HMAC per PIN + sort",
        )
    ]
    figures += spread(
        f"national index lookup, {entries:,} PINs",
        looked,
        baseline=baseline,
        note=f"{lookups:,} lookups, 20% nowhere",
    )
    figures += spread("  of which HMAC of the PIN", hashed, baseline=baseline, qs=(50, 95))
    return figures


def main() -> list[Figure]:
    """Every figure of this bench, in table order."""
    with tempfile.TemporaryDirectory(prefix="shailoo-bench-") as tmp:
        base = Path(tmp)
        election = provision(base)
        number = election.definition.stations[0].number
        with station(election, number, base / "station-data") as st:
            figures = decision_figures(election, st, base)
            card_read = next(f for f in figures if f.name == f"{CARD_READ} p50")
            figures += station_lookup_figures(election, st.app, card_read)
        del st
        # Appliance.close() closes the store but not the national index's mmap, which the
        # appliance and its desk keep in a reference cycle: collect it, so the mapping of
        # the temporary index file is gone before the 4 M index is built.
        gc.collect()
    figures.append(
        Figure(
            "provisioning (set-up, not a decision)",
            election.seconds,
            "s",
            note=f"{STATIONS} stations x {VOTERS:,} voters: sample, roll, root, bundles",
        )
    )
    return figures + national_figures()


if __name__ == "__main__":
    where = one_core()
    print(f"one core ({where})")
    print(format_table([("identify", f) for f in main()]))
    sys.exit(0)
