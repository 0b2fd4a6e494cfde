"""Measure the 1:1 face check on a folder of photos: the figures the threshold is chosen from.

Layout (as ../shared/data/faces): one folder per person holding `enroll.*` (the
registration photo) and `probe*.*` (other photos of that person); folders whose
name starts with `_` are ignored.  Each enrolment photo is encoded the way the
CEC does (`encode_face` on the whole photo); each probe the way the station
sees it (downscaled to a camera frame first).  Every probe is compared with its
own person's template (genuine) and with every other template (impostor); a
person whose enrolment photo gives no template is a failure to enrol, and that
person's probes are then impostor attempts only.

Probes in which no single face is found are a failure to acquire, counted
apart: they never reach a comparison, so they are neither a false match nor a
false non-match (ISO/IEC 19795-1 keeps them apart the same way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biometrics.face import (
    CAMERA_MAX_SIDE,
    MATCH_THRESHOLD,
    UPSAMPLE,
    downscale,
    encode_face,
    face_distance,
    load_rgb,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
BIN_WIDTH = 0.05


class EvaluationError(ValueError):
    """The folder cannot be evaluated (missing, or holds no enrolled person)."""


@dataclass(frozen=True)
class Person:
    name: str
    enroll: Path
    probes: tuple[Path, ...]


@dataclass(frozen=True)
class Comparison:
    probe: str  # "person/file"
    template: str  # person whose template it was compared with
    genuine: bool
    distance: float


@dataclass
class Evaluation:
    """Distances and rates at one threshold; `to_dict()` is the --json output."""

    threshold: float
    max_side: int
    people: int
    enrolled: int
    probes: int
    enrol_failures: dict[str, str] = field(default_factory=dict)  # person -> status
    acquire_failures: dict[str, str] = field(default_factory=dict)  # probe -> status
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def genuine(self) -> list[float]:
        return sorted(c.distance for c in self.comparisons if c.genuine)

    @property
    def impostor(self) -> list[float]:
        return sorted(c.distance for c in self.comparisons if not c.genuine)

    @property
    def false_matches(self) -> int:
        return sum(1 for d in self.impostor if d <= self.threshold)

    @property
    def false_non_matches(self) -> int:
        return sum(1 for d in self.genuine if d > self.threshold)

    @property
    def fmr(self) -> float | None:
        """False match rate: impostor comparisons at or below the threshold."""
        return self.false_matches / len(self.impostor) if self.impostor else None

    @property
    def fnmr(self) -> float | None:
        """False non-match rate: genuine comparisons above the threshold (acquired probes only)."""
        return self.false_non_matches / len(self.genuine) if self.genuine else None

    @property
    def fta(self) -> float | None:
        """Failure-to-acquire rate over the probes of enrolled people."""
        tried = len(self.genuine) + len(self.acquire_failures)
        return len(self.acquire_failures) / tried if tried else None

    @property
    def margin(self) -> float | None:
        """Closest impostor minus farthest genuine: > 0 means some threshold separates the set."""
        if not self.genuine or not self.impostor:
            return None
        return self.impostor[0] - self.genuine[-1]

    def histogram(self) -> dict[str, Any]:
        """Counts per BIN_WIDTH bin of distance, from 0 to the largest distance seen."""
        top = max([self.threshold, *self.genuine, *self.impostor])
        bins = max(1, math.ceil(top / BIN_WIDTH + 1e-9))
        edges = [round(i * BIN_WIDTH, 2) for i in range(bins + 1)]

        def counts(values: list[float]) -> list[int]:
            out = [0] * bins
            for v in values:
                out[min(bins - 1, int(v / BIN_WIDTH))] += 1
            return out

        return {
            "bin_width": BIN_WIDTH,
            "edges": edges,
            "genuine": counts(self.genuine),
            "impostor": counts(self.impostor),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "frame_max_side": self.max_side,
            "counts": {
                "people": self.people,
                "enrolled": self.enrolled,
                "probes": self.probes,
                "genuine_comparisons": len(self.genuine),
                "impostor_comparisons": len(self.impostor),
                "failure_to_enrol": len(self.enrol_failures),
                "failure_to_acquire": len(self.acquire_failures),
                "false_matches": self.false_matches,
                "false_non_matches": self.false_non_matches,
            },
            "genuine": summary(self.genuine),
            "impostor": summary(self.impostor),
            "fmr": self.fmr,
            "fnmr": self.fnmr,
            "fmr_upper95": upper95(self.false_matches, len(self.impostor)),
            "fnmr_upper95": upper95(self.false_non_matches, len(self.genuine)),
            "fta": self.fta,
            "margin": self.margin,
            "threshold_to_genuine_max": (
                self.threshold - self.genuine[-1] if self.genuine else None
            ),
            "impostor_min_to_threshold": (
                self.impostor[0] - self.threshold if self.impostor else None
            ),
            "enrol_failures": dict(self.enrol_failures),
            "acquire_failures": dict(self.acquire_failures),
            "histogram": self.histogram(),
            "comparisons": [
                {
                    "probe": c.probe,
                    "template": c.template,
                    "genuine": c.genuine,
                    "distance": round(c.distance, 6),
                }
                for c in self.comparisons
            ],
        }


def upper95(errors: int, trials: int) -> float | None:
    """One-sided 95% upper bound on an error rate (Clopper-Pearson): what a small set can claim.

    0 errors in 40 trials still allows a true rate up to 7.2%; the report says so.
    """
    if trials <= 0:
        return None
    if errors >= trials:
        return 1.0

    def cdf(p: float) -> float:  # P(X <= errors) for X ~ Binomial(trials, p)
        return sum(math.comb(trials, i) * p**i * (1 - p) ** (trials - i) for i in range(errors + 1))

    lo, hi = errors / trials, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) > 0.05 else (lo, mid)
    return hi


def summary(values: list[float]) -> dict[str, float | int | None]:
    """n, min, p50, max of a list of distances (None when empty)."""
    if not values:
        return {"n": 0, "min": None, "p50": None, "max": None}
    return {
        "n": len(values),
        "min": float(min(values)),
        "p50": float(np.percentile(values, 50)),
        "max": float(max(values)),
    }


def discover(faces_dir: Path) -> list[Person]:
    """The people in a faces folder, in name order; persons without an enroll photo are skipped."""
    if not faces_dir.is_dir():
        raise EvaluationError(f"{faces_dir} is not a directory of person folders")
    people = []
    for d in sorted(faces_dir.iterdir()):
        if not d.is_dir() or d.name.startswith(("_", ".")):
            continue
        photos = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        enroll = [p for p in photos if p.stem == "enroll"]
        if not enroll:
            continue
        probes = tuple(p for p in photos if p.stem.startswith("probe"))
        people.append(Person(d.name, enroll[0], probes))
    if not people:
        raise EvaluationError(f"{faces_dir} holds no person folder with an enroll photo")
    return people


def evaluate(
    faces_dir: Path,
    threshold: float = MATCH_THRESHOLD,
    *,
    max_side: int = CAMERA_MAX_SIDE,
    upsample: int = UPSAMPLE,
) -> Evaluation:
    """Enrol every person, compare every probe with every template; see the module doc."""
    people = discover(faces_dir)
    templates: dict[str, np.ndarray] = {}
    ev = Evaluation(
        threshold=threshold,
        max_side=max_side,
        people=len(people),
        enrolled=0,
        probes=sum(len(p.probes) for p in people),
    )
    for person in people:
        image = load_rgb(person.enroll.read_bytes())
        e = encode_face(image, upsample=upsample) if image is not None else None
        if e is None or e.encoding is None:
            ev.enrol_failures[person.name] = e.status if e is not None else "unreadable"
            continue
        templates[person.name] = e.encoding
    ev.enrolled = len(templates)
    for person in people:
        for probe in person.probes:
            label = f"{person.name}/{probe.name}"
            image = load_rgb(probe.read_bytes())
            if image is None:
                ev.acquire_failures[label] = "unreadable"
                continue
            frame, _ = downscale(image, max_side)
            e = encode_face(frame, upsample=upsample)
            if e.encoding is None:
                ev.acquire_failures[label] = e.status
                continue
            for name, template in templates.items():
                ev.comparisons.append(
                    Comparison(
                        label, name, name == person.name, face_distance(e.encoding, template)
                    )
                )
    return ev


def _bar(n: int, scale: float) -> str:
    return "#" * (math.ceil(n * scale) if n else 0)


def format_report(ev: Evaluation) -> str:
    """The human-readable report `shailoo station face-eval` prints."""

    def f(x: float | None, digits: int = 3) -> str:
        return "-" if x is None else f"{x:.{digits}f}"

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.2f}%"

    d = ev.to_dict()
    c = d["counts"]
    lines = [
        f"face evaluation at threshold {ev.threshold:.3f} (probes as {ev.max_side}-px frames)",
        f"people {c['people']}, enrolled {c['enrolled']}, probes {c['probes']}; "
        f"comparisons: {c['genuine_comparisons']} genuine, {c['impostor_comparisons']} impostor",
    ]
    for name, status in ev.enrol_failures.items():
        lines.append(f"  failure to enrol: {name} ({status})")
    for label, status in ev.acquire_failures.items():
        lines.append(f"  failure to acquire: {label} ({status})")
    lines.append("")
    lines.append(f"{'distance':<10}{'n':>5} {'min':>7} {'p50':>7} {'max':>7}")
    for kind in ("genuine", "impostor"):
        s = d[kind]
        lines.append(f"{kind:<10}{s['n']:>5} {f(s['min']):>7} {f(s['p50']):>7} {f(s['max']):>7}")
    lines.append("")
    h = d["histogram"]
    biggest = max([1, *h["genuine"], *h["impostor"]])
    scale = min(1.0, 30 / biggest)
    lines.append(f"{'bin':<11}{'genuine':<32}impostor")
    threshold_shown = False
    for i, (g, imp) in enumerate(zip(h["genuine"], h["impostor"], strict=True)):
        lo, hi = h["edges"][i], h["edges"][i + 1]
        if not threshold_shown and ev.threshold < hi:
            lines.append(f"{'':<11}---- threshold {ev.threshold:.3f} ----")
            threshold_shown = True
        gbar = f"{_bar(g, scale)} {g}" if g else ""
        ibar = f"{_bar(imp, scale)} {imp}" if imp else ""
        lines.append(f"{lo:.2f}-{hi:.2f} {gbar:<32}{ibar}")
    lines.append("")
    lines.append(
        f"false match rate      {pct(ev.fmr)} ({c['false_matches']} of "
        f"{c['impostor_comparisons']}; 95% upper bound {pct(d['fmr_upper95'])})"
    )
    lines.append(
        f"false non-match rate  {pct(ev.fnmr)} ({c['false_non_matches']} of "
        f"{c['genuine_comparisons']}; 95% upper bound {pct(d['fnmr_upper95'])})"
    )
    lines.append(
        f"failure to acquire    {pct(ev.fta)} ({c['failure_to_acquire']} probes, counted apart)"
    )
    lines.append(
        f"margin                {f(ev.margin)} (closest impostor - farthest genuine); "
        f"threshold is {f(d['threshold_to_genuine_max'])} above the farthest genuine and "
        f"{f(d['impostor_min_to_threshold'])} below the closest impostor"
    )
    return "\n".join(line.rstrip() for line in lines)
