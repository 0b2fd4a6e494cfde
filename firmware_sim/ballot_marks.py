"""Synthetic ballot sheets: marked the way people mark, scanned the way scanners scan.

The mark reader (`station`) cannot be measured on real ballots before an
election, so this module makes sheets whose truth is known: it takes a
*rendered* blank ballot page (it never renders one itself, so it exercises the
real renderer's output), draws voters' marks inside the boxes of the layout
(`election.ballot_layout`), and passes the page through a simulated scanner.
Every sheet comes with a JSON-serialisable truth: what the voter did and the
status the reader must report for each contest (see `expected_contests`).

Everything is a pure function of its inputs and a `numpy.random.Generator`:
the same seed gives the same pixels and the same truth, so a misread found by
a benchmark can be reproduced from its seed and sheet number alone.

    sheets = make_deck(layouts, ["parliament-list"], 10_000, seed=1,
                       render=lambda s: render_png(layouts, s))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import cv2
import numpy as np

from election.ballot_layout import BallotLayouts, BallotStyle, Box, ContestLayout, Rect

__all__ = [
    "BoxKey",
    "ContestTruth",
    "Intent",
    "Mark",
    "MarkKind",
    "MarkTruth",
    "Pen",
    "ScanDefects",
    "ScanParams",
    "SheetKind",
    "SheetTruth",
    "Status",
    "Strength",
    "SyntheticSheet",
    "TestDeck",
    "VoterMix",
    "VoterModel",
    "apply_scan",
    "draw_scan",
    "expected_contests",
    "expected_tally",
    "make_deck",
    "mark_sheet",
    "neighbour",
    "random_intent",
    "scan",
    "test_deck",
    "to_gray",
]

BoxKey = tuple[str, str | None]  # (option_id, candidate_id): one box within a contest


# --- vocabulary -------------------------------------------------------------------------


class MarkKind(StrEnum):
    """What a voter's hand left in a box."""

    FILL = "fill"  # box filled (wholly or partly) with back-and-forth strokes
    X = "x"  # a cross
    TICK = "tick"  # a check mark
    CIRCLE = "circle"  # an "O" drawn inside the box
    SCRIBBLE = "scribble"  # a tangled scrawl
    DOT = "dot"  # a small dot (pen resting on the paper): not a vote
    LIGHT = "light"  # a faint, short stroke: the voter hesitated or the pen barely touched
    STRAY_TOUCH = "stray_touch"  # a definite tick whose stroke runs into a neighbouring box


class Pen(StrEnum):
    BLACK_BALLPOINT = "black_ballpoint"
    BLUE_BALLPOINT = "blue_ballpoint"
    PENCIL = "pencil"
    MARKER = "marker"


class Strength(StrEnum):
    """How the reader must see a mark: the basis of every expected status."""

    DEFINITE = "definite"
    FAINT = "faint"
    STRAY = "stray"  # too small to be a mark at all (a dot)


class Status(StrEnum):
    VALID = "valid"
    OVERVOTE = "overvote"
    BLANK = "blank"
    MARGINAL = "marginal"


class SheetKind(StrEnum):
    """What the sheet is, independent of its marks."""

    NORMAL = "normal"  # a live sheet of this station's election and district
    FOREIGN = "foreign"  # another district's or another election's sheet
    TEST = "test"  # a logic-and-accuracy test-deck sheet (test corner markers)


STRENGTH: dict[MarkKind, Strength] = {
    MarkKind.FILL: Strength.DEFINITE,
    MarkKind.X: Strength.DEFINITE,
    MarkKind.TICK: Strength.DEFINITE,
    MarkKind.CIRCLE: Strength.DEFINITE,
    MarkKind.SCRIBBLE: Strength.DEFINITE,
    MarkKind.STRAY_TOUCH: Strength.DEFINITE,
    MarkKind.LIGHT: Strength.FAINT,
    MarkKind.DOT: Strength.STRAY,
}
DEFINITE_KINDS = tuple(k for k, s in STRENGTH.items() if s is Strength.DEFINITE)


@dataclass(frozen=True)
class Mark:
    """One mark a voter made; `touch` names the neighbour a STRAY_TOUCH runs into."""

    contest_id: str
    option_id: str
    kind: MarkKind
    pen: Pen = Pen.BLACK_BALLPOINT
    candidate_id: str | None = None
    coverage: float = 1.0  # FILL: the share of the box height filled (partial fills)
    touch: BoxKey | None = None  # STRAY_TOUCH: defaults to the nearest box

    @property
    def key(self) -> BoxKey:
        return (self.option_id, self.candidate_id)

    @property
    def strength(self) -> Strength:
        return STRENGTH[self.kind]


@dataclass(frozen=True)
class Intent:
    """What one voter did on one sheet."""

    marks: tuple[Mark, ...] = ()
    sheet: SheetKind = SheetKind.NORMAL


# --- truth ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContestTruth:
    """The status the reader must report for one contest, and why."""

    contest_id: str
    status: Status
    reason: str
    option_id: str | None = None  # the vote, when valid
    candidate_id: str | None = None  # the preference, when valid and given

    def to_json(self) -> dict[str, Any]:
        return {
            "contest_id": self.contest_id,
            "status": self.status.value,
            "reason": self.reason,
            "option_id": self.option_id,
            "candidate_id": self.candidate_id,
        }


@dataclass(frozen=True)
class MarkTruth:
    """A mark as drawn: the intent plus what it became on paper."""

    mark: Mark
    ink: float  # darkness added inside its own box, 0..1 (mean over the box area)
    touched: BoxKey | None = None  # the neighbour a STRAY_TOUCH actually crossed into

    def to_json(self) -> dict[str, Any]:
        m = self.mark
        return {
            "contest_id": m.contest_id,
            "option_id": m.option_id,
            "candidate_id": m.candidate_id,
            "kind": m.kind.value,
            "strength": m.strength.value,
            "pen": m.pen.value,
            "coverage": round(m.coverage, 3),
            "ink": round(self.ink, 4),
            "touches": list(self.touched) if self.touched else None,
        }


