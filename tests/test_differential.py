"""Differential test of the rules compiler against the pure-Python reference (tests/reference.py).

About fifty random, well-typed expressions are generated once (fixed seed) and put
into ONE rules file as segments ``e0..eN``, so the kernels compile once per session;
every example then builds a fresh ``Engine`` from the compiled rule set (cheap) and
a fresh ``ReferenceEngine``, feeds both the same random stream of events, profile
changes and ``advance`` calls, and compares, at checkpoints and at the end:

* every segment of every viewer (``engine.viewer(v)["segments"]``),
* every feature and profile value ``engine.viewer(v)`` reports (labels are
  ``ast.to_source`` of the node, e.g. ``count(view, 10m)``; the reference parses the
  label back and evaluates it),
* ``segment_size(name)`` and ``segment_size(name, room)`` for every segment and room.

Values the reference marks *fragile* (a comparison of two different floats within
1e-9 of each other, a near-tie in ``top_interest``) are skipped: rounding may decide
them either way.

The known engine discrepancy (``test_known_*`` below, marked xfail) is kept out of
the random generator so that the random test keeps checking everything else:

* strict comparisons use a first-order slope only, so ``dwell * dwell > 0`` at the
  instant a session starts is false although its right limit is true.

Two discrepancies this test found have since been fixed in the engine; their
reproducers stay as regression tests (``test_count_of_leave_*``,
``test_live_end_first_in_room``).

Engines are built with room for 2 viewers and streams use up to 5 rooms, so that the
engine's arrays grow during a run; ``test_many_cart_items`` makes its cart table grow.
``SEGENGINE_DIFF_SEED=N`` draws another set of expressions (costs one more compile).
"""

from __future__ import annotations

import functools
import math
import os
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from segengine import Engine
from segengine.compiler import compile_rules
from segengine.rules import ast
from segengine.rules.expr import parse_expr

from conftest import examples

try:
    from tests.reference import ReferenceEngine
except ImportError:  # pytest put tests/ itself on sys.path
    from reference import ReferenceEngine  # type: ignore[no-redef]

T0 = 1_700_000_000.0  # realistic unix times: microseconds near 1.7e15 stay exact in float64
CATEGORIES = ["snacks", "beauty", "digital", "apparel"]
GENDERS = ["female", "male", "unknown"]
LEVELS = ["low", "mid", "high"]
VIEWER_TYPES = ["enter", "leave", "heartbeat", "view", "click", "like", "comment", "share", "cart",
                "uncart", "checkout", "pay", "refund", "follow"]
WINDOWS = ["12s", "1m", "10m"]
N_RANDOM = 50
#: Seed of the random expressions; another seed means another rules file (and a ~1 min compile).
SEED = int(os.environ.get("SEGENGINE_DIFF_SEED", "20240611"))

# ---------------------------------------------------------------------------------------
# random expressions


