"""The replay report: one self-contained HTML file from a ``segengine replay --json`` summary.

:func:`build_report` turns the summary (a dict, as :meth:`segengine.cli.replay.Replay.summary`
returns it or as read back from the saved JSON) into HTML: per room, summary tiles, audience and
segment sizes over stream time, the funnel with its break point, dwell and GMV per slot, and the
actions per rule per slot. Charts are inline SVG drawn here; the page loads nothing at view time.
Tiles, funnel steps and chart marks carry ``data-*`` attributes with the exact numbers.
"""

from __future__ import annotations

import datetime as _dt
from html import escape
from pathlib import Path
from typing import Any

from .svg import bar_chart, fmt_minutes, fmt_num, line_chart

__all__ = ["build_report", "write_report", "SLOT_SECONDS"]

SLOT_SECONDS = 300.0  # the replay summary's room slots and actions_by_slot are 5 minutes each

_CSS = """
:root{--ink:#1d2433;--muted:#5b6475;--line:#e3e6ec;--bg:#f7f8fa;--card:#fff;--accent:#0072B2;--alert:#D55E00}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif;font-variant-numeric:tabular-nums}
header{padding:28px 40px 12px}h1{margin:0 0 4px;font-size:24px;font-weight:650}
.meta{color:var(--muted);font-size:13px}main{padding:0 40px 40px;max-width:1400px}
section.room{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:20px 24px;margin:20px 0}
h2{font-size:19px;margin:0 0 14px}h3{font-size:14px;margin:0 0 8px;color:var(--muted);font-weight:600;
text-transform:uppercase;letter-spacing:.04em}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin-bottom:18px}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.tile .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.tile .v{font-size:24px;font-weight:650}.tile.alert .v{color:var(--alert)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:18px 28px}
.panel{min-width:0}.chart{width:100%;height:auto;display:block}
.chart .grid{stroke:var(--line);stroke-width:1}.chart .axis{stroke:#9aa1ad;stroke-width:1}
.chart .tick{font-size:11px;fill:var(--muted)}.chart .label{font-size:12px;fill:var(--ink)}
.chart .line{fill:none;stroke-width:2}.chart .bar:hover,.chart .dot:hover{opacity:.75}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:var(--muted);margin-bottom:4px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.funnel{width:100%;border-collapse:collapse;font-size:14px}
.funnel td{padding:4px 6px;border-bottom:1px solid var(--line)}.funnel td.n{text-align:right;white-space:nowrap}
.funnel .track{background:var(--bg);border-radius:4px;height:16px;min-width:160px}
.funnel .fill{background:var(--accent);height:16px;border-radius:4px}
.funnel tr.break td{color:var(--alert);font-weight:650}.funnel tr.break .fill{background:var(--alert)}
.empty{color:var(--muted);font-style:italic}
table.rules{border-collapse:collapse;font-size:14px;margin-top:8px}
table.rules th,table.rules td{padding:4px 12px;border-bottom:1px solid var(--line);text-align:right}
table.rules th:first-child,table.rules td:first-child{text-align:left}
footer{color:var(--muted);font-size:12px;padding:0 40px 30px}
"""


def _a(x: object) -> str:
    return escape(str(x), quote=True)


def _tile(metric: str, label: str, value: Any, shown: str, *, alert: bool = False, note: str = "") -> str:
    cls = "tile alert" if alert else "tile"
    title = f' title="{_a(note)}"' if note else ""
    return (f'<div class="{cls}" data-metric="{_a(metric)}" data-value="{_a(value)}"{title}>'
            f'<div class="k">{escape(label)}</div><div class="v">{escape(shown)}</div></div>')


def _tiles(m: dict[str, Any]) -> str:
    bp = m.get("break_point") or ""
    return '<div class="tiles">' + "".join([
        _tile("gmv", "GMV", repr(float(m.get("gmv", 0.0))), fmt_num(round(m.get("gmv", 0.0), 2)),
              note=f"{m.get('orders', 0)} orders, AOV {fmt_num(round(m.get('aov', 0.0), 2))}"),
        _tile("uv", "UV", m.get("uv", 0), fmt_num(m.get("uv", 0)), note=f"{m.get('entries', 0)} entries"),
        _tile("conversion", "Conversion", repr(float(m.get("conversion", 0.0))), f"{m.get('conversion', 0.0):.1%}",
              note=f"{m.get('buyers', 0)} buyers of {m.get('uv', 0)} viewers"),
        _tile("peak_audience", "Peak audience", m.get("peak_audience", 0), fmt_num(m.get("peak_audience", 0)),
              note=f"present now: {m.get('audience', 0)}"),
        _tile("break_point", "Break point", bp, bp or "none", alert=bool(bp),
              note="the funnel step with the largest relative loss"),
        _tile("avg_dwell", "Avg dwell", repr(float(m.get("avg_dwell", 0.0))), fmt_minutes(m.get("avg_dwell", 0.0)),
              note=f"{m.get('short_sessions', 0)} sessions < 1m, {m.get('long_sessions', 0)} sessions >= 5m"),
    ]) + "</div>"


