"""Rules file loading: TOML -> a checked :class:`RuleSet`, or every error at once.

``tomllib`` parses; :mod:`.tomlpos` maps keys and string offsets back to lines and
columns, so each problem is reported as ``FILE:LINE:COL: message`` with a caret.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Diagnostic, RulesError
from ..schema.events import BUILTIN_TYPES, EVENT_FIELDS, ROOM_TYPES
from ..text.lexicon import BUILTIN_INTENTS
from . import ast, roomload
from .check import BUILTINS, CheckContext, check_expr, fold, segment_refs
from .expr import MAX_DEPTH, ExprError, check_depth, duration_problem, parse_duration, parse_expr
from .suggest import did_you_mean
from .tomlpos import TomlIndex, index_toml

__all__ = ["Rule", "RuleSet", "ProfileAttr", "load_rules", "load_rules_file", "read_rules_text", "PLACEHOLDER_RE",
           "MAX_BUDGET"]

#: The most firings a budget allows per window: each costs 8 bytes per room (a ring of firing times).
MAX_BUDGET = 100_000

ENGINE_KEYS = ("idle_timeout", "categories", "interest_half_life", "types", "retention", "room_types", "keyed_slots",
               "attribution", "default_tz", "room_metrics")
#: ``[engine] keyed_slots``: the keys per viewer a keyed counter keeps exact (features/keyed.py).
KEYED_SLOTS_MAX = 64
RULE_KEYS = ("name", "when", "then", "on", "params", "cooldown", "once", "budget", "priority", "enabled", "holdout", "outcome",
             "cap")
TOP_KEYS = ("engine", "profile", "segments", "rules", "intents", "targets", "room_rules", "caps")
#: The most firings a frequency cap allows per window: each costs 8 bytes per viewer.
MAX_CAP = 1_000
PLACEHOLDER_RE = re.compile(r"\{([^{}]+)\}")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class ProfileAttr:
    name: str
    kind: str  # "num" or "cat"
    values: tuple[str, ...] = ()


@dataclass
class Rule:
    name: str
    when: ast.Node
    when_text: str
    then: tuple[str, ...]
    on: tuple[str, ...] | None
    params: dict[str, Any]
    cooldown: float | None
    once: str | None
    budget: tuple[int, float] | None
    priority: int
    enabled: bool
    index: int  # file order
    placeholders: dict[str, ast.Node] = field(default_factory=dict)  # "{dwell}" feature texts -> expr
    holdout: float | None = None  # the control group's share (guards/holdout.py)
    outcome: str | None = None  # the outcome event type, when set or implied by a holdout (features/outcome.py)
    cap: tuple[str, int, float] | None = None  # cap = "NAME": (NAME, N, window seconds) of [caps]
    quiet: tuple[int, int] | None = None  # [caps] quiet_hours of a capped rule: (start, end) local minutes

    @property
    def is_event_rule(self) -> bool:
        return self.on is not None


@dataclass(repr=False)
class RuleSet:
    """A checked rules file: what the compiler needs, nothing raw."""

    filename: str
    text: str
    idle_timeout: float = 90.0
    categories: tuple[str, ...] = ()
    interest_half_life: float = 600.0
    retention: float = 7 * 86400.0
    keyed_slots: int = 8  # keys kept per viewer by count/since/sum/avg(..., by = item|category)
    room_metrics: bool = True  # Engine.room() and the room names uv, gmv, ... (features/roommetrics.py)
    event_types: tuple[str, ...] = BUILTIN_TYPES
    profile: dict[str, ProfileAttr] = field(default_factory=dict)
    segments: dict[str, ast.Node] = field(default_factory=dict)
    segment_texts: dict[str, str] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    #: intent name -> phrases (segengine.text): the built-in lexicon, then the file's [intents]
    intents: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(BUILTIN_INTENTS))
    # the room parts (rules/roomload.py): room event types, [targets.NAME], [[room_rules]]
    room_types: tuple[str, ...] = ()
    targets: dict[str, ast.Node] = field(default_factory=dict)
    target_texts: dict[str, str] = field(default_factory=dict)
    room_rules: list[Any] = field(default_factory=list)
    #: [engine] attribution: how long after a firing the outcome event counts (features/outcome.py)
    attribution: float = 1800.0
    #: [caps]: frequency cap name -> (N, window seconds); quiet_hours as (start, end) minutes of the day
    caps: dict[str, tuple[int, float]] = field(default_factory=dict)
    quiet_hours: tuple[int, int] | None = None
    default_tz: str = ""  # [engine] default_tz: the zone of viewers without tz or utc_offset ("": UTC)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"RuleSet({self.filename!r}, {len(self.rules)} rules, {len(self.segments)} segments)"

    def evaluation_order(self) -> list[Rule]:
        """Enabled rules by priority (higher first), then file order."""
        return sorted((r for r in self.rules if r.enabled), key=lambda r: (-r.priority, r.index))


class TomlLoader:
    """A TOML text read with every problem collected as a positioned Diagnostic
    (``FILE:LINE:COL`` and the source line); the rules loader and the rule-test loader share it."""

    def __init__(self, text: str, filename: str):
        self.text = text
        self.filename = filename
        self.diags: list[Diagnostic] = []
        self.index: TomlIndex | None = None

    def parse(self) -> dict:
        """The parsed TOML (and its position index); a syntax error raises RulesError at once."""
        try:
            self.text.encode("utf-8")
        except UnicodeEncodeError as err:  # a lone surrogate ("\ud800"): no file can hold it
            before = self.text[:err.start]
            line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
            source = self.text.splitlines()[line - 1].encode("utf-8", "replace").decode("utf-8")
            self.diags.append(Diagnostic(self.filename, line, col,
                                         f"character U+{ord(self.text[err.start]):04X} cannot be encoded in UTF-8", source))
            raise RulesError(self.diags) from None
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as err:
            self._toml_error(err)
            raise RulesError(self.diags) from None
        self.index = index_toml(self.text)
        return data

    # error reporting ------------------------------------------------------------
    def error_at(self, pos: tuple[int, int] | None, message: str, width: int = 1) -> None:
        line, col = pos if pos else (1, 1)
        source = self.index.line_text(line) if self.index else ""
        self.diags.append(Diagnostic(self.filename, line, col, message, source, width))

    def error_key(self, path: tuple, message: str) -> None:
        assert self.index is not None
        pos = self.index.key(path) or self.index.value(path) or self._nearest(path)
        width = len(str(path[-1])) if self.index.key(path) else 1
        self.error_at(pos, message, width)

    def error_value(self, path: tuple, message: str) -> None:
        assert self.index is not None
        pos = self.index.value(path) or self.index.key(path) or self._nearest(path)
        self.error_at(pos, message)

    def _nearest(self, path: tuple) -> tuple[int, int] | None:
        assert self.index is not None
        for cut in range(len(path) - 1, 0, -1):
            pos = self.index.key(path[:cut]) or self.index.value(path[:cut])
            if pos:
                return pos
        return None

    def unknown_keys(self, table: dict, path: tuple, allowed: tuple[str, ...], what: str) -> None:
        for key in table:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                self.error_key((*path, key), f"unknown key {key!r} in {what}{hint}")

    def _toml_error(self, err: tomllib.TOMLDecodeError) -> None:
        msg = str(err)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line, col = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        lines = self.text.splitlines()
        source = lines[line - 1] if 0 < line <= len(lines) else ""
        text = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", msg)
        self.diags.append(Diagnostic(self.filename, line, col, f"TOML syntax error: {text}", source))

    def table(self, value: Any, path: tuple, what: str) -> dict:
        if not isinstance(value, dict):
            self.error_key(path, f"{what} must be a table")
            return {}
        return value


class _Loader(roomload.RoomParts, TomlLoader):
    """The rules file: every problem at once, then a checked RuleSet."""

    segment_depths: dict[str, int] = {}  # name -> depth with its segments expanded (set by _segments)

    def load(self) -> RuleSet:
        data = self.parse()
        rs = RuleSet(self.filename, self.text)
        self.unknown_keys(data, (), TOP_KEYS, "the rules file")
        self._engine(data.get("engine", {}), rs)
        self._profile(data.get("profile", {}), rs)
        self._intents(data.get("intents", {}), rs)
        self._caps(data.get("caps", {}), rs)
        ctx = CheckContext(frozenset(rs.event_types), rs.categories,
                           {p.name: ("num" if p.kind == "num" else p.values) for p in rs.profile.values()},
                           event_fields=EVENT_FIELDS, intents=tuple(rs.intents), room_metrics=rs.room_metrics)
        ctx.room_names = False  # segments and targets read viewers, not rooms
        self._segments(data.get("segments", {}), rs, ctx)
        self.targets(data.get("targets", {}), rs, ctx)
        ctx.room_names = True
        self._rules(data.get("rules", []), rs, ctx)
        self.room_rules(data.get("room_rules", []), rs, ctx, {r.name for r in rs.rules})
        self._text_limit(rs)
        if self.diags:
            raise RulesError(self.diags)
        return rs

    def error_expr(self, path: tuple, err: ExprError) -> None:
        assert self.index is not None
        start, end = err.span
        pos = self.index.string_pos(path, start)
        end_pos = self.index.string_pos(path, max(start, end - 1))
        width = 1
        if pos and end_pos and end_pos[0] == pos[0]:
            width = end_pos[1] - pos[1] + 1
        self.error_at(pos or self.index.value(path), err.message, width)

    def _duration(self, value: Any, path: tuple) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.error_value(path, "expected a duration such as \"90s\"")
            return None
        if isinstance(value, (int, float)):
            # a TOML integer may have any size: beyond float range it is simply too large
            seconds = float(value) if isinstance(value, float) or abs(value) < 10**300 else (math.inf if value > 0 else -math.inf)
            problem = duration_problem(seconds)
            if problem:
                self.error_value(path, problem)
                return None
        else:
            try:
                seconds = parse_duration(value)
            except ValueError as err:
                self.error_value(path, str(err))
                return None
        return seconds

    def _string_list(self, value: Any, path: tuple, what: str) -> list[str] | None:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.error_value(path, f"{what} must be a list of strings")
            return None
        return value

    def _engine(self, raw: Any, rs: RuleSet) -> None:
        table = self.table(raw, ("engine",), "[engine]")
        self.unknown_keys(table, ("engine",), ENGINE_KEYS, "[engine]")
        for key, attr in (("idle_timeout", "idle_timeout"), ("interest_half_life", "interest_half_life"), ("retention", "retention"),
                          ("attribution", "attribution")):
            if key in table:
                seconds = self._duration(table[key], ("engine", key))
                if seconds is not None:
                    setattr(rs, attr, seconds)
        if "categories" in table:
            cats = self._string_list(table["categories"], ("engine", "categories"), "categories")
            if cats is not None:
                rs.categories = tuple(dict.fromkeys(cats))
        if "types" in table:
            types = self._string_list(table["types"], ("engine", "types"), "types")
            if types is not None:
                for i, name in enumerate(types):
                    if not _IDENT_RE.fullmatch(name):
                        self.error_value(("engine", "types", i), f"event type {name!r} must be a plain name (letters, digits, _)")
                rs.event_types = tuple(dict.fromkeys((*BUILTIN_TYPES, *types)))
        if "room_types" in table:
            self.room_types(table["room_types"], rs)
        if "default_tz" in table:
            from ..runtime.zones import available, valid_zone
            zone = table["default_tz"]
            if not valid_zone(zone):
                hint = did_you_mean(str(zone), sorted(available())) if isinstance(zone, str) else ""
                self.error_value(("engine", "default_tz"), f"unknown time zone {zone!r}{hint} (an IANA name such as "
                                 "\"Asia/Shanghai\")")
            else:
                rs.default_tz = zone
        if "room_metrics" in table:
            if not isinstance(table["room_metrics"], bool):
                self.error_value(("engine", "room_metrics"), "room_metrics is true or false")
            else:
                rs.room_metrics = table["room_metrics"]
        if "keyed_slots" in table:
            value = table["keyed_slots"]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= KEYED_SLOTS_MAX:
                self.error_value(("engine", "keyed_slots"), f"keyed_slots is a whole number from 1 to {KEYED_SLOTS_MAX}")
            else:
                rs.keyed_slots = value

    def _text_limit(self, rs: RuleSet) -> None:
        """Text predicates and used intents are bits of one int64: at most MAX_PREDICATES."""
        from ..text.predicates import MAX_PREDICATES, predicates
        n = len(predicates(rs))
        if n > MAX_PREDICATES:
            i = next(i for i, r in enumerate(rs.rules) if len(predicates(RuleSet("", "", segments=rs.segments,
                                                                               rules=rs.rules[:i + 1]))) > MAX_PREDICATES)
            self.error_value(("rules", rs.rules[i].index, "when"),
                             f"the rules use {n} distinct text predicates and intents; at most {MAX_PREDICATES} are supported")

    def _intents(self, raw: Any, rs: RuleSet) -> None:
        """``[intents] NAME = ["phrase", ...]``: replaces the built-in intent NAME, or adds one."""
        table = self.table(raw, ("intents",), "[intents]")
        for name, phrases in table.items():
            path = ("intents", name)
            if not self._ident(name, path, "intent"):
                continue
            if not isinstance(phrases, list) or not phrases or not all(isinstance(p, str) and p for p in phrases):
                self.error_value(path, "an intent is a non-empty list of non-empty phrases (strings)")
                continue
            rs.intents[name] = tuple(dict.fromkeys(phrases))

    def _profile(self, raw: Any, rs: RuleSet) -> None:
        table = self.table(raw, ("profile",), "[profile]")
        for name, spec in table.items():
            path = ("profile", name)
            if not self._ident(name, path, "profile attribute"):
                continue
            if name in BUILTINS:
                self.error_key(path, f"profile attribute {name!r} hides the built-in name {name!r}")
            elif spec in ("int", "float"):
                rs.profile[name] = ProfileAttr(name, "num")
            elif isinstance(spec, list) and spec and all(isinstance(v, str) for v in spec):
                rs.profile[name] = ProfileAttr(name, "cat", tuple(dict.fromkeys(spec)))
            else:
                hint = did_you_mean(spec, ("int", "float")) if isinstance(spec, str) else ""
                self.error_value(path, f"a profile attribute is \"int\", \"float\" or a list of its values{hint}")

    def _ident(self, name: str, path: tuple, what: str) -> bool:
        if _IDENT_RE.fullmatch(name):
            return True
        self.error_key(path, f"{what} name {name!r} must be a plain name (letters, digits, _)")
        return False

    def _segments(self, raw: Any, rs: RuleSet, ctx: CheckContext) -> None:
        table = self.table(raw, ("segments",), "[segments]")
        parsed: dict[str, ast.Node] = {}
        for name, text in table.items():
            path = ("segments", name)
            if not self._ident(name, path, "segment"):
                continue
            if name in BUILTINS or name in rs.profile:
                self.error_key(path, f"segment {name!r} hides the {'built-in' if name in BUILTINS else 'profile'} name {name!r}")
                continue
            if not isinstance(text, str):
                self.error_value(path, "a segment is an expression string")
                continue
            rs.segment_texts[name] = text
            try:
                parsed[name] = parse_expr(text)
            except ExprError as err:
                self.error_expr(path, err)
                parsed[name] = ast.Bool(False)  # keep the name known; its error is reported
        ctx.segments = parsed
        for name, node in parsed.items():
            errors: list[ExprError] = []
            check_expr(node, ctx, errors)
            for err in errors:
                self.error_expr(("segments", name), err)
        self.segment_depths = {} if self._segment_cycles(parsed) else self._segment_depths(parsed)
        rs.segments = {name: fold(node) for name, node in parsed.items()}

    def _segment_cycles(self, parsed: dict[str, ast.Node]) -> bool:
        """Report every cycle of segments referring to segments (iteratively: chains may be
        long); whether there was one."""
        refs = {name: segment_refs(node) for name, node in parsed.items()}
        state: dict[str, int] = {}  # 1 visiting, 2 done
        reported: set[frozenset[str]] = set()
        for root in parsed:
            if root in state:
                continue
            state[root] = 1
            stack = [(root, iter(refs.get(root, [])))]
            while stack:
                name, pending = stack[-1]
                ref = next(pending, None)
                if ref is None:
                    state[name] = 2
                    stack.pop()
                    continue
                if state.get(ref.name) == 1:
                    trail = [n for n, _ in stack[:-1]]
                    cycle = trail[trail.index(ref.name):] + [name] if ref.name in trail else [name]
                    members = frozenset(cycle)
                    if members not in reported:
                        reported.add(members)
                        loop = " -> ".join([*cycle, ref.name]) if ref.name != name else f"{name} -> {name}"
                        what = "refers to itself" if ref.name == name else "is part of a cycle"
                        self.error_expr(("segments", name), ExprError(f"segment {name!r} {what}: {loop}", ref.span))
                elif state.get(ref.name) is None and ref.name in refs:
                    state[ref.name] = 1
                    stack.append((ref.name, iter(refs[ref.name])))
        return bool(reported)

    def _segment_depths(self, parsed: dict[str, ast.Node]) -> dict[str, int]:
        """Each segment's depth with the segments it uses expanded (no cycles left). A segment
        too deep is reported where it first gets too deep: not again in every segment using it."""
        refs = {name: [r.name for r in segment_refs(node)] for name, node in parsed.items()}
        depths: dict[str, int] = {}
        for root in parsed:
            stack = [root]
            while stack:
                name = stack[-1]
                todo = [r for r in refs[name] if r in parsed and r not in depths]
                if todo:
                    stack.extend(todo)
                    continue
                stack.pop()
                if name in depths:
                    continue
                depths[name] = self._depth(("segments", name), parsed[name], depths, refs[name])
        return depths

    def _depth(self, path: tuple, node: ast.Node, depths: dict[str, int], refs: list[str], offset: int = 0) -> int:
        """Depth of ``node`` with its segments expanded; reported when too deep, unless a
        segment it uses is too deep already (reported there)."""
        try:
            return check_depth(node, depths)
        except ExprError as err:
            if not any(depths.get(r, 0) > MAX_DEPTH for r in refs):
                self.error_expr(path, ExprError(err.message, (err.span[0] + offset, err.span[1] + offset)))
            return MAX_DEPTH + 1

    def _rules(self, raw: Any, rs: RuleSet, ctx: CheckContext) -> None:
        if not isinstance(raw, list):
            self.error_key(("rules",), "rules must be an array of tables: [[rules]]")
            return
        seen: dict[str, int] = {}
        for i, table in enumerate(raw):
            if not isinstance(table, dict):
                self.error_value(("rules", i), "a rule must be a table")
                continue
            rule = self._rule(table, i, rs, ctx)
            if rule is None:
                continue
            if rule.name in seen:
                self.error_value(("rules", i, "name"), f"duplicate rule name {rule.name!r} (first defined as rule {seen[rule.name] + 1})")
                continue
            seen[rule.name] = i
            rs.rules.append(rule)

    def _head(self, t: dict, p: tuple, keys: tuple[str, ...], label: str) -> tuple[Any, bool]:
        """What every rule table checks first ([[rules]], [[room_rules]]): unknown keys, the required
        name, when and then, a proper name. Returns (the name, or a stand-in; still ok)."""
        self.unknown_keys(t, p, keys, f"a {label}")
        ok = True
        for key in ("name", "when", "then"):
            if key not in t:
                self.error_key(p, f"{label} {p[1] + 1} has no {key!r}")
                ok = False
        name = t.get("name", f"{p[0]}[{p[1]}]")
        if "name" in t and (not isinstance(name, str) or not name):
            self.error_value((*p, "name"), "a rule name must be a non-empty string")
            ok = False
        return name, ok

    def _rule(self, t: dict, i: int, rs: RuleSet, ctx: CheckContext) -> Rule | None:
        p = ("rules", i)
        name, ok = self._head(t, p, RULE_KEYS, "rule")
        on: tuple[str, ...] | None = None
        if "on" in t:
            raw_on = t["on"]
            items = [raw_on] if isinstance(raw_on, str) else raw_on
            if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
                self.error_value((*p, "on"), "'on' is an event type or a list of them")
                ok = False
            else:
                for j, typ in enumerate(items):
                    if typ.startswith("comment:") and typ not in rs.event_types:
                        if typ[8:] not in rs.intents:
                            hint = did_you_mean(typ[8:], rs.intents)
                            self.error_value((*p, "on", j) if isinstance(raw_on, list) else (*p, "on"),
                                             f"unknown intent {typ[8:]!r} in {typ!r}{hint} (declare it in [intents])")
                            ok = False
                    elif typ not in rs.event_types:
                        hint = did_you_mean(typ, rs.event_types)
                        self.error_value((*p, "on", j) if isinstance(raw_on, list) else (*p, "on"), f"unknown event type {typ!r}{hint}")
                        ok = False
                    elif typ in ROOM_TYPES:
                        self.error_value((*p, "on", j) if isinstance(raw_on, list) else (*p, "on"), f"{typ} events carry no viewer and fire no rules")
                        ok = False
                on = tuple(dict.fromkeys(items))
        then = self._then(t.get("then"), (*p, "then")) if "then" in t else None
        ok = ok and then is not None
        when_node: ast.Node | None = None
        when_text = t.get("when", "")
        if "when" in t:
            if not isinstance(when_text, str):
                self.error_value((*p, "when"), "'when' is an expression string")
                ok = False
            else:
                when_node = self._expr((*p, "when"), when_text, ctx, on is not None)
                ok = ok and when_node is not None
        params = t.get("params", {})
        placeholders: dict[str, ast.Node] = {}
        if not isinstance(params, dict):
            self.error_value((*p, "params"), "'params' must be a table")
            ok = False
        else:
            ok = self._placeholders(params, (*p, "params"), ctx, on is not None, placeholders) and ok
        cooldown = self._duration(t["cooldown"], (*p, "cooldown")) if "cooldown" in t else None
        ok = ok and ("cooldown" not in t or cooldown is not None)
        once = t.get("once")
        if once is not None and once not in ("session", "lifetime"):
            hint = did_you_mean(str(once), ("session", "lifetime"))
            self.error_value((*p, "once"), f"'once' is \"session\" or \"lifetime\"{hint}")
            ok = False
        budget = self._budget(t["budget"], (*p, "budget")) if "budget" in t else None
        ok = ok and ("budget" not in t or budget is not None)
        priority = t.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int):
            self.error_value((*p, "priority"), "'priority' must be an integer")
            ok = False
        enabled = t.get("enabled", True)
        if not isinstance(enabled, bool):
            self.error_value((*p, "enabled"), "'enabled' must be true or false")
            ok = False
        holdout, outcome, ok = self._holdout(t, p, rs, ok)
        if not ok or when_node is None or then is None:
            return None
        cap = None
        if "cap" in t:
            cap = self._cap_ref(t["cap"], (*p, "cap"), rs)
            if cap is None:
                return None
        return Rule(name, when_node, when_text, then, on, params, cooldown, once, budget, priority, enabled, i, placeholders,
                    holdout, outcome, cap, rs.quiet_hours if cap else None)

    def _caps(self, raw: Any, rs: RuleSet) -> None:
        """``[caps]``: ``NAME = "N/DURATION"`` frequency caps and ``quiet_hours = "22:00-08:00"``."""
        table = self.table(raw, ("caps",), "[caps]")
        for key, value in table.items():
            path = ("caps", key)
            if key == "quiet_hours":
                m = re.fullmatch(r"\s*(\d\d?):(\d\d)\s*-\s*(\d\d?):(\d\d)\s*", value) if isinstance(value, str) else None
                if not m or int(m.group(1)) > 23 or int(m.group(3)) > 23 or int(m.group(2)) > 59 or int(m.group(4)) > 59:
                    self.error_value(path, "'quiet_hours' is \"HH:MM-HH:MM\" in the viewer's local time, e.g. \"22:00-08:00\"")
                    continue
                start, end = int(m.group(1)) * 60 + int(m.group(2)), int(m.group(3)) * 60 + int(m.group(4))
                if start == end:
                    self.error_value(path, "quiet hours must not start and end at the same time")
                    continue
                rs.quiet_hours = (start, end)
                continue
            if not _IDENT_RE.fullmatch(key):
                self.error_key(path, f"cap name {key!r} must be a plain name (letters, digits, _)")
                continue
            limit = self._budget(value, path, "cap", MAX_CAP)
            if limit is not None:
                rs.caps[key] = limit

    def _cap_ref(self, raw: Any, path: tuple, rs: RuleSet) -> tuple[str, int, float] | None:
        if not isinstance(raw, str) or raw not in rs.caps:
            hint = did_you_mean(str(raw), tuple(rs.caps)) if isinstance(raw, str) else ""
            known = f" (the caps are {', '.join(sorted(rs.caps))})" if rs.caps and not hint else ""
            where = "" if rs.caps else " (define it in [caps] as NAME = \"N/DURATION\")"
            self.error_value(path, f"unknown cap {raw!r}{hint}{known}{where}")
            return None
        return (raw, *rs.caps[raw])

    def _holdout(self, t: dict, p: tuple, rs: RuleSet, ok: bool) -> tuple[float | None, str | None, bool]:
        """The keys ``holdout`` (a share in [0, 1)) and ``outcome`` (an event type; ``pay`` with a holdout)."""
        holdout = t.get("holdout")
        if holdout is not None:
            if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 <= holdout < 1:
                self.error_value((*p, "holdout"), "'holdout' is a share of viewers, at least 0 and below 1, such as 0.1")
                holdout, ok = None, False
            else:
                holdout = float(holdout)
        outcome = t.get("outcome")
        if outcome is not None:
            if not isinstance(outcome, str) or outcome not in rs.event_types or outcome in ROOM_TYPES:
                hint = did_you_mean(str(outcome), rs.event_types) if isinstance(outcome, str) else ""
                self.error_value((*p, "outcome"), f"unknown event type {outcome!r} for 'outcome'{hint}"
                                 if isinstance(outcome, str) else "'outcome' is an event type such as \"pay\"")
                outcome, ok = None, False
        elif holdout is not None:
            outcome = "pay"
        return holdout, outcome, ok

    def _expr(self, path: tuple, text: str, ctx: CheckContext, event_rule: bool, want: str | None = "bool") -> ast.Node | None:
        try:
            node = parse_expr(text)
        except ExprError as err:
            self.error_expr(path, err)
            return None
        ctx.in_event_rule = event_rule
        errors: list[ExprError] = []
        check_expr(node, ctx, errors, want)
        for err in errors:
            self.error_expr(path, err)
        if not errors and self._depth(path, node, self.segment_depths, [r.name for r in segment_refs(node)]) > MAX_DEPTH:
            return None
        return None if errors else fold(node)

    def _then(self, raw: Any, path: tuple) -> tuple[str, ...] | None:
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items or not all(isinstance(x, str) and x for x in items):
            self.error_value(path, "'then' is an action name or a list of them")
            return None
        good = True
        for j, action in enumerate(items):
            if action.startswith(("tag:", "untag:")) and not _IDENT_RE.fullmatch(action.split(":", 1)[1]):
                self.error_value((*path, j) if isinstance(raw, list) else path, f"{action!r}: a tag name must be a plain name (letters, digits, _)")
                good = False
        return tuple(items) if good else None

    def _budget(self, raw: Any, path: tuple, what: str = "budget", most: int = MAX_BUDGET) -> tuple[int, float] | None:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\S+)\s*", raw) if isinstance(raw, str) else None
        if not m:
            self.error_value(path, f"'{what}' is \"N/DURATION\", e.g. \"{'200/1m' if what == 'budget' else '3/1d'}\"")
            return None
        try:
            window = parse_duration(m.group(2))
        except ValueError as err:
            self.error_value(path, str(err))
            return None
        digits = m.group(1).lstrip("0") or "0"
        count = int(digits) if len(digits) <= 12 else most + 1
        if count < 1 or window <= 0:
            self.error_value(path, f"a {what} needs at least 1 firing in a positive window")
            return None
        if count > most:
            self.error_value(path, f"a {what} allows at most {most:,} firings per window")
            return None
        return count, window

    def _placeholders(self, params: dict | list, path: tuple, ctx: CheckContext, event_rule: bool, out: dict[str, ast.Node]) -> bool:
        ok = True
        items = params.items() if isinstance(params, dict) else enumerate(params)
        for key, value in items:
            vpath = (*path, key)
            if isinstance(value, (dict, list)):
                ok = self._placeholders(value, vpath, ctx, event_rule, out) and ok
                continue
            if not isinstance(value, str):
                continue
            for m in PLACEHOLDER_RE.finditer(value):
                inner = m.group(1)
                if inner in out:
                    continue
                try:
                    node = parse_expr(inner)
                except ExprError as err:
                    self.error_expr(vpath, ExprError(err.message, (m.start(1) + err.span[0], m.start(1) + err.span[1])))
                    ok = False
                    continue
                if isinstance(node, ast.EventField) and not event_rule:
                    # timers have no event: the placeholder renders as "" (documented)
                    out[inner] = node
                    continue
                ctx.in_event_rule = event_rule
                errors: list[ExprError] = []
                check_expr(node, ctx, errors, want=None)
                for err in errors:
                    self.error_expr(vpath, ExprError(err.message, (m.start(1) + err.span[0], m.start(1) + err.span[1])))
                if not errors and self._depth(vpath, node, self.segment_depths, [r.name for r in segment_refs(node)],
                                              m.start(1)) > MAX_DEPTH:
                    errors.append(ExprError("", (0, 0)))
                if errors:
                    ok = False
                else:
                    out[inner] = fold(node)
        return ok


def load_rules(text: str, filename: str = "<rules>") -> RuleSet:
    """Parse and check rules text; raise :class:`RulesError` listing every problem."""
    return _Loader(text, filename).load()


def read_rules_text(path: str | Path) -> str:
    """The text of a rules file; bytes that are not UTF-8 are a :class:`RulesError` at their place."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[:err.start].decode("utf-8", errors="replace")
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        lines = data.decode("utf-8", errors="replace").splitlines()
        source = lines[line - 1] if line <= len(lines) else ""
        raise RulesError([Diagnostic(str(path), line, col, f"the file is not valid UTF-8 (byte 0x{data[err.start]:02x})",
                                     source)]) from None


def load_rules_file(path: str | Path) -> RuleSet:
    return load_rules(read_rules_text(path), str(path))
