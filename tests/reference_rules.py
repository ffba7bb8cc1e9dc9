"""A deliberately simple, slow reference for segengine's FIRING semantics (the whole rules language).

It extends :class:`tests.reference.ReferenceEngine` (which recomputes every feature from each
viewer's full history) with ``[[rules]]``: event rules and state rules, tags, ``once``,
``cooldown``, ``budget``, ``priority`` and file order, ``params`` placeholders, and timers.
It is fed the same calls as an :class:`segengine.Engine` (``ingest``, ``advance``,
``set_profile``) and returns the same actions, as :class:`Fired` tuples.

Everything follows the product contract (§3, §8 of the spec) literally, never the engine's
implementation:

* **Timers, the obvious way.** A state rule can change value with time alone only at an
  instant computable from the definitions. For every viewer the reference lists all of
  them (:meth:`RulesReference.candidates`): the idle-timeout expiry ``last + idle``; for
  every comparison ``CLOCK OP NUMBER`` in a state rule (CLOCK one of ``dwell``,
  ``total_dwell``, ``stream_time``, ``now``, ``since(T)``) the instant ``anchor + NUMBER``
  where the clock reaches the number and the microsecond after it (``<=`` turns false
  there); and for every window width ``W`` used by a state rule, the instant each of the
  viewer's events leaves that window (its bucket ``k`` drops out when ``now``'s bucket
  reaches ``k + 12``). Between two events the reference evaluates the viewer's state rules
  at EVERY such instant, in time order; extra evaluations where nothing changes are
  harmless (no edge rises). Anything else in a state rule that moves with time (a clock
  inside arithmetic, ``interest``) or that other viewers change (``audience``), or a
  profile attribute (``set_profile`` is not an event), is refused with ``ValueError``:
  keep generated rules inside this subset.
* **Same instant, several viewers**: viewer by viewer in the order of each viewer's first
  accepted event, each viewer's pass by priority, then file order.
* **Due timers first**: ``ingest(e)`` first runs every instant ``<= e.ts`` (an instant
  equal to ``e.ts`` too), then applies ``e``, then runs its pass.
* **One pass** per event: the event rules for its type and all state rules, by priority
  then file order; a timer runs the state rules only. Tags changed by a rule are seen by
  the rules after it. **State rules see the pass's final tags**: after the pass, every
  state rule whose tags (as read by its condition, segments included) were changed by a
  rule later in the pass is evaluated again at the same instant, in pass order, and its
  edge updated; a rising edge then fires after the pass's other actions. (One round: the
  generators keep tag-reading state rules free of tag actions, where one round and a
  fixpoint agree.)
* **Edges**: the previous value starts false; a suppressed rising edge is used up.
* **Suppression**: ``once`` (session marks cleared when a session starts), then
  ``cooldown`` (per viewer and rule, ``now - last firing < cooldown``), then ``budget``
  (per rule and room, firings in ``(now - W, now]`` already ``>= N``); a suppressed firing
  changes no once mark, cooldown or budget, and is counted in :attr:`suppressed`.
* **Actions**: one per name in ``then``, in order, all with the rule's rendered params;
  ``room`` is the viewer's current (or last) room; ``ts`` the instant, to the microsecond.
  ``tag:``/``untag:`` apply after the rule's actions are built (its params see the tags
  before its own change).
* **Params**: a value that is exactly one placeholder keeps its type (numbers as float);
  placeholders inside text are formatted (``%g``, ``true``/``false``); ``{event.FIELD}``
  is the event's own field, ``""`` when absent or in a timer's firing.
* ``event.FIELD`` compares the field's own value (``event.category == 'x'`` for any
  category string, declared or not); a missing ``price``/``amount`` reads 0, a missing
  string field ``""``.

Out of scope (the generators do not produce them): late events and ``advance()`` beyond the
next event (both make the viewer's clock depend on which timer instants an implementation
chose to evaluate), retention (streams are far shorter than it), ``live_start`` after a
room's first event (it moves ``stream_time`` of viewers who sent nothing).

``inconclusive`` is set when a firing decision rested on a *fragile* value (two different
floats within 1e-9, a near-tie in ``top_interest``): two correct implementations may
disagree there, so the differential test discards such examples.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from segengine.rules import ast
from segengine.rules.expr import parse_duration, parse_expr

try:
    from tests.reference import ReferenceEngine, ViewerState, us
except ImportError:  # pytest put tests/ itself on sys.path
    from reference import ReferenceEngine, ViewerState, us  # type: ignore[no-redef]

__all__ = ["Fired", "RefRule", "RulesReference"]

CLOCKS = {"dwell", "total_dwell", "stream_time", "now"}
COMPARISONS = {"<", "<=", ">", ">=", "==", "!="}
NUMERIC_FIELDS = {"price", "amount", "ts"}
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class Fired(NamedTuple):
    """One returned action, as the engine's ``Action`` (``ts`` in seconds)."""

    rule: str
    action: str
    viewer: Any
    room: str
    ts: float
    params: dict