@dataclass(frozen=True)
class SheetTruth:
    style_id: str
    sheet: SheetKind
    contests: tuple[ContestTruth, ...]
    marks: tuple[MarkTruth, ...] = ()
    scan: dict[str, Any] | None = None  # ScanParams.to_json() of the scan, if scanned

    def contest(self, contest_id: str) -> ContestTruth:
        return next(c for c in self.contests if c.contest_id == contest_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "style_id": self.style_id,
            "sheet": self.sheet.value,
            "contests": [c.to_json() for c in self.contests],
            "marks": [m.to_json() for m in self.marks],
            "scan": self.scan,
        }


def _box(contest: ContestLayout, key: BoxKey) -> Box:
    for b in contest.boxes:
        if (b.option_id, b.candidate_id) == key:
            return b
    raise KeyError(f"contest {contest.contest_id} has no box {key}")


def expected_contests(style: BallotStyle, marks: Sequence[Mark]) -> tuple[ContestTruth, ...]:
    """The status each contest of the sheet must be read as, from the marks alone.

    These are the reader's rules (`station.marks`), stated on intent instead of ink.
    Per box the strongest mark counts (definite > faint > stray; a dot is no mark).
    "Choice" boxes are those without a candidate: options, parties, against all.
      1. definite marks in two or more choice boxes                     -> overvote
      2. any faint box, a stroke running into a box not itself marked,
         or a candidate preference with no party marked                 -> marginal
      3. no definite choice                                             -> blank
      4. one definite choice                                            -> valid
    On an open list the party vote stands alone: its preference is the one
    definite candidate box when there is exactly one and it is in the chosen
    party's row; two preferences, or one in another party's row, are not
    counted (the reasons say so) and do not spoil the party vote.
    """
    out: list[ContestTruth] = []
    for contest in style.contests:
        cid = contest.contest_id
        level: dict[BoxKey, Strength] = {}
        touched: set[BoxKey] = set()
        for m in marks:
            if m.contest_id != cid:
                continue
            _box(contest, m.key)  # a mark on a box that does not exist is a caller's bug
            if m.kind is MarkKind.STRAY_TOUCH:
                near = _touch_target(contest, m)
                touched.add((near.option_id, near.candidate_id))
            prev = level.get(m.key)
            if prev is None or _RANK[m.strength] > _RANK[prev]:
                level[m.key] = m.strength
        definite = {k for k, s in level.items() if s is Strength.DEFINITE}
        choices = sorted(k for k in definite if k[1] is None)
        prefs = sorted(k for k in definite if k[1] is not None)
        if len(choices) >= 2:
            out.append(ContestTruth(cid, Status.OVERVOTE, "two_or_more_marks"))
            continue
        reasons = []
        if any(s is Strength.FAINT for s in level.values()):
            reasons.append("faint_mark")
        if touched - definite:
            reasons.append("stray_ink")
        if prefs and not choices:
            reasons.append("preference_without_party")
        if reasons:
            out.append(ContestTruth(cid, Status.MARGINAL, ",".join(reasons)))
            continue
        if not choices:
            out.append(ContestTruth(cid, Status.BLANK, "no_mark"))
            continue
        option = choices[0][0]
        own = [k for k in prefs if k[0] == option]
        reason = "one_mark"
        if len(prefs) > len(own):
            reason = "preference_in_other_party_not_counted"
        elif len(own) > 1:
            reason = "several_preferences_not_counted"
        candidate = own[0][1] if len(own) == 1 and len(prefs) == 1 else None
        out.append(
            ContestTruth(cid, Status.VALID, reason, option_id=option, candidate_id=candidate)
        )
    return tuple(out)


def _touch_target(contest: ContestLayout, mark: Mark) -> Box:
    near = _box(contest, mark.touch) if mark.touch else neighbour(contest, mark.key)
    if near is None:
        raise ValueError(f"contest {contest.contest_id} has no box for a stray stroke to touch")
    return near


_RANK = {Strength.STRAY: 0, Strength.FAINT: 1, Strength.DEFINITE: 2}


def neighbour(contest: ContestLayout, key: BoxKey) -> Box | None:
    """The box nearest to `key`'s box (smallest gap between rectangles), for stray strokes."""
    me = _box(contest, key).rect
    best: tuple[float, int, Box] | None = None
    for i, b in enumerate(contest.boxes):
        if (b.option_id, b.candidate_id) == key:
            continue
        gap = _gap(me, b.rect)
        if best is None or gap < best[0]:
            best = (gap, i, b)
    return best[2] if best else None


def _gap(a: Rect, b: Rect) -> float:
    dx = max(b.x - (a.x + a.w), a.x - (b.x + b.w), 0)
    dy = max(b.y - (a.y + a.h), a.y - (b.y + b.h), 0)
    # prefer boxes aligned in a row or column, as a hand sliding to the next line would
    centre = math.dist(a.center, b.center)
    return math.hypot(dx, dy) + 1e-3 * centre


# --- drawing marks ----------------------------------------------------------------------

# ink transmittance per channel (BGR, 0..1) and its luminance, as a scanner's gray sees it
_PEN_BGR: dict[Pen, tuple[float, float, float]] = {
    Pen.BLACK_BALLPOINT: (0.13, 0.12, 0.12),
    Pen.BLUE_BALLPOINT: (0.70, 0.24, 0.12),
    Pen.PENCIL: (0.3, 0.3, 0.32),
    Pen.MARKER: (0.06, 0.06, 0.07),
}


def _pen_style(pen: Pen, rng: np.random.Generator, size: float) -> tuple[float, float, float]:
    """(stroke width px, opacity, texture strength) for one mark; widths are at 200 dpi."""
    if pen is Pen.MARKER:
        width = rng.uniform(6.0, 10.0)
        opacity, texture = rng.uniform(0.92, 1.0), 0.03
    elif pen is Pen.PENCIL:
        width = rng.uniform(2.8, 4.5)
        opacity, texture = rng.uniform(0.8, 0.95), 0.3
    else:
        width = rng.uniform(2.5, 4.5)
        opacity, texture = rng.uniform(0.82, 1.0), 0.12
    return min(width, max(1.5, size / 6)), opacity, texture


@dataclass
class _Canvas:
    """An ink layer over one region of the page; strokes add coverage (0..1)."""

    x0: int
    y0: int
    cover: np.ndarray  # float32 coverage 0..1, same size as the region

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.cover.shape
        return h, w


_SHIFT = 4  # cv2 fixed-point sub-pixel bits
_ONE = 1 << _SHIFT


