"""Keyed counters: count/since/sum/avg with ``by = item|category`` (features/keyed.py).

Hand-computed streams, eviction of the least recently used key, every ingest path against
one-by-one ingestion, snapshot/restore, reload, and the load-time errors."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples
from segengine import Batch, Engine, Event, RulesError
from segengine.rules.load import load_rules_file

RULES = Path(__file__).parent / "rules" / "keyed.toml"


@pytest.fixture(scope="module")
def rules():
    return load_rules_file(RULES)


def ev(t, ts, v="u1", room="r1", **kw):
    return {"type": t, "viewer": v, "room": room, "ts": float(ts), **kw}


def fired(actions, rule=None):
    return [(a.rule, a.viewer, a.ts) for a in actions if rule is None or a.rule == rule]


def run(engine, events):
    out = []
    for e in events:
        out += engine.ingest(e)
    return out


def test_four_views_of_four_items_do_not_fire_four_of_one_do(rules):
    engine = Engine(rules)
    assert fired(run(engine, [ev("view", 100 + i, item=x) for i, x in enumerate("abcd")]), "one_product") == []
    got = run(engine, [ev("view", 120 + i, v="u2", item="z") for i in range(4)])
    assert fired(got, "one_product") == [("one_product", "u2", 123.0)]
    (action,) = [a for a in got if a.rule == "one_product"]
    assert action.params == {"n": 4.0, "item": "z"}  # params render the keyed count of the event's item


def test_click_view_cart_of_one_item_count_together_and_other_items_do_not(rules):
    engine = Engine(rules)
    events = [ev("view", 100, item="a"), ev("click", 101, item="b"), ev("click", 102, item="a"),
              ev("view", 103, item="b"), ev("cart", 104, item="a"), ev("like", 105), ev("cart", 106, item="a")]
    assert fired(run(engine, events), "one_product") == [("one_product", "u1", 106.0)]


def test_the_window_forgets_old_events(rules):
    engine = Engine(rules)
    # three views at 0-2 s, then one at 3 min: the window of 2 minutes holds one
    events = [ev("view", 1000 + i, item="a") for i in range(3)] + [ev("view", 1180, item="a")]
    assert fired(run(engine, events), "one_product") == []
    assert fired(run(engine, [ev("view", 1181 + i, item="a") for i in range(3)]), "one_product") == [("one_product", "u1", 1183.0)]


def test_an_event_without_the_key_counts_for_no_key(rules):
    engine = Engine(rules)
    assert fired(run(engine, [ev("view", 100 + i) for i in range(6)]), "one_product") == []
    assert engine.stats()["keyed_evictions"] == 0


def test_the_least_recently_used_key_is_evicted_and_starts_again_from_zero(rules):
    engine = Engine(rules)  # keyed_slots = 2
    events = [ev("view", 100, item="a"), ev("view", 101, item="a"), ev("view", 102, item="a"),
              ev("view", 103, item="b"), ev("view", 104, item="a"),  # a is the most recent: b is older
              ev("view", 105, item="c"),  # evicts b
              ev("view", 106, item="a")]  # a kept its 4 views: 5th
    got = run(engine, events)
    assert fired(got, "one_product") == [("one_product", "u1", 104.0), ("one_product", "u1", 106.0)]
    assert engine.stats()["keyed_evictions"] == 1
    run(engine, [ev("view", 107, item="b")])  # b again: evicts c, starts from zero
    assert engine.stats()["keyed_evictions"] == 2
    got = run(engine, [ev("view", 108, item="b"), ev("view", 109, item="b")])
    assert fired(got, "one_product") == []  # b has 3 (its view at 103 was forgotten)
    assert fired(run(engine, [ev("view", 110, item="b")]), "one_product") == [("one_product", "u1", 110.0)]


def test_session_count_and_since_by_item(rules):
    engine = Engine(rules)
    got = run(engine, [ev("view", 100, item="a"), ev("cart", 101, item="b"), ev("view", 102, item="b"),
                       ev("view", 103, item="a")])
    # a: second view, never carted -> since = inf > 30 s; b: carted 1 s ago
    assert fired(got, "seen_again") == [("seen_again", "u1", 103.0)]
    got = run(engine, [ev("leave", 104), ev("view", 200, item="a")])  # a new session: the count restarts
    assert fired(got, "seen_again") == []
    assert fired(run(engine, [ev("view", 201, item="a")]), "seen_again") == [("seen_again", "u1", 201.0)]


def test_sum_and_avg_by_category(rules):
    engine = Engine(rules)
    got = run(engine, [ev("view", 200, item="x", category="beauty", price=20.0),
                       ev("pay", 201, item="x", category="beauty", amount=60.0),
                       ev("pay", 202, item="y", category="snacks", amount=60.0),  # another category
                       ev("pay", 203, item="x", category="beauty", amount=50.0)])
    assert fired(got, "cat_spend") == [("cat_spend", "u1", 203.0)]
    assert [a.params for a in got if a.rule == "cat_spend"] == [{"s": 110.0}]


_event = st.tuples(st.sampled_from(["view", "click", "cart", "pay", "leave", "like"]), st.integers(0, 40),
                   st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(["a", "b", "c", "d"]),
                   st.sampled_from(["beauty", "snacks", "toys"]), st.sampled_from([5.0, 20.0]), st.sampled_from([30.0, 80.0]))


def _events(raw):
    out, ts = [], 100.0
    for t, dt, v, x, c, p, a in raw:
        ts += dt
        out.append(ev(t, ts, v=v, item=x, category=c, price=p, amount=a))
    return out


@settings(max_examples=examples(25))
@given(st.lists(_event, min_size=1, max_size=60))
def test_a_batch_gives_the_actions_of_one_by_one_and_a_restored_snapshot_continues(rules, tmp_path_factory, raw):
    events = _events(raw)
    one = Engine(rules)
    expected = run(one, events)
    structs = [msgspec.convert(e, Event) for e in events]
    for batch in (events, Batch.from_events(structs), b"\n".join(msgspec.json.encode(e) for e in events)):
        other = Engine(rules)
        assert other.ingest_many(batch) == expected
        assert other.stats()["keyed_evictions"] == one.stats()["keyed_evictions"]
    half = len(events) // 2
    first = Engine(rules)
    got = run(first, events[:half])
    path = tmp_path_factory.mktemp("snap") / "s.bin"
    first.snapshot(path)
    got += run(Engine.restore(path), events[half:])
    assert got == expected


def test_reload_keeps_keyed_state_and_a_smaller_keyed_slots_drops_the_keys_past_it(rules, tmp_path):
    engine = Engine(rules)
    run(engine, [ev("view", 100 + i, item="a") for i in range(3)])
    text = RULES.read_text()
    same = tmp_path / "same.toml"
    same.write_text(text + "\n[[rules]]\nname = \"extra\"\non = [\"like\"]\nwhen = \"true\"\nthen = \"x\"\n")
    assert engine.reload(same)
    assert fired(run(engine, [ev("view", 103, item="a")]), "one_product") == [("one_product", "u1", 103.0)]
    bigger = tmp_path / "bigger.toml"
    bigger.write_text(text.replace("keyed_slots = 2", "keyed_slots = 4"))
    grown = Engine(rules)
    run(grown, [ev("view", 100 + i, item="a") for i in range(3)])
    assert grown.reload(bigger)
    assert fired(run(grown, [ev("view", 103, item="a")]), "one_product") == [("one_product", "u1", 103.0)]
    smaller = tmp_path / "smaller.toml"
    smaller.write_text(text.replace("keyed_slots = 2", "keyed_slots = 1"))
    shrunk = Engine(rules)
    run(shrunk, [ev("view", 100 + i, item=x) for i, x in enumerate("ab" * 3)])  # a in key slot 0, b in 1
    assert shrunk.reload(smaller)
    got = run(shrunk, [ev("view", 110, item="a"), ev("view", 111, item="b")])
    assert fired(got, "one_product") == [("one_product", "u1", 110.0)]  # a kept its 3 views; b started again


@pytest.mark.parametrize("text, message, col", [
    ('[[rules]]\nname = "r"\non = ["view"]\nwhen = "count(view, 1m, by = itme) > 1"\nthen = "x"\n', "did you mean 'item'", 25),
    ('[segments]\nhot = "count(view, 1m, by = item) > 1"\n', "only event rules", 24),
    ('[[rules]]\nname = "r"\nwhen = "since(view, by = item) < 5s"\nthen = "x"\n', "only event rules", 21),
    ('[engine]\nkeyed_slots = 0\n', "keyed_slots is a whole number from 1 to 64", 15),
    ('[engine]\nkeyed_slots = 65\n', "keyed_slots is a whole number from 1 to 64", 15),
    ('[[rules]]\nname = "r"\non = ["view"]\nwhen = "count(view, 1m, item) > 1"\nthen = "x"\n', "expected 'by = item'", 25),
])
def test_load_errors_name_the_position(text, message, col):
    with pytest.raises(RulesError) as info:
        Engine.from_toml(text, "k.toml")
    assert message in str(info.value)
    assert "k.toml:" in str(info.value) and f":{col}:" in str(info.value), str(info.value)


def test_explain_shows_a_keyed_counter_needs_the_current_event(rules):
    engine = Engine(rules)
    run(engine, [ev("view", 100 + i, item="a") for i in range(4)])
    text = str(engine.explain("u1", "one_product"))
    assert "count(click|view|cart, 2m, by = item) (no value outside an event) >= 4" in text
    assert "depends on the event" in text


def test_against_an_obvious_model_of_lru_keys_and_bucketed_windows(rules):
    """A plain model: per viewer the 2 most recently used items (keyed_slots = 2), each with the
    bucket of every touch; count(click|view|cart, 2m, by = item) >= 4 on the same 40 seeded streams."""
    import random

    bucket = 120_000_000 // 12
    for seed in range(40):
        rnd = random.Random(seed)
        engine = Engine(rules)
        ts, lru, touches, evictions, want, got = 1000.0, {}, {}, 0, [], []
        for _ in range(rnd.randint(5, 80)):
            ts += rnd.choice([0.5, 3, 7, 11, 30])
            v, t, item = rnd.choice(["a", "b"]), rnd.choice(["view", "click", "cart", "like"]), rnd.choice(["x", "y", "z", None])
            e = {"type": t, "viewer": v, "room": "r1", "ts": ts, **({"item": item} if item else {})}
            got += [(a.viewer, a.ts, a.params["n"]) for a in engine.ingest(e) if a.rule == "one_product"]
            if t in ("view", "click", "cart") and item:
                keys = lru.setdefault(v, [])
                if item in keys:
                    keys.remove(item)
                elif len(keys) == 2:
                    touches.pop((v, keys.pop(0)), None)
                    evictions += 1
                keys.append(item)
                k = round(ts * 1e6) // bucket
                touches.setdefault((v, item), []).append(k)
                n = sum(1 for b in touches[(v, item)] if k - 11 <= b <= k)
                if n >= 4:
                    want.append((v, ts, float(n)))
        assert got == want, seed
        assert engine.stats()["keyed_evictions"] == evictions, seed


def test_use_numbers_renumbered_at_2_31_keep_the_lru_order(rules):
    """A viewer's keyed use numbers (features/keyed.py) start again from 1 when they reach
    USE_MASK; the same stream then fires and evicts exactly as without the renumbering."""
    import numpy as np

    from segengine.kernels.primitives import USE_MASK, renumber_uses

    VI = np.zeros((1, 4), np.int64)
    VI[0, :4] = [(7 << 32) | 5, (9 << 32) | int(USE_MASK), 0, (3 << 32) | 70]
    assert renumber_uses(VI, 0, np.int64(0), np.int64(4)) == 3
    assert VI[0].tolist() == [(7 << 32) | 1, (9 << 32) | 3, 0, (3 << 32) | 2]

    events = [ev("view", 100 + i, item=x) for i, x in enumerate("aabacbcaab")]
    plain, renumbered = Engine(rules), Engine(rules)
    want = run(plain, events)
    got = run(renumbered, events[:4])
    core = renumbered._core
    first = core.compiled.layout.vi.index("kkey:item[0]")
    row = core.store.VI[core.viewers.get("u1")]
    newest = max(range(2), key=lambda j: row[first + j] & USE_MASK)
    row[first + newest] = (row[first + newest] >> 32 << 32) | (USE_MASK - 1)  # renumbered two keyed events on
    row[core.compiled.layout.vi.index("kuse:item")] = USE_MASK - 1  # the highest number given, with it
    got += run(renumbered, events[4:])
    assert fired(got) == fired(want) and renumbered.stats()["keyed_evictions"] == plain.stats()["keyed_evictions"] > 0
    assert max(row[first + j] & USE_MASK for j in range(2)) == 7  # renumbered to 2, then 5 more


def test_item_and_category_keys_counted_by_one_event_each_read_their_own_slot(tmp_path):
    """The pass reads the key slots the update found, one per kind (features/keyed.py
    ``ev_kslots``): the third view's item is in slot 1 and its category in slot 0."""
    path = tmp_path / "both.toml"
    path.write_text('''[engine]
keyed_slots = 2
categories = ["beauty", "snacks"]

[[rules]]
name = "both"
on = ["view"]
when = "count(view, 2m, by = item) >= 1"
then = "show"
params = { item = "{count(view, 2m, by = item)}", cat = "{count(view, 2m, by = category)}" }
''', encoding="utf-8")
    engine = Engine.from_file(path)
    got = run(engine, [ev("view", 100, item="x", category="beauty"), ev("view", 101, item="y", category="snacks"),
                       ev("view", 102, item="y", category="beauty"), ev("view", 103, item="x", category="snacks"),
                       ev("view", 104, item="x", category="snacks")])
    assert [(a.params["item"], a.params["cat"]) for a in got] == [(1.0, 1.0), (1.0, 1.0), (2.0, 2.0), (2.0, 2.0), (3.0, 3.0)]


