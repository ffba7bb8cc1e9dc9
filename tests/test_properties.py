"""Invariants that must hold for any event stream (hypothesis generates the streams).

1. The same actions however often ``advance()`` is called between events.
2. A rejected event changes nothing: a stream with bad events interleaved gives the
   same actions and state as the stream without them.
3. ``ingest_many`` gives the same actions as ingesting one by one.
"""

from __future__ import annotations

from unittest import mock

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numpy as np

import segengine.engine as engine_module
import segengine.compiler.layout as state_module
from segengine import Batch, Engine, EventError
from segengine.rules.load import load_rules

from conftest import examples

TYPES = ["enter", "leave", "heartbeat", "view", "click", "like", "comment", "share", "follow",
         "cart", "uncart", "checkout", "pay", "refund"]
ITEMS = ["a", "b", "tv"]
CATEGORIES = ["snacks", "digital", "beauty", "nope"]

SETTINGS = settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])


@st.composite
def streams(draw, max_events: int = 40, viewers=("u1", "u2", 3)):
    """Events of up to 3 viewers (or ``viewers``) in 2 rooms, in non-decreasing time, gaps up to ~8 minutes."""
    n = draw(st.integers(1, max_events))
    t = 1_000.0
    events = []
    for _ in range(n):
        t += draw(st.sampled_from([0.0, 0.25, 1.0, 5.0, 30.0, 59.5, 91.0, 130.0, 301.0, 500.0]))
        typ = draw(st.sampled_from(TYPES))
        e = {"type": typ, "viewer": draw(st.sampled_from(viewers)), "room": draw(st.sampled_from(["r1", "r1", "r2"])), "ts": t}
        if typ in ("view", "click", "cart", "uncart", "checkout", "pay"):
            e["item"] = draw(st.sampled_from(ITEMS))
            e["category"] = draw(st.sampled_from(CATEGORIES))
            if draw(st.booleans()):
                e["price"] = draw(st.sampled_from([9.9, 40.0, 120.0, 1500.0]))
        if typ in ("pay", "refund") and draw(st.booleans()):
            e["amount"] = draw(st.sampled_from([10.0, 99.5, 300.0]))
        if typ == "comment":
            e["text"] = "hi"
        events.append(e)
    return events


BAD = [
    {"type": "like", "viewer": "u1", "room": "r1"},  # no ts
    {"type": "teleport", "viewer": "u1", "room": "r1", "ts": 1.0},
    {"type": "like", "viewer": "u9", "room": "r1", "ts": float("nan")},
    {"type": "view", "viewer": "u9", "room": "r1", "ts": 5e9, "price": "free"},
    {"type": "like", "viewer": None, "room": "r1", "ts": 5e9},
    {"type": "like", "viewer": "u9", "ts": 5e9},
    b'{"type": "like", "viewer": "u9", "room": "r1", "ts": 5e9',
]


def _run(engine: Engine, events, advances=()) -> list:
    """Ingest ``events``; before event i, advance to each time in ``advances[i]``."""
    actions = []
    for i, e in enumerate(events):
        for t in advances[i] if advances else ():
            actions += engine.advance(t)
        actions += engine.ingest(e)
    actions += engine.advance(events[-1]["ts"] + 3600)
    return actions


def _state(engine: Engine, viewers) -> tuple:
    stats = engine.stats()
    stats.pop("rejected")
    return stats, [engine.viewer(v) for v in viewers]


@pytest.fixture(params=["golden", "example"])
def rules(request, golden_rules, example_rules):
    return golden_rules if request.param == "golden" else example_rules


