"""Bounded memory: viewers and rooms idle longer than ``[engine] retention`` are forgotten.

Pins the rules of docs/operations.md (Memory): when a viewer is forgotten, what a
returning viewer keeps (nothing), slot reuse, cart rows and timers of forgotten viewers,
rooms after ``live_end``, literal ids, and that sweeps depend only on the event
sequence (not on how often ``advance()`` is called).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import ev, named
from segengine import Engine
from segengine.ops.retention import sweep_period_us
from segengine.rules.load import load_rules
from test_properties import SETTINGS, _run, _state, streams

HOUR = 3600.0


def _with_retention(rules, retention: str):
    """The same rules with another retention: same kernels (retention is not compiled in)."""
    text = rules.text.replace("[engine]\n", f'[engine]\nretention = "{retention}"\n', 1)
    return load_rules(text, rules.filename)


@pytest.fixture
def live1h(example_rules) -> Engine:
    return Engine(_with_retention(example_rules, "1h"))


def test_sweep_period():
    assert sweep_period_us(7 * 86400) == 7 * 86400 * 10**6 // 64
    assert sweep_period_us(3600) == 60 * 10**6  # never more often than once a simulated minute


def test_default_retention_keeps_viewers_for_days(live):
    live.ingest(ev("enter", "u1", 1000.0))
    live.ingest(ev("leave", "u1", 1010.0))
    live.advance(1010.0 + 6 * 86400)
    assert live.viewer("u1")["features"]["sessions"] == 1
    live.advance(1010.0 + 7 * 86400 + 3 * HOUR)
    with pytest.raises(KeyError):
        live.viewer("u1")
    assert live.stats()["expired_viewers"] == 1


def test_returning_viewer_keeps_nothing(live1h):
    e = live1h
    e.ingest(ev("enter", "u1", 1000.0))
    e.ingest(ev("follow", "u1", 1001.0))
    e.ingest(ev("cart", "u1", 1002.0, item="tv", price=100.0))
    e.ingest(ev("pay", "u1", 1003.0))
    e.ingest(ev("leave", "u1", 1010.0))
    e.set_profile("u1", level="high")
    # back within the retention: the same viewer
    assert named(e.ingest(ev("enter", "u1", 1010.0 + 0.5 * HOUR)), "welcome_back") == [("welcome", 1010.0 + 0.5 * HOUR)]
    e.ingest(ev("leave", "u1", 1020.0 + 0.5 * HOUR))
    # back after the retention (plus one sweep period): a new viewer
    later = 1020.0 + 0.5 * HOUR + HOUR + 61.0
    assert named(e.ingest(ev("enter", "u1", later)), "welcome_back") == []
    v = e.viewer("u1")
    assert v["features"]["sessions"] == 1 and v["features"]["orders"] == 0 and not v["features"]["follows"]
    assert v["profile"]["level"] == "" and v["features"]["total_dwell"] == 0.0
    assert e.stats()["expired_viewers"] == 1


def test_forgotten_at_the_first_sweep_point_after_retention(live1h):
    e = live1h
    e.ingest(ev("enter", "u1", 1000.0))
    e.ingest(ev("leave", "u1", 1010.0))  # last activity 1010 s; no timer due after the leave
    # sweep points are the multiples of 60 s; the first at or after 1010 + 3600 is 4620
    e.advance(4619.0)
    assert e._viewers.get("u1") >= 0
    e.advance(4620.0)
    assert e._viewers.get("u1") < 0


def test_present_viewer_is_kept(live1h):
    e = live1h
    t = 1000.0
    e.ingest(ev("enter", "u1", t))
    while t < 1000.0 + 3 * HOUR:
        t += 30.0
        e.ingest(ev("heartbeat", "u1", t))
    e.ingest(ev("like", "u2", t))
    assert e.viewer("u1")["features"]["present"] and e.stats()["expired_viewers"] == 0


def test_pending_timer_keeps_viewer():
    e = Engine.from_toml("""
