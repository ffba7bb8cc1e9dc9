"""Differential test of FIRING: random rules files x random event streams, compiled engine
against the pure-Python reference of tests/reference_rules.py.

A small pool of random rules files (``POOL`` seeds; event rules and state rules over a
feature subset, with once / cooldown / budget / priority / tags / segments / params) is
generated once and each file compiled once per session (2-6 s each, then Numba's cache).
Every example picks one file and a random stream (several viewers and rooms, enter /
leave / likes / carts / pays, gaps longer than the idle timeout, ``advance()`` at random
points, ``set_profile``) and checks that both return the same actions, call by call, in
the same order: ``(rule, action, viewer, room, ts to the microsecond, params)``; and at the
end the same ``stats()`` fired / suppressed counters.

On failure the message holds the rules file, the seed and a replay script.

Known engine defects (being fixed in parallel) are kept out of the default run:

* ``KNOWN_TAG_REEVALUATION``: a state rule that reads a tag changed by a LATER rule of the
  same pass must be evaluated again after the pass (SPEC §8 "State rules see the pass's
  final tags"). Default: state rules that read tags run last (lowest priority), so no pass
  ever needs it.
* ``KNOWN_SAME_INSTANT_ORDER``: firings due at the same instant come out viewer by viewer in
  the order of each viewer's first accepted event (SPEC §8). Default: within one call,
  actions with the same ``ts`` are compared viewer by viewer (each viewer's own order
  exactly) rather than interleaved.
* ``KNOWN_UNDECLARED_CATEGORY``: ``event.category == 'x'`` compares the field's own value,
  declared or not (SPEC §8). Default: rules compare ``event.category`` with declared
  categories only (events still carry undeclared ones).

``SEGENGINE_DIFF_RULES_STRICT=1`` turns all three on (``=tags``, ``=order``, ``=category`` or a
comma list: one at a time; the tag and category shapes change the rules files, one compile
each). "1" is the default since the engine fixed all three; ``=`` (empty) generates without them.
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from segengine import Engine

try:
    from tests.reference_rules import RulesReference
except ImportError:  # pytest put tests/ itself on sys.path
    from reference_rules import RulesReference  # type: ignore[no-redef]

#: Which known-defect shapes to generate and check: "" (none), "1" (all), or a comma list of
#: "tags", "order", "category".
STRICT_ENV = os.environ.get("SEGENGINE_DIFF_RULES_STRICT", "1")
STRICT_PARTS = {"tags", "order", "category"} if STRICT_ENV == "1" else set(filter(None, STRICT_ENV.split(",")))
KNOWN_TAG_REEVALUATION = "tags" in STRICT_PARTS
KNOWN_SAME_INSTANT_ORDER = "order" in STRICT_PARTS
KNOWN_UNDECLARED_CATEGORY = "category" in STRICT_PARTS
STRICT = bool(STRICT_PARTS)
#: One rules file per seed; each costs one Numba compile per session (cached across runs).
POOL = [int(s) for s in os.environ.get("SEGENGINE_DIFF_RULES_SEEDS", "11,12").split(",")]
EXAMPLES = int(os.environ.get("SEGENGINE_DIFF_RULES_EXAMPLES", "150"))

T0 = 1_700_000_000.0
CATEGORIES = ["snacks", "beauty", "digital", "apparel"]
TYPES = ["enter", "leave", "heartbeat", "view", "click", "like", "comment", "share", "cart", "uncart",
         "checkout", "pay", "refund", "follow"]
WINDOWS = ["12s", "1m", "10m"]
DURATIONS = ["5s", "30s", "1m", "90s", "2m", "5m"]
TAGS = ["t1", "t2"]
ITEMS = {"i1": 10.0, "i2": 60.0, "i3": 250.0}

# ---------------------------------------------------------------------------------------
# random rules files


class RulesGen:
    """A small random rules file. State rules use only what the reference can time exactly:
    ``CLOCK OP NUMBER`` comparisons, windows, session and money state, tags, segments."""

    def __init__(self, seed: int, tags_anywhere: bool = False, undeclared: bool = False):
        self.r = random.Random(seed)
        self.seed = seed
        self.tags_anywhere = tags_anywhere  # tag-reading state rules at any priority
        self.undeclared = undeclared  # compare event.category with an undeclared category too

    def pick(self, seq):
        return self.r.choice(seq)

    def types(self) -> str:
        """One to three event types, the frequent ones more often (so that rules do fire)."""
        common = ["like", "like", "heartbeat", "view", "cart", "enter", "comment", "pay"]
        return "|".join(dict.fromkeys(self.pick(common if self.r.random() < 0.7 else TYPES)
                                      for _ in range(self.pick([1, 1, 2, 3]))))

    def state_atom(self, segments: list[str], tags_ok: bool) -> str:
        r = self.r.random()
        op = self.pick([">", ">", ">=", "<", "<="])
        if self.tags_anywhere and tags_ok and self.r.random() < 0.3:
            return f"{self.pick(['', 'not '])}tag({self.pick(TAGS)})"
        if r < 0.12:
            return self.pick(["present", "not present", "carted", "not carted", "paid", "not paid", "follows"])
        if r < 0.30:
            return f"count({self.types()}, {self.pick(WINDOWS)}) {self.pick(['>= 1', '>= 2', '>= 3', '== 0', '== 1', '< 2'])}"
        if r < 0.38:
            return f"count({self.types()}) >= {self.pick([1, 2])}"
        if r < 0.45:
            return self.pick(["orders >= 1", "sessions >= 2", "cart_items >= 2", "spend > 100", "cart_value > 50"])
        if r < 0.50:
            return f"{self.pick(['sum', 'avg'])}(price, {self.types()}, {self.pick(WINDOWS)}) > {self.pick([20, 50, 100])}"
        if r < 0.62:
            return f"dwell {op} {self.pick(DURATIONS)}"
        if r < 0.75:
            return f"since({self.types()}) {op} {self.pick(DURATIONS)}"
        if r < 0.80:
            return f"stream_time {op} {self.pick(DURATIONS)}"
        if r < 0.84:
            return f"total_dwell {op} {self.pick(DURATIONS)}"
        if r < 0.92 and tags_ok:
            return f"{self.pick(['', 'not '])}tag({self.pick(TAGS)})"
        if segments:
            return self.pick(segments)
        return "present"

    def event_atom(self, segments: list[str], specific: bool = False) -> str:
        r = self.r.random()
        if r < 0.55 and not specific:
            return self.state_atom(segments, tags_ok=True)
        cats = CATEGORIES + (["garden"] if self.undeclared else [])
        return self.pick([
            f"event.category == '{self.pick(cats)}'",
            f"event.category != '{self.pick(cats)}'",
            f"event.category in ['{self.pick(cats)}', '{self.pick(cats)}']",
            f"event.price > {self.pick([5, 50, 100])}",
            f"event.item == '{self.pick(list(ITEMS))}'",
            "audience >= 2",
            "level == 'high'",
            "age >= 30",
            f"interest({self.pick(CATEGORIES)}) > {self.pick([1, 3])}",
            f"top_interest == '{self.pick(CATEGORIES)}'",
        ])

    def condition(self, atom) -> str:
        n = self.pick([1, 1, 2, 2, 3])
        text = atom()
        for _ in range(n - 1):
            text = f"{text} {self.pick(['and', 'and', 'or'])} {atom()}"
        if self.r.random() < 0.1:
            text = f"not ({text})"
        return text

    def build(self) -> str:
        r = self.r
        idle = self.pick(["90s", "60s"])
        lines = ["[engine]", f'idle_timeout = "{idle}"', f"categories = {CATEGORIES!r}".replace("'", '"'), "",
                 "[profile]", 'age = "int"', 'level = ["low", "mid", "high"]', "", "[segments]"]
        segments: list[str] = []
        for i in range(2):
            lines.append(f's{i} = "{self.condition(lambda: self.state_atom(segments, tags_ok=False))}"')
            segments.append(f"s{i}")
        for i in range(r.randint(6, 9)):
            state = r.random() < 0.5
            if state:
                when = self.condition(lambda: self.state_atom(segments, tags_ok=True))
            else:
                when = self.condition(lambda: self.event_atom(segments))
                if r.random() < 0.4:  # something only an event rule can read
                    when = f"{self.event_atom(segments, specific=True)} and ({when})"
            reads_tags = state and "tag(" in when
            then = [f"a{i}"]
            if not reads_tags and r.random() < 0.45:  # tag-reading state rules never tag (one round = fixpoint)
                then.append(f"{self.pick(['tag', 'tag', 'untag'])}:{self.pick(TAGS)}")
                r.shuffle(then)
            if reads_tags and not self.tags_anywhere:
                priority = -9  # after every tagging rule: no pass ever needs a re-evaluation
            elif reads_tags:
                priority = self.pick([9, 9, 0])  # mostly before the tagging rules: re-evaluations
            else:
                priority = self.pick([0, 0, 0, 1, 5, -1])
            rule = ["[[rules]]", f'name = "r{i}"']
            if not state:
                rule.append(f"on = {self.types().split('|')!r}".replace("'", '"'))
            rule += [f'when = "{when}"', f"then = {then!r}".replace("'", '"')]
            if r.random() < 0.3:
                rule.append(f'once = "{self.pick(["session", "lifetime"])}"')
            if r.random() < 0.3:
                rule.append(f'cooldown = "{self.pick(["10s", "30s", "2m"])}"')
            if r.random() < 0.25:
                rule.append(f'budget = "{self.pick([1, 2])}/{self.pick(["30s", "1m", "5m"])}"')
            if priority:
                rule.append(f"priority = {priority}")
            if r.random() < 0.35:
                rule.append(self.pick([
                    'params = { item = "{event.item}", d = "{dwell}" }',
                    'params = { msg = "n={count(like, 1m)} d={dwell}", c = "{carted}", k = 3 }',
                    'params = { price = "{event.price}", orders = "{orders}", top = "{top_interest}" }',
                ]))
            lines += ["", *rule]
        return "\n".join(lines) + "\n"


class Pool:
    """The rules files of the run, each compiled once (an Engine per example is then cheap)."""

    def __init__(self):
        self.texts = [RulesGen(seed, KNOWN_TAG_REEVALUATION, KNOWN_UNDECLARED_CATEGORY).build() for seed in POOL]
        self.rules = [Engine.from_toml(text, f"random-{seed}.toml").warmup().rules
                      for seed, text in zip(POOL, self.texts)]

    def __repr__(self) -> str:
        return f"<rules pool {POOL}, strict={sorted(STRICT_PARTS)}>"


@pytest.fixture(scope="module")
def pool() -> Pool:
    return Pool()


# ---------------------------------------------------------------------------------------
# random streams

Op = tuple  # ("ingest", dict) | ("advance", t) | ("profile", viewer, attrs)


@st.composite
def streams(draw) -> list[Op]:
    viewers: list[Any] = ["u1", "u2", 7][: draw(st.integers(1, 3))]
    rooms = ["r1", "r2"][: draw(st.integers(1, 2))]
    t = T0 + draw(st.sampled_from([0.0, 0.25, 7.0]))
    ops: list[Op] = []
    if draw(st.booleans()):  # the stream went live a while ago (before any viewer event)
        ops.append(("ingest", {"type": "live_start", "room": rooms[0], "ts": t - draw(st.sampled_from([0, 30, 400]))}))
    weighted = [typ for typ, w in (("enter", 4), ("leave", 2), ("heartbeat", 4), ("view", 3), ("click", 2),
                                   ("like", 4), ("comment", 2), ("share", 1), ("cart", 3), ("uncart", 1),
                                   ("checkout", 1), ("pay", 2), ("refund", 1), ("follow", 1)) for _ in range(w)]
    for _ in range(draw(st.integers(1, 40))):
        gap = draw(st.sampled_from(["same", "ms", "s", "s", "s", "s", "30s", "big"]))
        if gap == "ms":
            t += draw(st.integers(1, 3000)) / 1000
        elif gap == "s":
            t += draw(st.integers(1, 40))
        elif gap == "30s":
            t += 30
        elif gap == "big":  # past idle timeouts, windows and thresholds
            t += draw(st.sampled_from([60, 90, 120, 300, 700])) + draw(st.integers(0, 2000)) / 1000
        kind = draw(st.sampled_from(["event"] * 12 + ["advance", "advance", "profile", "live_end"]))
        if kind == "advance":  # never ahead of the next event (that would make it late)
            ops.append(("advance", t - draw(st.sampled_from([0, 0, 0, 5, 200]))))
        elif kind == "profile":
            attrs = draw(st.fixed_dictionaries({}, optional={"age": st.integers(18, 50),
                                                             "level": st.sampled_from(["low", "high"])}))
            ops.append(("profile", draw(st.sampled_from(viewers)), attrs))
        elif kind == "live_end":
            ops.append(("ingest", {"type": "live_end", "room": draw(st.sampled_from(rooms)), "ts": t}))
        else:
            typ = draw(st.sampled_from(weighted))
            ev: dict[str, Any] = {"type": typ, "viewer": draw(st.sampled_from(viewers)),
                                  "room": draw(st.sampled_from(rooms)), "ts": t}
            if typ in ("view", "click", "cart", "uncart", "checkout", "pay", "like"):
                item = draw(st.sampled_from([*ITEMS, None]))
                if item is not None:
                    ev["item"] = item
                    if draw(st.integers(0, 3)):
                        ev["price"] = ITEMS[item]
                category = draw(st.sampled_from([*CATEGORIES, "garden", None]))
                if category is not None:
                    ev["category"] = category
            if typ in ("pay", "refund") and draw(st.booleans()):
                ev["amount"] = draw(st.integers(0, 800)) / 4
            ops.append(("ingest", ev))
    return ops


# ---------------------------------------------------------------------------------------
# running both and comparing


def _key(a) -> tuple:
    return (a.rule, a.action, a.viewer, a.room, round(a.ts * 1e6))


def _canonical(call: list[tuple]) -> list[tuple]:
    """Without the same-instant order check: each run of equal ``ts`` viewer by viewer."""
    if KNOWN_SAME_INSTANT_ORDER:
        return call
    return sorted(call, key=lambda k: (k[4], repr(k[2])))  # stable: each viewer's order kept


def _same_params(got: Any, exp: Any) -> bool:
    if isinstance(exp, dict):
        return isinstance(got, dict) and got.keys() == exp.keys() and all(_same_params(got[k], exp[k]) for k in exp)
    if isinstance(exp, bool) or isinstance(got, bool):
        return got is exp
    if isinstance(exp, float) and isinstance(got, float):
        return got == exp or abs(got - exp) <= 1e-9 * max(1.0, abs(exp))
    return got == exp


def replay_script(text: str, ops: list[Op]) -> str:
    lines = ["from segengine import Engine", f"engine = Engine.from_toml({text!r})"]
    for op in ops:
        if op[0] == "ingest":
            lines.append(f"print(engine.ingest({op[1]!r}))")
        elif op[0] == "advance":
            lines.append(f"print(engine.advance({op[1]!r}))")
        else:
            lines.append(f"engine.set_profile({op[1]!r}, **{op[2]!r})")
    return "\n".join(lines)


def run_both(rules, text: str, ops: list[Op]) -> tuple[RulesReference, list[str]]:
    """Feed both; the problems found (empty: they agree)."""
    engine, ref = Engine(rules, capacity=2), RulesReference(text)
    problems: list[str] = []
    for i, op in enumerate(ops):
        if op[0] == "ingest":
            got, exp = engine.ingest(dict(op[1])), ref.ingest(dict(op[1]))
        elif op[0] == "advance":
            got, exp = engine.advance(op[1]), ref.advance(op[1])
        else:
            engine.set_profile(op[1], **op[2])
            ref.set_profile(op[1], **op[2])
            continue
        g, e = _canonical([_key(a) for a in got]), _canonical([_key(a) for a in exp])
        if g != e:
            problems.append(f"call {i} {op!r}:\n    engine:    {g}\n    reference: {e}")
            break
        for a in exp:
            match = [p for p in got if _key(p) == _key(a)]
            if not any(_same_params(p.params, a.params) for p in match):
                problems.append(f"call {i} {op!r}: params of {_key(a)}: engine {[p.params for p in match]},"
                                f" reference {a.params}")
                break
        if problems:
            break
    if not problems:
        stats = engine.stats()
        for name, n in ref.fired.items():
            if stats["fired"][name] != n or stats["suppressed"][name] != ref.suppressed[name]:
                problems.append(f"stats of {name}: engine fired {stats['fired'][name]} suppressed"
                                f" {stats['suppressed'][name]}, reference fired {n} suppressed {ref.suppressed[name]}")
    return ref, problems


def check(rules, text: str, ops: list[Op], label: str) -> None:
    ref, problems = run_both(rules, text, ops)
    assume(not ref.inconclusive)  # a decision on a float near-tie: either answer is right
    if not KNOWN_TAG_REEVALUATION:
        assert ref.reevaluations == 0, "the default generator must not need tag re-evaluation"
    if problems:
        raise AssertionError(
            f"compiled engine and reference disagree ({label}):\n  " + "\n  ".join(problems)
            + f"\n(the reference re-evaluated {ref.reevaluations} state rule(s) after a pass for the final tags)"
            + f"\nrules file ({label}):\n{text}\nreplay:\n{replay_script(text, ops)}")


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(which=st.integers(0, len(POOL) - 1), ops=streams())
def test_firing_matches_reference(pool, which, ops):
    check(pool.rules[which], pool.texts[which], ops, f"seed {POOL[which]}, SEGENGINE_DIFF_RULES_STRICT={STRICT_ENV!r}")


# ---------------------------------------------------------------------------------------
# hand-worked cases: the reference against values worked by hand, then the engine against
# both. One small rules file (one compile) holds every case.

HAND_RULES = """
[engine]
idle_timeout = "90s"
categories = ["snacks"]

