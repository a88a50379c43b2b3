"""Charts as functions from data to inline SVG (no JS, no CDN): the report's figures.

Every value axis comes from `nice_axis` (Heckbert's "nice numbers": the step is 1, 2 or 5
times a power of ten, the ends are multiples of the step, zero is always a gridline) and
every axis label is its gridline's value written with the decimals the step needs, so the
labels read exactly what the gridlines mean. The SVG is built as an element tree
(`xml.etree.ElementTree`), which escapes every text and attribute; the functions return
`markupsafe.Markup` so the Jinja2 template embeds them as they are.

Structure (relied on by tests and tools):
    <svg class="chart" data-chart=KEY>
      <g class="axis" data-axis="y|x" data-panel=P> <g class="tick"><line class="grid"/><text>label</text></g>… </g>
      <rect class="bar" data-series=S data-cat=C data-panel=P> (bars grow from the zero gridline)
      <circle class="pt" data-series=S data-cat=C> (line charts)
      <line class="reform"> (the 2025 reform, between the last district year and the first commune year)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, SubElement, tostring

from markupsafe import Markup

from coop.outputs.report.numbers import vn_number

PALETTE = ("#1f5fa8", "#e07b00", "#2e8b57", "#6a4c93", "#8c564b", "#17becf")
TOTAL_COLOR = "#4a4a4a"
MET_COLOR, NOT_MET_COLOR = "#2e8b57", "#b23a48"
CHAR_W = 6.6  # approximate width of a character at the axis font size (11px DejaVu Sans)


# ---------------------------------------------------------------------- nice numbers
def nice_num(x: float, round_: bool) -> float:
    """The "nice" number (1, 2, 5 or 10 times a power of ten) near `x` (Heckbert 1990):
    rounded to the nearest when `round_`, else the smallest not below `x`."""
    if x <= 0:
        return 1.0
    exp = math.floor(math.log10(x))
    f = x / 10 ** exp
    if round_:
        nf = 1 if f < 1.5 else 2 if f < 3 else 5 if f < 7 else 10
    else:
        nf = 1 if f <= 1 else 2 if f <= 2 else 5 if f <= 5 else 10
    scale: float = 10 ** exp  # an int from exp >= 0, a float below
    return nf * scale


@dataclass(frozen=True)
class Axis:
    """A value axis: gridlines at lo, lo+step, …, hi; labels with `decimals` digits."""

    lo: float
    hi: float
    step: float
    decimals: int

    @property
    def ticks(self) -> list[float]:
        n = round((self.hi - self.lo) / self.step)
        k0 = round(self.lo / self.step)
        return [round((k0 + i) * self.step, self.decimals) for i in range(n + 1)]

    def label(self, v: float) -> str:
        return vn_number(v, self.decimals)

    def pos(self, v: float, start: float, end: float) -> float:
        """Screen coordinate of value `v` when lo maps to `start` and hi to `end`."""
        return start + (end - start) * (v - self.lo) / (self.hi - self.lo)


def nice_axis(values: Sequence[float | None], max_ticks: int = 6) -> Axis:
    """The axis from 0 (always included) to the data, with up to max_ticks nice gridlines.
    Whole-number data (counts) never gets a fractional step."""
    vals = [float(v) for v in values if v is not None and math.isfinite(v)] + [0.0]
    lo, hi = min(vals), max(vals)
    if hi - lo <= 0:
        hi = lo + 1.0
    rng = nice_num(hi - lo, round_=False)
    step = nice_num(rng / (max_ticks - 1), round_=True)
    if step < 1 and all(v == int(v) for v in vals):
        step = 1.0
    lo_t = math.floor(lo / step + 1e-9) * step
    hi_t = math.ceil(hi / step - 1e-9) * step
    decimals = max(0, -math.floor(math.log10(step) + 1e-12))
    return Axis(round(lo_t, decimals), round(hi_t, decimals), step, decimals)


# ---------------------------------------------------------------------- SVG helpers
def _f(x: float) -> str:
    """A coordinate: two decimals, no trailing zeros."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _el(parent: Element, tag: str, text: str | None = None, **attrs: object) -> Element:
    e = SubElement(parent, tag, {k.rstrip("_").replace("_", "-"): (_f(v) if isinstance(v, float) else str(v))
                                 for k, v in attrs.items() if v is not None})
    if text is not None:
        e.text = text
    return e


def _svg(key: str, title: str, width: float, height: float, wide: bool = False) -> Element:
    root = Element("svg", {
        "xmlns": "http://www.w3.org/2000/svg", "width": _f(width), "height": _f(height),
        "viewBox": f"0 0 {_f(width)} {_f(height)}", "role": "img", "aria-label": title,
        "class": "chart wide" if wide else "chart", "data-chart": key,
    })
    _el(root, "text", title, x=width / 2, y=20.0, text_anchor="middle", class_="ct")
    return root


