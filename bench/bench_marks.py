"""Mark reading figures for the ballot box (ASU): reading time per sheet, and accuracy.

Set-up (real code, no files but the misread examples): the sample election
definitions alone (provisioning.sample.build_definition: a parliament election
and a presidential-and-referendum one, no roll, no faces), their ballot layouts
(provisioning.ballots.layouts_for), blank pages from render_png, and synthetic
sheets from firmware_sim.ballot_marks.make_deck (the default VoterMix; scans
50% default ScanDefects, 35% mild, 15% harsh).  Each station reads its sheets
with station.marks.read_sheet, as station.scanning does: the parliament station
takes the party list and its own single-member district; the presidential one
both of its styles.

The deck (SHEETS sheets; $SHAILOO_BENCH_SHEETS, default 10,000):
  94%  live sheets of the station's own styles, both elections, all three scanners,
       3% of the parliament ones another district's single-member ballot (foreign style)
   3%  the other election's sheets fed to a station (foreign election)
   2%  test-deck sheets (test corner markers) fed to a station in live mode
   1%  live sheets fed to a station in test mode

Reading time: read_sheet alone (not the generation), every sheet, on one core:
p50, p95, max.  Baseline in the same run: cv2.imdecode of the same scan as a PNG
(the first thing station.scanning does with a sheet), on every TIMING_EVERY-th
sheet; marker detection alone on the same sheets shows the reader's biggest part.

Accuracy: each contest's reading against the generator's truth
(firmware_sim.ballot_marks.expected_contests), each sheet's status against what
the sheet is.  Up to EXAMPLES misreads are saved as PNG + truth JSON + reading
JSON under a temporary directory (printed; never in the repository).

Sweep: MarkSettings.definite / marginal / stray_px on every (SHEETS // 1000)-th
sheet.  Fills and strays do not depend on those three settings (only on
ink_floor), so each setting is judged by re-classifying the stored box readings
with the reader's own station.marks._classify, not by reading again.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import Figure, format_table, one_core, percentile

SHEETS = int(os.environ.get("SHAILOO_BENCH_SHEETS", "10000"))
SEED = 2026
TIMING_EVERY = 25  # PNG-decode baseline and marker detection on every 25th sheet
SWEEP_SHEETS = 1000
EXAMPLES = 20  # misreads saved as PNG + truth
PER_KIND = 5  # of each kind of misread, so the examples cover every kind
RETURN_EXAMPLES = 10  # needless returns saved apart (threshold tuning)
PROGRESS_EVERY = 1000

# what a disagreement is, per contest: (truth status, read status) -> category
DEFINITE_MISREAD = "definite mark misread"
MARGINAL_COUNTED = "marginal counted as a vote"
WRONG_VOTE = "blank/overvote counted as a vote"
NEEDLESS_RETURN = "valid read as marginal (returned)"
BLANK_RETURNED = "blank read as marginal (returned)"
MISSED_MARGINAL = "marginal read as blank/overvote"
CONTEST_UNREADABLE = "contest unreadable"
OTHER = "other disagreement"
ERRORS = (DEFINITE_MISREAD, MARGINAL_COUNTED, WRONG_VOTE)


# --- the deck ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Station:
    """One election's layouts and the styles a station of it takes."""

    name: str
    layouts: Any  # election.ballot_layout.BallotLayouts
    allowed: frozenset[str]
    others: tuple[str, ...]  # styles of this election the station does not take

    def render(self, test: bool = False) -> Callable[[str], np.ndarray]:
        from provisioning.ballots import render_png

        layouts = self.layouts
        return lambda style_id: render_png(layouts, style_id, test=test)


@dataclass(frozen=True)
class Segment:
    """A run of make_deck: whose sheets, read by which station, how."""

    label: str
    maker: Station  # whose layouts the sheets are drawn from
    reader: Station  # the station that reads them
    n: int
    seed: int
    defects: str  # "default", "mild", "harsh"
    sheet: str = "normal"  # SheetKind value
    test_render: bool = False
    foreign_share: float = 0.0
    test_mode: bool = False


def stations() -> tuple[Station, Station]:
    """The parliament election's first station, and the presidential one's."""
    from provisioning.ballots import layouts_for
    from provisioning.sample import build_definition

    out = []
    for kind in ("parliament", "presidential"):
        definition = build_definition(stations=4, voters_per_station=0, seed=7, kind=kind)
        layouts = layouts_for(definition)
        ours = {c.id for c in definition.contests_for_station(definition.stations[0].id)}
        allowed = frozenset(
            s.style_id for s in layouts.styles if {c.contest_id for c in s.contests} <= ours
        )
        others = tuple(s.style_id for s in layouts.styles if s.style_id not in allowed)
        out.append(Station(kind, layouts, allowed, others))
    return out[0], out[1]


