"""Ballot sheets: where every box, marker and line of text goes, and drawing them.

`layouts_for` computes the layout of every ballot style of an election (one
style per contest, in the definition's contest order).  The layout is the
contract with the synthetic marker and the reader (`election.ballot_layout`):
it holds every box and marker in page pixels and also every line of text, so a
sheet can be drawn from the bundle's layouts alone, and the PNG and the PDF
print exactly the same geometry.

Text is measured with the DejaVu fonts (Cyrillic), so the layout depends on
them being installed (Debian: fonts-dejavu-core); the same fonts give the same
layout, byte for byte.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from election.ballot_layout import (
    A4_MM,
    CORNER_ROLES,
    BallotLayouts,
    BallotStyle,
    Box,
    ContestLayout,
    Marker,
    Rect,
    TextRun,
    corner_ids,
    election_marker_id,
    style_marker_id,
)
from election.definition import Contest, ElectionDefinition, Option, OptionKind, PartyListRules

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_REGULAR = FONT_DIR / "DejaVuSans.ttf"
FONT_BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"

MIN_BOX_PX = 40  # 5 mm at 200 dpi: the smallest box a voter can be asked to mark
TEST_BANNER = "ТЕСТ / TEST — not a valid ballot"

_FONT_SCALES = (1.0, 0.9, 0.8, 0.7, 0.6)  # tried in turn before a style is declared too long

INSTRUCTIONS_ONE = (
    "Бир гана кутучага белги коюңуз. Бирден ашык белги коюлган бюллетень жараксыз.",
    "Поставьте отметку только в одном квадрате. Бюллетень с несколькими отметками недействителен.",
)
INSTRUCTIONS_OPEN_LIST = (
    "Бир гана партиянын кутучасына белги коюңуз. Каалооңуз боюнча ошол эле партиянын "
    "тизмесинен бир талапкердин номерин белгилей аласыз.",
    "Поставьте отметку в квадрате только одной партии. По желанию отметьте номер одного "
    "кандидата из списка этой же партии.",
)


class BallotLayoutError(ValueError):
    """A contest's options cannot be printed readably on one sheet; the message says why."""


# --- geometry of the page -----------------------------------------------------------


@dataclass(frozen=True)
class _Page:
    """Fixed page furniture in pixels; everything scales with the dpi (200 is the reference)."""

    dpi: int

    def px(self, v: float) -> int:
        return round(v * self.dpi / 200)

    @property
    def w(self) -> int:
        return round(A4_MM[0] / 25.4 * self.dpi)

    @property
    def h(self) -> int:
        return round(A4_MM[1] / 25.4 * self.dpi)

    @property
    def edge(self) -> int:  # page edge to a corner marker (7 mm: inside any printer's margin)
        return self.px(55)

    @property
    def corner(self) -> int:  # corner marker side, a multiple of its 8 cells
        return 8 * self.px(12)

    @property
    def aux(self) -> int:  # style and election marker side (as big: one detector setting)
        return self.corner

    @property
    def quiet(self) -> int:  # white around every marker (the detector needs it)
        return self.px(32)

    @property
    def x0(self) -> int:
        return self.px(80)

    @property
    def x1(self) -> int:
        return self.w - self.px(80)

    @property
    def top(self) -> int:  # where the header starts, below the top markers
        return self.edge + self.corner + self.quiet

    @property
    def bottom(self) -> int:  # where content must end, above the bottom markers
        return self.h - self.edge - self.corner - self.quiet

    @property
    def clear(self) -> int:
        return self.px(8)

    @property
    def line(self) -> int:
        return max(1, self.px(3))


def _markers(page: _Page, style_number: int, election_hash: str) -> tuple[Marker, ...]:
    e, s, a = page.edge, page.corner, page.aux
    corners = [(e, e), (page.w - e - s, e), (page.w - e - s, page.h - e - s), (e, page.h - e - s)]
    out = [
        Marker(marker_id=mid, rect=Rect(x=x, y=y, w=s, h=s), role=role)  # type: ignore[arg-type]
        for mid, (x, y), role in zip(corner_ids(False), corners, CORNER_ROLES, strict=True)
    ]
    ya = page.h - e - a
    out.append(
        Marker(
            marker_id=style_marker_id(style_number),
            rect=Rect(x=e + s + page.quiet, y=ya, w=a, h=a),
            role="style",
        )
    )
    out.append(
        Marker(
            marker_id=election_marker_id(election_hash),
            rect=Rect(x=page.w - e - s - page.quiet - a, y=ya, w=a, h=a),
            role="election",
        )
    )
    return tuple(out)