def _done(root: Element) -> Markup:
    return Markup(tostring(root, encoding="unicode", short_empty_elements=True))


def _y_axis(root: Element, axis: Axis, left: float, right: float, top: float, bottom: float,
            panel: str = "main") -> None:
    """Horizontal gridlines (bottom = axis.lo, top = axis.hi) labelled on the left."""
    g = _el(root, "g", class_="axis", data_axis="y", data_panel=panel)
    for v in axis.ticks:
        y = axis.pos(v, bottom, top)
        t = _el(g, "g", class_="tick")
        _el(t, "line", x1=float(left), y1=y, x2=float(right), y2=y, class_="zero" if v == 0 else "grid")
        _el(t, "text", axis.label(v), x=float(left - 6), y=y + 4, text_anchor="end", class_="ax")


def _x_axis(root: Element, axis: Axis, left: float, right: float, top: float, bottom: float,
            panel: str = "main") -> None:
    """Vertical gridlines (left = axis.lo, right = axis.hi) labelled under the plot."""
    g = _el(root, "g", class_="axis", data_axis="x", data_panel=panel)
    for v in axis.ticks:
        x = axis.pos(v, left, right)
        t = _el(g, "g", class_="tick")
        _el(t, "line", x1=x, y1=float(top), x2=x, y2=float(bottom), class_="zero" if v == 0 else "grid")
        _el(t, "text", axis.label(v), x=x, y=float(bottom + 14), text_anchor="middle", class_="ax")


def _legend(root: Element, items: Sequence[tuple[str, str, bool]], x0: float, y: float, width: float) -> float:
    """Colour keys (name, colour, faded) from x0, wrapping at `width`; returns the last line's y."""
    x = x0
    for name, color, faded in items:
        w = 24 + CHAR_W * len(name)
        if x > x0 and x + w > width - 8:
            x, y = x0, y + 16
        _el(root, "rect", x=float(x), y=float(y - 10), width="12", height="12", fill=color,
            fill_opacity="0.4" if faded else None, class_="key")
        _el(root, "text", name, x=float(x + 16), y=float(y), class_="ax")
        x += w
    return y


def _reform_mark(root: Element, x: float, top: float, bottom: float, label: str) -> None:
    _el(root, "line", x1=x, y1=float(top - 6), x2=x, y2=float(bottom), class_="reform")
    _el(root, "text", label, x=x + 4, y=float(top - 8), class_="rl")


# ---------------------------------------------------------------------- charts
@dataclass
class Series:
    name: str
    values: Sequence[float | None]
    key: str = ""
    color: str | None = None
    faded: Sequence[bool] = field(default_factory=tuple)   # per value: drawn pale (e.g. incomplete)


def svg_bars(key: str, title: str, categories: Sequence[str], series: Sequence[Series], *, decimals: int = 0,
             width: float = 560, height: float = 300, reform_at: int | None = None,
             reform_label: str = "", cat_keys: Sequence[str] | None = None, wide: bool = False) -> Markup:
    """Vertical grouped bars: one group per category, one bar per series, from the zero gridline.
    `reform_at`: index of the first category after the reform (a dashed line before it)."""
    cat_keys = list(cat_keys or categories)
    axis = nice_axis([v for s in series for v in s.values])
    label_w = max(len(axis.label(t)) for t in axis.ticks) * CHAR_W
    left, right, top = 16 + label_w, width - 16, 44.0
    legend_lines = _legend_lines([s.name for s in series], left, width)
    bottom = height - 40 - 16 * legend_lines
    root = _svg(key, title, width, height, wide)
    _y_axis(root, axis, left, right, top, bottom)
    n, k = max(len(categories), 1), max(len(series), 1)
    group_w = (right - left) / n
    bar_w = min(44.0, group_w * 0.82 / k)
    y0 = axis.pos(0, bottom, top)
    for ci, cat in enumerate(categories):
        gx = left + ci * group_w + (group_w - bar_w * k) / 2
        for si, s in enumerate(series):
            v = s.values[ci] if ci < len(s.values) else None
            if v is None:  # no figure (e.g. an area that sent no report): a dash on the zero line
                _el(root, "text", "–", x=gx + si * bar_w + (bar_w - 2) / 2, y=y0 - 3, text_anchor="middle",
                    class_="vl nd")
                continue
            y = axis.pos(v, bottom, top)
            color = s.color or PALETTE[si % len(PALETTE)]
            faded = bool(s.faded[ci]) if ci < len(s.faded) else False
            r = _el(root, "rect", x=gx + si * bar_w, y=min(y, y0), width=bar_w - 2, height=abs(y0 - y), fill=color,
                    fill_opacity="0.4" if faded else None, class_="bar", data_series=s.key or s.name,
                    data_cat=cat_keys[ci])
            _el(r, "title", f"{s.name}, {cat}: {vn_number(v, decimals)}")
            _el(root, "text", vn_number(v, decimals), x=gx + si * bar_w + (bar_w - 2) / 2,
                y=(y - 4) if v >= 0 else (y + 12), text_anchor="middle", class_="vl")
        _el(root, "text", cat, x=left + ci * group_w + group_w / 2, y=bottom + 16, text_anchor="middle", class_="ax")
    if reform_at is not None and 0 < reform_at < n:
        _reform_mark(root, left + reform_at * group_w, top, bottom, reform_label)
    _legend(root, [(s.name, s.color or PALETTE[i % len(PALETTE)], False) for i, s in enumerate(series)],
            left, bottom + 36, width)
    return _done(root)


