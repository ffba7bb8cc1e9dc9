"""Golden scenarios: hand-worked expected actions for every built-in name (SPEC §4) and
every rule key (SPEC §3), on tests/rules/golden.toml. Times are chosen so each expected
value can be checked by hand; comments give the arithmetic."""

from __future__ import annotations

import math

import pytest

from conftest import ev, heartbeats, named
import segengine.engine as engine_module
from segengine import Action, Engine, EventError


# --- time-driven state rules -------------------------------------------------------------

def test_dwell_threshold_fires_at_the_threshold_instant_via_advance(golden):
    golden.ingest(ev("enter", ts=1000))
    acts = heartbeats(golden, "u1", 1000, 1290)
    assert named(acts, "dwell_5m") == []
    assert named(golden.advance(1299.999), "dwell_5m") == []
    assert named(golden.advance(1300.0), "dwell_5m") == [("nudge", 1300.0)]
    assert named(golden.advance(2000), "dwell_5m") == []  # fires once per rising edge


def test_due_timer_fires_at_start_of_next_ingest_with_its_due_time(golden):
    golden.ingest(ev("enter", ts=1000))
    heartbeats(golden, "u1", 1000, 1290)
    acts = golden.ingest(ev("heartbeat", ts=1310))
    assert named(acts, "dwell_5m") == [("nudge", 1300.0)]
    assert acts[0].rule == "dwell_5m"  # timers come first


def test_timer_due_exactly_at_event_time_fires_before_the_event(golden):
    golden.ingest(ev("enter", ts=1000))
    heartbeats(golden, "u1", 1000, 1290)
    acts = golden.ingest(ev("heartbeat", ts=1300))
    assert named(acts, "dwell_5m") == [("nudge", 1300.0)]


def test_due_timer_fires_even_when_the_event_makes_the_condition_false(golden):
    golden.ingest(ev("enter", ts=1000))
    golden.ingest(ev("cart", ts=1001, item="a", price=10.0))
    heartbeats(golden, "u1", 1000, 1290)
    acts = golden.ingest(ev("pay", ts=1301, amount=10.0))  # cart_idle due at 1300 (dwell > 5m)
    assert named(acts, "cart_idle") == [("cart_nudge", 1300.0)]


def test_idle_timeout_ends_session_at_last_event_plus_timeout(golden):
    golden.ingest(ev("enter", ts=1000))
    golden.ingest(ev("heartbeat", ts=1030))
    # present until 1030 + 90 = 1120; dwell counts to the last event: 30 s
    assert named(golden.advance(1119.999), "gone_quick") == []
    assert golden.viewer("u1")["features"]["present"] is True
    acts = golden.advance(1120)
    assert named(acts, "gone_quick") == [("gone", 1120.0)]
    f = golden.viewer("u1")["features"]
    assert f["present"] is False and f["dwell"] == 30.0 and f["total_dwell"] == 30.0


def test_event_exactly_at_idle_expiry_starts_a_new_session(golden):
    golden.ingest(ev("enter", ts=1000))
    golden.ingest(ev("heartbeat", ts=1090))  # 1000 + 90: expired at that instant
    f = golden.viewer("u1")["features"]
    assert f["sessions"] == 2.0 and f["dwell"] == 0.0 and f["total_dwell"] == 0.0


def test_state_rules_keep_running_after_leave(golden):
    golden.ingest(ev("enter", ts=1000))
    golden.ingest(ev("checkout", ts=1010, item="a"))
    golden.ingest(ev("leave", ts=1020))
    # since(checkout) > 2m at 1130, while absent
    assert named(golden.advance(1200), "checkout_abandon") == [("remind_checkout", 1130.0)]


def test_window_expiry_is_a_timer(golden):
    # count(click, 12s): buckets of 1 s; clicks in buckets 1000 and 1001 drop out when the
    # window's newest bucket is 1013 (covers 1002..1013): the condition turns true at 1013.0.
    golden.ingest(ev("click", ts=1000.5, item="z"))
    golden.ingest(ev("click", ts=1001.2, item="z"))
    golden.advance(1011.9)
    assert golden.viewer("u1")["features"]["count(click, 12s)"] == 2.0
    acts = golden.advance(1012.0)  # covers 1001..1012: the 1000.5 click is gone
    assert golden.viewer("u1")["features"]["count(click, 12s)"] == 1.0
    assert named(acts, "clicks_gone") == []
    assert named(golden.advance(1020), "clicks_gone") == [("clicks_gone", 1013.0)]


