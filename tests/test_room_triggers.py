"""Room-wide triggers (``[engine] room_types``): a room event evaluates its event rules for every
viewer present in the room, on every ingest path, with the same actions as one by one."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from segengine import Batch, Event, EventError

from conftest import examples
from room_common import engine, ev, room_rules, rows
from segengine import Engine
from segengine.rules.load import load_rules


def _room(e):
    """Two carted viewers and one paid in r1, a carted one in r2, one carted who left r1."""
    e.ingest(ev("cart", "a", ts=1, item="i1", price=10.0))
    e.ingest(ev("enter", "b", ts=2))
    e.ingest(ev("cart", "c", ts=3, item="i2", price=10.0))
    e.ingest(ev("cart", "p", ts=4, item="i3", price=10.0))
    e.ingest(ev("pay", "p", ts=5, amount=10.0))
    e.ingest(ev("cart", "x", room="r2", ts=6, item="i4", price=10.0))
    e.ingest(ev("cart", "gone", ts=7, item="i5", price=10.0))
    e.ingest(ev("leave", "gone", ts=8))


def test_last_call_reaches_every_present_carted_unpaid_viewer_in_arrival_order():
    e = engine()
    _room(e)
    out = e.ingest(ev("last_call", ts=10, item="promo"))
    reminders = [(a.viewer, a.room, a.ts, a.params) for a in out if a.rule == "last_call_cart"]
    assert reminders == [("a", "r1", 10.0, {"item": "promo", "audience": 4.0}),
                         ("c", "r1", 10.0, {"item": "promo", "audience": 4.0})]
    assert e.stats()["fired"]["last_call_cart"] == 2
    assert e.stats()["events"] == 9


def test_trigger_skips_viewers_gone_by_idle_timeout():
    e = engine()
    _room(e)
    e.ingest(ev("heartbeat", "c", ts=95))  # a's last event was at 1: gone at 91
    out = e.ingest(ev("last_call", ts=96))
    assert [a.viewer for a in out if a.rule == "last_call_cart"] == ["c"]


def test_trigger_runs_state_rules_and_tags_of_the_pass():
    e = engine()
    e.ingest(ev("pay", "v", ts=1, amount=150.0))  # tag:vip
    e.ingest(ev("enter", "w", ts=2))
    out = e.ingest(ev("flash_sale", ts=3))
    assert [(a.rule, a.viewer) for a in out if a.rule == "flash_vip"] == [("flash_vip", "v")]


def test_room_event_needs_no_viewer_but_viewer_events_still_do():
    e = engine()
    assert e.ingest({"type": "last_call", "room": "r1", "ts": 1.0}) == []
    with pytest.raises(EventError, match="viewer"):
        e.ingest({"type": "like", "room": "r1", "ts": 1.0})
    with pytest.raises(EventError, match="room"):
        e.ingest({"type": "last_call", "ts": 1.0})
    assert e.stats()["rejected"] == 2


def test_a_trigger_larger_than_the_output_buffer_resumes():
    """3,000 reminders from one event: the kernel stops when the output buffer is full and goes on."""
    n = 3000
    ids = np.arange(n, dtype=np.int64)
    cart = Batch(type=np.full(n, "cart", dtype=object), viewer=ids, room="r1", ts=1.0 + ids * 1e-3,
                 item=np.full(n, "i", dtype=object), price=np.full(n, 5.0))
    single, batch = engine(), engine()
    single.ingest_many(cart)
    batch.ingest_many(cart)
    one = single.ingest(ev("last_call", ts=10))
    assert [a.viewer for a in one if a.rule == "last_call_cart"] == list(range(n))
    tail = [ev("last_call", ts=11), ev("like", 5, ts=11.5), ev("last_call", ts=12)] * 30
    b = batch.ingest_many([ev("last_call", ts=10), *tail])
    a = one + [x for t in tail for x in single.ingest(t)]
    assert rows(a) == rows(b)
    assert single.stats()["events"] == batch.stats()["events"] == n + 1 + len(tail)


def test_trigger_order_is_arrival_order_when_retention_reused_a_slot():
    """SPEC 8: same-instant firings come viewer by viewer in the order of each viewer's first
    accepted event, whatever slot it holds. "old" is forgotten; "late", arriving after "mid",
    takes its slot (the lowest) but must come after "mid"."""
    rules = room_rules()
    e = Engine(load_rules(rules.text.replace("[engine]\n", '[engine]\nretention = "1h"\n', 1), rules.filename))
    e.ingest(ev("enter", "old", ts=0))
    e.ingest(ev("leave", "old", ts=1))
    e.ingest(ev("cart", "mid", ts=3000, item="i", price=5.0))
    e.advance(3800.0)  # "old" is forgotten; "mid" went idle
    e.ingest(ev("cart", "mid", ts=3801, item="i", price=5.0))
    e.ingest(ev("cart", "late", ts=3802, item="i", price=5.0))
    assert e.stats()["expired_viewers"] == 1 and e._core.viewers.get("late") == 0  # the reused slot
    out = e.ingest(ev("last_call", ts=3803))
    assert [a.viewer for a in out if a.rule == "last_call_cart"] == ["mid", "late"]


def test_many_reminders_built_by_columns_equal_the_row_by_row_build(monkeypatch):
    """A trigger's rows are built column by column (runtime/core.py); forcing the row loop must
    give the same actions, params and firing log."""
    def run(columnar: bool):
        e = engine()
        if not columnar:
            monkeypatch.setattr(e._core, "_columnar", lambda out, actions: False)
        n = 40
        ids = np.arange(n, dtype=np.int64)
        e.ingest_many(Batch(type=np.full(n, "pay", dtype=object), viewer=ids, room="r1", ts=1.0 + ids * 1e-3,
                            amount=np.full(n, 150.0)))  # every one tagged vip
        out = e.ingest(ev("flash_sale", ts=10)) + e.ingest(ev("flash_sale", ts=11))
        return [(a.rule, a.action, a.viewer, a.room, a.ts, a.params) for a in out], e._core.firings.to_state()
    built, log = run(True)
    assert len([r for r in built if r[0] == "flash_vip"]) == 80
    assert (built, log) == run(False)


_KINDS = ["enter", "leave", "cart", "pay", "like", "heartbeat", "last_call", "flash_sale", "advance"]
_STREAM = st.lists(st.tuples(st.sampled_from(_KINDS), st.integers(0, 6), st.sampled_from(["r1", "r2"]),
                             st.floats(0.0, 40.0)), min_size=1, max_size=40)


def _events(stream):
    out, ts = [], 100.0
    for kind, who, room, dt in stream:
        ts += round(dt, 3)
        if kind == "advance":
            continue
        fields = {"item": f"i{who}", "price": 60.0} if kind == "cart" else {"amount": 60.0} if kind == "pay" else {}
        out.append(ev(kind, None if kind in ("last_call", "flash_sale") else f"v{who}", room=room, ts=ts, **fields))
    return out


@settings(max_examples=examples(20))
@given(_STREAM)
def test_every_ingest_path_gives_the_same_actions(stream):
    events = _events(stream)
    end = (events[-1]["ts"] if events else 100.0) + 500
    first, got = engine(), []
    for t in events:
        got += first.ingest(t)
        _present_column_agrees(first)
    expected = rows(got + first.advance(end))
    for make in (lambda t: t, lambda t: Event(**t), lambda t: msgspec.json.encode(t)):
        e = engine()
        assert rows([y for t in events for y in e.ingest(make(t))] + e.advance(end)) == expected
    e = engine()
    big = events * 1 if len(events) >= 64 else events
    assert rows(e.ingest_many(big) + e.advance(end)) == expected
    if events:
        e = engine()
        nd = b"\n".join(msgspec.json.encode(t) for t in events)
        assert rows(e.ingest_many(nd) + e.advance(end)) == expected
        e = engine()
        cols = Batch.from_events([Event(**t) for t in events], {t: i for i, t in enumerate(e.rules.event_types)})
        assert rows(e.ingest_many(cols) + e.advance(end)) == expected


def _present_column_agrees(e):
    """The kernels keep the store's PRES column (each slot's room while present) in step with the
    viewer rows it is derived from (Store.rebuild_present)."""
    store = e._core.store
    kept = store.PRES.copy()
    store.rebuild_present()
    assert np.array_equal(kept, store.PRES)


def test_batch_and_ndjson_of_64_and_more_events_match_one_by_one():
    """Above SMALL_BATCH (64) ingest_many takes the columnar kernel and the NDJSON scanner."""
    rng = np.random.default_rng(7)
    events, ts = [], 100.0
    for _ in range(400):
        ts += float(rng.integers(0, 3000)) / 1000
        kind = str(rng.choice(_KINDS[:-1]))
        who = int(rng.integers(0, 12))
        room = "r1" if rng.random() < 0.7 else "r2"
        fields = {"item": f"i{who}", "price": 60.0} if kind == "cart" else {"amount": 60.0} if kind == "pay" else {}
        events.append(ev(kind, None if kind in ("last_call", "flash_sale") else f"v{who}", room=room, ts=ts, **fields))
    a = engine()
    one = rows([y for t in events for y in a.ingest(t)] + a.advance(ts + 500))
    assert any(r[0] == "last_call_cart" for r in one) and any(r[1] == "full_house" for r in one)
    b = engine()
    assert rows(b.ingest_many(events) + b.advance(ts + 500)) == one
    c = engine()
    nd = b"\n".join(msgspec.json.encode(t) for t in events)
    assert rows(c.ingest_many(nd) + c.advance(ts + 500)) == one
    assert a.stats()["fired"] == b.stats()["fired"] == c.stats()["fired"]