@dataclass
class RefRule:
    name: str
    when: ast.Node
    then: tuple[str, ...]
    on: tuple[str, ...] | None
    params: dict
    cooldown: int | None  # microseconds
    once: str | None
    budget: tuple[int, int] | None  # (N, window in microseconds)
    priority: int
    index: int  # file order
    tags_read: frozenset[str] = frozenset()


@dataclass
class Firing:
    """A viewer's rule state: tags, edges, once marks, last firings, last evaluated instant."""

    tags: set[str] = field(default_factory=set)
    edges: dict[str, bool] = field(default_factory=dict)
    once_session: set[str] = field(default_factory=set)
    once_lifetime: set[str] = field(default_factory=set)
    last_fire: dict[str, int] = field(default_factory=dict)
    tick: int | None = None  # the last instant this viewer was evaluated at (event or timer)


class RulesReference(ReferenceEngine):
    RULES_OK = True

    def __init__(self, rules_text: str):
        super().__init__(rules_text)
        data = tomllib.loads(rules_text)
        self.rules: list[RefRule] = []
        for i, raw in enumerate(data.get("rules", [])):
            if not raw.get("enabled", True):
                continue
            then = raw["then"]
            on = raw.get("on")
            budget = None
            if "budget" in raw:
                n, w = raw["budget"].split("/", 1)
                budget = (int(n), us(parse_duration(w)))
            self.rules.append(RefRule(
                name=raw["name"],
                when=parse_expr(raw["when"]),
                then=(then,) if isinstance(then, str) else tuple(then),
                on=None if on is None else ((on,) if isinstance(on, str) else tuple(on)),
                params=dict(raw.get("params", {})),
                cooldown=us(parse_duration(raw["cooldown"])) if "cooldown" in raw else None,
                once=raw.get("once"),
                budget=budget,
                priority=int(raw.get("priority", 0)),
                index=i,
            ))
        self.order = sorted(self.rules, key=lambda r: (-r.priority, r.index))
        self.clock_terms: list[tuple[ast.Node, int]] = []  # (clock, threshold in microseconds)
        self.window_widths: set[int] = set()
        for rule in self.rules:
            nodes = self._expanded(rule.when)
            rule.tags_read = frozenset(n.name for n in nodes if isinstance(n, ast.Tag))
            if rule.on is None:
                self._time_terms(rule, rule.when)
        self.arrival: list[Any] = []  # viewers in the order of their first accepted event
        self.budgets: dict[tuple[str, str], list[int]] = {}  # (rule, room) -> firing instants
        self.fired: dict[str, int] = {r.name: 0 for r in self.rules}
        self.suppressed: dict[str, dict[str, int]] = {r.name: {"once": 0, "cooldown": 0, "budget": 0, "quiet": 0, "cap": 0, "holdout": 0}
                                                      for r in self.rules}
        self.reevaluations = 0  # state rules evaluated again after a pass (final tags)
        self.inconclusive = False
        self._out: list[Fired] = []
        self._event: dict | None = None

    # reading the rules ----------------------------------------------------------------
    def _expanded(self, node: ast.Node) -> list[ast.Node]:
        """Every node of ``node`` with segment names replaced by their conditions."""
        out = []
        for n in ast.walk(node):
            out.append(n)
            if isinstance(n, ast.Name) and n.name in self.segments:
                out += self._expanded(self.segments[n.name])
        return out

    def _time_terms(self, rule: RefRule, node: ast.Node) -> None:
        """Collect the instants at which ``node`` (part of a state rule) can change with time."""
        if isinstance(node, ast.Name) and node.name in self.segments:
            return self._time_terms(rule, self.segments[node.name])
        if isinstance(node, ast.Binary) and node.op in COMPARISONS:
            for clock, other in ((node.left, node.right), (node.right, node.left)):
                if _is_clock(clock) and isinstance(other, ast.Num):
                    self.clock_terms.append((clock, us(other.value)))
                    return None
        if _is_clock(node):
            raise ValueError(f"rule {rule.name!r}: the reference finds the threshold instants of "
                             f"`CLOCK OP NUMBER` only, not of {ast.to_source(node)!r} elsewhere")
        if isinstance(node, ast.Interest) or (isinstance(node, ast.Name) and node.name in (
                "audience", "top_interest")):
            raise ValueError(f"rule {rule.name!r}: a state rule may not read {ast.to_source(node)!r} here")
        if isinstance(node, ast.Name) and node.name in self.profile_decl:
            raise ValueError(f"rule {rule.name!r}: a state rule may not read profile {node.name!r} here")
        if isinstance(node, (ast.Count, ast.Agg)) and node.window is not None:
            self.window_widths.add(us(node.window))
        for child in ast.children(node):
            self._time_terms(rule, child)
        return None

    # time ------------------------------------------------------------------------------
    def candidates(self, v: ViewerState) -> list[int]:
        """Every instant at which one of ``v``'s state rules can change value with time alone."""
        out: list[int] = []
        if v.present:
            out.append(v.last + self.idle)
        for clock, threshold in self.clock_terms:
            anchor = self._anchor(v, clock)
            if anchor is not None:
                out += [anchor + threshold, anchor + threshold + 1]
        for w in self.window_widths:
            for e in v.history:
                k = e.t * 12 // w
                out.append(-(-(k + 12) * w // 12))  # first instant whose bucket is k + 12
        return out

    def _anchor(self, v: ViewerState, clock: ast.Node) -> int | None:
        """The instant at which ``clock`` would read 0, if it runs now (None if it stands still)."""
        if isinstance(clock, ast.Since):
            times = [e.t for e in v.history if e.type in clock.types]
            return max(times) if times else None
        if clock.name == "now":
            return 0
        if clock.name == "stream_time":
            return self.room_start.get(v.room) if v.room is not None else None
        if not v.present:
            return None  # dwell and total_dwell stand still while absent
        start = v.sessions[-1].start
        if clock.name == "dwell":
            return start
        closed = sum(s.end - s.start for s in v.sessions if s.end is not None)
        return start - closed

    def _expire(self, until: int) -> None:
        """Timers: every viewer's candidate instants up to ``until``, in time order, then viewer order."""
        while True:
            best, due = None, []
            for vid in self.arrival:
                v = self.viewers[vid]
                later = [t for t in self.candidates(v) if v.fx.tick < t <= until]
                if not later:
                    continue
                t = min(later)
                if best is None or t < best:
                    best, due = t, [vid]
                elif t == best:
                    due.append(vid)
            if best is None:
                return
            for vid in due:  # self.arrival order
                self._timer(vid, best)

    def _timer(self, vid: Any, t: int) -> None:
        v = self.viewers[vid]
        v.fx.tick = t
        v.clock = max(v.clock, t)
        if v.present and v.last + self.idle <= t:
            v.sessions[-1].end = v.last  # idle timeout: the session ends at the last event
        self._memo.clear()
        self._pass(vid, t, None)

    # feeding ---------------------------------------------------------------------------
    def _viewer(self, vid: Any) -> ViewerState:
        if vid not in self.viewers:
            v = self.viewers[vid] = ViewerState()
            v.fx = Firing()  # type: ignore[attr-defined]
        return self.viewers[vid]

    def ingest(self, ev: dict) -> list[Fired]:
        self._out = []
        vid = ev.get("viewer")
        known = vid in self.viewers
        n_sessions = len(self.viewers[vid].sessions) if known else 0
        super().ingest(ev)  # runs the due timers (self._expire), then applies the event
        if ev["type"] in ("live_start", "live_end"):
            return self._out
        v = self.viewers[vid]
        assert v.last == us(ev["ts"]), "late events are out of the reference's scope"
        if vid not in self.arrival:
            self.arrival.append(vid)
        if len(v.sessions) != n_sessions:
            v.fx.once_session.clear()  # a session started
        v.fx.tick = v.last
        self._memo.clear()
        self._pass(vid, v.last, ev)
        return self._out

    def advance(self, t: float) -> list[Fired]:
        self._out = []
        super().advance(t)
        return self._out

    # rules -----------------------------------------------------------------------------
    def _eval(self, v: ViewerState, node: ast.Node, now: int, eps: float) -> tuple[Any, bool]:
        if isinstance(node, ast.Tag):
            return node.name in v.fx.tags, False
        if isinstance(node, ast.EventField):
            ev = self._event or {}
            value = ev.get(node.field_name)
            if value is None:
                return (0.0 if node.field_name in NUMERIC_FIELDS else ""), False
            return (float(value) if node.field_name in NUMERIC_FIELDS else value), False
        return super()._eval(v, node, now, eps)

    def _holds(self, v: ViewerState, rule: RefRule, t: int) -> bool:
        value, fragile = self._eval(v, rule.when, t, 0.0)
        self.inconclusive |= fragile
        return bool(value)

    def _pass(self, vid: Any, t: int, ev: dict | None) -> None:
        v = self.viewers[vid]
        self._event = ev
        evaluated: list[tuple[RefRule, dict[str, bool]]] = []
        for rule in self.order:
            if rule.on is not None:
                if ev is None or ev["type"] not in rule.on:
                    continue
                if self._holds(v, rule, t):
                    self._fire(vid, rule, t, ev)
                continue
            value = self._holds(v, rule, t)
            rising = value and not v.fx.edges.get(rule.name, False)
            v.fx.edges[rule.name] = value
            if rising:
                self._fire(vid, rule, t, ev)
            evaluated.append((rule, {tag: tag in v.fx.tags for tag in rule.tags_read}))
        # state rules see the pass's final tags: evaluate again those whose tags changed after them
        for rule, seen in evaluated:
            if all((tag in v.fx.tags) == was for tag, was in seen.items()):
                continue
            self.reevaluations += 1
            self._memo.clear()
            value = self._holds(v, rule, t)
            rising = value and not v.fx.edges[rule.name]
            v.fx.edges[rule.name] = value
            if rising:
                self._fire(vid, rule, t, ev)
        self._event = None

    def _fire(self, vid: Any, rule: RefRule, t: int, ev: dict | None) -> None:
        v = self.viewers[vid]
        fx = v.fx
        room = v.room or ""
        spent = self.budgets.setdefault((rule.name, room), [])
        reason = None
        marks = fx.once_session if rule.once == "session" else fx.once_lifetime
        if rule.once is not None and rule.name in marks:
            reason = "once"
        elif rule.cooldown is not None and rule.name in fx.last_fire and t - fx.last_fire[rule.name] < rule.cooldown:
            reason = "cooldown"
        elif rule.budget is not None and sum(1 for s in spent if s > t - rule.budget[1]) >= rule.budget[0]:
            reason = "budget"
        if reason is not None:
            self.suppressed[rule.name][reason] += 1
            return
        self.fired[rule.name] += 1
        if rule.once == "session":
            fx.once_session.add(rule.name)
        elif rule.once == "lifetime":
            fx.once_lifetime.add(rule.name)
        fx.last_fire[rule.name] = t
        spent.append(t)
        params = self._render(v, rule.params, t, ev)
        for action in rule.then:
            self._out.append(Fired(rule.name, action, vid, room, t / 1e6, dict(params)))
        for action in rule.then:
            if action.startswith("tag:"):
                fx.tags.add(action[4:])
            elif action.startswith("untag:"):
                fx.tags.discard(action[6:])
        self._memo.clear()

    def _render(self, v: ViewerState, params: Any, t: int, ev: dict | None) -> Any:
        if isinstance(params, dict):
            return {k: self._render(v, x, t, ev) for k, x in params.items()}
        if isinstance(params, list):
            return [self._render(v, x, t, ev) for x in params]
        if not isinstance(params, str) or not PLACEHOLDER.search(params):
            return params

        def value(text: str) -> Any:
            if text.startswith("event."):
                got = (ev or {}).get(text[6:])
                return "" if got is None else got
            got, fragile = self._eval(v, parse_expr(text), t, 0.0)
            self.inconclusive |= fragile
            return got

        whole = PLACEHOLDER.fullmatch(params)
        if whole:
            return value(whole.group(1))
        return PLACEHOLDER.sub(lambda m: _format(value(m.group(1))), params)


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _is_clock(node: ast.Node) -> bool:
    return isinstance(node, ast.Since) or (isinstance(node, ast.Name) and node.name in CLOCKS)