def test_interest_decay_crossing_fires_at_the_computed_instant(golden):
    golden.ingest(ev("view", ts=1000, item="p", category="digital", price=10.0))  # +1
    golden.ingest(ev("click", ts=1000, item="p", category="digital", price=10.0))  # +2
    assert golden.viewer("u1")["features"]["interest(digital)"] == pytest.approx(3.0)
    expected = 1000 + 600 * math.log2(3 / 2)  # 3 * 2^(-dt/600) == 2
    acts = golden.advance(2000)
    (name, ts), = named(acts, "fading")
    assert abs(ts - expected) < 1e-3
    assert golden.viewer("u1")["features"]["top_interest"] == "digital"


def test_interest_halves_every_half_life(golden):
    golden.ingest(ev("cart", ts=1000, item="p", category="snacks", price=5.0))  # +4
    golden.ingest(ev("pay", ts=1000, item="p", category="snacks", amount=5.0))  # +8
    golden.advance(1600)
    assert golden.viewer("u1")["features"]["interest(snacks)"] == pytest.approx(6.0)
    assert golden.viewer("u1")["features"]["top_interest"] == "snacks"


# --- event rules and suppression -------------------------------------------------------

def test_event_rule_cooldown_and_tag_seen_by_later_rule_in_same_pass(golden):
    acts = []
    for t in (1000, 1001, 1002):
        acts += golden.ingest(ev("like", ts=t))
    assert [(a.rule, a.action) for a in acts] == [("like3", "coupon"), ("like3", "tag:engaged"),
                                                 ("engaged_state", "engaged_seen")]
    assert golden.viewer("u1")["tags"] == ["engaged"]
    assert named(golden.ingest(ev("like", ts=1003)), "like3") == []  # cooldown 2m
    assert golden.stats()["suppressed"]["like3"]["cooldown"] == 1
    acts = []
    for t in (1125, 1126, 1127):  # cooldown over at 1002 + 120 = 1122; the third like in 1 m is at 1127
        acts += golden.ingest(ev("like", ts=t))
    assert named(acts, "like3") == [("coupon", 1127.0), ("tag:engaged", 1127.0)]
    assert golden.stats()["fired"]["like3"] == 2


def test_untag_action_and_once_lifetime(golden):
    for t in (1000, 1001, 1002):
        golden.ingest(ev("like", ts=t))
    acts = golden.ingest(ev("pay", ts=1003, amount=1.0))
    assert named(acts, "disengage") == [("untag:engaged", 1003.0)]
    assert golden.viewer("u1")["tags"] == []
    for t in (1200, 1201, 1202):
        acts = golden.ingest(ev("like", ts=t))
    assert named(acts, "engaged_state") == []  # lifetime: once ever (and paid now anyway)


def test_once_session_resets_with_a_new_session(golden):
    assert named(golden.ingest(ev("comment", ts=1000, text="hi")), "hello") == [("hello", 1000.0)]
    assert named(golden.ingest(ev("comment", ts=1001, text="hi")), "hello") == []
    assert golden.stats()["suppressed"]["hello"]["once"] == 1
    golden.ingest(ev("leave", ts=1002))
    assert named(golden.ingest(ev("comment", ts=1003, text="again")), "hello") == [("hello", 1003.0)]


def test_budget_is_per_rule_and_room_in_a_sliding_window(golden):
    out = []
    for i, v in enumerate(("a", "b", "c")):
        out += named(golden.ingest(ev("share", v, ts=1000 + i)), "budgeted")
    assert out == [("reward", 1000.0), ("reward", 1001.0)]
    assert golden.stats()["suppressed"]["budgeted"]["budget"] == 1
    assert named(golden.ingest(ev("share", "d", ts=1002, room="r2")), "budgeted") == [("reward", 1002.0)]
    assert named(golden.ingest(ev("share", "e", ts=1059.9)), "budgeted") == []
    assert named(golden.ingest(ev("share", "e", ts=1060.0)), "budgeted") == [("reward", 1060.0)]


def test_priority_then_file_order_and_disabled_rules(golden):
    acts = golden.ingest(ev("follow", ts=1000))
    assert [a.action for a in acts] == ["high", "low"]
    assert golden.stats()["fired"]["disabled"] == 0


