"""Synthetic ballots: marks land where they should, truths follow the rules, scans keep the page."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import replace

import cv2
import numpy as np
import pytest

from election.ballot_layout import BallotStyle, Box, ContestLayout, Rect
from firmware_sim.ballot_marks import (
    DEFINITE_KINDS,
    Intent,
    Mark,
    MarkKind,
    MarkTruth,
    Pen,
    ScanDefects,
    SheetKind,
    Status,
    VoterMix,
    VoterModel,
    apply_scan,
    draw_scan,
    expected_contests,
    expected_tally,
    make_deck,
    mark_sheet,
    neighbour,
    scan,
    to_gray,
)
from firmware_sim.ballot_marks import (
    test_deck as make_test_deck,
)
from provisioning.ballots import layouts_for, render_png
from provisioning.sample import build_definition

PARTY_LIST = "parliament-list"
SMD = "smd-01"
PRESIDENT = "president"
REFERENDUM = "referendum"

# two real elections, laid out and rendered by the real provisioning code
PARLIAMENT = layouts_for(build_definition(stations=4, voters_per_station=10, seed=7))
PRESIDENTIAL = layouts_for(
    build_definition(stations=4, voters_per_station=10, seed=7, kind="presidential")
)
LAYOUTS = {s.style_id: lay for lay in (PARLIAMENT, PRESIDENTIAL) for s in lay.styles}
ALL_STYLES = [PARTY_LIST, SMD, "smd-02"]  # one station's sheets: the list and its district
W, H = PARLIAMENT.page_w, PARLIAMENT.page_h


def style(style_id: str) -> BallotStyle:
    return LAYOUTS[style_id].style(style_id)


def render(style_id: str) -> np.ndarray:
    return render_png(LAYOUTS[style_id], style_id)


_PAGES: dict[str, np.ndarray] = {}


def page(style_id: str) -> np.ndarray:
    if style_id not in _PAGES:
        _PAGES[style_id] = render(style_id)
    return _PAGES[style_id]


def contest(style_id: str) -> ContestLayout:
    return style(style_id).contests[0]


def choice(style_id: str, i: int) -> str:
    """The option id of the i-th choice box (party, candidate, yes/no, against all)."""
    return [b for b in contest(style_id).boxes if b.candidate_id is None][i].option_id


def pref(party: int, j: int) -> tuple[str, str]:
    """(party id, candidate id) of the j-th candidate box of the party-list's party `party`."""
    pid = choice(PARTY_LIST, party)
    b = [b for b in contest(PARTY_LIST).boxes if b.option_id == pid and b.candidate_id][j]
    assert b.candidate_id is not None
    return pid, b.candidate_id


def box(style_id: str, option_id: str, candidate_id: str | None = None) -> Box:
    return next(
        b
        for b in contest(style_id).boxes
        if b.option_id == option_id and b.candidate_id == candidate_id
    )


def mark(style_id: str, option_id: str, kind: MarkKind, **kw: object) -> Mark:
    return Mark(contest(style_id).contest_id, option_id, kind, **kw)  # type: ignore[arg-type]


def ink(blank: np.ndarray, marked: np.ndarray) -> np.ndarray:
    return blank.astype(np.float32) - marked.astype(np.float32)


def inside(r: Rect, a: np.ndarray, shrink: int = 0) -> np.ndarray:
    return a[r.y + shrink : r.y + r.h - shrink, r.x + shrink : r.x + r.w - shrink]


def draw(style_id: str, marks: list[Mark], seed: int = 0) -> tuple[np.ndarray, list[MarkTruth]]:
    truths: list[MarkTruth] = []
    out = mark_sheet(
        page(style_id),
        style(style_id),
        Intent(tuple(marks)),
        np.random.default_rng(seed),
        truth_out=truths,
    )
    return out, truths


