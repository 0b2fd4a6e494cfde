"""Face check and roll lookup figures for the identification desk, on one core.

- Face check (station.facecheck.FaceCheck) on 640x480 frames made from the
  shared probes, p50 / p95 over RUNS checks, split into HOG detection and
  128-d encoding; and detection on a full-size photo to show what the camera's
  downscale saves.  Ratio baseline: the issue's 0.5 s budget for the p95.
- Station roll: VOTERS voters in SQLite (WAL, unique index on PIN), lookup by
  PIN p50 / p95, and the durable "mark voted" write (synchronous=FULL).
- National PIN index (election.pin_index) of NATIONAL PINs: build time, size,
  lookup p50 / p95.
Ratio baseline for lookups: a Python dict lookup timed the same way in this run
(the timer's own overhead, ~0.1 us, is in every per-call figure alike).
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import Figure, format_table, one_core, p50_p95, timings

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("SHAILOO_FACES", REPO.parent / "shared" / "data" / "faces"))
RUNS = 50
VOTERS = 5_000
NATIONAL = 4_000_000
STATIONS = 2_500
LOOKUPS = 10_000
BUDGET = 0.5  # seconds: the aim for the p95 decision time


def _letterbox(rgb: np.ndarray, w: int = 640, h: int = 480) -> np.ndarray:
    """The photo fitted into a w x h grey frame, as a 640x480 camera would frame the voter."""
    import cv2

    scale = min(w / rgb.shape[1], h / rgb.shape[0])
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    fitted = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    frame = np.full((h, w, 3), 128, dtype=np.uint8)
    y, x = (h - size[1]) // 2, (w - size[0]) // 2
    frame[y : y + size[1], x : x + size[0]] = fitted
    return frame


def face_figures(faces: Path = FACES, runs: int = RUNS) -> list[Figure]:
    """Face check time on 640x480 frames, and its detection / encoding split."""
    import face_recognition

    from biometrics.evaluate import discover
    from biometrics.face import UPSAMPLE, encode_bytes, load_rgb
    from station.facecheck import FaceCheck

    budget = Figure("0.5 s budget (issue)", BUDGET, "s")
    cases: list[tuple[np.ndarray, np.ndarray]] = []
    for person in discover(faces):
        template = encode_bytes(person.enroll.read_bytes()).encoding
        if template is None:
            continue
        for probe in person.probes:
            image = load_rgb(probe.read_bytes())
            if image is not None:
                cases.append((_letterbox(image), template))
    if not cases:
        raise RuntimeError(f"no usable probes under {faces}")
    check = FaceCheck()
    check.check(*cases[0])  # load the models outside the timing

    total, detect, encode = [], [], []
    statuses: dict[str, int] = {}
    for i in range(runs):
        frame, template = cases[i % len(cases)]
        result = check.check(frame, template)
        total.append(result.seconds)
        statuses[result.status] = statuses.get(result.status, 0) + 1
        start = time.perf_counter()
        locations = face_recognition.face_locations(frame, number_of_times_to_upsample=UPSAMPLE)
        detect.append(time.perf_counter() - start)
        if len(locations) == 1:
            start = time.perf_counter()
            face_recognition.face_encodings(frame, locations)
            encode.append(time.perf_counter() - start)
    outcome = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
    figures = p50_p95(
        "face check 640x480",
        total,
        baseline=budget,
        note=f"{runs} checks over {len(cases)} probes: {outcome}",
    )
    figures += p50_p95("  HOG detection", detect, baseline=budget, note=f"upsample {UPSAMPLE}")
    if encode:
        figures += p50_p95("  128-d encoding", encode, baseline=budget)

    big = faces / "obama" / "probe2.jpg"
    image = load_rgb(big.read_bytes()) if big.is_file() else None
    if image is not None:
        downscaled = Figure("detection, frame at 640 px", float(np.median(detect)), "s")
        full = timings(
            lambda: face_recognition.face_locations(image, number_of_times_to_upsample=UPSAMPLE),
            3,
        )
        figures.append(
            Figure(
                f"detection on {image.shape[1]}x{image.shape[0]} undownscaled p50",
                float(np.median(full)),
                "s",
                float(np.median(full)) / downscaled.value,
                "640-px detection p50",
                "what the camera's downscale saves",
            )
        )
    figures.append(budget)
    return figures


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
    return Figure("dict lookup (baseline) p50", float(np.percentile(samples, 50)), "s")


def roll_figures(voters: int = VOTERS, lookups: int = LOOKUPS) -> list[Figure]:
    """A station roll in SQLite: lookup by PIN and the durable mark-voted write."""
    rng = random.Random(7)
    pins = [_pin(i) for i in rng.sample(range(10_000_000), voters)]
    misses = [_pin(10_000_000 + i) for i in range(lookups // 5)]
    queries = [rng.choice(pins) for _ in range(lookups - len(misses))] + misses
    rng.shuffle(queries)
    baseline = _dict_baseline(pins, queries)
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "station.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            "CREATE TABLE voters (id INTEGER PRIMARY KEY, pin TEXT NOT NULL, surname TEXT, "
            "name TEXT, birth_year INTEGER, template BLOB, voted_at TEXT)"
        )
        db.execute("CREATE UNIQUE INDEX voters_pin ON voters (pin)")
        template = np.zeros(128, dtype=np.float32).tobytes()
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO voters (pin, surname, name, birth_year, template) VALUES (?,?,?,?,?)",
            ((p, "Surname", "Name", 1970, template) for p in pins),
        )
        db.execute("COMMIT")
        sql = "SELECT id, surname, name, birth_year, voted_at FROM voters WHERE pin = ?"
        it = iter(queries)
        found = timings(lambda: db.execute(sql, (next(it),)).fetchone(), len(queries))
        marks = iter(rng.sample(pins, 200))

        def mark() -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "UPDATE voters SET voted_at = ? WHERE pin = ? AND voted_at IS NULL",
                ("2026-11-22T10:00:00+06:00", next(marks)),
            )
            db.execute("COMMIT")

        marked = timings(mark, 200)
        db.close()
    figures = [baseline]
    figures += p50_p95(
        f"roll lookup, SQLite {voters:,} voters",
        found,
        baseline=baseline,
        note=f"{lookups:,} lookups, 20% not on the roll; WAL, unique index on PIN",
    )
    figures += p50_p95(
        "mark voted (durable commit)",
        marked,
        baseline=baseline,
        note="UPDATE + COMMIT, WAL, synchronous=FULL, on this disk",
    )
    return figures


def national_figures(entries: int = NATIONAL, lookups: int = LOOKUPS) -> list[Figure]:
    """The national PIN index: build, size, lookup."""
    from election.pin_index import PinIndex, build_index, pin_key

    secret = b"bench national index secret 32b"
    station_ids = [f"S{n:04d}" for n in range(1, STATIONS + 1)]
    rng = random.Random(11)
    start = time.perf_counter()
    data = build_index(((_pin(i), i % STATIONS) for i in range(entries)), secret, STATIONS)
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
    figures += p50_p95(
        f"national index lookup, {entries:,} PINs",
        looked,
        baseline=baseline,
        note=f"{lookups:,} lookups, 20% nowhere",
    )
    figures += p50_p95("  of which HMAC of the PIN", hashed, baseline=baseline)
    return figures


def main() -> list[Figure]:
    """Every figure of this bench, in table order."""
    return face_figures() + roll_figures() + national_figures()


if __name__ == "__main__":
    where = one_core()
    print(f"one core ({where})")
    print(format_table([("face", f) for f in main()]))
    sys.exit(0)
