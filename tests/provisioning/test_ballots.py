"""Ballot layouts and rendering: every box where the layout says, readable, deterministic."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from election.ballot_layout import (
    TEST_CORNERS,
    BallotLayouts,
    Rect,
    election_marker_id,
    style_marker_id,
)
from election.definition import (
    Candidate,
    Contest,
    ContestKind,
    ElectionDefinition,
    Gender,
    Names,
    Option,
    OptionKind,
    PartyListRules,
)
from provisioning.ballots import BallotLayoutError, layouts_for, render_pdf, render_png
from provisioning.sample import build_definition


@pytest.fixture(scope="module")
def parliament() -> ElectionDefinition:
    return build_definition(stations=4, voters_per_station=25, seed=7, kind="parliament")


@pytest.fixture(scope="module")
def layouts(parliament: ElectionDefinition) -> BallotLayouts:
    return layouts_for(parliament)


def _detect(img: np.ndarray) -> set[int]:
    det = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_6X6_1000))
    _, ids, _ = det.detectMarkers(img)
    return set() if ids is None else {int(i) for i in ids.ravel()}


def _grow(r: Rect, by: int) -> tuple[int, int, int, int]:
    return (r.x - by, r.y - by, r.x + r.w + by, r.y + r.h + by)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _party_list(parties: int, candidates: int) -> Contest:
    options = [
        Option(
            id=f"p{p:02d}",
            kind=OptionKind.PARTY,
            name=Names(ky=f"Партия номер {p} Кыргызстан", ru=f"Партия номер {p} Кыргызстана"),
            candidates=tuple(
                Candidate(
                    id=f"p{p:02d}-{k:02d}",
                    name=Names(ky=f"Талапкер {k}", ru=f"Кандидат {k}"),
                    gender=Gender.FEMALE if k % 3 == 0 else Gender.MALE,
                    position=k,
                )
                for k in range(1, candidates + 1)
            ),
        )
        for p in range(1, parties + 1)
    ]
    options.append(
        Option(
            id="aa", kind=OptionKind.AGAINST_ALL, name=Names(ky="Бардыгына каршы", ru="Против всех")
        )
    )
    return Contest(
        id="list",
        kind=ContestKind.PARTY_LIST,
        name=Names(ky="Жогорку Кеңешке партиялык тизмелер боюнча шайлоо", ru="Выборы по спискам"),
        options=tuple(options),
        rules=PartyListRules(seats=54),
    )


def _with_list(base: ElectionDefinition, contest: Contest) -> ElectionDefinition:
    data = base.model_dump(mode="json", exclude_none=True)
    data["contests"] = [contest.model_dump(mode="json", exclude_none=True)]
    return ElectionDefinition.model_validate(data)


def test_layouts_are_deterministic(parliament: ElectionDefinition, layouts: BallotLayouts) -> None:
    again = layouts_for(build_definition(stations=4, voters_per_station=25, seed=7))
    assert again.model_dump_json() == layouts.model_dump_json()
    assert np.array_equal(render_png(layouts, "smd-01"), render_png(again, "smd-01"))


def test_one_style_per_contest_with_one_box_per_option_and_against_all_last(
    parliament: ElectionDefinition, layouts: BallotLayouts
) -> None:
    assert layouts.election_hash == parliament.election_hash
    assert (layouts.page_w, layouts.page_h, layouts.dpi) == (1654, 2339, 200)
    assert [s.style_id for s in layouts.styles] == [c.id for c in parliament.contests]
    for number, (style, contest) in enumerate(
        zip(layouts.styles, parliament.contests, strict=True)
    ):
        assert style.style_number == number
        ids = {m.role: m.marker_id for m in style.markers}
        assert ids["style"] == style_marker_id(number)
        assert ids["election"] == election_marker_id(parliament.election_hash)
        assert [ids[r] for r in ("corner_tl", "corner_tr", "corner_br", "corner_bl")] == [
            0,
            1,
            2,
            3,
        ]
        boxes = style.contest(contest.id).boxes
        choices = [b.option_id for b in boxes if b.candidate_id is None]
        assert sorted(choices) == sorted(o.id for o in contest.options)
        assert choices[-1] == contest.against_all.id  # type: ignore[union-attr]
        prefs = {b.candidate_id: b.option_id for b in boxes if b.candidate_id is not None}
        assert prefs == {c.id: o.id for o in contest.options for c in o.candidates}


def test_boxes_are_big_apart_and_clear_of_print(layouts: BallotLayouts) -> None:
    """No box under 40 px, no two boxes' clear zones touching, and nothing printed in them."""
    clear = layouts.box_clear_px
    for style in layouts.styles:
        img = render_png(layouts, style.style_id)
        boxes = style.contests[0].boxes
        rects = [_grow(b.rect, clear) for b in boxes]
        for i, r in enumerate(rects):
            assert all(not _overlap(r, s) for s in rects[i + 1 :])
        for m in style.markers:
            for r in rects:
                assert not _overlap(r, _grow(m.rect, 32))
        for b in boxes:
            assert b.rect.w == b.rect.h >= 40
            x0, y0, x1, y1 = _grow(b.rect, clear)
            ring = img[y0:y1, x0:x1].copy()
            t = layouts.box_line_px
            ring[clear:-clear, clear:-clear] = 255  # the box itself
            assert ring.min() == 255, f"print in the clear zone of {b.option_id}/{b.candidate_id}"
            inside = img[
                b.rect.y + t : b.rect.y + b.rect.h - t, b.rect.x + t : b.rect.x + b.rect.w - t
            ]
            assert inside.min() == 255 and img[b.rect.y, b.rect.x] == 0


