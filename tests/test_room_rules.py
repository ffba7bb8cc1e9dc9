"""Room names in rules and ``[[room_rules]]``: hand-computed firings, cooldown, time-driven edges,
exact ``room.share`` counts, snapshot/restore, reload, explain_room and the rules-file errors."""

from __future__ import annotations

from functools import lru_cache
from unittest import mock

import pytest
from hypothesis import given, settings, strategies as st

from segengine import Engine, RulesError
from segengine.compiler import layout as layout_module
from segengine.rules.load import load_rules

from conftest import examples
from room_common import ROOM_RULES, engine, ev, room_rules, rows


def test_room_rule_fires_on_rising_edge_with_empty_viewer():
    e = engine()
    full = lambda actions: [r for r in rows(actions) if r[0] == "full_house"]  # noqa: E731
    assert full(e.ingest(ev("enter", "a", ts=1))) == []
    assert full(e.ingest(ev("enter", "b", ts=2))) == []
    assert full(e.ingest(ev("enter", "c", ts=3))) == [("full_house", "full_house", "", "r1", 3.0)]
    assert full(e.ingest(ev("enter", "d", ts=4))) == []  # still true: no new edge
    assert full(e.ingest(ev("leave", "d", ts=5))) == []  # 3 present: still true
    assert full(e.ingest(ev("leave", "c", ts=6))) == []  # 2: false
    assert full(e.ingest(ev("enter", "c", ts=7))) == [("full_house", "full_house", "", "r1", 7.0)]
    assert e.stats()["fired"]["full_house"] == 2


def test_room_rules_are_per_room():
    e = engine()
    for i, v in enumerate("abc"):
        e.ingest(ev("enter", v, room="r2", ts=1 + i))
    e.set_profile("x", gender="female", age=30)
    e.ingest(ev("enter", "x", room="r1", ts=10))
    assert e.explain_room("r2", "full_house").was_true
    assert not e.explain_room("r1", "full_house").was_true
    # a viewer moving to another room changes the audience of the room it left: evaluated too
    out = rows(e.ingest(ev("enter", "c", room="r1", ts=11)))
    assert not e.explain_room("r2", "full_house").was_true
    assert [r for r in out if r[0] == "full_house"] == []
    out = rows(e.ingest(ev("enter", "a", room="r1", ts=12)))
    assert ("full_house", "full_house", "", "r1", 12.0) in out


def test_room_rule_actions_come_after_the_events_viewer_actions():
    e = engine()
    e.set_profile("a", gender="female", age=30)
    e.set_profile("b", gender="female", age=30)
    e.ingest(ev("enter", "a", ts=1))
    e.ingest(ev("enter", "b", ts=2))
    # c enters by paying: its pass (tag:vip) first, then the room's rules in file order
    out = rows(e.ingest(ev("pay", "c", ts=3, amount=150.0)))
    assert [r[0] for r in out] == ["make_vip", "full_house", "vip_room"]


def test_room_rule_cooldown_suppresses_and_counts():
    e = engine()
    e.set_profile("w", gender="female", age=30)
    e.ingest(ev("enter", "w", ts=0))
    e.ingest(ev("enter", "m1", ts=1))  # 1/2 target: 0.5, not < 0.3
    out = rows(e.ingest(ev("enter", "m2", ts=2)))  # 1/3 = 0.333
    assert [r for r in out if r[0] == "off_target"] == []
    out = e.ingest(ev("enter", "m3", ts=3))  # 1/4 = 0.25 < 0.3: fires
    fired = [a for a in out if a.rule == "off_target"]
    assert [(a.viewer, a.ts, a.params) for a in fired] == [("", 3.0, {"share": 0.25, "audience": 4.0})]
    e.ingest(ev("leave", "m3", ts=4))  # 1/3: false
    e.ingest(ev("enter", "m3", ts=5))  # rising edge within the 1m cooldown: suppressed
    assert e.stats()["suppressed"]["off_target"]["cooldown"] == 1
    assert e.stats()["fired"]["off_target"] == 1
    e.ingest(ev("leave", "m3", ts=70))
    out = e.ingest(ev("enter", "m3", ts=71))  # 68 s after the firing: fires again
    assert [a.ts for a in out if a.rule == "off_target"] == [71.0]