[engine]
retention = "1h"
[[rules]]
name = "lapsed"
when = "since(like) > 2h"
then = "winback"
""")
    e.ingest(ev("like", "u1", 1000.0))
    e.ingest(ev("leave", "u1", 1001.0))
    # the timer at 1000 + 2h fires although the viewer has been absent for over an hour
    assert [(a.action, a.ts) for a in e.advance(1000.0 + 2.5 * HOUR)] == [("winback", 1000.0 + 2 * HOUR)]
    assert e._viewers.get("u1") >= 0
    e.advance(1000.0 + 3.5 * HOUR)  # an hour after its last timer: forgotten
    assert e._viewers.get("u1") < 0


def test_freed_slot_is_reused_and_capacity_stays(live1h):
    e = live1h
    for i in range(1500):
        e.ingest(ev("enter", f"a{i}", 1000.0 + i))
        e.ingest(ev("leave", f"a{i}", 1000.5 + i))
    s = e.stats()
    assert s["live_slots"] == 1500 and s["slot_capacity"] == 2048 and s["free_slots"] == 548
    old = e._viewers.get("a0")
    t = 1000.0 + 1500 + 2 * HOUR
    e.ingest(ev("enter", "b0", t))
    s = e.stats()
    assert s["expired_viewers"] == 1500 and s["live_slots"] == 1 and s["free_slots"] == 2047
    assert e._viewers.get("b0") == old  # the lowest freed slot goes first
    for i in range(1, 2000):
        e.ingest(ev("enter", f"b{i}", t + i / 100))
    assert e.stats()["slot_capacity"] == 2048
    assert e.stats()["viewers"] == 2000


def test_cart_of_forgotten_viewer_is_gone(live1h):
    e = live1h
    e.ingest(ev("cart", "u1", 1000.0, item="tv", price=1500.0))
    e.ingest(ev("cart", "u1", 1001.0, item="tv", price=1500.0))
    e.ingest(ev("leave", "u1", 1002.0))
    slot = e._viewers.get("u1")
    e.ingest(ev("enter", "u2", 1002.0 + 2 * HOUR))
    assert e._viewers.get("u2") == slot
    assert e.viewer("u2")["features"]["cart_items"] == 0
    e.ingest(ev("uncart", "u2", 1003.0 + 2 * HOUR, item="tv"))  # nothing to remove
    e.ingest(ev("cart", "u2", 1004.0 + 2 * HOUR, item="tv", price=10.0))
    f = e.viewer("u2")["features"]
    assert (f["cart_items"], f["cart_value"], f["carted"]) == (1, 10.0, True)
    e.ingest(ev("uncart", "u2", 1005.0 + 2 * HOUR, item="tv"))
    f = e.viewer("u2")["features"]
    assert (f["cart_items"], f["cart_value"], f["carted"]) == (0, 0.0, False)


def test_cart_table_does_not_grow_with_carts_ever_made(live1h):
    e = live1h
    t = 1000.0
    sizes = []
    for day in range(3):
        for i in range(3000):
            v = f"d{day}v{i}"
            e.ingest(ev("cart", v, t, item=f"item{i % 50}", price=5.0))
            if i % 2:
                e.ingest(ev("pay", v, t + 1))
            e.ingest(ev("leave", v, t + 2))
            t += 10.0
        t += 86400
        e.advance(t)
        sizes.append(e._store.CARTK.shape[0])
    assert sizes[1] == sizes[2], sizes


def test_room_freed_after_live_end(live1h):
    e = live1h
    e.ingest({"type": "live_start", "room": "show", "ts": 500.0})
    e.ingest(ev("enter", "u1", 1000.0, room="show"))
    assert e.viewer("u1")["features"]["stream_time"] == 500.0
    e.ingest(ev("leave", "u1", 1100.0, room="show"))
    e.ingest({"type": "live_end", "room": "show", "ts": 2000.0})
    e.advance(2000.0 + HOUR - 100)
    assert e.stats()["rooms"] == 1
    e.advance(2000.0 + HOUR + 120)
    s = e.stats()
    assert (s["rooms"], s["expired_rooms"], s["expired_viewers"]) == (0, 1, 1)
    # the room comes back as a new room: stream_time counts from its first event
    t = 2000.0 + 2 * HOUR
    e.ingest(ev("enter", "u9", t, room="show"))
    e.ingest(ev("like", "u9", t + 30, room="show"))
    assert e.viewer("u9")["features"]["stream_time"] == 30.0


def test_room_with_a_viewer_or_restarted_is_kept(live1h):
    e = live1h
    e.ingest({"type": "live_start", "room": "a", "ts": 500.0})
    e.ingest({"type": "live_end", "room": "a", "ts": 600.0})
    e.ingest({"type": "live_start", "room": "a", "ts": 700.0})  # live again
    e.ingest({"type": "live_start", "room": "b", "ts": 500.0})
    e.ingest({"type": "live_end", "room": "b", "ts": 600.0})
    t = 600.0
    e.ingest(ev("enter", "fan", t, room="b"))  # stays in b's audience well after live_end
    while t < 600.0 + 3 * HOUR:
        t += 30.0
        e.ingest(ev("heartbeat", "fan", t, room="b"))
    assert e.stats()["rooms"] == 2 and e.stats()["expired_rooms"] == 0


def test_profile_only_viewer_is_forgotten(live1h):
    e = live1h
    e.ingest(ev("enter", "u1", 1000.0))
    e.set_profile("p1", level="high")
    e.advance(1000.0 + 0.5 * HOUR)
    assert e._viewers.get("p1") >= 0
    e.advance(1000.0 + 3 * HOUR)
    assert e._viewers.get("p1") < 0


LITERALS = """
[engine]
retention = "1h"
[[rules]]
name = "vip"
on = ["enter"]
when = "event.viewer == 'boss' and event.room == 'main'"
then = "red_carpet"
"""


def test_literal_ids_keep_their_slot():
    e = Engine.from_toml(LITERALS)
    boss = e._viewers.get("boss")
    main = e._rooms.get("main")
    assert [a.action for a in e.ingest(ev("enter", "boss", 1000.0, room="main"))] == ["red_carpet"]
    e.ingest(ev("leave", "boss", 1001.0, room="main"))
    e.ingest({"type": "live_end", "room": "main", "ts": 1002.0})
    e.ingest(ev("enter", "other", 1002.0 + 2 * HOUR, room="x"))
    assert e.stats()["expired_viewers"] == 1 and e.stats()["expired_rooms"] == 1
    assert e._viewers.get("boss") == boss and e._rooms.get("main") == main  # reset, not handed to others
    assert e._viewers.get("other") != boss
    assert e.ingest(ev("enter", "other", 1003.0 + 2 * HOUR, room="main")) == []
    assert [a.action for a in e.ingest(ev("enter", "boss", 1004.0 + 2 * HOUR, room="main"))] == ["red_carpet"]
    assert e.viewer("boss")["features"]["sessions"] == 1  # a new viewer all the same


def test_stats_report_memory_and_slots(live):
    s = live.stats()
    assert s["memory"] > 0 and s["live_slots"] == 0 and s["free_slots"] == s["slot_capacity"] == 1024
    assert s["expired_viewers"] == 0 and s["expired_rooms"] == 0


# --- determinism ------------------------------------------------------------------------------

@pytest.fixture(params=["golden", "example"])
def short_rules(request, golden_rules, example_rules):
    return _with_retention(golden_rules if request.param == "golden" else example_rules, "3m")


@SETTINGS
@given(events=streams(max_events=50, viewers=("u1", "u2", 3, "u4", 5)), data=st.data())
def test_forgetting_does_not_depend_on_advance_calls(short_rules, events, data):
    """Sweeps happen at fixed points of engine time: advancing in between changes nothing, not
    even the order of same-instant firings of viewers whose slots were reused in another order."""
    advances = []
    prev = events[0]["ts"] - 100
    for e in events:
        k = data.draw(st.integers(0, 3))
        advances.append(sorted(data.draw(st.floats(prev, e["ts"], allow_nan=False)) for _ in range(k)))
        prev = e["ts"]
    plain, stepped = Engine(short_rules), Engine(short_rules)
    assert _run(plain, events) == _run(stepped, events, advances)
    viewers = [v for v in sorted({e["viewer"] for e in events}, key=str) if plain._viewers.get(v) >= 0]
    a, b = _state(plain, viewers), _state(stepped, viewers)
    a[0].pop("timers"), b[0].pop("timers")
    assert a == b
    assert [stepped._viewers.get(v) >= 0 for v in viewers] == [True] * len(viewers)


# --- order of same-instant firings: by arrival, never by slot (docs/semantics.md) -----------------

def _gone_quick_order(engine: Engine, step: float | None = None) -> tuple[list, int]:
    """X and Z come and go; C and D arrive after both were forgotten, into their freed slots,
    and leave by the idle timeout at the same instant. ``step``: an advance() before C and D.
    Returns the gone_quick firings and C's slot."""
    out = []
    for e in (ev("enter", "X", 1000.0), ev("leave", "X", 1001.0), ev("enter", "Z", 1060.0), ev("leave", "Z", 1061.0)):
        out += engine.ingest(e)
    if step is not None:
        out += engine.advance(step)
    for e in (ev("enter", "C", 1300.0), ev("enter", "D", 1300.0), ev("heartbeat", "C", 1310.0), ev("heartbeat", "D", 1310.0)):
        out += engine.ingest(e)
    slot = engine._viewers.get("C")
    out += engine.advance(2000.0)
    return [(a.viewer, a.ts) for a in out if a.rule == "gone_quick"], slot


