"""A deliberately simple, slow reference for segengine's expression semantics.

It is fed the same calls as an :class:`segengine.Engine` (``ingest``, ``set_profile``,
``advance``) and keeps every viewer's *full history*: the list of accepted events with
the time at which each was applied. Every feature is then recomputed from that history
straight from the definitions of SPEC §4/§8 and docs/semantics.md, never incrementally:

* ``count(T, W)``: events of T whose applied time's bucket ``t_us * 12 // W_us`` is one
  of the 12 buckets ending with the bucket of ``now``;
* ``since(T)``: now minus the last such event (inf if none);
* ``interest(C)``: sum of ``weight * 2 ** (-(now - t) / half_life)`` over the history;
* the cart, spend and orders are replayed from the history on every read; and so on.

The only state machine here is the session one (SPEC §2/§8), which decides, for each
event, the time it is applied at and the session it belongs to.

Rule *actions* are out of scope here: the rules file used with this class must not
contain ``[[rules]]`` (so the only timers are idle timeouts, and no tag is ever set).
``tests/reference_rules.py`` builds the whole rules language (firing, timers, tags) on it.

Strict comparisons use the right-limit rule of docs/semantics.md: ``a > b`` holds iff
``a(now) > b(now)``, or both are equal now and ``a > b`` just after now. "Just after" is
probed by evaluating both sides with every continuous clock (dwell, since, stream_time,
now, interest decay) moved on by ``EPS`` seconds, while everything discrete (sessions,
window buckets, counts) stays at ``now`` — that is the right limit.

``evaluate`` returns ``(value, fragile)``: ``fragile`` is true when the value depends on
a comparison of two numbers that are different but within float noise of each other
(1e-9 relative), or on a near-tie between categories in ``top_interest``; two correct
implementations may legitimately disagree there, so the tests skip such values.
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass, field
from typing import Any

from segengine.rules import ast
from segengine.rules.expr import parse_duration, parse_expr

__all__ = ["ReferenceEngine", "us", "EPS"]

EPS = 1e-3  # seconds: how far past "now" strict comparisons look to break a tie
INTEREST_WEIGHTS = {"view": 1.0, "click": 2.0, "cart": 4.0, "pay": 8.0}
BUILTINS = {
    "present", "dwell", "total_dwell", "sessions", "carted", "cart_items", "cart_value", "paid",
    "orders", "spend", "aov", "follows", "top_interest", "stream_time", "audience", "now",
}
NEAR = 1e-9


def us(seconds: float) -> int:
    """Seconds -> integer microseconds, the engine's time resolution (docs/semantics.md)."""
    return int(round(seconds * 1e6))


@dataclass
class Applied:
    """One accepted viewer event, with the time it was applied at and its session."""

    t: int  # applied time, microseconds
    type: str
    room: str
    item: str | None
    category: str | None
    price: float | None
    amount: float | None
    session: int | None  # index into the viewer's sessions, None if it belongs to none


@dataclass
class Session:
    room: str
    start: int
    end: int | None = None  # None while the viewer is present


@dataclass
class ViewerState:
    history: list[Applied] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    room: str | None = None  # current or last room
    clock: int | None = None  # latest applied time (events and idle-timeout instants)
    last: int | None = None  # applied time of the last event
    seen: bool = False  # has sent an accepted event
    profile: dict[str, Any] = field(default_factory=dict)

    @property
    def present(self) -> bool:
        return bool(self.sessions) and self.sessions[-1].end is None


def _div(a: float, b: float) -> float:
    """IEEE division, as the kernels do it (x/0 is +-inf, 0/0 is NaN)."""
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _near(a: float, b: float) -> bool:
    """Different, but close enough that float rounding could have swapped their order."""
    if a == b or not (math.isfinite(a) and math.isfinite(b)):
        return False
    return abs(a - b) <= NEAR * max(1.0, abs(a), abs(b))


@functools.lru_cache(maxsize=8)
def _parse_segments(items: tuple[tuple[str, str], ...]) -> dict[str, ast.Node]:
    """Segment name -> AST (unfolded, unchecked: the evaluator resolves names itself)."""
    return {name: parse_expr(text) for name, text in items}


