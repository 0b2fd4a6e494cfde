"""Face check figures for the identification desk, on one core.

- Face check (station.facecheck.FaceCheck) on 640x480 frames made from the
  shared probes (bench.common.letterbox: the whole photo fitted, grey bars),
  p50 / p95 over RUNS checks, split into HOG detection and 128-d encoding; and
  detection on a full-size photo to show what the camera's downscale saves.
  Ratio baseline: the issue's 0.5 s budget for the p95.

Roll lookups (station roll, national PIN index) and the durable mark are measured
on the real station in bench_identify.py, as parts of the decision time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from bench import Figure, format_table, one_core, p50_p95, timings
from bench.common import BUDGET, FACES, letterbox

RUNS = 50


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
                cases.append((letterbox(image), template))
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


def main() -> list[Figure]:
    """Every figure of this bench, in table order."""
    return face_figures()


if __name__ == "__main__":
    where = one_core()
    print(f"one core ({where})")
    print(format_table([("face", f) for f in main()]))
    sys.exit(0)
