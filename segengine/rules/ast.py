"""Expression tree of the rules language.

Every node carries ``span = (start, end)``: character offsets into the expression
string, so that errors point inside the TOML string. The checker fills ``type``
(``"bool"``, ``"num"`` or ``"str"``) and resolves names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Span = tuple[int, int]


@dataclass(eq=False)
class Node:
    span: Span = field(default=(0, 0), kw_only=True)
    type: str = field(default="", kw_only=True)


@dataclass(eq=False)
class Num(Node):
    value: float
    is_duration: bool = False


@dataclass(eq=False)
class Str(Node):
    value: str


@dataclass(eq=False)
class Bool(Node):
    value: bool


@dataclass(eq=False)
class Name(Node):
    """A bare name; ``kind`` is set by the checker: builtin, profile or segment."""

    name: str
    kind: str = ""


@dataclass(eq=False)
class EventField(Node):
    """``event.FIELD``: a field of the event being ingested (event rules only)."""

    field_name: str


@dataclass(eq=False)
class Count(Node):
    """``count(T, W)``; ``window`` is None for the per-session count."""

    types: tuple[str, ...]
    window: float | None
    types_span: Span = (0, 0)
    window_span: Span = (0, 0)
    by: str | None = None  # keyed: "item" or "category" (features/keyed.py)
    by_span: Span = (0, 0)


@dataclass(eq=False)
class Since(Node):
    types: tuple[str, ...]
    types_span: Span = (0, 0)
    by: str | None = None
    by_span: Span = (0, 0)


@dataclass(eq=False)
class Agg(Node):
    """``sum(F, T, W)`` or ``avg(F, T, W)``."""

    func: str
    field_name: str
    types: tuple[str, ...]
    window: float
    field_span: Span = (0, 0)
    types_span: Span = (0, 0)
    window_span: Span = (0, 0)
    by: str | None = None
    by_span: Span = (0, 0)


@dataclass(eq=False)
class Interest(Node):
    category: str
    arg_span: Span = (0, 0)


@dataclass(eq=False)
class Tag(Node):
    name: str
    arg_span: Span = (0, 0)


@dataclass(eq=False)
class ActiveHours(Node):
    """``active_hour_share(H1, H2)``: the viewer's share of activity in local hours [H1, H2)."""

    start: float
    end: float
    arg_span: Span = (0, 0)


@dataclass(eq=False)
class TextMatch(Node):
    """``event.text matches 'regex'`` or ``event.text contains 'word'`` (``op``)."""

    op: str  # "matches" or "contains"
    operand: Node
    pattern: str
    pattern_span: Span = (0, 0)


@dataclass(eq=False)
class Intent(Node):
    """``event.intent(NAME)``: the event's text has intent NAME (segengine.text)."""

    name: str
    arg_span: Span = (0, 0)


@dataclass(eq=False)
class RoomValue(Node):
    """``room.NAME`` or ``room.NAME(ARG)``: a value of the viewer's room (of the rule's room in a
    room rule); the names and their arguments are listed in ``segengine.features.roomnames``."""

    name: str
    arg: str | None = None
    name_span: Span = (0, 0)
    arg_span: Span = (0, 0)


@dataclass(eq=False)
class Unary(Node):
    op: str  # "not" or "-"
    operand: Node


@dataclass(eq=False)
class Binary(Node):
    op: str  # and or == != < <= > >= + - * /
    left: Node
    right: Node


@dataclass(eq=False)
class In(Node):
    operand: Node
    items: list[Node]
    negated: bool = False


COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
ARITHMETIC = frozenset({"+", "-", "*", "/"})
LOGICAL = frozenset({"and", "or"})


def children(node: Node) -> list[Node]:
    """Direct sub-expressions of ``node``."""
    if isinstance(node, Unary):
        return [node.operand]
    if isinstance(node, Binary):
        return [node.left, node.right]
    if isinstance(node, In):
        return [node.operand, *node.items]
    if isinstance(node, TextMatch):
        return [node.operand]
    return []


def walk(node: Node):
    """Every node of the tree, parents before children."""
    stack = [node]
    while stack:
        cur = stack.pop()
        yield cur
        stack.extend(reversed(children(cur)))


def to_source(node: Node) -> str:
    """Canonical text of an expression (used by explain and as a feature key)."""
    if isinstance(node, Num):
        v = node.value
        if node.is_duration and v > 0:
            return _dur(v)
        return repr(int(v)) if v == int(v) and abs(v) < 1e15 else repr(v)
    if isinstance(node, Str):
        return repr(node.value)
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Name):
        return node.name
    if isinstance(node, EventField):
        return f"event.{node.field_name}"
    if isinstance(node, Count):
        types = "|".join(node.types)
        by = f", by = {node.by}" if node.by else ""
        return f"count({types}{by})" if node.window is None else f"count({types}, {_dur(node.window)}{by})"
    if isinstance(node, Since):
        by = f", by = {node.by}" if node.by else ""
        return f"since({'|'.join(node.types)}{by})"
    if isinstance(node, Agg):
        by = f", by = {node.by}" if node.by else ""
        return f"{node.func}({node.field_name}, {'|'.join(node.types)}, {_dur(node.window)}{by})"
    if isinstance(node, Interest):
        return f"interest({node.category})"
    if isinstance(node, ActiveHours):
        return f"active_hour_share({node.start:g}, {node.end:g})"
    if isinstance(node, Tag):
        return f"tag({node.name})"
    if isinstance(node, TextMatch):
        return f"{to_source(node.operand)} {node.op} {node.pattern!r}"
    if isinstance(node, Intent):
        return f"event.intent({node.name})"
    if isinstance(node, RoomValue):
        return f"room.{node.name}" if node.arg is None else f"room.{node.name}({node.arg})"
    if isinstance(node, Unary):
        inner = to_source(node.operand)
        if isinstance(node.operand, (Binary, In, TextMatch)):
            inner = f"({inner})"
        return f"not {inner}" if node.op == "not" else f"-{inner}"
    if isinstance(node, Binary):
        return f"{_paren(node.left, node)} {node.op} {_paren(node.right, node)}"
    if isinstance(node, In):
        items = ", ".join(to_source(i) for i in node.items)
        return f"{to_source(node.operand)} {'not in' if node.negated else 'in'} [{items}]"
    raise TypeError(f"unknown node {node!r}")


_PRECEDENCE = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5, "*": 6, "/": 6}


def _paren(child: Node, parent: Binary) -> str:
    text = to_source(child)
    if isinstance(child, Binary) and _PRECEDENCE[child.op] <= _PRECEDENCE[parent.op] and child.op != parent.op:
        return f"({text})"
    if isinstance(child, (In, TextMatch)) or (isinstance(child, Unary) and child.op == "not" and parent.op not in LOGICAL):
        return f"({text})"
    return text


def _dur(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    ms = round(seconds * 1000)
    return f"{ms}ms"


def duration_text(seconds: float) -> str:
    """A duration as a rules file writes it: ``10m``, ``90s``, ``250ms``."""
    return _dur(seconds)
