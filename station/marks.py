"""Reading the marks on a scanned ballot sheet (pure computation: image in, reading out).

0. Take dark scanner streaks out (`_destreak`): dirt on the glass darkens a
   few columns over the whole scan; such a column down the style or election
   marker would hide it.
1. Find the ArUco markers (on a downscaled copy: fast, and the markers are big).
   The four corner markers say live or test sheet, the election marker which
   election, the style marker which ballot style.
2. Map the scan onto the layout page with a homography fitted to every corner
   of every known marker found (rotation by any angle, upside down, scale and
   perspective all come out of it), and warp only the part of the page that
   holds boxes.
3. Measure ink: each pixel's darkness relative to this scan's paper white and
   print black, ignoring the faintest part (paper texture, scanner noise).
   With an integral image, every box costs a few lookups:
   - `fill`: mean darkness of the box interior (inside its printed outline),
     0 for a blank box, about 1 for a box filled in with a black pen;
   - `stray`: ink, in layout pixels, in the clear zone just outside the box,
     where nothing is printed: a stroke from a neighbouring box's mark, or a
     mark put beside the box instead of in it.  Boxes over `stray_px` are
     measured again with fold and streak lines taken out
     (`_stray_without_lines`).
   - `faint`: for boxes with a little ink but not definite, the pixels of
     stroke ink in the interior with no ink floor, fold and streak lines
     taken out (`_faint`): a light stroke that the floor erases from `fill`.
4. Classify each contest (see `_classify`) with two thresholds, `definite`
   and `marginal`, that are settings, and `faint_px`.  Nothing marginal is
   called valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import cv2
import numpy as np

from election.ballot_layout import (
    ELECTION_BASE,
    LIVE_CORNERS,
    STYLE_BASE,
    TEST_CORNERS,
    BallotLayouts,
    BallotStyle,
    election_marker_id,
)


class SheetStatus(StrEnum):
    OK = "ok"
    FOREIGN_ELECTION = "foreign_election"
    FOREIGN_STYLE = "foreign_style"  # another district's ballot
    TEST_SHEET_IN_LIVE = "test_sheet_in_live"
    LIVE_SHEET_IN_TEST = "live_sheet_in_test"
    UNREADABLE = "unreadable"


class ContestStatus(StrEnum):
    VALID = "valid"
    OVERVOTE = "overvote"
    BLANK = "blank"
    MARGINAL = "marginal"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class MarkSettings:
    """Thresholds of the reader; the defaults were measured (docs/ballots.md).

    `definite` and `marginal` are fill ratios of a box interior (ink-weighted,
    0..1); a box at or above `definite` is a mark, between the two it is a
    faint mark that needs a decision.  `stray_px` is ink (in layout pixels, one
    pixel = 0.127 mm at 200 dpi) in a box's clear zone above which the contest
    is marginal.  `ink_floor` is the share of print darkness treated as paper.
    `faint_px` is stroke ink (layout pixels darker than the box's own paper by
    5% of print black, lines removed) above which a box that is not definite
    holds a faint mark, whatever its fill: a pen dot leaves under 60, the
    lightest stroke about 190.
    """

    definite: float = 0.07
    marginal: float = 0.012
    stray_px: float = 6.0
    ink_floor: float = 0.15
    faint_px: float = 100.0
    max_marker_error_px: float = 6.0  # markers disagreeing more than this: folded or torn

    def __post_init__(self) -> None:
        if not 0 < self.marginal < self.definite <= 1:
            raise ValueError("need 0 < marginal < definite <= 1")
        if self.faint_px <= 0:
            raise ValueError("need faint_px > 0")


@dataclass(frozen=True)
class BoxReading:
    option_id: str
    candidate_id: str | None
    fill: float
    stray: float
    faint: float = 0.0  # pixels of faint stroke ink in the interior, lines removed

    def to_obj(self) -> dict[str, Any]:
        out: dict[str, Any] = {"option_id": self.option_id}
        if self.candidate_id is not None:
            out["candidate_id"] = self.candidate_id
        out["fill"] = round(self.fill, 4)
        out["stray"] = round(self.stray, 1)
        out["faint"] = round(self.faint, 1)
        return out


@dataclass(frozen=True)
class ContestReading:
    contest_id: str
    status: ContestStatus
    option_id: str | None = None  # the selection when valid
    candidate_id: str | None = None  # the preference counted with it (open party list)
    reasons: tuple[str, ...] = ()
    boxes: tuple[BoxReading, ...] = ()

    def to_obj(self) -> dict[str, Any]:
        return {
            "contest_id": self.contest_id,
            "status": self.status.value,
            "option_id": self.option_id,
            "candidate_id": self.candidate_id,
            "reasons": list(self.reasons),
            "boxes": [b.to_obj() for b in self.boxes],
        }


@dataclass(frozen=True)
class SheetReading:
    status: SheetStatus
    reason: str = ""
    style_id: str | None = None
    style_number: int | None = None
    test_sheet: bool | None = None
    contests: tuple[ContestReading, ...] = ()
    markers: tuple[int, ...] = field(default=())  # marker ids found, sorted

    def to_obj(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "reason": self.reason,
            "style_id": self.style_id,
            "style_number": self.style_number,
            "test_sheet": self.test_sheet,
            "markers": list(self.markers),
            "contests": [c.to_obj() for c in self.contests],
        }


# --- markers --------------------------------------------------------------------------

_DETECT_LONG_SIDE = 800  # detect on a copy about this long: 200 dpi A4 -> a third


def _detector() -> cv2.aruco.ArucoDetector:
    p = cv2.aruco.DetectorParameters()
    # Markers are at least 96 px on a 2339 px page (perimeter rate 0.16); boxes are at most
    # 56 px (0.096).  Skipping the boxes as candidates is most of the speed.
    p.minMarkerPerimeterRate = 0.12
    p.maxMarkerPerimeterRate = 0.6
    p.adaptiveThreshWinSizeMin = 5
    p.adaptiveThreshWinSizeMax = 25
    p.adaptiveThreshWinSizeStep = 10
    p.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    p.cornerRefinementWinSize = 3
    return cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_6X6_1000), p)


_DETECTOR = _detector()


def _detect(gray: np.ndarray) -> dict[int, np.ndarray]:
    """Marker id -> its 4 corners (full-resolution pixel coordinates, marker's own order)."""
    f = max(1, round(max(gray.shape) / _DETECT_LONG_SIDE))
    found: dict[int, np.ndarray] = {}
    for scale in (f, 1) if f > 1 else (1,):
        small = (
            gray
            if scale == 1
            else cv2.resize(
                gray,
                (gray.shape[1] // scale, gray.shape[0] // scale),
                interpolation=cv2.INTER_LINEAR,
            )
        )
        corners, ids, _ = _DETECTOR.detectMarkers(small)
        found = {}
        if ids is not None:
            for c, i in zip(corners, ids.ravel(), strict=True):
                pts = c.reshape(4, 2).astype(np.float64)
                if scale != 1:
                    pts = (pts + 0.5) * scale - 0.5
                found.setdefault(int(i), pts)
        if _corner_set(found) is not None:
            break
    return found


def _corner_set(found: dict[int, np.ndarray]) -> bool | None:
    """True for a test sheet, False for a live one, None when the corners are not all there."""
    live = all(i in found for i in LIVE_CORNERS)
    test = all(i in found for i in TEST_CORNERS)
    if live == test:
        return None
    return test


# --- per-style geometry (cached) ------------------------------------------------------


@dataclass(frozen=True)
class _Geometry:
    roi: tuple[int, int, int, int]  # x, y, w, h of the page region warped
    interior: np.ndarray  # (n, 4) x0, y0, x1, y1 in ROI coordinates (exclusive ends)
    outer: np.ndarray
    inner: np.ndarray
    box_corners: np.ndarray  # (n*4, 1, 2) box outer corners in page coordinates
    interior_area: np.ndarray
    ring_area: np.ndarray
    groups: tuple[tuple[np.ndarray, int, int], ...]  # box indices of one interior size, h, w


_GEOMETRY: dict[tuple[int, str], tuple[BallotLayouts, _Geometry]] = {}


def _geometry(layouts: BallotLayouts, style: BallotStyle) -> _Geometry:
    key = (id(layouts), style.style_id)
    hit = _GEOMETRY.get(key)
    if hit is not None and hit[0] is layouts:
        return hit[1]
    k = layouts.dpi / 200
    inset = layouts.box_line_px + max(2, round(3 * k))  # outline plus registration slack
    ring_in = max(2, round(3 * k))
    ring_out = layouts.box_clear_px - 1
    rects = np.array(
        [
            (b.rect.x, b.rect.y, b.rect.x + b.rect.w, b.rect.y + b.rect.h)
            for c in style.contests
            for b in c.boxes
        ],
        dtype=np.int64,
    )
    pad = layouts.box_clear_px + 2
    x0 = max(0, int(rects[:, 0].min()) - pad)
    y0 = max(0, int(rects[:, 1].min()) - pad)
    x1 = min(layouts.page_w, int(rects[:, 2].max()) + pad)
    y1 = min(layouts.page_h, int(rects[:, 3].max()) + pad)
    shift = np.array([x0, y0, x0, y0])
    grow = np.array([-1, -1, 1, 1])
    interior = rects - shift - grow * inset
    outer = np.clip(rects - shift + grow * ring_out, 0, [x1 - x0, y1 - y0] * 2)
    inner = rects - shift + grow * ring_in

    def area(r: np.ndarray) -> np.ndarray:
        return ((r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])).astype(np.float64)

    corners = (
        np.stack([rects[:, [0, 1]], rects[:, [2, 1]], rects[:, [2, 3]], rects[:, [0, 3]]], axis=1)
        .reshape(-1, 1, 2)
        .astype(np.float64)
        - 0.5
    )
    sizes = (interior[:, 3] - interior[:, 1]) * 10000 + (interior[:, 2] - interior[:, 0])
    groups = tuple(
        (np.flatnonzero(sizes == v), int(v // 10000), int(v % 10000)) for v in np.unique(sizes)
    )
    geo = _Geometry(
        roi=(x0, y0, x1 - x0, y1 - y0),
        interior=interior,
        outer=outer,
        inner=inner,
        box_corners=corners,
        interior_area=np.maximum(area(interior), 1.0),
        ring_area=area(outer) - area(inner),
        groups=groups,
    )
    if len(_GEOMETRY) > 64:
        _GEOMETRY.clear()
    _GEOMETRY[key] = (layouts, geo)
    return geo


def _sums(ii: np.ndarray, r: np.ndarray) -> np.ndarray:
    return (
        ii[r[:, 3], r[:, 2]] - ii[r[:, 1], r[:, 2]] - ii[r[:, 3], r[:, 0]] + ii[r[:, 1], r[:, 0]]
    ).astype(np.float64)


# --- reading ----------------------------------------------------------------------------


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY)
    elif image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != 2:
        raise ValueError(f"expected a grayscale or RGB image, got shape {image.shape}")
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image


_STREAK_RATIO = 0.85  # a column whose brightest pixel is this much darker than its neighbours'


def _destreak(gray: np.ndarray) -> np.ndarray:
    """The scan with dark scanner streaks taken out.

    Dirt on the scanner glass darkens a few pixel columns of the scan over its
    whole length, paper and print alike.  Each column's brightest pixel is its
    paper (or the scanner bed) somewhere along the sheet; a column much darker
    there than the median of its 21 neighbours is a streak, and it and its
    blurred edges are brightened back by that ratio.  Nothing printed or
    marked spans the sheet's height, so no real column is touched.
    """
    top = gray.max(axis=0)
    ref = cv2.medianBlur(np.ascontiguousarray(top[None, :]), 21)[0].astype(np.float32)
    ratio = top.astype(np.float32) / np.maximum(ref, 1.0)
    core = ratio < _STREAK_RATIO
    if not core.any():
        return gray
    near = np.convolve(core.astype(np.float32), np.ones(5, np.float32), "same") > 0
    cols = np.flatnonzero(near & (ratio < 0.98))
    out = gray.copy()
    out[:, cols] = np.clip(gray[:, cols] / ratio[cols], 0, 255).astype(np.uint8)
    return out


def _homography(
    found: dict[int, np.ndarray], style: BallotStyle, test: bool
) -> tuple[np.ndarray, float] | None:
    """Scan -> page homography from every corner of every marker of this style found."""
    src, dst = [], []
    for m in style.markers:
        mid = m.marker_id
        if test and mid in LIVE_CORNERS:
            mid = TEST_CORNERS[LIVE_CORNERS.index(mid)]
        pts = found.get(mid)
        if pts is None:
            continue
        r = m.rect
        src.append(pts)
        dst.append(
            np.array(
                [(r.x, r.y), (r.x + r.w, r.y), (r.x + r.w, r.y + r.h), (r.x, r.y + r.h)],
                dtype=np.float64,
            )
            - 0.5
        )
    s = np.concatenate(src)
    d = np.concatenate(dst)
    h, _ = cv2.findHomography(s, d, 0)
    if h is None:
        return None
    proj = cv2.perspectiveTransform(s.reshape(-1, 1, 2), h).reshape(-1, 2)
    return h, float(np.abs(proj - d).max())


def read_sheet(
    image: np.ndarray,
    layouts: BallotLayouts,
    *,
    expected_test_mode: bool,
    allowed_styles: set[str] | None = None,
    settings: MarkSettings | None = None,
) -> SheetReading:
    """What the sheet is and what the voter marked on it.

    `image` is a scan (grayscale, or RGB) of any size and orientation;
    `allowed_styles` are the styles this station takes (None: every style of
    the election); `expected_test_mode` is True while the box runs a test deck.
    """
    settings = settings or MarkSettings()
    gray = _destreak(_gray(image))
    found = _detect(gray)
    ids = tuple(sorted(found))
    test = _corner_set(found)
    if test is None:
        n = max(sum(i in found for i in LIVE_CORNERS), sum(i in found for i in TEST_CORNERS))
        return SheetReading(
            SheetStatus.UNREADABLE, f"found {n} of the 4 corner markers", markers=ids
        )
    elections = [i for i in ids if ELECTION_BASE <= i < 1000]
    styles = [i for i in ids if STYLE_BASE <= i < ELECTION_BASE]
    if election_marker_id(layouts.election_hash) not in elections:
        if elections:
            return SheetReading(
                SheetStatus.FOREIGN_ELECTION,
                f"election marker {elections[0]} is not this election's",
                test_sheet=test,
                markers=ids,
            )
        return SheetReading(
            SheetStatus.UNREADABLE, "election marker not found", test_sheet=test, markers=ids
        )
    if len(styles) != 1:
        why = "style marker not found" if not styles else f"several style markers {styles}"
        return SheetReading(SheetStatus.UNREADABLE, why, test_sheet=test, markers=ids)
    number = styles[0] - STYLE_BASE
    style = layouts.style_by_number(number)
    if style is None:
        return SheetReading(
            SheetStatus.FOREIGN_ELECTION,
            f"style {number} is not a style of this election",
            style_number=number,
            test_sheet=test,
            markers=ids,
        )

    def result(
        status: SheetStatus, reason: str, contests: tuple[ContestReading, ...] = ()
    ) -> SheetReading:
        return SheetReading(status, reason, style.style_id, number, test, contests, ids)

    if test and not expected_test_mode:
        return result(SheetStatus.TEST_SHEET_IN_LIVE, "test-deck sheet")
    if not test and expected_test_mode:
        return result(SheetStatus.LIVE_SHEET_IN_TEST, "live ballot in test mode")
    if allowed_styles is not None and style.style_id not in allowed_styles:
        return result(SheetStatus.FOREIGN_STYLE, f"ballot {style.style_id} is not issued here")
    fit = _homography(found, style, test)
    if fit is None or fit[1] > settings.max_marker_error_px:
        err = "no fit" if fit is None else f"{fit[1]:.1f} px"
        return result(SheetStatus.UNREADABLE, f"markers disagree (folded or torn?): {err}")
    contests = _measure(gray, layouts, style, fit[0], settings)
    if contests is None:
        return result(SheetStatus.UNREADABLE, "no contrast between paper and print")
    return result(SheetStatus.OK, "", contests)


def _levels(roi: np.ndarray) -> tuple[float, float] | None:
    """Paper white and print black of this scan, from the box region's histogram."""
    hist = np.bincount(roi[::4, ::4].ravel(), minlength=256).cumsum()
    total = hist[-1]
    black = float(np.searchsorted(hist, total * 0.005))
    white = float(np.searchsorted(hist, total * 0.90))
    if white - black < 50:
        return None
    return white, black


def _measure(
    gray: np.ndarray,
    layouts: BallotLayouts,
    style: BallotStyle,
    h: np.ndarray,
    settings: MarkSettings,
) -> tuple[ContestReading, ...] | None:
    geo = _geometry(layouts, style)
    x, y, w, hh = geo.roi
    shift = np.array([[1, 0, -x], [0, 1, -y], [0, 0, 1]], dtype=np.float64)
    roi = cv2.warpPerspective(
        gray, shift @ h, (w, hh), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE
    )
    levels = _levels(roi)
    if levels is None:
        return None
    white, black = levels
    span = max(white - black, 100.0)
    v = np.arange(256, dtype=np.float64)
    dark = np.clip(((white - v) / span - settings.ink_floor) / (1 - settings.ink_floor), 0, 1)
    lut = np.round(dark * 255).astype(np.uint8)
    ii = cv2.integral(cv2.LUT(roi, lut))
    fills = _sums(ii, geo.interior) / (255.0 * geo.interior_area)
    strays = (_sums(ii, geo.outer) - _sums(ii, geo.inner)) / 255.0
    need = (fills >= _FAINT_CANDIDATE) & (fills < settings.definite)
    recheck = np.flatnonzero(strays >= settings.stray_px)
    faints = np.zeros_like(fills)
    if need.any() or len(recheck):
        # darkness with no ink floor, for the second looks
        raw = np.round(np.clip((white - v) / span, 0, 1) * 255).astype(np.uint8)
        plain = cv2.LUT(roi, raw)
        faints = _faint(plain, geo, need)
        for i in recheck:
            strays[i] = _stray_without_lines(plain, geo, int(i), settings.ink_floor)
    # A box that does not lie wholly on the scanned image cannot be read.
    back = cv2.perspectiveTransform(geo.box_corners, np.linalg.inv(h)).reshape(-1, 4, 2)
    gh, gw = gray.shape
    inside = (
        (back[:, :, 0] >= 0)
        & (back[:, :, 0] <= gw - 1)
        & (back[:, :, 1] >= 0)
        & (back[:, :, 1] <= gh - 1)
    ).all(axis=1)
    out: list[ContestReading] = []
    k = 0
    for c in style.contests:
        n = len(c.boxes)
        boxes = tuple(
            BoxReading(
                b.option_id,
                b.candidate_id,
                float(fills[k + j]),
                float(strays[k + j]),
                float(faints[k + j]),
            )
            for j, b in enumerate(c.boxes)
        )
        if not inside[k : k + n].all():
            out.append(
                ContestReading(
                    c.contest_id,
                    ContestStatus.UNREADABLE,
                    None,
                    None,
                    ("box_outside_image",),
                    boxes,
                )
            )
        else:
            out.append(_classify(c.contest_id, boxes, settings))
        k += n
    return tuple(out)


# Boxes measured for faint ink: some ink over the floor (a blank box: under 0.0002, a
# blank box crossed by a fold or streak: up to about 0.02; the lightest stroke 0.002),
# not definite (a definite box needs no second look).
_FAINT_CANDIDATE = 0.0005
_FAINT_LEVEL = 0.05  # darkness above the box's own paper (share of print black) that is ink


def _stray_without_lines(dark: np.ndarray, geo: _Geometry, i: int, floor: float) -> float:
    """Stray ink of box `i` again, with fold and streak lines taken out first.

    Only boxes over `stray_px` are measured again.  A crease or a streak runs
    far beyond the box, so it crosses the clear zone on both sides: each row
    of the patch around the box is lightened by the lesser of its darkness in
    the left and in the right clear zone (each side's darkest of +-2 rows, for
    a line's slant), then each column by the lesser of the top and bottom
    zones.  A stroke that comes in from one side is dark on that side only
    and stays.  The rest is measured as `stray` is (same floor, same ring).
    """
    x0, y0, x1, y1 = (int(v) for v in geo.outer[i])
    ix0, iy0, ix1, iy1 = (int(v) - o for v, o in zip(geo.inner[i], (x0, y0, x0, y0), strict=True))
    p = dark[y0:y1, x0:x1].astype(np.float32)
    if min(ix0, iy0, p.shape[1] - ix1, p.shape[0] - iy1) < 1:
        return float(np.clip((p / 255.0 - floor) / (1 - floor), 0, 1).sum())
    grow = np.ones((5, 1), np.uint8)

    def side(a: np.ndarray) -> np.ndarray:
        return cv2.dilate(np.median(a, axis=1).astype(np.float32)[:, None], grow)[:, 0]

    p -= np.minimum(side(p[:, :ix0]), side(p[:, ix1:]))[:, None]
    pt = np.ascontiguousarray(p.T)
    p -= np.minimum(side(pt[:, :iy0]), side(pt[:, iy1:]))[None, :]
    ink = np.clip((p / 255.0 - floor) / (1 - floor), 0, 1)
    return float(ink.sum()) - float(ink[iy0:iy1, ix0:ix1].sum())


def _faint(dark: np.ndarray, geo: _Geometry, need: np.ndarray) -> np.ndarray:
    """Per box: pixels of stroke ink in its interior, page-long lines removed.

    `dark` is darkness without any ink floor (0 paper .. 255 print black).  In
    each interior, each row's median and then each column's median are taken
    away: a fold or a scanner streak darkens whole rows or columns of the box
    (it runs far beyond it), a stroke only a few pixels of each row and
    column.  What is left is smoothed 3x3 (sensor noise) and the pixels above
    `_FAINT_LEVEL` are counted.
    """
    out = np.zeros(len(geo.interior), dtype=np.float64)
    win = np.lib.stride_tricks.sliding_window_view
    level = _FAINT_LEVEL * 255
    for group, h, w in geo.groups:
        idx = group[need[group]]
        if h < 5 or w < 5 or not len(idx):
            continue
        r = geo.interior[idx]
        p = win(dark, (h, w))[r[:, 1], r[:, 0]].astype(np.float32)
        p -= np.median(p, axis=2, keepdims=True)
        p -= np.median(p, axis=1, keepdims=True)
        sm = (
            p[:, :-2, :-2]
            + p[:, :-2, 1:-1]
            + p[:, :-2, 2:]
            + p[:, 1:-1, :-2]
            + p[:, 1:-1, 1:-1]
            + p[:, 1:-1, 2:]
            + p[:, 2:, :-2]
            + p[:, 2:, 1:-1]
            + p[:, 2:, 2:]
        ) / 9.0
        out[idx] = (sm > level).sum(axis=(1, 2))
    return out


def _classify(contest_id: str, boxes: tuple[BoxReading, ...], s: MarkSettings) -> ContestReading:
    """The contest's status from its boxes.

    - overvote: two or more definite choices (party-level boxes on a party list);
    - marginal: otherwise, any box that is not definite with a faint fill (at
      least `marginal`) or a faint stroke (`faint` at least `faint_px`), beside
      a definite mark or not; any box with stray ink in its clear zone while
      it is not itself definite, and any candidate (preference) box with stray
      ink even when definite (a stroke that crossed its border from outside,
      such as a party tick running on into it, is not a preference); or a
      candidate preference marked with no party marked;
    - valid: exactly one definite choice; blank: none.
    Open list: the party vote stands alone; its preference counts only when
    exactly one candidate box is definite and it is in the chosen party's row.
    A preference in another party's row or two preferences are not counted
    (reasons say so) and do not invalidate the party vote.
    """

    def definite(b: BoxReading) -> bool:
        return b.fill >= s.definite

    choices = [b for b in boxes if b.candidate_id is None]
    prefs = [b for b in boxes if b.candidate_id is not None]
    marked = [b for b in choices if definite(b)]
    reasons: list[str] = []
    if any(not definite(b) and (b.fill >= s.marginal or b.faint >= s.faint_px) for b in boxes):
        reasons.append("faint_mark")
    if any(
        b.stray >= s.stray_px and (not definite(b) or b.candidate_id is not None) for b in boxes
    ):
        reasons.append("stray_ink")
    marked_prefs = [b for b in prefs if definite(b)]
    if len(marked) >= 2:
        return ContestReading(contest_id, ContestStatus.OVERVOTE, None, None, tuple(reasons), boxes)
    if not marked and marked_prefs:
        reasons.append("preference_without_party")
    if reasons:
        return ContestReading(contest_id, ContestStatus.MARGINAL, None, None, tuple(reasons), boxes)
    if not marked:
        return ContestReading(contest_id, ContestStatus.BLANK, None, None, (), boxes)
    choice = marked[0].option_id
    candidate: str | None = None
    own = [b for b in marked_prefs if b.option_id == choice]
    if len(marked_prefs) > len(own):
        reasons.append("preference_in_other_party_not_counted")
    if len(own) > 1:
        reasons.append("several_preferences_not_counted")
    elif len(own) == 1 and len(marked_prefs) == 1:
        candidate = own[0].candidate_id
    return ContestReading(contest_id, ContestStatus.VALID, choice, candidate, tuple(reasons), boxes)
