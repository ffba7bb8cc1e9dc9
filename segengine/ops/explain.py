"""``Engine.explain``: why a rule would or would not fire for one viewer, now.

The values come from the generated ``explain_values`` kernel (see
:mod:`segengine.compiler.explaingen`): the same code the rule passes run, evaluated
at the engine's latest time, without firing anything and without touching state.
Suppression (``once``, ``cooldown``, ``budget``) comes from each guard
(:mod:`segengine.guards`), which runs the kernel's own check on the state arrays, and
the last firing from a bounded log the engine keeps while it drains actions.

The result is an :class:`Explanation`, a ``msgspec.Struct``: ``str()`` gives a
readable report and ``msgspec.json.encode(explanation)`` a JSON document.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from .. import features
from ..compiler.explaingen import explain_nodes, node_kind
from ..guards import GuardState, Suppressor, fired_index, guards_of, suppressed_counts
from ..guards.base import number_text as _num
from ..kernels.primitives import META_NOW, MISSING
from ..rules import ast
from ..rules.suggest import did_you_mean

if TYPE_CHECKING:
    from ..runtime.core import EngineCore

__all__ = ["Explanation", "Value", "Suppressor", "FiringLog", "explain"]

OK, NOT_OK, UNKNOWN = "✓", "✗", "?"
NO_EVENT = "no value outside an event"

_COMPARISONS = ast.COMPARISONS


class Value(msgspec.Struct, omit_defaults=True):
    """One sub-expression of a condition and its current value.

    ``value`` is a bool, a number or a string; ``None`` when it cannot be known now
    (``event.FIELD`` has no value outside an event). ``ok`` (conditions only) says
    whether this value lets the rule fire, taking enclosing ``not`` into account.
    ``and``/``or`` chains are flattened: ``a and b and c`` has three children.
    """

    text: str
    kind: str  # "bool", "num", "str" or "literal"
    value: bool | float | str | None
    ok: bool | None = None
    unit: str = ""  # "s" for times and durations
    op: str = ""  # and, or, not, in, not in, a comparison or an arithmetic operator
    segment: str = ""  # the node is this segment's name; its child is the segment's condition
    note: str = ""
    children: list["Value"] = []


class Explanation(msgspec.Struct, omit_defaults=True):
    """Why ``rule`` would or would not fire for ``viewer`` at time ``now`` (seconds)."""

    viewer: str | int
    rule: str
    kind: str  # "state" or "event"
    enabled: bool
    when: str
    then: list[str]
    now: float
    room: str | None
    condition: Value
    holds: bool | None  # the condition now; None when it depends on the event being ingested
    would_fire: bool | None
    verdict: str
    on: list[str] = []
    previous: bool | None = None  # state rules: the condition's value at the viewer's last evaluation
    suppressors: list[Suppressor] = []
    suppressed_by: str | None = None
    last_fired: float | None = None
    last_fired_note: str = ""
    fired: int = 0  # firings of the rule, all viewers (stats()["fired"])
    suppressed: dict[str, int] = {}  # suppressed firings of the rule by reason, all viewers

    def __str__(self) -> str:
        return _render(self)


# --- the firing log --------------------------------------------------------------------

class FiringLog:
    """Last firing time per (viewer id, rule name), bounded: the least recently fired go first.

    Cost: one ordered-dict move per firing (C-level; a pure-Python LRU cost ~1.5 us a firing on
    the batch path). ``entries`` iterates least recently fired first. ``recorded`` counts the
    firings logged per rule: when it equals the rule's ``fired`` counter and nothing of that
    rule was evicted, a viewer missing from the log has never fired it (since this engine started).
    """

    def __init__(self, maxsize: int = 1_000_000):
        self.maxsize = maxsize
        self.evicted: set[str] = set()
        self.entries: OrderedDict[tuple, tuple[float, int]] = OrderedDict()
        self.recorded: dict[str, int] = {}
        self.epoch: dict[str, int] = {}

    def record_many(self, firings: list[tuple[str | int, str, float]], counts: dict[str, int] | None = None) -> None:
        """Log firings (viewer, rule, ts) in order; ``counts``: how many of them each rule has,
        when the caller has them already (a batch's bincount), else counted here, per firing.
        One pass; evictions once at the end."""
        entries, epoch, recorded = self.entries, self.epoch, self.recorded
        move = entries.move_to_end
        for viewer, rule, ts in firings:
            key = (viewer, rule)
            entries[key] = (ts, epoch.get(rule, 0))
            move(key)  # most recently fired last
            if counts is None:
                recorded[rule] = recorded.get(rule, 0) + 1
        for rule, k in (counts or {}).items():
            recorded[rule] = recorded.get(rule, 0) + k
        while len(entries) > self.maxsize:
            self.evicted.add(entries.popitem(last=False)[0][1])

    def forget_rules(self, names) -> None:
        """Rules removed by a reload: a rule of the same name added later starts with no history."""
        for name in names:
            self.epoch[name] = self.epoch.get(name, 0) + 1
            self.recorded.pop(name, None)
            self.evicted.discard(name)

    def last(self, viewer: str | int, rule: str) -> float | None:
        entry = self.entries.get((viewer, rule))
        if entry is None or entry[1] != self.epoch.get(rule, 0):
            return None
        return entry[0]

    def complete(self, rule: str, fired: int) -> bool:
        return rule not in self.evicted and self.recorded.get(rule, 0) == fired

    # saving and loading ------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """The log as plain data, least recently fired first (that order decides evictions)."""
        return {
            "maxsize": int(self.maxsize),
            "entries": [[k[0], k[1], *v] for k, v in self.entries.items()],
            "evicted": sorted(self.evicted),
            "recorded": dict(self.recorded),
            "epoch": dict(self.epoch),
        }

    def load_state(self, data: dict[str, Any]) -> None:
        """Replace the log with what :meth:`to_state` saved."""
        self.maxsize = data["maxsize"]
        self.entries = OrderedDict(((viewer, rule), tuple(value)) for viewer, rule, *value in data["entries"])
        self.evicted = set(data["evicted"])
        self.recorded = dict(data["recorded"])
        self.epoch = dict(data["epoch"])


# --- explain ---------------------------------------------------------------------------

def explain(core: "EngineCore", viewer: str | int, rule_name: str) -> Explanation:
    """Build the explanation; see :meth:`Engine.explain`."""
    rs = core.rules
    index = next((i for i, r in enumerate(rs.rules) if r.name == rule_name), -1)
    if index < 0:
        if any(r.name == rule_name for r in rs.room_rules):
            raise KeyError(f"{rule_name!r} is a room rule: explain it with engine.explain_room(room, {rule_name!r})")
        raise KeyError(f"unknown rule {rule_name!r}{did_you_mean(rule_name, [r.name for r in rs.rules])}")
    slot = core.viewers.get(viewer)
    if slot < 0:
        raise KeyError(f"unknown viewer {viewer!r}")
    rule = rs.rules[index]
    store, lay = core.store, core.compiled.layout
    VI = store.VI
    col = lay.vi.index
    meta_now = int(store.META[0, META_NOW])
    now = max(0 if meta_now == MISSING else meta_now, int(VI[slot, col("clock")]))

    nodes = explain_nodes(rs, rule)
    out = np.zeros(len(nodes), np.float64)
    written = int(core.module.explain_values(store.tab, slot, now, index, out))
    values = _decoded(core, nodes, out.tolist() if written == len(nodes) else None)
    tree = _tree(rs, nodes, values, 0, True)
    holds = values[0]

    room_slot = int(VI[slot, col("room")])
    room = core.rooms.keys[room_slot] if room_slot >= 0 else None
    n = len(rs.rules)
    meta = store.META[0]
    fired = int(meta[fired_index(index)])
    suppressed = suppressed_counts(meta, n, index)

    state = GuardState(VI, store.RI, slot, room_slot, now, room)
    suppressors = [g.explain(state, lay, rule) for g in guards_of(rule)]
    suppressed_by = next((s.kind for s in suppressors if s.active), None)
    previous = None
    if not rule.is_event_rule and rule.enabled:
        bit_col, mask = lay.edge_bit(rule.name)
        previous = bool(VI[slot, bit_col] & mask)
    would_fire, verdict = _verdict(rule, holds, previous, suppressed_by, written >= 0)

    last, note = _last_fired(core, viewer, rule, fired, slot)
    return Explanation(
        viewer=viewer, rule=rule.name, kind="event" if rule.is_event_rule else "state", enabled=rule.enabled,
        when=rule.when_text, then=list(rule.then), now=now / 1e6, room=room, condition=tree, holds=holds,
        would_fire=would_fire, verdict=verdict, on=list(rule.on or ()), previous=previous, suppressors=suppressors,
        suppressed_by=suppressed_by, last_fired=last, last_fired_note=note, fired=fired, suppressed=suppressed)


def _decoded(core: "EngineCore", nodes, raw: list[float] | None) -> list[Any]:
    """Each node's Python value; None where it depends on the event (or values are unavailable)."""
    values: list[Any] = [None] * len(nodes)
    for i in range(len(nodes) - 1, -1, -1):  # children (later in preorder) first
        en = nodes[i]
        node = en.node
        kids = [values[c] for c in en.children]
        if isinstance(node, (ast.Num, ast.Str, ast.Bool)):
            values[i] = node.value
        elif raw is None or isinstance(node, ast.EventField):
            values[i] = None
        elif isinstance(node, ast.Binary) and node.op in ast.LOGICAL:
            values[i] = _kleene(node.op, kids)
        elif isinstance(node, ast.Unary) and node.op == "not":
            values[i] = None if kids[0] is None else not kids[0]
        elif any(k is None for k in kids):
            values[i] = None
        else:
            values[i] = core.decode(node_kind(node), raw[i])
    return values


def _kleene(op: str, kids: list[Any]) -> bool | None:
    if op == "and":
        if any(k is False for k in kids):
            return False
        return None if any(k is None for k in kids) else True
    if any(k is True for k in kids):
        return True
    return None if any(k is None for k in kids) else False


def _unit(node: ast.Node) -> str:
    if isinstance(node, ast.Num):
        return "s" if node.is_duration else ""
    if features.unit(node):  # the feature says: dwell, since(T), stream_time, now
        return features.unit(node)
    if isinstance(node, ast.Binary) and node.op in "+-" and node.op in ast.ARITHMETIC:
        units = {_unit(node.left), _unit(node.right)}
        return "s" if "s" in units else ""
    if isinstance(node, ast.Unary) and node.op == "-":
        return _unit(node.operand)
    return ""


def _tree(rs, nodes, values, i: int, want: bool | None) -> Value:
    """The Value tree of node ``i``; ``want`` is the value that lets the rule fire (None: no preference)."""
    en = nodes[i]
    node = en.node
    value = values[i]
    if getattr(node, "by", None):  # a keyed counter reads the current event's key: none here
        value = None
    kind = "literal" if isinstance(node, (ast.Num, ast.Str, ast.Bool)) else ("str" if node.type == "str" else node.type)
    ok = None
    if node.type == "bool" and want is not None and value is not None:
        ok = value == want
    note = NO_EVENT if isinstance(node, ast.EventField) or getattr(node, "by", None) else ""
    if not note and any(isinstance(n, ast.EventField) or getattr(n, "by", None) for n in ast.walk(node)):
        note = "depends on the event"
    elif isinstance(value, float) and math.isinf(value) and isinstance(node, ast.Since):
        note = "no such event yet"  # JSON has no infinity: value is null there
    elif (value is True and isinstance(node, ast.Binary) and node.op in ("<", ">")
          and values[en.children[0]] == values[en.children[1]]):
        note = "true from this instant on"  # strict thresholds hold at their instant (docs/semantics.md)
    if isinstance(node, ast.Binary) and node.op in ast.LOGICAL:
        children = [_tree(rs, nodes, values, c, want) for c in _chain(nodes, i, node.op)]
    elif isinstance(node, ast.Unary) and node.op == "not":
        children = [_tree(rs, nodes, values, en.children[0], None if want is None else not want)]
    elif en.segment:
        children = [_tree(rs, nodes, values, en.children[0], want)]
    else:
        children = [_tree(rs, nodes, values, c, None) for c in en.children]
    op = node.op if isinstance(node, (ast.Binary, ast.Unary)) else ""
    if isinstance(node, ast.In):
        op = "not in" if node.negated else "in"
    return Value(ast.to_source(node), kind, _plain(value), ok, _unit(node), op, en.segment, note, children)


def _chain(nodes, i: int, op: str) -> list[int]:
    """Operands of a flattened ``and``/``or`` chain rooted at node ``i``."""
    out: list[int] = []
    for c in nodes[i].children:
        node = nodes[c].node
        if isinstance(node, ast.Binary) and node.op == op:
            out.extend(_chain(nodes, c, op))
        else:
            out.append(c)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, str)) or value is None:
        return value
    return float(value)