# --- text measurement ---------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _font(size: int, bold: bool) -> ImageFont.FreeTypeFont:
    path = FONT_BOLD if bold else FONT_REGULAR
    if not path.is_file():
        raise BallotLayoutError(f"font {path} is missing: install the fonts-dejavu-core package")
    return ImageFont.truetype(str(path), size)


def _width(text: str, size: int, bold: bool) -> float:
    return float(_font(size, bold).getlength(text))


def _ascent(size: int, bold: bool) -> int:
    return int(_font(size, bold).getmetrics()[0])


def _line_h(size: int, bold: bool) -> int:
    a, d = _font(size, bold).getmetrics()
    return int(a + d)


def _wrap(text: str, size: int, bold: bool, max_w: int) -> list[str] | None:
    """Greedy word wrap; None when a single word is wider than the line."""
    lines: list[str] = []
    cur = ""
    for word in text.split():
        cand = f"{cur} {word}" if cur else word
        if _width(cand, size, bold) <= max_w:
            cur = cand
            continue
        if not cur or _width(word, size, bold) > max_w:
            return None
        lines.append(cur)
        cur = word
    if cur:
        lines.append(cur)
    return lines


def _fit_size(texts: list[tuple[str, bool]], size: int, min_size: int, max_w: int) -> int | None:
    """The largest size <= `size` at which every text fits on one line of `max_w`."""
    for s in range(size, min_size - 1, -1):
        if all(_width(t, s, b) <= max_w for t, b in texts):
            return s
    return None


# --- one style ----------------------------------------------------------------------


@dataclass
class _Draft:
    texts: list[TextRun]
    rules: list[Rect]
    boxes: list[Box]


def _ordered(contest: Contest) -> list[Option]:
    """Options in ballot order, "against all" last."""
    rest = [o for o in contest.options if o.kind is not OptionKind.AGAINST_ALL]
    aa = contest.against_all
    return rest + ([aa] if aa is not None else [])


def _header(
    page: _Page, definition: ElectionDefinition, contest: Contest, style_no: int, scale: float
) -> tuple[list[TextRun], list[Rect], int] | None:
    """Election name in the band between the top markers, then contest name and instructions."""
    texts: list[TextRun] = []
    band_x0 = page.edge + page.corner + page.quiet
    band_w = page.w - 2 * band_x0
    cx = page.w // 2
    # Top band: election name ky / ru and a small style caption, always at full size if it fits.
    names = [(definition.name.ky, True), (definition.name.ru, False)]
    size = _fit_size(names, page.px(22), page.px(10), band_w)
    if size is None:
        return None
    y = page.edge + _ascent(size, True) + page.px(2)
    for text, bold in names:
        texts.append(TextRun(text=text, x=cx, y=y, size=size, bold=bold, align="center"))
        y += _line_h(size, bold) + page.px(2)
    cap = f"{contest.id} · үлгү / образец / style {style_no}"
    cap_size = page.px(13)
    texts.append(
        TextRun(
            text=cap, x=cx, y=page.edge + page.corner - page.px(4), size=cap_size, align="center"
        )
    )
    # Contest name (a referendum question can be long: wrapped) and the instructions.
    width = page.x1 - page.x0
    y = page.top
    open_list = _is_open_list(contest)
    instr = INSTRUCTIONS_OPEN_LIST if open_list else INSTRUCTIONS_ONE
    blocks = [
        (contest.name.ky, page.px(28 * scale), True),
        (contest.name.ru, page.px(28 * scale), True),
        (instr[0], page.px(22 * scale), False),
        (instr[1], page.px(22 * scale), False),
    ]
    for i, (text, sz, bold) in enumerate(blocks):
        lines = _wrap(text, sz, bold, width)
        if lines is None:
            return None
        if i == 2:
            y += page.px(8)
        for line in lines:
            y += _ascent(sz, bold)
            texts.append(TextRun(text=line, x=cx, y=y, size=sz, bold=bold, align="center"))
            y += _line_h(sz, bold) - _ascent(sz, bold) + page.px(2)
    y += page.px(10)
    rules = [Rect(x=page.x0, y=y, w=width, h=max(1, page.px(2)))]
    return texts, rules, y + page.px(22)