def _draw_path(
    canvas: _Canvas, pts: np.ndarray, width: float, rng: np.random.Generator, jitter: float
) -> None:
    """A hand-drawn stroke through `pts` (page px): resampled, wobbled, width varying."""
    pts = _resample(pts, step=max(2.0, width * 0.8))
    n = len(pts)
    if n >= 3 and jitter > 0:
        # random-walk wobble across the stroke, pinned near both ends
        walk = np.cumsum(rng.normal(0.0, jitter, size=(n, 2)), axis=0)
        walk -= np.linspace(walk[0], walk[-1], n)
        pts = pts + walk * 0.6
    widths = width * (1.0 + 0.18 * np.sin(np.linspace(0, rng.uniform(2, 6), n) + rng.uniform(0, 6)))
    layer = np.zeros(canvas.shape, np.uint8)
    local = ((pts - (canvas.x0, canvas.y0)) * _ONE).round().astype(np.int32)
    for i in range(n - 1):
        t = max(1, int(round(widths[i])))
        cv2.line(layer, tuple(local[i]), tuple(local[i + 1]), 255, t, cv2.LINE_AA, _SHIFT)
    np.maximum(canvas.cover, layer.astype(np.float32) * (1 / 255), out=canvas.cover)


def _resample(pts: np.ndarray, step: float) -> np.ndarray:
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    total = float(seg.sum())
    if total < 1e-6:
        return pts.astype(np.float64)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.linspace(0.0, total, max(2, int(total / step) + 1))
    return np.stack([np.interp(s, cum, pts[:, 0]), np.interp(s, cum, pts[:, 1])], axis=1)


def _smooth(pts: np.ndarray, samples: int = 8) -> np.ndarray:
    """Catmull-Rom through control points: hands draw curves, not polygons."""
    if len(pts) < 3:
        return pts
    p = np.vstack([pts[0], pts, pts[-1]])
    t = np.linspace(0, 1, samples, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    out.append(pts[-1:])
    return np.vstack(out)


def _inner(rect: Rect, width: float) -> tuple[float, float, float, float]:
    """The part of a box a careful stroke's centre line stays in: (x, y, w, h)."""
    m = max(2.0, 0.1 * min(rect.w, rect.h)) + width / 2 + 1
    mx, my = min(m, rect.w / 2 - 0.5), min(m, rect.h / 2 - 0.5)
    return rect.x + mx, rect.y + my, rect.w - 2 * mx, rect.h - 2 * my


def _to_box(uv: np.ndarray, inner: tuple[float, float, float, float]) -> np.ndarray:
    x, y, w, h = inner
    uv = np.clip(uv, 0.0, 1.0)
    return np.stack([x + uv[:, 0] * w, y + uv[:, 1] * h], axis=1)


def _glyph(
    kind: MarkKind, rng: np.random.Generator, coverage: float, width: float, rect: Rect
) -> list[np.ndarray]:
    """Control polylines in box units (0..1) for one mark kind."""

    def j(a: float = 0.06) -> float:
        return float(rng.uniform(-a, a))

    if kind is MarkKind.X:
        a = np.array(
            [[0.05 + j(), 0.05 + j()], [0.5 + j(0.04), 0.5 + j(0.04)], [0.95 + j(), 0.95 + j()]]
        )
        b = np.array(
            [[0.95 + j(), 0.05 + j()], [0.5 + j(0.04), 0.5 + j(0.04)], [0.05 + j(), 0.95 + j()]]
        )
        return [_smooth(a), _smooth(b)]
    if kind in (MarkKind.TICK, MarkKind.STRAY_TOUCH):
        return [
            _smooth(
                np.array(
                    [
                        [0.05 + j(), 0.5 + j(0.1)],
                        [0.35 + j(), 0.95 + j(0.04)],
                        [0.65 + j(), 0.45 + j(0.1)],
                        [0.95 + j(0.04), 0.02 + j(0.02)],
                    ]
                )
            )
        ]
    if kind is MarkKind.CIRCLE:
        n = 24
        start = rng.uniform(0, 2 * math.pi)
        sweep = rng.uniform(1.85, 2.25) * math.pi
        ang = start + np.linspace(0, sweep, n)
        r = 0.46 + np.cumsum(rng.normal(0, 0.012, n))
        r = np.clip(r, 0.32, 0.5)
        cx, cy = 0.5 + j(0.03), 0.5 + j(0.03)
        return [np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], axis=1)]
    if kind is MarkKind.FILL:
        h_px = max(1.0, rect.h)
        rows = max(2, int(coverage * h_px / max(1.5, width * 0.9)) + 1)
        top = rng.uniform(0, 1 - coverage) if coverage < 1 else 0.0
        ys = top + np.linspace(0, coverage, rows)
        xs = np.where(np.arange(rows) % 2 == 0, 0.0 + np.abs(j(0.05)), 1.0 - np.abs(j(0.05)))
        return [np.stack([xs, np.clip(ys + rng.normal(0, 0.01, rows), 0, 1)], axis=1)]
    if kind is MarkKind.SCRIBBLE:
        n = int(rng.integers(8, 16))
        pts = rng.uniform(0.05, 0.95, size=(n, 2))
        return [_smooth(pts, samples=6)]
    if kind is MarkKind.LIGHT:
        # a hesitant diagonal or tick across the box, barely pressed
        if rng.random() < 0.5:
            return [np.array([[0.1 + j(), 0.1 + j()], [0.9 + j(), 0.9 + j()]])]
        return [
            np.array([[0.1 + j(), 0.55 + j()], [0.35 + j(), 0.9 + j()], [0.9 + j(), 0.1 + j()]])
        ]
    raise ValueError(f"no glyph for {kind}")


def to_gray(page: np.ndarray) -> np.ndarray:
    """A rendered page as the single-channel uint8 image a scanner produces."""
    if page.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if page.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        page = cv2.cvtColor(page, code)
    if page.dtype != np.uint8:
        raise ValueError(f"page must be uint8, got {page.dtype}")
    return np.ascontiguousarray(page)


