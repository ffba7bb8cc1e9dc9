"""State rules see the pass's final tags (docs/semantics.md, Rules).

When a rule later in a pass changes a tag that a state rule evaluated earlier in the pass
reads, that state rule is evaluated again at the same instant after the pass: its edge
follows the final tags and a rising edge fires then, after the pass's other actions. The
same holds for passes run by timers (``advance`` and ``ingest``) and by the batch kernel.
One rules file (one compile) holds every case, each on its own tags and event types.
"""

from __future__ import annotations

from unittest import mock

import pytest

import segengine.engine as engine_module
from conftest import ev
from segengine import Engine
from segengine.rules.load import load_rules

RULES = """
[engine]
idle_timeout = "90s"

[segments]
has_b = "tag(b)"

# a reader between a setter and a clearer
[[rules]]
name = "set_a"
on = ["comment"]
when = "true"
then = "tag:a"

[[rules]]
name = "seen_a"
when = "tag(a)"
then = "a_on"

[[rules]]
name = "clear_a"
on = ["share"]
when = "true"
then = "untag:a"

# readers before the setter (one through a segment), and one after it
[[rules]]
name = "seen_b"
when = "has_b"
then = "b_on"

[[rules]]
name = "set_b"
on = ["like"]
when = "true"
then = "tag:b"

[[rules]]
name = "seg_b"
when = "has_b and count(like) >= 1"
then = "b_seg"

[[rules]]
name = "liked"
on = ["like"]
when = "true"
then = "liked"

# a time-driven setter after its reader
[[rules]]
name = "seen_c"
when = "tag(c) and sessions >= 1"
then = "c_on"

[[rules]]
name = "minute"
when = "present and dwell > 1m"
then = "tag:c"

# a chain: set_x tags x, so make_y (a state rule) tags y, so seen_y fires: two rounds
[[rules]]
name = "seen_y"
when = "tag(y)"
then = "y_on"

[[rules]]
name = "make_y"
when = "tag(x)"
then = "tag:y"

[[rules]]
name = "set_x"
on = ["follow"]
when = "true"
then = "tag:x"
"""


@pytest.fixture(scope="module")
def tag_rules():
    rules = load_rules(RULES, "final_tags.toml")
    Engine(rules).warmup()
    return rules


def _run(engine: Engine, events) -> list:
    out = []
    for e in events:
        out += engine.advance(e) if isinstance(e, float) else engine.ingest(e)
    return [(a.rule, a.action, a.ts) for a in out]


def test_a_reader_sees_a_tag_cleared_later_in_its_pass(tag_rules):
    events = [ev("comment", "u", 1.0), ev("share", "u", 2.0), ev("comment", "u", 3.0)]
    assert _run(Engine(tag_rules), events) == [
        ("set_a", "tag:a", 1.0), ("seen_a", "a_on", 1.0),
        ("clear_a", "untag:a", 2.0),  # seen_a is evaluated again: its edge falls
        ("set_a", "tag:a", 3.0), ("seen_a", "a_on", 3.0),  # so it rises again here
    ]


def test_readers_before_the_setter_fire_at_the_same_instant(tag_rules):
    # seg_b comes after set_b: it sees the tag in the pass (segments are read fresh); seen_b
    # comes before it: evaluated again after the pass, it fires after the pass's other actions
    assert _run(Engine(tag_rules), [ev("like", "u", 5.0)]) == [
        ("set_b", "tag:b", 5.0), ("seg_b", "b_seg", 5.0), ("liked", "liked", 5.0), ("seen_b", "b_on", 5.0)]


def test_rounds_repeat_until_no_tag_changes(tag_rules):
    assert _run(Engine(tag_rules), [ev("follow", "u", 7.0)]) == [
        ("set_x", "tag:x", 7.0), ("make_y", "tag:y", 7.0), ("seen_y", "y_on", 7.0)]


@pytest.mark.parametrize("then", ["advance", "ingest"])
def test_a_timer_pass_that_tags(tag_rules, then):
    """The timer at 60 s after entering tags c: seen_c fires at that instant, not at the next event."""
    engine = Engine(tag_rules)
    later = 200.0 if then == "advance" else ev("heartbeat", "u", 170.0)
    assert _run(engine, [ev("enter", "u", 100.0), later]) == [("minute", "tag:c", 160.0), ("seen_c", "c_on", 160.0)]


STREAM = [ev("enter", "u", 100.0), ev("comment", "u", 101.0), ev("like", "v", 101.0), ev("share", "u", 102.0),
          ev("follow", "v", 103.0), ev("comment", "u", 150.0), ev("heartbeat", "v", 170.0), ev("share", "u", 171.0),
          ev("comment", "u", 172.0)]


def test_batches_agree(tag_rules):
    expected = _run(Engine(tag_rules), STREAM)
    assert ("seen_a", "a_on", 172.0) in expected and ("seen_c", "c_on", 160.0) in expected
    for small_batch in (engine_module.SMALL_BATCH, 0):  # 0: the batch kernel
        with mock.patch.object(engine_module, "SMALL_BATCH", small_batch):
            got = Engine(tag_rules).ingest_many([dict(e) for e in STREAM])
        assert [(a.rule, a.action, a.ts) for a in got] == expected


def test_snapshot_keeps_the_fallen_edge(tag_rules, tmp_path):
    engine = Engine(tag_rules)
    _run(engine, [ev("comment", "u", 1.0), ev("share", "u", 2.0)])
    engine.snapshot(tmp_path / "s.seg")
    restored = Engine.restore(tmp_path / "s.seg")
    assert _run(restored, [ev("comment", "u", 3.0)]) == [("set_a", "tag:a", 3.0), ("seen_a", "a_on", 3.0)]


def test_due_timers_come_before_the_event_at_their_instant(tag_rules):
    """u's timer at 160 s fires (with its re-evaluation) before v's like at that very instant."""
    events = [ev("enter", "u", 100.0), ev("like", "v", 160.0)]
    expected = [("minute", "tag:c", 160.0), ("seen_c", "c_on", 160.0), ("set_b", "tag:b", 160.0),
                ("seg_b", "b_seg", 160.0), ("liked", "liked", 160.0), ("seen_b", "b_on", 160.0)]
    assert _run(Engine(tag_rules), events) == expected
    with mock.patch.object(engine_module, "SMALL_BATCH", 0):
        assert [(a.rule, a.action, a.ts) for a in Engine(tag_rules).ingest_many([dict(e) for e in events])] == expected