@SETTINGS
@given(events=streams(), data=st.data())
def test_same_actions_however_often_advance_is_called(rules, events, data):
    advances = []
    prev = events[0]["ts"] - 100
    for e in events:
        k = data.draw(st.integers(0, 3))
        points = sorted(data.draw(st.floats(prev, e["ts"], allow_nan=False)) for _ in range(k))
        advances.append(points)
        prev = e["ts"]
    plain, stepped = Engine(rules), Engine(rules)
    assert _run(plain, events) == _run(stepped, events, advances)
    viewers = sorted({e["viewer"] for e in events}, key=str)
    a, b = _state(plain, viewers), _state(stepped, viewers)
    a[0].pop("timers"), b[0].pop("timers")  # stale heap entries may be popped at different calls
    assert a == b


@SETTINGS
@given(events=streams(), data=st.data())
def test_rejected_events_change_nothing(rules, events, data):
    clean, dirty = Engine(rules), Engine(rules)
    expected = [a for e in events for a in clean.ingest(e)]
    got = []
    rejected = 0
    for e in events:
        if data.draw(st.booleans()):
            with pytest.raises(EventError):
                dirty.ingest(data.draw(st.sampled_from(BAD)))
            rejected += 1
        got += dirty.ingest(e)
    assert got == expected
    viewers = sorted({e["viewer"] for e in events}, key=str)
    assert _state(clean, viewers) == _state(dirty, viewers)
    assert dirty.stats()["rejected"] == rejected


#: Small ingest_many calls run one by one below SMALL_BATCH events; 0 forces the batch kernel.
BOTH_PATHS = (engine_module.SMALL_BATCH, 0)


@SETTINGS
@given(events=streams())
def test_ingest_many_equals_one_by_one(rules, events):
    one = Engine(rules)
    expected = [a for e in events for a in one.ingest(e)]
    for small_batch in BOTH_PATHS:
        with mock.patch.object(engine_module, "SMALL_BATCH", small_batch):
            assert Engine(rules).ingest_many(events) == expected
            assert Engine(rules).ingest_many(b"\n".join(msgspec.json.encode(e) for e in events)) == expected
            assert Engine(rules).ingest_many(_columns(events)) == expected


def _columns(events) -> Batch:
    """The same events as a columnar Batch (numpy arrays, NaN for absent numbers)."""
    col = lambda name: [e.get(name) for e in events]  # noqa: E731
    nan = float("nan")
    return Batch(type=np.array(col("type")), viewer=np.array(col("viewer"), dtype=object), room=np.array(col("room")),
                 ts=np.array(col("ts")), item=col("item"), category=col("category"),
                 price=np.array([nan if p is None else p for p in col("price")]),
                 amount=np.array([nan if a is None else a for a in col("amount")]), text=col("text"))


@SETTINGS
@given(events=streams(), data=st.data())
def test_batch_errors_raise_applies_the_prefix_and_skip_counts(rules, events, data):
    bad_at = data.draw(st.integers(0, len(events)))
    bad = data.draw(st.sampled_from([{"type": "like", "viewer": "u1", "room": "r1"},
                                     {"type": "like", "viewer": "u1", "room": "r1", "ts": "soon"}]))
    mixed = events[:bad_at] + [bad] + events[bad_at:]
    prefix = Engine(rules)
    expected_prefix = [a for e in events[:bad_at] for a in prefix.ingest(e)]
    one = Engine(rules)
    expected = [a for e in events for a in one.ingest(e)]
    for small_batch in BOTH_PATHS:
        with mock.patch.object(engine_module, "SMALL_BATCH", small_batch):
            for form in (mixed, b"\n".join(msgspec.json.encode(e) for e in mixed)):
                engine = Engine(rules)
                with pytest.raises(EventError) as err:
                    engine.ingest_many(form)
                assert err.value.index == bad_at and err.value.field == "ts"
                assert err.value.actions == expected_prefix
                assert engine.stats()["events"] == bad_at
            skipper = Engine(rules)
            assert skipper.ingest_many(mixed, errors="skip") == expected
            assert skipper.stats()["rejected"] == 1