class ReferenceEngine:
    #: Subclasses that evaluate ``[[rules]]`` themselves set this (tests/reference_rules.py).
    RULES_OK = False

    def __init__(self, rules_text: str):
        data = tomllib.loads(rules_text)
        assert self.RULES_OK or "rules" not in data, "the reference evaluates segments only, not rules"
        eng = data.get("engine", {})
        self.idle = us(parse_duration(eng.get("idle_timeout", "90s")))
        self.half_life_us = float(us(parse_duration(eng.get("interest_half_life", "10m"))))
        self.categories: list[str] = list(dict.fromkeys(eng.get("categories", [])))
        self.profile_decl: dict[str, Any] = dict(data.get("profile", {}))  # name -> "int"/"float" or values
        self.segment_text: dict[str, str] = dict(data.get("segments", {}))
        self.segments = _parse_segments(tuple(self.segment_text.items()))
        self.viewers: dict[Any, ViewerState] = {}
        self.room_start: dict[str, int] = {}
        self.now = 0  # engine's latest time, microseconds (0 before anything happened)
        self._memo: dict = {}  # (viewer id, segment, now, eps) -> value; cleared by every change

    # feeding -------------------------------------------------------------------------
    def _viewer(self, vid: Any) -> ViewerState:
        if vid not in self.viewers:
            self.viewers[vid] = ViewerState()
        return self.viewers[vid]

    def _expire(self, until: int) -> None:
        """Idle timeouts due at or before ``until``: the session ends at the last event."""
        for v in self.viewers.values():
            if v.present and v.last + self.idle <= until:
                v.sessions[-1].end = v.last
                v.clock = max(v.clock, v.last + self.idle)

    def advance(self, t: float) -> None:
        self._memo.clear()
        until = us(t)
        self._expire(until)
        self.now = max(self.now, until)

    def set_profile(self, vid: Any, **attrs: Any) -> None:
        self._memo.clear()
        self._viewer(vid).profile.update(attrs)

    def ingest(self, ev: dict) -> None:
        self._memo.clear()
        ts = us(ev["ts"])
        typ, room = ev["type"], ev["room"]
        self._expire(ts)  # timers due at or before the event fire first
        self.now = max(self.now, ts)
        if typ in ("live_start", "live_end"):
            if typ == "live_start" or room not in self.room_start:
                self.room_start[room] = ts
            return
        v = self._viewer(ev["viewer"])
        t = ts if v.clock is None else max(ts, v.clock)  # a late event is applied at the viewer's clock
        v.clock = t
        session: int | None = None
        if typ == "leave":
            if v.present and v.room == room:
                v.sessions[-1].end = t
                session = len(v.sessions) - 1  # the leave belongs to the session it ends
            elif v.room is None:
                v.room = room  # a leave before any session sets the viewer's last room
            # any other leave (absent, or for another room) ends nothing and belongs to no
            # session (docs/semantics.md, Sessions): count(leave) without a window skips it
        else:
            if v.present and v.room != room:
                v.sessions[-1].end = t  # switching rooms: old session ends, new one starts now
            if not v.present:
                v.sessions.append(Session(room, t))
                v.room = room
            session = len(v.sessions) - 1
        v.last = t
        v.seen = True
        self.room_start.setdefault(room, t)
        v.history.append(Applied(t, typ, room, ev.get("item"), ev.get("category"),
                                 ev.get("price"), ev.get("amount"), session))

    # derived values, recomputed from the history -----------------------------------------
    def _replay_money(self, v: ViewerState) -> tuple[dict, float, int]:
        """Cart (item -> [units, value]), spend and orders after the whole history."""
        cart: dict[Any, list] = {}
        spend, orders = 0.0, 0
        for e in v.history:
            if e.type == "cart":
                unit = 0.0 if e.price is None else float(e.price)
                entry = cart.setdefault(e.item, [0, 0.0])
                entry[0] += 1
                entry[1] += unit
            elif e.type == "uncart":
                entry = cart.get(e.item)
                if entry and entry[0] > 0:  # one unit, at the average price of the item's units
                    unit = entry[1] / entry[0]
                    entry[0] -= 1
                    entry[1] = 0.0 if entry[0] == 0 else entry[1] - unit
            elif e.type == "pay":
                orders += 1
                spend += float(e.amount) if e.amount is not None else sum(u[1] for u in cart.values())
                cart = {}
            elif e.type == "refund" and e.amount is not None:
                spend -= float(e.amount)
        return cart, spend, orders

    def _interest(self, v: ViewerState, cat: str, now: int, eps: float) -> float:
        total = 0.0
        for e in v.history:
            if e.type in INTEREST_WEIGHTS and e.category == cat:
                age = (now - e.t) / 1e6 + eps
                total += INTEREST_WEIGHTS[e.type] * 2.0 ** (-age * 1e6 / self.half_life_us)
        return total

    def _last_session(self, v: ViewerState) -> int | None:
        return len(v.sessions) - 1 if v.sessions else None

    def feature(self, v: ViewerState, name: str, now: int, eps: float) -> tuple[Any, bool]:
        s = v.sessions[-1] if v.sessions else None
        if name == "present":
            return v.present, False
        if name == "dwell":
            if s is None:
                return 0.0, False
            if v.present:
                return (now - s.start) / 1e6 + eps, False
            return (s.end - s.start) / 1e6, False
        if name == "total_dwell":
            closed = sum(x.end - x.start for x in v.sessions if x.end is not None)
            if v.present:
                return (closed + now - s.start) / 1e6 + eps, False
            return closed / 1e6, False
        if name == "sessions":
            return float(len(v.sessions)), False
        if name in ("carted", "cart_items", "cart_value", "orders", "spend", "aov"):
            cart, spend, orders = self._replay_money(v)
            units = sum(u[0] for u in cart.values())
            return {
                "carted": units > 0,
                "cart_items": float(units),
                "cart_value": sum(u[1] for u in cart.values()) if units else 0.0,
                "orders": float(orders),
                "spend": spend,
                "aov": spend / orders if orders else 0.0,
            }[name], False
        if name == "paid":
            cur = self._last_session(v)
            return any(e.type == "pay" and e.session == cur for e in v.history) if cur is not None else False, False
        if name == "follows":
            return any(e.type == "follow" for e in v.history), False
        if name == "top_interest":
            values = [self._interest(v, c, now, 0.0) for c in self.categories]
            best = max(values, default=0.0)
            if best <= 0.0:
                return "", False
            top = self.categories[values.index(best)]  # ties: first declared
            fragile = sum(1 for x in values if x == best or _near(x, best)) > 1
            return top, fragile
        if name == "stream_time":
            if v.room is None or v.room not in self.room_start:
                return 0.0, False
            return (now - self.room_start[v.room]) / 1e6 + eps, False
        if name == "audience":
            if v.room is None:
                return 0.0, False
            return float(sum(1 for w in self.viewers.values() if w.present and w.room == v.room)), False
        if name == "now":
            return now / 1e6 + eps, False
        raise KeyError(name)

    # evaluation -------------------------------------------------------------------------
    def evaluate(self, vid: Any, node: ast.Node | str, now: int | None = None, eps: float = 0.0) -> tuple[Any, bool]:
        """Value of an expression (node or text) for a viewer at ``now`` (default: latest time)."""
        if isinstance(node, str):
            node = parse_expr(node)
        return self._eval(self.viewers[vid], node, self.now if now is None else now, eps)

    def _eval(self, v: ViewerState, node: ast.Node, now: int, eps: float) -> tuple[Any, bool]:
        ev = lambda n, e=eps: self._eval(v, n, now, e)  # noqa: E731
        if isinstance(node, (ast.Num, ast.Str)):
            return (float(node.value) if isinstance(node, ast.Num) else node.value), False
        if isinstance(node, ast.Bool):
            return node.value, False
        if isinstance(node, ast.Name):
            if node.name in BUILTINS:
                return self.feature(v, node.name, now, eps)
            if node.name in self.profile_decl:
                if isinstance(self.profile_decl[node.name], str):  # "int" / "float": a number, unset 0
                    return float(v.profile.get(node.name, 0.0)), False
                return v.profile.get(node.name, ""), False  # a category, unset ""
            if node.name in self.segments:
                key = (id(v), node.name, now, eps)
                if key not in self._memo:
                    self._memo[key] = ev(self.segments[node.name])
                return self._memo[key]
            raise KeyError(node.name)
        if isinstance(node, ast.RoomValue):  # room.audience, room.share(SEGMENT): the viewer's room
            aud = self.feature(v, "audience", now, eps)[0]
            if node.name == "audience":
                return aud, False
            if node.name == "share" and node.arg in self.segments:
                inside = sum(1 for w in self.viewers.values() if w.present and w.room == v.room
                             and self._eval(w, ast.Name(node.arg, kind="segment"), now, eps)[0])
                return (inside / aud if aud else 0.0), False
            raise KeyError(ast.to_source(node))
        if isinstance(node, ast.Count) and node.window is None:
            cur = self._last_session(v)
            n = sum(1 for e in v.history if e.type in node.types and cur is not None and e.session == cur)
            return float(n), False
        if isinstance(node, (ast.Count, ast.Agg)):
            w = us(node.window)
            k_now = now * 12 // w
            inside = [e for e in v.history if e.type in node.types and k_now - 12 < e.t * 12 // w <= k_now]
            if isinstance(node, ast.Count):
                return float(len(inside)), False
            vals = [float(getattr(e, node.field_name)) for e in inside if getattr(e, node.field_name) is not None]
            if node.func == "sum":
                return float(sum(vals)), False
            return (sum(vals) / len(vals) if vals else 0.0), False
        if isinstance(node, ast.Since):
            times = [e.t for e in v.history if e.type in node.types]
            return ((now - max(times)) / 1e6 + eps if times else math.inf), False
        if isinstance(node, ast.Interest):
            return self._interest(v, node.category, now, eps), False
        if isinstance(node, ast.Tag):
            return False, False  # no [[rules]], so no tags
        if isinstance(node, ast.Unary):
            x, f = ev(node.operand)
            return ((not x) if node.op == "not" else -x), f
        if isinstance(node, ast.In):
            x, f = ev(node.operand)
            items = [ev(i) for i in node.items]
            hit = any(x == y for y, _ in items)
            f = f or any(fi or (isinstance(y, float) and _near(x, y)) for y, fi in items)
            return (hit != node.negated), f
        if isinstance(node, ast.Binary):
            op = node.op
            if op in ("and", "or"):
                (a, fa), (b, fb) = ev(node.left), ev(node.right)
                decisive = op == "or"  # the value that decides `or` (True) or `and` (False)
                if (a == decisive and not fa) or (b == decisive and not fb):
                    return decisive, False
                return (a or b) if op == "or" else (a and b), fa or fb
            (a, fa), (b, fb) = ev(node.left), ev(node.right)
            f = fa or fb
            if op in ast.ARITHMETIC:
                return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: _div(a, b)}[op](), f
            if isinstance(a, float) and isinstance(b, float) and _near(a, b):
                f = True
            if op == "==":
                return a == b, f
            if op == "!=":
                return a != b, f
            if op == "<=":
                return a <= b, f
            if op == ">=":
                return a >= b, f
            # strict: right limit
            if a == b:
                (a, fa), (b, fb) = ev(node.left, eps + EPS), ev(node.right, eps + EPS)
                f = f or fa or fb
            return (a > b if op == ">" else a < b), f
        raise TypeError(f"the reference does not evaluate {type(node).__name__}")

    # queries ------------------------------------------------------------------------------
    def segment(self, vid: Any, name: str) -> tuple[bool, bool]:
        return self._eval(self.viewers[vid], ast.Name(name), self.now, 0.0)

    def segment_size(self, name: str, room: str | None = None) -> tuple[int, int]:
        """(count, fragile count): viewers that sent an accepted event and are in the segment."""
        n = nf = 0
        for v in self.viewers.values():
            if not v.seen or (room is not None and v.room != room):
                continue
            val, f = self._eval(v, ast.Name(name), self.now, 0.0)
            n += bool(val)
            nf += f
        return n, nf
