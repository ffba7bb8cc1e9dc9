"""``segengine explain RULES EVENTS VIEWER RULE``: why a viewer was or was not nudged, after a replay.

Replays EVENTS as ``replay`` does (same reading, same ``--skip-errors``, same ``--profiles``),
up to the end of the stream or to ``--at``, advances the engine to that time and prints
``engine.explain(VIEWER, RULE)`` under a short header: the firings of RULE for VIEWER during
the replay (kept from the actions as they come out; memory does not grow with the events).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from itertools import islice
from typing import Any

import msgspec

from ..engine import Engine
from ..schema.events import Action
from ..rules.suggest import did_you_mean
from .inputs import iter_chunks, load_rules, open_events
from .output import EXIT_ERRORS, EXIT_OK, DataError, UsageError, clock, params_text, plural
from .profiles import Profiles, load_profiles
from .progress import Progress, progress_enabled
from .replay import CHUNK_LINES, Replay, check_stdin

MAX_FIRINGS = 1_000         # firings of the rule for the viewer kept (all are counted)
FIRINGS_SHOWN = 20          # ... and shown in the text report (the first 10 and the last 10)
MAX_SUGGEST = 200_000       # viewer ids searched for a did-you-mean
_INT = re.compile(r"[+-]?\d+")


def parse_at(text: str) -> tuple[str, float]:
    """``--at``: ``("ts", unix seconds)`` for a number, ``("after", seconds)`` for ``+DURATION`` (after the first event)."""
    from ..testing.ruletest import parse_time

    text = text.strip()
    try:
        if text.startswith("+"):
            rest = text[1:]
            return "after", parse_time(rest if any(c.isalpha() for c in rest) else float(rest))
        return "ts", float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an event time in seconds (as the events' ts) or +DURATION after the first event "
            f"(+90m), got {text!r}") from None


class _Firings:
    """The actions of one rule whose viewer prints as ``text``, grouped into firings at the end."""

    def __init__(self, rule: str, text: str, per_firing: int):
        self.rule, self.text = rule, text
        self.cap = MAX_FIRINGS * max(1, per_firing)
        self.actions: list[Action] = []
        self.dropped = 0

    def __call__(self, actions: list[Action]) -> None:
        rule, text = self.rule, self.text
        for a in actions:
            if a.rule == rule and str(a.viewer) == text:
                if len(self.actions) < self.cap:
                    self.actions.append(a)
                else:
                    self.dropped += 1

    def of(self, viewer: str | int) -> list[list[Action]]:
        """The firings of ``viewer``: runs of its actions at one time, a repeated action starting a new one."""
        groups: list[list[Action]] = []
        for a in self.actions:
            if a.viewer != viewer or type(a.viewer) is not type(viewer):
                continue
            last = groups[-1] if groups else None
            if last is not None and last[0].ts == a.ts and all(b.action != a.action for b in last):
                last.append(a)
            else:
                groups.append([a])
        return groups


def resolve_viewer(text: str, seen: dict[Any, Any], profiles: Profiles | None, source: str) -> str | int:
    """VIEWER as the stream spells it: an int if it parses as one and that int sent events, else the string."""
    known = (seen, profiles.viewers if profiles is not None else ())
    if _INT.fullmatch(text):
        n = int(text)
        if any(n in k for k in known):
            return n
    if any(text in k for k in known):
        return text
    ids = islice((v for k in known for v in k), MAX_SUGGEST)
    hint = did_you_mean(text, {str(v): None for v in ids})
    if not hint:
        sample = ", ".join(repr(v) for v in islice(seen, 3))
        hint = f" (its {plural(len(seen), 'viewer')} have ids like {sample})" if sample else " (it has no viewer events)"
    raise UsageError(f"unknown viewer {text!r}: no event of {source} names it{hint}")


def cmd_explain(args: argparse.Namespace) -> int:
    check_stdin(args)
    rules = load_rules(args.rules)
    if args.room is not None:
        return _cmd_explain_room(args, rules)
    if args.rule is None:
        raise UsageError("explain needs VIEWER and RULE (or --room ROOM and a room rule's name)")
    names = [r.name for r in rules.rules]
    if args.rule not in names:
        raise UsageError(f"unknown rule {args.rule!r} in {args.rules}{did_you_mean(args.rule, names)}"
                         f" (rules: {', '.join(names)})")
    rule = rules.rules[names.index(args.rule)]
    firings = _Firings(rule.name, args.viewer, len(rule.then))
    engine, replay, profiles, end = _replay(args, rules, firings)
    if profiles is not None:
        profiles.finish(replay.steps)
    viewer = resolve_viewer(args.viewer, replay.steps, profiles, replay.source)
    try:
        explanation = engine.explain(viewer, rule.name)
    except KeyError:
        raise DataError(f"viewer {viewer!r} sent events but the engine has forgotten it by then "
                        f"([engine] retention); explain an earlier time with --at") from None
    groups = firings.of(viewer)
    report = _report(args, replay, profiles, viewer, rule.name, end, groups, firings.dropped, explanation)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(_render(report, replay, groups, str(explanation)))
    return EXIT_OK if report["ok"] else EXIT_ERRORS


def _cmd_explain_room(args: argparse.Namespace, rules) -> int:
    """``--room ROOM RULE``: replay, then ``engine.explain_room(ROOM, RULE)`` and the rule's firings there."""
    if args.rule is not None and args.viewer is not None:
        raise UsageError("with --room, give the room rule's name only: segengine explain RULES EVENTS RULE --room ROOM")
    name = args.rule if args.rule is not None else args.viewer
    names = [r.name for r in rules.room_rules]
    if name not in names:
        raise UsageError(f"unknown room rule {name!r} in {args.rules}{did_you_mean(str(name), names)}"
                         f" (room rules: {', '.join(names) or 'none'})")
    rule = rules.room_rules[names.index(name)]
    firings = _Firings(name, "", len(rule.then))
    engine, replay, profiles, end = _replay(args, rules, firings)
    try:
        explanation = engine.explain_room(args.room, name)
    except KeyError as err:
        raise UsageError(f"room {args.room!r}: {err.args[0]}") from None
    groups = [g for g in firings.of("") if g[0].room == args.room]
    report = _report(args, replay, profiles, "", name, end, groups, firings.dropped, explanation)
    report["room"] = args.room
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return EXIT_OK if report["ok"] else EXIT_ERRORS
    text = _render(report, replay, groups, str(explanation))
    text = text.replace("viewer '' sent no event: it is known only from --profiles\n", "")
    print(text.replace("for viewer ''", f"in room {args.room!r}"))
    return EXIT_OK if report["ok"] else EXIT_ERRORS


