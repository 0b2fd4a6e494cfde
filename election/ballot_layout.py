"""Where everything is on a printed ballot sheet: the contract between render, mark and read.

Coordinates are pixels of the sheet rendered at `dpi` (A4 at 200 dpi is
1654 x 2339), origin top-left, x to the right, y down.  The renderer draws
exactly these boxes and markers; the synthetic marker (firmware_sim) marks
inside these boxes; the reader (station) measures fill inside them after
mapping the scan back onto this page through the markers.

Pure: no I/O.  The layouts of an election travel in every station bundle
(`ballots/layouts.json`), bound to the election hash.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from election.definition import Frozen, Id

A4_MM = (210, 297)

# Marker ids (ArUco DICT_6X6_1000, ids 0..999) say what a sheet is without any text:
#   corners   live sheets 0,1,2,3 (TL, TR, BR, BL); test-deck sheets 4,5,6,7, so a test
#             sheet is refused in live mode and the reverse;
#   style     100 + style_number (style_number 0..399);
#   election  500 + (election hash mod 500), so a sheet of another election is refused
#             (1 in 500 chance of the same id; the style must then also exist and match).
CORNER_ROLES = ("corner_tl", "corner_tr", "corner_br", "corner_bl")
LIVE_CORNERS = (0, 1, 2, 3)
TEST_CORNERS = (4, 5, 6, 7)
STYLE_BASE = 100
ELECTION_BASE = 500


def corner_ids(test: bool) -> tuple[int, int, int, int]:
    return TEST_CORNERS if test else LIVE_CORNERS


def style_marker_id(style_number: int) -> int:
    if not 0 <= style_number < ELECTION_BASE - STYLE_BASE:
        raise ValueError(f"style number {style_number} outside 0..{ELECTION_BASE - STYLE_BASE - 1}")
    return STYLE_BASE + style_number


def election_marker_id(election_hash: str) -> int:
    return ELECTION_BASE + int(election_hash, 16) % (1000 - ELECTION_BASE)


class Rect(Frozen):
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    w: int = Field(ge=1)
    h: int = Field(ge=1)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)


class Marker(Frozen):
    """A fiducial (ArUco) marker: its dictionary id and where its outer square is printed."""

    marker_id: int = Field(ge=0)
    rect: Rect
    role: Literal["corner_tl", "corner_tr", "corner_br", "corner_bl", "style", "election"]


class Box(Frozen):
    """One box a voter may mark.

    `option_id` is the contest option (party, candidate, yes/no, against all).
    On an open-list ballot a candidate-preference box also carries the
    `candidate_id` of that party's candidate (its `option_id` is the party).
    """

    option_id: Id
    candidate_id: Id | None = None
    rect: Rect


class TextRun(Frozen):
    """A line of printed text, placed by the layout so PNG and PDF print it identically.

    (x, y) is the left end of the baseline (the centre of it when `align` is
    "center").  The reader ignores text; it never prints inside a box or its
    clear zone.
    """

    text: str = Field(min_length=1)
    x: int
    y: int
    size: int = Field(ge=4, le=200)  # font size in px (em height)
    bold: bool = False
    align: Literal["left", "center"] = "left"


class ContestLayout(Frozen):
    contest_id: Id
    boxes: tuple[Box, ...] = Field(min_length=1)


class BallotStyle(Frozen):
    """One kind of sheet: one contest (Kyrgyz ballots are one contest per sheet).

    `markers` are the live sheet's; a test-deck sheet has the same layout with
    corner ids from `TEST_CORNERS`.
    """

    style_id: Id
    style_number: int = Field(ge=0, le=399)  # encoded in the style marker
    contests: tuple[ContestLayout, ...] = Field(min_length=1)
    markers: tuple[Marker, ...] = Field(min_length=4)
    texts: tuple[TextRun, ...] = ()  # what the renderer prints besides boxes and markers
    rules: tuple[Rect, ...] = ()  # thin filled rectangles (separator lines)

    def contest(self, contest_id: str) -> ContestLayout:
        for c in self.contests:
            if c.contest_id == contest_id:
                return c
        raise KeyError(f"style {self.style_id} has no contest {contest_id}")


class BallotLayouts(Frozen):
    """Every ballot style of an election, bound to its hash."""

    format: Literal[1] = 1
    election_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    dpi: int = Field(default=200, ge=72, le=600)
    page_w: int = Field(ge=1)
    page_h: int = Field(ge=1)
    aruco_dictionary: str = "DICT_6X6_1000"
    # A box is printed as an outline `box_line_px` thick drawn inside its rect; nothing else is
    # printed inside it or within `box_clear_px` around it, so the reader can measure ink there
    # (a mark inside; a stroke straying out of a neighbouring box) without a blank template.
    box_line_px: int = Field(default=3, ge=1, le=20)
    box_clear_px: int = Field(default=8, ge=2, le=60)
    styles: tuple[BallotStyle, ...] = Field(min_length=1)

    def style(self, style_id: str) -> BallotStyle:
        for s in self.styles:
            if s.style_id == style_id:
                return s
        raise KeyError(f"no ballot style {style_id}")

    def style_by_number(self, number: int) -> BallotStyle | None:
        return next((s for s in self.styles if s.style_number == number), None)