class ExprGen:
    """Well-typed random expressions, as text. Keeps clear of the known discrepancy
    (products of two clocks) and of infinite ``since`` in arithmetic (inf - inf and
    inf * 0 make ties whose "right limit" means nothing)."""

    def __init__(self, rnd: random.Random, earlier: list[str]):
        self.r = rnd
        self.earlier = earlier  # segment names this expression may refer to

    def pick(self, seq):
        return self.r.choice(seq)

    def types(self) -> str:
        return "|".join(self.r.sample(VIEWER_TYPES, self.r.choice([1, 1, 2, 3])))

    # numbers ---------------------------------------------------------------------------
    def literal(self, whole: bool = False) -> str:
        """A number literal; ``whole`` for == and != (a count is never 2.5)."""
        if whole:
            return self.pick(["0", "1", "1", "2", "2", "3", "4", "10", "30s", "1m"])
        return self.pick(["0", "1", "2", "3", "5", "10", "0.5", "2.5", "20", "100", "250", "30s", "1m", "90s", "5m"])

    def const_num(self) -> str:
        """A number that changes only with events (slope 0)."""
        r = self.r.random()
        if r < 0.30:
            return f"count({self.types()}, {self.pick(WINDOWS)})"
        if r < 0.40:
            return f"count({self.types()})"
        if r < 0.55:
            return f"{self.pick(['sum', 'avg'])}({self.pick(['price', 'price', 'amount'])}, {self.types()}, {self.pick(WINDOWS)})"
        return self.pick(["orders", "spend", "aov", "cart_items", "cart_value", "sessions", "audience",
                          "age", "city_tier"])

    def clock_num(self) -> str:
        """A number that moves with time alone: linear (dwell...) or decaying (interest)."""
        return self.pick(["dwell", "dwell", "total_dwell", "stream_time", "(now - 1700000000)",
                          f"interest({self.pick(CATEGORIES)})", f"interest({self.pick(CATEGORIES)})"])

    def num(self, depth: int, clock_ok: bool = True) -> str:
        r = self.r.random()
        if depth <= 0 or r < 0.45:
            return self.clock_num() if clock_ok and self.r.random() < 0.5 else self.const_num()
        r = self.r.random()
        if r < 0.3:
            return f"({self.num(depth - 1, clock_ok)} {self.pick(['+', '-'])} {self.num(depth - 1, clock_ok)})"
        if r < 0.5:  # a product with at most one clock factor: first-order right limits stay exact
            return f"({self.pick([self.literal(True), self.const_num()])} * {self.num(depth - 1, clock_ok)})"
        if r < 0.65:
            return f"({self.num(depth - 1, clock_ok)} / {self.pick(['2', '4', '0.5', '60', '1m'])})"
        if r < 0.8:
            return f"({self.num(depth - 1, clock_ok)} / ({self.const_num()} + 1))"
        if r < 0.9:
            return f"({self.const_num()} / {self.const_num()})"  # x/0 = inf, 0/0 = NaN
        return f"(-{self.num(depth - 1, clock_ok)})"

    # conditions ------------------------------------------------------------------------
    def comparison(self, depth: int) -> str:
        op = self.pick([">", "<", ">=", "<=", "==", "!=", ">", "<"])
        left = self.num(depth)
        right = self.literal(op in ("==", "!=")) if self.r.random() < 0.5 else self.num(depth - 1)
        return f"{left} {op} {right}"

    def since_comparison(self) -> str:
        op = self.pick([">", "<", ">=", "<=", ">", "<", "=="])
        left = f"since({self.types()})"
        right = self.pick([self.pick(["500ms", "5s", "12s", "30s", "1m", "90s", "5m"]), f"since({self.types()})",
                           "dwell", "stream_time", "total_dwell"])
        return f"{left} {op} {right}" if self.r.random() < 0.7 else f"{right} {op} {left}"

    def membership(self) -> str:
        subject = self.pick([f"count({self.types()}, {self.pick(WINDOWS)})", "sessions", "orders", "cart_items",
                             "age", "city_tier", f"count({self.types()})"])
        items = ", ".join(self.r.sample(["0", "1", "2", "3", "4", "0", "1", "2", "2.5"], self.r.randint(1, 3)))
        return f"{subject} {self.pick(['in', 'in', 'not in'])} [{items}]"

    def string_test(self) -> str:
        subject, values = self.pick([("top_interest", [*CATEGORIES, ""]), ("gender", GENDERS),
                                     ("level", LEVELS)])
        r = self.r.random()
        if r < 0.5:
            return f"{subject} {self.pick(['==', '!='])} '{self.pick(values)}'"
        items = ", ".join(f"'{v}'" for v in self.r.sample(values, self.r.randint(1, 3)))
        return f"{subject} {self.pick(['in', 'not in'])} [{items}]"

    def boolean(self, depth: int) -> str:
        r = self.r.random()
        if depth <= 0 or r < 0.4:
            r = self.r.random()
            if r < 0.45:
                return self.comparison(max(depth, 1))
            if r < 0.6:
                return self.since_comparison()
            if r < 0.7:
                return self.membership()
            if r < 0.82:
                return self.string_test()
            if r < 0.92 or not self.earlier:
                return self.pick(["present", "paid", "follows", "carted", "not present", "tag(vip)"])
            return self.pick(self.earlier)
        r = self.r.random()
        if r < 0.4:
            return f"({self.boolean(depth - 1)} and {self.boolean(depth - 1)})"
        if r < 0.8:
            return f"({self.boolean(depth - 1)} or {self.boolean(depth - 1)})"
        return f"not ({self.boolean(depth - 1)})"


