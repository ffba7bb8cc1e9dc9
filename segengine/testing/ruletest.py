"""Unit tests for rules files: the harness behind ``segengine test`` (like ``promtool test rules``).

A test file is TOML. It names the rules file, and each ``[[tests]]`` table gives profiles,
events (a compact ``every``/``until`` form writes repeated events such as heartbeats) and
what must come out: the actions, at their times, and the segment sizes, tags and viewer
features at given instants. Times are offsets from the test's ``start``, written as
``"90s"``, ``"5m"``, ``"1h30m"`` or a number of seconds::

    rules = "live_room.toml"              # relative to this file

    [[tests]]
    name = "cart_nudge five minutes in"
    only = ["cart_nudge"]                 # compare the actions of these rules (default: all)
    events = [
      { at = "0s", type = "enter", viewer = "u1" },
      { at = "30s", every = "30s", until = "10m", type = "heartbeat", viewer = "u1" },
      { at = "1m", type = "cart", viewer = "u1", item = "i001", price = 99.0 },
    ]
    actions = [
      { at = "5m", rule = "cart_nudge", viewer = "u1", params = { template = "cart_reminder" } },
    ]

    [[tests.expect]]
    at = "6m"
    segments = { watcher = 1 }
    tags = { u1 = [] }
    viewers = { u1 = { carted = true, dwell = "6m" } }

Each test runs on a fresh engine. Expected and produced actions are matched as multisets;
a failure lists both, marking what is missing (``-``) and what was not expected (``+``).
docs/cli.md documents the format in full.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine import Engine
from ..errors import EventError, RulesError
from ..schema.events import ROOM_TYPES, Action
from ..rules.load import RuleSet, TomlLoader, load_rules_file
from ..rules.suggest import did_you_mean

__all__ = ["Suite", "Case", "CaseResult", "Report", "load_suite", "run_suite", "run_file", "format_report",
           "parse_time", "format_time"]

DEFAULT_START = 1_700_000_000.0
DEFAULT_ROOM = "r1"
MAX_EVENTS = 1_000_000          # per test, after expanding repeats: guards against a typo in `every`
TIME_TOLERANCE = 1e-4           # seconds, when comparing action times

_TOP_KEYS = ("rules", "room", "start", "tests")
_TEST_KEYS = ("name", "room", "start", "until", "profiles", "events", "only", "actions", "expect")
_EVENT_KEYS = ("at", "type", "viewer", "room", "item", "category", "price", "amount", "text", "every", "until", "count")
_ACTION_KEYS = ("at", "rule", "action", "viewer", "room", "params")
_EXPECT_KEYS = ("at", "room", "segments", "tags", "viewers")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TIME_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)")


# --- times -------------------------------------------------------------------------------------
def parse_time(value: Any) -> float:
    """``"1h30m"`` -> 5400.0; a number is seconds. Raises ValueError with a readable message."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a time such as \"90s\" or \"1h30m\", got {value!r}")
    if not isinstance(value, str):
        seconds = float(value)
    else:
        pos, seconds, text = 0, 0.0, value.strip()
        if not text:
            raise ValueError("empty time: write e.g. \"0s\" or \"5m\"")
        while pos < len(text):
            m = _TIME_RE.match(text, pos)
            if not m:
                raise ValueError(f"invalid time {value!r}: expected numbers with units (ms, s, m, h, d), e.g. \"1h30m\"")
            seconds += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a time must be a finite number of seconds >= 0, got {value!r}")
    return seconds


def format_time(seconds: float) -> str:
    """3630.5 -> ``"1h30.5s"``: the inverse of :func:`parse_time`, to the millisecond."""
    ms = int(round(seconds * 1000))
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    parts = [f"{h}h"] if h else []
    if m:
        parts.append(f"{m}m")
    if rest or not parts:
        s, frac = divmod(rest, 1000)
        parts.append(f"{s}.{frac:03d}".rstrip("0").rstrip(".") + "s" if frac else f"{s}s")
    return sign + "".join(parts)


# --- the parsed test file ----------------------------------------------------------------------
@dataclass
class ExpectedAction:
    at: float
    rule: str
    action: str
    viewer: Any = None           # None: any viewer
    room: str | None = None
    params: dict[str, Any] | None = None  # a subset of the produced params
    line: int = 0


