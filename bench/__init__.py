"""Benchmarks: `python -m bench` (what `make bench` runs) prints figures, never asserts on time.

Each `bench/bench_*.py` module has `main() -> list[Figure]`; `python -m bench`
runs them all and prints one table, each figure with its ratio to a baseline
measured in the same run, so figures from different machines can be compared.

Importing this package limits the process to one core before numpy, OpenCV or
dlib start threads: the station appliance is judged on one core.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ.setdefault(_var, "1")


@dataclass(frozen=True)
class Figure:
    """One measured number; `ratio` is value / the value of the figure named `baseline`.

    `issue` names the issue's figure (one of ISSUE_FIGURES) this row answers, if any: those
    rows are repeated in the summary printed after the full table, with `how` (how the
    figure was measured, a sentence or two) as a footnote.
    """

    name: str
    value: float
    unit: str  # "s" for times (printed in a readable unit), anything else printed as is
    ratio: float | None = None
    baseline: str = ""
    note: str = ""
    issue: str = ""
    how: str = ""

    def answers(self, issue: str, how: str) -> Figure:
        """This figure as the row that answers the issue's figure `issue`, measured as `how`."""
        if issue not in {label for _, label in ISSUE_FIGURES}:
            raise ValueError(f"not one of the issue's figures: {issue!r}")
        return replace(self, issue=issue, how=how)


# The figures `make bench` must show (issue 8), in the order the summary prints them, each
# with the bench that measures it.
ISSUE_FIGURES: tuple[tuple[str, str], ...] = (
    ("identify", "identification decision time"),
    ("marks", "mark reading per sheet"),
    ("marks", "mark reading accuracy"),
    ("uplink", "uplink delivery"),
    ("ingest", "central ingest rate"),
    ("ingest", "publish-to-visible latency"),
    ("site", "site requests per second"),
    ("verify", "verifier time"),
    ("storm", "closing storm"),
)


def one_core() -> str:
    """Pin this process (and every thread it starts) to one CPU; says which, for the table."""
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        where = f"CPU {cpu}"
    else:  # not Linux: thread limits only
        where = "thread limits only"
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass
    return where


def percentile(samples: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank, of timing samples."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
    return ordered[int(rank) - 1]


def timings(fn: Callable[[], object], runs: int) -> list[float]:
    """Seconds taken by each of `runs` calls of fn."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def p50_p95(
    name: str,
    samples: list[float],
    *,
    baseline: Figure | None = None,
    note: str = "",
) -> list[Figure]:
    """Two time figures, p50 and p95, with ratios to the baseline's value."""
    out = []
    for q in (50, 95):
        value = percentile(samples, q)
        ratio = value / baseline.value if baseline and baseline.value > 0 else None
        out.append(
            Figure(
                f"{name} p{q}",
                value,
                "s",
                ratio,
                baseline.name if baseline else "",
                note if q == 50 else "",
            )
        )
    return out


def format_value(value: float, unit: str) -> str:
    if unit != "s":
        return f"{value:,.6g} {unit}".strip()
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.2f} us"


def format_table(rows: list[tuple[str, Figure]]) -> str:
    """Bench name, figure, value, ratio to baseline, baseline, note: one aligned table."""
    header = ("bench", "figure", "value", "x baseline", "baseline", "note")
    cells = [
        (
            bench,
            f.name,
            format_value(f.value, f.unit),
            "" if f.ratio is None else f"{f.ratio:,.2f}",
            f.baseline,
            f.note,
        )
        for bench, f in rows
    ]
    return _columns(header, cells, right=(2, 3))


def format_summary(
    rows: list[tuple[str, Figure]], ran: Iterable[str] = (), failed: Iterable[str] = ()
) -> str:
    """One row per figure of ISSUE_FIGURES: value, its baseline (name and value, from the same
    run) and the ratio, and a footnote number for how it was measured; footnotes follow.
    A figure no row answers says whether its bench was not run or gave no such row."""
    ran, failed = set(ran), set(failed)
    by_name = {(bench, f.name): f for bench, f in rows}
    header = ("issue figure", "measured", "value", "baseline", "baseline value", "x baseline",
              "how")  # fmt: skip
    cells: list[tuple[str, ...]] = []
    notes: list[str] = []
    for bench, label in ISSUE_FIGURES:
        answers = [f for b, f in rows if b == bench and f.issue == label]
        if not answers:
            why = ("failed: see above" if bench in failed
                   else "gave no such figure" if bench in ran else "not run")  # fmt: skip
            cells.append((label, f"(bench_{bench} {why})", "", "", "", "", ""))
            continue
        for f in answers:
            base = by_name.get((bench, f.baseline))
            how = f"{bench}: {f.how}" if f.how else ""
            if how and how not in notes:
                notes.append(how)
            cells.append(
                (
                    label,
                    f.name.strip(),
                    format_value(f.value, f.unit),
                    f.baseline.strip(),
                    format_value(base.value, base.unit) if base else "",
                    "" if f.ratio is None else f"{f.ratio:,.2f}",
                    f"[{notes.index(how) + 1}]" if how else "",
                )
            )
    footnotes = [f"[{i}] {how}" for i, how in enumerate(notes, 1)]
    return "\n".join([_columns(header, cells, right=(2, 4, 5)), "", *footnotes])


def _columns(
    header: tuple[str, ...], cells: Sequence[tuple[str, ...]], right: tuple[int, ...]
) -> str:
    """A plain-text table: a header, a rule, the cells (the `right` columns right-aligned)."""
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        lines.append(
            "  ".join(
                (c.rjust(w) if i in right else c.ljust(w))
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
    return "\n".join(lines)