# Hand-written segments for the deterministic test (and extra coverage for the random one).
HAND_SEGMENTS = {
    "h_views": "count(view, 1m) >= 2",
    "h_since": "since(like) > 30s",
    "h_cart": "carted and cart_value >= 16",
    "h_interest": "interest(snacks) > 1.5 and top_interest == 'snacks'",
    "h_dwell": "dwell > 5m",
    "h_session_views": "count(view) == 1",
    "h_spend": "spend > 0 and aov == spend / orders",
    "h_buyer": "paid or orders >= 1",
    "h_profile": "level == 'high' and age >= 30",
    "h_stream": "stream_time >= 60 and audience >= 1",
    "h_left": "count(leave) >= 1",  # was an engine discrepancy, fixed (see test_count_of_leave_*)
    # a known engine discrepancy (see the xfail test at the end)
    "k_square": "present and dwell * dwell > 0",
}
#: Segments and features of the known discrepancies: not compared by the random test.
KNOWN_BUGS = {"k_square"}


def build_rules() -> tuple[str, dict[str, str]]:
    rnd = random.Random(SEED)
    segments: dict[str, str] = {}
    for i in range(N_RANDOM):
        segments[f"e{i}"] = ExprGen(rnd, list(segments)).boolean(rnd.choice([1, 2, 2, 3, 3]))
    segments.update(HAND_SEGMENTS)
    lines = [
        "[engine]",
        'idle_timeout = "90s"',
        f"categories = {CATEGORIES!r}".replace("'", '"'),
        'interest_half_life = "10m"',
        "",
        "[profile]",
        'age = "int"',
        'city_tier = "int"',
        f"gender = {GENDERS!r}".replace("'", '"'),
        f"level = {LEVELS!r}".replace("'", '"'),
        "",
        "[segments]",
    ]
    for name, text in segments.items():
        assert '"' not in text
        lines.append(f'{name} = "{text}"')
    return "\n".join(lines) + "\n", segments


RULES_TEXT, SEGMENTS = build_rules()


class Compiled:
    """The checked rule set; ``compiled.engine()`` is a fresh Engine reusing the compiled kernels."""

    def __init__(self, rules):
        self.rules = rules
        self.compiled = compile_rules(rules)

    def engine(self, capacity: int = 2) -> Engine:
        """A fresh engine; room for 2 viewers only, so that a third one makes the arrays grow."""
        return Engine(self.rules, capacity=capacity)  # the compiler caches per RuleSet: cheap

    def __repr__(self) -> str:  # hypothesis prints the test's arguments: keep it short
        return "<differential.toml, compiled>"


@pytest.fixture(scope="module")
def compiled() -> Compiled:
    """The rules file, compiled once (~1 min cold, <1 s from numba's cache). Not warmed up: the
    kernels these tests call compile on first use, the batch kernels (never called here) not at all."""
    return Compiled(Engine.from_toml(RULES_TEXT, "differential.toml").rules)


# ---------------------------------------------------------------------------------------
# running a scenario on both and comparing

Op = tuple  # ("ingest", dict) | ("profile", viewer, attrs) | ("advance", t) | ("check",)


def run(ops: list[Op], engine: Engine, ref: ReferenceEngine, rooms: list[str]) -> None:
    for i, op in enumerate(ops):
        if op[0] == "ingest":
            engine.ingest(dict(op[1]))
            ref.ingest(op[1])
        elif op[0] == "profile":
            engine.set_profile(op[1], **op[2])
            ref.set_profile(op[1], **op[2])
        elif op[0] == "advance":
            engine.advance(op[1])
            ref.advance(op[1])
        elif op[0] == "check":
            check(engine, ref, ops[: i + 1], rooms)
    check(engine, ref, ops, rooms)


