"""The ``segengine`` command line (docs/cli.md): check, replay, simulate, demo, bench, test.

Exit codes: 0 ok; 1 rule or data errors (a bad rules file, a malformed event, a failing
rule test); 2 usage (bad arguments, an unreadable input file). Errors go to stderr, rules
errors as ``FILE:LINE:COL: message`` with the source line and a caret. ``--json`` prints
machine-readable results on stdout. Progress bars go to stderr, only when it is a terminal
or ``--progress`` is given.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from itertools import chain, islice
from pathlib import Path
from typing import IO, Any

import msgspec

from .. import __version__
from ..runtime.actions import format_value
from ..engine import Engine
from ..errors import EventError, RulesError
from ..schema.events import ROOM_TYPES, UTF8_BOM, Action
from ..rules.load import RuleSet, load_rules_file

__all__ = ["main"]

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
FUNNEL = ("enter", "view", "click", "cart", "checkout", "pay")
_STEP_BIT = {t: 1 << i for i, t in enumerate(FUNNEL)}
_ENTER_BIT = _STEP_BIT["enter"]
CHUNK_LINES = 8192            # events per ingest_many call during replay
DEMO_VIEWERS = 5_000          # keeps `segengine demo` at ~2 s once the rules are compiled (docs/cli.md)
KIND_LABELS = {"passerby": "passers-by", "watcher": "watchers", "fan": "fans"}
MAX_DWELL_LOOKUPS = 200_000   # kind table: mean dwell costs one engine.viewer() call per viewer
MAX_SKIPPED_LINES = 1_000     # line numbers of skipped events kept for the summary
SKIPPED_SHOWN = 10            # ... of which the text summary shows this many


class UsageError(Exception):
    """Bad arguments or an unreadable input: exit code 2."""


class DataError(Exception):
    """A malformed event or file content: exit code 1. ``str`` is the full message.

    ``info`` is the error as JSON (``kind``, ``message``, ``file``, ``line``, ``col``, ``field``,
    ``source_line``); ``payload`` holds more keys for the ``--json`` output (the summary of
    what was replayed before the stop).
    """

    def __init__(self, message: str, info: dict[str, Any] | None = None):
        super().__init__(message)
        self.info = info or {"kind": "data", "message": message}
        self.payload: dict[str, Any] = {}


# --- small helpers -------------------------------------------------------------------------------
def bundled_rules() -> Path:
    """``segengine/data/live_room.toml``, the copy of examples/live_room.toml shipped in the package."""
    return Path(__file__).resolve().parent / "data" / "live_room.toml"


def clock(seconds: float) -> str:
    """3725 -> ``1:02:05``."""
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def span(seconds: float) -> str:
    """A duration for prose: ``45 s``, ``12 min``, ``3.0 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def tenths(part: float, whole: float) -> int:
    """``part / whole`` in tenths of a percent, rounded once, half up: 939/2000 -> 470."""
    if isinstance(part, int) and isinstance(whole, int):
        return (2000 * part + whole) // (2 * whole)     # exact integer arithmetic
    return math.floor(1000.0 * part / whole + 0.5)


def pct(part: float, whole: float) -> str:
    """``46.9 %``: one rounding of the exact ratio (``-`` when ``whole`` is 0)."""
    return f"{tenths(part, whole) / 10:.1f} %" if whole else "-"


def _diagnostic_json(d: Any) -> dict[str, Any]:
    return {"kind": "rules", "file": d.file, "line": d.line, "col": d.col, "message": d.message,
            "source_line": d.source_line}


def _params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in params.items() if v != "")


class Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second; no dependency."""

    WIDTH = 28

    def __init__(self, label: str, total: float | None, enabled: bool, stream: IO[str] | None = None):
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.last_draw = 0.0
        self.drawn = False

    def update(self, done: float, count: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.1:
            return
        self.last_draw = now
        self._draw(done, count, now)

    def _draw(self, done: float, count: int, now: float) -> None:
        elapsed = now - self.started
        rate = f"{count / elapsed:,.0f}/s" if elapsed > 0 else ""
        if self.total:
            frac = min(1.0, max(0.0, done / self.total))
            fill = int(frac * self.WIDTH)
            bar = f"[{'#' * fill}{'.' * (self.WIDTH - fill)}] {frac * 100:3.0f}%"
        else:
            bar = ""
        self.stream.write(f"\r{self.label} {bar} {count:,} events {elapsed:.1f} s {rate}   ")
        self.stream.flush()
        self.drawn = True

    def close(self, done: float, count: int) -> None:
        if self.enabled:
            self._draw(done, count, time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()


def _progress_enabled(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else flag


def _load_rules(path: str) -> RuleSet:
    if not Path(path).is_file():
        raise UsageError(f"cannot read rules file {path!r}: no such file")
    return load_rules_file(path)


# --- replay ----------------------------------------------------------------------------------------
class _Lite(msgspec.Struct):
    """The few event fields the summary needs, decoded without validation (the engine validates)."""

    type: Any = None
    viewer: Any = None
    room: Any = None
    ts: Any = None
    kind: Any = None


_lite_batch = msgspec.json.Decoder(list[_Lite])
_lite_one = msgspec.json.Decoder(_Lite)
_encode_lines = msgspec.json.Encoder().encode_lines


def _decode_lite(lines: list[bytes]) -> list[_Lite]:
    try:
        return _lite_batch.decode(b"[" + b",".join(lines) + b"]")
    except msgspec.DecodeError:
        out = []
        for line in lines:
            try:
                out.append(_lite_one.decode(line))
            except msgspec.DecodeError:
                out.append(_Lite())
        return out


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


class Replay:
    """Feeds NDJSON lines to an engine in batches and keeps what the summary needs.

    Memory grows with the number of viewers (one small int per viewer for the funnel),
    never with the number of events.
    """

    def __init__(self, engine: Engine, source: str = "<events>", *, skip_errors: bool = False,
                 out: IO[bytes] | None = None, timeline_every: float = 1800.0, keep_actions: bool = False,
                 max_warnings: int = 10):
        self.engine = engine
        self.source = source
        self.skip_errors = skip_errors
        self.out = out
        self.every = timeline_every
        self.keep = keep_actions
        self.max_warnings = max_warnings
        self.steps: dict[Any, int] = {}           # viewer -> bit set of funnel steps reached
        self.step_events: Counter = Counter()
        self.kinds: dict[Any, str] = {}           # viewer -> true kind (simulated files only)
        self.room_start: dict[str, float] = {}
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.next_sample: float | None = None
        self.timeline: list[dict[str, Any]] = []
        self.actions_per_rule: Counter = Counter()
        self.actions_per_viewer: Counter = Counter()
        self.first_of_rule: dict[str, Action] = {}
        self.kept: list[Action] = []
        self.lines = 0
        self.rejected = 0
        self.warnings: list[str] = []
        self.errors: list[dict[str, Any]] = []    # the first max_warnings bad events, as JSON
        self.skipped_lines: list[int] = []        # line numbers of the first MAX_SKIPPED_LINES bad events
        self.started = time.perf_counter()
        self.seconds = 0.0

    # feeding -------------------------------------------------------------------------------------
    def feed(self, lines: list[bytes], line_nos: list[int]) -> None:
        """Apply non-blank NDJSON lines, each ending in a newline, with their 1-based line numbers."""
        lite = _decode_lite(lines)
        if self.first_ts is None:
            t0 = next((t for e in lite if (t := _num(e.ts)) is not None), None)
            if t0 is not None:
                self.first_ts = t0
                self.next_sample = t0 + self.every if self.every > 0 else None
        pos, n = 0, len(lines)
        while pos < n:
            end = n
            if self.next_sample is not None:
                for i in range(pos, n):
                    t = _num(lite[i].ts)
                    if t is not None and t >= self.next_sample:
                        end = i
                        break
            self._apply(lines[pos:end], lite[pos:end], line_nos[pos:end])
            if end < n:
                self._sample(_num(lite[end].ts))  # type: ignore[arg-type]
            pos = end

    def _apply(self, lines: list[bytes], lite: list[_Lite], line_nos: list[int]) -> None:
        start = 0
        while start < len(lines):
            try:
                actions = self.engine.ingest_many(b"".join(lines[start:]))
            except EventError as err:
                bad = start + (err.index or 0)
                self._record(lite[start:bad])
                self._actions(getattr(err, "actions", []))
                if not self.skip_errors:  # the replay stops here: count the lines read up to this one
                    self.lines += bad + 1
                self._reject(lines[bad], line_nos[bad], err)
                start = bad + 1
                continue
            self._record(lite[start:])
            self._actions(actions)
            break
        self.lines += len(lines)

    def _reject(self, line: bytes, line_no: int, err: EventError) -> None:
        self.rejected += 1
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        col = 1
        if err.field:
            found = text.find(f'"{err.field}"')
            col = found + 1 if found >= 0 else 1
        where = f" - at `$.{err.field}`" if err.field else ""
        message = f"{self.source}:{line_no}:{col}: bad event: {err.reason}{where}"
        if len(text) <= 300:
            message += f"\n    {text}\n    {' ' * (col - 1)}^"
        info = {"kind": "event", "message": err.reason, "file": self.source, "line": line_no, "col": col,
                "field": err.field, "source_line": text if len(text) <= 300 else text[:300]}
        if not self.skip_errors:
            self.errors.append(info)
            raise DataError(f"{message}\nreplay stopped at line {line_no}; with --skip-errors it reports bad "
                            "events and goes on", info)
        if len(self.skipped_lines) < MAX_SKIPPED_LINES:
            self.skipped_lines.append(line_no)
        if len(self.warnings) < self.max_warnings:
            self.warnings.append(message)
            self.errors.append(info)
            print(message, file=sys.stderr)

    def _record(self, lite: list[_Lite]) -> None:
        steps, bits = self.steps, _STEP_BIT
        last = self.last_ts if self.last_ts is not None else -math.inf
        for e in lite:
            ts = e.ts
            if ts > last:
                last = ts
            typ, viewer = e.type, e.viewer
            if typ in ROOM_TYPES:
                if typ == "live_start" or e.room not in self.room_start:
                    self.room_start[e.room] = ts
                continue
            if e.room not in self.room_start:
                self.room_start[e.room] = ts
            bit = bits.get(typ, 0)
            steps[viewer] = steps.get(viewer, 0) | bit | _ENTER_BIT   # any event is an (implicit) enter
            if bit:
                self.step_events[typ] += 1
            if typ == "enter" and e.kind is not None:
                self.kinds[viewer] = str(e.kind)
        if last > -math.inf:
            self.last_ts = last

    def _actions(self, actions: list[Action]) -> None:
        if not actions:
            return
        if self.out is not None:
            self.out.write(_encode_lines(actions))
        for a in actions:
            self.actions_per_rule[a.rule] += 1
            self.actions_per_viewer[a.viewer] += 1
            if a.rule not in self.first_of_rule:
                self.first_of_rule[a.rule] = a
        if self.keep:
            self.kept.extend(actions)

    def _sample(self, ts: float) -> None:
        assert self.next_sample is not None and self.first_ts is not None
        self.timeline.append({"at": round(self.next_sample - self.first_ts, 3),
                              "segments": {s: self.engine.segment_size(s) for s in self.engine.rules.segments}})
        while self.next_sample <= ts:
            self.next_sample += self.every

    def finish(self) -> None:
        """Fire what is due at the last event time (SPEC: results do not depend on when we do)."""
        if self.last_ts is not None:
            self._actions(self.engine.advance(self.last_ts))
        self.seconds = time.perf_counter() - self.started

    # results -----------------------------------------------------------------------------------------
    def stream_offset(self, a: Action) -> float:
        return a.ts - self.room_start.get(a.room, self.first_ts or a.ts)

    def summary(self) -> dict[str, Any]:
        engine = self.engine
        stats = engine.stats()
        rules = engine.rules
        per_rule = [{"rule": r.name, "fired": stats["fired"][r.name], "actions": self.actions_per_rule[r.name],
                     "suppressed": stats["suppressed"][r.name]} for r in rules.rules]
        funnel = []
        for i, step in enumerate(FUNNEL):
            bit = _STEP_BIT[step]
            viewers = sum(1 for m in self.steps.values() if m & bit)
            row: dict[str, Any] = {"step": step, "viewers": viewers, "events": self.step_events[step]}
            if i:  # exact ratios of the counts; the text report rounds each once (render_funnel)
                prev, entered = funnel[-1]["viewers"], funnel[0]["viewers"]
                row["of_previous"] = viewers / prev if prev else None
                row["drop_off"] = (prev - viewers) / prev if prev else None
                row["of_entered"] = viewers / entered if entered else None
            funnel.append(row)
        total_actions = sum(self.actions_per_rule.values())
        out: dict[str, Any] = {
            "ok": not self.rejected, "errors": self.errors,
            "rules_file": rules.filename, "events_file": self.source,
            "events": stats["events"], "lines": self.lines, "rejected": self.rejected, "late": stats["late"],
            "skipped": {"count": self.rejected if self.skip_errors else 0, "lines": self.skipped_lines},
            "viewers": stats["viewers"], "rooms": len(self.room_start),
            "stream_seconds": round((self.last_ts or 0) - (self.first_ts or 0), 3),
            "actions": total_actions,
            "viewers_with_actions": len(self.actions_per_viewer),
            "rules": per_rule,
            "segments": {s: engine.segment_size(s) for s in rules.segments},
            "timeline": self.timeline,
            "funnel": funnel,
            "first_actions": [self._action_json(a) for a in self.first_of_rule.values()],
            "seconds": round(self.seconds, 3),
            "events_per_second": round(stats["events"] / self.seconds) if self.seconds > 0 else None,
        }
        if self.kinds:
            out["kinds"] = self.kind_table()
        return out

    def _action_json(self, a: Action) -> dict[str, Any]:
        d = {"at": round(self.stream_offset(a), 3), "ts": a.ts, "rule": a.rule, "action": a.action,
             "viewer": a.viewer, "room": a.room, "params": a.params}
        if a.viewer in self.kinds:
            d["kind"] = self.kinds[a.viewer]
        return d

    def kind_table(self) -> dict[str, dict[str, Any]]:
        """Per true viewer kind: how many, how many got an action, how many bought, mean dwell."""
        table: dict[str, dict[str, Any]] = {}
        with_dwell = len(self.kinds) <= MAX_DWELL_LOOKUPS
        for viewer, kind in self.kinds.items():
            row = table.setdefault(kind, {"viewers": 0, "targeted": 0, "actions": 0, "buyers": 0, "dwell": 0.0})
            row["viewers"] += 1
            n = self.actions_per_viewer.get(viewer, 0)
            row["actions"] += n
            row["targeted"] += n > 0
            row["buyers"] += bool(self.steps.get(viewer, 0) & _STEP_BIT["pay"])
            if with_dwell:
                try:
                    row["dwell"] += self.engine.viewer(viewer)["features"].get("total_dwell", 0.0)
                except KeyError:
                    pass
        for row in table.values():
            dwell = row.pop("dwell")
            row["mean_dwell"] = round(dwell / row["viewers"], 1) if with_dwell and row["viewers"] else None
        return table


def iter_chunks(stream: IO[bytes], size: int, progress: Progress | None = None) -> Iterator[tuple[list[bytes], list[int]]]:
    """Non-blank lines of ``stream`` in chunks of ``size``, with their 1-based line numbers.

    A UTF-8 byte order mark opening the stream is dropped.
    """
    lines: list[bytes] = []
    nos: list[int] = []
    done = 0
    rest = iter(stream)
    first = next(rest, b"")
    if first[:3] == UTF8_BOM:
        first = first[3:]
    for no, line in enumerate(chain((first,), rest), 1):
        done += len(line)
        if line.strip():
            lines.append(line)
            nos.append(no)
            if len(lines) >= size:
                yield lines, nos
                if progress:
                    progress.update(done, no)
                lines, nos = [], []
    if lines:
        if not lines[-1].endswith(b"\n"):
            lines[-1] += b"\n"
        yield lines, nos


# --- text output ---------------------------------------------------------------------------------------
def render_rules(summary: dict[str, Any]) -> list[str]:
    width = max([len(r["rule"]) for r in summary["rules"]] + [10])
    out = ["Actions per rule", f"  {'rule':<{width}}  {'fired':>7}  {'actions':>8}  {'suppressed (once / cooldown / budget)'}"]
    fired_total = 0
    for r in summary["rules"]:
        s = r["suppressed"]
        supp = sum(s.values())
        detail = f"{supp:>7,}  ({s['once']:,} / {s['cooldown']:,} / {s['budget']:,})" if supp else f"{0:>7}"
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
    lines.append(f"  {summary['actions']:,} actions to {summary['viewers_with_actions']:,} viewers")
    lines += [""] + render_rules(summary) + [""] + render_segments(summary) + [""] + render_funnel(summary)
    if "kinds" in summary:
        lines += ["", "Viewer kinds (from the `kind` field of enter events)"] + render_kinds(summary["kinds"])
    return "\n".join(lines)


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


# --- commands ---------------------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    """Check a rules file, a rule-test file (``*.test.toml``), or every ``*.toml`` in a directory."""
    path = Path(args.rules)
    if path.is_dir():
        # rules files first, then rule-test files (which name a rules file, maybe one of these)
        files = sorted((p for p in path.glob("*.toml") if p.is_file()),
                       key=lambda p: (p.name.endswith(".test.toml"), p.name))
        if not files:
            raise UsageError(f"no *.toml files in directory {args.rules!r}")
        names = [str(p) for p in files]
    elif path.is_file():
        names = [args.rules]
    else:
        raise UsageError(f"cannot read rules file {args.rules!r}: no such file or directory")
    results, seen, failed = [], set(), 0
    for name in names:
        result, report = _check_file(name, args.compile)
        results.append(result)
        if result["ok"]:
            if not args.json:
                print(report)
            continue
        failed += 1
        # a test file repeats the errors of its rules file: print each diagnostic once
        fresh = [d for d in report if (d.file, d.line, d.col, d.message) not in seen]
        seen.update((d.file, d.line, d.col, d.message) for d in report)
        n = len(report)
        text = "\n".join(str(d) for d in fresh)
        if len(fresh) < n:
            k = n - len(fresh)
            text += ("\n" if text else "") + f"({plural(k, 'error')} of the rules file it names, reported above)"
        print(f"{text}\n{n} error{'s' if n != 1 else ''} in {name}", file=sys.stderr)
    if args.json:
        print(json.dumps(results[0] if not path.is_dir() else results, indent=2))
    elif len(names) > 1:
        print(f"checked {plural(len(names), 'file')} in {args.rules}: {len(names) - failed} ok, {failed} with errors")
    return EXIT_ERRORS if failed else EXIT_OK


def _check_file(name: str, compile_: bool) -> tuple[dict[str, Any], Any]:
    """(JSON result, the ok line or the list of diagnostics) for one file; prints nothing."""
    if name.endswith(".test.toml"):
        return _check_test_file(name)
    try:
        rules = load_rules_file(name)
    except RulesError as err:
        return {"file": name, "ok": False, "errors": [_diagnostic_json(d) for d in err.diagnostics]}, err.diagnostics
    compiled = 0.0
    if compile_:
        started = time.perf_counter()
        Engine(rules).warmup()
        compiled = time.perf_counter() - started
    n_event = sum(r.is_event_rule for r in rules.rules)
    result = {"file": name, "ok": True, "errors": [],
              "rules": [r.name for r in rules.rules], "segments": list(rules.segments),
              "profile": list(rules.profile), "categories": list(rules.categories),
              "event_types": list(rules.event_types)}
    line = (f"{name}: ok: {plural(len(rules.rules), 'rule')} ({len(rules.rules) - n_event} state, "
            f"{n_event} event), {plural(len(rules.segments), 'segment')}, "
            f"{plural(len(rules.profile), 'profile attribute')}"
            + (f"; compiled in {compiled:.1f} s" if compile_ else ""))
    return result, line


def _check_test_file(name: str) -> tuple[dict[str, Any], Any]:
    """A rule-test file is checked as one (its keys, times, names and its rules file), not run."""
    from ..testing.ruletest import load_suite

    try:
        suite = load_suite(name)
    except RulesError as err:
        return {"file": name, "ok": False, "errors": [_diagnostic_json(d) for d in err.diagnostics]}, err.diagnostics
    result = {"file": name, "ok": True, "errors": [], "rules_file": suite.rules_path,
              "tests": [case.name for case in suite.cases]}
    line = f"{name}: ok: {plural(len(suite.cases), 'rule test')} of {suite.rules_path} (run them with segengine test)"
    return result, line


def _open_events(path: str) -> tuple[IO[bytes], int | None]:
    if path == "-":
        return sys.stdin.buffer, None
    try:
        f = open(path, "rb")
    except OSError as err:
        raise UsageError(f"cannot read events file {path!r}: {err.strerror}") from None
    try:
        size = os.fstat(f.fileno()).st_size
    except OSError:
        size = None
    return f, size


def cmd_replay(args: argparse.Namespace) -> int:
    if args.json and args.output == "-":
        raise UsageError("--json and -o - both want stdout: write the actions to a file")
    rules = _load_rules(args.rules)
    stream, size = _open_events(args.events)
    out: IO[bytes] | None = None
    try:
        if args.output == "-":
            out = sys.stdout.buffer
        elif args.output:
            try:
                out = open(args.output, "wb")
            except OSError as err:
                raise UsageError(f"cannot write {args.output!r}: {err.strerror}") from None
        engine = Engine(rules)
        progress = Progress("replay", size, _progress_enabled(args.progress))
        replay = Replay(engine, args.events if args.events != "-" else "<stdin>", skip_errors=args.skip_errors,
                        out=out, timeline_every=args.timeline)
        try:
            for lines, nos in iter_chunks(stream, args.chunk, progress):
                replay.feed(lines, nos)
        except DataError as err:  # stopped at a bad event: --json still tells what was replayed
            progress.close(size or 0, replay.lines)
            replay.seconds = time.perf_counter() - replay.started
            err.payload = replay.summary()
            raise
        replay.finish()
        progress.close(size or 0, replay.lines)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
        if out is not None and out is not sys.stdout.buffer:
            out.close()
    summary = replay.summary()
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(render_replay(summary), file=sys.stderr if args.output == "-" else sys.stdout)
    return EXIT_ERRORS if replay.rejected else EXIT_OK


def _simulate(viewers: int, hours: float, rooms: int, seed: int, with_kind: bool, string_ids: bool,
              progress: Progress, **options: Any) -> Iterator[bytes]:
    """NDJSON blocks of the standard workload (the same bytes as ``simulate.write_ndjson``)."""
    from ..testing.simulate import iter_events

    start = 1_700_000_000.0
    events = iter_events(viewers=viewers, hours=hours, rooms=rooms, seed=seed, start_ts=start,
                         viewer_ids="str" if string_ids else "int", with_kind=with_kind, **options)
    n = 0
    while batch := list(islice(events, 1024)):
        n += len(batch)
        progress.update(batch[-1]["ts"] - start, n)
        yield _encode_lines(batch)
    progress.close(hours * 3600.0, n)


def cmd_simulate(args: argparse.Namespace) -> int:
    _check_workload(args)
    if args.output is None and sys.stdout.isatty():  # as gzip and zstd refuse to write to a terminal
        raise UsageError("not writing NDJSON to a terminal (the default run is about 65 MB): write it to a file "
                         "with -o FILE, or pipe it (segengine simulate | segengine replay RULES -); "
                         "-o - writes to stdout anyway")
    from ..testing.simulate import rehearsal_options

    try:  # --schedule, --profiles-out
        options, profiles = rehearsal_options(args.schedule, args.profiles_out, args.output)
    except ValueError as err:
        raise UsageError(str(err)) from None
    progress = Progress("simulate", args.hours * 3600.0, _progress_enabled(args.progress))
    started = time.perf_counter()
    n = 0
    if args.output in (None, "-"):
        out = sys.stdout.buffer
    else:
        try:
            out = open(args.output, "wb")
        except OSError as err:
            if profiles is not None:
                profiles.out.close()
            raise UsageError(f"cannot write {args.output!r}: {err.strerror}") from None
    try:
        for block in _simulate(args.viewers, args.hours, args.rooms, args.seed, args.with_kind, args.string_ids, progress,
                               **options):
            out.write(block)
            n += block.count(b"\n")
        out.flush()
        if profiles is not None:
            profiles.flush()
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        if profiles is not None:
            profiles.out.close()
    if args.output not in (None, "-"):
        info = {"file": args.output, "events": n, "viewers": args.viewers, "hours": args.hours, "rooms": args.rooms,
                "seed": args.seed, "seconds": round(time.perf_counter() - started, 3)}
        if profiles is not None:
            info.update(profiles_file=args.profiles_out, profiles=profiles.count)
        if args.schedule is not None:
            info["schedule"] = args.schedule
        print(json.dumps(info) if args.json else
              f"wrote {n:,} events ({args.viewers:,} viewers, {args.hours:g} h, {args.rooms} room"
              f"{'s' if args.rooms != 1 else ''}, seed {args.seed}) to {args.output}"
              + (f"; {profiles.count:,} profiles to {args.profiles_out}" if profiles is not None else ""))
    return EXIT_OK


def _check_workload(args: argparse.Namespace) -> None:
    if args.viewers < 0:
        raise UsageError("--viewers must be >= 0")
    if not (0 < args.hours < math.inf):
        raise UsageError("--hours must be a positive number")
    if args.rooms < 1:
        raise UsageError("--rooms must be >= 1")


def cmd_demo(args: argparse.Namespace) -> int:
    _check_workload(args)
    rules_path = Path(args.rules) if args.rules else bundled_rules()
    rules = _load_rules(str(rules_path))
    show = _progress_enabled(args.progress)
    if show:
        print("compiling the rules (cached after the first run) ...", file=sys.stderr, flush=True)
    engine = Engine(rules).warmup()
    levels = _demo_profiles(engine, args.viewers, args.seed)
    progress = Progress("demo", args.hours * 3600.0, show)
    replay = Replay(engine, "<simulated>", timeline_every=1800.0, keep_actions=True)
    line_no = 0
    for block in _simulate(args.viewers, args.hours, args.rooms, args.seed, True, False, progress):
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


DEMO_LEVELS = {"low": 0.3, "mid": 0.5, "high": 0.2}


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
            "actions": [replay._action_json(a) for a in replay.kept if a.viewer == viewer][:8]}


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
        return f"  {clock(a['at'])}  {who}{a['action']:<{aw}}  by {a['rule']:<{rw}}  {_params_text(a['params'])}".rstrip()

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
    return "\n".join(out)


def repo_root() -> Path:
    """The parent of the ``segengine`` package directory: the source tree in an editable install."""
    return Path(__file__).resolve().parent.parent


def cmd_bench(args: argparse.Namespace) -> int:
    root = repo_root()
    if not (root / "benchmarks" / "run.py").is_file():
        print(f"segengine: error: the benchmark suite (benchmarks/run.py) is not next to the package at {root}.\n"
              "It ships with the source tree only: clone the repository and install it with "
              "`pip install -e .`, then run `segengine bench` from there.", file=sys.stderr)
        return EXIT_USAGE
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    run = importlib.import_module("benchmarks.run")
    argv = (["--quick"] if args.quick else []) + (["--json", args.json] if args.json else []) + list(args.rest)
    try:
        return int(run.main(argv) or 0)
    except SystemExit as exit_:            # the suite's own argparse
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE


def cmd_test(args: argparse.Namespace) -> int:
    from ..testing.ruletest import format_report, load_suite, run_suite

    reports = []
    status = EXIT_OK
    for path in args.files:
        if not Path(path).is_file():
            raise UsageError(f"cannot read test file {path!r}: no such file")
        try:
            suite = load_suite(path)
        except RulesError as err:
            n = len(err.diagnostics)
            print(f"{err}\n{n} error{'s' if n != 1 else ''}; no tests run from {path}", file=sys.stderr)
            status = EXIT_ERRORS
            reports.append({"file": path, "error": str(err), "passed": 0, "failed": 0, "tests": []})
            continue
        report = run_suite(suite)
        if not report.ok:
            status = EXIT_ERRORS
        if args.json:
            reports.append(report.to_json())
        else:
            print(format_report(report, verbose=args.verbose))
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
    return status


def cmd_compile(args: argparse.Namespace) -> int:
    """Write the generated kernel module (``--emit``), or compile it and tell where it is cached."""
    from .. import config
    from ..compiler import compile_rules, module_source
    from ..kernels.primitives import PURE_PYTHON

    if args.json and args.emit == "-":
        raise UsageError("--json and --emit - both want stdout: emit to a file")
    rules = _load_rules(args.rules)
    if args.emit is not None:
        source = module_source(rules)
        lines = source.count("\n")
        if args.emit == "-":
            sys.stdout.write(source)
            return EXIT_OK
        try:
            Path(args.emit).write_text(source, encoding="utf-8")
        except OSError as err:
            raise UsageError(f"cannot write {args.emit!r}: {err.strerror}") from None
        if args.json:
            print(json.dumps({"file": args.rules, "ok": True, "emit": args.emit, "lines": lines}, indent=2))
        else:
            print(f"{args.rules}: wrote the generated kernel module ({lines:,} lines) to {args.emit}")
        return EXIT_OK
    started = time.perf_counter()
    module = compile_rules(rules).path  # generated and imported; Numba compiles at the first call
    # Numba keeps the machine code next to the module, in __pycache__ (index files *.nbi)
    cached = any((module.parent / "__pycache__").glob(f"{module.stem}.*.nbi"))
    Engine(rules).warmup()  # every kernel an engine calls, compiled or loaded from the cache
    seconds = time.perf_counter() - started
    lines = module.read_text(encoding="utf-8").count("\n")
    how = ("loaded as plain Python (NUMBA_DISABLE_JIT=1: nothing compiled)" if PURE_PYTHON
           else "loaded from the compile cache" if cached else "compiled")
    if args.json:
        print(json.dumps({"file": args.rules, "ok": True, "seconds": round(seconds, 3), "module": str(module),
                          "lines": lines, "cache_dir": str(config.cache_dir()), "jit": not PURE_PYTHON,
                          "cached": cached and not PURE_PYTHON}, indent=2))
    else:
        where = "SEGENGINE_CACHE_DIR" if os.environ.get("SEGENGINE_CACHE_DIR") else "set SEGENGINE_CACHE_DIR to move it"
        print(f"{args.rules}: {how} in {seconds:.1f} s\n"
              f"  kernel module: {module} ({lines:,} lines)\n"
              f"  cache directory: {config.cache_dir()} ({where})")
    return EXIT_OK


# --- the parser ----------------------------------------------------------------------------------------------
def _duration(text: str) -> float:
    from ..testing.ruletest import parse_time

    try:
        return parse_time(text if any(c.isalpha() for c in text) else float(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segengine", description="In-process rule engine for live-stream e-commerce audience targeting.",
        epilog="Exit codes: 0 ok, 1 rule or data errors, 2 usage. Docs: docs/cli.md")
    parser.add_argument("--version", action="version", version=f"segengine {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    progress_flag = argparse.ArgumentParser(add_help=False)
    progress_flag.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                               help="progress bar on stderr (default: only when stderr is a terminal)")

    p = sub.add_parser("check", parents=[json_flag],
                       help="check a rules file (or every *.toml in a directory); report every error with its position",
                       description="Load and type-check a rules file, a rule-test file (*.test.toml, checked, not run) "
                                   "or every *.toml in a directory. Errors: FILE:LINE:COL: message, source line, caret.")
    p.add_argument("rules", metavar="RULES", help="rules file (TOML), rule-test file, or a directory of them")
    p.add_argument("--compile", action="store_true", help="also compile the kernels (fills the cache)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("replay", parents=[json_flag, progress_flag], help="run an NDJSON event file through rules",
                       description="Stream EVENTS (NDJSON, '-' for stdin) through RULES in batches, write the actions "
                                   "as NDJSON and print a summary: actions per rule, segment sizes, funnel.")
    p.add_argument("rules", metavar="RULES", help="rules file (TOML)")
    p.add_argument("events", metavar="EVENTS.jsonl", help="events, one JSON object per line ('-': stdin)")
    p.add_argument("-o", "--output", metavar="ACTIONS.jsonl", help="write the actions here as NDJSON ('-': stdout)")
    p.add_argument("--skip-errors", action="store_true",
                   help="report malformed events and go on (exit code 1 at the end) instead of stopping")
    p.add_argument("--chunk", type=_positive_int, default=CHUNK_LINES, metavar="N",
                   help=f"events per ingest_many call (default {CHUNK_LINES})")
    p.add_argument("--timeline", type=_duration, default=1800.0, metavar="DURATION",
                   help="sample segment sizes every DURATION of event time (default 30m; 0: off)")
    p.set_defaults(func=cmd_replay)

    workload = argparse.ArgumentParser(add_help=False)
    workload.add_argument("--viewers", type=int, default=10_000, metavar="N", help="viewers arriving (default 10000)")
    workload.add_argument("--hours", type=float, default=3.0, metavar="H", help="stream length (default 3)")
    workload.add_argument("--rooms", type=int, default=1, metavar="R", help="rooms (default 1)")
    workload.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")

    p = sub.add_parser("simulate", parents=[workload, json_flag, progress_flag],
                       help="write the standard synthetic workload as NDJSON",
                       description="Synthetic live-room events (the benchmark workload), deterministic for a seed, streamed. "
                                   "Refuses to write to a terminal without -o.")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write here instead of stdout ('-': stdout, even a terminal)")
    p.add_argument("--with-kind", action="store_true", help="add the true viewer kind to enter events")
    p.add_argument("--string-ids", action="store_true", help="viewer ids 'u1', 'u2' ... instead of integers")
    p.add_argument("--profiles-out", metavar="FILE",
                   help="give viewers profiles (age, gender, region, level, tz; level steers buying), write them here")
    p.add_argument("--schedule", metavar="FILE|builtin",
                   help="content schedule (TOML/JSON slots of category, price band, weak) that steers views and stays")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("demo", parents=[json_flag, progress_flag],
                       help="simulate a 3-hour room and tell what the bundled rules did",
                       description="Simulate a live room and replay it through the bundled example rules.")
    p.add_argument("--viewers", type=int, default=DEMO_VIEWERS, metavar="N", help=f"viewers (default {DEMO_VIEWERS})")
    p.add_argument("--hours", type=float, default=3.0, metavar="H", help="stream length (default 3)")
    p.add_argument("--rooms", type=int, default=1, metavar="R", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--rules", metavar="RULES", help="rules file (default: the bundled live_room.toml)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench", help="run the benchmark suite (source tree only)",
                       description="Run benchmarks/run.py from the source tree.")
    p.add_argument("--quick", action="store_true", help="small sizes only")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("test", parents=[json_flag], help="run rule tests (TOML) against their rules file",
                       description="Run the [[tests]] of each test file; see docs/cli.md for the format.")
    p.add_argument("files", metavar="RULES_TEST.toml", nargs="+", help="test files")
    p.add_argument("-v", "--verbose", action="store_true", help="also show the action count of passing tests")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("compile", parents=[json_flag],
                       help="compile rules and show where the kernel is cached, or write its source (--emit)",
                       description="Compile the kernels of RULES (or load them from the compile cache) and report the "
                                   "time and the generated module's path; with --emit, write the generated Python "
                                   "module instead (nothing is compiled). See docs/cli.md.")
    p.add_argument("rules", metavar="RULES", help="rules file (TOML)")
    p.add_argument("--emit", metavar="FILE", help="write the generated kernel module to FILE ('-': stdout)")
    p.set_defaults(func=cmd_compile)
    return parser


def _json_failure(args: argparse.Namespace, errors: list[dict[str, Any]], payload: dict[str, Any] | None = None) -> None:
    """With ``--json``, a command that fails still writes one JSON object on stdout."""
    if getattr(args, "json", None) is not True:   # bench's --json is a path
        return
    print(json.dumps({**(payload or {}), "ok": False, "errors": errors}, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 rule or data errors, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else EXIT_USAGE
    try:
        return args.func(args)
    except UsageError as err:
        print(f"segengine {args.command}: error: {err}", file=sys.stderr)
        _json_failure(args, [{"kind": "usage", "message": str(err)}])
        return EXIT_USAGE
    except RulesError as err:
        n = len(err.diagnostics)
        print(f"{err}\n{n} error{'s' if n != 1 else ''}", file=sys.stderr)
        _json_failure(args, [_diagnostic_json(d) for d in err.diagnostics])
        return EXIT_ERRORS
    except DataError as err:
        print(str(err), file=sys.stderr)
        _json_failure(args, [err.info], err.payload)
        return EXIT_ERRORS
    except BrokenPipeError:
        # The reader went away (`segengine simulate | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
