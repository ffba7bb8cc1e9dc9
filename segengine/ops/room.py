"""Room queries of the engine facade: ``mix`` (the present audience over a profile attribute),
``explain_room`` (why a room rule would or would not fire) and the room rules' counters for ``stats``.

They read the state arrays only; nothing changes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from ..guards import REASONS
from ..kernels.roomscan import mix_bins, mix_codes, mix_values
from ..rules import ast
from ..rules.suggest import did_you_mean

if TYPE_CHECKING:
    from ..runtime.core import EngineCore

__all__ = ["mix", "bin_labels", "RoomExplanation", "explain_room", "room_rule_counts"]


def bin_labels(edges: list[float]) -> list[str]:
    """``[0, 18, 25]`` -> ``["<0", "0-18", "18-25", ">=25"]`` (a bin holds lo <= value < hi)."""
    def show(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else repr(float(x))

    inner = [f"{show(a)}-{show(b)}" for a, b in zip(edges, edges[1:])]
    return [f"<{show(edges[0])}", *inner, f">={show(edges[-1])}"]


def mix(core: "EngineCore", attribute: str, room: str, bins: list[float] | None = None) -> dict[Any, int]:
    """See :meth:`segengine.Engine.mix`."""
    rs, lay, store = core.rules, core.compiled.layout, core.store
    attr = rs.profile.get(attribute)
    if attr is None:
        raise KeyError(f"unknown profile attribute {attribute!r}{did_you_mean(attribute, rs.profile)}")
    room_slot = core.rooms.get(room)
    n = len(core.viewers)
    _, col = lay.profile_cols[attribute]
    if attr.kind != "num":
        if bins is not None:
            raise ValueError(f"{attribute!r} is a category: bins are for number attributes")
        counts = np.zeros(len(attr.values) + 1, np.int64)
        if room_slot >= 0:
            mix_codes(store.PRES, store.VN, n, col, room_slot, counts)
        out: dict[Any, int] = {value: int(c) for value, c in zip(attr.values, counts[1:].tolist())}
        out["missing"] = int(counts[0])
        return out
    if bins is not None:
        edges = [float(b) for b in bins]
        if not edges or any(not math.isfinite(b) for b in edges) or any(b >= c for b, c in zip(edges, edges[1:])):
            raise ValueError(f"bins must be finite and increasing, got {bins!r}")
        counts = np.zeros(len(edges) + 1, np.int64)
        if room_slot >= 0:
            mix_bins(store.PRES, store.VF, n, col, room_slot, np.array(edges), counts)
        return dict(zip(bin_labels(edges), counts.tolist()))
    values = np.empty(n, np.float64)
    found = mix_values(store.PRES, store.VF, n, col, room_slot, values) if room_slot >= 0 else 0
    uniques, counts = np.unique(values[:found], return_counts=True)
    return {(int(u) if float(u).is_integer() else float(u)): int(c) for u, c in zip(uniques.tolist(), counts.tolist())}


class RoomExplanation(msgspec.Struct, kw_only=True):
    """Why room rule ``rule`` would or would not fire in ``room`` now (``Engine.explain_room``)."""

    rule: str
    room: str
    when: str
    holds: bool  # the condition now
    values: dict[str, float]  # each room name the condition reads, with its value
    was_true: bool  # the condition at the last evaluation (a firing needs it false before)
    would_fire: bool  # a rising edge now would fire (not blocked by the cooldown)
    cooldown: str = ""  # the setting, "" without one
    cooldown_remaining: float = 0.0  # seconds
    fired: int = 0  # in this room so far
    suppressed: int = 0  # by the cooldown, in this room so far
    last_fired: float | None = None  # event time (s) of the last firing in this room

    def __str__(self) -> str:
        lines = [f"room rule {self.rule!r} in room {self.room!r}: {self.when}",
                 f"  condition: {'true' if self.holds else 'false'} (at the last evaluation: "
                 f"{'true' if self.was_true else 'false'})"]
        lines += [f"    {name} = {value:g}" for name, value in self.values.items()]
        if self.cooldown:
            lines.append(f"  cooldown {self.cooldown}: " + (f"{self.cooldown_remaining:g} s remaining"
                                                             if self.cooldown_remaining > 0 else "not running"))
        lines.append(f"  fired {self.fired} times, suppressed {self.suppressed}"
                     + (f", last at {self.last_fired:g}" if self.last_fired is not None else ""))
        if not self.holds:
            verdict = "does not hold"
        elif self.was_true:
            verdict = "holds, and held at the last evaluation: fires again after it has been false"
        else:
            verdict = "would fire at the next evaluation" if self.would_fire else "a firing now is suppressed by its cooldown"
        lines.append(f"  -> {verdict}")
        return "\n".join(lines)


def room_value(core: "EngineCore", node: ast.RoomValue, r: int) -> float:
    """The value of a room name in room slot ``r`` (the kernels' formulas, read in Python)."""
    store, lay = core.store, core.compiled.layout
    aud = int(store.RI[r, lay.ri.index("audience")])
    if node.name == "audience":
        return float(aud)
    if node.name == "share":
        count = int(store.RI[r, lay.ri.index(f"share:{node.arg}")])
        return count / aud if aud > 0 else 0.0
    from . import roommetrics
    m = roommetrics.room_metrics(core, core.rooms.keys[r], None)  # the counters only
    if node.name == "funnel":
        return float(m.funnel[node.arg])
    return float(getattr(m, node.name))


def _evaluate(node: ast.Node, value) -> Any:
    if isinstance(node, (ast.Num, ast.Str, ast.Bool)):
        return node.value
    if isinstance(node, ast.RoomValue):
        return value(node)
    if isinstance(node, ast.Unary):
        inner = _evaluate(node.operand, value)
        return (not inner) if node.op == "not" else -inner
    if isinstance(node, ast.In):
        hit = _evaluate(node.operand, value) in [_evaluate(i, value) for i in node.items]
        return hit != node.negated
    assert isinstance(node, ast.Binary)
    a = _evaluate(node.left, value)
    if node.op in ("and", "or"):
        return (a and _evaluate(node.right, value)) if node.op == "and" else (a or _evaluate(node.right, value))
    b = _evaluate(node.right, value)
    if node.op == "/":
        return a / b if b else (math.copysign(math.inf, a) if a else math.nan)
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "==": lambda: a == b, "!=": lambda: a != b,
            "<": lambda: a < b, "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b}[node.op]()


def explain_room(core: "EngineCore", room: str, rule: str) -> RoomExplanation:
    """See :meth:`segengine.Engine.explain_room`."""
    from ..rules.ast import duration_text

    rules = {r.name: r for r in core.rules.room_rules}
    if rule not in rules:
        raise KeyError(f"unknown room rule {rule!r}{did_you_mean(rule, rules)}")
    r = core.rooms.get(room)
    if r < 0:
        raise KeyError(f"unknown room {room!r}")
    rr = rules[rule]
    store, lay = core.store, core.compiled.layout
    values: dict[str, float] = {}

    def value(node: ast.RoomValue) -> float:
        v = room_value(core, node, r)
        values[ast.to_source(node)] = v
        return v

    for n in ast.walk(rr.when):  # every value, not only those a short-circuit reaches
        if isinstance(n, ast.RoomValue):
            value(n)
    holds = bool(_evaluate(rr.when, value))
    RI = store.RI[r]
    last = int(RI[lay.ri.index(f"room_last:{rule}")])
    never = last < -(2**61)
    remaining = 0.0
    if rr.cooldown is not None and not never:
        remaining = max(0.0, (last + round(rr.cooldown * 1e6) - core.now_us()) / 1e6)
    return RoomExplanation(
        rule=rule, room=room, when=rr.when_text, holds=holds, values=values,
        was_true=bool(RI[lay.ri.index(f"room_edge:{rule}")]), would_fire=remaining == 0.0,
        cooldown=duration_text(rr.cooldown) if rr.cooldown is not None else "", cooldown_remaining=remaining,
        fired=int(RI[lay.ri.index(f"room_fired:{rule}")]), suppressed=int(RI[lay.ri.index(f"room_suppressed:{rule}")]),
        last_fired=None if never else last / 1e6)


def room_rule_counts(core: "EngineCore") -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Firings and cooldown suppressions of each room rule, over all rooms (for ``stats``)."""
    store, lay = core.store, core.compiled.layout
    rows = store.RI[: len(core.rooms)]
    fired, suppressed = {}, {}
    for r in core.rules.room_rules:
        fired[r.name] = int(rows[:, lay.ri.index(f"room_fired:{r.name}")].sum())
        suppressed[r.name] = {reason: 0 for reason in REASONS}  # the shape of viewer rules': only cooldown applies
        suppressed[r.name]["cooldown"] = int(rows[:, lay.ri.index(f"room_suppressed:{r.name}")].sum())
    return fired, suppressed
