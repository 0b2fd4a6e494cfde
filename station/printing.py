"""Printed station reports (A4 and 80 mm thermal) carrying their own signed proof in QR codes.

The paper on the door must say, in Kyrgyz and Russian, every count the
station signed, and let anyone with a phone check that it is exactly what the
device signed: the QR codes hold the signed envelope cut into a hash chain
(crypto.qrchain) plus the device certificate.

One layout is computed once as a list of drawing items in points, then drawn
by reportlab (PDF) or by PIL (PNG at 200 dpi), so the PNG a test reads back is
the same page the PDF prints, without needing poppler.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib.metadata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from crypto.certs import cert_from_pem
from crypto.envelope import Envelope
from crypto.qrchain import parse_part, split_envelope
from election.definition import ElectionDefinition
from station import reports
from station.texts import TEXTS, say

Layout = Literal["a4", "thermal80"]
__all__ = [
    "Layout",
    "qr_texts",
    "render_report_pdf",
    "render_report_png",
    "software_hash",
    "software_version",
]

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT, FONT_BOLD = "DejaVuSans", "DejaVuSans-Bold"
PNG_DPI = 200
MM = 72 / 25.4
# Package directories whose .py files make up the software hash.
_PACKAGES = (
    "election",
    "crypto",
    "biometrics",
    "devices",
    "provisioning",
    "station",
    "central",
    "firmware_sim",
    "shailoo",
)


def _t(key: str) -> tuple[str, str]:
    """A label from station/texts.py, Kyrgyz then Russian.

    A code from the signed body that texts.py has no words for (a new reason,
    phase or report kind) is printed as the code itself rather than lost.
    """
    if key not in TEXTS:
        code = key.removeprefix("report_")
        return code, code
    return say(key, "ky"), say(key, "ru")


# --- software identity ------------------------------------------------------------------


def software_version() -> str:
    """The installed shailoo distribution's version, as pip knows it."""
    try:
        return importlib.metadata.version("shailoo")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def software_hash() -> str:
    """SHA-256 over the installed packages' .py files, so observers can compare builds.

    Files are taken in sorted relative-path order; each contributes its path
    (POSIX, from the install root), a NUL, its SHA-256 hex and a newline.
    """
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for pkg in _PACKAGES:
        base = root / pkg
        if not base.is_dir():
            continue
        for f in sorted(base.rglob("*.py")):
            rel = f.relative_to(root).as_posix()
            h.update(f"{rel}\0{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


# --- the page model -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Text:
    x: float
    baseline: float  # from the top of the page, in points
    text: str
    size: float
    bold: bool = False
    right: bool = False  # x is the right edge
    white: bool = False  # on a black banner


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    w: float
    h: float
    gray: float  # 0 black .. 1 white


@dataclass(frozen=True)
class _Qr:
    x: float
    y: float
    module_px: int  # at PNG_DPI; points = module_px * 72 / PNG_DPI
    matrix: tuple[tuple[bool, ...], ...]  # quiet zone included

    @property
    def side(self) -> float:
        return len(self.matrix) * self.module_px * 72 / PNG_DPI


@dataclass
class _Page:
    width: float
    height: float
    items: list[_Text | _Box | _Qr] = field(default_factory=list)


@dataclass(frozen=True)
class _Style:
    width: float
    height: float | None  # None: a roll, as long as the content
    margin: float
    size: float
    title: float
    module_px: tuple[int, ...]  # QR module sizes to try, largest first


_STYLES: dict[str, _Style] = {
    "a4": _Style(210 * MM, 297 * MM, 15 * MM, 9, 13, (4, 3)),
    "thermal80": _Style(80 * MM, None, 4 * MM, 7.5, 9.5, (4, 3)),
}


@functools.cache
def _fonts() -> None:
    pdfmetrics.registerFont(TTFont(FONT, str(FONT_DIR / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(FONT_DIR / "DejaVuSans-Bold.ttf")))


class _Flow:
    """Places lines, rows and QR codes top to bottom, starting a new page when one is full."""

    def __init__(self, style: _Style) -> None:
        self.s = style
        self.pages: list[_Page] = []
        self._new_page()

    @property
    def inner(self) -> float:
        return self.s.width - 2 * self.s.margin

    def _new_page(self) -> None:
        self.pages.append(_Page(self.s.width, self.s.height or 0.0))
        self.y = self.s.margin

    def _room(self, h: float) -> None:
        if self.s.height is not None and self.y + h > self.s.height - self.s.margin:
            self._new_page()

    @property
    def page(self) -> _Page:
        return self.pages[-1]

    def para(self, text: str, *, size: float | None = None, bold: bool = False, indent: float = 0):
        size = size or self.s.size
        font = FONT_BOLD if bold else FONT
        for line in simpleSplit(text, font, size, self.inner - indent) or [""]:
            self._room(size * 1.3)
            self.y += size * 1.3
            self.page.items.append(
                _Text(self.s.margin + indent, self.y - size * 0.3, line, size, bold)
            )

    def gap(self, h: float | None = None) -> None:
        self.y += self.s.size * 0.6 if h is None else h

    def row(
        self, label: tuple[str, str], value: Any, *, indent: int = 0, bold: bool = False
    ) -> None:
        """A bilingual label (wrapped) with its value right-aligned on the first line."""
        size = self.s.size
        value_text = str(value)
        vw = pdfmetrics.stringWidth(value_text, FONT_BOLD, size) + 6
        pad = indent * size * 1.2
        font = FONT_BOLD if bold else FONT
        lines = simpleSplit(f"{label[0]} / {label[1]}", font, size, self.inner - pad - vw)
        self._room(size * 1.3 * len(lines) + 2)
        for k, line in enumerate(lines):
            self.y += size * 1.3
            base = self.y - size * 0.3
            self.page.items.append(_Text(self.s.margin + pad, base, line, size, bold))
            if k == 0:
                right = self.s.margin + self.inner
                self.page.items.append(_Text(right, base, value_text, size, True, right=True))
        self.y += 2
        self.page.items.append(_Box(self.s.margin + pad, self.y - 1.2, self.inner - pad, 0.3, 0.7))

    def banner(self, text: tuple[str, str]) -> None:
        size = self.s.size + 1
        lines = [ln for t in text for ln in simpleSplit(t, FONT_BOLD, size, self.inner - 8)]
        h = len(lines) * size * 1.3 + 6
        self._room(h)
        self.page.items.append(_Box(self.s.margin, self.y, self.inner, h, 0.0))
        y = self.y + 3
        for line in lines:
            y += size * 1.3
            self.page.items.append(
                _Text(self.s.margin + 4, y - size * 0.3, line, size, True, white=True)
            )
        self.y += h + 4

    def qrs(self, codes: list[tuple[str, segno.QRCode]]) -> None:
        """QR codes in a grid, each with its caption; a code never splits across pages."""
        size = self.s.size
        col_gap = 4 * MM
        x = self.s.margin
        row_h = 0.0
        for caption, qr in codes:
            matrix = tuple(tuple(bool(v) for v in r) for r in qr.matrix_iter(border=4))
            n = len(matrix)
            px = next(
                (k for k in self.s.module_px if n * k * 72 / PNG_DPI <= self.inner),
                self.s.module_px[-1],
            )
            side = n * px * 72 / PNG_DPI
            if x > self.s.margin and x + side > self.s.margin + self.inner:
                self.y += row_h
                x, row_h = self.s.margin, 0.0
            h = side + size * 1.5
            if self.s.height is not None and self.y + h > self.s.height - self.s.margin:
                self._new_page()
                x, row_h = self.s.margin, 0.0
            self.page.items.append(_Qr(x, self.y, px, matrix))
            self.page.items.append(
                _Text(x + side / 2 + size, self.y + side + size * 0.2, caption, size, True, True)
            )
            x += side + col_gap
            row_h = max(row_h, h)
        self.y += row_h

    def finish(self) -> list[_Page]:
        if self.s.height is None:
            self.page.height = self.y + self.s.margin
        return self.pages


# --- report content -----------------------------------------------------------------------


def qr_texts(envelope: Envelope, cert_pem: bytes) -> list[str]:
    """The QR set of a report: certificate part, then the chained envelope parts."""
    return split_envelope(envelope.to_bytes(), cert_pem)


def _local(iso: str, tz: ZoneInfo) -> str:
    return f"{dt.datetime.fromisoformat(iso).astimezone(tz):%Y-%m-%d %H:%M:%S} ({tz.key})"


def _identification_rows(f: _Flow, body: dict[str, Any]) -> set[str]:
    f.row(_t("count_registered"), body["registered"], bold=True)
    f.row(_t("count_voted"), body["voted"], bold=True)
    f.row(_t("count_face"), body["identified_by_face"])
    f.row(_t("count_document"), body["admitted_by_document"])
    for reason, n in body["admitted_by_document_by_reason"].items():
        f.row(_t(f"reason_{reason}"), n, indent=1)
    f.row(_t("count_mobile"), body["mobile_box"])
    f.row(_t("report_mobile_list"), body["mobile_list"])
    f.row(_t("count_pending"), body["awaiting_confirmation"])
    f.row(_t("report_cancelled"), body["cancelled"])
    f.row(_t("count_refused"), sum(body["refused"].values()))
    for reason, n in body["refused"].items():
        f.row(_t(f"refused_{reason}"), n, indent=1)
    f.gap()
    f.para(" / ".join(_t("report_by_hour")), bold=True)
    for hour, n in body["by_hour"].items():
        f.row((f"{hour}:00–{hour}:59", ""), n, indent=1)
    return {
        "registered",
        "voted",
        "identified_by_face",
        "admitted_by_document",
        "admitted_by_document_by_reason",
        "mobile_box",
        "mobile_list",
        "awaiting_confirmation",
        "cancelled",
        "refused",
        "by_hour",
    }


def _tally_rows(f: _Flow, tallies: list[dict[str, Any]], definition: ElectionDefinition) -> None:
    for t in tallies:
        contest = definition.contest(t["contest_id"])
        f.gap()
        f.para(f"{contest.name.ky} / {contest.name.ru}", bold=True)
        f.row(_t("report_ballots"), t["ballots"], bold=True)
        for option in contest.options:
            f.row((option.name.ky, option.name.ru), t["votes"].get(option.id, 0))
            for c in option.candidates:
                if c.id in t.get("preferences", {}):
                    f.row((c.name.ky, c.name.ru), t["preferences"][c.id], indent=1)
        f.row(_t("report_invalid"), t["invalid"], bold=True)
        for reason, n in t.get("invalid_by_reason", {}).items():
            f.row(_t(f"report_invalid_{reason}"), n, indent=1)


def _asu_rows(f: _Flow, body: dict[str, Any], definition: ElectionDefinition) -> set[str]:
    f.row(_t("report_sheets"), body["sheets"], bold=True)
    f.row(_t("report_deferred_sheets"), body["deferred_sheets"])
    f.row(_t("report_returned"), sum(body["returned"].values()))
    for reason, n in body["returned"].items():
        f.row(_t(f"report_invalid_{reason}"), n, indent=1)
    _tally_rows(f, body["tallies"], definition)
    if body["deferred_sheets"]:
        f.gap()
        f.para(" / ".join(_t("report_deferred")), bold=True)
        _tally_rows(f, body["deferred_tallies"], definition)
    return {"sheets", "deferred_sheets", "returned", "tallies", "deferred_tallies"}


def _layout(
    envelope: Envelope, cert_pem: bytes, definition: ElectionDefinition, layout: Layout
) -> list[_Page]:
    if layout not in _STYLES:
        raise ValueError(f"layout is a4 or thermal80, not {layout!r}")
    _fonts()
    cert_from_pem(cert_pem)
    style = _STYLES[layout]
    tz = ZoneInfo(definition.timezone)
    body = envelope.body
    station = definition.station(envelope.station)
    f = _Flow(style)
    if body.get("mode") == "test":
        f.banner(_t("test_mode"))
    f.para(definition.name.ky, bold=True)
    f.para(definition.name.ru)
    f.gap()
    f.para(" / ".join(_t(f"report_{envelope.kind}")), size=style.title, bold=True)
    f.para(
        f"{say('station_label', 'ky', number=station.number)}  ({station.id})",
        size=style.title,
        bold=True,
    )
    f.para(f"{station.name.ky} / {station.name.ru}")
    f.para(f"{say('report_address', 'ky')}: {station.address.ky}")
    f.para(f"{say('report_address', 'ru')}: {station.address.ru}")
    f.gap()
    phase = body.get("phase")
    if phase:
        f.row(_t("report_phase"), " / ".join(_t(f"report_phase_{phase}")))
    f.row(_t("report_signed_at"), _local(envelope.time, tz))
    if "as_of" in body:
        f.row(_t("report_as_of"), _local(body["as_of"], tz))
    f.gap()
    if envelope.kind == reports.IDENTIFICATION_REPORT:
        done = _identification_rows(f, body)
    elif envelope.kind == reports.ASU_REPORT:
        done = _asu_rows(f, body, definition)
    else:
        done = set()
    for key, value in body.items():  # anything else the body holds is printed too
        if key not in done | {"phase", "mode", "as_of"} and isinstance(value, int | str):
            f.row((key, key), value)
    f.gap()
    f.row(_t("report_device"), envelope.device)
    f.row(_t("report_seq"), envelope.seq)
    f.row(_t("report_software"), software_version())
    f.para(" / ".join(_t("report_software_hash")) + ":", size=style.size - 1)
    f.para(software_hash(), size=style.size - 1)
    f.para(" / ".join(_t("report_hash")) + ":", size=style.size - 1)
    f.para(envelope.hash, size=style.size - 1)
    f.gap()
    f.para(say("report_qr_title", "ky"), bold=True)
    f.para(say("report_qr_title", "ru"), bold=True)
    f.para(say("report_qr_hint", "ky"), size=style.size - 1)
    f.para(say("report_qr_hint", "ru"), size=style.size - 1)
    f.gap()
    texts = qr_texts(envelope, cert_pem)
    codes = []
    for text in texts:
        p = parse_part(text)
        caption = (
            f"QR 0/{p.total} {say('report_qr_cert', 'ru')}"
            if p.index == 0
            else f"QR {p.index}/{p.total}"
        )
        codes.append((caption, segno.make(text, error="m", micro=False, encoding="utf-8")))
    f.qrs([*codes[1:], codes[0]])
    if body.get("mode") == "test":
        f.gap()
        f.banner(_t("test_mode"))
    return f.finish()


# --- drawing ------------------------------------------------------------------------------


def _runs(row: tuple[bool, ...]) -> Iterator[tuple[int, int]]:
    start = None
    for i, dark in enumerate((*row, False)):
        if dark and start is None:
            start = i
        elif not dark and start is not None:
            yield start, i - start
            start = None


def render_report_pdf(
    envelope: Envelope,
    cert_pem: bytes,
    definition: ElectionDefinition,
    *,
    layout: Layout,
    out: Path,
) -> Path:
    """Write the printable report (one or more A4 pages, or one 80 mm roll page) as PDF."""
    pages = _layout(envelope, cert_pem, definition, layout)
    c = canvas.Canvas(str(out), pagesize=(pages[0].width, pages[0].height))
    c.setTitle(f"{envelope.kind} {envelope.station} seq {envelope.seq}")
    for page in pages:
        c.setPageSize((page.width, page.height))
        for item in page.items:
            if isinstance(item, _Text):
                c.setFillGray(1 if item.white else 0)
                c.setFont(FONT_BOLD if item.bold else FONT, item.size)
                draw = c.drawRightString if item.right else c.drawString
                draw(item.x, page.height - item.baseline, item.text)
            elif isinstance(item, _Box):
                c.setFillGray(item.gray)
                c.rect(item.x, page.height - item.y - item.h, item.w, item.h, stroke=0, fill=1)
            else:
                m = item.module_px * 72 / PNG_DPI
                c.setFillGray(0)
                for r, row in enumerate(item.matrix):
                    for start, length in _runs(row):
                        y = page.height - item.y - (r + 1) * m
                        c.rect(item.x + start * m, y, length * m, m, stroke=0, fill=1)
        c.showPage()
    c.save()
    return out


@functools.cache
def _pil_font(bold: bool, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(
        str(FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")), px
    )


def render_report_png(
    envelope: Envelope,
    cert_pem: bytes,
    definition: ElectionDefinition,
    *,
    layout: Layout,
    out: Path,
) -> list[Path]:
    """The same pages as PNG at 200 dpi (drawn with PIL, no poppler needed).

    One page is written to `out`; several A4 pages to `<stem>-p1.png`, `-p2`, ...
    """
    pages = _layout(envelope, cert_pem, definition, layout)
    s = PNG_DPI / 72
    paths = []
    for k, page in enumerate(pages, start=1):
        img = Image.new("L", (round(page.width * s), round(page.height * s)), 255)
        d = ImageDraw.Draw(img)
        for item in page.items:
            if isinstance(item, _Text):
                d.text(
                    (item.x * s, item.baseline * s),
                    item.text,
                    fill=255 if item.white else 0,
                    font=_pil_font(item.bold, round(item.size * s)),
                    anchor="rs" if item.right else "ls",
                )
            elif isinstance(item, _Box):
                x0, y0 = round(item.x * s), round(item.y * s)
                x1, y1 = x0 + max(1, round(item.w * s)), y0 + max(1, round(item.h * s))
                d.rectangle((x0, y0, x1 - 1, y1 - 1), fill=round(item.gray * 255))
            else:
                a = np.where(np.array(item.matrix, dtype=bool), 0, 255).astype(np.uint8)
                a = np.kron(a, np.ones((item.module_px, item.module_px), dtype=np.uint8))
                img.paste(Image.fromarray(a, "L"), (round(item.x * s), round(item.y * s)))
        path = out if len(pages) == 1 else out.with_name(f"{out.stem}-p{k}{out.suffix}")
        img.save(path, dpi=(PNG_DPI, PNG_DPI))
        paths.append(path)
    return paths