def _funnel(m: dict[str, Any]) -> str:
    funnel: dict[str, int] = m.get("funnel") or {}
    if not funnel:
        return '<p class="empty">no sessions</p>'
    first = max(funnel.values()) or 1
    bp = m.get("break_point") or ""
    rows, prev = [], None
    for step, n in funnel.items():
        lost = (m.get("dropoff") or {}).get(step, 0)
        rate = f"{lost / prev:.0%} lost" if prev else ""
        cls = ' class="break"' if step == bp else ""
        tip = f"{step}: {n:,} sessions" + (f", {lost:,} lost since the step before ({rate.split()[0]})" if prev else "")
        rows.append(f'<tr{cls} data-step="{_a(step)}" data-value="{n}" data-dropoff="{lost}" title="{_a(tip)}">'
                    f"<td>{escape(step)}{' ⚠' if cls else ''}</td>"
                    f'<td style="width:60%"><div class="track"><div class="fill" style="width:{100 * n / first:.1f}%">'
                    f"</div></div></td><td class=\"n\">{n:,}</td><td class=\"n\">{escape(rate)}</td></tr>")
        prev = n
    return f'<table class="funnel">{"".join(rows)}</table>'


def _room(room: str, data: dict[str, Any], summary: dict[str, Any]) -> str:
    m, slots = data.get("metrics", {}), data.get("slots", [])
    mid = [((s.get("start", 0.0) + s.get("end", 0.0)) / 2, s) for s in slots]
    audience = {"audience (end of slot)": [(x, s.get("audience", 0)) for x, s in mid],
                "peak audience": [(x, s.get("peak_audience", 0)) for x, s in mid]}
    seg_series: dict[str, list[tuple[float, float]]] = {}
    for point in summary.get("timeline", []):
        for seg, n in point.get("segments", {}).items():
            seg_series.setdefault(seg, []).append((point.get("at", 0.0), n))
    end = summary.get("stream_seconds") or 0.0
    if seg_series and end > max(x for pts in seg_series.values() for x, _ in pts):  # the sizes at the end
        for seg, n in (summary.get("segments") or {}).items():
            seg_series.setdefault(seg, []).append((end, n))
    panels = [
        ("Audience per 5 m slot", line_chart(audience, title=f"{room}: audience per slot", y_label="viewers",
                                              kind="audience")),
        ("Segment sizes over stream time",
         line_chart(seg_series, title="segment sizes", y_label="viewers", kind="segments") if seg_series
         else '<p class="empty">no timeline (replay with --timeline, e.g. 5m)</p>'),
        ("Funnel (sessions)", _funnel(m)),
        ("GMV per slot", bar_chart({"GMV": [s.get("gmv", 0.0) for s in slots]}, slot=SLOT_SECONDS,
                                   title=f"{room}: GMV per slot", y_label="GMV", kind="gmv")),
        ("Average dwell of sessions ending per slot",
         bar_chart({"avg dwell (s)": [s.get("avg_dwell", 0.0) for s in slots]}, slot=SLOT_SECONDS,
                   title=f"{room}: average dwell per slot", y_label="seconds", kind="dwell", unit=" s")),
        ("Short (< 1 m) and long (≥ 5 m) sessions per slot",
         bar_chart({"short": [s.get("short_sessions", 0) for s in slots],
                    "long": [s.get("long_sessions", 0) for s in slots]}, slot=SLOT_SECONDS,
                   title=f"{room}: short and long sessions", y_label="sessions", kind="sessions", stacked=False)),
    ]
    by_rule = (summary.get("actions_by_slot") or {}).get(room) or {}
    panels.append(("Actions per rule per slot",
                   bar_chart(by_rule, slot=SLOT_SECONDS, title=f"{room}: actions per rule", y_label="actions",
                             kind="actions") if by_rule else '<p class="empty">no actions</p>'))
    body = "".join(f'<div class="panel"><h3>{escape(h)}</h3>{c}</div>' for h, c in panels)
    return (f'<section class="room" data-room="{_a(room)}"><h2>Room {escape(room)}</h2>{_tiles(m)}'
            f'<div class="grid">{body}</div></section>')


def _rules_table(summary: dict[str, Any]) -> str:
    def total(x: Any) -> int:  # suppressed is a count, or counts per guard
        return sum(x.values()) if isinstance(x, dict) else int(x or 0)

    rows = "".join(f'<tr data-rule="{_a(r["rule"])}"><td>{escape(r["rule"])}</td><td>{total(r.get("fired")):,}</td>'
                   f'<td>{total(r.get("actions")):,}</td><td>{total(r.get("suppressed")):,}</td></tr>'
                   for r in summary.get("rules", []))
    if not rows:
        return ""
    return ('<section class="room"><h2>Rules</h2><table class="rules"><tr><th>rule</th><th>fired</th>'
            f"<th>actions</th><th>suppressed</th></tr>{rows}</table></section>")


def build_report(summary: dict[str, Any], *, title: str = "segengine replay report") -> str:
    """The HTML page (a str) for a replay summary."""
    rooms = summary.get("room_metrics") or {}
    meta = (f"rules {summary.get('rules_file', '?')} · events {summary.get('events_file', '?')} · "
            f"{summary.get('events', 0):,} events · {summary.get('viewers', 0):,} viewers · "
            f"{fmt_minutes(summary.get('stream_seconds', 0.0))} of stream · {summary.get('actions', 0):,} actions")
    empty = ("no room metrics: the rules turn them off ([engine] room_metrics = false)"
             if summary.get("room_metrics_off") else "no rooms")
    body = "".join(_room(str(r), d, summary) for r, d in rooms.items()) or f'<p class="empty">{empty}</p>'
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{escape(title)}</h1><div class=\"meta\">{escape(meta)}</div></header>"
            f"<main>{body}{_rules_table(summary)}</main>"
            f"<footer>Generated by segengine on {stamp}. Hover a bar or a point for its numbers.</footer>"
            "</body></html>\n")


def write_report(summary: dict[str, Any], path: str | Path, **kw: Any) -> None:
    Path(path).write_text(build_report(summary, **kw), encoding="utf-8")


