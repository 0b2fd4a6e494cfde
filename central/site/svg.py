"""Charts and the map as inline SVG: readable without JavaScript, printed, and zoomable on a phone.

Every drawing has a <title> and <desc> and sits next to a table with the same
numbers (the table is what a screen reader reads).  Widths and positions come
from the published figures; the labels print the published strings as they are.
The region map is drawn from `regions.json` (schematic shapes shipped with the
project); an election whose regions are not all in it gets a tile map instead.
"""

from __future__ import annotations

import functools
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHAPES_FILE = Path(__file__).with_name("regions.json")

# Distinguishable on screens and for the common colour blindnesses; 17 parties fit.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#9c755f", "#edc948",
    "#76b7b2", "#ff9da7", "#499894", "#d37295", "#86bcb6", "#b6992d", "#a0cbe8",
    "#8cd17d", "#ffbe7d", "#f1ce63",
)  # fmt: skip
KIND_COLOURS = {"against_all": "#555555", "yes": "#2e7d32", "no": "#c62828"}
INVALID_COLOUR = "#bdbdbd"
NO_DATA = "#e6e6e6"
TURNOUT_BINS = (
    (20, "#eff3ff"),
    (40, "#bdd7e7"),
    (60, "#6baed6"),
    (80, "#3182bd"),
    (101, "#08519c"),
)


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def option_colours(options: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Option id -> colour, by the option's place on the ballot (stable across pages)."""
    out: dict[str, str] = {}
    n = 0
    for oid, kind in options:
        if kind in KIND_COLOURS:
            out[oid] = KIND_COLOURS[kind]
        else:
            out[oid] = PALETTE[n % len(PALETTE)]
            n += 1
    out["_invalid"] = INVALID_COLOUR
    return out


def turnout_colour(percent: str | None) -> str:
    if percent is None:
        return NO_DATA
    value = float(percent)
    return next(c for limit, c in TURNOUT_BINS if value < limit)


def turnout_legend(labels: Sequence[str]) -> list[tuple[str, str]]:
    """(colour, label) for the turnout bins; `labels` are the five bin texts."""
    return [(c, label) for (_, c), label in zip(TURNOUT_BINS, labels, strict=True)]


def _head(svg_id: str, title: str, desc: str, w: int, h: int, cls: str, role: str = "img") -> str:
    return (
        f'<svg id="{e(svg_id)}" class="{cls}" viewBox="0 0 {w} {h}" role="{role}" '
        f'aria-labelledby="{e(svg_id)}-t {e(svg_id)}-d" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{e(svg_id)}-t">{e(title)}</title><desc id="{e(svg_id)}-d">{e(desc)}</desc>'
    )


# --- share bars --------------------------------------------------------------------------
@dataclass(frozen=True)
class Bar:
    label: str
    percent: str  # as published, "12.34"
    colour: str
    value: str  # what to print after the bar (votes and share, formatted)


def bars(
    rows: Sequence[Bar],
    *,
    svg_id: str,
    title: str,
    desc: str,
    threshold: int | None = None,
    threshold_label: str = "",
) -> str:
    """Horizontal share bars on a 0..max scale marked every 10%, with the threshold line."""
    w, left, right, row_h = 460, 4, 110, 40
    top = 24 if threshold is not None else 6  # room for the threshold's label above the bars
    peak = max([float(r.percent or 0) for r in rows] + [float(threshold or 0), 1.0])
    scale_max = min(100, max(10, math.ceil(peak / 10) * 10))
    inner = w - left - right
    h = top + row_h * len(rows) + 26

    def x(p: float) -> float:
        return left + inner * p / scale_max

    out = [_head(svg_id, title, desc, w, h, "chart bars")]
    for tick in range(0, scale_max + 1, 10):
        anchor = "start" if tick == 0 else "middle"
        out.append(
            f'<line class="grid" x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" '
            f'y2="{h - 22}"/><text class="tick" x="{x(tick):.1f}" y="{h - 8}" '
            f'text-anchor="{anchor}">{tick}%</text>'
        )
    for i, r in enumerate(rows):
        y = top + i * row_h
        width = max(0.0, x(float(r.percent or 0)) - left)
        out.append(
            f'<g class="bar"><text class="label" x="{left}" y="{y + 14}">{e(r.label)}</text>'
            f'<rect x="{left}" y="{y + 19}" width="{width:.1f}" height="15" fill="{r.colour}">'
            f"<title>{e(r.label)}: {e(r.value)}</title></rect>"
            f'<text class="value" x="{left + width + 5:.1f}" y="{y + 32}">{e(r.value)}</text></g>'
        )
    if threshold is not None:
        tx = x(threshold)
        out.append(
            f'<g class="threshold"><line x1="{tx:.1f}" x2="{tx:.1f}" y1="{top}" y2="{h - 22}" '
            f'stroke-dasharray="6 4"/><text x="{tx:.1f}" y="{top - 8}" text-anchor="middle">'
            f"{e(threshold_label)}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)


# --- turnout over the day ----------------------------------------------------------------
def line_chart(
    points: Sequence[tuple[str, float, str]],
    *,
    svg_id: str,
    title: str,
    desc: str,
) -> str:
    """Turnout by hour: (hour label, percent as a number for the drawing, tooltip)."""
    w, h, left, bottom, top, right = 480, 240, 44, 30, 12, 20
    peak = max([p for _, p, _ in points] + [1.0])
    y_max = min(100, max(10, math.ceil(peak / 10) * 10))
    n = max(1, len(points) - 1)

    def px(i: int) -> float:
        return left + (w - left - right) * i / n

    def py(v: float) -> float:
        return top + (h - top - bottom) * (1 - v / y_max)

    out = [_head(svg_id, title, desc, w, h, "chart line")]
    step = 10 if y_max > 20 else 5
    for tick in range(0, y_max + 1, step):
        out.append(
            f'<line class="grid" x1="{left}" x2="{w - right}" y1="{py(tick):.1f}" '
            f'y2="{py(tick):.1f}"/><text class="tick" x="{left - 6}" y="{py(tick) + 4:.1f}" '
            f'text-anchor="end">{tick}%</text>'
        )
    for i, (label, _, _) in enumerate(points):
        if i % 2 == 0 or len(points) <= 7:
            out.append(
                f'<text class="tick" x="{px(i):.1f}" y="{h - 10}" text-anchor="middle">'
                f"{e(label)}</text>"
            )
    if points:
        coords = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, (_, v, _) in enumerate(points))
        out.append(f'<polyline class="curve" points="{coords}" fill="none"/>')
        for i, (_, v, tip) in enumerate(points):
            out.append(
                f'<circle class="point" cx="{px(i):.1f}" cy="{py(v):.1f}" r="4">'
                f"<title>{e(tip)}</title></circle>"
            )
    out.append("</svg>")
    return "".join(out)


# --- the region map ----------------------------------------------------------------------
@dataclass(frozen=True)
class Area:
    id: str
    name: str
    fill: str
    href: str
    value: str  # printed under the name and in the tooltip
    kind: str = "oblast"  # oblast | city | abroad


@functools.cache
def shapes() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SHAPES_FILE.read_text(encoding="utf-8"))
    return data


