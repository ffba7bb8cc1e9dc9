"""Small SVG charts drawn in Python for the HTML report: no JavaScript, no network, no dependency.

Every mark carries a ``<title>`` (the browser's tooltip) with its numbers and ``data-*``
attributes with the exact value, so a test or a script can read the chart back from the DOM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["PALETTE", "bar_chart", "line_chart", "nice_ticks", "fmt_num", "fmt_minutes"]

#: A small palette that stays readable for common colour-vision deficiencies (Okabe-Ito based).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999", "#332288")

W, H = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40


def _attr(x: object) -> str:
    return escape(str(x), quote=True)


def fmt_num(x: float) -> str:
    """A number for people: thousands separators, at most 2 decimals, no trailing zeros."""
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def fmt_minutes(seconds: float) -> str:
    m = seconds / 60.0
    return f"{m:.0f}m" if m == int(m) else f"{m:.1f}m"


def nice_ticks(top: float, n: int = 4) -> list[float]:
    """0 and up to ``n`` round steps covering ``top`` (1, 2, 2.5 or 5 times a power of ten)."""
    if not top > 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    count = int(math.ceil(top / step - 1e-9))
    return [i * step for i in range(count + 1)]


def _frame(title: str, x_label: str, y_label: str, ticks: list[float], x_ticks: list[tuple[float, str]],
           plot: str, legend: Sequence[tuple[str, str]] = (), kind: str = "") -> str:
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    top = ticks[-1] or 1.0
    parts = [f'<svg class="chart" data-chart="{_attr(kind)}" viewBox="0 0 {W} {H}" role="img" '
             f'aria-label="{_attr(title)}" xmlns="http://www.w3.org/2000/svg">', f"<title>{escape(title)}</title>"]
    for t in ticks:
        y = TOP + ph - t / top * ph
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt_num(t))}</text>')
    for x, label in x_ticks:
        parts.append(f'<text class="tick" x="{LEFT + x * pw:.1f}" y="{TOP + ph + 16}" text-anchor="middle">'
                     f"{escape(label)}</text>")
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT + pw}" y1="{TOP + ph}" y2="{TOP + ph}"/>')
    parts.append(plot)
    parts.append(f'<text class="label" x="{LEFT + pw / 2:.1f}" y="{H - 4}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text class="label" transform="translate(12 {TOP + ph / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle">{escape(y_label)}</text>')
    parts.append("</svg>")
    chart = "".join(parts)
    if legend:
        keys = "".join(f'<span class="key"><i style="background:{c}"></i>{escape(n)}</span>' for n, c in legend)
        chart = f'<div class="legend">{keys}</div>' + chart
    return chart


def _x_ticks(xs: Sequence[float], span: float) -> list[tuple[float, str]]:
    if not xs or span <= 0:
        return []
    step = nice_ticks(span / 60.0, 6)
    step_s = (step[1] - step[0]) * 60.0 if len(step) > 1 else span
    out, t = [], 0.0
    while t <= span + 1e-9:
        out.append((t / span, fmt_minutes(t)))
        t += step_s
    return out


def line_chart(series: dict[str, Sequence[tuple[float, float]]], *, title: str, x_label: str = "stream time",
               y_label: str = "", kind: str = "", unit: str = "") -> str:
    """Lines over stream time: ``series`` maps a name to (seconds, value) points."""
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    if not xs:
        return f'<p class="empty">{escape(title)}: no data</p>'
    span = max(xs) or 1.0
    ticks = nice_ticks(max(ys) if ys else 1.0)
    top = ticks[-1] or 1.0
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    plot, legend = [], []
    for i, (name, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        legend.append((name, color))
        coords = [(LEFT + x / span * pw, TOP + ph - y / top * ph) for x, y in pts]
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        plot.append(f'<polyline class="line" data-series="{_attr(name)}" points="{path}" stroke="{color}"/>')
        for (x, y), (cx, cy) in zip(pts, coords):
            plot.append(f'<circle class="dot" cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{color}" '
                        f'data-series="{_attr(name)}" data-at="{x:g}" data-value="{y!r}">'
                        f"<title>{escape(name)} at {fmt_minutes(x)}: {escape(fmt_num(y))}{escape(unit)}</title></circle>")
    return _frame(title, x_label, y_label, ticks, _x_ticks(xs, span), "".join(plot), legend, kind)


def bar_chart(series: dict[str, Sequence[float]], *, slot: float, title: str, x_label: str = "stream time",
              y_label: str = "", kind: str = "", unit: str = "", stacked: bool = True) -> str:
    """Bars per slot of ``slot`` seconds; several series are stacked (or side by side)."""
    n = max((len(v) for v in series.values()), default=0)
    if not n:
        return f'<p class="empty">{escape(title)}: no data</p>'
    totals = [sum(v[i] for v in series.values() if i < len(v)) for i in range(n)]
    peak = max(totals) if stacked else max((x for v in series.values() for x in v), default=0)
    ticks = nice_ticks(peak if peak > 0 else 1.0)
    top = ticks[-1] or 1.0
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    band = pw / n
    width = band * 0.8 / (1 if stacked else max(1, len(series)))
    plot, legend = [], []
    base = [0.0] * n
    for k, (name, values) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        legend.append((name, color))
        for i, v in enumerate(values):
            h = v / top * ph
            x = LEFT + i * band + band * 0.1 + (0 if stacked else k * width)
            y = TOP + ph - (base[i] / top * ph if stacked else 0) - h
            start = i * slot
            plot.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(width, 0.5):.1f}" height="{h:.1f}" '
                        f'fill="{color}" data-series="{_attr(name)}" data-slot="{i}" data-value="{v!r}">'
                        f"<title>{escape(name)}, {fmt_minutes(start)}–{fmt_minutes(start + slot)}: "
                        f"{escape(fmt_num(v))}{escape(unit)}</title></rect>")
            if stacked:
                base[i] += v
    if len(series) == 1:
        legend = []
    return _frame(title, x_label, y_label, ticks, _x_ticks([n * slot], n * slot), "".join(plot), legend, kind)