def test_room_rule_time_driven_by_advance():
    """room.share(settled) >= 0.5 turns true with time alone (dwell >= 1m), at the exact instant."""
    e = engine()
    e.ingest(ev("enter", "a", ts=10))
    e.ingest(ev("enter", "b", ts=20))
    assert e.advance(69) == []
    out = rows(e.advance(75))
    assert [r for r in out if r[0] == "settled_half"] == [("settled_half", "settled_half", "", "r1", 70.0)]
    # idle timeouts end both sessions (last events at 10 and 20): the audience drops to 0 by timers
    e.advance(200)
    assert e.explain_room("r1", "full_house").values["room.audience"] == 0
    assert not e.explain_room("r1", "settled_half").was_true


def test_room_rule_same_results_when_advance_is_called_or_not():
    def run(with_advance: bool):
        e = engine()
        out = []
        for i, t in enumerate((10, 20, 30)):
            out += e.ingest(ev("enter", f"v{i}", ts=t))
            if with_advance:
                out += e.advance(t + 45)
        out += e.ingest(ev("like", "v0", ts=85))
        return rows(out)

    assert run(True) == run(False)


def _brute_share(e: Engine, room: str, name: str, profiles: dict) -> int:
    """Present viewers of ``room`` in segment or target ``name``, from viewer() read-outs."""
    n = 0
    for v in list(e._core.viewers.keys):
        info = e.viewer(v)
        if info["room"] != room or not info["features"]["present"]:
            continue
        if name in info["segments"]:
            n += info["segments"][name]
        else:
            p = profiles.get(v, {})
            n += (p.get("gender") == "female" and 20 <= p.get("age", 0) < 40)
    return n


_STEPS = st.lists(st.tuples(st.sampled_from(["enter", "leave", "like", "pay", "heartbeat", "advance", "profile"]),
                            st.integers(0, 5), st.sampled_from(["r1", "r2"]), st.floats(0.5, 50.0)),
                  min_size=1, max_size=25)


@settings(max_examples=examples(15))
@given(_STEPS)
def test_share_counts_equal_a_brute_force_count(steps):
    e = engine()
    profiles: dict = {}
    ts = 100.0
    for kind, who, room, dt in steps:
        ts += dt
        v = f"v{who}"
        if kind == "advance":
            e.advance(ts)
        elif kind == "profile":
            profiles[v] = {"gender": "female" if who % 2 else "male", "age": 15 + 5 * who}
            e.set_profile(v, **profiles[v])
        else:
            e.ingest(ev(kind, v, room=room, ts=ts, **({"amount": 120.0} if kind == "pay" else {})))
        for r in ("r1", "r2"):
            if e._core.rooms.get(r) < 0:
                continue
            aud = e.explain_room(r, "full_house").values["room.audience"]
            for rule, name in (("settled_half", "settled"), ("vip_room", "vip"), ("off_target", "young_women")):
                share = e.explain_room(r, rule).values[f"room.share({name})"]
                assert round(share * aud) == _brute_share(e, r, name, profiles), (r, name, kind, ts)


def test_viewer_rules_read_room_names():
    e = engine()
    e.ingest(ev("enter", "a", ts=0))
    e.ingest(ev("enter", "b", ts=1))
    e.ingest(ev("enter", "c", ts=50))
    assert e.ingest(ev("like", "a", ts=55)) == []  # settled: none yet (0/3)
    out = rows(e.ingest(ev("like", "a", ts=61.5)))  # a and b settled: 2/3 >= 0.5, audience 3
    assert ("crowded_like", "crowd_bonus", "a", "r1", 61.5) in out