def plan(n: int, parl: Station, pres: Station) -> list[Segment]:
    """The deck's segments for n sheets (shares in the module docstring)."""
    shares: list[tuple[float, dict[str, Any]]] = []
    for st in (parl, pres):
        foreign = 0.03 if st.others else 0.0
        for defects, share in (("default", 0.50), ("mild", 0.35), ("harsh", 0.15)):
            shares.append(
                (
                    0.47 * share,
                    dict(
                        label=f"{st.name} {defects}",
                        maker=st,
                        reader=st,
                        defects=defects,
                        foreign_share=foreign,
                    ),
                )
            )
    for st, other in ((parl, pres), (pres, parl)):
        shares.append(
            (
                0.015,
                dict(
                    label=f"{other.name} sheets at {st.name}",
                    maker=other,
                    reader=st,
                    defects="default",
                    sheet="foreign",
                ),
            )
        )
    for st in (parl, pres):
        shares.append(
            (
                0.01,
                dict(
                    label=f"{st.name} test sheets, live",
                    maker=st,
                    reader=st,
                    defects="default",
                    sheet="test",
                    test_render=True,
                ),
            )
        )
        shares.append(
            (
                0.005,
                dict(
                    label=f"{st.name} live sheets, test mode",
                    maker=st,
                    reader=st,
                    defects="default",
                    test_mode=True,
                ),
            )
        )
    counts = [int(n * s) for s, _ in shares]
    counts[0] += n - sum(counts)
    return [
        Segment(n=c, seed=SEED * 100 + i, **kw)
        for i, (c, (_, kw)) in enumerate(zip(counts, shares, strict=True))
        if c > 0
    ]


def _defects(name: str) -> Any:
    from firmware_sim.ballot_marks import ScanDefects

    return {"default": ScanDefects(), "mild": ScanDefects.mild(), "harsh": ScanDefects.harsh()}[
        name
    ]


def sheets(segments: Sequence[Segment]) -> Iterator[tuple[Segment, int, Any]]:
    """(segment, index in its deck, SyntheticSheet) for every sheet of the plan."""
    from firmware_sim.ballot_marks import SheetKind, make_deck

    for seg in segments:
        maker = seg.maker
        deck = make_deck(
            maker.layouts,
            sorted(maker.allowed),
            seg.n,
            seg.seed,
            maker.render(seg.test_render),
            defects=_defects(seg.defects),
            sheet=SheetKind(seg.sheet),
            foreign_style_ids=maker.others if seg.foreign_share else (),
            foreign_share=seg.foreign_share,
        )
        for i, sheet in enumerate(deck):
            yield seg, i, sheet


def expected_status(seg: Segment, truth: Any) -> str:
    """The sheet status the reading station must report (a SheetStatus value)."""
    if seg.maker is not seg.reader:
        return "foreign_election"
    if truth.sheet.value == "test":
        return "ok" if seg.test_mode else "test_sheet_in_live"
    if truth.sheet.value == "foreign":
        return "foreign_style"
    return "live_sheet_in_test" if seg.test_mode else "ok"


# --- judging ------------------------------------------------------------------------------


def judge(truth: Any, read: Any) -> tuple[str, str]:
    """(category, kind) of one contest's reading against its truth; ("", "") when right."""
    t, r = truth.status.value, read.status.value
    if t == "valid" and r == "valid":
        if read.option_id != truth.option_id:
            return DEFINITE_MISREAD, "valid -> valid, another option"
        if read.candidate_id != truth.candidate_id:
            return DEFINITE_MISREAD, "valid -> valid, another preference"
        return "", ""
    if t == r:
        return "", ""
    kind = f"{t} -> {r}"
    if r == "unreadable":
        return CONTEST_UNREADABLE, kind
    if t == "valid":
        return (NEEDLESS_RETURN if r == "marginal" else DEFINITE_MISREAD), kind
    if t == "marginal":
        return (MARGINAL_COUNTED if r == "valid" else MISSED_MARGINAL), kind
    if r == "valid":
        return WRONG_VOTE, kind
    if t == "blank" and r == "marginal":
        return BLANK_RETURNED, kind
    return OTHER, kind


def _box_of(read: Any, key: tuple[str, str | None]) -> Any:
    return next(b for b in read.boxes if (b.option_id, b.candidate_id) == key)