def _verdict(rule, holds: bool | None, previous: bool | None, suppressed_by: str | None,
             available: bool) -> tuple[bool | None, str]:
    """(would fire, why): the reason is a sentence that reads after "yes: " / "no: "."""
    if not rule.enabled:
        return False, "the rule is disabled (enabled = false): it is never evaluated"
    if not available or (holds is None and not rule.is_event_rule):
        return None, "the condition's values are unavailable"
    block = f", but {suppressed_by} would suppress it" if suppressed_by else ""
    if rule.is_event_rule:
        on = f"it is checked only on {'|'.join(rule.on or ())} events, after the event is applied"
        if holds is None:
            return None, f"the condition reads event fields, which have no value outside an event; {on}"
        if holds:
            return suppressed_by is None, f"the condition holds now{block}; {on}"
        return False, f"the condition is false; {on}"
    if holds and not previous:
        if suppressed_by:
            return False, f"the condition is true and was false at the last evaluation{block}"
        return True, ("the condition is true and was false at the viewer's last evaluation: "
                      "it fires at the viewer's next event or timer")
    if holds:
        return False, ("the condition is true but already was at the last evaluation "
                       "(a state rule fires again only after its condition was false)")
    return False, "the condition is false"


def _last_fired(core: "EngineCore", viewer, rule, fired: int, slot: int) -> tuple[float | None, str]:
    log: FiringLog = core.firings
    ts = log.last(viewer, rule.name)
    if ts is not None:
        return ts, ""
    col = core.compiled.layout.cooldown_cols.get(rule.name)
    if col is not None and core.store.VI[slot, col] != MISSING:
        return int(core.store.VI[slot, col]) / 1e6, "from the rule's cooldown state"
    if log.complete(rule.name, fired):
        return None, "never fired for this viewer"
    return None, (f"unknown: not in the firing log (it keeps the {log.maxsize:,} most recently fired "
                  "(viewer, rule) pairs, and this rule lost some)")


