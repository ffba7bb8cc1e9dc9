"""The guard registry (segengine/guards/): once, cooldown, budget, and what a new guard costs.

One home per guard: its reason name, its counter offset, its kernel check and commit and its
explain text all come from the registry, so stats(), the kernel's counters, explain and reload
agree. Uses the session's golden and example rules; one small rules file compiles for the toy
guard (a guard defined here, registered for one test).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit

from segengine import Engine
from segengine import guards
from segengine.compiler.codegen import generate
from segengine.compiler.layout import build_layout
from segengine.config import KERNEL_FLAGS
from segengine.guards import GUARDS, REASONS, Guard, Suppressor, counter_index, fired_index, guards_of, meta_width
from segengine.kernels.primitives import META_RULES
from segengine.rules.load import load_rules

from conftest import ev, examples



@st.composite
def guard_streams(draw, max_events: int = 40):
    """Bursts of the event types that guarded rules listen to (golden: like3, hello, budgeted; example:
    hot_interest_coupon), from 3 viewers in 2 rooms, in non-decreasing time: every guard gets to block."""
    t = 1_000.0
    events = []
    for _ in range(draw(st.integers(1, max_events))):
        t += draw(st.sampled_from([0.0, 0.5, 1.0, 5.0, 20.0, 59.5, 60.0, 61.0, 120.0]))  # 1m, 2m: the edges
        typ = draw(st.sampled_from(["like", "like", "comment", "share", "share", "click", "leave", "enter"]))
        e = {"type": typ, "viewer": draw(st.sampled_from(["u1", "u2", 3])), "room": draw(st.sampled_from(["r1", "r1", "r2"])),
             "ts": t}
        if typ == "comment":
            e["text"] = "hi"
        if typ == "click":
            e["item"] = "a"
        events.append(e)
    return events


def test_registry_reasons_and_offsets():
    """Reason codes are registry positions; the counters of all rules and reasons tile the META row."""
    assert REASONS == ("once", "cooldown", "budget", "quiet", "cap", "holdout") == tuple(g.name for g in GUARDS)
    assert [g.key for g in GUARDS] == ["once", "cooldown", "budget", "quiet", "cap", "holdout"]
    n = 5
    cols = [fired_index(r) for r in range(n)] + [counter_index(n, r, k) for r in range(n) for k in range(len(GUARDS))]
    assert cols == list(range(META_RULES, META_RULES + n * (1 + len(GUARDS))))
    assert meta_width(n) == cols[-1] + 2  # one spare column, as before the registry


def test_generated_kernel_checks_and_counts_through_the_registry(golden_rules):
    """Pure Python (no compile): each guarded rule's firing is an if/elif chain of its guards' checks
    in registry order, each counting at counter_index; commits follow a firing; an unguarded rule
    has no suppression code at all."""
    rs = golden_rules
    lay = build_layout(rs)
    source = generate(rs, lay).source
    text = "\n".join(line.strip() for line in source.splitlines())
    n = len(rs.rules)
    guarded = 0
    for r, rule in enumerate(rs.rules):
        if not rule.enabled:
            continue
        chain = []
        for g in guards_of(rule):
            chain.append(f"{'elif' if chain else 'if'} {g.check_code(lay, rule)}:")
            chain.append(f"meta[0, {counter_index(n, r, GUARDS.index(g))}] += 1  # suppressed[{r}, {g.name}]")
            assert g.commit_code(lay, rule) in text
        if chain:
            guarded += 1
            assert "\n".join([*chain, "else:"]) in text, rule.name
        assert f"meta[0, {fired_index(r)}] += 1  # fired[{r}]" in text
    assert guarded >= 4  # once (session and lifetime), cooldown, budget
    assert "supp = " not in source and "META_RULES +" not in source


@pytest.fixture(params=["golden", "example"])
def rules(request, golden_rules, example_rules):
    return golden_rules if request.param == "golden" else example_rules


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=guard_streams())
def test_stats_kernel_and_explain_agree_on_suppression(rules, events):
    """Around each event, for the event rules it triggers: explain just before the event (at its
    time) names the guard that the kernel then counts, or none when the rule fires; stats() and
    explain() report the same counters, keyed by the registry's reasons. Checked while the event
    keeps the viewer's session and room (a new session clears once marks; the budget is per room)."""
    engine = Engine(rules)
    event_rules = [r for r in rules.rules if r.enabled and r.is_event_rule and guards_of(r)]
    for e in events:
        engine.advance(e["ts"])  # what ingest does first: timers due by then
        viewer = e["viewer"]
        try:
            info = engine.viewer(viewer)
        except KeyError:  # not seen yet
            info = None
        same = info is not None and info["features"]["present"] and info["room"] == e["room"]
        before = engine.stats()
        predicted = {r.name: engine.explain(viewer, r.name).suppressed_by for r in event_rules if same}
        engine.ingest(e)
        after = engine.stats()
        for rule in rules.rules:
            assert list(after["suppressed"][rule.name]) == list(REASONS)
        for rule in event_rules:
            counts = after["suppressed"][rule.name]
            grew = [k for k in REASONS if counts[k] > before["suppressed"][rule.name][k]]
            fired = after["fired"][rule.name] > before["fired"][rule.name]
            if rule.name in predicted and (grew or fired):
                assert grew == ([predicted[rule.name]] if predicted[rule.name] else []), (rule.name, e)
            x = engine.explain(viewer, rule.name)
            assert x.suppressed == counts
            if grew:
                assert len(grew) == 1 and x.suppressed_by == grew[0], (rule.name, grew, str(x))