def test_the_real_layouts_have_the_box_kinds_the_tests_need() -> None:
    boxes = contest(PARTY_LIST).boxes
    assert any(b.candidate_id for b in boxes) and any(b.candidate_id is None for b in boxes)
    assert page(PARTY_LIST).shape == (H, W) and page(PARTY_LIST).dtype == np.uint8


# --- marks on paper --------------------------------------------------------------------------

CAREFUL_KINDS = [k for k in MarkKind if k is not MarkKind.STRAY_TOUCH]


@pytest.mark.parametrize("kind", CAREFUL_KINDS, ids=str)
@pytest.mark.parametrize("pen", list(Pen), ids=str)
def test_every_careful_mark_stays_inside_its_box(kind: MarkKind, pen: Pen) -> None:
    party, candidate = pref(2, 3)
    targets = [box(PARTY_LIST, choice(PARTY_LIST, 1)), box(PARTY_LIST, party, candidate)]
    targets.append(box(SMD, choice(SMD, 0)))
    for seed in range(3):
        for target in targets:
            sid = PARTY_LIST if target in contest(PARTY_LIST).boxes else SMD
            m = Mark(sid, target.option_id, kind, pen, target.candidate_id)
            marked, truths = draw(sid, [m], seed)
            diff = ink(page(sid), marked)
            total = float(diff.sum())
            assert total > 0, "the mark left no ink"
            assert float(inside(target.rect, diff).sum()) == pytest.approx(total)
            assert truths[0].touched is None and truths[0].ink > 0


def test_marks_never_lighten_the_printed_box() -> None:
    target = box(SMD, choice(SMD, 1))
    marks = [mark(SMD, target.option_id, k, pen=Pen.PENCIL) for k in (MarkKind.FILL, MarkKind.X)]
    marked, _ = draw(SMD, marks)
    assert (ink(page(SMD), marked) >= 0).all()
    assert inside(target.rect, marked).min() < 60


@pytest.mark.parametrize("which", ["smd choice", "party", "candidate preference", "referendum"])
def test_stray_touch_crosses_into_the_neighbouring_box(which: str) -> None:
    sid, option_id, candidate_id = {
        "smd choice": (SMD, choice(SMD, 1), None),
        "party": (PARTY_LIST, choice(PARTY_LIST, 1), None),
        "candidate preference": (PARTY_LIST, *pref(2, 3)),
        "referendum": (REFERENDUM, "yes", None),
    }[which]
    own = box(sid, option_id, candidate_id)
    near = neighbour(contest(sid), (option_id, candidate_id))
    assert near is not None
    line = LAYOUTS[sid].box_line_px
    for seed in range(5):
        m = mark(sid, option_id, MarkKind.STRAY_TOUCH, candidate_id=candidate_id)
        marked, truths = draw(sid, [m], seed)
        assert truths[0].touched == (near.option_id, near.candidate_id)
        assert truths[0].ink > 0.04, "a stray touch is still a definite mark in its own box"
        diff = ink(page(sid), marked)
        # past the neighbour's printed outline, into its interior
        assert inside(near.rect, diff, shrink=line).max() > 100, (
            f"seed {seed}: the stroke stops short"
        )
    assert status_of(sid, [m])[0] is Status.MARGINAL
    assert own != near


