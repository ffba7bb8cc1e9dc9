"""Name resolution, type checking and constant folding of rule expressions.

Everything that can go wrong with an expression is found here, when the file is
loaded, never at ingest time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .. import features
from . import ast
from .expr import ExprError, FUNCTIONS, MAX_DURATION
from .suggest import did_you_mean

__all__ = ["BUILTINS", "CheckContext", "check_expr", "fold", "segment_refs"]

#: Built-in names and their types: declared by the feature registry (segengine.features).
BUILTINS: dict[str, str] = features.builtin_types()
#: Built-in string names whose values are categories (``top_interest``).
CATEGORY_BUILTINS = features.category_names()
AGG_FIELDS = ("price", "amount")
_TYPE_WORDS = {"bool": "a condition (true/false)", "num": "a number", "str": "a string"}


@dataclass
class CheckContext:
    """What names mean in one rules file."""

    event_types: frozenset[str]
    categories: tuple[str, ...]
    profile: dict[str, tuple[str, ...] | str]  # name -> "num" or the category's values
    segments: dict[str, ast.Node] = field(default_factory=dict)
    event_fields: dict[str, str] = field(default_factory=dict)
    in_event_rule: bool = False
    intents: tuple[str, ...] = ()  # the intent names (segengine.text): event.intent(NAME), comment:NAME
    targets: dict[str, ast.Node] = field(default_factory=dict)  # [targets.NAME] (room.share reads them)
    room_names: bool = True  # room.NAME allowed (not in segments and targets)
    in_room_rule: bool = False  # only room names ([[room_rules]])
    room_metrics: bool = True  # [engine] room_metrics: room.uv, room.gmv, ... exist

    def known_names(self) -> list[str]:
        return [*BUILTINS, *self.profile, *self.segments, *FUNCTIONS]


def check_expr(node: ast.Node, ctx: CheckContext, errors: list[ExprError], want: str | None = "bool") -> str:
    """Annotate ``node`` with types; append problems to ``errors``; return the node's type ("" if unknown)."""
    t = _check(node, ctx, errors)
    if want and t and t != want:
        errors.append(ExprError(f"a condition must be true or false, got {_TYPE_WORDS[t]}", node.span))
    return t


def _check(node: ast.Node, ctx: CheckContext, errors: list[ExprError]) -> str:
    t = _infer(node, ctx, errors)
    node.type = t
    return t


def _infer(node: ast.Node, ctx: CheckContext, errors: list[ExprError]) -> str:
    if ctx.in_room_rule and not isinstance(node, _ROOM_RULE_NODES):
        errors.append(ExprError(f"a room rule reads only room names (room.audience, room.share(NAME), ...), "
                                f"not {ast.to_source(node)!r}", node.span))
        return ""
    if isinstance(node, ast.RoomValue):
        return _room_value(node, ctx, errors)
    if isinstance(node, ast.Num):
        return "num"
    if isinstance(node, ast.Str):
        return "str"
    if isinstance(node, ast.Bool):
        return "bool"
    if isinstance(node, ast.Name):
        return _name(node, ctx, errors)
    if isinstance(node, ast.EventField):
        if not ctx.in_event_rule:
            errors.append(ExprError("event.FIELD is only available in event rules (rules with 'on')", node.span))
            return ""
        if node.field_name not in ctx.event_fields:
            hint = did_you_mean(node.field_name, ctx.event_fields)
            errors.append(ExprError(f"unknown event field {node.field_name!r}{hint}", node.span))
            return ""
        return ctx.event_fields[node.field_name]
    if isinstance(node, (ast.Count, ast.Since, ast.Agg)) and node.by is not None:
        _by(node, ctx, errors)
    if isinstance(node, (ast.Count, ast.Since)):
        _types(node.types, node.types_span, ctx, errors)
        if isinstance(node, ast.Count) and node.window is not None:
            _window(node.window, node.window_span, errors)
        return "num"
    if isinstance(node, ast.Agg):
        if node.field_name not in AGG_FIELDS:
            hint = did_you_mean(node.field_name, AGG_FIELDS)
            errors.append(ExprError(f"{node.func}() sums a number field: price or amount, not {node.field_name!r}{hint}", node.field_span))
        _types(node.types, node.types_span, ctx, errors)
        _window(node.window, node.window_span, errors)
        return "num"
    if isinstance(node, ast.Interest):
        if not ctx.categories:
            errors.append(ExprError("interest() needs categories: declare them in [engine] categories", node.arg_span))
        elif node.category not in ctx.categories:
            hint = did_you_mean(node.category, ctx.categories)
            errors.append(ExprError(f"unknown category {node.category!r}{hint}", node.arg_span))
        return "num"
    if isinstance(node, ast.Tag):
        return "bool"
    if isinstance(node, ast.ActiveHours):
        for h in (node.start, node.end):
            if not (0 <= h <= 24 and h == int(h)):
                errors.append(ExprError("active_hour_share(H1, H2) takes whole hours from 0 to 24", node.arg_span))
                break
        return "num"
    if isinstance(node, (ast.TextMatch, ast.Intent)):
        return _text(node, ctx, errors)
    if isinstance(node, ast.Unary):
        t = _check(node.operand, ctx, errors)
        want = "bool" if node.op == "not" else "num"
        _expect(node.operand, t, want, f"'{node.op}'", errors)
        return want
    if isinstance(node, ast.Binary):
        return _binary(node, ctx, errors)
    if isinstance(node, ast.In):
        t = _check(node.operand, ctx, errors)
        for item in node.items:
            it = _check(item, ctx, errors)
            if t and it and it != t:
                errors.append(ExprError(f"list item is {_TYPE_WORDS[it]} but the value tested is {_TYPE_WORDS[t]}", item.span))
            elif it == "str" and isinstance(item, ast.Str):
                _category_value(node.operand, item, ctx, errors)
            elif it == "str":
                _comparable(node.operand, item, errors)
        return "bool"
    raise TypeError(f"unknown node {node!r}")  # pragma: no cover