def describe(truth: Any, read: Any, sheet_truth: Any) -> str:
    """The contest's marks as drawn and as read: kind, pen, coverage, ink -> fill, stray."""
    parts = []
    for m in sheet_truth.marks:
        mk = m.mark
        if mk.contest_id != truth.contest_id:
            continue
        b = _box_of(read, mk.key)
        s = f"{mk.kind.value}/{mk.pen.value}"
        if mk.coverage < 1:
            s += f" cov {mk.coverage:.2f}"
        s += f" ink {m.ink:.3f} -> fill {b.fill:.3f}"
        if m.touched:
            tb = _box_of(read, m.touched)
            s += f" (touched box fill {tb.fill:.3f} stray {tb.stray:.1f})"
        parts.append(s)
    hot = [b for b in read.boxes if b.stray >= 1.0]
    if hot:
        parts.append("strays " + ", ".join(f"{b.option_id}:{b.stray:.1f}" for b in hot[:4]))
    reasons = ",".join(read.reasons)
    return f"{'; '.join(parts) or 'no marks'}" + (f" [reasons {reasons}]" if reasons else "")


def signature(truth: Any, sheet_truth: Any) -> str:
    """The contest's mark kinds and pens, for grouping disagreements."""
    marks = sorted(
        f"{m.mark.kind.value}/{m.mark.pen.value}"
        for m in sheet_truth.marks
        if m.mark.contest_id == truth.contest_id
    )
    return " + ".join(marks) or "no marks"


_RANK = {"stray": 0, "faint": 1, "definite": 2}


def condition(seg: Segment, scan: dict[str, Any] | None) -> str:
    """The scanner and the defects of this scan that can put ink near a box."""
    parts = [seg.defects]
    if scan:
        parts += [k for k in ("fold", "streak") if scan.get(k)]
    return "+".join(parts)


@dataclass
class Margins:
    """Fill and stray by what is in the box, over every box read: where thresholds can go."""

    settings: Any  # MarkSettings in force
    fills: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    blank_fill: list[float] = field(default_factory=list)
    blank_stray: list[float] = field(default_factory=list)
    blank_top: list[tuple[float, float, str]] = field(default_factory=list)  # fill, stray, where
    blank_faint: Counter[str] = field(default_factory=Counter)  # scan condition -> boxes
    blank_strayed: Counter[str] = field(default_factory=Counter)
    marked_stray: list[float] = field(default_factory=list)
    touched_stray: list[float] = field(default_factory=list)

    def add(self, truth: Any, read: Any, cond: str, where: str) -> None:
        strongest: dict[tuple[str, str | None], Any] = {}
        touched: set[tuple[str, str | None]] = set()
        for m in truth.marks:
            mk = m.mark
            if mk.contest_id != read.contest_id:
                continue
            prev = strongest.get(mk.key)
            if prev is None or _RANK[mk.strength.value] > _RANK[prev.strength.value]:
                strongest[mk.key] = mk
            if m.touched:
                touched.add(m.touched)
        for key, mk in strongest.items():
            self.fills[f"{mk.kind.value}/{mk.pen.value}"].append(_box_of(read, key).fill)
        s = self.settings
        for b in read.boxes:
            key = (b.option_id, b.candidate_id)
            if key in touched:
                if key not in strongest:
                    self.touched_stray.append(b.stray)
                continue
            if key not in strongest:
                self.blank_fill.append(b.fill)
                self.blank_stray.append(b.stray)
                if b.fill >= s.marginal:
                    self.blank_faint[cond] += 1
                if b.stray >= s.stray_px:
                    self.blank_strayed[cond] += 1
                if b.fill >= s.marginal or b.stray >= s.stray_px:
                    self.blank_top.append((b.fill, b.stray, f"{where} {b.option_id} [{cond}]"))
            elif strongest[key].kind.value != "stray_touch":
                self.marked_stray.append(b.stray)

    def report(self) -> list[str]:
        s = self.settings
        lines = ["fill of the marked box, by its strongest mark's kind / pen:"]
        lines.append(
            f"  {'kind/pen':30s} {'min':>6s} {'p0.1':>6s} {'p1':>6s} {'p50':>6s} {'max':>6s}"
        )
        for key in sorted(self.fills):
            v = np.array(self.fills[key])
            lines.append(
                f"  {key:30s} {v.min():6.3f} {np.percentile(v, 0.1):6.3f} "
                f"{np.percentile(v, 1):6.3f} {np.median(v):6.3f} {v.max():6.3f}  ({len(v):,})"
            )
        if self.blank_fill:
            f, st = np.array(self.blank_fill), np.array(self.blank_stray)
            lines.append(
                f"unmarked boxes ({len(f):,}): fill p99.9 {np.percentile(f, 99.9):.4f} "
                f"p99.99 {np.percentile(f, 99.99):.4f} max {f.max():.4f}; "
                f"stray p99.9 {np.percentile(st, 99.9):.1f} p99.99 {np.percentile(st, 99.99):.1f}"
                f" max {st.max():.1f} px"
            )
            lines.append(
                f"  unmarked boxes with fill >= marginal {s.marginal}: "
                f"{sum(self.blank_faint.values())} {dict(self.blank_faint.most_common())}"
            )
            lines.append(
                f"  unmarked boxes with stray >= stray_px {s.stray_px:g}: "
                f"{sum(self.blank_strayed.values())} {dict(self.blank_strayed.most_common())}"
            )
            for fill, stray, where in sorted(
                self.blank_top, key=lambda x: -max(x[0] / s.marginal, x[1] / s.stray_px)
            )[:5]:
                lines.append(f"    fill {fill:.3f} stray {stray:.1f}: {where}")
        if self.marked_stray:
            m = np.array(self.marked_stray)
            lines.append(f"stray around marked boxes (not stray_touch): max {m.max():.1f} px")
        if self.touched_stray:
            t = np.array(self.touched_stray)
            lines.append(
                f"stray in boxes a stray_touch ran into (not marked themselves): min {t.min():.1f}"
                f" p1 {np.percentile(t, 1):.1f} p50 {np.median(t):.1f} px ({len(t)})"
            )
        return lines


