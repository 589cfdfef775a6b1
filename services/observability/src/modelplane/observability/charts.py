"""Inline SVG charts for the dashboard: no script, no CDN, readable offline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

RED = "#d64545"
GREEN = "#2f9e6e"
BLUE = "#3b6fd8"
GREY = "#9aa3ad"
ORANGE = "#e08a1e"


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[datetime, float]]
    color: str = BLUE
    dashed: bool = False


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def line_chart(series: Sequence[Series], *, width: int = 560, height: int = 220,
               title: str = "", y_label: str = "", threshold: float | None = None,
               threshold_label: str = "threshold", y_min: float | None = None) -> str:
    pts = [p for s in series for p in s.points]
    if not pts:
        return _empty(width, height, title, "no labeled records in this period")
    left, right, top, bottom = 48, 12, 28, 30
    xs = [p[0].timestamp() for p in pts]
    ys = [p[1] for p in pts] + ([threshold] if threshold is not None else [])
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = (y1 - y0) * 0.1
    y0, y1 = y0 - pad, y1 + pad
    if y_min is not None:  # e.g. a share of traffic is never below 0
        y0 = max(y0, y_min)
    if x1 == x0:
        x1 = x0 + 1

    def X(t: float) -> float:
        return left + (t - x0) / (x1 - x0) * (width - left - right)

    def Y(v: float) -> float:
        return top + (1 - (v - y0) / (y1 - y0)) * (height - top - bottom)

    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" aria-label="{escape(title)}">'),
           f'<text x="{left}" y="16" font-size="13" font-weight="600">{escape(title)}</text>']
    for k in range(5):
        v = y0 + (y1 - y0) * k / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" '
                   f'stroke="#eee"/><text x="{left - 6}" y="{Y(v) + 4:.1f}" font-size="10" '
                   f'text-anchor="end" fill="#555">{_fmt(v)}</text>')
    for tx, anchor in ((x0, "start"), ((x0 + x1) / 2, "middle"), (x1, "end")):
        label = _utc(tx).strftime("%m-%d %H:%M")
        out.append(f'<text x="{X(tx):.1f}" y="{height - 10}" font-size="10" '
                   f'text-anchor="{anchor}" fill="#555">{label}</text>')
    if threshold is not None:
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{Y(threshold):.1f}" '
                   f'y2="{Y(threshold):.1f}" stroke="{RED}" stroke-dasharray="5,4"/>'
                   f'<text x="{width - right}" y="{Y(threshold) - 4:.1f}" font-size="10" '
                   f'text-anchor="end" fill="{RED}">'
                   f'{escape(threshold_label)} {_fmt(threshold)}</text>')
    lx = left + 8
    for s in series:
        if not s.points:
            continue
        path = " ".join(f"{X(t.timestamp()):.1f},{Y(v):.1f}" for t, v in s.points)
        dash = ' stroke-dasharray="6,4"' if s.dashed else ""
        out.append(f'<polyline fill="none" stroke="{s.color}" stroke-width="2"{dash} '
                   f'points="{path}"/>')
        for t, v in s.points:
            out.append(f'<circle cx="{X(t.timestamp()):.1f}" cy="{Y(v):.1f}" r="2.5" '
                       f'fill="{s.color}"><title>{escape(s.name)} {t:%Y-%m-%d %H:%M}: '
                       f'{_fmt(v)}</title></circle>')
        out.append(f'<rect x="{lx}" y="{top - 4}" width="10" height="3" fill="{s.color}"/>'
                   f'<text x="{lx + 14}" y="{top}" font-size="10">{escape(s.name)}</text>')
        lx += 22 + 7 * len(s.name)
    if y_label:
        out.append(f'<text x="12" y="{(top + height - bottom) / 2:.0f}" font-size="10" '
                   f'transform="rotate(-90 12 {(top + height - bottom) / 2:.0f})" '
                   f'text-anchor="middle" fill="#555">{escape(y_label)}</text>')
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    color: str = BLUE
    note: str = ""


def bar_chart(bars: Sequence[Bar], *, width: int = 560, title: str = "",
              reference: float | None = None, reference_label: str = "",
              value_format: str = "{:.3g}", axis_min: float | None = None) -> str:
    if not bars:
        return _empty(width, 120, title, "nothing to show yet")
    row = 22
    label_w = min(max(len(b.label) for b in bars) * 6.4 + 10, 240)
    # room right of the longest bar for its value and note (10 px text, ~5.8 px a char)
    tail = max(len(value_format.format(b.value)) + (len(b.note) + 1 if b.note else 0)
               for b in bars)
    left, right, top = label_w, max(60, min(tail * 5.8 + 10, 220)), 30
    height = top + row * len(bars) + 16
    vmax = max([b.value for b in bars] + ([reference] if reference is not None else []) + [1e-12])
    vmin = min([0.0] + [b.value for b in bars]) if axis_min is None else axis_min
    span = vmax - vmin or 1.0

    def X(v: float) -> float:
        return left + (v - vmin) / span * (width - left - right)

    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" aria-label="{escape(title)}">'),
           f'<text x="8" y="16" font-size="13" font-weight="600">{escape(title)}</text>']
    for i, b in enumerate(bars):
        y = top + i * row
        x_start, x_end = sorted((X(0.0 if axis_min is None else vmin), X(b.value)))
        out.append(f'<text x="{left - 6}" y="{y + 14}" font-size="11" text-anchor="end">'
                   f'{escape(b.label[:40])}</text>'
                   f'<rect x="{x_start:.1f}" y="{y + 3}" width="{max(x_end - x_start, 1):.1f}" '
                   f'height="{row - 7}" fill="{b.color}" rx="2"><title>{escape(b.label)}: '
                   f'{value_format.format(b.value)} {escape(b.note)}</title></rect>'
                   f'<text x="{x_end + 4:.1f}" y="{y + 14}" font-size="10" fill="#333">'
                   f'{value_format.format(b.value)}{(" " + escape(b.note)) if b.note else ""}'
                   f'</text>')
    if reference is not None:
        out.append(f'<line x1="{X(reference):.1f}" x2="{X(reference):.1f}" y1="{top - 4}" '
                   f'y2="{height - 12}" stroke="{RED}" stroke-dasharray="4,3"/>'
                   f'<text x="{X(reference):.1f}" y="{height - 2}" font-size="10" '
                   f'text-anchor="middle" fill="{RED}">{escape(reference_label)}</text>')
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Mark:
    time: datetime
    label: str
    color: str


def timeline(marks: Sequence[Mark], *, width: int = 560, title: str = "") -> str:
    if not marks:
        return _empty(width, 80, title, "no alerts")
    height, left, right = 70, 20, 20
    ts = [m.time.timestamp() for m in marks]
    t0, t1 = min(ts), max(ts)
    if t1 == t0:
        t0, t1 = t0 - 3600, t1 + 3600
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" aria-label="{escape(title)}">'),
           f'<text x="8" y="16" font-size="13" font-weight="600">{escape(title)}</text>',
           f'<line x1="{left}" x2="{width - right}" y1="40" y2="40" stroke="#bbb"/>']
    for m in marks:
        x = left + (m.time.timestamp() - t0) / (t1 - t0) * (width - left - right)
        out.append(f'<circle cx="{x:.1f}" cy="40" r="6" fill="{m.color}"><title>'
                   f'{m.time:%Y-%m-%d %H:%M} {escape(m.label)}</title></circle>')
    for t, anchor in ((t0, "start"), (t1, "end")):
        x = left + (t - t0) / (t1 - t0) * (width - left - right)
        out.append(f'<text x="{x:.1f}" y="62" font-size="10" text-anchor="{anchor}" '
                   f'fill="#555">{_utc(t):%m-%d %H:%M} UTC</text>')
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Interval:
    """One side of one comparison: a value and its interval."""

    name: str
    value: float
    low: float
    high: float
    color: str
    note: str = ""


def interval_chart(rows: Sequence[tuple[str, Sequence[Interval]]], *, width: int = 560,
                   title: str = "", upper: float | None = 1.0) -> str:
    """Per row (a check), each side's value as a dot on its interval, on one axis
    (clipped to [0, ``upper``]; ``None`` for values that are not shares, e.g. MAE)."""
    if not rows or not any(sides for _, sides in rows):
        return _empty(width, 120, title, "no evidence yet")
    per_side = 16
    label_w = min(max(len(label) for label, _ in rows) * 6.4 + 14, 200)
    left, right, top = label_w, 150, 34
    heights = [len(sides) * per_side + 10 for _, sides in rows]
    height = top + sum(heights) + 26
    lows = [i.low for _, sides in rows for i in sides]
    highs = [i.high for _, sides in rows for i in sides]
    v0, v1 = min(lows), max(highs)
    pad = max((v1 - v0) * 0.05, 0.005)
    v0, v1 = max(v0 - pad, 0.0), v1 + pad if upper is None else min(v1 + pad, upper)
    if v1 <= v0:
        v0, v1 = v0 - 0.01, v1 + 0.01

    def X(v: float) -> float:
        return left + (v - v0) / (v1 - v0) * (width - left - right)

    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" aria-label="{escape(title)}">'),
           f'<text x="8" y="16" font-size="13" font-weight="600">{escape(title)}</text>']
    for k in range(5):
        v = v0 + (v1 - v0) * k / 4
        out.append(f'<line x1="{X(v):.1f}" x2="{X(v):.1f}" y1="{top - 6}" '
                   f'y2="{height - 20}" stroke="#eee"/><text x="{X(v):.1f}" '
                   f'y="{height - 6}" font-size="10" text-anchor="middle" fill="#555">'
                   f'{_fmt(v)}</text>')
    y = top
    for (label, sides), h in zip(rows, heights):
        out.append(f'<text x="{left - 8}" y="{y + h / 2 + 2:.0f}" font-size="11" '
                   f'text-anchor="end">{escape(label[:32])}</text>'
                   f'<line x1="{left}" x2="{width - right}" y1="{y + h - 4}" y2="{y + h - 4}" '
                   f'stroke="#f3f3f3"/>')
        for j, i in enumerate(sides):
            cy = y + 8 + j * per_side
            out.append(f'<line x1="{X(i.low):.1f}" x2="{X(i.high):.1f}" y1="{cy}" y2="{cy}" '
                       f'stroke="{i.color}" stroke-width="4" stroke-linecap="round">'
                       f'<title>{escape(label)} {escape(i.name)}: {i.value:.4f} '
                       f'[{i.low:.4f}, {i.high:.4f}] {escape(i.note)}</title></line>'
                       f'<circle cx="{X(i.value):.1f}" cy="{cy}" r="4.5" fill="#fff" '
                       f'stroke="{i.color}" stroke-width="2"/>'
                       f'<text x="{width - right + 8}" y="{cy + 4}" font-size="10" '
                       f'fill="#333">{escape(i.name)} {i.value:.3f} {escape(i.note)}</text>')
        y += h
    out.append("</svg>")
    return "".join(out)


def _empty(width: int, height: int, title: str, message: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            f'<text x="8" y="16" font-size="13" font-weight="600">{escape(title)}</text>'
            f'<text x="{width / 2:.0f}" y="{height / 2 + 8:.0f}" font-size="12" '
            f'text-anchor="middle" fill="#888">{escape(message)}</text></svg>')


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)