def test_light_marks_are_lighter_than_definite_ones_and_dots_lighter_still() -> None:
    inks: dict[MarkKind, list[float]] = {}
    darkest: dict[MarkKind, float] = {}
    party, candidate = pref(0, 0)
    targets = [(SMD, box(SMD, choice(SMD, 0))), (PARTY_LIST, box(PARTY_LIST, party, candidate))]
    for seed in range(4):
        for pen in Pen:
            for kind in (*DEFINITE_KINDS, MarkKind.LIGHT, MarkKind.DOT):
                for sid, target in targets:
                    m = Mark(sid, target.option_id, kind, pen, target.candidate_id)
                    marked, truths = draw(sid, [m], seed)
                    inks.setdefault(kind, []).append(truths[0].ink)
                    diff = inside(target.rect, ink(page(sid), marked))
                    darkest[kind] = max(darkest.get(kind, 0.0), float(np.percentile(diff, 99.5)))
    print({k.value: (round(min(v), 3), round(max(v), 3)) for k, v in inks.items()})
    lo_definite = min(min(inks[k]) for k in DEFINITE_KINDS)
    assert max(inks[MarkKind.LIGHT]) < 0.75 * lo_definite
    assert max(inks[MarkKind.DOT]) < 0.5 * min(inks[MarkKind.LIGHT])
    assert darkest[MarkKind.LIGHT] < 0.6 * min(darkest[k] for k in DEFINITE_KINDS)


def test_blue_ink_on_a_colour_page_is_blue_and_still_dark_in_gray() -> None:
    colour = cv2.cvtColor(page(REFERENDUM), cv2.COLOR_GRAY2BGR)
    target = box(REFERENDUM, "yes")
    m = mark(REFERENDUM, "yes", MarkKind.FILL, pen=Pen.BLUE_BALLPOINT)
    out = mark_sheet(colour, style(REFERENDUM), Intent((m,)), np.random.default_rng(3))
    region = inside(target.rect, out).reshape(-1, 3).astype(int)
    assert (region[:, 0] - region[:, 2]).max() > 60, "blue ink is blue"
    assert inside(target.rect, to_gray(out), shrink=4).mean() < 200


# --- truths ----------------------------------------------------------------------------------


def status_of(style_id: str, marks: list[Mark]) -> tuple[Status, str | None, str | None]:
    (t,) = expected_contests(style(style_id), marks)
    return t.status, t.option_id, t.candidate_id


@pytest.mark.parametrize("kind", DEFINITE_KINDS, ids=str)
def test_one_definite_mark_of_any_kind_is_valid_unless_it_touches(kind: MarkKind) -> None:
    got = status_of(SMD, [mark(SMD, choice(SMD, 2), kind)])
    if kind is MarkKind.STRAY_TOUCH:
        assert got == (Status.MARGINAL, None, None)
    else:
        assert got == (Status.VALID, choice(SMD, 2), None)


def test_expected_status_follows_the_rules() -> None:
    c, p, x = SMD, PARTY_LIST, MarkKind.X
    a, b, d, aa = choice(c, 0), choice(c, 1), choice(c, 2), choice(c, -1)
    p1, p2 = choice(p, 1), choice(p, 2)
    _, p1c = pref(1, 3)
    _, p2c0 = pref(2, 0)
    _, p2c1 = pref(2, 1)
    valid_a = (Status.VALID, a, None)
    cases: list[tuple[str, list[Mark], tuple[Status, str | None, str | None]]] = [
        (c, [], (Status.BLANK, None, None)),
        (c, [mark(c, a, MarkKind.DOT)], (Status.BLANK, None, None)),
        (c, [mark(c, a, MarkKind.LIGHT)], (Status.MARGINAL, None, None)),
        (c, [mark(c, a, x), mark(c, a, MarkKind.CIRCLE)], valid_a),
        (c, [mark(c, a, x), mark(c, a, MarkKind.LIGHT)], valid_a),
        (c, [mark(c, a, x), mark(c, b, MarkKind.DOT)], valid_a),
        (c, [mark(c, a, x), mark(c, aa, x)], (Status.OVERVOTE, None, None)),
        (c, [mark(c, a, x), mark(c, b, MarkKind.LIGHT)], (Status.MARGINAL, None, None)),
        (
            c,
            [mark(c, a, x), mark(c, b, x), mark(c, d, MarkKind.LIGHT)],
            (Status.OVERVOTE, None, None),
        ),
        # a stroke into a box that is itself marked is part of an overvote, not a stray
        (
            c,
            [mark(c, a, MarkKind.STRAY_TOUCH, touch=(b, None)), mark(c, b, x)],
            (Status.OVERVOTE, None, None),
        ),
        (p, [mark(p, p2, x)], (Status.VALID, p2, None)),
        (
            p,
            [mark(p, p2, x), mark(p, p2, MarkKind.TICK, candidate_id=p2c0)],
            (Status.VALID, p2, p2c0),
        ),
        # preferences that cannot count leave the party vote standing
        (p, [mark(p, p2, x), mark(p, p1, x, candidate_id=p1c)], (Status.VALID, p2, None)),
        (
            p,
            [mark(p, p2, x), mark(p, p2, x, candidate_id=p2c0), mark(p, p2, x, candidate_id=p2c1)],
            (Status.VALID, p2, None),
        ),
        (p, [mark(p, p2, x), mark(p, p1, x)], (Status.OVERVOTE, None, None)),
        (p, [mark(p, p2, x, candidate_id=p2c0)], (Status.MARGINAL, None, None)),
        (
            p,
            [mark(p, p2, x), mark(p, p2, MarkKind.LIGHT, candidate_id=p2c0)],
            (Status.MARGINAL, None, None),
        ),
        (p, [mark(p, choice(p, -1), MarkKind.FILL)], (Status.VALID, choice(p, -1), None)),
    ]
    for style_id, marks, want in cases:
        assert status_of(style_id, marks) == want, marks