@dataclass
class Checkpoint:
    at: float
    line: int
    room: str | None = None
    segments: dict[str, int] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)
    viewers: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Case:
    name: str
    line: int
    start: float
    until: float
    profiles: dict[str, dict[str, Any]]
    events: list[tuple[float, dict, int]]   # (offset, event dict without ts, line), in time order
    only: tuple[str, ...] | None
    actions: list[ExpectedAction]
    checkpoints: list[Checkpoint]


@dataclass
class Suite:
    path: str
    rules_path: str
    rules: RuleSet
    cases: list[Case]


@dataclass
class CaseResult:
    case: Case
    failures: list[str]
    got: list[Action]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class Report:
    suite: Suite
    results: list[CaseResult]
    seconds: float

    @property
    def passed(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.suite.path, "rules": self.suite.rules_path, "passed": self.passed,
            "failed": self.failed, "seconds": round(self.seconds, 3),
            "tests": [{"name": r.case.name, "line": r.case.line, "ok": r.ok, "failures": r.failures,
                       "seconds": round(r.seconds, 4)} for r in self.results],
        }


# --- loading -------------------------------------------------------------------------------------
class _Loader(TomlLoader):
    """Turns a test file into a :class:`Suite`, collecting every problem with its position."""

    def __init__(self, text: str, filename: str):
        super().__init__(text, filename)
        self.rules: RuleSet | None = None

    def error(self, path: tuple, message: str, key: bool = False) -> None:
        """Report at the key (``key=True``) or the value of ``path``, else at its nearest ancestor."""
        (self.error_key if key else self.error_value)(path, message)

    def line(self, path: tuple) -> int:
        assert self.index is not None
        pos = self.index.key(path) or self.index.value(path)
        return pos[0] if pos else 0

    def time(self, value: Any, path: tuple) -> float | None:
        try:
            return parse_time(value)
        except ValueError as err:
            self.error(path, str(err))
            return None

    def array(self, value: Any, path: tuple, what: str) -> list:
        if not isinstance(value, list):
            self.error(path, f"{what} must be an array")
            return []
        return value

    def load(self, rules_loader=load_rules_file) -> Suite:
        data = self.parse()
        self.unknown_keys(data, (), _TOP_KEYS, "the test file")
        rules_path = data.get("rules")
        if not isinstance(rules_path, str) or not rules_path:
            self.error(("rules",), "the test file needs `rules = \"PATH\"`: the rules file to test, relative to this file")
            raise RulesError(self.diags)
        resolved = Path(rules_path)
        if not resolved.is_absolute():
            resolved = Path(self.filename).parent / resolved
        if not resolved.is_file():
            self.error(("rules",), f"rules file not found: {resolved}")
            raise RulesError(self.diags)
        self.rules = rules_loader(resolved)     # a RulesError here is about the rules file itself
        room = data.get("room", DEFAULT_ROOM)
        if not isinstance(room, str) or not room:
            self.error(("room",), "'room' must be a non-empty string")
            room = DEFAULT_ROOM
        start = self.number(data.get("start", DEFAULT_START), ("start",), "'start'")
        tests = data.get("tests", [])
        if not isinstance(tests, list) or not all(isinstance(t, dict) for t in tests):
            self.error(("tests",), "tests must be an array of tables: [[tests]]")
            tests = []
        if not tests and not self.diags:
            self.error(("rules",), "the test file has no [[tests]]")
        cases = [c for i, t in enumerate(tests) if (c := self.case(t, i, room, start)) is not None]
        names = {}
        for i, c in enumerate(cases):
            if c.name in names:
                self.error(("tests", i, "name"), f"duplicate test name {c.name!r}")
            names[c.name] = i
        if self.diags:
            raise RulesError(self.diags)
        return Suite(self.filename, str(resolved), self.rules, cases)

    def number(self, value: Any, path: tuple, what: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.error(path, f"{what} must be a number (unix seconds)")
            return DEFAULT_START
        return float(value)

    def case(self, t: dict, i: int, room: str, start: float) -> Case | None:
        path = ("tests", i)
        self.unknown_keys(t, path, _TEST_KEYS, "a test")
        name = t.get("name")
        if not isinstance(name, str) or not name:
            self.error(path, f"test {i + 1} has no 'name'")
            name = f"test {i + 1}"
        room = t.get("room", room)
        if not isinstance(room, str) or not room:
            self.error((*path, "room"), "'room' must be a non-empty string")
            room = DEFAULT_ROOM
        if "start" in t:
            start = self.number(t["start"], (*path, "start"), "'start'")
        profiles = self.profiles(t.get("profiles", {}), (*path, "profiles"))
        events: list[tuple[float, dict, int]] = []
        for j, e in enumerate(self.array(t.get("events", []), (*path, "events"), "'events'")):
            events.extend(self.event(e, (*path, "events", j), room))
        if len(events) > MAX_EVENTS:
            self.error((*path, "events"), f"{len(events):,} events after expanding repeats (at most {MAX_EVENTS:,})")
        events.sort(key=lambda e: e[0])     # stable: ties keep file order
        only = None
        if "only" in t:
            raw = t["only"]
            raw = [raw] if isinstance(raw, str) else raw
            if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
                self.error((*path, "only"), "'only' is a rule name or a list of them ([] compares no actions)")
            else:
                for r in raw:
                    self.rule_name(r, (*path, "only"))
                only = tuple(raw)
        actions: list[ExpectedAction] = []
        for j, a in enumerate(self.array(t.get("actions", []), (*path, "actions"), "'actions'")):
            actions.extend(self.action(a, (*path, "actions", j), only))
        checkpoints = []
        raw_expect = t.get("expect", [])
        if isinstance(raw_expect, dict):
            raw_expect = [raw_expect]
        for j, x in enumerate(self.array(raw_expect, (*path, "expect"), "'expect'")):
            cp = self.checkpoint(x, (*path, "expect", j))
            if cp is not None:
                checkpoints.append(cp)
        checkpoints.sort(key=lambda c: c.at)
        until = max([0.0] + [e[0] for e in events] + [a.at for a in actions] + [c.at for c in checkpoints])
        if "until" in t:
            end = self.time(t["until"], (*path, "until"))
            if end is not None:
                until = max(until, end)
        return Case(name, self.line(path), start, until, profiles, events, only, actions, checkpoints)

    def rule_name(self, name: str, path: tuple) -> bool:
        assert self.rules is not None
        known = [r.name for r in self.rules.rules]
        if name not in known:
            self.error(path, f"no rule named {name!r} in {self.rules.filename}{did_you_mean(name, known)}")
            return False
        return True

    def profiles(self, raw: Any, path: tuple) -> dict[str, dict[str, Any]]:
        assert self.rules is not None
        out: dict[str, dict[str, Any]] = {}
        for viewer, attrs in self.table(raw, path, "'profiles'").items():
            attrs = self.table(attrs, (*path, viewer), f"the profile of {viewer!r}")
            for name in attrs:
                if name not in self.rules.profile:
                    self.error((*path, viewer, name), f"unknown profile attribute {name!r} "
                               f"(declared in [profile]: {', '.join(self.rules.profile) or 'none'})"
                               f"{did_you_mean(name, self.rules.profile)}", key=True)
            out[viewer] = attrs
        return out

    def event(self, e: Any, path: tuple, room: str) -> list[tuple[float, dict, int]]:
        assert self.rules is not None
        if not isinstance(e, dict):
            self.error(path, "an event is an inline table, e.g. { at = \"0s\", type = \"enter\", viewer = \"u1\" }")
            return []
        self.unknown_keys(e, path, _EVENT_KEYS, "an event")
        line = self.line(path)
        if "at" not in e:
            self.error(path, "an event needs 'at' (its time from the start of the test, e.g. \"30s\")")
            return []
        at = self.time(e["at"], (*path, "at"))
        typ = e.get("type")
        if not isinstance(typ, str):
            self.error(path, "an event needs 'type' (e.g. \"enter\", \"heartbeat\", \"cart\")")
            return []
        if typ not in self.rules.event_types:
            self.error((*path, "type"), f"unknown event type {typ!r}{did_you_mean(typ, self.rules.event_types)}")
            return []
        base = {k: v for k, v in e.items() if k not in ("at", "viewer", "every", "until", "count")}
        base.setdefault("room", room)
        viewers: list[Any] = [None]
        if typ in ROOM_TYPES or typ in self.rules.room_types:
            if "viewer" in e:
                self.error((*path, "viewer"), f"{typ} concerns the whole room and carries no viewer")
        else:
            raw = e.get("viewer")
            viewers = raw if isinstance(raw, list) else [raw]
            if raw is None or not viewers or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in viewers):
                self.error((*path, "viewer") if "viewer" in e else path,
                           "an event needs 'viewer': an id (string or integer) or a list of them")
                return []
        if at is None:
            return []
        times = [at]
        if "every" in e or "until" in e or "count" in e:
            times = self.repeat(e, path, at)
        out = []
        for t in times:
            for v in viewers:
                ev = dict(base)
                if v is not None:
                    ev["viewer"] = v
                out.append((t, ev, line))
        return out

    def repeat(self, e: dict, path: tuple, at: float) -> list[float]:
        if "every" not in e:
            self.error(path, "'until' and 'count' repeat an event: give 'every' too, e.g. every = \"30s\"")
            return [at]
        every = self.time(e["every"], (*path, "every"))
        if every is None:
            return [at]
        if every <= 0:
            self.error((*path, "every"), "'every' must be positive")
            return [at]
        if ("until" in e) == ("count" in e):
            self.error((*path, "every"), "a repeated event needs exactly one of 'until' (last time, inclusive) or 'count'")
            return [at]
        if "count" in e:
            n = e["count"]
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                self.error((*path, "count"), "'count' must be an integer >= 1")
                return [at]
        else:
            until = self.time(e["until"], (*path, "until"))
            if until is None:
                return [at]
            if until < at:
                self.error((*path, "until"), f"'until' ({format_time(until)}) is before 'at' ({format_time(at)})")
                return [at]
            n = int(math.floor((until - at) / every + 1e-9)) + 1
        if n > MAX_EVENTS:
            self.error((*path, "every"), f"this repeat makes {n:,} events (at most {MAX_EVENTS:,})")
            return [at]
        # Multiply rather than accumulate, so 1000 steps of 0.1 s do not drift.
        return [round(at + k * every, 6) for k in range(n)]

    def action(self, a: Any, path: tuple, only: tuple[str, ...] | None) -> list[ExpectedAction]:
        assert self.rules is not None
        if not isinstance(a, dict):
            self.error(path, "an expected action is an inline table, e.g. { at = \"5m\", rule = \"cart_nudge\", viewer = \"u1\" }")
            return []
        self.unknown_keys(a, path, _ACTION_KEYS, "an expected action")
        line = self.line(path)
        at = self.time(a["at"], (*path, "at")) if "at" in a else None
        if "at" not in a:
            self.error(path, "an expected action needs 'at'")
        rule = a.get("rule")
        if not isinstance(rule, str):
            self.error(path, "an expected action needs 'rule'")
            return []
        if not self.rule_name(rule, (*path, "rule")):
            return []
        if only is not None and rule not in only:
            self.error((*path, "rule"), f"rule {rule!r} is not in this test's 'only' list, so its actions are not compared")
        then = next(r.then for r in self.rules.rules if r.name == rule)
        names = a.get("action", list(then))
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            self.error((*path, "action"), "'action' is an action name or a list of them")
            return []
        for n in names:
            if n not in then:
                self.error((*path, "action"), f"rule {rule!r} has no action {n!r} (then = {list(then)})"
                           f"{did_you_mean(n, then)}")
        viewer = a.get("viewer")
        if viewer is not None and (isinstance(viewer, bool) or not isinstance(viewer, (str, int))):
            self.error((*path, "viewer"), "'viewer' is an id: a string or an integer")
        room = a.get("room")
        if room is not None and not isinstance(room, str):
            self.error((*path, "room"), "'room' must be a string")
        params = a.get("params")
        if params is not None and not isinstance(params, dict):
            self.error((*path, "params"), "'params' must be a table (its keys are compared; others are ignored)")
            params = None
        if at is None:
            return []
        return [ExpectedAction(at, rule, n, viewer, room, params, line) for n in names]

    def checkpoint(self, x: Any, path: tuple) -> Checkpoint | None:
        assert self.rules is not None
        if not isinstance(x, dict):
            self.error(path, "'expect' entries are tables: [[tests.expect]]")
            return None
        self.unknown_keys(x, path, _EXPECT_KEYS, "an expect table")
        if "at" not in x:
            self.error(path, "an expect table needs 'at': the time at which to check")
            return None
        at = self.time(x["at"], (*path, "at"))
        room = x.get("room")
        if room is not None and not isinstance(room, str):
            self.error((*path, "room"), "'room' must be a string")
        segments = self.table(x.get("segments", {}), (*path, "segments"), "'segments'")
        for name, size in segments.items():
            if name not in self.rules.segments:
                self.error((*path, "segments", name), f"unknown segment {name!r}{did_you_mean(name, self.rules.segments)}", key=True)
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                self.error((*path, "segments", name), "a segment size is an integer >= 0")
        tags = self.table(x.get("tags", {}), (*path, "tags"), "'tags'")
        for viewer, names in tags.items():
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                self.error((*path, "tags", viewer), "tags are a list of names, e.g. [\"engaged\"] (or [] for none)")
        viewers = self.table(x.get("viewers", {}), (*path, "viewers"), "'viewers'")
        for viewer, values in viewers.items():
            self.table(values, (*path, "viewers", viewer), f"the expected values of {viewer!r}")
        if at is None:
            return None
        return Checkpoint(at, self.line(path), room, dict(segments), dict(tags), dict(viewers))