def test_suppressed_by_each_guard_in_turn(golden):
    """Each built-in guard suppresses, counts under its own reason, and explains itself."""
    t = 1000.0
    golden.ingest(ev("comment", "u1", t, text="hi"))
    golden.ingest(ev("comment", "u1", t + 1, text="hi"))  # hello: once per session
    for i in range(4):
        golden.ingest(ev("like", "u1", t + 2 + i))  # like3 fires at the third, then cooldown 2m
    for i in range(3):
        golden.ingest(ev("share", "u1", t + 10 + i))  # budgeted: 2/1m in the room
    s = golden.stats()["suppressed"]
    assert s["hello"] == {"once": 1, "cooldown": 0, "budget": 0, "quiet": 0, "cap": 0, "holdout": 0}
    assert s["like3"] == {"once": 0, "cooldown": 1, "budget": 0, "quiet": 0, "cap": 0, "holdout": 0}
    assert s["budgeted"] == {"once": 0, "cooldown": 0, "budget": 1, "quiet": 0, "cap": 0, "holdout": 0}
    for rule, reason in (("hello", "once"), ("like3", "cooldown"), ("budgeted", "budget")):
        x = golden.explain("u1", rule)
        assert x.suppressed_by == reason and [p.kind for p in x.suppressors] == [reason]
        assert x.suppressed == s[rule]
    # at the instant the cooldown ends (2m after like3 fired at t + 4), explain and the kernel let it through
    golden.advance(t + 123.5)
    assert golden.explain("u1", "like3").suppressed_by == "cooldown"
    golden.advance(t + 124)
    assert golden.explain("u1", "like3").suppressed_by is None
    for i in range(4):  # count(like, 1m) >= 3 again at the third: it fires; the fourth is cooled down
        golden.ingest(ev("like", "u1", t + 124))
    assert golden.stats()["fired"]["like3"] == 2 and golden.stats()["suppressed"]["like3"]["cooldown"] == 2


# --- a new guard: one module (here: this block) and its registration ---------------------------

@njit(**KERNEL_FLAGS)
def toy_blocks(VI, RI, slot, room, now, col, limit):
    return VI[slot, col] >= limit


@njit(**KERNEL_FLAGS)
def toy_commit(VI, RI, slot, room, now, col, limit):
    VI[slot, col] += 1


class Toy(Guard):
    """At most ``LIMIT`` firings per viewer, ever, for rules with priority 7 (a rule key that exists)."""

    name = "toy"
    key = "priority"
    blocks = staticmethod(toy_blocks)
    commit = staticmethod(toy_commit)
    LIMIT = 2

    def setting(self, rule):
        return rule.priority if rule.priority == 7 else None

    def add_columns(self, lay, rs):
        for rule in rs.rules:
            if self.applies(rule):
                lay.add("vi", f"toy:{rule.name}")

    def args(self, lay, rule):
        return lay.vi.index(f"toy:{rule.name}"), self.LIMIT

    def explain(self, state, lay, rule):
        col, limit = self.args(lay, rule)
        used = int(state.VI[state.slot, col])
        return Suppressor(self.name, str(limit), self.blocked(state, lay, rule), f"toy: {used} of {limit} used")


TOY_RULES = """
[[rules]]
name = "plain"
on = ["like"]
when = "true"
then = "a"

[[rules]]
name = "capped"
on = ["like"]
when = "true"
then = "b"
priority = 7
cooldown = "1s"
"""


def test_a_new_guard_needs_only_its_module(monkeypatch):
    """Registering a guard is enough for the layout, the kernel's check, commit and counters,
    stats(), explain() and reload to take it up; it checks after the built-in guards."""
    toy = Toy()
    monkeypatch.setattr(guards, "GUARDS", (*GUARDS, toy))
    monkeypatch.setattr(guards, "REASONS", (*REASONS, toy.name))
    engine = Engine(load_rules(TOY_RULES))
    fired = [a.ts for t in (0.0, 0.5, 2.0, 4.0, 4.5) for a in engine.ingest(ev("like", "u1", 1000 + t))
             if a.rule == "capped"]
    assert fired == [1000.0, 1002.0]
    stats = engine.stats()
    assert stats["suppressed"]["capped"] == {"once": 0, "cooldown": 1, "budget": 0, "quiet": 0, "cap": 0, "holdout": 0, "toy": 2}
    assert stats["suppressed"]["plain"] == {"once": 0, "cooldown": 0, "budget": 0, "quiet": 0, "cap": 0, "holdout": 0, "toy": 0}
    assert stats["fired"] == {"plain": 5, "capped": 2}
    x = engine.explain("u1", "capped")
    assert x.suppressed_by == "toy" and x.suppressed == stats["suppressed"]["capped"]
    assert [(p.kind, p.active, p.detail) for p in x.suppressors][-1] == ("toy", True, "toy: 2 of 2 used")
    assert "toy: SUPPRESSES: toy: 2 of 2 used" in str(x)
    # reload moves the rule to another index: counters and the toy's column follow it by name
    engine.reload('[[rules]]\nname = "first"\non = ["follow"]\nwhen = "true"\nthen = "f"\n' + TOY_RULES, warmup=False)
    assert engine.stats()["suppressed"]["capped"] == stats["suppressed"]["capped"]
    assert engine.explain("u1", "capped").suppressed_by == "toy"
    assert not [a for a in engine.ingest(ev("like", "u1", 1010.0)) if a.rule == "capped"]
    assert engine.stats()["suppressed"]["capped"]["toy"] == 3