def test_same_instant_order_does_not_depend_on_advance_calls(golden_rules):
    """X is forgotten at the 1200 s sweep, Z at 1260 s. Without an advance() in between both go
    at the sweep the 1300 s event runs, and C, D take their slots in one order; with one, in
    the other. Their idle-timeout firings at 1400 s come out C then D either way."""
    rules = _with_retention(golden_rules, "3m")
    (plain, plain_slot), (stepped, stepped_slot) = _gone_quick_order(Engine(rules)), _gone_quick_order(Engine(rules), 1200.0)
    assert plain_slot != stepped_slot  # the slots do differ
    assert plain == stepped == [("C", 1400.0), ("D", 1400.0)]


def test_returning_viewer_counts_from_its_return(golden_rules):
    """Y arrived before C but C took the lower slot X left: same-instant firings go Y, then C.
    Y forgotten and back after C: C, then Y."""
    e = Engine(_with_retention(golden_rules, "3m"))
    for x in (ev("enter", "X", 1000.0), ev("leave", "X", 1001.0), ev("like", "Y", 1100.0),
              ev("enter", "Y", 1250.0), ev("enter", "C", 1250.0),
              ev("heartbeat", "C", 1260.0), ev("heartbeat", "Y", 1260.0)):
        e.ingest(x)
    assert e._viewers.get("C") < e._viewers.get("Y")
    assert [(a.viewer, a.ts) for a in e.advance(1400.0) if a.rule == "gone_quick"] == [("Y", 1350.0), ("C", 1350.0)]
    # both are forgotten at the 1560 s sweep; C comes back first this time
    for x in (ev("enter", "C", 1600.0), ev("enter", "Y", 1600.0),
              ev("heartbeat", "Y", 1610.0), ev("heartbeat", "C", 1610.0)):
        e.ingest(x)
    assert e.stats()["expired_viewers"] == 3
    assert [(a.viewer, a.ts) for a in e.advance(1800.0) if a.rule == "gone_quick"] == [("C", 1700.0), ("Y", 1700.0)]