[profile]
age = "int"

[[rules]]
name = "st0"
when = "tag(t)"
then = "st0"

[[rules]]
name = "settag"
on = ["comment"]
when = "true"
then = "tag:t"

[[rules]]
name = "st"
when = "tag(t)"
then = "st"

[[rules]]
name = "clr"
on = ["share"]
when = "true"
then = "untag:t"

[[rules]]
name = "garden"
on = ["view"]
when = "event.category == 'garden'"
then = "pick"

[[rules]]
name = "minute"
when = "present and dwell > 1m"
then = "minute"
params = { d = "{dwell}", item = "{event.item}", note = "after {dwell}s" }

[[rules]]
name = "gone"
when = "not present and sessions >= 1"
then = "gone"
"""


def _e(typ: str, ts: float, viewer: Any = "u1", **fields) -> dict:
    return {"type": typ, "viewer": viewer, "room": "r1", "ts": T0 + ts, **fields}


#: case -> (calls, expected actions as (call index, rule, action, viewer, seconds after T0)).
HAND_CASES: dict[str, tuple[list[Op], list[tuple]]] = {
    # a strict threshold fires at its instant exactly; the idle timeout at last event + 90 s
    "threshold_and_idle": (
        [("ingest", _e("enter", 0)), ("advance", T0 + 59.999), ("advance", T0 + 60), ("advance", T0 + 500)],
        [(2, "minute", "minute", "u1", 60.0), (3, "gone", "gone", "u1", 90.0)]),
    # due timers first: the timer due at the event's ts fires before the event is applied
    # (its params have no event: item ""), in the event's call
    "due_timer_first": (
        [("ingest", _e("enter", 0)), ("ingest", _e("view", 60, item="i1"))],
        [(1, "minute", "minute", "u1", 60.0)]),
    # SPEC §8, state rules see the pass's final tags (known engine defect: tag re-evaluation)
    "final_tags": (
        [("ingest", _e("comment", 1)), ("ingest", _e("share", 2)), ("ingest", _e("comment", 3))],
        [(0, "settag", "tag:t", "u1", 1.0), (0, "st", "st", "u1", 1.0), (0, "st0", "st0", "u1", 1.0),
         (1, "clr", "untag:t", "u1", 2.0),
         (2, "settag", "tag:t", "u1", 3.0), (2, "st", "st", "u1", 3.0), (2, "st0", "st0", "u1", 3.0)]),
    # SPEC §8, same instant: viewer by viewer in the order of their first accepted event,
    # whatever set_profile did before (known engine defect: same-instant order)
    "same_instant_order": (
        [("profile", "u2", {"age": 30}), ("ingest", _e("enter", 0, "u1")), ("ingest", _e("enter", 0, "u2")),
         ("advance", T0 + 60)],
        [(3, "minute", "minute", "u1", 60.0), (3, "minute", "minute", "u2", 60.0)]),
    # SPEC §8, event.category compares the field's own value (known engine defect)
    "undeclared_category": (
        [("ingest", _e("view", 0, category="garden")), ("ingest", _e("view", 1, category="snacks"))],
        [(0, "garden", "pick", "u1", 0.0)]),
}
#: Hand cases the engine is known to get wrong (none since the three SPEC §8 fixes): name -> reason.
KNOWN_DEFECT: dict[str, str] = {}


def _calls(fire, ops: list[Op]) -> list[tuple]:
    out = []
    for i, op in enumerate(ops):
        for a in fire(op):
            out.append((i, a.rule, a.action, a.viewer, round(a.ts - T0, 6)))
    return out


def _drive(target):
    def fire(op):
        if op[0] == "ingest":
            return target.ingest(dict(op[1]))
        if op[0] == "advance":
            return target.advance(op[1])
        target.set_profile(op[1], **op[2])
        return []
    return fire


@pytest.fixture(scope="module")
def hand_rules():
    return Engine.from_toml(HAND_RULES, "hand.toml").warmup().rules


@pytest.mark.parametrize("case", list(HAND_CASES))
def test_reference_hand_worked(case):
    ops, expected = HAND_CASES[case]
    ref = RulesReference(HAND_RULES)
    assert _calls(_drive(ref), ops) == expected


def test_reference_params_hand_worked():
    ref = RulesReference(HAND_RULES)
    ref.ingest(_e("enter", 0))
    (timer,) = ref.ingest(_e("view", 60, item="i1"))  # the timer's firing: no event
    assert timer.params == {"d": 60.0, "item": "", "note": "after 60s"}
    (gone,) = ref.ingest(_e("leave", 70))  # made true by the leave itself: fires in its pass
    assert (gone.rule, gone.ts, gone.params) == ("gone", T0 + 70, {})
    ref.ingest(_e("enter", 200))
    (late,) = ref.advance(T0 + 260.5)  # the second session's minute, timer-driven, at 260 s
    assert (late.ts, late.params) == (T0 + 260, {"d": 60.0, "item": "", "note": "after 60s"})


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DEFECT[c]))
                                  if c in KNOWN_DEFECT else c for c in HAND_CASES])
def test_engine_hand_worked(hand_rules, case):
    ops, expected = HAND_CASES[case]
    assert _calls(_drive(Engine(hand_rules)), ops) == expected