def test_suppressed_rising_edge_is_used_up(golden):
    golden.ingest(ev("enter", ts=1000))
    golden.ingest(ev("cart", ts=1001, item="a", price=5.0))
    heartbeats(golden, "u1", 1000, 1320)
    assert golden.stats()["fired"]["cart_idle"] == 1
    golden.ingest(ev("uncart", ts=1321, item="a"))  # false
    golden.ingest(ev("cart", ts=1322, item="a", price=5.0))  # true again: once per session
    assert golden.stats()["fired"]["cart_idle"] == 1
    assert golden.stats()["suppressed"]["cart_idle"]["once"] == 1


def test_leave_rule_sees_the_dwell_of_the_ended_session_and_params(golden):
    golden.ingest(ev("enter", ts=1000))
    (a,) = [a for a in golden.ingest(ev("leave", ts=1005.5)) if a.rule == "left"]
    assert a.params == {"d": 5.5, "msg": "stayed 5.5s"}
    assert a.viewer == "u1" and a.room == "r1" and a.ts == 1005.5


def test_event_placeholders_and_declared_types(golden):
    (a,) = golden.ingest(ev("gift", ts=1000, item="rose"))
    assert a == Action("gift", "thanks", "u1", "r1", 1000.0, {"item": "rose", "text": "got rose", "nested": {"room": "r1"}})


def test_stream_time_from_live_start_or_first_event(golden):
    golden.ingest({"type": "live_start", "room": "r1", "ts": 500.0})
    acts = golden.ingest(ev("enter", ts=2301))  # 1801 s into the stream
    assert named(acts, "late_joiner") == [("late_joiner", 2301.0)]
    assert [a.params for a in acts if a.rule == "late_joiner"] == [{"st": 1801.0}]
    golden.ingest(ev("enter", "x", ts=100, room="r9"))  # first event of r9 starts its clock
    assert named(golden.ingest(ev("enter", "y", ts=1899.999, room="r9")), "late_joiner") == []
    # a strict threshold holds from its instant on (docs/semantics.md): 1800 s > 30m at 1900.0
    assert named(golden.ingest(ev("enter", "z", ts=1900, room="r9")), "late_joiner") == [("late_joiner", 1900.0)]


def test_audience_counts_present_viewers_in_the_room(golden):
    assert named(golden.ingest(ev("enter", "a", ts=1000)), "crowd") == []
    acts = golden.ingest(ev("enter", "b", ts=1001))
    assert [a.params for a in acts if a.rule == "crowd"] == [{"n": 2.0}]
    golden.ingest(ev("leave", "a", ts=1002))
    assert named(golden.ingest(ev("enter", "c", ts=1003, room="r2")), "crowd") == []
    assert named(golden.ingest(ev("enter", "d", ts=1004)), "crowd") == [("crowd", 1004.0)]


def test_sessions_orders_and_welcome_back(golden):
    golden.ingest(ev("enter", ts=1000))
    assert golden.ingest(ev("pay", ts=1010, amount=20.0)) == []
    golden.ingest(ev("leave", ts=1020))
    assert named(golden.ingest(ev("enter", ts=2000)), "welcome_back") == [("welcome", 2000.0)]
    assert golden.viewer("u1")["features"]["sessions"] == 2.0


def test_room_switch_ends_old_session_and_starts_new(golden):
    golden.ingest(ev("enter", ts=1000))
    golden.ingest(ev("like", ts=1010, room="r2"))
    f = golden.viewer("u1")
    assert f["room"] == "r2" and f["features"]["sessions"] == 2.0 and f["features"]["total_dwell"] == 10.0
    assert golden.segment_size("passerby", room="r1") == 0
    assert golden.segment_size("passerby", room="r2") == 1


def test_money_features_and_refunds(golden):
    assert named(golden.ingest(ev("pay", ts=1000, amount=150.0)), "big_order") == []  # spend 150: not > 150
    (a,) = [a for a in golden.ingest(ev("pay", ts=1001, amount=80.0)) if a.rule == "big_order"]
    assert a.params == {"spend": 230.0, "aov": 115.0, "orders": 2.0}
    golden.ingest(ev("refund", ts=1002, amount=30.0))
    f = golden.viewer("u1")["features"]
    assert (f["spend"], f["orders"], f["aov"]) == (200.0, 2.0, 100.0)