# --- str() -----------------------------------------------------------------------------

def _show(v: Value) -> str:
    """A value as text: ``312 s``, ``true``, ``'digital'``."""
    if v.value is None:
        return f"({v.note})" if v.note else "(unknown)"
    if isinstance(v.value, bool):
        return "true" if v.value else "false"
    if isinstance(v.value, str):
        return repr(v.value)
    return _num(v.value) + (f" {v.unit}" if v.unit else "")


def _side(v: Value) -> str:
    """One operand of a comparison: a literal as its value, anything else as ``text = value``."""
    if v.kind == "literal":
        return _show(v)
    if v.value is None:
        return f"{v.text} ({v.note or 'unknown'})"
    return f"{v.text} = {_show(v)}" + (f" ({v.note})" if v.note else "")


def _mark(v: Value) -> str:
    if v.ok is None:
        return UNKNOWN if v.value is None and v.kind == "bool" else ""
    return OK if v.ok else NOT_OK


def _line(v: Value) -> str:
    """The one-line form of a node (without its children's lines)."""
    mark = _mark(v)
    tail = f" {mark}" if mark else ""
    kids = v.children
    if v.segment:
        return f"segment {v.segment} = {_show(v)}{tail}"
    if v.op in _COMPARISONS:
        note = f" ({v.note})" if v.note and v.value is not None else ""
        return f"{_side(kids[0])} {v.op} {_side(kids[1])}{tail}{note}"
    if v.op == "not" and _leaf(kids[0]):
        return f"{v.text}: {_side(kids[0])}{tail}"
    if v.op in ("in", "not in"):
        items = ", ".join(_show(k) for k in kids[1:])
        return f"{_side(kids[0])} {v.op} [{items}]{tail}"
    if v.kind == "literal":
        return f"{_show(v)}{tail}"
    return f"{v.text} = {_show(v)}{tail}"