def _is_open_list(contest: Contest) -> bool:
    return (
        isinstance(contest.rules, PartyListRules)
        and contest.rules.open_list
        and any(o.candidates for o in contest.options)
    )


def _simple_rows(page: _Page, options: list[Option], y0: int, scale: float) -> _Draft | None:
    """One row per option: the box at the left, its name in Kyrgyz (bold) and Russian beside it."""
    n = len(options)
    avail = page.bottom - y0
    h = min(page.px(160), avail // n)
    box = max(page.px(MIN_BOX_PX), min(page.px(56), round(h * 0.5)))
    vgap = h - box
    if vgap < max(page.px(24), 2 * page.clear + page.px(6)):
        return None
    tx = page.x0 + box + page.px(30)
    max_w = page.x1 - tx
    d = _Draft([], [], [])
    top = y0 + (vgap // 2)
    for i, o in enumerate(options):
        by = top + i * h
        if o.kind is OptionKind.AGAINST_ALL and i > 0:
            d.rules.append(Rect(x=page.x0, y=by - vgap // 2 - 1, w=page.x1 - page.x0, h=2))
        d.boxes.append(Box(option_id=o.id, rect=Rect(x=page.x0, y=by, w=box, h=box)))
        size = min(round(page.px(30) * scale), int((h - page.px(8)) / 2.5))
        pair = [(o.name.ky, True), (o.name.ru, False)]
        if o.name.ky == o.name.ru:
            pair = pair[:1]
        fit = _fit_size(pair, size, page.px(11), max_w)
        if fit is None:
            return None
        block = sum(_line_h(fit, b) for _, b in pair)
        y = by + box // 2 - block // 2
        for text, bold in pair:
            d.texts.append(TextRun(text=text, x=tx, y=y + _ascent(fit, bold), size=fit, bold=bold))
            y += _line_h(fit, bold)
    return d


def _open_list_rows(page: _Page, options: list[Option], y0: int, scale: float) -> _Draft | None:
    """Party rows: the party's name, then its box and its candidates' numbered boxes.

    The candidate boxes are numbered with the list position above each box (the
    lists themselves hang in the booth, as in 2021); a long list wraps onto
    more strips when the width runs out.
    """
    parties = [o for o in options if o.kind is not OptionKind.AGAINST_ALL]
    aa = [o for o in options if o.kind is OptionKind.AGAINST_ALL]
    longest = max(len(o.candidates) for o in parties)
    nrows = len(options)
    avail = page.bottom - y0
    name_size = max(page.px(10), round(page.px(20) * scale))
    label_size = max(page.px(9), round(page.px(15) * scale))
    name_h = _line_h(name_size, True)
    label_h = math.ceil(-_font(label_size, False).getbbox("0123456789", anchor="ls")[1])
    clear = page.clear
    vgap = max(page.px(24), 2 * clear + page.px(8))
    for box in range(page.px(56), page.px(MIN_BOX_PX) - 1, -2):
        gh = max(round(box * 0.5), 2 * clear + page.px(4))
        sep = 2 * gh
        cx0 = page.x0 + box + sep
        cols = (page.x1 - cx0 + gh) // (box + gh)
        if cols < 1:
            continue
        strips = math.ceil(longest / cols)
        strip_h = label_h + clear + page.px(2) + box
        row_h = name_h + page.px(4) + strips * strip_h + (strips - 1) * (clear + 4) + vgap
        if row_h * nrows <= avail:
            break
    else:
        return None
    d = _Draft([], [], [])
    width = page.x1 - page.x0
    for i, o in enumerate(options):
        rt = y0 + i * row_h
        if i > 0:
            d.rules.append(Rect(x=page.x0, y=rt - vgap // 2 - 1, w=width, h=2 if o in aa else 1))
        first_box_y = rt + name_h + page.px(4) + label_h + clear + page.px(2)
        d.boxes.append(Box(option_id=o.id, rect=Rect(x=page.x0, y=first_box_y, w=box, h=box)))
        if o.kind is OptionKind.AGAINST_ALL:
            pair = [(o.name.ky, True), (o.name.ru, False)]
            size = _fit_size(pair, round(name_size * 1.2), page.px(10), width - box - sep)
            if size is None:
                return None
            block = sum(_line_h(size, b) for _, b in pair)
            y = first_box_y + box // 2 - block // 2
            for text, bold in pair:
                d.texts.append(
                    TextRun(text=text, x=cx0, y=y + _ascent(size, bold), size=size, bold=bold)
                )
                y += _line_h(size, bold)
            continue
        name = o.name.ky if o.name.ky == o.name.ru else f"{o.name.ky}  /  {o.name.ru}"
        size = _fit_size([(name, True)], name_size, page.px(10), width)
        if size is None:
            return None
        d.texts.append(
            TextRun(text=name, x=page.x0, y=rt + _ascent(size, True), size=size, bold=True)
        )
        for j, c in enumerate(sorted(o.candidates, key=lambda c: c.position)):
            strip, col = divmod(j, cols)
            by = first_box_y + strip * (strip_h + clear + 4)
            bx = cx0 + col * (box + gh)
            d.boxes.append(
                Box(option_id=o.id, candidate_id=c.id, rect=Rect(x=bx, y=by, w=box, h=box))
            )
            d.texts.append(
                TextRun(
                    text=str(c.position),
                    x=bx + box // 2,
                    y=by - clear - page.px(2),
                    size=label_size,
                    align="center",
                )
            )
    return d


def _style(
    page: _Page, definition: ElectionDefinition, contest: Contest, number: int
) -> BallotStyle:
    options = _ordered(contest)
    for scale in _FONT_SCALES:
        head = _header(page, definition, contest, number, scale)
        if head is None:
            continue
        texts, rules, y0 = head
        if _is_open_list(contest):
            body = _open_list_rows(page, options, y0, scale)
        else:
            body = _simple_rows(page, options, y0, scale)
        if body is None:
            continue
        return BallotStyle(
            style_id=contest.id,
            style_number=number,
            contests=(ContestLayout(contest_id=contest.id, boxes=tuple(body.boxes)),),
            markers=_markers(page, number, definition.election_hash),
            texts=tuple(texts + body.texts),
            rules=tuple(rules + body.rules),
        )
    longest = max((len(o.candidates) for o in contest.options), default=0)
    raise BallotLayoutError(
        f"contest {contest.id} ({len(options)} options, up to {longest} candidates per party) "
        f"does not fit on one A4 sheet with boxes of at least {MIN_BOX_PX} px at 200 dpi and "
        "text at 60% size: split the contest or shorten the names"
    )


def layouts_for(definition: ElectionDefinition, *, dpi: int = 200) -> BallotLayouts:
    """Every ballot style of the election: one per contest, numbered in contest order.

    Deterministic: the same definition (and fonts) gives the same layouts.
    Raises BallotLayoutError when a contest cannot be printed readably on A4.
    """
    page = _Page(dpi)
    styles = tuple(_style(page, definition, c, i) for i, c in enumerate(definition.contests))
    return BallotLayouts(
        election_hash=definition.election_hash,
        dpi=dpi,
        page_w=page.w,
        page_h=page.h,
        styles=styles,
        box_line_px=page.line,
        box_clear_px=page.clear,
    )


# --- drawing ------------------------------------------------------------------------


def _marker_cells(marker_id: int, rect: Rect) -> list[Rect]:
    """The black cells of an ArUco marker (border included) as rectangles inside `rect`."""
    d = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_6X6_1000)
    bits = d.generateImageMarker(marker_id, 8)  # 8x8: the 6x6 code and its black border
    xs = [rect.x + round(i * rect.w / 8) for i in range(9)]
    ys = [rect.y + round(i * rect.h / 8) for i in range(9)]
    return [
        Rect(x=xs[c], y=ys[r], w=xs[c + 1] - xs[c], h=ys[r + 1] - ys[r])
        for r in range(8)
        for c in range(8)
        if bits[r, c] < 128
    ]


def _box_bars(rect: Rect, t: int) -> list[Rect]:
    """A box outline as four filled bars drawn inside the rect (so PNG and PDF agree)."""
    x, y, w, h = rect.x, rect.y, rect.w, rect.h
    return [
        Rect(x=x, y=y, w=w, h=t),
        Rect(x=x, y=y + h - t, w=w, h=t),
        Rect(x=x, y=y, w=t, h=h),
        Rect(x=x + w - t, y=y, w=t, h=h),
    ]


@dataclass(frozen=True)
class _Sheet:
    """Everything to draw: filled rectangles, text runs, and test-mode vertical banners."""

    fills: list[Rect]
    texts: list[TextRun]
    vertical: list[TextRun]  # drawn rotated 90 degrees, centred on (x, y)


def _sheet(layouts: BallotLayouts, style_id: str, test: bool) -> _Sheet:
    style = layouts.style(style_id)
    page = _Page(layouts.dpi)
    fills: list[Rect] = list(style.rules)
    live_corners = corner_ids(False)
    for m in style.markers:
        mid = m.marker_id
        if test and mid in live_corners:
            mid = corner_ids(True)[live_corners.index(mid)]
        fills.extend(_marker_cells(mid, m.rect))
    for c in style.contests:
        for b in c.boxes:
            fills.extend(_box_bars(b.rect, layouts.box_line_px))
    texts = list(style.texts)
    vertical: list[TextRun] = []
    if test:
        style_m = next(m for m in style.markers if m.role == "style")
        elect_m = next(m for m in style.markers if m.role == "election")
        room = elect_m.rect.x - (style_m.rect.x + style_m.rect.w) - 2 * page.quiet
        size = _fit_size([(TEST_BANNER, True)], page.px(44), page.px(12), room) or page.px(12)
        y = style_m.rect.y + style_m.rect.h // 2 + _ascent(size, True) // 2 - page.px(4)
        texts.append(
            TextRun(
                text=TEST_BANNER, x=layouts.page_w // 2, y=y, size=size, bold=True, align="center"
            )
        )
        vsize = page.px(40)
        for x in (page.x0 // 2, layouts.page_w - page.x0 // 2):
            vertical.append(
                TextRun(text=TEST_BANNER, x=x, y=layouts.page_h // 2, size=vsize, bold=True)
            )
    return _Sheet(fills, texts, vertical)


def render_png(layouts: BallotLayouts, style_id: str, *, test: bool = False) -> np.ndarray:
    """The sheet as a grayscale image of exactly page_w x page_h at the layout's pixels."""
    sheet = _sheet(layouts, style_id, test)
    img = Image.new("L", (layouts.page_w, layouts.page_h), 255)
    draw = ImageDraw.Draw(img)
    for r in sheet.fills:
        draw.rectangle((r.x, r.y, r.x + r.w - 1, r.y + r.h - 1), fill=0)
    for t in sheet.texts:
        anchor = "ms" if t.align == "center" else "ls"
        draw.text((t.x, t.y), t.text, font=_font(t.size, t.bold), fill=0, anchor=anchor)
    for t in sheet.vertical:
        font = _font(t.size, t.bold)
        w = math.ceil(font.getlength(t.text))
        a, dsc = font.getmetrics()
        strip = Image.new("L", (w, a + dsc), 0)
        ImageDraw.Draw(strip).text((0, a), t.text, font=font, fill=255, anchor="ls")
        rot = strip.rotate(90, expand=True)
        img.paste(0, (t.x - rot.width // 2, t.y - rot.height // 2), rot)
    return np.asarray(img, dtype=np.uint8).copy()


def render_pdf(layouts: BallotLayouts, style_id: str, path: Path, *, test: bool = False) -> None:
    """The sheet as a one-page vector PDF with the same geometry (1 px = 72/dpi pt)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    for name, file in (("DejaVuSans", FONT_REGULAR), ("DejaVuSans-Bold", FONT_BOLD)):
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(file)))
    sheet = _sheet(layouts, style_id, test)
    f = 72 / layouts.dpi
    ph = layouts.page_h
    c = canvas.Canvas(str(path), pagesize=(layouts.page_w * f, ph * f), invariant=True)
    c.setTitle(f"Ballot {style_id}" + (" (TEST)" if test else ""))
    c.setFillGray(0)
    c.setStrokeGray(0)
    for r in sheet.fills:
        c.rect(r.x * f, (ph - r.y - r.h) * f, r.w * f, r.h * f, stroke=0, fill=1)
    for t in sheet.texts:
        c.setFont("DejaVuSans-Bold" if t.bold else "DejaVuSans", t.size * f)
        if t.align == "center":
            c.drawCentredString(t.x * f, (ph - t.y) * f, t.text)
        else:
            c.drawString(t.x * f, (ph - t.y) * f, t.text)
    for t in sheet.vertical:
        font = _font(t.size, t.bold)
        a, dsc = font.getmetrics()
        c.saveState()
        c.translate(t.x * f, (ph - t.y) * f)
        c.rotate(90)
        c.setFont("DejaVuSans-Bold" if t.bold else "DejaVuSans", t.size * f)
        c.drawCentredString(0, -((a - dsc) / 2) * f, t.text)
        c.restoreState()
    c.showPage()
    c.save()