def mark_sheet(
    page: np.ndarray,
    style: BallotStyle,
    intent: Intent,
    rng: np.random.Generator,
    *,
    truth_out: list[MarkTruth] | None = None,
) -> np.ndarray:
    """A copy of the rendered `page` (gray or BGR) with the intent's marks drawn in its boxes.

    Ink is composited multiplicatively (ink darkens paper, never lightens a
    printed line).  Each mark's measured ink and actual touch are appended to
    `truth_out` when given.
    """
    out = page.copy()
    for mark in intent.marks:
        contest = style.contest(mark.contest_id)
        box = _box(contest, mark.key)
        truth = _draw_mark(out, contest, box, mark, rng)
        if truth_out is not None:
            truth_out.append(truth)
    return out


def _draw_mark(
    page: np.ndarray, contest: ContestLayout, box: Box, mark: Mark, rng: np.random.Generator
) -> MarkTruth:
    rect = box.rect
    size = float(min(rect.w, rect.h))
    width, opacity, texture = _pen_style(mark.pen, rng, size)
    touched: Box | None = None
    kind = mark.kind
    if kind is MarkKind.LIGHT:
        # about a third of a definite stroke's darkness, whatever the pen
        width = min(width, max(1.5, size / 14), 2.5)
        opacity = min(1.0, rng.uniform(0.22, 0.32) / (1.0 - _luma(_PEN_BGR[mark.pen])))
        texture = min(texture, 0.15)
    if kind is MarkKind.FILL:
        width = min(width * 1.4, size / 4)
    if kind is MarkKind.STRAY_TOUCH:
        touched = _touch_target(contest, mark)

    # the region the ink may reach: the box plus room for a stroke into the neighbour
    pad = int(width * 2 + 4)
    x0, y0 = rect.x - pad, rect.y - pad
    x1, y1 = rect.x + rect.w + pad, rect.y + rect.h + pad
    if touched is not None:
        t = touched.rect
        x0, y0 = min(x0, t.x - pad), min(y0, t.y - pad)
        x1, y1 = max(x1, t.x + t.w + pad), max(y1, t.y + t.h + pad)
    ph, pw = page.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(pw, x1), min(ph, y1)
    canvas = _Canvas(x0, y0, np.zeros((y1 - y0, x1 - x0), np.float32))
    jitter = max(0.15, size * 0.012)

    if kind is MarkKind.DOT:
        inner = _inner(rect, 4)
        c = _to_box(rng.uniform(0.1, 0.9, size=(1, 2)), inner)[0]
        r = float(np.clip(rng.uniform(0.025, 0.04) * size, 0.9, 1.8))
        layer = np.zeros(canvas.shape, np.uint8)
        centre = (int(round((c[0] - x0) * _ONE)), int(round((c[1] - y0) * _ONE)))
        cv2.circle(layer, centre, int(round(r * _ONE)), 255, -1, cv2.LINE_AA, _SHIFT)
        canvas.cover[:] = layer * (1 / 255)
    else:
        inner = _inner(rect, width + 2 * jitter)
        for k, uv in enumerate(_glyph(kind, rng, mark.coverage, width, rect)):
            pts = _to_box(uv, inner)
            pts = _clip_inner(pts, inner)
            _draw_path(canvas, pts, width, rng, jitter)
            if touched is not None and k == 0:
                _draw_path(canvas, _run_into(pts, rect, touched.rect, rng), width, rng, jitter)
        if touched is None:
            _keep_inside(canvas, rect)

    cover = canvas.cover
    if texture > 0:
        grain = 1.0 - texture * rng.random(cover.shape, dtype=np.float32)
        cover *= grain
    alpha = cover * opacity
    roi = page[y0:y1, x0:x1]
    before = _box_mean(page, rect)
    if page.ndim == 2:
        t_gray = _luma(_PEN_BGR[mark.pen])
        roi[:] = (roi * (1.0 - alpha * (1.0 - t_gray))).astype(np.uint8)
    else:
        trans = np.array(_PEN_BGR[mark.pen], np.float32)
        a = alpha[:, :, None]
        roi[:, :, :3] = (roi[:, :, :3] * (1.0 - a * (1.0 - trans))).astype(np.uint8)
    ink = max(0.0, (before - _box_mean(page, rect)) / 255.0)
    key = (touched.option_id, touched.candidate_id) if touched is not None else None
    return MarkTruth(mark=mark, ink=ink, touched=key)


def _luma(bgr: tuple[float, float, float]) -> float:
    b, g, r = bgr
    return 0.114 * b + 0.587 * g + 0.299 * r


def _box_mean(page: np.ndarray, r: Rect) -> float:
    region = page[r.y : r.y + r.h, r.x : r.x + r.w]
    if region.ndim == 3:
        region = region[:, :, :3]
        return float(region.mean(axis=2).mean()) if region.size else 255.0
    return float(region.mean()) if region.size else 255.0


def _clip_inner(pts: np.ndarray, inner: tuple[float, float, float, float]) -> np.ndarray:
    x, y, w, h = inner
    return np.stack([np.clip(pts[:, 0], x, x + w), np.clip(pts[:, 1], y, y + h)], axis=1)


def _keep_inside(canvas: _Canvas, rect: Rect) -> None:
    """A careful mark never leaves its box: wobble that would is trimmed (the hand stopped)."""
    h, w = canvas.shape
    ix0, iy0 = rect.x - canvas.x0, rect.y - canvas.y0
    ix1, iy1 = ix0 + rect.w, iy0 + rect.h
    canvas.cover[: max(0, iy0), :] = 0
    canvas.cover[min(h, iy1) :, :] = 0
    canvas.cover[:, : max(0, ix0)] = 0
    canvas.cover[:, min(w, ix1) :] = 0


def _run_into(pts: np.ndarray, own: Rect, other: Rect, rng: np.random.Generator) -> np.ndarray:
    """The overshoot of a careless tick: from its point nearest the neighbour into that box."""
    depth = rng.uniform(6.0, max(8.0, 0.3 * min(other.w, other.h)))  # past a 3 px outline
    ox, oy = own.center
    # the point of `other` nearest our centre, pushed `depth` pixels inside it
    tx = min(max(ox, other.x + depth), other.x + other.w - depth)
    ty = min(max(oy, other.y + depth), other.y + other.h - depth)
    if other.y >= own.y + own.h:  # neighbour below
        ty = other.y + depth
    elif other.y + other.h <= own.y:  # above
        ty = other.y + other.h - depth
    if other.x >= own.x + own.w:  # right
        tx = other.x + depth
    elif other.x + other.w <= own.x:  # left
        tx = other.x + other.w - depth
    if other.x < own.x + own.w and other.x + other.w > own.x:  # same column: drift sideways
        tx += rng.uniform(-0.25, 0.25) * min(own.w, other.w)
        tx = min(max(tx, other.x + 2), other.x + other.w - 2)
    target = np.array([[tx, ty]])
    start = pts[int(np.argmin(np.linalg.norm(pts - target, axis=1)))]
    return np.linspace(start, target[0], 8)