KEYED_COLUMN = ("kkey:", "khead:", "ksince:", "kcount:", "kn:", "ksum:")


def test_the_keyed_columns_end_the_rows_and_only_the_types_reading_them_load_them(tmp_path):
    """The columns before ``tail_from`` are what any event may read, the keyed ones (and the
    padding to whole lines) come after them; the C fast path starts loading the tail only for
    the types a keyed counter counts and the types of the rules reading one (a ``like`` here)."""
    path = tmp_path / "tail.toml"
    path.write_text(RULES.read_text(encoding="utf-8") + '''
[[rules]]
name = "liked_a_viewed_item"
on = ["like"]
when = "count(view, 2m, by = item) >= 1 and count(like, 1m) >= 1"
then = "thanks"
''', encoding="utf-8")
    engine = Engine.from_file(path)
    lay = engine._store.layout
    for m, itemsize in (("vi", 8), ("vf", 8), ("vn", 2)):
        cols = getattr(lay, m)
        head, tail = cols[: lay.tail_from[m]], cols[lay.tail_from[m]:]
        assert any(c.startswith(KEYED_COLUMN) for c in tail), m
        assert all(c.startswith(KEYED_COLUMN + ("pad",)) for c in tail), (m, tail)
        assert not any(c.startswith(KEYED_COLUMN) for c in head), (m, head)
        assert len(cols) * itemsize % 64 == 0, m  # whole lines
    assert lay.tail_types == {"click", "view", "cart", "pay", "like"}
    vi, vf, vn, mask = engine._store.prefetch_spec(engine._viewer_codes)
    assert (vi, vf, vn) == (lay.tail_from["vi"] * 8, lay.tail_from["vf"] * 8, lay.tail_from["vn"] * 2)
    assert {t for t, code in engine._viewer_codes.items() if mask >> code & 1} == lay.tail_types
    bare = Engine.from_file(Path(__file__).parent.parent / "examples" / "live_room.toml")._store
    assert bare.prefetch_spec({"view": 3})[3] == 0 and bare.layout.tail_from["vi"] == len(bare.layout.vi)


