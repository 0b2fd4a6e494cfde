"""The mark reader on real rendered sheets, marked and 'scanned' here with OpenCV."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from election.ballot_layout import BallotLayouts, Rect
from election.definition import ElectionDefinition
from provisioning.ballots import layouts_for, render_png
from provisioning.sample import build_definition
from station.marks import ContestStatus, MarkSettings, SheetStatus, read_sheet
from tests.support.provisioned import Provisioned

# --- marks and scans, made the simple way --------------------------------------------


def fill(img: np.ndarray, r: Rect, v: int = 30) -> None:
    cv2.rectangle(img, (r.x + 4, r.y + 4), (r.x + r.w - 5, r.y + r.h - 5), v, -1)


def cross(img: np.ndarray, r: Rect, v: int = 20, t: int = 4, over: int = 0) -> None:
    a = (r.x + 6 - over, r.y + 6 - over)
    b = (r.x + r.w - 7 + over, r.y + r.h - 7 + over)
    cv2.line(img, a, b, v, t, cv2.LINE_AA)
    cv2.line(img, (a[0], b[1]), (b[0], a[1]), v, t, cv2.LINE_AA)


def tick(img: np.ndarray, r: Rect, v: int = 20, t: int = 4) -> None:
    pts = [(0.2, 0.55), (0.42, 0.8), (0.85, 0.2)]
    poly = np.array([(r.x + r.w * px, r.y + r.h * py) for px, py in pts], np.int32)
    cv2.polylines(img, [poly], False, v, t, cv2.LINE_AA)


def dot(img: np.ndarray, r: Rect, rad: int = 2) -> None:
    cv2.circle(img, (r.x + r.w // 2, r.y + r.h // 2), rad, 30, -1, cv2.LINE_AA)


def stroke_into(img: np.ndarray, r: Rect, target: Rect, reach: int = 3, t: int = 4) -> None:
    """A stroke from the middle of `r` that crosses `target`'s border by `reach` px."""
    cx, cy = r.x + r.w / 2, r.y + r.h / 2
    tx, ty = target.x + target.w / 2, target.y + target.h / 2
    ex: float
    ey: float
    if abs(tx - cx) > abs(ty - cy):
        ex = target.x + reach if tx > cx else target.x + target.w - reach
        ey = cy + (ty - cy) * (ex - cx) / (tx - cx)
    else:
        ey = target.y + reach if ty > cy else target.y + target.h - reach
        ex = cx + (tx - cx) * (ey - cy) / (ty - cy)
    cv2.line(img, (int(cx), int(cy)), (int(ex), int(ey)), 20, t, cv2.LINE_AA)


def scan(
    img: np.ndarray,
    *,
    angle: float = 0.0,
    scale: float = 1.0,
    blur: float = 0.0,
    noise: float = 0.0,
    skew: float = 0.0,
    upside_down: bool = False,
    seed: int = 0,
) -> np.ndarray:
    # The scanner sees a little beyond the sheet, on a grey backing.
    out = cv2.copyMakeBorder(img, 70, 70, 70, 70, cv2.BORDER_CONSTANT, value=200)
    h, w = out.shape[:2]
    out = cv2.rotate(out, cv2.ROTATE_180) if upside_down else out
    if angle or scale != 1.0:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        out = cv2.warpAffine(out, m, (w, h), borderValue=200)
    if skew:
        d = skew * w
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        dst = np.array([[d, 0], [w - d * 0.3, d * 0.5], [w, h], [0, h - d]], np.float32)
        out = cv2.warpPerspective(
            out, cv2.getPerspectiveTransform(src, dst), (w, h), borderValue=255
        )
    if blur:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    if noise:
        rng = np.random.default_rng(seed)
        out = np.clip(out + rng.normal(0, noise, out.shape), 0, 255).astype(np.uint8)
    return out


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parliament() -> ElectionDefinition:
    # The definition the `provisioned` fixture provisions (same generator arguments).
    return build_definition(stations=4, voters_per_station=25, seed=7, kind="parliament")


@pytest.fixture(scope="module")
def layouts(parliament: ElectionDefinition) -> BallotLayouts:
    return layouts_for(parliament)


@pytest.fixture(scope="module")
def presidential() -> BallotLayouts:
    return layouts_for(
        build_definition(stations=4, voters_per_station=25, seed=7, kind="presidential")
    )