# --- the voter --------------------------------------------------------------------------


@dataclass(frozen=True)
class VoterMix:
    """Shares of what voters do, per contest; the five outcome shares are normalised."""

    valid: float = 0.90
    blank: float = 0.03
    overvote: float = 0.02
    faint: float = 0.03
    stray_touch: float = 0.02
    preference: float = 0.6  # party list: valid ballots that also mark one candidate
    spoiled_preference: float = 0.05  # of those: two preferences or another party's candidate
    stray_dot: float = 0.04  # any ballot: an extra dot somewhere (changes nothing)
    partial_fill: float = 0.3  # FILL marks that cover only part of the box
    kinds: Mapping[MarkKind, float] = field(
        default_factory=lambda: {
            MarkKind.X: 0.35,
            MarkKind.TICK: 0.30,
            MarkKind.FILL: 0.15,
            MarkKind.CIRCLE: 0.10,
            MarkKind.SCRIBBLE: 0.10,
        }
    )
    pens: Mapping[Pen, float] = field(
        default_factory=lambda: {
            Pen.BLACK_BALLPOINT: 0.45,
            Pen.BLUE_BALLPOINT: 0.40,
            Pen.PENCIL: 0.10,
            Pen.MARKER: 0.05,
        }
    )

    def __post_init__(self) -> None:
        for name in ("valid", "blank", "overvote", "faint", "stray_touch", "preference"):
            if getattr(self, name) < 0:
                raise ValueError(f"share {name} cannot be negative")
        if self.valid + self.blank + self.overvote + self.faint + self.stray_touch <= 0:
            raise ValueError("at least one outcome share must be positive")
        if any(k not in DEFINITE_KINDS or k is MarkKind.STRAY_TOUCH for k in self.kinds):
            raise ValueError("kinds are the definite mark kinds a valid vote is made with")


def _pick(rng: np.random.Generator, weights: Mapping[Any, float]) -> Any:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


class VoterModel:
    """Draws what a voter does with a sheet, with a configurable mix of outcomes."""

    def __init__(self, mix: VoterMix | None = None) -> None:
        self.mix = mix or VoterMix()

    def draw(
        self, style: BallotStyle, rng: np.random.Generator, sheet: SheetKind = SheetKind.NORMAL
    ) -> Intent:
        marks: list[Mark] = []
        for contest in style.contests:
            marks += self._contest(contest, rng)
        return Intent(marks=tuple(marks), sheet=sheet)

    def _mark(
        self,
        contest: ContestLayout,
        box: Box,
        rng: np.random.Generator,
        kind: MarkKind | None = None,
        pen: Pen | None = None,
    ) -> Mark:
        mix = self.mix
        kind = kind or _pick(rng, mix.kinds)
        coverage = 1.0
        if kind is MarkKind.FILL and rng.random() < mix.partial_fill:
            coverage = float(rng.uniform(0.45, 0.85))
        return Mark(
            contest_id=contest.contest_id,
            option_id=box.option_id,
            candidate_id=box.candidate_id,
            kind=kind,
            pen=pen or _pick(rng, mix.pens),
            coverage=coverage,
        )

    def _contest(self, contest: ContestLayout, rng: np.random.Generator) -> list[Mark]:
        mix = self.mix
        main = [b for b in contest.boxes if b.candidate_id is None]
        prefs = [b for b in contest.boxes if b.candidate_id is not None]
        outcome = _pick(
            rng,
            {
                "valid": mix.valid,
                "blank": mix.blank,
                "overvote": mix.overvote,
                "faint": mix.faint,
                "stray_touch": mix.stray_touch,
            },
        )
        pen = _pick(rng, mix.pens)  # a voter keeps one pen for the sheet
        marks: list[Mark] = []

        def choose(boxes: Sequence[Box]) -> Box:
            return boxes[int(rng.integers(len(boxes)))]

        def party_prefs(b: Box) -> list[Box]:
            return [p for p in prefs if p.option_id == b.option_id]

        if outcome == "valid":
            box = choose(main)
            marks.append(self._mark(contest, box, rng, pen=pen))
            own = party_prefs(box)
            if own and rng.random() < mix.preference:
                if rng.random() < mix.spoiled_preference:
                    # two preferences, or one in another party's row: not counted
                    pool = prefs if rng.random() < 0.5 else own
                    picks = rng.choice(len(pool), size=min(2, len(pool)), replace=False)
                    marks += [self._mark(contest, pool[int(i)], rng, pen=pen) for i in picks]
                else:
                    marks.append(self._mark(contest, choose(own), rng, pen=pen))
        elif outcome == "overvote":
            if len(main) >= 2:
                idx = rng.choice(len(main), size=2, replace=False)
                marks += [self._mark(contest, main[int(i)], rng, pen=pen) for i in idx]
        elif outcome == "faint":
            box = choose(main)
            marks.append(self._mark(contest, box, rng, kind=MarkKind.LIGHT, pen=pen))
            others = [b for b in main if b is not box]
            if others and rng.random() < 0.4:  # hesitated there, then voted here
                marks.append(self._mark(contest, choose(others), rng, pen=pen))
        elif outcome == "stray_touch":
            box = choose(main)
            near = neighbour(contest, (box.option_id, box.candidate_id))
            if near is not None:
                m = self._mark(contest, box, rng, kind=MarkKind.STRAY_TOUCH, pen=pen)
                marks.append(replace(m, touch=(near.option_id, near.candidate_id)))
        if rng.random() < mix.stray_dot:
            marks.append(
                self._mark(contest, choose(contest.boxes), rng, kind=MarkKind.DOT, pen=pen)
            )
        return marks


