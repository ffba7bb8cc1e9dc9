"""``Engine.reload``: new rules mid-stream, state kept by name, a bad file changes nothing.

Rules texts: the session's golden and example files, plus ``tests/rules/live_room_v2.toml``
(the example without ``hot_interest_coupon``, with a new 30 s window rule ``like_burst``, a
new state rule ``long_stay`` and the ``level`` values reordered). One extra compile.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import EXAMPLE, GOLDEN, ev, examples, named
from segengine import Engine, RulesError
from segengine.kernels.primitives import MISSING
from segengine.ops.reload import _copy_ring, read_source

try:
    from tests.test_properties import streams
except ImportError:  # pytest put tests/ itself on sys.path
    from test_properties import streams  # type: ignore[no-redef]

V2 = Path(__file__).resolve().parent / "rules" / "live_room_v2.toml"
BAD = '[[rules]]\nname = "x"\nwhen = "dwel > 5m"\nthen = "a"\n'


def _arrays(engine: Engine) -> dict[str, np.ndarray]:
    store, lay = engine._store, engine._compiled.layout
    n = len(engine._viewers)
    # the heap is rebuilt lazily; a rule's cached deadline restarts unknown after a reload (its
    # first pass recomputes it: a viewer with no event since still shows the unknown mark)
    keep = [i for i, name in enumerate(lay.vi) if name not in ("due", "queued") and not name.startswith("deadline:")]
    return {"VI": store.VI[:n, keep], "VF": store.VF[:n], "VN": store.VN[:n], "RI": store.RI[:len(engine._rooms)]}


def _stats(engine: Engine) -> dict:
    stats = engine.stats()
    stats.pop("memory")  # the heap grows for the rescan
    return stats


@pytest.fixture(params=["golden", "example"])
def rules(request, golden_rules, example_rules):
    return golden_rules if request.param == "golden" else example_rules


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=streams(max_events=40), data=st.data())
def test_reloading_the_same_rules_changes_nothing(rules, events, data):
    """Same rules, another text (a comment added): the full migration runs, and the remaining actions,
    state arrays and counters are those of an engine that never reloaded."""
    cut = data.draw(st.integers(0, len(events)))
    plain, reloaded = Engine(rules), Engine(rules)
    for e in events[:cut]:
        assert plain.ingest(e) == reloaded.ingest(e)
    assert reloaded.reload(rules.text + "\n# reloaded\n", warmup=False) is True
    assert reloaded.rules.fingerprint != rules.fingerprint
    rest = [a for e in events[cut:] for a in plain.ingest(e)], [a for e in events[cut:] for a in reloaded.ingest(e)]
    assert rest[0] == rest[1]
    end = events[-1]["ts"] + 3600
    assert plain.advance(end) == reloaded.advance(end)
    for name, a in _arrays(plain).items():
        np.testing.assert_array_equal(a, _arrays(reloaded)[name], err_msg=name)
    assert _stats(plain) == _stats(reloaded)


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=streams(max_events=40), data=st.data())
def test_rules_kept_by_name_carry_on_as_if_nothing_happened(example_rules, events, data):
    """Reload the example rules to v2 mid-stream: the five rules both files share fire exactly as
    in an engine that never reloaded (their state, windows, edges, once flags and profile codes
    were carried over by name), and so do their counters."""
    cut = data.draw(st.integers(0, len(events)))
    plain, reloaded = Engine(example_rules), Engine(example_rules)
    for engine in (plain, reloaded):
        engine.set_profile("u1", level="high")
        engine.set_profile(3, level="mid")
    for e in events[:cut]:
        assert plain.ingest(e) == reloaded.ingest(e)
    reloaded.reload(V2, warmup=False)  # kernels compile on first use: these examples never batch
    kept = {r.name for r in reloaded.rules.rules} & {r.name for r in example_rules.rules}
    assert len(kept) == 5
    end = events[-1]["ts"] + 3600
    expected = [a for e in events[cut:] for a in plain.ingest(e)] + plain.advance(end)
    got = [a for e in events[cut:] for a in reloaded.ingest(e)] + reloaded.advance(end)
    assert [a for a in got if a.rule in kept] == [a for a in expected if a.rule in kept]
    a, b = plain.stats(), reloaded.stats()
    assert {r: a["fired"][r] for r in kept} == {r: b["fired"][r] for r in kept}
    assert {r: a["suppressed"][r] for r in kept} == {r: b["suppressed"][r] for r in kept}
    assert (a["events"], a["late"]) == (b["events"], b["late"])


def test_same_text_costs_nothing(live, example_rules):
    store, compiled = live._store, live._compiled
    assert live.reload(example_rules.text) is False
    assert live.reload(EXAMPLE) is False  # a Path
    assert live.reload(str(EXAMPLE)) is False  # a path string
    assert live._store is store and live._compiled is compiled


def test_bad_reload_keeps_the_old_rules_running(live, example_rules):
    twin = Engine(example_rules)
    for engine in (live, twin):
        engine.ingest(ev("enter", ts=1000))
        engine.ingest(ev("cart", ts=1001, item="a", price=10.0))
    store = live._store
    with pytest.raises(RulesError, match="unknown name 'dwel'; did you mean 'dwell'"):
        live.reload(BAD)
    with pytest.raises(FileNotFoundError):
        live.reload("no/such/rules.toml")
    assert live.rules is example_rules and live._store is store
    stream = [ev("heartbeat", ts=t) for t in range(1030, 1400, 30)] + [ev("like", ts=1400 + t) for t in range(5)]
    got = [a for e in stream for a in live.ingest(e)]
    assert got == [a for e in stream for a in twin.ingest(e)]
    assert {"cart_nudge", "early_exit_risk"} <= {a.rule for a in got}


def test_reload_keeps_state_by_name_and_starts_new_windows_empty(live):
    live.set_profile("u1", level="high")
    live.ingest(ev("enter", ts=1000))
    live.ingest(ev("checkout", ts=1001, item="a"))
    acts = []
    for t in range(5):
        acts += live.ingest(ev("like", ts=1002 + t))
    assert named(acts, "hot_interest_coupon") == [("coupon", 1006.0), ("tag:engaged", 1006.0)]
    before = live.stats()

    assert live.reload(V2) is True
    assert [r.name for r in live.rules.rules][-2:] == ["like_burst", "long_stay"]
    v = live.viewer("u1")
    assert v["features"]["count(like, 30s)"] == 0.0  # new window: empty, although 5 likes are in it
    assert v["features"]["since(checkout)"] == 5.0  # kept, with every other feature
    assert v["features"]["count(checkout, 10m)"] == 1.0
    assert v["features"]["dwell"] == 6.0 and v["features"]["sessions"] == 1.0
    assert v["profile"]["level"] == "high"  # codes follow the value names
    assert v["tags"] == []  # tag 'engaged' is not in the new rules
    after = live.stats()
    assert {k: after[k] for k in ("events", "late", "timers")} == {k: before[k] for k in ("events", "late", "timers")}
    assert "hot_interest_coupon" not in after["fired"] and after["fired"]["like_burst"] == 0

    acts = [a for t in (1007, 1008, 1009) for a in live.ingest(ev("like", ts=t))]
    assert named(acts, "like_burst") == [("burst", 1009.0)]  # the third like after the reload
    # the price_sensitive rule still sees the remapped level
    acts = [a for t in (1010, 1011, 1012) for a in live.ingest(ev("view", ts=t, item="x", price=5.0))]
    assert named(acts, "price_sensitive") == [("tag:price_sensitive", 1012.0)]


def test_a_removed_rule_loses_its_state(live, example_rules):
    for t in range(5):
        live.ingest(ev("like", ts=1000 + t))
    assert live.explain("u1", "hot_interest_coupon").suppressed_by == "cooldown"
    live.reload(V2)
    live.ingest(ev("heartbeat", ts=1010))
    live.reload(example_rules.text)  # back: the rule is new again, its cooldown and counters restart
    assert live.stats()["fired"]["hot_interest_coupon"] == 0
    x = live.explain("u1", "hot_interest_coupon")
    assert x.suppressed_by is None and x.last_fired_note == "never fired for this viewer"
    acts = [a for t in range(5) for a in live.ingest(ev("like", ts=1020 + t))]
    assert named(acts, "hot_interest_coupon") == [("coupon", 1024.0), ("tag:engaged", 1024.0)]


def test_once_marks_follow_the_rule_name_and_drop_when_the_kind_changes(live, example_rules):
    live.ingest(ev("enter", ts=1000))
    live.ingest(ev("cart", ts=1001, item="a", price=5.0))
    acts = [a for t in range(1030, 1330, 30) for a in live.ingest(ev("heartbeat", ts=t))]
    assert named(acts, "cart_nudge") == [("nudge", 1300.0)]
    first = example_rules.text.index("[[rules]]")
    before = ('[[rules]]\nname = "first"\non = ["share"]\nwhen = "true"\nthen = "thanks"\n'
              'once = "session"\n\n')
    # warmup=False: one-off rules texts compile only the kernels this test calls
    live.reload(example_rules.text[:first] + before + example_rules.text[first:], warmup=False)  # cart_nudge's bit moves
    assert live.explain("u1", "cart_nudge").suppressed_by == "once"
    assert live.explain("u1", "first").suppressed_by is None
    lifetime = example_rules.text.replace('once = "session"', 'once = "lifetime"', 1)  # cart_nudge's
    assert lifetime != example_rules.text
    live.reload(lifetime, warmup=False)  # a session mark means nothing for a lifetime rule: dropped
    assert live.explain("u1", "cart_nudge").suppressed_by is None


def test_new_state_rule_gets_its_timer_and_fires_on_a_true_condition(live):
    stream = [ev("enter", "early", ts=1000), ev("enter", "late", ts=1150)]
    stream += [ev("heartbeat", v, ts=t) for t in range(1030, 1700, 30) for v in ("early", "late") if v == "early" or t > 1150]
    for e in sorted(stream, key=lambda e: e["ts"]):  # both present, the last heartbeats at 1690
        live.ingest(e)
    live.reload(V2)  # long_stay: present and dwell > 10m
    x = live.explain("early", "long_stay")  # dwell 690 s: true, never evaluated yet
    assert x.holds is True and x.previous is False and x.would_fire is True
    assert "next event or timer" in x.verdict
    assert named(live.ingest(ev("heartbeat", "early", ts=1710)), "long_stay") == [("thanks_for_staying", 1710.0)]
    # "late" is at dwell 540 s: the rescan scheduled the 600 s instant (before its idle timeout at 1780)
    assert named(live.advance(1800), "long_stay") == [("thanks_for_staying", 1750.0)]


def test_read_source():
    assert read_source("[[rules]]") == ("[[rules]]", "<rules>")
    assert read_source("") == ("", "<rules>")
    text, name = read_source(str(GOLDEN))
    assert name == str(GOLDEN) and text == GOLDEN.read_text()
    with pytest.raises(TypeError):
        read_source(b"[[rules]]")  # type: ignore[arg-type]


def test_budget_ring_resize():
    # one room, a ring of 3 (head at 1: slot 1 is the oldest) -> rings of 2 and 5
    src = np.array([[1, 30, 10, 20]], np.int64)
    small = np.zeros((1, 3), np.int64)
    _copy_ring(src, 0, 3, small, 0, 2)
    assert small.tolist() == [[0, 20, 30]]  # the latest two, oldest first, full: head 0
    big = np.zeros((1, 6), np.int64)
    _copy_ring(src, 0, 3, big, 0, 5)
    assert big.tolist() == [[3, 10, 20, 30, MISSING, MISSING]]  # room left: head on the first free entry
    fresh = np.array([[0, MISSING, MISSING, MISSING]], np.int64)
    _copy_ring(fresh, 0, 3, small, 0, 2)
    assert small.tolist() == [[0, MISSING, MISSING]]
