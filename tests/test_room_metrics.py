"""Room metrics (Engine.room, Engine.room_slots): hand-computed on small streams, every ingest
path against one-by-one ingestion, and after snapshot/restore."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples
from segengine import Batch, Engine, Event
from segengine.rules.load import load_rules

RULES = """
[segments]
fan = "orders >= 1"
watcher = "present and dwell >= 1m"

[[room_rules]]
name = "gmv_up"
when = "room.gmv >= 100 and room.conversion > 0.3"
then = "celebrate"

[[room_rules]]
name = "break_at_view"
when = "room.funnel(enter) >= 3 and room.funnel(view) / room.funnel(enter) < 0.5 and room.uv >= 3 and room.avg_dwell >= 0"
then = "fix_the_cards"
"""


@pytest.fixture(scope="module")
def rules():
    return load_rules(RULES, "room_metrics.toml")


def ev(t, ts, v, room="r1", **kw):
    return {"type": t, "viewer": v, "room": room, "ts": float(ts), **kw}


STREAM = [ev("enter", 0, "a"), ev("enter", 10, "b"), ev("enter", 20, "c"),
          ev("view", 30, "a", item="i"), ev("click", 40, "a", item="i"), ev("cart", 50, "a", item="i", price=60.0),
          ev("checkout", 60, "a"), ev("pay", 70, "a", amount=60.0),
          ev("view", 80, "b", item="i"), ev("cart", 90, "b", item="i", price=10.0), ev("like", 95, "c"),
          ev("leave", 100, "c"), ev("pay", 400, "a", amount=50.0), ev("refund", 410, "a", amount=10.0),
          ev("enter", 420, "c"), ev("follow", 430, "c"), ev("follow", 431, "c")]


def run(engine, events):
    out = []
    for e in events:
        out += engine.ingest(e)
    return out


def test_hand_computed_room_metrics(rules):
    engine = Engine(rules)
    actions = run(engine, STREAM)
    m = engine.room("r1")
    # sessions: a 0-70 (idle: left at its last event), b 10-90 (idle), c 20-100 (leave), a from 400, c from 420
    assert (m.entries, m.uv, m.audience, m.peak_audience) == (5, 3, 2, 3)
    assert (m.sessions_ended, m.short_sessions, m.long_sessions) == (3, 0, 0)
    assert m.avg_dwell == pytest.approx((70 + 80 + 80) / 3)
    # the ordered funnel: b carted without a click, so its cart does not count; a's second session only entered
    assert m.funnel == {"enter": 5, "view": 2, "click": 1, "cart": 1, "checkout": 1, "pay": 1}
    assert m.dropoff == {"enter": 0, "view": 3, "click": 1, "cart": 0, "checkout": 0, "pay": 0}
    assert m.break_point == "view"  # 3/5 lost before view, 1/2 before click
    assert (m.orders, m.buyers, m.gmv, m.aov) == (2, 1, 100.0, 50.0)  # 60 + 50 - 10
    assert m.uv_value == pytest.approx(100 / 3) and m.conversion == pytest.approx(1 / 3)
    assert m.gpm == pytest.approx(100 * 1000 / 5)
    assert m.carted_unpaid == 1  # b's session; a's cart was paid
    assert m.fan_gmv_share == pytest.approx(1.0)  # a was a fan (orders >= 1) when it paid and refunded
    assert (m.interacting_uv, m.new_followers, m.views) == (2, 1, 2)  # a clicked, c liked; c followed once
    assert m.segments == {"fan": 1, "watcher": 0}
    assert m.end == 431.0
    # room rules on room metrics: the break-point alert rises at 20 (0 of 3 viewed), falls at 80 (2 of 3),
    # rises again at 420 (2 of 5); GMV 110 with conversion 1/3 at 400
    assert [(a.rule, a.viewer, a.ts) for a in actions] == [("break_at_view", "", 20.0), ("gmv_up", "", 400.0),
                                                          ("break_at_view", "", 420.0)]


def test_room_slots_hold_what_happened_in_them(rules):
    engine = Engine(rules)
    run(engine, STREAM)
    slots = engine.room_slots("r1")
    assert [(s.start, s.end) for s in slots] == [(0.0, 300.0), (300.0, 600.0)]
    first, second = slots
    assert (first.entries, first.uv, first.gmv, first.orders, first.sessions_ended) == (3, 3, 60.0, 1, 3)
    assert (first.peak_audience, first.audience) == (3, 0)  # everyone had left by the end of the slot
    assert (second.entries, second.uv, second.gmv, second.orders, second.new_followers) == (2, 0, 40.0, 1, 1)
    assert (second.audience, second.peak_audience) == (2, 2)
    whole = engine.room_slots("r1", "10m")
    assert len(whole) == 1 and whole[0].entries == 5 and whole[0].gmv == 100.0
    with pytest.raises(ValueError, match="multiple of 5m"):
        engine.room_slots("r1", "7m")


def test_a_room_not_seen_yet_reads_zeros(rules):
    engine = Engine(rules)
    assert engine.room("nowhere").uv == 0 and engine.room_slots("nowhere") == []


def test_a_viewer_coming_back_to_a_room_is_one_uv_and_switching_rooms_moves_the_audience(rules):
    engine = Engine(rules)
    run(engine, [ev("enter", 0, "a", "r1"), ev("enter", 10, "a", "r2"), ev("enter", 20, "a", "r1"),
                 ev("like", 21, "a", "r1"), ev("like", 22, "a", "r1")])
    r1, r2 = engine.room("r1"), engine.room("r2")
    assert (r1.uv, r1.entries, r1.audience, r1.interacting_uv, r1.sessions_ended) == (1, 2, 1, 1, 1)
    assert (r2.uv, r2.entries, r2.audience, r2.sessions_ended) == (1, 1, 0, 1)


_event = st.tuples(st.sampled_from(["enter", "view", "click", "cart", "checkout", "pay", "refund", "like", "follow",
                                    "leave", "heartbeat"]),
                   st.sampled_from([0.0, 1.0, 30.0, 95.0, 400.0]), st.sampled_from(["u1", "u2", "u3", "u4"]),
                   st.sampled_from(["r1", "r2"]), st.sampled_from([None, 5.0, 80.0]))


def _events(raw):
    out, ts = [], 1000.0
    for t, dt, v, room, amount in raw:
        ts += dt
        e = ev(t, ts, v, room, item="i1", price=10.0)
        if amount is not None and t in ("pay", "refund"):
            e["amount"] = amount
        out.append(e)
    return out


@settings(max_examples=examples(30))
@given(st.lists(_event, min_size=1, max_size=50))
def test_metrics_from_a_batch_equal_one_by_one_and_after_snapshot_restore(rules, tmp_path_factory, raw):
    events = _events(raw)
    one = Engine(rules)
    run(one, events)
    want = {r: (one.room(r), one.room_slots(r)) for r in ("r1", "r2")}
    structs = [msgspec.convert(e, Event) for e in events]
    for batch in (events, Batch.from_events(structs), b"\n".join(msgspec.json.encode(e) for e in events)):
        other = Engine(rules)
        other.ingest_many(batch)
        assert {r: (other.room(r), other.room_slots(r)) for r in ("r1", "r2")} == want
    half = len(events) // 2
    first = Engine(rules)
    run(first, events[:half])
    path = tmp_path_factory.mktemp("snap") / "s.bin"
    first.snapshot(path)
    restored = Engine.restore(path)
    run(restored, events[half:])
    assert {r: (restored.room(r), restored.room_slots(r)) for r in ("r1", "r2")} == want
    for r in ("r1", "r2"):  # the kernel's audience is the viewers present
        m = one.room(r)
        assert 0 <= m.audience <= m.peak_audience and sum(m.dropoff.values()) <= m.funnel.get("enter", 0)


def test_reload_keeps_room_metrics(rules, tmp_path):
    engine = Engine(rules)
    run(engine, STREAM[:10])
    before = engine.room("r1")
    path = tmp_path / "more.toml"
    path.write_text(RULES + "\n[[rules]]\nname = \"x\"\non = [\"like\"]\nwhen = \"true\"\nthen = \"y\"\n")
    assert engine.reload(path)
    assert engine.room("r1") == before
    run(engine, STREAM[10:])
    fresh = Engine(rules)
    run(fresh, STREAM)
    assert engine.room("r1") == fresh.room("r1")


def test_room_totals_are_read_in_their_column_order():
    from segengine.compiler.layout import build_layout
    from segengine.ops.roommetrics import TOTALS
    lay = build_layout(load_rules(RULES))
    first = lay.ri.index("rm_peak")
    assert lay.ri[first + 1: first + 1 + len(TOTALS)] == [f"rm_{m}" for m in TOTALS]


def test_room_without_segments_skips_the_scan(rules):
    engine = Engine(rules)
    run(engine, STREAM)
    assert engine.room("r1", segments=False).segments == {}
    assert engine.room("r1", segments=False).uv == engine.room("r1").uv == 3


OFF = """
[engine]
room_metrics = false

