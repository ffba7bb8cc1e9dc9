"""``Engine.explain``: the condition tree with current values, the verdict, suppression, last firing.

Uses the session's golden and example rules (no extra compile beyond the explain kernel).
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings

from segengine import Engine
from segengine.compiler.codegen import generate
from segengine.compiler.explaingen import add_explain
from segengine.ops.explain import NO_EVENT, Explanation, FiringLog, Value
from segengine.rules import ast
from segengine.rules.load import load_rules
from segengine.compiler.layout import build_layout

from conftest import ev, examples, heartbeats

try:
    from tests.test_properties import streams
except ImportError:  # pytest put tests/ itself on sys.path
    from test_properties import streams  # type: ignore[no-redef]


def _find(v: Value, text: str) -> Value:
    if v.text == text:
        return v
    for child in v.children:
        try:
            return _find(child, text)
        except KeyError:
            pass
    raise KeyError(text)


def test_state_rule_tree_values_and_marks(golden):
    golden.ingest(ev("enter", ts=1000))
    golden.ingest(ev("cart", ts=1010, item="a", price=20.0))
    acts = heartbeats(golden, "u1", 1000, 1290)
    acts += golden.advance(1312)
    assert ("cart_idle", "cart_nudge", 1300.0) in [(a.rule, a.action, a.ts) for a in acts]

    x = golden.explain("u1", "cart_idle")
    text = str(x)
    assert "dwell = 312 s > 300 s ✓" in text
    assert "carted = true ✓" in text
    assert "not paid: paid = false ✓" in text
    assert x.kind == "state" and x.holds is True and x.previous is True and x.would_fire is False
    assert "already was at the last evaluation" in x.verdict
    assert x.suppressed_by == "once" and x.suppressors[0].active
    assert x.last_fired == 1300.0 and x.now == 1312.0 and x.room == "r1"
    assert x.fired == 1

    golden.ingest(ev("pay", ts=1320, amount=20.0))
    x = golden.explain("u1", "cart_idle")
    assert "paid = true ✗" in str(x)
    assert x.holds is False and x.would_fire is False and x.verdict == "the condition is false"
    paid = _find(x.condition, "paid")
    assert paid.value is True and paid.ok is False  # under `not`: true is what stops the rule
    assert _find(x.condition, "not paid").ok is False


def test_strict_threshold_at_its_instant_is_true(golden):
    golden.ingest(ev("enter", ts=1000))
    heartbeats(golden, "u1", 1000, 1290)
    golden.advance(1300)
    x = golden.explain("u1", "dwell_5m")
    assert "dwell = 300 s > 300 s ✓ (true from this instant on)" in str(x)
    assert x.holds is True and x.last_fired == 1300.0


def test_cooldown_remaining_and_budget_spent(golden):
    for t in (1000, 1001, 1002):
        golden.ingest(ev("like", ts=t))
    golden.ingest(ev("like", ts=1030))
    x = golden.explain("u1", "like3")
    assert x.kind == "event" and x.on == ["like"] and x.holds is True and x.would_fire is False
    cooldown, = x.suppressors
    assert cooldown.kind == "cooldown" and cooldown.active and cooldown.remaining == pytest.approx(92.0)
    assert "cooldown 2m: 92 s remaining (last firing at 1002)" in str(x)
    assert "checked only on like events" in x.verdict
    assert x.suppressed == {"once": 0, "cooldown": 1, "budget": 0, "quiet": 0, "cap": 0, "holdout": 0}

    for viewer, t in (("u1", 1040), ("u2", 1041), ("u3", 1042)):
        golden.ingest(ev("share", viewer, ts=t))
    x = golden.explain("u3", "budgeted")
    budget, = x.suppressors
    assert budget.active and (budget.spent, budget.limit) == (2, 2)
    assert budget.remaining == pytest.approx(58.0)
    assert "2 of 2 spent in the last 60 s" in str(x) and x.suppressed_by == "budget"
    assert x.last_fired_note == "never fired for this viewer" and x.last_fired is None
    assert golden.explain("u1", "budgeted").last_fired == 1040.0
    golden.advance(1100.5)  # the 1040 firing left the window, the 1041 one not yet
    x = golden.explain("u3", "budgeted")
    assert not x.suppressors[0].active and x.suppressors[0].spent == 1 and x.would_fire is True


def test_event_fields_have_no_value_outside_an_event(golden):
    golden.set_profile("u1", level="mid")
    golden.ingest(ev("enter", ts=1000))
    x = golden.explain("u1", "expensive_view")
    assert x.holds is None and x.would_fire is None
    assert _find(x.condition, "event.price").note == NO_EVENT
    assert "event.price (no value outside an event) > 1000 ?" in str(x)
    # Kleene logic: an unknown event part and a true part give unknown; a false part gives false
    x = golden.explain("u1", "ab_view")
    assert "level = 'mid' in ['mid', 'high'] ✓" in str(x)
    assert x.holds is None
    golden.set_profile("u1", level="low")
    assert golden.explain("u1", "ab_view").holds is False


def test_segments_are_expanded(golden):
    golden.set_profile("u1", age=25, level="high")
    golden.ingest(ev("enter", ts=1000))
    x = golden.explain("u1", "vip_young")
    seg = x.condition
    assert seg.segment == "young_high" and seg.value is True and seg.ok is True
    assert [c.text for c in seg.children[0].children] == ["age < 30", "level == 'high'"]
    text = str(x)
    assert "segment young_high = true ✓" in text and "age = 25 < 30 ✓" in text
    assert x.last_fired == 1000.0


def test_json_form(live):
    for t in range(5):
        live.ingest(ev("like", ts=1000 + t))
    x = live.explain("u1", "hot_interest_coupon")
    data = msgspec.json.decode(msgspec.json.encode(x))
    assert data["rule"] == "hot_interest_coupon" and data["kind"] == "event"
    assert [s["kind"] for s in data["suppressors"]] == ["cooldown", "budget"]
    assert data["suppressors"][1]["spent"] == 1 and data["suppressors"][1]["limit"] == 200
    assert data["condition"]["op"] == "and"
    assert data["condition"]["children"][0]["children"][0] == {"text": "count(like|comment|click, 1m)", "kind": "num", "value": 5.0}
    assert msgspec.json.decode(msgspec.json.encode(x), type=Explanation) == x


def test_last_firing_unknown_after_eviction(golden):
    golden._core.firings = FiringLog(maxsize=1)  # as if a million other firings came after
    golden.ingest(ev("comment", "u1", ts=1000, text="hi"))
    golden.ingest(ev("comment", "u2", ts=1001, text="hi"))
    assert golden.explain("u2", "hello").last_fired == 1001.0
    x = golden.explain("u1", "hello")
    assert x.last_fired is None and x.last_fired_note.startswith("unknown")
    assert "last fired: unknown" in str(x)
    golden.ingest(ev("enter", "u3", ts=1002))
    assert golden.explain("u3", "hello").last_fired_note.startswith("unknown")  # can't tell "never" any more


def test_disabled_unknown_names(golden):
    golden.ingest(ev("enter", ts=1000))
    x = golden.explain("u1", "disabled")
    assert x.enabled is False and x.would_fire is False and "disabled" in x.verdict
    with pytest.raises(KeyError, match="did you mean 'dwell_5m'"):
        golden.explain("u1", "dwell5m")
    with pytest.raises(KeyError, match="unknown viewer"):
        golden.explain("nobody", "dwell_5m")


def test_explain_kernel_never_adds_a_literal():
    """Pure Python (no compile): the explain source reuses the main module's literal indices; a
    disabled rule whose literal the main module never registered gets no values (-1)."""
    rs = load_rules('''
[[rules]]
name = "on"
on = ["enter"]
when = "event.room == 'r1' and event.item in ['a', 'b']"
then = "x"

[[rules]]
name = "off"
on = ["enter"]
when = "event.room == 'elsewhere'"
then = "y"
enabled = false
''')
    layout = build_layout(rs)
    gen = generate(rs, layout)
    literals = list(gen.literals)
    add_explain(gen, rs, layout)
    assert gen.literals == literals == [("rooms", "r1"), ("strings", "a"), ("strings", "b")]
    source = gen.source[gen.source.index("def explain_values"):]
    assert "if rule == 1:  # off\n        return -1" in source
    assert "LITS[0, 0]" in source and "LITS[0, 3]" not in source


def _reads_tags(rs, node) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Tag) or (isinstance(n, ast.Name) and n.kind == "segment" and _reads_tags(rs, rs.segments[n.name])):
            return True
    return False


def _leaves(v: Value):
    yield v
    for c in v.children:
        yield from _leaves(c)


@pytest.fixture(params=["golden", "example"])
def rules(request, golden_rules, example_rules):
    return golden_rules if request.param == "golden" else example_rules


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=streams(max_events=30))
def test_explain_agrees_with_the_kernels(rules, events):
    """After each event: a state rule's explained value is the value the rule pass just stored (its
    edge bit), and every feature in the tree reads as ``viewer()`` reports it. Rules reading tags are
    left out: a later rule of the same pass may retag."""
    engine = Engine(rules)
    state_rules = [r for r in rules.rules if r.enabled and not r.is_event_rule and not _reads_tags(rules, r.when)]
    for e in events:
        engine.ingest(e)
        features = engine.viewer(e["viewer"])["features"]
        for rule in state_rules:
            x = engine.explain(e["viewer"], rule.name)
            assert x.holds == x.previous, (rule.name, str(x))
            for v in _leaves(x.condition):
                if v.kind == "num" and v.text in features:
                    assert v.value == pytest.approx(features[v.text], nan_ok=True), (v.text, str(x))