def test_viewer_rows_start_cache_lines_after_growth_and_restore(rules, tmp_path):
    engine = Engine(rules)
    n = 3000  # past the first capacity (1024): the arrays are replaced
    engine.ingest_many(Batch(type=["view"] * n, viewer=[f"u{i}" for i in range(n)], room="r1",
                             ts=[100.0 + i * 1e-3 for i in range(n)], item="x"))
    engine.snapshot(tmp_path / "s.snap")
    restored = Engine.restore(tmp_path / "s.snap")
    for store in (engine._store, restored._store):
        assert store.VI.shape[0] >= n
        assert [getattr(store, m).ctypes.data % 64 for m in ("VI", "VF", "VN")] == [0, 0, 0]


def test_highest_use_number_is_kept_beside_the_keys(rules):
    """``kuse:item`` holds the highest use number given (features/keyed.py): a held key's event
    takes the next number without walking the slots for the highest, and a new key takes the
    least recently used key's slot, so the held numbers stay distinct and below it."""
    from segengine.kernels.primitives import USE_MASK

    engine = Engine(rules)
    items = "abcabdefghijakalmb"  # more than keyed_slots distinct items: evictions
    run(engine, [ev("view", 100 + i, item=x) for i, x in enumerate(items)])
    core = engine._core
    lay = core.compiled.layout
    row = core.store.VI[core.viewers.get("u1")]
    first = lay.vi.index("kkey:item[0]")
    held = [int(row[first + j]) for j in range(core.rules.keyed_slots)]
    uses = [h & int(USE_MASK) for h in held if h]
    assert row[lay.vi.index("kuse:item")] == len(items) == max(uses)
    assert len(set(uses)) == len(uses)
    assert engine.stats()["keyed_evictions"] > 0
    # the held keys are the most recent distinct items, each holding its last use
    last = {x: i + 1 for i, x in enumerate(items)}
    newest = sorted(last, key=last.get)[-len(uses):]
    assert sorted(uses) == sorted(last[x] for x in newest)