def _legend_lines(names: Sequence[str], x0: float, width: float) -> int:
    lines, x = 1, x0
    for nm in names:
        w = 24 + CHAR_W * len(nm)
        if x > x0 and x + w > width - 8:
            lines, x = lines + 1, x0
        x += w
    return lines


def svg_lines(key: str, title: str, categories: Sequence[str], series: Sequence[Series], *, decimals: int = 0,
              width: float = 560, height: float = 300, reform_at: int | None = None, reform_label: str = "",
              cat_keys: Sequence[str] | None = None) -> Markup:
    """Lines over the categories (years), a dot and its value at every point."""
    cat_keys = list(cat_keys or categories)
    axis = nice_axis([v for s in series for v in s.values])
    label_w = max(len(axis.label(t)) for t in axis.ticks) * CHAR_W
    left, right, top = 16 + label_w, width - 20, 44.0
    bottom = height - 40 - 16 * _legend_lines([s.name for s in series], left, width)
    root = _svg(key, title, width, height)
    _y_axis(root, axis, left, right, top, bottom)
    n = len(categories)
    pad = 28.0

    def px(i: int) -> float:
        return left + pad + ((right - left - 2 * pad) * i / (n - 1) if n > 1 else (right - left - 2 * pad) / 2)

    for i, cat in enumerate(categories):
        _el(root, "text", cat, x=px(i), y=bottom + 16, text_anchor="middle", class_="ax")
    if reform_at is not None and 0 < reform_at < n:
        _reform_mark(root, (px(reform_at - 1) + px(reform_at)) / 2, top, bottom, reform_label)
    for si, s in enumerate(series):
        color = s.color or PALETTE[si % len(PALETTE)]
        pts = [(px(i), axis.pos(v, bottom, top), v, i) for i, v in enumerate(s.values) if v is not None]
        if len(pts) > 1:
            _el(root, "polyline", fill="none", stroke=color, stroke_width="2.5",
                points=" ".join(f"{_f(a)},{_f(b)}" for a, b, _v, _i in pts))
        for a, b, v, i in pts:
            c = _el(root, "circle", cx=a, cy=b, r="4", fill=color, class_="pt", data_series=s.key or s.name,
                    data_cat=cat_keys[i])
            _el(c, "title", f"{s.name}, {categories[i]}: {vn_number(v, decimals)}")
            _el(root, "text", vn_number(v, decimals), x=a, y=b - 8, text_anchor="middle", class_="vl")
    _legend(root, [(s.name, s.color or PALETTE[i % len(PALETTE)], False) for i, s in enumerate(series)],
            left, bottom + 36, width)
    return _done(root)


def svg_hbars(key: str, title: str, labels: Sequence[str], values: Sequence[float | None], *,
              keys: Sequence[str] | None = None, decimals: int = 0, unit: str = "", width: float = 560,
              colors: Sequence[str] | None = None) -> Markup:
    """Horizontal bars, one per label (long Vietnamese names fit), on a nice axis at the bottom."""
    keys = list(keys or labels)
    longest = max((len(lab) for lab in labels), default=0)
    left = max(120.0, min(360.0, longest * CHAR_W + 16))
    width = width + max(0.0, left - 190)
    right, top, row_h = width - 80, 36.0, 26.0
    bottom = top + row_h * max(len(labels), 1)
    height = bottom + 30
    axis = nice_axis(values)
    root = _svg(key, title, width, height)
    _x_axis(root, axis, left, right, top, bottom)
    x0 = axis.pos(0, left, right)
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):  # one bar per label
        y = top + i * row_h
        _el(root, "text", lab, x=left - 6, y=y + row_h / 2 + 4, text_anchor="end", class_="ax")
        if v is None:
            _el(root, "text", "chưa có số liệu", x=x0 + 4, y=y + row_h / 2 + 4, class_="vl")
            continue
        x = axis.pos(v, left, right)
        r = _el(root, "rect", x=min(x, x0), y=y + 4, width=abs(x - x0), height=row_h - 8,
                fill=colors[i] if colors else PALETTE[0], class_="bar", data_series=key, data_cat=keys[i])
        _el(r, "title", f"{lab}: {vn_number(v, decimals)}{unit}")
        _el(root, "text", f"{vn_number(v, decimals)}{unit}", x=max(x, x0) + 4, y=y + row_h / 2 + 4, class_="vl")
    return _done(root)