[[rules]]
name = "crowd"
on = ["like"]
when = "room.audience >= 2"
then = "cheer"
"""


def test_room_metrics_off_keeps_no_columns_and_says_so():
    from segengine.compiler.layout import build_layout
    rules = load_rules(OFF, "off.toml")
    assert not any(name.startswith("rm_") for name in build_layout(rules).ri)
    on = build_layout(load_rules(OFF.replace("room_metrics = false", "room_metrics = true")))
    assert "rm_ring[0]" in on.ri
    engine = Engine(rules)
    engine.ingest(ev("enter", 1, "a"))
    assert [a.rule for a in engine.ingest(ev("like", 2, "b"))] == ["crowd"]  # room.audience needs no metrics
    with pytest.raises(RuntimeError, match=r"off.toml: the room metrics are off \(\[engine\] room_metrics = false\)"):
        engine.room("r1")
    with pytest.raises(RuntimeError, match="room metrics are off"):
        engine.room_slots("r1")


def test_room_metrics_off_rejects_the_names_that_read_them():
    from segengine import RulesError
    text = OFF.replace('when = "room.audience >= 2"', 'when = "room.audience >= 2 and room.uv > 5"')
    with pytest.raises(RulesError) as err:
        load_rules(text, "off.toml")
    (d,) = err.value.diagnostics
    assert (d.line, d.col) == (8, 32)  # at room.uv
    assert d.message == "room.uv is a room metric, and [engine] room_metrics = false turns them off"
    with pytest.raises(RulesError, match="room_metrics is true or false"):
        load_rules('[engine]\nroom_metrics = "no"\n', "bad.toml")


def test_a_live_start_after_the_first_events_moves_the_slots_with_the_start(rules):
    """Slots count from the room's start, which a later live_start moves: the row an event goes
    to is found afresh then, not from the bucket the previous events were in."""
    engine = Engine(rules)
    engine.ingest(ev("view", 1000, "a"))  # start 1000: slot 0
    engine.ingest(ev("view", 1400, "a"))  # slot 1 (1300-1600)
    engine.ingest({"type": "live_start", "room": "r1", "ts": 1450.0})  # start 1450
    engine.ingest(ev("view", 1500, "a"))  # 50 s after the new start: slot 0
    assert [s.views for s in engine.room_slots("r1")] == [2, 1]