def test_cart_is_a_multiset_that_outlives_sessions(golden):
    golden.ingest(ev("cart", ts=1000, item="a", price=100.0))
    golden.ingest(ev("cart", ts=1001, item="a", price=100.0))
    golden.ingest(ev("cart", ts=1002, item="b", price=50.0))
    golden.ingest(ev("uncart", ts=1003, item="a"))
    golden.ingest(ev("uncart", ts=1004, item="c"))  # not in the cart: nothing
    f = golden.viewer("u1")["features"]
    assert (f["carted"], f["cart_items"], f["cart_value"]) == (True, 2.0, 150.0)
    golden.ingest(ev("leave", ts=1005))
    golden.ingest(ev("enter", ts=2000))
    assert golden.viewer("u1")["features"]["cart_items"] == 2.0
    golden.ingest(ev("pay", ts=2001))  # no amount: pays the cart value
    f = golden.viewer("u1")["features"]
    assert (f["carted"], f["cart_items"], f["cart_value"], f["spend"]) == (False, 0.0, 0.0, 150.0)


def test_windowed_sum_and_avg_skip_events_without_the_field(golden):
    golden.ingest(ev("view", ts=1000, item="a", price=20.0))
    golden.ingest(ev("view", ts=1001, item="b"))  # no price: not in sum/avg
    acts = golden.ingest(ev("view", ts=1002, item="c", price=40.0))
    assert [a.params for a in acts if a.rule == "cheap_views"] == [{"avg": 30.0}]
    assert golden.viewer("u1")["features"]["count(view, 1m)"] == 3.0


def test_event_fields_in_conditions_and_params(golden):
    assert named(golden.ingest(ev("view", ts=1000, item="tv", category="digital", price=999.0)), "expensive_view") == []
    acts = golden.ingest(ev("view", ts=1001, item="tv", category="digital", price=1500.0))
    assert [a.params for a in acts if a.rule == "expensive_view"] == [{"item": "tv", "price": 1500.0, "top": "digital"}]


def test_in_lists_and_profiles(golden):
    assert golden.ingest(ev("click", ts=1000, item="a")) == []  # level unset
    golden.set_profile("u1", level="mid", age=41)
    assert named(golden.ingest(ev("click", ts=1001, item="a")), "ab_view") == [("ab", 1001.0)]
    assert named(golden.ingest(ev("click", ts=1002, item="z")), "ab_view") == []


def test_profile_segments_and_segment_size(golden):
    golden.set_profile("young", age=22, level="high")
    golden.set_profile("old", age=52, level="high")
    assert golden.segment_size("young_high") == 0  # no accepted event yet
    acts = golden.ingest(ev("enter", "young", ts=1000))
    assert [a.params for a in acts if a.rule == "vip_young"] == [{"level": "high", "age": 22.0}]
    golden.ingest(ev("enter", "old", ts=1000))
    assert golden.segment_size("young_high") == 1
    assert golden.segment_size("passerby") == 2
    golden.advance(1061)
    assert golden.segment_size("passerby") == 0  # idle? no: present until 1090, but dwell >= 1m
    assert golden.segment_size("watcher") == 2
    assert golden.viewer("young")["profile"] == {"age": 22.0, "level": "high"}
    with pytest.raises(KeyError, match="did you mean 'passerby'"):
        golden.segment_size("paserby")


def test_fan_and_loyal_segments(golden):
    golden.ingest(ev("follow", ts=1000))
    golden.ingest(ev("pay", ts=1001, amount=10.0))
    assert golden.viewer("u1")["segments"]["fan"] is True
    heartbeats(golden, "u1", 1001, 1601)
    assert golden.viewer("u1")["segments"]["loyal"] is True
    assert golden.stats()["fired"]["loyal_back"] == 1


def test_now_and_cart_features(golden):
    assert named(golden.ingest(ev("gift", ts=4999, item="x")), "clock") == []
    assert named(golden.ingest(ev("gift", ts=5000, item="x")), "clock") == [("clock", 5000.0)]


# --- time, late events, rejection ------------------------------------------------------

def test_late_event_is_applied_at_the_viewers_latest_time(golden):
    golden.ingest(ev("enter", ts=1000))
    golden.ingest(ev("leave", ts=1001))
    acts = golden.ingest(ev("gift", ts=900, item="x"))
    assert [a.ts for a in acts if a.rule == "gift"] == [1001.0]
    assert golden.stats()["late"] == 1