def load_suite(path: str | Path) -> Suite:
    """Parse and check a test file and the rules file it names; raise :class:`RulesError` on problems."""
    p = Path(path)
    return _Loader(p.read_text(encoding="utf-8"), str(path)).load()


# --- running -----------------------------------------------------------------------------------
def run_suite(suite: Suite, engine_factory=None) -> Report:
    """Run every test of ``suite`` on a fresh engine each (compiled once per rules file)."""
    factory = engine_factory or (lambda: Engine(suite.rules))
    factory()                      # compiles the rules (or loads them from the cache) outside the timing
    started = time.perf_counter()
    results = [run_case(case, factory) for case in suite.cases]
    return Report(suite, results, time.perf_counter() - started)


def run_file(path: str | Path) -> Report:
    """Load and run a test file (``segengine test PATH``)."""
    return run_suite(load_suite(path))


def run_case(case: Case, factory) -> CaseResult:
    started = time.perf_counter()
    engine: Engine = factory()
    failures: list[str] = []
    got: list[Action] = []
    ids = {ev.get("viewer") for _, ev, _ in case.events}
    for viewer, attrs in case.profiles.items():
        try:
            engine.set_profile(_resolve(viewer, ids), **attrs)
        except ValueError as err:
            failures.append(f"profile of {viewer!r}: {err}")
    events = case.events
    k = 0
    for cp in case.checkpoints + [None]:
        limit = case.until if cp is None else cp.at
        while k < len(events) and events[k][0] <= limit + 1e-9:
            offset, ev, line = events[k]
            try:
                got.extend(engine.ingest({**ev, "ts": case.start + offset}))
            except EventError as err:
                failures.append(f"line {line}: event at {format_time(offset)} rejected: {err}")
            k += 1
        got.extend(engine.advance(case.start + limit))
        if cp is not None:
            failures.extend(_check_point(engine, cp, case.start))
    compared = [a for a in got if case.only is None or a.rule in case.only]
    failures.extend(_compare_actions(case, compared))
    return CaseResult(case, failures, got, time.perf_counter() - started)