@pytest.fixture(scope="module")
def blank_sheets(layouts: BallotLayouts) -> dict[str, np.ndarray]:
    return {s.style_id: render_png(layouts, s.style_id) for s in layouts.styles}


def box(
    layouts: BallotLayouts, style_id: str, option_id: str, candidate_id: str | None = None
) -> Rect:
    for c in layouts.style(style_id).contests:
        for b in c.boxes:
            if b.option_id == option_id and b.candidate_id == candidate_id:
                return b.rect
    raise KeyError(option_id)


def read(layouts: BallotLayouts, img: np.ndarray, **kw: object):  # type: ignore[no-untyped-def]
    reading = read_sheet(img, layouts, expected_test_mode=bool(kw.pop("test", False)), **kw)  # type: ignore[arg-type]
    return reading


SMD = "smd-03"
LIST = "parliament-list"


def smd_options(layouts: BallotLayouts) -> list[str]:
    return [b.option_id for b in layouts.style(SMD).contests[0].boxes]


# --- blank sheets ------------------------------------------------------------------------


def test_every_style_of_the_provisioned_election_reads_back_blank(provisioned: Provisioned) -> None:
    lay = layouts_for(provisioned.definition)
    for style in lay.styles:
        r = read_sheet(render_png(lay, style.style_id), lay, expected_test_mode=False)
        assert r.status is SheetStatus.OK, r.reason
        assert r.style_id == style.style_id
        assert [c.status for c in r.contests] == [ContestStatus.BLANK]
        assert max(b.fill for b in r.contests[0].boxes) < 0.005


def test_presidential_and_referendum_styles_read_back_blank(presidential: BallotLayouts) -> None:
    for style in presidential.styles:
        r = read_sheet(
            scan(render_png(presidential, style.style_id), blur=1.0, noise=6),
            presidential,
            expected_test_mode=False,
        )
        assert (r.status, r.style_id) == (SheetStatus.OK, style.style_id)
        assert r.contests[0].status is ContestStatus.BLANK


# --- single-choice contests ----------------------------------------------------------------


@pytest.mark.parametrize("mark", [fill, cross, tick], ids=["filled", "cross", "tick"])
def test_a_mark_reads_valid_with_its_option(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray], mark: Callable[..., None]
) -> None:
    for option in smd_options(layouts):
        img = blank_sheets[SMD].copy()
        mark(img, box(layouts, SMD, option))
        c = read(layouts, img).contests[0]
        assert (c.status, c.option_id) == (ContestStatus.VALID, option)


def test_referendum_and_president_marks_count_for_the_marked_option(
    presidential: BallotLayouts,
) -> None:
    for style_id, option in (("referendum", "no"), ("president", "against-all")):
        img = render_png(presidential, style_id)
        cross(img, box(presidential, style_id, option))
        c = read_sheet(img, presidential, expected_test_mode=False).contests[0]
        assert (c.status, c.option_id) == (ContestStatus.VALID, option)