def _same(got: Any, exp: Any) -> bool:
    if isinstance(exp, bool) or isinstance(got, bool):
        return bool(got) == bool(exp) and isinstance(got, bool) == isinstance(exp, bool)
    if isinstance(exp, str) or isinstance(got, str):
        return got == exp
    got, exp = float(got), float(exp)
    if math.isnan(got) or math.isnan(exp):
        return math.isnan(got) and math.isnan(exp)
    if math.isinf(got) or math.isinf(exp):
        return got == exp
    return math.isclose(got, exp, rel_tol=1e-9, abs_tol=1e-9)


def _segment_closure(names: list[str]) -> list[str]:
    """The segments named, and every segment they refer to, with their texts."""
    out, todo = [], list(names)
    while todo:
        name = todo.pop()
        if name in out or name not in SEGMENTS:
            continue
        out.append(name)
        todo += [n.name for n in ast.walk(parse_expr(SEGMENTS[name])) if isinstance(n, ast.Name)]
    return [f"  {n} = {SEGMENTS[n]!r}" for n in sorted(out, key=lambda s: (s[0], int(s[1:]) if s[1:].isdigit() else 0, s))]


def _replay_script(ops: list[Op]) -> str:
    lines = []
    for op in ops:
        if op[0] == "ingest":
            lines.append(f"  engine.ingest({op[1]!r})")
        elif op[0] == "profile":
            kw = ", ".join(f"{k}={v!r}" for k, v in op[2].items())
            lines.append(f"  engine.set_profile({op[1]!r}, {kw})")
        elif op[0] == "advance":
            lines.append(f"  engine.advance({op[1]!r})")
        else:
            lines.append("  # check")
    return "\n".join(lines)


@functools.lru_cache(maxsize=None)
def _parsed(label: str) -> ast.Node:
    return parse_expr(label)


def check(engine: Engine, ref: ReferenceEngine, ops: list[Op], rooms: list[str]) -> None:
    problems: list[str] = []
    bad_segments: list[str] = []
    for vid in ref.viewers:
        got = engine.viewer(vid)
        if got["room"] != ref.viewers[vid].room:
            problems.append(f"viewer {vid!r}: room: engine {got['room']!r}, reference {ref.viewers[vid].room!r}")
        for name, value in got["segments"].items():
            if name in KNOWN_BUGS:
                continue
            exp, fragile = ref.segment(vid, name)
            if not fragile and not _same(value, exp):
                problems.append(f"viewer {vid!r}: segment {name} = {SEGMENTS[name]!r}: engine {value!r}, reference {exp!r}")
                bad_segments.append(name)
        for group in ("features", "profile"):
            for label, value in got[group].items():
                if label in KNOWN_BUGS:
                    continue
                exp, fragile = ref.evaluate(vid, _parsed(label))
                if not fragile and not _same(value, exp):
                    problems.append(f"viewer {vid!r}: {group[:-1]} {label}: engine {value!r}, reference {exp!r}")
    for name in SEGMENTS:
        if name in KNOWN_BUGS:
            continue
        for room in [None, *rooms, "nowhere"]:
            got_n = engine.segment_size(name, room=room)
            exp_n, fragile_n = ref.segment_size(name, room=room)
            if abs(got_n - exp_n) > fragile_n:
                problems.append(f"segment_size({name!r}, room={room!r}): engine {got_n}, reference {exp_n}"
                                f" ({SEGMENTS[name]!r})")
                bad_segments.append(name)
    if problems:
        raise AssertionError(
            "compiled engine and reference disagree at engine time "
            f"{ref.now / 1e6!r} (T0 + {ref.now / 1e6 - T0:.6f}):\n  " + "\n  ".join(problems[:20])
            + "\nsegments involved:\n" + "\n".join(_segment_closure(bad_segments))
            + "\nevent stream (replay):\n" + _replay_script(ops)
            + "\nrules file:\n" + RULES_TEXT
        )


# ---------------------------------------------------------------------------------------
# random streams

