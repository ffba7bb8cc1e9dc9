"""Tokenizer and recursive-descent parser for rule expressions (SPEC §4).

Errors are raised as :class:`ExprError` with a character span inside the expression;
the loader turns spans into file lines and columns.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from . import ast
from .suggest import did_you_mean

__all__ = ["ExprError", "parse_expr", "parse_duration", "duration_problem", "DURATION_UNITS", "FUNCTIONS",
           "MAX_DEPTH", "MAX_DURATION", "MIN_DURATION"]

DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: The deepest expression tree: parentheses, ``not``, unary minus, operators and the segments
#: an expression uses each add a level. Long ``and``/``or`` chains are grouped as a balanced
#: tree (a 1,000-clause chain is 10 levels), so only genuine nesting reaches the limit.
MAX_DEPTH = 32
#: Durations (settings and windows) lie in [1ms, 36500d]: 100 years keeps every sum of a
#: timestamp and a duration far inside int64 microseconds.
MAX_DURATION = 36500 * 86400.0
MIN_DURATION = 0.001
#: An ``and``/``or`` chain longer than this is built as a balanced tree, not a left-deep one.
_CHAIN_FLAT = 8
FUNCTIONS = ("count", "since", "sum", "avg", "interest", "tag", "active_hour_share")
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})


class ExprError(Exception):
    """A problem at ``span`` (character offsets) inside one expression string."""

    def __init__(self, message: str, span: tuple[int, int]):
        super().__init__(message)
        self.message = message
        self.span = span


@dataclass(slots=True)
class Token:
    kind: str  # num, dur, str, name, op, end
    text: str
    start: int
    end: int
    value: object = None


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)(?P<unit>ms|s|m|h|d)?(?![A-Za-z0-9_])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|<=|>=|[<>()\[\],|+\-*/.:])
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            ch = text[pos]
            if ch in "\"'":
                raise ExprError("unterminated string", (pos, len(text)))
            if ch == "=" and tokens and tokens[-1].kind == "name" and tokens[-1].text == "by":
                tokens.append(Token("op", "=", pos, pos + 1))  # count(T, W, by = item): the only '='
                pos += 1
                continue
            if ch == "=":
                raise ExprError("unexpected '='; did you mean '=='?", (pos, pos + 1))
            if ch == "!":
                raise ExprError("unexpected '!'; use 'not' or '!='", (pos, pos + 1))
            if ch == "&":
                raise ExprError("unexpected '&'; use 'and'", (pos, pos + 1))
            if ch.isdigit():
                m2 = re.match(r"\d+(?:\.\d*)?([A-Za-z_]\w*)", text[pos:])
                if m2:
                    unit = m2.group(1)
                    start = pos + m2.start(1)
                    hint = did_you_mean(unit, DURATION_UNITS)
                    raise ExprError(f"unknown duration unit {unit!r}{hint} (units: ms, s, m, h, d)", (start, start + len(unit)))
            raise ExprError(f"unexpected character {ch!r}", (pos, pos + 1))
        kind = m.lastgroup
        if kind == "unit":
            kind = "num"
        if kind != "ws":
            if m.group("num") is not None:
                number = float(m.group("num"))
                unit = m.group("unit")
                if not math.isfinite(number * DURATION_UNITS.get(unit or "s", 1.0)):
                    raise ExprError(f"number out of range: {m.group(0)}", (m.start(), m.end()))
                if unit:
                    tokens.append(Token("dur", m.group(0), m.start(), m.end(), number * DURATION_UNITS[unit]))
                else:
                    tokens.append(Token("num", m.group(0), m.start(), m.end(), number))
            elif m.group("str") is not None:
                raw = m.group(0)[1:-1]
                tokens.append(Token("str", m.group(0), m.start(), m.end(), re.sub(r"\\(.)", r"\1", raw)))
            else:
                tokens.append(Token(kind, m.group(0), m.start(), m.end()))
        pos = m.end()
    if tokens and tokens[-1].end > len(text):  # pragma: no cover - regex never overruns
        raise ExprError("internal tokenizer error", (0, len(text)))
    tokens.append(Token("end", "", len(text), len(text)))
    return tokens


def parse_duration(text: str) -> float:
    """``"90s"`` -> 90.0; raises ValueError with a message for anything else (out of range included)."""
    m = re.fullmatch(r"\s*((?:\d+\.\d*|\.\d+|\d+))\s*(ms|s|m|h|d)\s*", text)
    if not m:
        raise ValueError(f"invalid duration {text!r}: expected a number and a unit (ms, s, m, h, d), e.g. \"90s\"")
    seconds = float(m.group(1)) * DURATION_UNITS[m.group(2)]
    problem = duration_problem(seconds)
    if problem:
        raise ValueError(problem)
    return seconds


def duration_problem(seconds: float, what: str = "a duration") -> str:
    """Why ``seconds`` is not an allowed duration, or "" (``what``: the subject of the message)."""
    if seconds != seconds:
        return f"{what} must be a number of seconds, not nan"
    if seconds <= 0:
        return f"{what} must be positive"
    if seconds > MAX_DURATION:
        return f"{what} must be at most 36500d (100 years)"
    if seconds < MIN_DURATION:
        return f"{what} must be at least 1ms"
    return ""


def chain(op: str, operands: list[ast.Node], type: str = "") -> ast.Node:
    """``a op b op c ...`` as a tree: left-deep when short (as written), balanced when long, so
    that a generated chain of thousands of clauses stays a few levels deep (and/or are associative)."""
    if len(operands) <= _CHAIN_FLAT:
        node = operands[0]
        for right in operands[1:]:
            node = ast.Binary(op, node, right, span=(node.span[0], right.span[1]), type=type)
        return node
    mid = len(operands) // 2
    left, right = chain(op, operands[:mid], type), chain(op, operands[mid:], type)
    return ast.Binary(op, left, right, span=(left.span[0], right.span[1]), type=type)


def _too_deep(node: ast.Node, depth: dict[int, int], limit: int) -> ast.Node:
    """The node where the deepest path of ``node`` (depths in ``depth``) passes ``limit`` levels,
    or a segment name on it whose segment makes it too deep."""
    level = 1
    while level <= limit:
        kids = ast.children(node)
        if not kids:
            return node  # a segment name: its own depth is its segment's
        node = max(kids, key=lambda k: depth[id(k)])
        level += 1
    return node


def check_depth(node: ast.Node, segment_depth: dict[str, int] | None = None, limit: int = MAX_DEPTH) -> int:
    """The depth of ``node`` (a segment name counts 1 + its segment's depth, from
    ``segment_depth``); raises :class:`ExprError` at the place it passes ``limit``."""
    depth: dict[int, int] = {}
    stack: list[tuple[ast.Node, bool]] = [(node, False)]
    while stack:
        cur, done = stack.pop()
        kids = ast.children(cur)
        if done or not kids:
            d = 1 + max((depth[id(k)] for k in kids), default=0)
            if segment_depth is not None and isinstance(cur, ast.Name) and cur.kind == "segment":
                d = 1 + segment_depth.get(cur.name, 0)
            depth[id(cur)] = d
            continue
        stack.append((cur, True))
        stack.extend((k, False) for k in kids)
    total = depth[id(node)]
    if total > limit:
        where = _too_deep(node, depth, limit)
        segments = isinstance(where, ast.Name) and where.kind == "segment" and segment_depth is not None
        raise ExprError(f"expression nested too deeply (max {limit})" + (", counting the segments it uses" if segments else ""),
                        where.span)
    return total


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.nesting = 0  # open '(', 'not' and unary '-' around the current token

    def enter(self, tok: Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise ExprError(f"expression nested too deeply (max {MAX_DEPTH})", (tok.start, tok.end))

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, kind: str, text: str | None = None) -> bool:
        tok = self.tok
        return tok.kind == kind and (text is None or tok.text == text)

    def expect_op(self, text: str, context: str) -> Token:
        if self.at("op", text):
            return self.advance()
        raise self.unexpected(f"expected '{text}' {context}")

    def unexpected(self, message: str) -> ExprError:
        tok = self.tok
        got = "end of expression" if tok.kind == "end" else repr(tok.text)
        end = tok.end if tok.kind != "end" else tok.start + 1
        return ExprError(f"{message}, got {got}", (tok.start, end))

    # grammar ---------------------------------------------------------------
    def parse(self) -> ast.Node:
        if self.at("end"):
            raise ExprError("empty expression", (0, 1))
        node = self.or_expr()
        if not self.at("end"):
            tok = self.tok
            if tok.kind == "name" and tok.text not in KEYWORDS:
                raise ExprError(f"unexpected name {tok.text!r}: missing 'and' or 'or'?", (tok.start, tok.end))
            raise self.unexpected("expected an operator or the end of the expression")
        return node

    def or_expr(self) -> ast.Node:
        operands = [self.and_expr()]
        while self.at("name", "or"):
            self.advance()
            operands.append(self.and_expr())
        return chain("or", operands)

    def and_expr(self) -> ast.Node:
        operands = [self.not_expr()]
        while self.at("name", "and"):
            self.advance()
            operands.append(self.not_expr())
        return chain("and", operands)

    def not_expr(self) -> ast.Node:
        if self.at("name", "not"):
            self.enter(self.tok)
            start = self.advance().start
            operand = self.not_expr()
            self.nesting -= 1
            return ast.Unary("not", operand, span=(start, operand.span[1]))
        return self.comparison()

    def comparison(self) -> ast.Node:
        left = self.additive()
        tok = self.tok
        if tok.kind == "op" and tok.text in ast.COMPARISONS:
            self.advance()
            right = self.additive()
            node: ast.Node = ast.Binary(tok.text, left, right, span=(left.span[0], right.span[1]))
            nxt = self.tok
            if nxt.kind == "op" and nxt.text in ast.COMPARISONS:
                raise ExprError("comparisons cannot be chained; join them with 'and'", (nxt.start, nxt.end))
            return node
        if self.at("name", "matches") or self.at("name", "contains"):
            op = self.advance().text
            pattern = self.tok
            if pattern.kind != "str":
                raise self.unexpected(f"expected a string literal after '{op}'")
            self.advance()
            return ast.TextMatch(op, left, str(pattern.value), pattern_span=(pattern.start, pattern.end),
                                 span=(left.span[0], pattern.end))
        negated = False
        if self.at("name", "not") and self.tokens[self.i + 1].kind == "name" and self.tokens[self.i + 1].text == "in":
            self.advance()
            negated = True
        if self.at("name", "in"):
            self.advance()
            self.expect_op("[", "after 'in'")
            items: list[ast.Node] = []
            while not self.at("op", "]"):
                items.append(self.additive())
                if not self.at("op", ","):
                    break
                self.advance()
            end = self.expect_op("]", "to close the list").end
            return ast.In(left, items, negated, span=(left.span[0], end))
        return left

    def additive(self) -> ast.Node:
        node = self.multiplicative()
        while self.tok.kind == "op" and self.tok.text in "+-":
            op = self.advance().text
            right = self.multiplicative()
            node = ast.Binary(op, node, right, span=(node.span[0], right.span[1]))
        return node

    def multiplicative(self) -> ast.Node:
        node = self.unary()
        while self.tok.kind == "op" and self.tok.text in "*/":
            op = self.advance().text
            right = self.unary()
            node = ast.Binary(op, node, right, span=(node.span[0], right.span[1]))
        return node

    def unary(self) -> ast.Node:
        if self.at("op", "-"):
            self.enter(self.tok)
            start = self.advance().start
            operand = self.unary()
            self.nesting -= 1
            return ast.Unary("-", operand, span=(start, operand.span[1]))
        return self.primary()

    def primary(self) -> ast.Node:
        tok = self.tok
        if tok.kind == "num":
            self.advance()
            return ast.Num(tok.value, span=(tok.start, tok.end))
        if tok.kind == "dur":
            self.advance()
            return ast.Num(tok.value, True, span=(tok.start, tok.end))
        if tok.kind == "str":
            self.advance()
            return ast.Str(tok.value, span=(tok.start, tok.end))
        if self.at("op", "("):
            self.enter(tok)
            self.advance()
            node = self.or_expr()
            end = self.expect_op(")", "to close '('").end
            self.nesting -= 1
            node.span = (tok.start, end) if not isinstance(node, (ast.Num, ast.Str, ast.Bool)) else node.span
            return node
        if tok.kind == "name":
            if tok.text in ("true", "false"):
                self.advance()
                return ast.Bool(tok.text == "true", span=(tok.start, tok.end))
            if tok.text in KEYWORDS:
                raise self.unexpected("expected a value")
            self.advance()
            if self.at("op", "("):
                return self.call(tok)
            if tok.text == "room" and self.at("op", "."):
                return self.room_value(tok)
            if tok.text == "event":
                self.expect_op(".", "after 'event' (event.FIELD)")
                name = self.tok
                if name.kind != "name":
                    raise self.unexpected("expected a field name after 'event.'")
                self.advance()
                if name.text == "intent" and self.at("op", "("):
                    return self.intent(tok)
                return ast.EventField(name.text, span=(tok.start, name.end))
            return ast.Name(tok.text, span=(tok.start, tok.end))
        raise self.unexpected("expected a value")

    # calls -------------------------------------------------------------------
    def call(self, name: Token) -> ast.Node:
        func = name.text
        if func not in FUNCTIONS:
            hint = did_you_mean(func, FUNCTIONS)
            raise ExprError(f"unknown function {func!r}{hint}", (name.start, name.end))
        self.advance()  # (
        if func in ("count", "since"):
            types, tspan = self.typeset()
            window, wspan = None, (0, 0)
            by, by_span = None, (0, 0)
            if self.at("op", ","):
                self.advance()
                if self.at("name", "by"):
                    by, by_span = self.by_arg()
                elif func == "count":
                    window, wspan = self.duration_arg()
                    by, by_span = self.optional_by()
                else:
                    raise self.unexpected("expected 'by = item' or 'by = category' in since()")
            end = self.expect_op(")", f"to close {func}(")
            if func == "count":
                return ast.Count(types, window, types_span=tspan, window_span=wspan, span=(name.start, end.end),
                                 by=by, by_span=by_span)
            return ast.Since(types, types_span=tspan, span=(name.start, end.end), by=by, by_span=by_span)
        if func in ("sum", "avg"):
            field = self.tok
            if field.kind != "name":
                raise self.unexpected(f"expected a field name (price or amount) as the first argument of {func}()")
            self.advance()
            self.expect_op(",", f"after the field of {func}()")
            types, tspan = self.typeset()
            self.expect_op(",", f"before the window of {func}() (e.g. {func}(price, view, 10m))")
            window, wspan = self.duration_arg()
            by, by_span = self.optional_by()
            end = self.expect_op(")", f"to close {func}(")
            return ast.Agg(func, field.text, types, window, field_span=(field.start, field.end),
                           types_span=tspan, window_span=wspan, span=(name.start, end.end), by=by, by_span=by_span)
        if func == "active_hour_share":  # active_hour_share(H1, H2): local hours [H1, H2)
            bounds = []
            for i in range(2):
                tok = self.tok
                if tok.kind != "num" or tok.text.endswith(("ms", "s", "m", "h", "d")):
                    raise self.unexpected("expected an hour of the day (0 to 24) in active_hour_share(H1, H2)")
                self.advance()
                bounds.append(tok)
                if i == 0:
                    self.expect_op(",", "between the hours of active_hour_share(H1, H2)")
            end = self.expect_op(")", "to close active_hour_share(")
            return ast.ActiveHours(float(bounds[0].value), float(bounds[1].value),
                                   arg_span=(bounds[0].start, bounds[1].end), span=(name.start, end.end))
        arg = self.tok
        if arg.kind not in ("name", "str"):
            raise self.unexpected(f"expected a name in {func}()")
        self.advance()
        value = arg.text if arg.kind == "name" else str(arg.value)
        end = self.expect_op(")", f"to close {func}(")
        if func == "interest":
            return ast.Interest(value, arg_span=(arg.start, arg.end), span=(name.start, end.end))
        return ast.Tag(value, arg_span=(arg.start, arg.end), span=(name.start, end.end))

    def intent(self, start: Token) -> ast.Node:
        """``event.intent(NAME)``, after ``event.intent``."""
        self.advance()  # (
        arg = self.tok
        if arg.kind not in ("name", "str"):
            raise self.unexpected("expected an intent name in event.intent()")
        self.advance()
        end = self.expect_op(")", "to close event.intent(")
        value = arg.text if arg.kind == "name" else str(arg.value)
        return ast.Intent(value, arg_span=(arg.start, arg.end), span=(start.start, end.end))

    def room_value(self, room: Token) -> ast.Node:
        """``room.NAME`` or ``room.NAME(ARG)`` (the checker knows the names)."""
        self.advance()  # .
        name = self.tok
        if name.kind != "name":
            raise self.unexpected("expected a room value after 'room.' (e.g. room.audience)")
        self.advance()
        if not self.at("op", "("):
            return ast.RoomValue(name.text, None, name_span=(name.start, name.end), span=(room.start, name.end))
        self.advance()
        arg = self.tok
        if arg.kind not in ("name", "str"):
            raise self.unexpected(f"expected a name in room.{name.text}()")
        self.advance()
        end = self.expect_op(")", f"to close room.{name.text}(")
        value = arg.text if arg.kind == "name" else str(arg.value)
        return ast.RoomValue(name.text, value, name_span=(name.start, name.end), arg_span=(arg.start, arg.end),
                             span=(room.start, end.end))

    def typeset(self) -> tuple[tuple[str, ...], tuple[int, int]]:
        names: list[str] = []
        start = self.tok.start
        while True:
            tok = self.tok
            if tok.kind != "name":
                raise self.unexpected("expected an event type")
            self.advance()
            if self.at("op", ":") and tok.text == "comment":  # comment:INTENT (segengine.text)
                self.advance()
                intent = self.tok
                if intent.kind != "name":
                    raise self.unexpected("expected an intent name after 'comment:'")
                self.advance()
                tok = Token("name", f"comment:{intent.text}", tok.start, intent.end)
            names.append(tok.text)
            if not self.at("op", "|"):
                return tuple(names), (start, tok.end)
            self.advance()

    def optional_by(self) -> tuple[str | None, tuple[int, int]]:
        """``, by = KEY`` after a window, if present."""
        if not self.at("op", ","):
            return None, (0, 0)
        self.advance()
        if not self.at("name", "by"):
            raise self.unexpected("expected 'by = item' or 'by = category'")
        return self.by_arg()

    def by_arg(self) -> tuple[str, tuple[int, int]]:
        """``by = KEY`` (keyed counters; the checker knows the keys)."""
        start = self.advance()  # by
        self.expect_op("=", "after 'by' (by = item or by = category)")
        key = self.tok
        if key.kind != "name":
            raise self.unexpected("expected item or category after 'by ='")
        self.advance()
        return key.text, (start.start, key.end)

    def duration_arg(self) -> tuple[float, tuple[int, int]]:
        tok = self.tok
        if tok.kind == "dur":
            self.advance()
            return float(tok.value), (tok.start, tok.end)
        if tok.kind == "num":
            raise ExprError(f"a window needs a unit: write e.g. '{tok.text}s'", (tok.start, tok.end))
        raise self.unexpected("expected a window duration such as 1m")


def parse_expr(text: str) -> ast.Node:
    """Parse one expression; raises :class:`ExprError` with a span on the first error
    (a tree deeper than :data:`MAX_DEPTH` levels included)."""
    node = _Parser(text).parse()
    check_depth(node)
    return node