def _default_settings() -> Any:
    from station.marks import MarkSettings

    return MarkSettings()


# --- the run ------------------------------------------------------------------------------


@dataclass
class Tally:
    sheets: int = 0
    sheet_matrix: Counter[tuple[str, str]] = field(default_factory=Counter)
    contest_matrix: Counter[tuple[str, str]] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    kinds: Counter[tuple[str, str]] = field(default_factory=Counter)
    signatures: Counter[tuple[str, str]] = field(default_factory=Counter)
    details: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    contests_by_truth: Counter[str] = field(default_factory=Counter)
    read_times: list[float] = field(default_factory=list)
    read_times_by_style: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    decode_times: list[float] = field(default_factory=list)
    detect_times: list[float] = field(default_factory=list)
    saved: int = 0
    saved_kinds: Counter[str] = field(default_factory=Counter)
    slowest: tuple[float, str] = (0.0, "")
    every: list[tuple[Any, Any]] = field(default_factory=list)  # all contests read, for checks
    saved_returns: int = 0
    sweep: list[tuple[Any, Any]] = field(default_factory=list)  # (truth contest, reading)
    sweep_sheets: int = 0
    margins: Margins = field(default_factory=lambda: Margins(_default_settings()))
    conditions: Counter[tuple[str, str]] = field(default_factory=Counter)  # kind, scan
    cond_contests: Counter[str] = field(default_factory=Counter)  # scan -> contests read


def _keep(tally: Tally, kind: str) -> bool:
    """Whether to save this misread: up to EXAMPLES in all, PER_KIND of each kind."""
    if tally.saved >= EXAMPLES or tally.saved_kinds[kind] >= PER_KIND:
        return False
    tally.saved += 1
    tally.saved_kinds[kind] += 1
    return True


def _save(
    out: Path, name: str, image: np.ndarray, seg: Segment, i: int, truth: Any, reading: Any
) -> None:
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out / f"{name}.png"), image)
    obj = {
        "segment": seg.label,
        "make_deck": {
            "election": seg.maker.name,
            "styles": sorted(seg.maker.allowed),
            "seed": seg.seed,
            "index": i,
            "defects": seg.defects,
            "sheet": seg.sheet,
            "test_render": seg.test_render,
            "foreign_share": seg.foreign_share,
        },
        "read_by": seg.reader.name,
        "test_mode": seg.test_mode,
        "truth": truth.to_json(),
        "reading": reading.to_obj(),
    }
    (out / f"{name}.json").write_text(json.dumps(obj, ensure_ascii=False, indent=1))


