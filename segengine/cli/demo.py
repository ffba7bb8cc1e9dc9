"""``segengine demo``: simulate a live room, replay it through the bundled rules, tell what they did.

To the replay summary it adds the simulation settings, the spending-level profiles it gave the
viewers and one viewer's stream per viewer kind (the ``stories``), and prints it all as prose
and tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..engine import Engine
from .inputs import bundled_rules, load_rules
from .output import EXIT_OK, clock, params_text, pct, span
from .progress import Progress, progress_enabled
from .replay import Replay
from .simulate import check_workload, simulate_blocks
from .summary import render_funnel, render_kinds, render_rooms, render_rules, render_segments

DEMO_VIEWERS = 5_000          # keeps `segengine demo` at ~2 s once the rules are compiled (docs/cli.md)
DEMO_LEVELS = {"low": 0.3, "mid": 0.5, "high": 0.2}


def cmd_demo(args: argparse.Namespace) -> int:
    check_workload(args)
    rules_path = Path(args.rules) if args.rules else bundled_rules()
    rules = load_rules(str(rules_path))
    show = progress_enabled(args.progress)
    if show:
        print("compiling the rules (cached after the first run) ...", file=sys.stderr, flush=True)
    engine = Engine(rules).warmup()
    levels = _demo_profiles(engine, args.viewers, args.seed)
    progress = Progress("demo", args.hours * 3600.0, show)
    replay = Replay(engine, "<simulated>", timeline_every=1800.0, keep_actions=True)
    line_no = 0
    for block in simulate_blocks(args.viewers, args.hours, args.rooms, args.seed, True, False, progress):
        lines = block.splitlines(keepends=True)
        replay.feed(lines, list(range(line_no + 1, line_no + 1 + len(lines))))
        line_no += len(lines)
    replay.finish()
    summary = replay.summary()
    summary["simulation"] = {"viewers": args.viewers, "hours": args.hours, "rooms": args.rooms, "seed": args.seed,
                             "levels": levels}
    summary["stories"] = [_story(replay, v) for v in _story_viewers(replay)]
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(render_demo(summary, replay))
    return EXIT_OK


def _demo_profiles(engine: Engine, viewers: int, seed: int) -> dict[str, int]:
    """Give the simulated viewers (ids 1..N) a spending ``level`` profile, if the rules declare it."""
    attr = engine.rules.profile.get("level")
    if attr is None or set(attr.values) != set(DEMO_LEVELS):
        return {}
    import numpy as np

    names = list(DEMO_LEVELS)
    picks = np.random.default_rng(seed).choice(len(names), size=viewers, p=list(DEMO_LEVELS.values())).tolist()
    for viewer, k in enumerate(picks, 1):
        engine.set_profile(viewer, level=names[k])
    return {name: picks.count(k) for k, name in enumerate(names)}


def _story_viewers(replay: Replay) -> list[Any]:
    """One viewer of each kind who received the most different rules' actions."""
    rules_of: dict[Any, set] = {}
    for a in replay.kept:
        rules_of.setdefault(a.viewer, set()).add(a.rule)
    best: dict[str, tuple[int, Any]] = {}
    for viewer, names in rules_of.items():
        kind = replay.kinds.get(viewer, "")
        if kind not in best or len(names) > best[kind][0]:
            best[kind] = (len(names), viewer)
    return [best[k][1] for k in ("fan", "watcher", "passerby") if k in best]


def _story(replay: Replay, viewer: Any) -> dict[str, Any]:
    info = replay.engine.viewer(viewer)
    f = info["features"]
    return {"viewer": viewer, "kind": replay.kinds.get(viewer, ""),
            "sessions": int(f.get("sessions", 0)), "total_dwell": f.get("total_dwell", 0.0),
            "orders": int(f.get("orders", 0)), "spend": f.get("spend", 0.0), "tags": info["tags"],
            "segments": [s for s, on in info["segments"].items() if on],
            "actions": [replay.action_json(a) for a in replay.kept if a.viewer == viewer][:8]}


def render_demo(summary: dict[str, Any], replay: Replay) -> str:
    sim = summary["simulation"]
    kinds = summary.get("kinds", {})
    bundled = Path(summary["rules_file"]).resolve() == bundled_rules()
    rules = "the bundled rules (segengine/data/live_room.toml)" if bundled else summary["rules_file"]
    levels = sim.get("levels") or {}
    out = [f"segengine demo: a {sim['hours']:g}-hour live room with {sim['viewers']:,} viewers (seed {sim['seed']}), "
           f"replayed through {rules}",
           f"  {summary['events']:,} events simulated and replayed in {summary['seconds']:.1f} s; "
           f"{summary['actions']:,} actions to {summary['viewers_with_actions']:,} viewers"]
    if levels:
        out.append("  profiles: spending level " + ", ".join(f"{k} {pct(v, sum(levels.values()))}" for k, v in levels.items()))
    out.append("")
    out.append("Who came (the simulator's true viewer kinds) and what they got")
    out += render_kinds(kinds)
    out.append("")
    out += render_segments(summary)
    if bundled:  # what the bundled rules' segments mean; a user's own segments may mean anything
        out.append("  (passerby and watcher count viewers present at that moment; fan counts everyone who qualifies)")
    out.append("")
    out.append("What was sent to whom, and when (the first firing of each rule; time from stream start)")
    shown = summary["first_actions"] + [a for story in summary["stories"] for a in story["actions"]]
    aw = max([len(a["action"]) for a in shown] + [6])
    rw = max([len(a["rule"]) for a in shown] + [4])

    def line(a: dict[str, Any], who: str = "") -> str:
        return f"  {clock(a['at'])}  {who}{a['action']:<{aw}}  by {a['rule']:<{rw}}  {params_text(a['params'])}".rstrip()

    for a in summary["first_actions"]:
        who = f"viewer {a['viewer']}" + (f" ({a['kind']})" if a.get("kind") else "")
        out.append(line(a, f"{who:<22} "))
    for story in summary["stories"]:
        label = {"passerby": "passer-by", "watcher": "watcher", "fan": "fan"}.get(story["kind"], "viewer")
        out.append("")
        out.append(f"One {label}'s stream: viewer {story['viewer']}: {story['sessions']} session"
                   f"{'s' if story['sessions'] != 1 else ''}, {span(story['total_dwell'])} in the room, "
                   f"{story['orders']} order{'s' if story['orders'] != 1 else ''}"
                   + (f", spent {story['spend']:.2f}" if story["orders"] else "")
                   + (f", tags: {', '.join(story['tags'])}" if story["tags"] else ""))
        out.extend(line(a) for a in story["actions"])
    out += [""] + render_rules(summary)
    out += [""] + render_funnel(summary)
    if summary.get("room_metrics"):  # the live room view: engine.room() (docs/rooms.md)
        out += [""] + render_rooms(summary["room_metrics"])
    return "\n".join(out)