_ROOM_RULE_NODES = (ast.Num, ast.Str, ast.Bool, ast.Unary, ast.Binary, ast.In, ast.RoomValue)


def _room_value(node: ast.RoomValue, ctx: CheckContext, errors: list[ExprError]) -> str:
    """``room.NAME`` / ``room.NAME(ARG)``: the names of segengine.features.roomnames.ROOM_VALUES."""
    from ..features.roomnames import FUNNEL_STEPS, ROOM_VALUES

    entry = ROOM_VALUES.get(node.name)
    if entry is None:
        hint = did_you_mean(node.name, ROOM_VALUES)
        errors.append(ExprError(f"unknown room value 'room.{node.name}'{hint}", node.name_span))
        return ""
    if not ctx.room_names:
        errors.append(ExprError("room values are read in rules, not in segments or targets", node.span))
        return ""
    if entry.metric and not ctx.room_metrics:
        errors.append(ExprError(f"room.{node.name} is a room metric, and [engine] room_metrics = false turns "
                                "them off", node.span))
        return ""
    if not entry.arg and node.arg is not None:
        errors.append(ExprError(f"room.{node.name} takes no argument", node.arg_span))
        return ""
    if entry.arg and node.arg is None:
        what = "a segment or target name" if entry.arg == "name" else f"a step ({', '.join(FUNNEL_STEPS)})"
        errors.append(ExprError(f"room.{node.name} needs {what}: room.{node.name}(NAME)", node.span))
        return ""
    if entry.arg == "name" and node.arg not in ctx.segments and node.arg not in ctx.targets:
        hint = did_you_mean(node.arg, [*ctx.segments, *ctx.targets])
        errors.append(ExprError(f"unknown segment or target {node.arg!r}{hint}", node.arg_span))
        return ""
    if entry.arg == "step" and node.arg not in FUNNEL_STEPS:
        hint = did_you_mean(node.arg, FUNNEL_STEPS)
        errors.append(ExprError(f"unknown funnel step {node.arg!r}{hint} (steps: {', '.join(FUNNEL_STEPS)})",
                                node.arg_span))
        return ""
    return "num"


def _name(node: ast.Name, ctx: CheckContext, errors: list[ExprError]) -> str:
    name = node.name
    if name in BUILTINS:
        node.kind = "builtin"
        return BUILTINS[name]
    if name in ctx.profile:
        node.kind = "profile"
        return "num" if ctx.profile[name] == "num" else "str"
    if name in ctx.segments:
        node.kind = "segment"
        return "bool"
    if name in FUNCTIONS:
        errors.append(ExprError(f"{name} is a function: call it, e.g. {name}(...)", node.span))
        return ""
    if name in ctx.event_types:
        errors.append(ExprError(f"{name!r} is an event type, not a value: use count({name}) or since({name})", node.span))
        return ""
    hint = did_you_mean(name, ctx.known_names())
    errors.append(ExprError(f"unknown name {name!r}{hint}", node.span))
    return ""