def test_a_mark_on_a_box_the_layout_lacks_is_refused() -> None:
    with pytest.raises(KeyError):
        expected_contests(style(SMD), [mark(SMD, "nobody", MarkKind.X)])


def test_the_voter_model_draws_the_configured_mix() -> None:
    model = VoterModel(VoterMix())
    rng = np.random.default_rng(11)
    sheet_style = style(PARTY_LIST)
    statuses: Counter[Status] = Counter()
    reasons: Counter[str] = Counter()
    kinds: Counter[MarkKind] = Counter()
    with_pref = 0
    n = 3000
    for _ in range(n):
        intent = model.draw(sheet_style, rng)
        (t,) = expected_contests(sheet_style, intent.marks)
        statuses[t.status] += 1
        reasons[t.reason] += 1
        kinds.update(m.kind for m in intent.marks)
        with_pref += t.candidate_id is not None
    assert 0.87 < statuses[Status.VALID] / n < 0.93
    assert 0.035 < statuses[Status.MARGINAL] / n < 0.065  # faint 3% + stray touch 2%
    assert 0.01 < statuses[Status.OVERVOTE] / n < 0.035
    assert 0.015 < statuses[Status.BLANK] / n < 0.05
    assert 0.45 < with_pref / statuses[Status.VALID] < 0.7
    assert reasons["stray_ink"] > 0 and reasons["faint_mark"] > 0
    assert (
        reasons["several_preferences_not_counted"]
        + reasons["preference_in_other_party_not_counted"]
        > 0
    )
    assert set(kinds) == set(MarkKind)


def test_an_all_valid_mix_gives_only_valid_votes() -> None:
    mix = VoterMix(valid=1, blank=0, overvote=0, faint=0, stray_touch=0, stray_dot=0.5)
    model = VoterModel(mix)
    rng = np.random.default_rng(2)
    for sid in (PARTY_LIST, SMD, PRESIDENT, REFERENDUM):
        for _ in range(200):
            (t,) = expected_contests(style(sid), model.draw(style(sid), rng).marks)
            assert t.status is Status.VALID


# --- the scanner -----------------------------------------------------------------------------


def _unwarp(scanned: np.ndarray, homography: np.ndarray) -> np.ndarray:
    return cv2.warpPerspective(
        scanned, np.linalg.inv(homography), (W, H), flags=cv2.INTER_LINEAR, borderValue=255
    )


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float32) - a.mean()
    b = b.astype(np.float32) - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.mark.parametrize("flip", [False, True], ids=["upright", "upside-down"])