def _leaf(v: Value) -> bool:
    return not v.children and not v.segment


def _lines(v: Value, depth: int, out: list[str]) -> None:
    out.append("  " * depth + _line(v))
    kids = v.children
    if v.segment:
        cond = kids[0]
        for k in cond.children if cond.op in ("and", "or") else [cond]:  # a chain: its operands under the segment
            _lines(k, depth + 1, out)
    elif v.op in _COMPARISONS or v.op in ("in", "not in") or (v.op == "not" and _leaf(kids[0])):
        for k in kids:  # operands are on the line already; arithmetic ones get their parts below
            _atoms(k, depth + 1, out)
    else:
        for k in kids:
            _lines(k, depth + 1, out)


def _atoms(v: Value, depth: int, out: list[str]) -> None:
    """The non-literal parts of an arithmetic operand, one line each."""
    seen: set[str] = set()
    stack = list(v.children)
    while stack:
        k = stack.pop(0)
        if k.children:
            stack[:0] = k.children
        elif k.kind != "literal" and k.text not in seen:
            seen.add(k.text)
            out.append("  " * depth + _side(k))


def _render(e: Explanation) -> str:
    kind = f"event rule on {'|'.join(e.on)}" if e.kind == "event" else "state rule"
    settings = [s.kind + (f" = {s.setting}") for s in e.suppressors]
    head = f"explain {e.rule!r} for viewer {e.viewer!r} at {_num(e.now)} s"
    head += f" in room {e.room!r}" if e.room is not None else " (no room yet)"
    lines = [head,
             f"  {kind}: when {e.when.strip()!r} then {', '.join(e.then)}" + (f" ({', '.join(settings)})" if settings else ""),
             "  condition:"]
    body: list[str] = []
    _lines(e.condition, 2, body)
    lines += body
    if e.previous is not None:
        lines.append(f"  previous value (last evaluation): {'true' if e.previous else 'false'}")
    answer = {True: "yes", False: "no", None: "it depends"}[e.would_fire]
    lines.append(f"  would fire now: {answer}: {e.verdict}")
    for s in e.suppressors:
        lines.append(f"  {s.kind}: {'SUPPRESSES' if s.active else 'lets it fire'}: {s.detail}")
    if e.last_fired is not None:
        lines.append(f"  last fired: {_num(e.last_fired)}" + (f" ({e.last_fired_note})" if e.last_fired_note else ""))
    else:
        lines.append(f"  last fired: {e.last_fired_note}")
    supp = ", ".join(f"{k} {v}" for k, v in e.suppressed.items())
    lines.append(f"  all viewers: fired {e.fired}, suppressed {supp}")
    return "\n".join(lines)