def _replay(args: argparse.Namespace, rules, firings: "_Firings") -> tuple[Engine, Replay, Profiles | None, float | None]:
    """Replay the events file (up to ``--at``) watching ``firings``: (engine, replay, profiles, end time)."""
    stream, size = open_events(args.events)
    source = args.events if args.events != "-" else "<stdin>"
    until, after = None, None
    if args.at is not None:
        (until, after) = (args.at[1], None) if args.at[0] == "ts" else (None, args.at[1])
    try:
        engine = Engine(rules)
        profiles = load_profiles(engine, args.profiles, skip_errors=args.skip_errors) if args.profiles else None
        progress = Progress("replay", size, progress_enabled(args.progress))
        replay = Replay(engine, source, skip_errors=args.skip_errors, timeline_every=0.0, until=until,
                        after_first=after, watch=firings)
        for lines, nos in iter_chunks(stream, CHUNK_LINES, progress):
            replay.feed(lines, nos)
            if replay.done:
                break
        end = replay.until if replay.until is not None else replay.last_ts
        try:
            replay.finish(replay.until)
        except ValueError as err:  # --at outside the range of event times
            raise UsageError(f"--at: {err}") from None
        progress.close(size or 0, replay.lines)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    return engine, replay, profiles, end


def _report(args, replay: Replay, profiles: Profiles | None, viewer, rule: str, end: float | None,
            groups: list[list[Action]], dropped: int, explanation) -> dict[str, Any]:
    stats = replay.engine.stats()
    errors = (profiles.errors if profiles is not None else []) + replay.errors
    out: dict[str, Any] = {
        "ok": not (replay.rejected or (profiles is not None and profiles.rejected)),
        "errors": errors,
        "rules_file": args.rules, "events_file": replay.source,
        "events": stats["events"], "lines": replay.lines, "rejected": replay.rejected,
        "skipped": {"count": replay.rejected if replay.skip_errors else 0, "lines": replay.skipped_lines},
        "at": end, "at_given": args.at is not None, "stopped_early": replay.done,
        "viewer": viewer, "rule": rule,
        "fired": len(groups),
        "firings": [{"ts": g[0].ts, "at": round(replay.stream_offset(g[0]), 3), "room": g[0].room,
                     "actions": [{"action": a.action, "params": a.params} for a in g]} for g in groups],
        "firings_truncated": dropped > 0,
        "explanation": msgspec.json.decode(msgspec.json.encode(explanation)),
    }
    if profiles is not None:
        out["profiles"] = profiles.summary()
    replay.seconds = time.perf_counter() - replay.started
    out["seconds"] = round(replay.seconds, 3)
    return out


def _render(report: dict[str, Any], replay: Replay, groups: list[list[Action]], explanation: str) -> str:
    if report["at"] is None:
        upto = "no event was replayed"
    elif report["stopped_early"] or report["at_given"]:
        upto = f"up to ts {_ts(report['at'])} (--at)"
    else:
        upto = f"to the end of the stream (ts {_ts(report['at'])})"
    lines = [f"Replayed {plural(report['events'], 'event')} of {report['events_file']} through "
             f"{report['rules_file']}, {upto}"]
    if report["rejected"]:
        lines.append(f"  rejected events: {report['rejected']:,} (lines {', '.join(map(str, report['skipped']['lines'][:10]))})")
    if "profiles" in report:
        from .summary import render_profiles

        lines += render_profiles(report["profiles"])
    viewer, rule = report["viewer"], report["rule"]
    if viewer not in replay.steps:
        lines.append(f"viewer {viewer!r} sent no event: it is known only from --profiles")
    n = len(groups)
    if not n:
        lines.append(f"{rule} did not fire for viewer {viewer!r} during the replay")
    else:
        more = " (at least; only the first ones were kept)" if report["firings_truncated"] else ""
        lines.append(f"{rule} fired {'once' if n == 1 else f'{n:,} times'} for viewer {viewer!r} during the replay{more}:")
        half = FIRINGS_SHOWN // 2
        shown = groups if n <= FIRINGS_SHOWN else groups[:half] + groups[-half:]
        for i, g in enumerate(shown):
            if n > FIRINGS_SHOWN and i == half:
                lines.append(f"  ... {n - FIRINGS_SHOWN:,} more ...")
            acts = "; ".join(f"{a.action} {params_text(a.params)}".rstrip() for a in g)
            lines.append(f"  {clock(replay.stream_offset(g[0]))}  ts {_ts(g[0].ts)}  room {g[0].room}  {acts}")
    lines += ["", explanation]
    return "\n".join(lines)


def _ts(ts: float) -> str:
    return f"{ts:.3f}".rstrip("0").rstrip(".")