def random_intent(
    style: BallotStyle, rng: np.random.Generator, mix: VoterMix | None = None
) -> Intent:
    """One voter's marks on one sheet, drawn from `mix` (the default is a realistic day)."""
    return VoterModel(mix).draw(style, rng)


# --- the scanner ------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanDefects:
    """The ranges a scan's defects are drawn from; probabilities are per sheet."""

    rotation_deg: float = 3.0  # uniform in +-rotation_deg
    scale: tuple[float, float] = (0.97, 1.03)
    skew: float = 0.003  # perspective: corner displacement as a share of the page size
    # bed around the sheet on each side, px: where the sheet lies (translation) and how big
    # the scan is; the whole sheet is always on the scan, so every marker can be found
    canvas_pad: tuple[int, int] = (0, 30)
    background: tuple[int, int] = (170, 245)  # gray of the bed around the sheet
    blur_sigma: tuple[float, float] = (0.0, 1.1)
    noise_sigma: tuple[float, float] = (0.0, 6.0)
    gain: tuple[float, float] = (0.85, 1.05)  # contrast
    bias: tuple[float, float] = (-18.0, 12.0)  # brightness
    fold_p: float = 0.15  # a crease across the sheet
    streak_p: float = 0.10  # a vertical line from dirt on the scanner glass
    jpeg_p: float = 0.5
    jpeg_quality: tuple[int, int] = (60, 92)
    flip_180_p: float = 0.05  # fed upside down

    @classmethod
    def none(cls) -> ScanDefects:
        """A perfect scanner: the page as it is, in gray."""
        return cls(
            rotation_deg=0.0,
            scale=(1.0, 1.0),
            skew=0.0,
            canvas_pad=(0, 0),
            blur_sigma=(0.0, 0.0),
            noise_sigma=(0.0, 0.0),
            gain=(1.0, 1.0),
            bias=(0.0, 0.0),
            fold_p=0.0,
            streak_p=0.0,
            jpeg_p=0.0,
            flip_180_p=0.0,
        )

    @classmethod
    def mild(cls) -> ScanDefects:
        """A well-kept scanner: small misfeeds, a little noise, no folds or streaks."""
        return cls(
            rotation_deg=1.0,
            scale=(0.99, 1.01),
            canvas_pad=(0, 12),
            skew=0.001,
            blur_sigma=(0.0, 0.7),
            noise_sigma=(0.0, 3.0),
            gain=(0.95, 1.02),
            bias=(-6.0, 4.0),
            fold_p=0.0,
            streak_p=0.0,
            jpeg_p=0.0,
            flip_180_p=0.0,
        )

    @classmethod
    def harsh(cls) -> ScanDefects:
        """Everything at once, for robustness tests."""
        return cls(fold_p=1.0, streak_p=1.0, jpeg_p=1.0, blur_sigma=(0.8, 1.3), noise_sigma=(5, 8))


@dataclass(frozen=True)
class ScanParams:
    """One scan's drawn defects: enough to redo it exactly and to undo its geometry."""

    page_size: tuple[int, int]  # (w, h) of the page scanned
    size: tuple[int, int]  # (w, h) of the scan
    homography: tuple[tuple[float, ...], ...]  # page px -> scan px (3x3)
    rotation_deg: float
    scale: float
    flipped: bool
    background: int
    blur_sigma: float
    noise_sigma: float
    noise_seed: int
    gain: float
    bias: float
    fold: tuple[float, float, float, float] | None  # (y at centre, angle deg, dark, shade)
    streak: tuple[int, int, float] | None  # (x, width, darkness; negative = lighter)
    jpeg_quality: int | None

    def matrix(self) -> np.ndarray:
        return np.array(self.homography, np.float64)

    def to_json(self) -> dict[str, Any]:
        return {
            "page_size": list(self.page_size),
            "size": list(self.size),
            "homography": [list(r) for r in self.homography],
            "rotation_deg": self.rotation_deg,
            "scale": self.scale,
            "flipped": self.flipped,
            "background": self.background,
            "blur_sigma": self.blur_sigma,
            "noise_sigma": self.noise_sigma,
            "noise_seed": self.noise_seed,
            "gain": self.gain,
            "bias": self.bias,
            "fold": list(self.fold) if self.fold else None,
            "streak": list(self.streak) if self.streak else None,
            "jpeg_quality": self.jpeg_quality,
        }


def _closed(lo_hi: tuple[int, int]) -> tuple[int, int]:
    return lo_hi[0], lo_hi[1] + 1


def _u(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    lo, hi = lo_hi
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def draw_scan(
    page_size: tuple[int, int], rng: np.random.Generator, defects: ScanDefects | None = None
) -> ScanParams:
    """Draw one scan's defects for a page of `page_size` (w, h)."""
    d = defects or ScanDefects()
    w, h = page_size
    left, top, right, bottom = (int(v) for v in rng.integers(*_closed(d.canvas_pad), size=4))
    flipped = bool(rng.random() < d.flip_180_p)
    angle = _u(rng, (-d.rotation_deg, d.rotation_deg))
    scale = _u(rng, d.scale)
    # page -> scan: (skew) (flip) rotate+scale about the page centre, then onto the bed
    cx, cy = w / 2, h / 2
    m = np.eye(3)
    if flipped:
        m = np.array([[-1, 0, w - 1], [0, -1, h - 1], [0, 0, 1]], np.float64)
    a = math.radians(angle)
    rs = np.array(
        [
            [scale * math.cos(a), -scale * math.sin(a), 0],
            [scale * math.sin(a), scale * math.cos(a), 0],
            [0, 0, 1],
        ]
    )
    to_origin = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], np.float64)
    hmat = rs @ to_origin @ m
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    if d.skew > 0:
        dst = src + rng.uniform(-d.skew, d.skew, (4, 2)).astype(np.float32) * np.array(
            [w, h], np.float32
        )
        hmat = hmat @ cv2.getPerspectiveTransform(src, dst)
    corners = cv2.perspectiveTransform(src.reshape(-1, 1, 2).astype(np.float64), hmat).reshape(4, 2)
    lo, extent = corners.min(axis=0), np.ceil(np.ptp(corners, axis=0) - 1e-6)
    to_bed = np.array([[1, 0, left - lo[0]], [0, 1, top - lo[1]], [0, 0, 1]], np.float64)
    hmat = to_bed @ hmat
    hmat /= hmat[2, 2]
    out_w = int(extent[0]) + left + right
    out_h = int(extent[1]) + top + bottom
    fold = None
    if rng.random() < d.fold_p:
        y = h * float(rng.choice([1 / 3, 1 / 2, 2 / 3])) + float(rng.uniform(-40, 40))
        fold = (
            y,
            float(rng.uniform(-1.5, 1.5)),
            float(rng.uniform(-0.1, 0.22)),
            float(rng.uniform(0.02, 0.08)),
        )
    streak = None
    if rng.random() < d.streak_p:
        dark = float(rng.uniform(0.15, 0.5)) * (1 if rng.random() < 0.75 else -1)
        streak = (int(rng.integers(0, out_w - 6)), int(rng.integers(1, 5)), dark)
    jpeg = (
        int(rng.integers(d.jpeg_quality[0], d.jpeg_quality[1] + 1))
        if rng.random() < d.jpeg_p
        else None
    )
    return ScanParams(
        page_size=(w, h),
        size=(out_w, out_h),
        homography=tuple(tuple(float(v) for v in row) for row in hmat),
        rotation_deg=angle + (180.0 if flipped else 0.0),
        scale=scale,
        flipped=flipped,
        background=int(rng.integers(d.background[0], d.background[1] + 1)),
        blur_sigma=_u(rng, d.blur_sigma),
        noise_sigma=_u(rng, d.noise_sigma),
        noise_seed=int(rng.integers(0, 2**31 - 1)),
        gain=_u(rng, d.gain),
        bias=_u(rng, d.bias),
        fold=fold,
        streak=streak,
        jpeg_quality=jpeg,
    )