def test_two_marks_are_an_overvote(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    a, b = smd_options(layouts)[0], smd_options(layouts)[-1]
    img = blank_sheets[SMD].copy()
    cross(img, box(layouts, SMD, a))
    tick(img, box(layouts, SMD, b))
    c = read(layouts, img).contests[0]
    assert c.status is ContestStatus.OVERVOTE and c.option_id is None


def test_a_light_pencil_tick_is_marginal_not_a_vote(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    img = blank_sheets[SMD].copy()
    tick(img, box(layouts, SMD, smd_options(layouts)[1]), v=185, t=3)
    c = read(layouts, scan(img, blur=1.0, noise=6)).contests[0]
    assert c.status is ContestStatus.MARGINAL and c.option_id is None
    assert "faint_mark" in c.reasons


def test_a_definite_mark_with_a_faint_one_elsewhere_is_marginal(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    img = blank_sheets[SMD].copy()
    cross(img, box(layouts, SMD, smd_options(layouts)[0]))
    tick(img, box(layouts, SMD, smd_options(layouts)[2]), v=185, t=3)
    assert read(layouts, scan(img, blur=1.0)).contests[0].status is ContestStatus.MARGINAL


def test_a_dot_in_a_box_is_never_counted(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    for rad in (1, 2, 3):
        img = blank_sheets[SMD].copy()
        dot(img, box(layouts, SMD, smd_options(layouts)[0]), rad)
        c = read(layouts, scan(img, blur=0.8, noise=5)).contests[0]
        assert c.status in (ContestStatus.BLANK, ContestStatus.MARGINAL)


def test_a_stroke_straying_into_the_next_box_is_marginal(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    opts = smd_options(layouts)
    img = blank_sheets[SMD].copy()
    a, b = box(layouts, SMD, opts[1]), box(layouts, SMD, opts[2])
    cross(img, a)
    stroke_into(img, a, b, reach=3)  # the 2021 complaint: a tick's tail in the next box
    c = read(layouts, scan(img, blur=1.0, noise=6)).contests[0]
    assert c.status is ContestStatus.MARGINAL and "stray_ink" in c.reasons
    # ... and on the dense party list, a candidate mark spilling into the next number
    img = blank_sheets[LIST].copy()
    party = layouts.style(LIST).contests[0].boxes[0]
    cand = [b for b in layouts.style(LIST).contests[0].boxes if b.option_id == party.option_id][1:]
    cross(img, party.rect)
    cross(img, cand[3].rect)
    stroke_into(img, cand[3].rect, cand[4].rect, reach=2, t=3)
    c = read(layouts, scan(img, blur=1.0, noise=6)).contests[0]
    assert c.status is ContestStatus.MARGINAL and "stray_ink" in c.reasons


def test_a_sloppy_cross_that_stays_clear_of_its_neighbours_is_valid(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    opt = smd_options(layouts)[1]
    img = blank_sheets[SMD].copy()
    cross(img, box(layouts, SMD, opt), over=8)
    c = read(layouts, scan(img, blur=1.0, noise=6)).contests[0]
    assert (c.status, c.option_id) == (ContestStatus.VALID, opt)


def test_a_faint_stroke_beside_a_definite_mark_is_marginal(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    # The voter touched one box lightly, then voted in another: a stroke at a quarter of
    # the pen's darkness, which the ink floor all but erases from the mean fill.
    opts = smd_options(layouts)
    img = blank_sheets[SMD].copy()
    cross(img, box(layouts, SMD, opts[0]))
    tick(img, box(layouts, SMD, opts[2]), v=200, t=3)
    c = read(layouts, scan(img, blur=1.0, noise=6)).contests[0]
    light = next(b for b in c.boxes if b.option_id == opts[2])
    assert light.fill < MarkSettings().marginal  # the mean fill alone would call it blank
    assert light.faint >= MarkSettings().faint_px
    assert c.status is ContestStatus.MARGINAL and "faint_mark" in c.reasons
    # a pen dot is not a faint stroke: the vote stands
    img = blank_sheets[SMD].copy()
    cross(img, box(layouts, SMD, opts[0]))
    dot(img, box(layouts, SMD, opts[2]), rad=2)
    c = read(layouts, scan(img, blur=1.0, noise=6)).contests[0]
    assert (c.status, c.option_id) == (ContestStatus.VALID, opts[0])


def test_a_stroke_overshooting_into_a_preference_box_is_not_a_preference(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    # A marker tick on the party box runs on deep into its first candidate's box: that box
    # reads as definitely marked, but its ink comes across the border from outside.
    img = blank_sheets[LIST].copy()
    boxes = layouts.style(LIST).contests[0].boxes
    party = boxes[0]
    first = next(b for b in boxes if b.option_id == party.option_id and b.candidate_id)
    cross(img, party.rect, t=7)
    stroke_into(img, party.rect, first.rect, reach=first.rect.w // 2, t=7)
    c = read(layouts, scan(img, blur=1.0, noise=6)).contests[0]
    touched = next(b for b in c.boxes if b.candidate_id == first.candidate_id)
    assert touched.fill >= MarkSettings().definite
    assert c.status is ContestStatus.MARGINAL and "stray_ink" in c.reasons
    assert c.candidate_id is None


@pytest.mark.parametrize("role", ["style", "election"])
def test_a_scanner_streak_down_a_marker_still_reads(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray], role: str
) -> None:
    # Dirt on the scanner glass: a 4 px column 45% darker over the whole scan, straight
    # down the middle of the style (or election) marker.
    opt = smd_options(layouts)[1]
    img = blank_sheets[SMD].copy()
    cross(img, box(layouts, SMD, opt))
    out = scan(img)
    m = next(m for m in layouts.style(SMD).markers if m.role == role)
    x = 70 + m.rect.x + m.rect.w // 2 - 2
    out[:, x : x + 4] = (out[:, x : x + 4] * 0.55).astype(np.uint8)
    out = scan(out, blur=1.0, noise=5)[70:-70, 70:-70]
    reading = read(layouts, out)
    assert reading.status is SheetStatus.OK, reading.reason
    c = reading.contests[0]
    assert (c.status, c.option_id) == (ContestStatus.VALID, opt)


# --- scanner defects ------------------------------------------------------------------------

DEFECTS = {
    "rotated_3": dict(angle=3.0),
    "rotated_minus_3_scaled_097": dict(angle=-3.0, scale=0.97),
    "upside_down": dict(upside_down=True),
    "perspective_skew": dict(skew=0.02),
    "blur_and_noise": dict(blur=1.6, noise=12.0),
    "everything": dict(angle=2.0, scale=0.98, skew=0.015, blur=1.2, noise=8.0, upside_down=True),
}


@pytest.mark.parametrize("defect", DEFECTS.values(), ids=list(DEFECTS))
def test_marks_read_correctly_through_scanner_defects(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray], defect: dict[str, object]
) -> None:
    opts = smd_options(layouts)
    img = blank_sheets[SMD].copy()
    tick(img, box(layouts, SMD, opts[2]))
    c = read(layouts, scan(img, **defect)).contests[0]  # type: ignore[arg-type]
    assert (c.status, c.option_id) == (ContestStatus.VALID, opts[2])
    img = blank_sheets[SMD].copy()
    cross(img, box(layouts, SMD, opts[0]))
    fill(img, box(layouts, SMD, opts[-1]))
    assert read(layouts, scan(img, **defect)).contests[0].status is ContestStatus.OVERVOTE  # type: ignore[arg-type]
    blank = read(layouts, scan(blank_sheets[LIST], **defect))  # type: ignore[arg-type]
    assert blank.contests[0].status is ContestStatus.BLANK


def test_an_rgb_scan_reads_like_a_gray_one(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    img = cv2.cvtColor(blank_sheets[SMD], cv2.COLOR_GRAY2RGB)
    r = box(layouts, SMD, smd_options(layouts)[0])
    cv2.line(img, (r.x + 6, r.y + 6), (r.x + r.w - 7, r.y + r.h - 7), (20, 40, 200), 4)  # blue pen
    cv2.line(img, (r.x + 6, r.y + r.h - 7), (r.x + r.w - 7, r.y + 6), (20, 40, 200), 4)
    c = read(layouts, img).contests[0]
    assert (c.status, c.option_id) == (ContestStatus.VALID, smd_options(layouts)[0])


# --- open party list ----------------------------------------------------------------------


def _party_rows(layouts: BallotLayouts) -> tuple[list[str], dict[str, list[tuple[str, Rect]]]]:
    boxes = layouts.style(LIST).contests[0].boxes
    parties = [b.option_id for b in boxes if b.candidate_id is None]
    cands: dict[str, list[tuple[str, Rect]]] = {}
    for b in boxes:
        if b.candidate_id is not None:
            cands.setdefault(b.option_id, []).append((b.candidate_id, b.rect))
    return parties, cands


def test_party_vote_with_a_preference_for_its_own_candidate(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    parties, cands = _party_rows(layouts)
    p = parties[3]
    cid, rect = cands[p][4]
    img = blank_sheets[LIST].copy()
    cross(img, box(layouts, LIST, p))
    tick(img, rect)
    c = read(layouts, scan(img, angle=1.5, blur=1.0, noise=6)).contests[0]
    assert (c.status, c.option_id, c.candidate_id) == (ContestStatus.VALID, p, cid)


def test_preferences_that_cannot_count_leave_the_party_vote_standing(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    parties, cands = _party_rows(layouts)
    p, other = parties[0], parties[1]
    img = blank_sheets[LIST].copy()
    cross(img, box(layouts, LIST, p))
    cross(img, cands[other][0][1])  # a candidate of another party
    c = read(layouts, img).contests[0]
    assert (c.status, c.option_id, c.candidate_id) == (ContestStatus.VALID, p, None)
    assert c.reasons == ("preference_in_other_party_not_counted",)
    img = blank_sheets[LIST].copy()
    cross(img, box(layouts, LIST, p))
    cross(img, cands[p][0][1])
    cross(img, cands[p][6][1])  # two preferences
    c = read(layouts, img).contests[0]
    assert (c.status, c.option_id, c.candidate_id) == (ContestStatus.VALID, p, None)
    assert c.reasons == ("several_preferences_not_counted",)


def test_two_parties_are_an_overvote_and_a_candidate_alone_is_marginal(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    parties, cands = _party_rows(layouts)
    img = blank_sheets[LIST].copy()
    cross(img, box(layouts, LIST, parties[0]))
    cross(img, box(layouts, LIST, parties[-1]))  # "against all" is a party-level choice
    assert read(layouts, img).contests[0].status is ContestStatus.OVERVOTE
    img = blank_sheets[LIST].copy()
    cross(img, cands[parties[2]][1][1])
    c = read(layouts, img).contests[0]
    assert c.status is ContestStatus.MARGINAL and c.reasons == ("preference_without_party",)


# --- sheets that are refused ---------------------------------------------------------------


def test_a_test_sheet_is_refused_in_live_mode_and_a_live_sheet_in_test_mode(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    test_sheet = render_png(layouts, SMD, test=True)
    assert read(layouts, test_sheet).status is SheetStatus.TEST_SHEET_IN_LIVE
    assert read(layouts, blank_sheets[SMD], test=True).status is SheetStatus.LIVE_SHEET_IN_TEST
    cross(test_sheet, box(layouts, SMD, smd_options(layouts)[0]))
    r = read(layouts, scan(test_sheet, upside_down=True), test=True)
    assert (r.status, r.test_sheet) == (SheetStatus.OK, True)
    assert r.contests[0].option_id == smd_options(layouts)[0]


def test_a_sheet_of_another_election_is_refused(
    layouts: BallotLayouts, presidential: BallotLayouts
) -> None:
    r = read(layouts, render_png(presidential, "president"))
    assert r.status is SheetStatus.FOREIGN_ELECTION and not r.contests


def test_a_sheet_of_another_district_is_refused(
    parliament: ElectionDefinition, layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    station = next(
        s for s in parliament.stations if parliament.station_district(s.id).id != "abroad"
    )
    here = {c.id for c in parliament.contests_for_station(station.id)}
    foreign = next(s.style_id for s in layouts.styles if s.style_id not in here)
    r = read(layouts, blank_sheets[foreign], allowed_styles=here)
    assert (r.status, r.style_id) == (SheetStatus.FOREIGN_STYLE, foreign)
    mine = next(iter(here))
    assert read(layouts, blank_sheets[mine], allowed_styles=here).status is SheetStatus.OK


def test_a_photo_or_a_blank_page_is_unreadable(layouts: BallotLayouts, faces: Path) -> None:
    photo = cv2.imread(str(faces / "obama" / "enroll.jpg"), cv2.IMREAD_COLOR)
    assert photo is not None
    blank = np.full((layouts.page_h, layouts.page_w), 250, np.uint8)
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (1200, 900), dtype=np.uint8), (0, 0), 3)
    for img in (cv2.cvtColor(photo, cv2.COLOR_BGR2RGB), blank, texture):
        r = read(layouts, img)
        assert r.status is SheetStatus.UNREADABLE and "corner" in r.reason


def test_a_sheet_cut_off_by_the_scanner_is_unreadable_not_blank(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    img = np.ascontiguousarray(blank_sheets[SMD][:, 100:])  # the left corner markers half lost
    assert read(layouts, img).status is SheetStatus.UNREADABLE


# --- output ------------------------------------------------------------------------------


def test_a_reading_is_plain_json_with_rounded_fills(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    img = blank_sheets[SMD].copy()
    tick(img, box(layouts, SMD, smd_options(layouts)[0]))
    obj = read(layouts, scan(img, noise=5)).to_obj()
    back = json.loads(json.dumps(obj))
    assert back["status"] == "ok" and back["style_id"] == SMD
    contest = back["contests"][0]
    assert contest["status"] == "valid" and contest["option_id"] == smd_options(layouts)[0]
    assert all(round(b["fill"], 4) == b["fill"] for b in contest["boxes"])
    assert len(contest["boxes"]) == len(smd_options(layouts))


def test_thresholds_are_settings(
    layouts: BallotLayouts, blank_sheets: dict[str, np.ndarray]
) -> None:
    img = blank_sheets[SMD].copy()
    tick(img, box(layouts, SMD, smd_options(layouts)[0]), v=185, t=3)
    strict = MarkSettings(definite=0.5, marginal=0.3, faint_px=10_000)
    assert read(layouts, img, settings=strict).contests[0].status is ContestStatus.BLANK
    with pytest.raises(ValueError):
        MarkSettings(definite=0.01, marginal=0.02)