def test_a_15_party_by_20_candidate_list_fits_on_one_sheet(parliament: ElectionDefinition) -> None:
    lay = layouts_for(_with_list(parliament, _party_list(15, 20)))
    boxes = lay.styles[0].contests[0].boxes
    assert len(boxes) == 15 * 21 + 1
    assert min(b.rect.w for b in boxes) >= 40
    assert max(b.rect.y + b.rect.h for b in boxes) < lay.page_h - 55 - 96 - 32
    img = render_png(lay, "list")
    assert {0, 1, 2, 3, 100} <= _detect(img)


def test_a_list_too_long_for_a_sheet_is_refused_with_a_reason(
    parliament: ElectionDefinition,
) -> None:
    with pytest.raises(BallotLayoutError, match="does not fit on one A4"):
        layouts_for(_with_list(parliament, _party_list(40, 20)))


def test_png_has_the_page_size_and_its_markers(layouts: BallotLayouts) -> None:
    img = render_png(layouts, "smd-02")
    assert img.shape == (2339, 1654) and img.dtype == np.uint8
    assert _detect(img) == {
        0,
        1,
        2,
        3,
        style_marker_id(2),
        election_marker_id(layouts.election_hash),
    }


def test_test_sheet_has_test_corners_and_a_banner(layouts: BallotLayouts) -> None:
    live = render_png(layouts, "smd-02")
    test = render_png(layouts, "smd-02", test=True)
    assert set(TEST_CORNERS) <= _detect(test) and not {0, 1, 2, 3} & _detect(test)
    # The banner: ink between the bottom markers and in both side margins, none on live sheets.
    assert live[2200:2280, 300:1350].min() == 255 and test[2200:2280, 300:1350].min() < 50
    assert live[900:1400, 10:70].min() == 255 and test[900:1400, 10:70].min() < 50
    boxes = [b.rect for b in layouts.style("smd-02").contests[0].boxes]
    for r in boxes:  # the layout is the same
        assert np.array_equal(
            live[r.y : r.y + r.h, r.x : r.x + r.w], test[r.y : r.y + r.h, r.x : r.x + r.w]
        )


def test_pdf_is_a_one_page_pdf_of_the_sheet_size(layouts: BallotLayouts, tmp_path: Path) -> None:
    for style_id, test in (("parliament-list", False), ("smd-01", True)):
        out = tmp_path / f"{style_id}.pdf"
        render_pdf(layouts, style_id, out, test=test)
        data = out.read_bytes()
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
        assert data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") == 1
        assert b"/MediaBox [ 0 0 595.44 842.04 ]" in data
        assert b"DejaVuSans" in data