WEIGHTED_TYPES = [t for t, w in (("enter", 3), ("leave", 2), ("heartbeat", 2), ("view", 4), ("click", 3),
                                 ("like", 3), ("comment", 2), ("share", 1), ("cart", 3), ("uncart", 2),
                                 ("checkout", 1), ("pay", 2), ("refund", 1), ("follow", 1)) for _ in range(w)]
CATALOGUE = {"i1": 10.0, "i2": 6.5, "i3": 120.25, "i4": 1.75}


@st.composite
def scenarios(draw) -> tuple[list[Op], list[str]]:
    n_viewers = draw(st.integers(1, 3))
    viewers: list[Any] = ["u1", "u2", 7][:n_viewers]  # an int viewer id too
    rooms = ["r1", "r2", "r3", "r4", "r5"][: draw(st.sampled_from([1, 2, 2, 5]))]  # 5: room arrays grow
    t = T0 + draw(st.sampled_from([0.0, 0.25, 7.0]))
    ops: list[Op] = []
    for _ in range(draw(st.integers(1, 45))):
        # time moves on: not at all, a little (ms grid), seconds, or a lot (idle timeouts, windows)
        gap_kind = draw(st.sampled_from(["same", "ms", "ms", "s", "s", "s", "s", "s", "big"]))
        if gap_kind == "ms":
            t += draw(st.integers(1, 3000)) / 1000
        elif gap_kind == "s":
            t += draw(st.integers(1, 60))
        elif gap_kind == "big":
            t += draw(st.sampled_from([90, 100, 300, 600, 650, 1000])) + draw(st.integers(0, 2000)) / 1000
        kind = draw(st.sampled_from(["event"] * 14 + ["profile", "advance", "check", "live"]))
        if kind == "profile":
            attrs = draw(st.fixed_dictionaries({}, optional={
                "age": st.integers(0, 70), "city_tier": st.integers(1, 5),
                "gender": st.sampled_from(GENDERS + [""]), "level": st.sampled_from(LEVELS + [""])}))
            ops.append(("profile", draw(st.sampled_from(viewers)), attrs))
        elif kind == "advance":  # now and then into the past, where it must do nothing
            ops.append(("advance", t - draw(st.sampled_from([0, 0, 0, 0, 10, 200]))))
        elif kind == "check":
            ops.append(("check",))
        elif kind == "live":
            room = draw(st.sampled_from(rooms))
            typ = draw(st.sampled_from(["live_start", "live_end"]))
            ops.append(("ingest", {"type": typ, "room": room, "ts": t}))
        else:
            typ = draw(st.sampled_from(WEIGHTED_TYPES))
            ts = t
            if draw(st.integers(0, 9)) == 0:  # a late event
                ts = t - draw(st.sampled_from([0.001, 1.0, 5.0, 30.0, 95.0]))
            ev: dict[str, Any] = {"type": typ, "viewer": draw(st.sampled_from(viewers)),
                                  "room": draw(st.sampled_from(rooms)), "ts": ts}
            if typ in ("view", "click", "cart", "uncart", "checkout", "pay", "like", "comment"):
                item = draw(st.sampled_from([*CATALOGUE, None]))
                if item is not None:
                    ev["item"] = item
                category = draw(st.sampled_from([*CATEGORIES, "garden", None]))
                if category is not None:
                    ev["category"] = category
                price_kind = draw(st.sampled_from(["catalogue", "catalogue", "catalogue", "none", "other"]))
                if price_kind == "catalogue":
                    ev["price"] = CATALOGUE.get(item, 3.0)
                elif price_kind == "other":
                    ev["price"] = draw(st.integers(0, 400)) / 4
            if typ in ("pay", "refund") and draw(st.booleans()):
                ev["amount"] = draw(st.integers(0, 2000)) / 4
            ops.append(("ingest", ev))
    return ops, rooms


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_engine_matches_reference(compiled, scenario):
    ops, rooms = scenario
    run(ops, compiled.engine(), ReferenceEngine(RULES_TEXT), rooms)


# ---------------------------------------------------------------------------------------
# hand-worked values: the shape of the comparison