def test_a_harsh_scan_keeps_the_box_grid_once_its_geometry_is_undone(flip: bool) -> None:
    blank = page(PARTY_LIST)
    defects = replace(ScanDefects.harsh(), flip_180_p=1.0 if flip else 0.0)
    params = draw_scan((W, H), np.random.default_rng(4), defects)
    assert params.flipped is flip
    assert params.fold and params.streak and params.jpeg_quality
    scanned = apply_scan(blank, params)
    assert scanned.dtype == np.uint8 and scanned.ndim == 2
    assert W - 100 <= scanned.shape[1] <= W + 200 and H - 100 <= scanned.shape[0] <= H + 200
    back = _unwarp(scanned, params.matrix())
    boxes = contest(PARTY_LIST).boxes
    y0 = min(b.rect.y for b in boxes)
    y1 = max(b.rect.y + b.rect.h for b in boxes)
    region = (slice(y0, y1), slice(0, W))
    assert _ncc(back[region], blank[region]) > 0.7
    shifted = np.roll(blank, 12, axis=1)
    assert _ncc(back[region], shifted[region]) < 0.5
    # where each box's outline is, the scan is dark; inside it, light
    line = PARLIAMENT.box_line_px
    for b in boxes:
        r = b.rect
        assert back[r.y : r.y + line, r.x + 4 : r.x + r.w - 4].mean() < 150
        assert inside(r, back, shrink=line + 4).mean() > 150


def test_a_scan_is_rotated_and_scaled_as_its_params_say() -> None:
    rng = np.random.default_rng(9)
    for _ in range(50):
        params = draw_scan((W, H), rng, ScanDefects(flip_180_p=0.0, skew=0.0))
        hm = params.matrix()
        assert math.degrees(math.atan2(hm[1, 0], hm[0, 0])) == pytest.approx(params.rotation_deg)
        assert float(np.hypot(hm[0, 0], hm[1, 0])) == pytest.approx(params.scale)
        assert abs(params.rotation_deg) <= 3.0 and 0.97 <= params.scale <= 1.03


def test_no_defects_is_the_page_itself() -> None:
    blank = page(SMD)
    out = scan(blank, np.random.default_rng(0), ScanDefects.none())
    assert np.array_equal(out, blank)


def test_scans_vary_in_rotation_and_size_and_always_hold_the_whole_sheet() -> None:
    rng = np.random.default_rng(5)
    rots, sizes = [], set()
    page_corners = np.array([[[0, 0]], [[W, 0]], [[W, H]], [[0, H]]], np.float64)
    for _ in range(300):
        p = draw_scan((W, H), rng, ScanDefects(flip_180_p=0.1))
        rots.append(p.rotation_deg % 360 if p.flipped else p.rotation_deg)
        sizes.add(p.size)
        on_scan = cv2.perspectiveTransform(page_corners, p.matrix()).reshape(4, 2)
        assert (on_scan >= -0.5).all() and (on_scan <= np.array(p.size) + 0.5).all()
    upright = [r for r in rots if abs(r) <= 3.0]
    assert max(upright) > 2.0 and min(upright) < -2.0
    assert len(upright) < 300 and all(abs(r - 180) <= 3.0 for r in rots if abs(r) > 3.0)
    assert len(sizes) > 10


# --- decks -----------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_sheets_and_another_seed_others() -> None:
    a = list(make_deck(PARLIAMENT, ALL_STYLES, 6, 42, render))
    b = list(make_deck(PARLIAMENT, ALL_STYLES, 6, 42, render))
    c = list(make_deck(PARLIAMENT, ALL_STYLES, 6, 43, render))
    longer = list(make_deck(PARLIAMENT, ALL_STYLES, 8, 42, render))
    for x, y, z in zip(a, b, longer, strict=False):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.image, z.image)
        assert x.truth.to_json() == y.truth.to_json() == z.truth.to_json()
    assert any(not np.array_equal(x.image, y.image) for x, y in zip(a, c, strict=True))