@dataclass
class PlanBar:
    """One plan target. panel 'count': value = actual as % of the target's minimum (100 = plan);
    panel 'growth': value = the actual growth %, target_lo..target_hi its planned range."""

    key: str
    label: str
    panel: str                   # "count" | "growth"
    value: float | None
    status: str                  # met | not_met | no_data
    text: str                    # what is written after the bar
    target_lo: float | None = None
    target_hi: float | None = None


def svg_plan(key: str, title: str, rows: Sequence[PlanBar], *, width: float = 1100) -> Markup:
    """Every plan target in one chart: the counted targets as % of plan (the 100 % line dashed),
    the growth targets as the actual growth against the planned range (shaded), each on its own
    nice axis. Met green, not met red, no data written out."""
    panels = [("count", "Chỉ tiêu số lượng: thực hiện so với kế hoạch (%)"),
              ("growth", "Chỉ tiêu tăng trưởng: thực hiện và kế hoạch (%/năm)")]
    longest = max((len(r.label) for r in rows), default=0)
    left = max(160.0, min(380.0, longest * CHAR_W + 16))
    right, row_h = width - 250, 26.0   # the figures are written in a column right of the plot
    root = _svg(key, title, width, 10)  # height set at the end
    y = 40.0
    for panel, heading in panels:
        prs = [r for r in rows if r.panel == panel]
        if not prs:
            continue
        _el(root, "text", heading, x=float(left), y=y + 12, class_="ph")
        top = y + (34 if panel == "count" else 22)   # room for the "kế hoạch" mark over the 100 % line
        bottom = top + row_h * len(prs)
        vals: list[float | None] = [r.value for r in prs]
        if panel == "count":
            vals.append(100.0)
        else:
            vals += [r.target_lo for r in prs] + [r.target_hi for r in prs]
        axis = nice_axis(vals)
        _x_axis(root, axis, left, right, top, bottom, panel=panel)
        x0 = axis.pos(0, left, right)
        for i, r in enumerate(prs):
            ry = top + i * row_h
            _el(root, "text", r.label, x=left - 6, y=ry + row_h / 2 + 4, text_anchor="end", class_="ax")
            if panel == "growth" and r.target_lo is not None:
                lo = axis.pos(r.target_lo, left, right)
                hi = axis.pos(r.target_hi, left, right) if r.target_hi is not None else right
                _el(root, "rect", x=lo, y=ry + 1, width=max(hi - lo, 2.0), height=row_h - 2, class_="target",
                    data_cat=r.key)
            if r.value is None:
                _el(root, "text", r.text, x=right + 12, y=ry + row_h / 2 + 4, class_="vl nd")
                continue
            x = axis.pos(r.value, left, right)
            color = MET_COLOR if r.status == "met" else NOT_MET_COLOR if r.status == "not_met" else PALETTE[0]
            b = _el(root, "rect", x=min(x, x0), y=ry + 6, width=abs(x - x0), height=row_h - 12, fill=color,
                    class_=f"bar {r.status}", data_series="plan", data_cat=r.key, data_panel=panel)
            _el(b, "title", f"{r.label}: {r.text}")
            _el(root, "text", r.text, x=right + 12, y=ry + row_h / 2 + 4, class_="vl")
        if panel == "count":
            x100 = axis.pos(100, left, right)
            _el(root, "line", x1=x100, y1=top - 2, x2=x100, y2=bottom, class_="ref")
            _el(root, "text", "kế hoạch", x=x100, y=top - 6, text_anchor="middle", class_="rl ref-l")
        y = bottom + 30
    _legend(root, [("Đạt", MET_COLOR, False), ("Chưa đạt", NOT_MET_COLOR, False),
                   ("Kế hoạch (khoảng tăng trưởng)", "#f2d7a6", False)], left, y + 6, width)
    height = y + 20
    root.set("height", _f(height))
    root.set("viewBox", f"0 0 {_f(width)} {_f(height)}")
    return _done(root)