def _resolve(key: str, ids: set) -> str | int:
    """A TOML key is a string; the events may use integer ids."""
    if key not in ids and key.lstrip("-").isdigit() and int(key) in ids:
        return int(key)
    return key


def _lookup_viewer(engine: Engine, key: Any) -> dict | None:
    """``engine.viewer`` for a viewer named in the test file; a TOML key is a string, ids may be ints."""
    for candidate in (key, int(key) if isinstance(key, str) and key.lstrip("-").isdigit() else None):
        if candidate is None:
            continue
        try:
            return engine.viewer(candidate)
        except KeyError:
            continue
    return None


def _check_point(engine: Engine, cp: Checkpoint, start: float) -> list[str]:
    where = f"at {format_time(cp.at)} (line {cp.line})"
    out = []
    for name, want in cp.segments.items():
        got = engine.segment_size(name, room=cp.room)
        if got != want:
            out.append(f"{where}: segment {name}{f' in room {cp.room}' if cp.room else ''}: expected {want}, got {got}")
    for viewer, want_tags in cp.tags.items():
        info = _lookup_viewer(engine, viewer)
        got_tags = sorted(info["tags"]) if info else []
        if sorted(set(want_tags)) != got_tags:
            out.append(f"{where}: tags of {viewer}: expected {sorted(set(want_tags))}, got {got_tags}"
                       + ("" if info else " (viewer never seen)"))
    for viewer, values in cp.viewers.items():
        info = _lookup_viewer(engine, viewer)
        if info is None:
            out.append(f"{where}: viewer {viewer!r} was never seen")
            continue
        flat = {**info["features"], **info["profile"], **info["segments"], "room": info["room"]}
        for name, want in values.items():
            if name not in flat:
                out.append(f"{where}: {viewer}: {name!r} is not a feature, profile attribute or segment "
                           f"of these rules{did_you_mean(name, flat)}")
                continue
            if not _same(want, flat[name]):
                out.append(f"{where}: {viewer} {name}: expected {_show(want)}, got {_show(flat[name])}")
    return out


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return want == got if isinstance(want, bool) and isinstance(got, bool) else False
    if isinstance(got, (int, float)):
        if isinstance(want, str):
            try:
                want = parse_time(want)
            except ValueError:
                return want in ("inf", "infinity") and math.isinf(got) and got > 0
        if isinstance(want, (int, float)):
            return math.isclose(float(want), float(got), rel_tol=1e-9, abs_tol=1e-6)
        return False
    if isinstance(want, dict) and isinstance(got, dict):
        return all(k in got and _same(v, got[k]) for k, v in want.items())
    if isinstance(want, list) and isinstance(got, list):
        return len(want) == len(got) and all(_same(a, b) for a, b in zip(want, got))
    return want == got


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:g}"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _matches(want: ExpectedAction, got: Action, start: float) -> bool:
    return (want.rule == got.rule and want.action == got.action
            and abs((got.ts - start) - want.at) <= TIME_TOLERANCE
            and (want.viewer is None or str(want.viewer) == str(got.viewer))
            and (want.room is None or want.room == got.room)
            and (want.params is None or _same(want.params, got.params)))


