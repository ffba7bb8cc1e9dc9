"""``segengine replay``: NDJSON events through a rules file in batches, and what its summary reports.

:class:`Replay` feeds chunks of lines to an engine (``ingest_many``), stops at bad events or skips
them, writes the actions as NDJSON and records the funnel, the segment timeline and the actions per
rule and per viewer; :meth:`Replay.summary` returns them as the JSON summary, which
:func:`segengine.cli.summary.render_replay` prints as text. ``until``/``after_first`` stop it at a
time and ``watch`` sees every list of actions (``segengine explain`` uses both). Memory grows with the number of
viewers, never with the number of events.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import IO, Any

import msgspec

from ..engine import Engine
from ..errors import EventError
from ..schema.events import ROOM_TYPES, Action
from .inputs import iter_chunks, load_rules, open_events
from .output import EXIT_ERRORS, EXIT_OK, DataError, UsageError
from .profiles import Profiles, load_profiles
from .progress import Progress, progress_enabled
from .summary import render_replay

FUNNEL = ("enter", "view", "click", "cart", "checkout", "pay")
_STEP_BIT = {t: 1 << i for i, t in enumerate(FUNNEL)}
_ENTER_BIT = _STEP_BIT["enter"]
CHUNK_LINES = 8192            # events per ingest_many call during replay
MAX_DWELL_LOOKUPS = 200_000   # kind table: mean dwell costs one engine.viewer() call per viewer
MAX_SKIPPED_LINES = 1_000     # line numbers of skipped events kept for the summary
SLOT_SECONDS = 300.0          # actions_by_slot: one count per 5 m slot of stream time, like room_slots


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
                 max_warnings: int = 10, until: float | None = None, after_first: float | None = None,
                 watch: Callable[[list[Action]], None] | None = None):
        self.engine = engine
        self.room_types = ROOM_TYPES | frozenset(engine.rules.room_types)  # events without a viewer
        self.source = source
        self.skip_errors = skip_errors
        self.out = out
        self.every = timeline_every
        self.keep = keep_actions
        self.max_warnings = max_warnings
        self.until = until            # feed only the events up to the first one stamped after this time
        self.after_first = after_first  # or after this many seconds past the first event's time
        self.done = False             # an event after `until` was met: the caller stops feeding
        self.watch = watch            # called with every list of actions (explain keeps some of them)
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
        self.actions_by_slot: dict[str, dict[str, Counter]] = {}  # room -> rule -> slot index -> actions
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
                if self.after_first is not None:
                    self.until = t0 + self.after_first
        if self.until is not None:
            cut = next((i for i, e in enumerate(lite) if (t := _num(e.ts)) is not None and t > self.until), None)
            if cut is not None:
                lines, lite, line_nos, self.done = lines[:cut], lite[:cut], line_nos[:cut], True
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
            if typ in self.room_types:
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
        if self.watch is not None:
            self.watch(actions)
        if self.out is not None:
            self.out.write(_encode_lines(actions))
        for a in actions:
            self.actions_per_rule[a.rule] += 1
            self.actions_per_viewer[a.viewer] += 1
            if a.rule not in self.first_of_rule:
                self.first_of_rule[a.rule] = a
            by_rule = self.actions_by_slot.setdefault(a.room, {})
            by_rule.setdefault(a.rule, Counter())[max(0, int(self.stream_offset(a) // SLOT_SECONDS))] += 1
        if self.keep:
            self.kept.extend(actions)

    def _sample(self, ts: float) -> None:
        assert self.next_sample is not None and self.first_ts is not None
        self.timeline.append({"at": round(self.next_sample - self.first_ts, 3),
                              "segments": {s: self.engine.segment_size(s) for s in self.engine.rules.segments}})
        while self.next_sample <= ts:
            self.next_sample += self.every

    def finish(self, until: float | None = None) -> None:
        """Fire what is due at the last event time, or at ``until`` if given (results do not depend on when we do)."""
        if until is not None:
            self._actions(self.engine.advance(until))
        elif self.last_ts is not None:
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
                     "suppressed": stats["suppressed"][r.name]} for r in [*rules.rules, *rules.room_rules]]
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
            "first_actions": [self.action_json(a) for a in self.first_of_rule.values()],
            "seconds": round(self.seconds, 3),
            "events_per_second": round(stats["events"] / self.seconds) if self.seconds > 0 else None,
        }
        out["room_metrics"] = {room: {"metrics": msgspec.to_builtins(engine.room(room)),
                                      "slots": [msgspec.to_builtins(m) for m in engine.room_slots(room)]}
                               for room in self.room_start} if rules.room_metrics else {}  # docs/rooms.md
        if not rules.room_metrics:
            out["room_metrics_off"] = True  # [engine] room_metrics = false: the report says so
        out["actions_by_slot"] = self.slot_counts()
        for room, by_rule in out["actions_by_slot"].items():  # as many slots as room_slots has
            n = len(out["room_metrics"].get(room, {}).get("slots", ()))
            for counts in by_rule.values():
                counts.extend([0] * (n - len(counts)))
        if self.kinds:
            out["kinds"] = self.kind_table()
        held = [r.name for r in rules.rules if r.enabled and r.holdout]  # holdout experiments (guards/holdout.py)
        if held:
            out["outcomes"] = [msgspec.to_builtins(engine.outcomes(name)) for name in held]
        return out

    def slot_counts(self) -> dict[str, dict[str, list[int]]]:
        """``actions_by_slot``: {room: {rule: [actions per 5 m slot of the room's stream time]}}."""
        out: dict[str, dict[str, list[int]]] = {}
        for room, by_rule in self.actions_by_slot.items():
            n = 1 + max(max(c) for c in by_rule.values())
            out[room] = {rule: [c.get(i, 0) for i in range(n)] for rule, c in sorted(by_rule.items())}
        return out

    def action_json(self, a: Action) -> dict[str, Any]:
        """An action as the summary shows it: ``at`` is seconds since its room's stream started."""
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


def cmd_replay(args: argparse.Namespace) -> int:
    if args.json and args.output == "-":
        raise UsageError("--json and -o - both want stdout: write the actions to a file")
    check_stdin(args)
    rules = load_rules(args.rules)
    stream, size = open_events(args.events)
    out: IO[bytes] | None = None
    try:
        engine = Engine(rules)
        profiles = load_profiles(engine, args.profiles, skip_errors=args.skip_errors) if args.profiles else None
        if args.output == "-":
            out = sys.stdout.buffer
        elif args.output:
            try:
                out = open(args.output, "wb")
            except OSError as err:
                raise UsageError(f"cannot write {args.output!r}: {err.strerror}") from None
        progress = Progress("replay", size, progress_enabled(args.progress))
        metrics = _metrics(engine, getattr(args, "metrics_port", None))
        replay = Replay(engine if metrics is None else metrics.timed(engine), args.events if args.events != "-" else "<stdin>", skip_errors=args.skip_errors,
                        out=out, timeline_every=args.timeline)
        try:
            for lines, nos in iter_chunks(stream, args.chunk, progress):
                replay.feed(lines, nos)
                if metrics is not None:
                    metrics.refresh()
        except DataError as err:  # stopped at a bad event: --json still tells what was replayed
            progress.close(size or 0, replay.lines)
            replay.seconds = time.perf_counter() - replay.started
            err.payload = with_profiles(replay.summary(), profiles, replay)
            raise
        replay.finish()
        progress.close(size or 0, replay.lines)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
        if out is not None and out is not sys.stdout.buffer:
            out.close()
    summary = with_profiles(replay.summary(), profiles, replay)
    if getattr(args, "report", None):
        from .report import save

        save(summary, args.report)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(render_replay(summary), file=sys.stderr if args.output == "-" else sys.stdout)
    return EXIT_ERRORS if not summary["ok"] else EXIT_OK


def _metrics(engine: Engine, port: int | None):
    """``--metrics-port``: a Prometheus exporter on 127.0.0.1:PORT for the replay's duration."""
    if port is None:
        return None
    try:
        from ..metrics import Metrics
    except ImportError as err:
        raise UsageError(str(err)) from None
    metrics = Metrics(engine, sample_every=1)
    try:
        metrics.serve(port)
    except OSError as err:
        raise UsageError(f"cannot serve metrics on 127.0.0.1:{port}: {err.strerror}") from None
    return metrics


def check_stdin(args: argparse.Namespace) -> None:
    """Events and profiles cannot both come from stdin."""
    if args.events == "-" and getattr(args, "profiles", None) == "-":
        raise UsageError("the events and --profiles cannot both be read from stdin ('-'): give one of them as a file")


def with_profiles(summary: dict[str, Any], profiles: Profiles | None, replay: Replay) -> dict[str, Any]:
    """The summary with what ``--profiles`` did (``profiles``), its bad lines among the ``errors``."""
    if profiles is None:
        return summary
    profiles.finish(replay.steps)
    summary["profiles"] = profiles.summary()
    if profiles.rejected:
        summary["ok"] = False
        summary["errors"] = profiles.errors + summary["errors"]
    return summary