def test_hand_worked_values(compiled):
    engine, ref = compiled.engine(), ReferenceEngine(RULES_TEXT)

    def feed(ev):
        engine.ingest(dict(ev))
        ref.ingest(ev)

    def advance(t):
        engine.advance(t)
        ref.advance(t)

    def expect(label: str, value: Any, viewer: Any = "u1") -> None:
        got = engine.viewer(viewer)
        group = "segments" if label in SEGMENTS else "features"
        exp, fragile = ref.segment(viewer, label) if group == "segments" else ref.evaluate(viewer, label)
        assert not fragile
        assert _same(exp, value), f"reference: {label} = {exp!r}, worked by hand: {value!r}"
        assert _same(got[group][label], value), f"engine: {label} = {got[group][label]!r}, worked by hand: {value!r}"

    def ev(typ, ts, **fields):
        return {"type": typ, "viewer": "u1", "room": "r1", "ts": T0 + ts, **fields}

    feed(ev("enter", 0))
    feed(ev("view", 10, item="i1", category="snacks", price=10.0))
    feed(ev("view", 20, item="i2", category="snacks", price=6.0))
    feed(ev("like", 25))
    feed(ev("cart", 30, item="i1", price=10.0))
    feed(ev("cart", 31, item="i1", price=10.0))
    feed(ev("cart", 32, item="i2", price=6.0))
    feed(ev("uncart", 33, item="i1"))
    advance(T0 + 60)
    # 1m window = 12 buckets of 5 s; T0 is a multiple of 5, so at T0+60 it spans [T0+5, T0+65)
    expect("count(view, 1m)", 2.0)
    expect("h_views", True)
    expect("since(like)", 35.0)
    expect("h_since", True)
    expect("cart_items", 2.0)
    expect("cart_value", 16.0)
    expect("h_cart", True)
    expect("interest(snacks)", 2 ** (-50 / 600) + 2 ** (-40 / 600))  # two views, half-life 10 min
    expect("top_interest", "snacks")
    expect("h_interest", True)
    expect("dwell", 60.0)
    expect("count(view)", 2.0)
    expect("h_session_views", False)
    expect("stream_time", 60.0)
    expect("h_stream", True)
    feed(ev("heartbeat", 60))  # heartbeats keep the session alive (idle timeout 90 s)
    advance(T0 + 75)  # window [T0+20, T0+80): the view at +10 has left it
    expect("count(view, 1m)", 1.0)
    advance(T0 + 80)  # window [T0+25, T0+85): both have left it
    expect("count(view, 1m)", 0.0)
    feed(ev("heartbeat", 140))
    feed(ev("heartbeat", 220))
    # strict threshold at its very instant: dwell > 5m holds at exactly 300 s (right limit)
    feed(ev("heartbeat", 300))
    expect("dwell", 300.0)
    expect("h_dwell", True)
    # pay without amount pays the cart value; refunds subtract
    feed(ev("pay", 300))
    feed(ev("refund", 300, amount=4.0))
    expect("spend", 12.0)
    expect("aov", 12.0)
    expect("h_spend", True)
    expect("carted", False)
    # idle timeout: the session ends at the last event (+300), at +390 the viewer is absent
    advance(T0 + 390)
    expect("present", False)
    expect("dwell", 300.0)
    expect("h_buyer", True)
    # a late event (older than the viewer's clock, +390) is applied at +390: a new session
    feed(ev("view", 380, item="i4", category="beauty", price=1.75))
    expect("sessions", 2.0)
    expect("dwell", 0.0)
    expect("total_dwell", 300.0)
    expect("count(view)", 1.0)
    expect("h_session_views", True)
    expect("since(like)", 365.0)
    engine.set_profile("u1", level="high", age=31)
    ref.set_profile("u1", level="high", age=31)
    expect("h_profile", True)
    check(engine, ref, [], ["r1"])  # and everything else agrees too