def test_snapshot_restore_keeps_room_rule_state(tmp_path):
    e = engine()
    for i, t in enumerate((1, 2, 3)):
        e.ingest(ev("enter", f"v{i}", ts=t))
    e.snapshot(tmp_path / "s.seg")
    r = Engine.restore(tmp_path / "s.seg")
    tail = [ev("enter", "v3", ts=4), ev("leave", "v3", ts=5), ev("leave", "v2", ts=6), ev("enter", "v2", ts=7)]
    a = [x for t in tail for x in e.ingest(t)]
    b = [x for t in tail for x in r.ingest(t)]
    assert rows(a) == rows(b)
    assert [x for x in rows(a) if x[0] == "full_house"] == [("full_house", "full_house", "", "r1", 7.0)]
    assert e.stats()["fired"] == r.stats()["fired"]
    assert r.explain_room("r1", "full_house").fired == 2


def test_reload_keeps_room_rule_state_and_rebuilds_shares():
    e = engine()
    for i, t in enumerate((1, 2, 3)):
        e.ingest(ev("enter", f"v{i}", ts=t))
    text = ROOM_RULES.read_text()
    # same room rules, a segment that means something else now: its counts are rebuilt
    assert e.reload(text.replace('settled = "present and dwell >= 1m"', 'settled = "present"'), warmup=False)
    assert e.explain_room("r1", "settled_half").values["room.share(settled)"] == 1.0
    assert e.explain_room("r1", "full_house").was_true  # the edge survived: no second firing
    e.ingest(ev("enter", "v3", ts=4))
    assert e.stats()["fired"]["full_house"] == 1


def test_explain_room():
    e = engine()
    e.set_profile("w", gender="female", age=30)
    for i, v in enumerate(["w", "m1", "m2", "m3"]):
        e.ingest(ev("enter", v, ts=i))
    x = e.explain_room("r1", "off_target")
    assert x.holds and x.was_true and x.fired == 1 and x.last_fired == 3.0
    assert x.values == {"room.audience": 4.0, "room.share(young_women)": 0.25}
    assert x.cooldown == "1m" and x.cooldown_remaining == pytest.approx(60.0)
    assert "off_target" in str(x) and "room.share(young_women) = 0.25" in str(x)
    with pytest.raises(KeyError, match="did you mean 'off_target'"):
        e.explain_room("r1", "off_targt")
    with pytest.raises(KeyError, match="unknown room"):
        e.explain_room("nowhere", "off_target")