def apply_scan(page: np.ndarray, params: ScanParams) -> np.ndarray:
    """Scan a (marked) page with these exact defects: gray uint8 of `params.size` (w, h)."""
    gray = to_gray(page)
    if (gray.shape[1], gray.shape[0]) != params.page_size:
        raise ValueError(
            f"page is {gray.shape[1]}x{gray.shape[0]}, params are for {params.page_size}"
        )
    if params.fold is not None:
        gray = _fold(gray if gray is not page else gray.copy(), params.fold)
    out = cv2.warpPerspective(
        gray,
        params.matrix(),
        params.size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=params.background,
    )
    if params.streak is not None:
        x, sw, dark = params.streak
        col = out[:, x : x + sw].astype(np.float32)
        if dark > 0:
            col *= 1.0 - dark
        else:
            col += (255.0 - col) * -dark
        out[:, x : x + sw] = col.astype(np.uint8)
    if params.blur_sigma > 0.05:
        out = cv2.GaussianBlur(out, (0, 0), params.blur_sigma)
    if params.gain != 1.0 or params.bias != 0.0:
        lut = np.clip(np.arange(256) * params.gain + params.bias, 0, 255).astype(np.uint8)
        out = cv2.LUT(out, lut)
    if params.noise_sigma > 0.05:
        out = _add_noise(out, params.noise_sigma, params.noise_seed)
    if params.jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, params.jpeg_quality])
        if not ok:  # pragma: no cover - OpenCV always encodes a gray uint8 image
            raise RuntimeError("JPEG encoding failed")
        decoded = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        if decoded is None:  # pragma: no cover
            raise RuntimeError("JPEG decoding failed")
        out = decoded
    return out


def scan(
    image: np.ndarray, rng: np.random.Generator, defects: ScanDefects | None = None
) -> np.ndarray:
    """What a scanner returns for this page: gray uint8, about the page's size."""
    gray = to_gray(image)
    return apply_scan(gray, draw_scan((gray.shape[1], gray.shape[0]), rng, defects))


_NOISE_TILE = 1024
_NOISE_PAD = 64
_NOISE_BANK: list[np.ndarray] = []