def test_many_cart_items(compiled):
    """Hundreds of (viewer, item) cart entries: the engine's cart table grows and rehashes."""
    rnd = random.Random(SEED)
    engine, ref = compiled.engine(), ReferenceEngine(RULES_TEXT)
    ops: list[Op] = []
    t = T0
    for _ in range(600):
        t += rnd.choice([0.0, 0.5, 3.0])
        typ = rnd.choice(["cart"] * 6 + ["uncart"] * 3 + ["pay"])
        ev = {"type": typ, "viewer": rnd.choice(["u1", "u2", "u3"]), "room": "r1", "ts": t,
              "item": f"x{rnd.randrange(120)}", "price": rnd.randrange(1, 200) / 4}
        if typ == "pay" and rnd.random() < 0.5:
            ev["amount"] = 1.0
        ops.append(("ingest", ev))
        if rnd.random() < 0.05:
            ops.append(("check",))
    run(ops, engine, ref, ["r1"])


# ---------------------------------------------------------------------------------------
# known discrepancies (engine bugs), kept out of the random generator


# count(T) without a window and leaves that end nothing: found by this test as an engine
# bug (they were counted), fixed in the engine since; docs/semantics.md (Sessions) now
# says such a leave belongs to no session.


def test_count_of_leave_while_absent(compiled):
    engine, ref = compiled.engine(), ReferenceEngine(RULES_TEXT)
    for e in ({"type": "leave", "viewer": "u1", "room": "r1", "ts": T0},):
        engine.ingest(dict(e))
        ref.ingest(e)
    # SPEC §8: not present -> count(T) is that of the session that ended last, 0 before any session
    assert ref.evaluate("u1", "count(leave)") == (0.0, False)
    assert engine.viewer("u1")["features"]["count(leave)"] == 0.0  # was 1.0


def test_count_of_leave_after_session(compiled):
    engine, ref = compiled.engine(), ReferenceEngine(RULES_TEXT)
    for e in ({"type": "enter", "viewer": "u1", "room": "r1", "ts": T0},
              {"type": "leave", "viewer": "u1", "room": "r1", "ts": T0 + 10},   # ends the session: counted
              {"type": "leave", "viewer": "u1", "room": "r1", "ts": T0 + 20},   # absent: ends nothing
              {"type": "enter", "viewer": "u1", "room": "r1", "ts": T0 + 30},
              {"type": "leave", "viewer": "u1", "room": "r2", "ts": T0 + 40}):  # another room: nothing
        engine.ingest(dict(e))
        ref.ingest(e)
    assert ref.evaluate("u1", "count(leave)") == (0.0, False)
    assert engine.viewer("u1")["features"]["count(leave)"] == 0.0
    e = {"type": "leave", "viewer": "u1", "room": "r1", "ts": T0 + 50}
    engine.ingest(dict(e))
    ref.ingest(e)
    assert ref.evaluate("u1", "count(leave)") == (1.0, False)  # the leave that ends a session counts
    assert engine.viewer("u1")["features"]["count(leave)"] == 1.0


@pytest.mark.xfail(strict=True, reason="documented limitation (docs/semantics.md): strict comparisons take their direction from the first derivative")
def test_known_second_order_right_limit(compiled):
    engine, ref = compiled.engine(), ReferenceEngine(RULES_TEXT)
    e = {"type": "enter", "viewer": "u1", "room": "r1", "ts": T0}
    engine.ingest(dict(e))
    ref.ingest(e)
    # docs/semantics.md: a strict comparison takes its right limit; dwell^2 > 0 right after entering
    assert ref.segment("u1", "k_square") == (True, False)
    assert engine.viewer("u1")["segments"]["k_square"] is True  # engine: False


def test_live_end_first_in_room(compiled):
    """Found by this test (the engine counted from the next event), fixed in the engine since."""
    engine, ref = compiled.engine(), ReferenceEngine(RULES_TEXT)
    for e in ({"type": "live_end", "room": "r1", "ts": T0 + 0.001},
              {"type": "enter", "viewer": "u1", "room": "r1", "ts": T0}):
        engine.ingest(dict(e))
        ref.ingest(e)
    # SPEC §2: stream_time counts from the room's live_start, or from the first event seen in the room
    assert ref.evaluate("u1", "stream_time") == (0.0, False)
    assert engine.viewer("u1")["features"]["stream_time"] == 0.0  # was 0.001 (counted from the enter)