def _project(lon: float, lat: float) -> tuple[float, float]:
    p = shapes()["projection"]
    return (lon - p["lon0"]) * p["kx"], (p["lat0"] - lat) * p["ky"]


def _centroid(pts: Sequence[tuple[float, float]]) -> tuple[float, float]:
    a = cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(pts, [*pts[1:], pts[0]], strict=True):
        f = x0 * y1 - x1 * y0
        a += f
        cx += (x0 + x1) * f
        cy += (y0 + y1) * f
    if abs(a) < 1e-9:
        return pts[0]
    return cx / (3 * a), cy / (3 * a)


def has_shapes(region_ids: Sequence[str]) -> bool:
    s = shapes()
    known = set(s["regions"]) | set(s["cities"]) | set(s["boxes"])
    return all(r in known for r in region_ids)


def region_map(
    areas: Sequence[Area],
    *,
    svg_id: str,
    title: str,
    desc: str,
    legend: Sequence[tuple[str, str]],
) -> str:
    """The regions filled by `fill`; each links to its page (the table beside it has the same
    links for keyboards and screen readers, so the drawing's links are not tab stops)."""
    if not has_shapes([a.id for a in areas]):
        return _tiles(areas, svg_id=svg_id, title=title, desc=desc, legend=legend)
    s = shapes()
    w, h = s["size"]
    legend_h = 30 * len(legend) + 10
    out = [_head(svg_id, title, desc, w, h + legend_h, "map")]
    shown = {a.id for a in areas}
    for rid, vertices in s["regions"].items():  # the rest of the country, for its outline
        if rid not in shown:
            pts = [_project(*s["vertices"][v]) for v in vertices]
            d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts) + " Z"
            out.append(f'<path class="area other" d="{d}" fill="#f7f7f7"/>')
    labels = []
    for a in sorted(areas, key=lambda a: a.id in s["cities"]):
        tip = f"<title>{e(a.name)}: {e(a.value)}</title>"
        link = f'<a href="{e(a.href)}" tabindex="-1" aria-hidden="true">'
        if a.id in s["regions"]:
            pts = [_project(*s["vertices"][v]) for v in s["regions"][a.id]]
            d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts) + " Z"
            out.append(f'{link}<path class="area" d="{d}" fill="{a.fill}">{tip}</path></a>')
            cx, cy = _project(*s["labels"][a.id]) if a.id in s["labels"] else _centroid(pts)
            labels.append((cx, cy, a))
        elif a.id in s["cities"]:
            cx, cy = _project(*s["cities"][a.id])
            out.append(
                f'{link}<circle class="area city" cx="{cx:.1f}" cy="{cy:.1f}" r="13" '
                f'fill="{a.fill}">{tip}</circle></a>'
            )
            labels.append((cx + 17, cy - 14, a))
        else:
            x, y, bw, bh = s["boxes"][a.id]
            out.append(
                f'{link}<rect class="area" x="{x}" y="{y}" width="{bw}" height="{bh}" '
                f'fill="{a.fill}">{tip}</rect></a>'
            )
            labels.append((x + bw / 2, y + bh / 2 - 4, a))
    for cx, cy, a in labels:
        anchor = "start" if a.id in s["cities"] else "middle"
        out.append(
            f'<text class="lbl" x="{cx:.1f}" y="{cy:.1f}" text-anchor="{anchor}">{e(a.name)}'
            f'<tspan x="{cx:.1f}" dy="21">{e(a.value)}</tspan></text>'
        )
    out.append(_legend(legend, 12, h + 6))
    out.append("</svg>")
    return "".join(out)