def run(n: int, out_dir: Path) -> Tally:
    import cv2

    from station.marks import _detect, read_sheet

    parl, pres = stations()
    segments = plan(n, parl, pres)
    tally = Tally()
    sweep_every = max(1, n // SWEEP_SHEETS)
    # warm up: geometry caches and the detector, outside the timing
    for st in (parl, pres):
        for style in sorted(st.allowed):
            read_sheet(st.render()(style), st.layouts, expected_test_mode=False)
    start = time.perf_counter()
    for k, (seg, i, sheet) in enumerate(sheets(segments)):
        truth = sheet.truth
        allowed = set(seg.reader.allowed)
        t0 = time.perf_counter()
        reading = read_sheet(
            sheet.image,
            seg.reader.layouts,
            expected_test_mode=seg.test_mode,
            allowed_styles=allowed,
        )
        dt = time.perf_counter() - t0
        want = expected_status(seg, truth)
        got = reading.status.value
        tally.sheets += 1
        tally.sheet_matrix[(want, got)] += 1
        if want == "ok":
            tally.read_times.append(dt)
            if dt > tally.slowest[0]:
                tally.slowest = (dt, f"{k:05d} {truth.style_id} {seg.defects}: {got}")
            tally.read_times_by_style[truth.style_id].append(dt)
            if k % TIMING_EVERY == 0:
                ok, buf = cv2.imencode(".png", sheet.image)
                if ok:
                    t0 = time.perf_counter()
                    cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
                    tally.decode_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                _detect(sheet.image)
                tally.detect_times.append(time.perf_counter() - t0)
        name = f"{k:05d}-{seg.maker.name}-{truth.style_id}"
        if want == "ok" and got != "ok":
            tally.categories["sheet wrongly refused"] += 1
            tally.details["sheet wrongly refused"].append(
                f"{name}: {got} ({reading.reason}); scan {_scan_note(truth.scan)}"
            )
            if _keep(tally, "sheet wrongly refused"):
                _save(out_dir, name, sheet.image, seg, i, truth, reading)
        elif want != "ok" and got == "ok":
            tally.categories["foreign/test sheet accepted"] += 1
            tally.details["foreign/test sheet accepted"].append(f"{name}: expected {want}")
            if _keep(tally, "foreign/test sheet accepted"):
                _save(out_dir, name, sheet.image, seg, i, truth, reading)
        elif want != got:
            tally.categories["refused for another reason"] += 1
            tally.details["refused for another reason"].append(
                f"{name}: expected {want}, read {got} ({reading.reason})"
            )
        if want == "ok":
            for ct in truth.contests:
                tally.contests_by_truth[ct.status.value] += 1
                cr = next((c for c in reading.contests if c.contest_id == ct.contest_id), None)
                if cr is None:
                    tally.contest_matrix[(ct.status.value, "(sheet refused)")] += 1
                    continue
                tally.contest_matrix[(ct.status.value, cr.status.value)] += 1
                cond = condition(seg, truth.scan)
                tally.cond_contests[cond] += 1
                tally.margins.add(truth, cr, cond, name)
                tally.every.append((ct, cr))
                category, kind = judge(ct, cr)
                if not category:
                    continue
                tally.categories[category] += 1
                tally.kinds[(category, kind)] += 1
                tally.signatures[(kind, signature(ct, truth))] += 1
                tally.conditions[(kind, cond)] += 1
                if len(tally.details[kind]) < 12:
                    tally.details[kind].append(f"{name}: {describe(ct, cr, truth)}")
                if category in ERRORS or category in (MISSED_MARGINAL, CONTEST_UNREADABLE):
                    if _keep(tally, kind):
                        _save(out_dir, name, sheet.image, seg, i, truth, reading)
                elif category == NEEDLESS_RETURN and tally.saved_returns < RETURN_EXAMPLES:
                    _save(out_dir / "returned", name, sheet.image, seg, i, truth, reading)
                    tally.saved_returns += 1
            if k % sweep_every == 0 and got == "ok":
                tally.sweep_sheets += 1
                for ct in truth.contests:
                    cr = next(c for c in reading.contests if c.contest_id == ct.contest_id)
                    tally.sweep.append((ct, cr))
        if (k + 1) % PROGRESS_EVERY == 0:
            el = time.perf_counter() - start
            errors = sum(tally.categories[c] for c in ERRORS)
            print(
                f"  marks: {k + 1:,}/{n:,} sheets, {el:.0f} s, errors {errors}, "
                f"returns {tally.categories[NEEDLESS_RETURN]}, "
                f"refused {tally.categories['sheet wrongly refused']}",
                file=sys.stderr,
                flush=True,
            )
    return tally


def _scan_note(scan: dict[str, Any] | None) -> str:
    if not scan:
        return "none"

    def r(v: Any) -> Any:
        if isinstance(v, float):
            return round(v, 2)
        if isinstance(v, list | tuple):
            return [r(x) for x in v]
        return v

    keys = ("rotation_deg", "scale", "blur_sigma", "noise_sigma", "fold", "streak", "jpeg_quality")
    return ", ".join(f"{k}={r(scan[k])}" for k in keys)


# --- the sweep ----------------------------------------------------------------------------

DEFINITE = (0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.10, 0.12)
MARGINAL = (0.003, 0.004, 0.006, 0.008, 0.010, 0.012, 0.015, 0.020, 0.025)
STRAY_PX = (2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 14.0)


@dataclass(frozen=True)
class SweepRow:
    definite: float
    marginal: float
    stray_px: float
    counts: dict[str, int]

    @property
    def errors(self) -> int:
        return sum(self.counts.get(c, 0) for c in ERRORS)

    @property
    def returns(self) -> int:
        return self.counts.get(NEEDLESS_RETURN, 0) + self.counts.get(BLANK_RETURNED, 0)

    def key(self) -> tuple[int, int, int, int, float]:
        from station.marks import MarkSettings

        d = MarkSettings()
        off = (
            abs(self.definite - d.definite) / d.definite
            + abs(self.marginal - d.marginal) / d.marginal
            + abs(self.stray_px - d.stray_px) / d.stray_px
        )
        return (
            self.counts.get(DEFINITE_MISREAD, 0),
            self.counts.get(MARGINAL_COUNTED, 0) + self.counts.get(WRONG_VOTE, 0),
            self.returns,
            self.counts.get(MISSED_MARGINAL, 0),
            off,
        )


def sweep(pairs: Sequence[tuple[Any, Any]]) -> list[SweepRow]:
    """Every grid setting judged on the stored readings, re-classified by the reader's rules."""
    from station.marks import MarkSettings

    rows = []
    for d, m, s in itertools.product(DEFINITE, MARGINAL, STRAY_PX):
        if not m < d:
            continue
        rows.append(score(pairs, MarkSettings(definite=d, marginal=m, stray_px=s)))
    rows.sort(key=SweepRow.key)
    return rows


def score(pairs: Sequence[tuple[Any, Any]], settings: Any) -> SweepRow:
    """Disagreement counts of these settings on stored readings (station.marks._classify)."""
    from station.marks import _classify

    counts: Counter[str] = Counter()
    for ct, cr in pairs:
        if cr.status.value == "unreadable":
            continue  # a box off the image: no threshold changes that
        category, _ = judge(ct, _classify(cr.contest_id, cr.boxes, settings))
        if category:
            counts[category] += 1
    return SweepRow(settings.definite, settings.marginal, settings.stray_px, dict(counts))


# --- report -------------------------------------------------------------------------------


def _matrix(counter: Counter[tuple[str, str]], rows: Sequence[str], cols: Sequence[str]) -> str:
    rows = [r for r in rows if any(counter[(r, c)] for c in cols)]
    cols = [c for c in cols if any(counter[(r, c)] for r in rows)]
    w0 = max([len("truth \\ read"), *map(len, rows)])
    widths = [max(len(c), 6) for c in cols]
    lines = [
        "truth \\ read".ljust(w0)
        + "  "
        + "  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))
    ]
    for r in rows:
        cells = [f"{counter[(r, c)]:,}" if counter[(r, c)] else "." for c in cols]
        lines.append(
            r.ljust(w0) + "  " + "  ".join(x.rjust(w) for x, w in zip(cells, widths, strict=True))
        )
    return "\n".join(lines)


SHEET_STATUSES = (
    "ok",
    "foreign_style",
    "foreign_election",
    "test_sheet_in_live",
    "live_sheet_in_test",
    "unreadable",
)
CONTEST_STATUSES = ("valid", "blank", "overvote", "marginal", "unreadable", "(sheet refused)")


def report(tally: Tally, out_dir: Path, rows: list[SweepRow]) -> None:
    print(
        f"\nmarks: {tally.sheets:,} sheets read; contests by truth: {dict(tally.contests_by_truth)}"
    )
    print("\nsheets, expected status x read status:")
    print(_matrix(tally.sheet_matrix, SHEET_STATUSES, SHEET_STATUSES))
    print("\ncontests of sheets that must be read, truth x reading:")
    print(_matrix(tally.contest_matrix, CONTEST_STATUSES, CONTEST_STATUSES))
    print("\ndisagreements by kind:")
    if not tally.kinds and not tally.details:
        print("  none")
    for (category, kind), count in sorted(tally.kinds.items(), key=lambda x: -x[1]):
        print(f"  {count:6,}  {kind:38s} ({category})")
        sigs = [(s, c) for (k, s), c in tally.signatures.items() if k == kind]
        shown = 20 if category in ERRORS or category == MISSED_MARGINAL else 6
        for sig, c in sorted(sigs, key=lambda x: -x[1])[:shown]:
            print(f"          {c:5,}  {sig}")
        conds = [(s, c) for (k, s), c in tally.conditions.items() if k == kind]
        scans = ", ".join(
            f"{s} {c}/{tally.cond_contests[s]:,}" for s, c in sorted(conds, key=lambda x: -x[1])
        )
        print(f"          scans: {scans}")
        for line in tally.details[kind][:4]:
            print(f"          e.g. {line}")
    for key in (
        "sheet wrongly refused",
        "foreign/test sheet accepted",
        "refused for another reason",
    ):
        if tally.categories[key]:
            print(f"  {tally.categories[key]:6,}  {key}")
            for line in tally.details[key][:6]:
                print(f"          e.g. {line}")
    print("\nwhere the thresholds can go (all contests of sheets read):")
    for line in tally.margins.report():
        print(f"  {line}")
    print(
        f"\nmisread examples ({tally.saved}) and needless returns "
        f"({tally.saved_returns}, in returned/): {out_dir}"
    )
    from station.marks import MarkSettings

    d = MarkSettings()
    default = next(
        (
            r
            for r in rows
            if (r.definite, r.marginal, r.stray_px) == (d.definite, d.marginal, d.stray_px)
        ),
        None,
    )
    n_contests = len(tally.sweep)
    print(
        f"\nsweep on {tally.sweep_sheets:,} sheets ({n_contests:,} contests), "
        f"{len(rows)} settings: definite x marginal x stray_px"
    )
    print(
        "  definite  marginal  stray_px  misread  marginal counted  wrong vote  returns"
        "  missed marginal"
    )

    def row_text(r: SweepRow, tag: str = "") -> str:
        c = r.counts
        return (
            f"  {r.definite:8.3f}  {r.marginal:8.3f}  {r.stray_px:8.1f}"
            f"  {c.get(DEFINITE_MISREAD, 0):7d}"
            f"  {c.get(MARGINAL_COUNTED, 0):16d}  {c.get(WRONG_VOTE, 0):10d}  {r.returns:7d}"
            f"  {c.get(MISSED_MARGINAL, 0):15d}{tag}"
        )

    for r in rows[:8]:
        print(row_text(r))
    if default is not None:
        print(row_text(default, "   <- defaults"))
    safe = [r for r in rows if r.errors == 0]
    if safe:
        best_returns = min(r.returns for r in safe)
        tied = [r for r in safe if r.returns == best_returns]
        print(
            f"  {len(safe)} of {len(rows)} settings: 0 misread, 0 marginal counted, 0 wrong votes; "
            f"fewest returns {best_returns}, reached by {len(tied)} settings: definite "
            f"{min(r.definite for r in tied)}..{max(r.definite for r in tied)}, marginal "
            f"{min(r.marginal for r in tied)}..{max(r.marginal for r in tied)}, stray_px "
            f"{min(r.stray_px for r in tied)}..{max(r.stray_px for r in tied)}"
        )
        strict = [r for r in safe if r.counts.get(MISSED_MARGINAL, 0) == 0]
        if strict:
            b = strict[0]
            print(
                f"  also 0 marginal read as blank: {len(strict)} settings; fewest returns "
                f"{b.returns} at definite {b.definite}, marginal {b.marginal}, "
                f"stray_px {b.stray_px:g}"
            )
        else:
            print("  no setting of the grid also gives 0 marginal read as blank")
    else:
        print("  no setting of the grid gives 0 misread and 0 marginal counted")
    from station.marks import MarkSettings as S

    check = [r for r in rows if r.errors == 0][:5]
    if check and tally.every:
        print(f"  the subset's best settings on all {len(tally.every):,} contests read:")
        for r in check:
            full = score(
                tally.every, S(definite=r.definite, marginal=r.marginal, stray_px=r.stray_px)
            )
            print(row_text(full))
        print(row_text(score(tally.every, S()), "   <- defaults"))


def figures(tally: Tally, rows: list[SweepRow]) -> list[Figure]:
    times = tally.read_times
    decode = tally.decode_times
    base = {q: Figure(f"PNG decode of the scan p{q}", percentile(decode, q), "s") for q in (50, 95)}
    out = []
    for q in (50, 95):
        v = percentile(times, q)
        out.append(
            Figure(
                f"read_sheet, A4 200 dpi p{q}",
                v,
                "s",
                v / base[q].value,
                base[q].name,
                f"{len(times):,} sheets read OK-expected; aim p95 < 20 ms" if q == 50 else "",
            )
        )
    out[-1] = out[-1].answers(
        "mark reading per sheet",
        f"station.marks.read_sheet alone on one core, {len(times):,} synthetic A4 200 dpi scans "
        "(firmware_sim.ballot_marks.make_deck: both elections, default/mild/harsh scanners); "
        f"baseline: cv2.imdecode of the same scan as PNG, every {TIMING_EVERY}th sheet",
    )
    mx = max(times)
    out.append(
        Figure("read_sheet max", mx, "s", mx / base[95].value, base[95].name, tally.slowest[1])
    )
    for style, ts in sorted(tally.read_times_by_style.items()):
        v = percentile(ts, 95)
        out.append(
            Figure(
                f"  {style} p95", v, "s", v / base[95].value, base[95].name, f"{len(ts):,} sheets"
            )
        )
    if tally.detect_times:
        v = percentile(tally.detect_times, 50)
        out.append(
            Figure(
                "  marker detection alone p50",
                v,
                "s",
                v / base[50].value,
                base[50].name,
                f"{len(tally.detect_times)} sheets",
            )
        )
    out += [base[50], base[95]]
    valid = tally.contests_by_truth["valid"]
    marginal = tally.contests_by_truth["marginal"]
    normal = sum(c for (w, _), c in tally.sheet_matrix.items() if w == "ok")
    other = tally.sheets - normal
    c = tally.categories
    read = sum(tally.contests_by_truth.values())
    wrong = c[DEFINITE_MISREAD] + c[MARGINAL_COUNTED] + c[WRONG_VOTE]
    out += [
        Figure(
            "contests counted wrongly",
            wrong,
            "contests",
            note=f"of {read:,} read ({100 * wrong / max(1, read):.2f}%); "
            f"{c['sheet wrongly refused']} sheets wrongly refused",
        ).answers(
            "mark reading accuracy",
            f"each contest of {tally.sheets:,} synthetic sheets read against the generator's "
            f"truth: {DEFINITE_MISREAD} + {MARGINAL_COUNTED} + {WRONG_VOTE} (the errors that "
            "change a count; needless returns are counted apart)",
        ),
        Figure("sheets read", tally.sheets, "", note=f"{normal:,} normal, {other:,} foreign/test"),
        Figure(
            DEFINITE_MISREAD, c[DEFINITE_MISREAD], "contests", note=f"of {valid:,} valid (aim 0)"
        ),
        Figure(
            MARGINAL_COUNTED,
            c[MARGINAL_COUNTED],
            "contests",
            note=f"of {marginal:,} marginal (must be 0)",
        ),
        Figure(WRONG_VOTE, c[WRONG_VOTE], "contests"),
        Figure(NEEDLESS_RETURN, c[NEEDLESS_RETURN], "contests", note=f"of {valid:,} valid"),
        Figure(BLANK_RETURNED, c[BLANK_RETURNED], "contests"),
        Figure(MISSED_MARGINAL, c[MISSED_MARGINAL], "contests"),
        Figure(CONTEST_UNREADABLE, c[CONTEST_UNREADABLE], "contests"),
        Figure(
            "sheets wrongly refused", c["sheet wrongly refused"], "sheets", note=f"of {normal:,}"
        ),
        Figure(
            "foreign/test sheets accepted",
            c["foreign/test sheet accepted"],
            "sheets",
            note=f"of {other:,}",
        ),
        Figure("foreign/test refused, other reason", c["refused for another reason"], "sheets"),
    ]
    safe = [r for r in rows if r.errors == 0]
    if safe:
        b = safe[0]
        out.append(
            Figure(
                "sweep: fewest returns with 0 errors",
                b.returns,
                "contests",
                note=f"definite {b.definite}, marginal {b.marginal}, stray_px {b.stray_px:g} "
                f"({tally.sweep_sheets:,} sheets)",
            )
        )
    return out


def main() -> list[Figure]:
    """Every figure of this bench, in table order."""
    import cv2

    cv2.setNumThreads(1)
    out_dir = Path(tempfile.mkdtemp(prefix="shailoo-bench-marks-"))
    print(
        f"marks: {SHEETS:,} sheets; misread examples go to {out_dir}", file=sys.stderr, flush=True
    )
    tally = run(SHEETS, out_dir)
    start = time.perf_counter()
    rows = sweep(tally.sweep)
    print(f"  marks: sweep {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    report(tally, out_dir, rows)
    return figures(tally, rows)


if __name__ == "__main__":
    where = one_core()
    print(f"one core ({where})")
    print(format_table([("marks", f) for f in main()]))
    sys.exit(0)
