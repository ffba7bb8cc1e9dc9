"""Room names in rules: ``room.audience``, ``room.share(NAME)``, ``room.uv``, ``room.funnel(STEP)``...

One table, :data:`ROOM_VALUES`, says what each name is: its argument (none, a segment or target
name, a funnel step), whether ``explain`` shows it in seconds, and the Numba expression of its
value for room slot ``r``. The checker, the kernel generator and ``explain_room`` read it.

In a viewer rule a room name reads the viewer's current (or last) room; in a room rule
(``[[room_rules]]``) the rule's room. A room the viewer never entered reads 0.

``room.share(NAME)`` is (present viewers of the room in segment or target NAME) / ``room.audience``
(0 when nobody is present). The numerator is a per-(room, NAME) count kept exact on membership
edges: every pass of a viewer (its events, its timers, a room-wide trigger) compares "present
and in NAME" with what was counted (``VI share_room:NAME`` holds the counted room + 1, 0 for
none) and moves the viewer's unit between rooms' ``RI share:NAME`` counters. A segment that
changes with time alone gives the viewer a timer, as a state rule would.

The room metrics (``uv``, ``gmv``, ``conversion``, ``avg_dwell``, ``funnel``) come from the
room-metrics columns: :data:`ROOM_METRICS` is the hook that provides their code
(``room_value_code(gen, name, r)``); until it is set, compiling a rule that reads one raises
``NotImplementedError`` (the checker accepts them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..rules import ast
from .base import CONST, NEVER, Feature

__all__ = ["ROOM_VALUES", "RoomName", "FUNNEL_STEPS", "ROOM_METRICS", "share_names", "room_var", "RoomNames",
           "RI_ZERO_PREFIXES"]

#: The purchase funnel's steps, in order (``room.funnel(STEP)``).
FUNNEL_STEPS = ("enter", "view", "click", "cart", "checkout", "pay")

#: RI columns that start at 0 in a new room (the others start "never": MISSING).
RI_ZERO_PREFIXES = ("share:", "room_edge:", "room_fired:", "room_suppressed:", "room_checked:", "keyed_evictions", "rm_")

#: ``room_value_code(gen, name, r) -> str`` of the room-metrics columns (set where they are defined).
ROOM_METRICS: list[Callable[[Any, str, str], str]] = []


@dataclass(frozen=True)
class RoomName:
    """One room name: ``arg`` is "" (none), "name" (a segment or target name) or "step";
    ``code(gen, node, r)`` the expression of its value (float) in room slot ``r`` (r >= 0)."""

    arg: str
    code: Callable[[Any, ast.RoomValue, str], str]
    seconds: bool = False
    doc: str = ""
    metric: bool = False  # read from the room metrics ([engine] room_metrics = false turns them off)
    #: the viewer event types that can change it besides a session starting or ending (None: any
    #: pass can): a room rule reading only such names skips the events that change none of them
    changed_by: tuple[str, ...] | None = ()


def _audience(gen, node, r) -> str:
    return f"float(RI[{r}, {gen.col('ri', 'audience')}])"


def _share(gen, node, r) -> str:
    aud = f"RI[{r}, {gen.col('ri', 'audience')}]"
    return f"(float(RI[{r}, {gen.col('ri', 'share:' + node.arg)}]) / {aud} if {aud} > 0 else 0.0)"


def _metric(gen, node, r) -> str:
    if not ROOM_METRICS:
        raise NotImplementedError(
            f"room.{node.name} needs the room-metrics columns, which this build does not have yet: "
            "segengine.features.roomnames.ROOM_METRICS is empty")
    name = node.name if node.arg is None else f"{node.name}:{node.arg}"
    return ROOM_METRICS[0](gen, name, r)


#: Every room name: the checker, the kernel generator and explain read this table.
ROOM_VALUES: dict[str, RoomName] = {
    "audience": RoomName("", _audience, doc="viewers present in the room now"),
    "share": RoomName("name", _share, doc="present viewers in segment or target NAME / audience", changed_by=None),
    "uv": RoomName("", _metric, doc="distinct viewers of the stream so far", metric=True),
    "gmv": RoomName("", _metric, doc="paid minus refunded amounts", metric=True, changed_by=("pay", "refund")),
    "conversion": RoomName("", _metric, doc="buyers / UV", metric=True, changed_by=("pay", "refund")),
    "avg_dwell": RoomName("", _metric, seconds=True, doc="average dwell of ended sessions", metric=True),
    "funnel": RoomName("step", _metric, doc="sessions that reached STEP", metric=True, changed_by=FUNNEL_STEPS[1:]),
}


def share_names(rs) -> list[str]:
    """The segment and target names whose ``room.share`` the rules read (viewer and room rules)."""
    roots = [r.when for r in rs.rules] + [n for r in rs.rules for n in r.placeholders.values()]
    roots += [r.when for r in getattr(rs, "room_rules", [])]
    out: dict[str, None] = {}
    for root in roots:
        for n in ast.walk(root):
            if isinstance(n, ast.RoomValue) and n.name == "share" and n.arg is not None:
                out[n.arg] = None
    return list(out)


def room_var(gen) -> str:
    """The room slot the value is read for: the rule's room (room rules preset it), else the viewer's."""
    if "room" not in gen.cache:
        name = gen.tmp("vroom")
        gen.emit(f"{name} = {gen.vi('room')}")
        gen.cache["room"] = (name,)
    return gen.cache["room"][0]


class RoomNames(Feature):
    key = "roomnames"
    rank = 35
    nodes = (ast.RoomValue,)

    def node_inputs(self, node):
        return None  # other viewers change it

    def unit(self, node):
        return "s" if isinstance(node, ast.RoomValue) and ROOM_VALUES[node.name].seconds else ""

    def columns(self, rs, lay, nodes, names):
        for name in share_names(rs):
            lay.add("vi", f"share_room:{name}")
            lay.add("ri", f"share:{name}")

    def readouts(self, rs, lay):
        """The room names the viewer rules read, as ``viewer()`` shows them for the viewer's room."""
        seen: dict[str, ast.Node] = {}
        for rule in rs.rules:
            for root in (rule.when, *rule.placeholders.values()):
                for n in ast.walk(root):
                    if isinstance(n, ast.RoomValue) and ROOM_VALUES[n.name].code is not _metric:
                        seen.setdefault(ast.to_source(n), n)
        return list(seen.items())

    def number(self, gen, node, v):
        r = room_var(gen)
        gen.emit(f"{v} = ({ROOM_VALUES[node.name].code(gen, node, r)}) if {r} >= 0 else 0.0")
        return v, "0.0", CONST, NEVER


FEATURES = [RoomNames()]