def test_rejected_event_changes_nothing(golden):
    golden.ingest(ev("enter", ts=1000))
    before = golden.stats()
    snapshot = golden.viewer("u1")
    for bad in ({"type": "like", "viewer": "u2", "room": "r1"},
                {"type": "nope", "viewer": "u2", "room": "r1", "ts": 5.0},
                {"type": "like", "viewer": "u2", "room": "r1", "ts": float("inf")},
                {"type": "view", "viewer": "u2", "room": "r1", "ts": 5.0, "price": "cheap"},
                b'{"type": "like", "viewer": "u2", "room": "r1", "ts": 5.0',
                {"type": "like", "viewer": [1], "room": "r1", "ts": 5.0}):
        with pytest.raises(EventError):
            golden.ingest(bad)
    after = golden.stats()
    assert {k: v for k, v in after.items() if k != "rejected"} == {k: v for k, v in before.items() if k != "rejected"}
    assert golden.viewer("u1") == snapshot
    with pytest.raises(KeyError):
        golden.viewer("u2")


def test_event_error_names_the_field(golden):
    with pytest.raises(EventError) as err:
        golden.ingest({"type": "like", "viewer": "u1", "room": "r1", "ts": "soon"})
    assert err.value.field == "ts" and isinstance(err.value, ValueError)
    with pytest.raises(EventError, match="unknown event type 'lke'") as err:
        golden.ingest({"type": "lke", "viewer": "u1", "room": "r1", "ts": 1.0})
    assert err.value.field == "type"


def test_inputs_event_struct_dict_and_json_bytes_agree(golden_rules):
    from segengine import Engine, Event
    forms = [Event(type="like", viewer=7, room="r1", ts=1000.0),
             {"type": "like", "viewer": 7, "room": "r1", "ts": 1000.0},
             b'{"type":"like","viewer":7,"room":"r1","ts":1000.0}']
    results = []
    for form in forms:
        engine = Engine(golden_rules)
        engine.ingest(form)
        results.append(engine.viewer(7))
    assert results[0] == results[1] == results[2]


@pytest.mark.parametrize("small_batch", [engine_module.SMALL_BATCH, 0], ids=["one-by-one", "batch-kernel"])
def test_ingest_many_matches_one_by_one_and_reports_bad_index(golden_rules, small_batch, monkeypatch):
    monkeypatch.setattr(engine_module, "SMALL_BATCH", small_batch)
    events = [ev("enter", ts=1000), ev("like", ts=1001), ev("like", ts=1002), ev("like", ts=1003), ev("leave", ts=1004)]
    one = Engine(golden_rules)
    expected = [a for e in events for a in one.ingest(e)]
    many = Engine(golden_rules)
    assert many.ingest_many(events) == expected
    ndjson = b"\n".join(__import__("msgspec").json.encode(e) for e in events)
    assert Engine(golden_rules).ingest_many(ndjson) == expected
    bad = Engine(golden_rules)
    with pytest.raises(EventError) as err:
        bad.ingest_many([events[0], {"type": "like", "viewer": "u1", "room": "r1"}, events[1]])
    assert err.value.index == 1 and err.value.field == "ts"
    assert bad.stats()["events"] == 1
    skip = Engine(golden_rules)
    skip.ingest_many([events[0], {"type": "like"}, *events[1:]], errors="skip")
    assert skip.stats()["rejected"] == 1 and skip.stats()["events"] == 5


def test_missing_values_read_as_zero_or_empty_and_viewer_literals(golden):
    assert named(golden.ingest(ev("gift", "u1", ts=1000, item="x")), "boss_gift") == []  # not the boss
    assert named(golden.ingest(ev("gift", "boss", ts=1001)), "boss_gift") == []  # missing item reads ""
    (a,) = [a for a in golden.ingest(ev("gift", "boss", ts=1002, item="x")) if a.rule == "boss_gift"]
    assert a.params == {"list": ["x", 1.0]}  # missing price reads 0; unset level reads ""
    golden.set_profile("boss", level="high")
    assert named(golden.ingest(ev("gift", "boss", ts=1003, item="x")), "boss_gift") == []
    assert golden.stats()["viewers"] == 2  # the literal 'boss' did not count as a viewer before its event


