"""The replay summary as text: actions per rule, segment sizes over time, the funnel, viewer kinds.

Each ``render_*`` function takes the JSON summary of :meth:`segengine.cli.replay.Replay.summary`
(plain dicts: ``--json`` and the text report say the same thing) and returns text lines;
percentages are rounded once from the exact counts (:func:`segengine.cli.output.pct`).
"""

from __future__ import annotations

from typing import Any

from .. import guards
from .output import clock, pct, plural, span, tenths

KIND_LABELS = {"passerby": "passers-by", "watcher": "watchers", "fan": "fans"}
SKIPPED_SHOWN = 10            # line numbers of skipped events the text summary shows


def render_rules(summary: dict[str, Any]) -> list[str]:
    width = max([len(r["rule"]) for r in summary["rules"]] + [10])
    reasons = guards.REASONS  # once, cooldown, budget: the guard registry's order
    out = ["Actions per rule", f"  {'rule':<{width}}  {'fired':>7}  {'actions':>8}  suppressed ({' / '.join(reasons)})"]
    fired_total = 0
    for r in summary["rules"]:
        s = r["suppressed"]
        supp = sum(s.values())
        detail = f"{supp:>7,}  ({' / '.join(f'{s[k]:,}' for k in reasons)})" if supp else f"{0:>7}"
        out.append(f"  {r['rule']:<{width}}  {r['fired']:>7,}  {r['actions']:>8,}  {detail}")
        fired_total += r["fired"]
    out.append(f"  {'total':<{width}}  {fired_total:>7,}  {summary['actions']:>8,}")
    return out


def render_segments(summary: dict[str, Any]) -> list[str]:
    names = list(summary["segments"])
    if not names:
        return ["Segments: none declared"]
    out = []
    if summary["timeline"]:
        width = max(len(n) for n in names) + 2
        out.append("Segment sizes over the stream (viewers in each segment at that time)")
        out.append("  time    " + "".join(f"{n:>{width}}" for n in names))
        for row in summary["timeline"]:
            out.append(f"  {clock(row['at']):>7} " + "".join(f"{row['segments'][n]:>{width},}" for n in names))
        out.append(f"  {'end':>7} " + "".join(f"{summary['segments'][n]:>{width},}" for n in names))
    else:
        out.append("Segment sizes at the end: " + ", ".join(f"{n} {v:,}" for n, v in summary["segments"].items()))
    return out


def render_funnel(summary: dict[str, Any]) -> list[str]:
    """Each percentage from the viewer counts, rounded once; of previous + drop-off = 100.0 %."""
    out = ["Purchase funnel (distinct viewers reaching each step)",
           f"  {'step':<9} {'viewers':>8} {'events':>9}  {'of previous':>11}  {'drop-off':>8}  {'of entered':>10}"]
    entered = summary["funnel"][0]["viewers"]
    prev = None
    for row in summary["funnel"]:
        if prev:
            kept = tenths(row["viewers"], prev)
            rel = f"{kept / 10:10.1f} %  {(1000 - kept) / 10:6.1f} %"
        else:
            rel = f"{'':>12}  {'':>8}"
        out.append(f"  {row['step']:<9} {row['viewers']:>8,} {row['events']:>9,}  {rel}  {pct(row['viewers'], entered):>10}")
        prev = row["viewers"]
    return out


def render_replay(summary: dict[str, Any]) -> str:
    rate = f", {summary['events_per_second']:,} events/s" if summary.get("events_per_second") else ""
    head = (f"Replayed {plural(summary['events'], 'event')} ({plural(summary['viewers'], 'viewer')}, "
            f"{plural(summary['rooms'], 'room')}, {span(summary['stream_seconds'])} of stream time) "
            f"through {summary['rules_file']} in {summary['seconds']:.1f} s{rate}")
    lines = [head]
    if summary["rejected"] or summary["late"]:
        lines.append(f"  rejected events: {summary['rejected']:,}   late events: {summary['late']:,}")
    skipped = summary["skipped"]
    if skipped["count"]:
        shown = skipped["lines"][:SKIPPED_SHOWN]
        more = f", ... (the first {len(shown)} of {skipped['count']:,})" if skipped["count"] > len(shown) else ""
        lines.append(f"  skipped bad events at line{'s' if len(shown) > 1 else ''} "
                     f"{', '.join(str(n) for n in shown)}{more}")
    if "profiles" in summary:
        lines += render_profiles(summary["profiles"])
    lines.append(f"  {summary['actions']:,} actions to {summary['viewers_with_actions']:,} viewers")
    lines += [""] + render_rules(summary) + [""] + render_segments(summary) + [""] + render_funnel(summary)
    if summary.get("room_metrics"):
        lines += [""] + render_rooms(summary["room_metrics"])
    if "kinds" in summary:
        lines += ["", "Viewer kinds (from the `kind` field of enter events)"] + render_kinds(summary["kinds"])
    if "outcomes" in summary:
        lines += [""] + render_outcomes(summary["outcomes"])
    return "\n".join(lines)