def _compare_actions(case: Case, got: list[Action]) -> list[str]:
    used = [False] * len(got)
    missing = []
    for want in case.actions:
        for i, a in enumerate(got):
            if not used[i] and _matches(want, a, case.start):
                used[i] = True
                break
        else:
            missing.append(want)
    unexpected = [a for i, a in enumerate(got) if not used[i]]
    if not missing and not unexpected:
        return []
    scope = "all rules" if case.only is None else f"rules {', '.join(case.only)}"
    lines = [f"actions differ ({scope}; - missing, + unexpected):", "  expected:"]
    missing_ids = {id(m) for m in missing}
    if not case.actions:
        lines.append("    (none)")
    for want in case.actions:
        mark = "-" if id(want) in missing_ids else " "
        viewer = "*" if want.viewer is None else want.viewer
        params = f"  {_show(want.params)}" if want.params else ""
        lines.append(f"  {mark} {format_time(want.at):>9}  {viewer}  {want.rule} -> {want.action}{params}")
    lines.append("  got:")
    if not got:
        lines.append("    (none)")
    shown = 0
    for i, a in enumerate(got):
        if shown == 40:
            lines.append(f"    ... and {len(got) - shown} more")
            break
        shown += 1
        mark = " " if used[i] else "+"
        params = f"  {_show(a.params)}" if a.params else ""
        lines.append(f"  {mark} {format_time(a.ts - case.start):>9}  {a.viewer}  {a.rule} -> {a.action}{params}")
    return ["\n".join(lines)]


# --- output ------------------------------------------------------------------------------------
def format_report(report: Report, verbose: bool = False) -> str:
    """Human-readable results: one line per test, failures in full, then a total."""
    suite = report.suite
    n = len(report.results)
    out = [f"{suite.path}: {n} test{'' if n == 1 else 's'} of {suite.rules_path}"]
    for r in report.results:
        if r.ok:
            out.append(f"  ok    {r.case.name}" + (f"  ({len(r.got)} actions)" if verbose else ""))
            continue
        out.append(f"  FAIL  {r.case.name}  ({suite.path}:{r.case.line})")
        for failure in r.failures:
            out.extend("        " + line for line in failure.splitlines())
    out.append(f"{report.passed} passed, {report.failed} failed in {report.seconds:.2f} s")
    return "\n".join(out)