@pytest.fixture(scope="module")
def every_pass():
    """The same rules compiled so that every pass evaluates every state rule (no cached deadlines)."""
    made = {}

    def make(rules) -> Engine:
        if rules.text not in made:
            with mock.patch.object(state_module, "SKIP_UNCHANGED", False):
                made[rules.text] = load_rules(rules.text, rules.filename)
                # builds the layout under the patch; kernels compile on first use (no warmup(): these
                # tests never call the batch kernels, which would cost a compile each)
                Engine(made[rules.text])
        return Engine(made[rules.text])
    return make


@SETTINGS
@given(events=streams(max_events=60))
def test_skipping_state_rules_with_unchanged_inputs_changes_nothing(golden_rules, every_pass, events):
    """A group of state rules is skipped while no event could change its inputs and its
    deadline has not come: the actions, counters (timers included) and state are those of an
    engine that evaluates every rule at every pass. (The example rules are part of the grouped
    rules of the next test, which checks them too: one compile fewer.)"""
    _same_as_every_pass(golden_rules, every_pass, events, timers=True)


def _same_as_every_pass(rules, every_pass, events, timers: bool) -> None:
    """Same actions, and the same readings users get: stats (less the memory the deadline columns
    take, and, unless ``timers``, the count of timers processed), every viewer's ``viewer()`` and
    every segment's size, overall and per room."""
    skipping, plain = Engine(rules), every_pass(rules)
    assert skipping._compiled.layout.deadline_cols and not plain._compiled.layout.deadline_cols
    assert _run(skipping, events) == _run(plain, events)
    viewers = sorted({e["viewer"] for e in events}, key=str)
    (stats, views), (plain_stats, plain_views) = _state(skipping, viewers), _state(plain, viewers)
    for key in ("memory", "bytes_per_viewer") + (() if timers else ("timers",)):
        stats.pop(key), plain_stats.pop(key)
    assert (stats, views) == (plain_stats, plain_views)
    sizes = {(s, r): skipping.segment_size(s, room=r) for s in rules.segments for r in (None, "r1", "r2")}
    assert sizes == {(s, r): plain.segment_size(s, room=r) for s in rules.segments for r in (None, "r1", "r2")}


#: The standard rules plus rules that share their input sets, so that groups of several
#: rules share one deadline column (and window counts are compared with <, <= and >).
GROUPED = """
[[rules]]
name = "cart_nudge_soon"
when = "carted and not paid and dwell > 1m"
then = "nudge_soon"

[[rules]]
name = "checkout_twice"
when = "count(checkout, 10m) >= 2 and not paid and since(checkout) > 30s"
then = "remind_twice"
once = "session"

[[rules]]
name = "quiet_viewer"
when = "present and dwell > 1m and since(like|comment|click|view) > 30s"
then = "check_in"

[[rules]]
name = "cooling_down"
when = "count(like|comment|click, 1m) < 2 and since(like|comment|click|view) > 20s"
then = "wake_up"

[[rules]]
name = "browsing"
when = "count(view, 10m) > 2 and count(view, 10m) <= 5 and not carted"
then = "browse_offer"
"""


@pytest.fixture(scope="module")
def grouped_rules(example_rules):
    return load_rules(example_rules.text + GROUPED, "grouped.toml")  # compiled on first use


@SETTINGS
@given(events=streams(max_events=60))
def test_skipping_groups_sharing_a_deadline_changes_nothing(grouped_rules, every_pass, events):
    """Rules sharing an input set share one deadline: skipping the group is still exact in all
    that users observe. The count of timers processed is not compared: it is bookkeeping of how
    the engine schedules its wake-ups (a group's deadline serves several rules), which may
    legitimately differ from an engine that evaluates every rule at every pass."""
    lay = Engine(grouped_rules)._compiled.layout
    assert lay.deadline_cols["cart_nudge_soon"] == lay.deadline_cols["cart_nudge"]
    assert lay.deadline_cols["cooling_down"] == lay.deadline_cols["quiet_viewer"] == lay.deadline_cols["early_exit_risk"]
    _same_as_every_pass(grouped_rules, every_pass, events, timers=False)