def _legend(legend: Sequence[tuple[str, str]], x: int, y: int) -> str:
    out = ['<g class="legend">']
    for i, (colour, label) in enumerate(legend):
        yy = y + 30 * i
        out.append(
            f'<rect x="{x}" y="{yy}" width="22" height="22" fill="{colour}" stroke="#999"/>'
            f'<text x="{x + 30}" y="{yy + 17}">{e(label)}</text>'
        )
    out.append("</g>")
    return "".join(out)


def _tiles(
    areas: Sequence[Area],
    *,
    svg_id: str,
    title: str,
    desc: str,
    legend: Sequence[tuple[str, str]],
) -> str:
    """A tile map: one square per region in definition order, for regions without shapes."""
    cols = max(1, math.ceil(math.sqrt(len(areas))))
    rows = max(1, math.ceil(len(areas) / cols))
    w, th, gap = 870, 90, 8  # the width of the shape map, so text has the same size
    tw = min(280, (w - gap) // cols - gap)
    h = rows * (th + gap) + gap
    legend_h = 30 * len(legend) + 10
    out = [_head(svg_id, title, desc, w, h + legend_h, "map tiles")]
    for i, a in enumerate(areas):
        x = gap + (i % cols) * (tw + gap)
        y = gap + (i // cols) * (th + gap)
        out.append(
            f'<a href="{e(a.href)}" tabindex="-1" aria-hidden="true"><rect class="area" '
            f'x="{x}" y="{y}" width="{tw}" height="{th}" rx="6" fill="{a.fill}">'
            f"<title>{e(a.name)}: {e(a.value)}</title></rect></a>"
            f'<text class="lbl" x="{x + tw / 2}" y="{y + th / 2 - 4}" text-anchor="middle">'
            f'{e(a.name)}<tspan x="{x + tw / 2}" dy="21">{e(a.value)}</tspan></text>'
        )
    out.append(_legend(legend, gap, h + 6))
    out.append("</svg>")
    return "".join(out)