def _add_noise(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Gaussian sensor noise: one fixed tile of unit noise, shifted and scaled per sheet.

    A fresh full-page normal draw costs more than the rest of the scan; a
    shifted, repeated 1024 px tile looks the same to a reader at a fraction of
    it, and depends on nothing but `seed` (same seed, same pixels).
    """
    if not _NOISE_BANK:
        size = _NOISE_TILE + _NOISE_PAD
        rng = np.random.default_rng(20261129)
        _NOISE_BANK.append(rng.standard_normal((size, size), dtype=np.float32))
    dy, dx = seed % _NOISE_PAD, (seed // _NOISE_PAD) % _NOISE_PAD
    tile = _NOISE_BANK[0][dy : dy + _NOISE_TILE, dx : dx + _NOISE_TILE]
    out = np.empty_like(img)
    h, w = img.shape
    for y in range(0, h, _NOISE_TILE):
        for x in range(0, w, _NOISE_TILE):
            src = img[y : y + _NOISE_TILE, x : x + _NOISE_TILE]
            bh, bw = src.shape
            out[y : y + bh, x : x + bw] = cv2.addWeighted(
                src, 1.0, tile[:bh, :bw], float(sigma), 0.0, dtype=cv2.CV_8U
            )
    return out


def _fold(gray: np.ndarray, fold: tuple[float, float, float, float]) -> np.ndarray:
    """A crease: a thin dark (or bright) line with a soft shadow on one side."""
    y_mid, angle, dark, shade = fold
    h, w = gray.shape
    t = math.tan(math.radians(angle))
    reach = 45
    lo = int(max(0, math.floor(y_mid - abs(t) * w / 2 - reach)))
    hi = int(min(h, math.ceil(y_mid + abs(t) * w / 2 + reach)))
    if hi <= lo:
        return gray
    ys = np.arange(lo, hi, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    d = (ys - (y_mid + (xs - w / 2) * t)) * math.cos(math.radians(angle))
    factor = 1.0 - dark * np.exp(-((d / 1.6) ** 2)) - shade * np.exp(-np.abs(d) / 14.0) * (d > 0)
    band = gray[lo:hi].astype(np.float32) * factor
    gray[lo:hi] = np.clip(band, 0, 255).astype(np.uint8)
    return gray


# --- sheets and decks -------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticSheet:
    image: np.ndarray  # gray uint8 scan
    truth: SheetTruth
    style_id: str


def _sheet(
    page: np.ndarray,
    style: BallotStyle,
    intent: Intent,
    rng: np.random.Generator,
    defects: ScanDefects | None,
) -> SyntheticSheet:
    marks: list[MarkTruth] = []
    marked = mark_sheet(page, style, intent, rng, truth_out=marks)
    params = None
    if defects is not None:
        params = draw_scan((marked.shape[1], marked.shape[0]), rng, defects)
        image = apply_scan(marked, params)
    else:
        image = marked
    truth = SheetTruth(
        style_id=style.style_id,
        sheet=intent.sheet,
        contests=expected_contests(style, intent.marks),
        marks=tuple(marks),
        scan=params.to_json() if params else None,
    )
    return SyntheticSheet(image=image, truth=truth, style_id=style.style_id)


class _Pages:
    """Rendered blank pages, one per style, in gray: rendering is the slow part."""

    def __init__(self, render: Callable[[str], np.ndarray]) -> None:
        self._render = render
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, style_id: str) -> np.ndarray:
        page = self._cache.get(style_id)
        if page is None:
            page = to_gray(self._render(style_id))
            page.setflags(write=False)
            self._cache[style_id] = page
        return page


def make_deck(
    layouts: BallotLayouts,
    style_ids: Sequence[str],
    n: int,
    seed: int,
    render: Callable[[str], np.ndarray],
    *,
    mix: VoterMix | None = None,
    defects: ScanDefects | None = None,
    sheet: SheetKind = SheetKind.NORMAL,
    foreign_style_ids: Sequence[str] = (),
    foreign_share: float = 0.0,
) -> Iterator[SyntheticSheet]:
    """`n` marked and scanned sheets of the given styles, each with its truth.

    Sheet `i` depends only on (`seed`, `i`), so any sheet can be regenerated
    alone.  `sheet` labels every sheet (e.g. TEST for a deck rendered with test
    markers, FOREIGN for another election's); `foreign_style_ids` (styles of
    this election that do not belong to the station) are mixed in at
    `foreign_share` and labelled FOREIGN.
    """
    if not style_ids:
        raise ValueError("make_deck needs at least one style")
    if foreign_share > 0 and not foreign_style_ids:
        raise ValueError("foreign_share needs foreign_style_ids")
    styles = [layouts.style(s) for s in style_ids]
    foreign = [layouts.style(s) for s in foreign_style_ids]
    pages = _Pages(render)
    model = VoterModel(mix)
    scan_defects = defects if defects is not None else ScanDefects()
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        kind = sheet
        if foreign and rng.random() < foreign_share:
            style, kind = foreign[int(rng.integers(len(foreign)))], SheetKind.FOREIGN
        else:
            style = styles[int(rng.integers(len(styles)))]
        intent = model.draw(style, rng, sheet=kind)
        yield _sheet(pages(style.style_id), style, intent, rng, scan_defects)


@dataclass(frozen=True)
class TestDeck:
    """A logic-and-accuracy deck and the tally a correct box must report for it."""

    __test__ = False  # not a pytest class

    sheets: list[SyntheticSheet]
    tally: dict[str, dict[str, Any]]

    def truth_json(self) -> dict[str, Any]:
        return {"tally": self.tally, "sheets": [s.truth.to_json() for s in self.sheets]}


def expected_tally(truths: Sequence[SheetTruth]) -> dict[str, dict[str, Any]]:
    """Per contest: votes per option and per candidate, and blank/overvote/marginal sheets.

    Foreign sheets are left out (the box refuses them); test and normal sheets count.
    """
    tally: dict[str, dict[str, Any]] = {}
    for t in truths:
        if t.sheet is SheetKind.FOREIGN:
            continue
        for c in t.contests:
            row = tally.setdefault(
                c.contest_id,
                {
                    "sheets": 0,
                    "options": {},
                    "candidates": {},
                    "blank": 0,
                    "overvote": 0,
                    "marginal": 0,
                },
            )
            row["sheets"] += 1
            if c.status is Status.VALID:
                assert c.option_id is not None
                row["options"][c.option_id] = row["options"].get(c.option_id, 0) + 1
                if c.candidate_id is not None:
                    row["candidates"][c.candidate_id] = row["candidates"].get(c.candidate_id, 0) + 1
            else:
                row[c.status.value] += 1
    return tally


def test_deck(
    layouts: BallotLayouts,
    style_ids: Sequence[str],
    render: Callable[[str], np.ndarray],
    *,
    preferences: bool = False,
    blanks: int = 2,
    seed: int = 0,
    defects: ScanDefects | None = None,
    sheet: SheetKind = SheetKind.TEST,
) -> TestDeck:
    """Every option of every contest marked once with a clean definite FILL, plus per
    contest `blanks` blank sheets, one overvote and one marginal (faint) sheet.

    With `preferences`, each candidate-preference box also gets one sheet (its
    party plus that candidate), so the parties' counts grow by their list sizes.
    `render` should draw test-mode sheets (test corner markers) for a real L&A
    run; `defects` None gives clean gray pages.
    """
    pages = _Pages(render)
    rng = np.random.default_rng([seed, 0x7E57])
    sheets: list[SyntheticSheet] = []

    def add(style: BallotStyle, marks: list[Mark]) -> None:
        intent = Intent(marks=tuple(marks), sheet=sheet)
        sheets.append(_sheet(pages(style.style_id), style, intent, rng, defects))

    for style_id in style_ids:
        style = layouts.style(style_id)
        for contest in style.contests:
            cid = contest.contest_id
            main = [b for b in contest.boxes if b.candidate_id is None]

            def fill(b: Box, cid: str = cid, kind: MarkKind = MarkKind.FILL) -> Mark:
                return Mark(cid, b.option_id, kind, Pen.BLACK_BALLPOINT, b.candidate_id)

            for b in main:
                add(style, [fill(b)])
            if preferences:
                for p in (b for b in contest.boxes if b.candidate_id is not None):
                    add(style, [fill(_box(contest, (p.option_id, None))), fill(p)])
            if len(main) >= 2:
                add(style, [fill(main[0]), fill(main[1])])
            add(style, [fill(main[-1], kind=MarkKind.LIGHT)])
        for _ in range(blanks):
            add(style, [])
    return TestDeck(sheets=sheets, tally=expected_tally([s.truth for s in sheets]))


test_deck.__test__ = False  # type: ignore[attr-defined]  # a deck builder, not a pytest test