ONCE_RULES = """
[[rules]]
name = "left_recently"
when = "not present and count(leave, 1m) >= 1"
then = "follow_up"
once = "session"

[[rules]]
name = "first_leave_ever"
when = "not present and count(leave, 1m) >= 1"
then = "survey"
once = "lifetime"
"""


def test_once_marks_before_the_first_session_and_after_each_start():
    """A leave before any session starts none (SPEC §8): the time before the first session
    allows one firing of a once = "session" rule, like a session; each session start clears
    the marks of once = "session" rules, never those of once = "lifetime" rules."""
    engine = Engine.from_toml(ONCE_RULES)
    got = engine.ingest(ev("leave", ts=1000))  # no session: the rule holds at once
    assert [(a.rule, a.ts) for a in got] == [("left_recently", 1000.0), ("first_leave_ever", 1000.0)]
    got = engine.advance(1061)  # the leave drops out of the 1m window at 1060: false
    got += engine.ingest(ev("leave", ts=1100))  # true again, still before any session
    assert got == []
    assert engine.stats()["suppressed"]["left_recently"]["once"] == 1
    engine.ingest(ev("enter", ts=1200))  # session 1: present, false
    got = engine.ingest(ev("leave", ts=1210))
    assert [(a.rule, a.ts) for a in got] == [("left_recently", 1210.0)]  # lifetime: used up
    assert engine.stats()["suppressed"]["first_leave_ever"]["once"] == 2


THRESHOLD_RULES = """
[[rules]]
name = "busy"
when = "count(like, 1m) > 2"
then = "busy"

[[rules]]
name = "cooling"
when = "count(like, 1m) < 3 and count(like, 10m) >= 3"
then = "cooling"

[[rules]]
name = "calm"
when = "count(like, 1m) <= 2 and count(like, 10m) >= 4"
then = "calm"

[[rules]]
name = "beyond_any_count"
when = "count(like, 1m) >= 100000000000000000000"
then = "never"
"""


def test_window_count_thresholds_change_when_the_count_crosses_them():
    """A count only falls between events: ``count(like, 1m) > 2`` turns false when the bucket
    holding the 3rd newest like drops out, not when the oldest one does. The viewer gets a
    timer there and at its idle timeout; none at the buckets that leave the count above 2."""
    engine = Engine.from_toml(THRESHOLD_RULES)
    got = []
    for t in (1000, 1010, 1020, 1030):  # 5 s buckets 200, 202, 204, 206
        got += engine.ingest(ev("like", ts=t))
    assert [(a.rule, a.ts) for a in got] == [("busy", 1020.0)]  # the 3rd like
    timers = engine.stats()["timers"]
    # bucket 200 drops out at 1060 (4 -> 3 likes: nothing changes), bucket 202 at 1070 (3 -> 2)
    got = engine.advance(1069.9)
    assert got == [] and engine.stats()["timers"] == timers  # no timer at 1060
    got = engine.advance(1075)
    assert [(a.rule, a.ts) for a in got] == [("cooling", 1070.0), ("calm", 1070.0)]
    assert engine.stats()["timers"] == timers + 1
    got = engine.ingest(ev("like", ts=1071))  # 1020, 1030 and 1071 in the window: 3 again
    assert [(a.rule, a.ts) for a in got] == [("busy", 1071.0)]
    assert engine.stats()["fired"]["beyond_any_count"] == 0  # compiled, never true, no timer


PARAMS_RULES = """
[[rules]]
name = "static"
on = ["like"]
when = "true"
then = ["a", "b"]
params = { k = 1 }

[[rules]]
name = "bare"
on = ["like"]
when = "true"
then = "c"
"""


def test_every_action_owns_its_params():
    """Callers may change an action's params: no other action (of this firing or a later one,
    with params or without) sees it."""
    engine = Engine.from_toml(PARAMS_RULES)
    first = engine.ingest(ev("like", ts=1000))
    assert [(a.action, a.params) for a in first] == [("a", {"k": 1}), ("b", {"k": 1}), ("c", {})]
    for a in first:
        a.params["changed"] = True
    assert first[0].params is not first[1].params
    later = engine.ingest(ev("like", "u2", ts=1001))
    assert [(a.action, a.params) for a in later] == [("a", {"k": 1}), ("b", {"k": 1}), ("c", {})]