def render_profiles(p: dict[str, Any]) -> list[str]:
    """What ``--profiles`` did, in one to three lines."""
    unseen = f" ({p['without_events']:,} of them for viewers without events)" if p["without_events"] else ""
    out = [f"  profiles: {plural(p['viewers'], 'viewer')} set from {p['file']}{unseen}"]
    if p["skipped_attributes"]:
        out.append(f"  skipped attributes not in [profile]: {', '.join(p['skipped_attributes'])}")
    if p["rejected"]:
        shown = p["rejected_lines"][:SKIPPED_SHOWN]
        more = f", ... (the first {len(shown)} of {p['rejected']:,})" if p["rejected"] > len(shown) else ""
        out.append(f"  skipped bad profile lines at line{'s' if len(shown) > 1 else ''} "
                   f"{', '.join(str(n) for n in shown)}{more}")
    return out


def render_kinds(kinds: dict[str, dict[str, Any]]) -> list[str]:
    total = sum(k["viewers"] for k in kinds.values())
    out = [f"  {'':<12} {'viewers':>8} {'share':>7} {'mean dwell':>11} {'got actions':>12} {'actions':>8} {'bought':>8}"]
    order = [k for k in KIND_LABELS if k in kinds] + [k for k in kinds if k not in KIND_LABELS]
    for kind in order:
        r = kinds[kind]
        out.append(f"  {KIND_LABELS.get(kind, kind):<12} {r['viewers']:>8,} {pct(r['viewers'], total):>7} "
                   f"{span(r['mean_dwell']) if r['mean_dwell'] is not None else '-':>11} {pct(r['targeted'], r['viewers']):>12} {r['actions']:>8,} "
                   f"{pct(r['buyers'], r['viewers']):>8}")
    return out


def render_outcomes(outcomes: list[dict[str, Any]]) -> list[str]:
    """Rules with a holdout: firings and held-out firings, their conversions, the uplift and its 95 % interval."""
    width = max([len(o["rule"]) for o in outcomes] + [4])
    out = ["Holdout outcomes (firings followed by the outcome event within the attribution window)",
           f"  {'rule':<{width}}  {'outcome':<8} {'fired':>7} {'conv':>8}  {'held out':>8} {'conv':>8}  "
           f"{'uplift':>8}  95 % interval"]
    for o in outcomes:
        out.append(f"  {o['rule']:<{width}}  {o['outcome']:<8} {o['fired']:>7,} {o['conversion'] * 100:>6.1f} %  "
                   f"{o['held_out']:>8,} {o['control_conversion'] * 100:>6.1f} %  {o['uplift'] * 100:>+6.1f} pp  "
                   f"[{o['uplift_low'] * 100:+.1f}, {o['uplift_high'] * 100:+.1f}] pp")
    return out


def render_rooms(rooms: dict[str, Any]) -> list[str]:
    """Per room: audience, money and the ordered per-session funnel with its break point (docs/rooms.md)."""
    out = ["Rooms (engine.room(): the ordered funnel counts sessions)"]
    for room, data in rooms.items():
        m = data["metrics"]
        out.append(f"  {room}: peak audience {m['peak_audience']:,}, UV {m['uv']:,}, entries {m['entries']:,}, "
                   f"avg dwell {m['avg_dwell']:.0f} s, GMV {m['gmv']:,.2f}, orders {m['orders']:,}, "
                   f"conversion {100 * m['conversion']:.1f} %, carted unpaid {m['carted_unpaid']:,}")
        steps = " -> ".join(f"{step} {n:,}" for step, n in m["funnel"].items())
        bp = f"   break point: {m['break_point']}" if m["break_point"] else ""
        out.append(f"    funnel: {steps}{bp}")
    return out