@st.composite
def cohorts(draw, max_steps: int = 14):
    """Groups of viewers acting at one instant (so their timers fall due together), with gaps
    long enough for retention (3 minutes) to forget some of them and hand their slots out again."""
    t = 1_000.0
    events = []
    for _ in range(draw(st.integers(2, max_steps))):
        t += draw(st.sampled_from([0.0, 10.0, 61.0, 91.0, 130.0, 200.0, 301.0]))
        typ = draw(st.sampled_from(["enter", "heartbeat", "heartbeat", "leave", "like", "click"]))
        for viewer in draw(st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f"]), min_size=1, max_size=4, unique=True)):
            events.append(ev(typ, viewer, t))
    return events


@SETTINGS
@given(events=cohorts(), data=st.data())
def test_same_instant_order_property(golden_rules, events, data):
    """With retention, the actions (in order) do not depend on advance() calls in between."""
    rules = _with_retention(golden_rules, "3m")
    advances = []
    prev = events[0]["ts"] - 100
    for e in events:
        advances.append(sorted(data.draw(st.floats(prev, e["ts"])) for _ in range(data.draw(st.integers(0, 2)))))
        prev = e["ts"]
    assert _run(Engine(rules), events) == _run(Engine(rules), events, advances)


@pytest.mark.parametrize("how", ["snapshot", "reload"])
def test_arrival_order_survives_snapshot_and_reload(golden_rules, tmp_path, how):
    """The arrival numbers are state: a restored or reloaded engine keeps the order."""
    rules = _with_retention(golden_rules, "3m")
    engine = Engine(rules)
    for e in (ev("enter", "X", 1000.0), ev("leave", "X", 1001.0), ev("enter", "Z", 1060.0), ev("leave", "Z", 1061.0)):
        engine.ingest(e)
    engine.advance(1200.0)  # X and Z freed at two sweeps: C takes Z's slot, D X's
    for e in (ev("enter", "C", 1300.0), ev("enter", "D", 1300.0), ev("heartbeat", "C", 1310.0), ev("heartbeat", "D", 1310.0)):
        engine.ingest(e)
    assert engine._viewers.get("C") > engine._viewers.get("D")
    if how == "snapshot":
        engine.snapshot(tmp_path / "s.seg")
        engine = Engine.restore(tmp_path / "s.seg")
    else:
        assert engine.reload(_with_retention(golden_rules, "4m").text)  # same kernels: retention is not compiled in
    assert [(a.viewer, a.ts) for a in engine.advance(2000.0) if a.rule == "gone_quick"] == [("C", 1400.0), ("D", 1400.0)]