def _binary(node: ast.Binary, ctx: CheckContext, errors: list[ExprError]) -> str:
    lt = _check(node.left, ctx, errors)
    rt = _check(node.right, ctx, errors)
    op = node.op
    if op in ast.LOGICAL:
        _expect(node.left, lt, "bool", f"'{op}'", errors)
        _expect(node.right, rt, "bool", f"'{op}'", errors)
        return "bool"
    if op in ast.ARITHMETIC:
        _expect(node.left, lt, "num", f"'{op}'", errors)
        _expect(node.right, rt, "num", f"'{op}'", errors)
        return "num"
    if op in ("==", "!="):
        if lt and rt and lt != rt:
            errors.append(ExprError(f"cannot compare {_TYPE_WORDS[lt]} with {_TYPE_WORDS[rt]}", node.span))
        elif lt == "str":
            for value, other in ((node.right, node.left), (node.left, node.right)):
                if isinstance(value, ast.Str):
                    _category_value(other, value, ctx, errors)
            _comparable(node.left, node.right, errors)
        return "bool"
    # ordering comparisons
    if lt and rt and lt != rt:
        errors.append(ExprError(f"cannot compare {_TYPE_WORDS[lt]} with {_TYPE_WORDS[rt]}", node.span))
    else:
        _expect(node.left, lt, "num", f"'{op}'", errors)
        _expect(node.right, rt, "num", f"'{op}'", errors)
    return "bool"


def _expect(node: ast.Node, got: str, want: str, where: str, errors: list[ExprError]) -> None:
    if got and got != want:
        errors.append(ExprError(f"{where} needs {_TYPE_WORDS[want]}, got {_TYPE_WORDS[got]}", node.span))


def _category_value(subject: ast.Node, value: ast.Str, ctx: CheckContext, errors: list[ExprError]) -> None:
    """A literal compared with a declared category must be one of its values."""
    allowed: tuple[str, ...] = ()
    if isinstance(subject, ast.Name) and subject.kind == "profile" and ctx.profile[subject.name] != "num":
        allowed = (*ctx.profile[subject.name], "")  # "" is the value of an unset attribute
    elif isinstance(subject, ast.Name) and subject.kind == "builtin" and subject.name in CATEGORY_BUILTINS:
        allowed = (*ctx.categories, "")
    elif isinstance(subject, ast.EventField) and subject.field_name == "type":
        allowed = tuple(sorted(ctx.event_types))
    if allowed and value.value not in allowed:
        hint = did_you_mean(value.value, allowed)
        errors.append(ExprError(f"{value.value!r} is not a value of {ast.to_source(subject)}{hint}", value.span))


#: What two non-literal strings can be compared by value: names known when the rules load
#: (categories, profile values) with each other; item and text with each other; each other field
#: only with itself.
_STRING_KINDS = {"category": "name", "item": "text", "text": "text", "room": "room", "viewer": "viewer", "type": "type"}


def _string_kind(node: ast.Node) -> str:
    if isinstance(node, ast.EventField):
        return _STRING_KINDS.get(node.field_name, "")
    if isinstance(node, ast.Name) and (node.kind == "profile" or (node.kind == "builtin" and node.name in CATEGORY_BUILTINS)):
        return "name"
    return ""  # a literal (compares with anything) or an error reported already


def _comparable(left: ast.Node, right: ast.Node, errors: list[ExprError]) -> None:
    """Two strings compare by value; the pairs the engine cannot compare that way are load errors
    (rather than a comparison that is silently never true)."""
    a, b = _string_kind(left), _string_kind(right)
    if a and b and a != b:
        errors.append(ExprError(f"cannot compare {ast.to_source(left)} with {ast.to_source(right)}: "
                                "compare each with a string literal", right.span))


def _types(types: tuple[str, ...], span: tuple[int, int], ctx: CheckContext, errors: list[ExprError]) -> None:
    pos = span[0]
    for name in types:
        if name.startswith("comment:") and name not in ctx.event_types:
            intent = name[8:]
            if intent not in ctx.intents:
                hint = did_you_mean(intent, ctx.intents)
                errors.append(ExprError(f"unknown intent {intent!r}{hint} (declare it in [intents])",
                                        (pos + 8, pos + len(name))))
        elif name not in ctx.event_types:
            hint = did_you_mean(name, ctx.event_types)
            errors.append(ExprError(f"unknown event type {name!r}{hint}", (pos, pos + len(name))))
        pos += len(name) + 1  # the '|' (spaces around '|' are rare; spans stay close)