def test_a_sheet_truth_is_plain_json() -> None:
    (sheet,) = make_deck(PARLIAMENT, [PARTY_LIST], 1, 3, render)
    data = json.loads(json.dumps(sheet.truth.to_json()))
    assert data["style_id"] == PARTY_LIST and data["sheet"] == "normal"
    assert data["contests"][0]["status"] in {s.value for s in Status}
    assert len(data["scan"]["homography"]) == 3


def test_foreign_styles_are_mixed_in_and_labelled() -> None:
    deck = list(
        make_deck(
            PARLIAMENT,
            [SMD],
            40,
            1,
            render,
            defects=ScanDefects.none(),
            foreign_style_ids=["smd-02"],
            foreign_share=0.3,
        )
    )
    kinds = Counter((s.style_id, s.truth.sheet) for s in deck)
    assert set(kinds) == {(SMD, SheetKind.NORMAL), ("smd-02", SheetKind.FOREIGN)}
    assert set(expected_tally([s.truth for s in deck])) == {SMD}, "foreign sheets are not counted"


def test_the_test_deck_marks_every_option_once_and_its_tally_adds_up() -> None:
    sids = [PARTY_LIST, SMD]
    deck = make_test_deck(PARLIAMENT, sids, render)
    assert all(s.truth.sheet is SheetKind.TEST for s in deck.sheets)
    for sid in sids:
        for c in style(sid).contests:
            row = deck.tally[c.contest_id]
            main = {b.option_id for b in c.boxes if b.candidate_id is None}
            assert row["options"] == dict.fromkeys(main, 1)
            assert (row["blank"], row["overvote"], row["marginal"]) == (2, 1, 1)
            assert row["candidates"] == {}
            total = sum(row["options"].values()) + row["blank"] + row["overvote"] + row["marginal"]
            assert total == row["sheets"] == len([s for s in deck.sheets if s.style_id == sid])
    # each sheet really carries the marks its truth says: ink in exactly those boxes
    for s in deck.sheets:
        diff = ink(page(s.style_id), s.image)
        marked = {(m.mark.option_id, m.mark.candidate_id) for m in s.truth.marks}
        for b in contest(s.style_id).boxes:
            has_ink = inside(b.rect, diff).mean() > 2
            assert has_ink == ((b.option_id, b.candidate_id) in marked)
    json.dumps(deck.truth_json())


def test_the_test_deck_with_preferences_marks_every_candidate_once() -> None:
    deck = make_test_deck(PARLIAMENT, [PARTY_LIST], render, preferences=True, blanks=0)
    row = deck.tally[PARTY_LIST]
    boxes = contest(PARTY_LIST).boxes
    assert row["candidates"] == {b.candidate_id: 1 for b in boxes if b.candidate_id}
    for b in boxes:
        if b.candidate_id is None:
            listed = sum(1 for x in boxes if x.option_id == b.option_id and x.candidate_id)
            assert row["options"][b.option_id] == 1 + listed


def test_two_hundred_random_sheets_generate_quickly(capsys: pytest.CaptureFixture[str]) -> None:
    list(make_deck(PARLIAMENT, ALL_STYLES, 3, 0, render))  # warm the page cache and noise bank
    t0 = time.perf_counter()
    deck = list(make_deck(PARLIAMENT, ALL_STYLES, 200, 7, render))
    per_sheet_ms = (time.perf_counter() - t0) / len(deck) * 1000
    with capsys.disabled():
        print(f"\nsynthetic sheets: {per_sheet_ms:.1f} ms per sheet (mark + scan, one core)")
    statuses = Counter(c.status for s in deck for c in s.truth.contests)
    assert statuses[Status.VALID] > 150