BAD = [
    ('[[room_rules]]\nname = "x"\nwhen = "dwell > 1m"\nthen = "a"\n',
     "3:9: a room rule reads only room names (room.audience, room.share(NAME), ...), not 'dwell'"),
    ('[[rules]]\nname = "x"\nwhen = "room.audince > 1"\nthen = "a"\n', "3:14: unknown room value 'room.audince'; did you mean 'audience'?"),
    ('[segments]\nfan = "orders > 1"\n[[rules]]\nname = "x"\nwhen = "room.share(fna) > 0.5"\nthen = "a"\n',
     "5:20: unknown segment or target 'fna'; did you mean 'fan'?"),
    ('[[rules]]\nname = "x"\nwhen = "room.funnel(chekout) > 1"\nthen = "a"\n',
     "3:21: unknown funnel step 'chekout'; did you mean 'checkout'?"),
    ('[[rules]]\nname = "x"\nwhen = "room.share > 1"\nthen = "a"\n', "3:9: room.share needs a segment or target name"),
    ('[segments]\nbig = "room.audience > 10"\n', "2:8: room values are read in rules, not in segments or targets"),
    ('[[room_rules]]\nname = "x"\nwhen = "room.audience > 1"\nthen = "tag:hot"\n', "4:8: a room rule has no viewer to tag"),
    ('[[rules]]\nname = "x"\nwhen = "dwell > 1m"\nthen = "a"\n[[room_rules]]\nname = "x"\nwhen = "room.audience > 1"\nthen = "a"\n',
     "6:8: duplicate rule name 'x'"),
    ('[[room_rules]]\nname = "x"\nwhen = "room.audience > 1"\nthen = "a"\nonce = "session"\n',
     "5:1: unknown key 'once' in a room rule"),
    ('[engine]\nroom_types = ["like"]\n', "2:15: 'like' is a viewer event type"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_room_errors_at_file_line_col(text, message):
    with pytest.raises(RulesError) as err:
        load_rules(text, "r.toml")
    assert f"r.toml:{message}" in str(err.value)


def test_room_metrics_names_are_checked_but_need_the_metrics_columns():
    """uv, gmv, conversion, avg_dwell and funnel come from the room-metrics columns."""
    from segengine.features.roomnames import ROOM_METRICS

    rs = load_rules('[[room_rules]]\nname = "x"\nwhen = "room.uv > 1 and room.funnel(pay) >= 1"\nthen = "a"\n')
    if not ROOM_METRICS:
        with pytest.raises(NotImplementedError, match="room-metrics columns"):
            Engine(rs)


@pytest.mark.skipif(not hasattr(Engine, "room"), reason="needs room metrics (engine.room)")
def test_room_rule_on_room_metrics():
    # the funnel is ordered (a pay without view, click, cart and checkout does not reach "pay")
    rs = load_rules('[[room_rules]]\nname = "first_sale"\nwhen = "room.gmv > 0 and room.conversion > 0 and '
                    'room.funnel(enter) >= 1 and room.funnel(pay) == 0 and room.uv >= 1"\nthen = "cheer"\n')
    e = Engine(rs)
    e.ingest(ev("enter", "a", ts=1))
    out = rows(e.ingest(ev("pay", "a", ts=2, amount=10.0)))
    assert out == [("first_sale", "cheer", "", "r1", 2.0)]
    assert e.room("r1").gmv == 10.0


def test_reload_schedules_the_time_driven_share_changes():
    """After a reload, a membership that changes with time alone still moves the count on time."""
    e = engine()
    e.ingest(ev("enter", "a", ts=10))
    e.ingest(ev("enter", "b", ts=20))
    text = ROOM_RULES.read_text().replace('settled = "present and dwell >= 1m"', 'settled = "present and dwell >= 2m"')
    text = text.replace('idle_timeout = "90s"', 'idle_timeout = "10m"')
    e.ingest(ev("heartbeat", "a", ts=30))
    e.ingest(ev("heartbeat", "b", ts=30))
    assert e.reload(text, warmup=False)
    e.advance(131)  # a: dwell 121 s; b: 111 s
    assert e.explain_room("r1", "settled_half").values["room.share(settled)"] == 0.5
    out = rows(e.advance(140))
    assert [r for r in out if r[0] == "settled_half"] == []  # the edge was true since 130 s
    assert e.explain_room("r1", "settled_half").values["room.share(settled)"] == 1.0


def test_explain_of_a_room_rule_points_to_explain_room():
    e = engine()
    e.ingest(ev("enter", "a", ts=1))
    with pytest.raises(KeyError, match="room rule: explain it with engine.explain_room"):
        e.explain("a", "full_house")


def test_cli_explain_room(tmp_path, capsys):
    import json

    from segengine.cli import main

    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(ev("enter", f"v{i}", ts=i)) + "\n" for i in range(4)))
    assert main(["explain", str(ROOM_RULES), str(events), "full_house", "--room", "r1"]) == 0
    out = capsys.readouterr().out
    assert "full_house fired once in room 'r1'" in out and "room.audience = 4" in out
    assert main(["explain", str(ROOM_RULES), str(events), "full_house", "--room", "r1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["room"] == "r1" and report["fired"] == 1 and report["explanation"]["values"] == {"room.audience": 4.0}
    assert main(["explain", str(ROOM_RULES), str(events), "full_hous", "--room", "r1"]) == 2
    assert "did you mean 'full_house'" in capsys.readouterr().err


#: One room rule per room name whose ``changed_by`` the kernels use to skip events
#: (features/roomnames.py), the event types its streams draw from (types that change it, often
#: enough to cross its threshold both ways, and types that do not) and their rooms.
_SKIPPED_BY = {
    "crowd": ("room.audience >= 2", ["enter", "leave", "heartbeat", "like", "advance"], ["r1", "r1", "r2"]),
    "visitors": ("room.uv >= 3", ["enter", "leave", "heartbeat", "like", "advance"], ["r1", "r1", "r2"]),
    "takings": ("room.gmv > 15", ["pay", "refund", "heartbeat", "advance"], ["r1"]),
    "buying": ("room.conversion >= 0.5", ["enter", "pay", "refund", "leave", "heartbeat", "advance"], ["r1", "r2"]),
    "short_stays": ("room.avg_dwell < 20", ["enter", "leave", "heartbeat", "like", "advance"], ["r1", "r1", "r2"]),
    "carts": ("room.funnel(cart) >= 1", ["view", "click", "cart", "checkout", "heartbeat"], ["r1"]),
}


def _room_rule_text(names) -> str:
    return "".join(f'[[room_rules]]\nname = "{n}"\nwhen = "{_SKIPPED_BY[n][0]}"\nthen = "{n}"\n' for n in names)


@lru_cache(maxsize=None)
def _skipping_rules(name: str):
    rules = load_rules(_room_rule_text([name]))
    Engine(rules)
    return rules


@lru_cache(maxsize=1)
def _every_event_rules():
    """Every rule of _SKIPPED_BY in one file, evaluated after every event (room rules are
    independent of each other: one engine is the reference for each of them)."""
    with mock.patch.object(layout_module, "SKIP_UNCHANGED", False):
        rules = load_rules(_room_rule_text(_SKIPPED_BY))
        Engine(rules)
    return rules


@pytest.mark.parametrize("name", sorted(_SKIPPED_BY))
@settings(max_examples=examples(60))
@given(data=st.data())
def test_room_rules_skip_only_events_that_change_nothing_they_read(name, data):
    """A room rule reading only room metrics and the audience is evaluated after the events that
    can change them (a session starting or ending, the types its names list): its firings, counts
    and edge are those of an engine that evaluates it after every event."""
    _, types, rooms = _SKIPPED_BY[name]
    steps = data.draw(st.lists(st.tuples(st.sampled_from(types), st.integers(0, 2), st.sampled_from(rooms),
                                         st.floats(0.5, 20.0)),
                               min_size=10, max_size=40))
    skipping, plain = Engine(_skipping_rules(name)), Engine(_every_event_rules())
    assert [c for c in skipping._compiled.layout.ri if c.startswith("room_checked:")]
    assert not [c for c in plain._compiled.layout.ri if c.startswith("room_checked:")]
    mine = lambda actions: [r for r in rows(actions) if r[0] == name]  # noqa: E731
    t = 0.0
    for kind, who, room, dt in steps:
        t += dt
        if kind == "advance":
            assert rows(skipping.advance(t)) == mine(plain.advance(t))
            continue
        amount = {"pay": 10.0, "refund": 10.0}.get(kind)
        event = ev(kind, f"v{who}", room=room, ts=t, **({} if amount is None else {"amount": amount}))
        assert rows(skipping.ingest(event)) == mine(plain.ingest(event))
    assert skipping.stats()["fired"][name] == plain.stats()["fired"][name]
    for room in {room for kind, _, room, _ in steps if kind != "advance"}:
        assert skipping.explain_room(room, name).was_true == plain.explain_room(room, name).was_true


def test_a_room_rule_added_by_a_reload_is_evaluated_at_the_rooms_next_event():
    """The room's next event evaluates a changed set of room rules even when it changes no value
    they read (a heartbeat): a rule whose condition already holds fires then, as it would have
    without the skipping."""
    two = '[[room_rules]]\nname = "two"\nwhen = "room.audience >= 2"\nthen = "two"\n'
    e = Engine(load_rules(two))
    e.ingest(ev("enter", "a", ts=1))
    assert rows(e.ingest(ev("enter", "b", ts=2))) == [("two", "two", "", "r1", 2.0)]
    assert rows(e.ingest(ev("heartbeat", "a", ts=3))) == []
    assert e.reload(two + '[[room_rules]]\nname = "pair"\nwhen = "room.audience >= 2"\nthen = "pair"\n', warmup=False)
    assert rows(e.ingest(ev("heartbeat", "a", ts=4))) == [("pair", "pair", "", "r1", 4.0)]
    assert rows(e.ingest(ev("heartbeat", "b", ts=5))) == []