def _text(node: ast.TextMatch | ast.Intent, ctx: CheckContext, errors: list[ExprError]) -> str:
    """``event.text matches/contains '...'`` and ``event.intent(NAME)`` (segengine.text)."""
    if isinstance(node, ast.Intent):
        if not ctx.in_event_rule:
            errors.append(ExprError("event.intent() is only available in event rules (rules with 'on')", node.span))
        elif node.name not in ctx.intents:
            hint = did_you_mean(node.name, ctx.intents)
            errors.append(ExprError(f"unknown intent {node.name!r}{hint} (declare it in [intents])", node.arg_span))
        return "bool"
    t = _check(node.operand, ctx, errors)
    if t and not (isinstance(node.operand, ast.EventField) and node.operand.field_name == "text"):
        errors.append(ExprError(f"'{node.op}' applies to event.text, not {ast.to_source(node.operand)}", node.operand.span))
    if node.op == "matches":
        try:
            re.compile(node.pattern)
        except re.error as err:
            errors.append(ExprError(f"bad regular expression: {err.msg}" + (f" at position {err.pos}" if err.pos is not None else ""),
                                    node.pattern_span))
    elif not node.pattern:
        errors.append(ExprError("'contains' needs a non-empty string", node.pattern_span))
    return "bool"


def _window(seconds: float, span: tuple[int, int], errors: list[ExprError]) -> None:
    ms = seconds * 1000
    if seconds > MAX_DURATION:  # first: beyond it, seconds * 1000 may not even be finite
        errors.append(ExprError("a window must be at most 36500d (100 years)", span))
    elif abs(ms - round(ms)) > 1e-6:
        errors.append(ExprError("a window must be a whole number of milliseconds", span))
    elif seconds < 1:
        errors.append(ExprError("a window must be at least 1s", span))


def segment_refs(node: ast.Node) -> list[ast.Name]:
    """The segment names used in ``node`` (after checking), in source order."""
    return [n for n in ast.walk(node) if isinstance(n, ast.Name) and n.kind == "segment"]


def fold(node: ast.Node) -> ast.Node:
    """Constant folding: literal arithmetic, literal comparisons, and/or/not with literals."""
    if isinstance(node, ast.Unary):
        node.operand = fold(node.operand)
        inner = node.operand
        if node.op == "not" and isinstance(inner, ast.Bool):
            return ast.Bool(not inner.value, span=node.span, type="bool")
        if node.op == "-" and isinstance(inner, ast.Num):
            return ast.Num(-inner.value, inner.is_duration, span=node.span, type="num")
        return node
    if isinstance(node, ast.In):
        node.operand = fold(node.operand)
        node.items = [fold(i) for i in node.items]
        return node
    if not isinstance(node, ast.Binary):
        return node
    node.left, node.right = fold(node.left), fold(node.right)
    left, right, op = node.left, node.right, node.op
    if op in ast.LOGICAL:
        for const, other in ((left, right), (right, left)):
            if isinstance(const, ast.Bool):
                if (op == "and") == const.value:  # true and X, false or X -> X
                    return other
                return ast.Bool(const.value, span=node.span, type="bool")
        return node
    literal = (ast.Num, ast.Str, ast.Bool)
    if isinstance(left, literal) and isinstance(right, literal):
        a, b = left.value, right.value
        if op in ast.ARITHMETIC:
            if op == "/" and b == 0:
                return node  # leave runtime semantics (inf) to the kernel
            value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0}[op]
            if not math.isfinite(value):
                return node  # overflow: the kernel computes it (inf), as it does a division by zero
            return ast.Num(float(value), span=node.span, type="num")
        result = {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        return ast.Bool(bool(result), span=node.span, type="bool")
    return node


#: What a keyed counter (``count(T, W, by = KEY)``) can be keyed by: a field of the current event.
BY_KEYS = ("item", "category")


def _by(node: ast.Node, ctx: CheckContext, errors: list[ExprError]) -> None:
    """``by = item|category`` compares with the current event's field: event rules only."""
    if node.by not in BY_KEYS:
        hint = did_you_mean(node.by, BY_KEYS)
        errors.append(ExprError(f"a counter is keyed by item or category, not {node.by!r}{hint}", node.by_span))
    elif not ctx.in_event_rule:
        errors.append(ExprError(f"'by = {node.by}' counts the current event's {node.by}: only event rules (rules with 'on') "
                                "have one", node.by_span))
