"""Id interning and the int-id index kernels read viewers through (single events look int
viewer ids up inside the kernel): the index must always agree with the dict."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from segengine import Engine
from segengine.runtime.interning import Interner, first_seen

from conftest import examples


def agrees(interner: Interner) -> None:
    index = interner.index
    for key, slot in interner.ids.items():
        if type(key) is int and 0 <= key < len(index):
            assert index[key] == slot, key
    covered = np.flatnonzero(index >= 0)
    assert all(interner.ids.get(int(k)) == index[k] for k in covered)
    # the count that lets growth copy instead of rebuilding must be exact
    assert interner._beyond == sum(1 for k in interner.ids if type(k) is int and k >= len(index))


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.one_of(st.integers(0, 5000), st.integers(0, 40_000), st.integers(0, 2**40), st.integers(-5, -1),
                          st.text(max_size=3)),
                max_size=80), st.data())
def test_index_follows_intern_release_and_reindex(keys, data):
    interner = Interner()
    seen = []
    interner.on_index = seen.append
    for key in keys:
        interner.intern(key)
    agrees(interner)
    live = sorted(set(interner.ids.values()))
    gone = sorted(data.draw(st.sets(st.sampled_from(live))) if live else [])
    interner.release(gone)
    agrees(interner)
    for key in keys[:5]:
        interner.intern(key)
    agrees(interner)
    interner.reindex()
    agrees(interner)
    assert seen and seen[-1] is interner.index  # the engine hears of every replacement
    assert len(interner.index) <= max(1024, 8 * (len(interner.ids) + 4096))  # never absurdly sparse


def test_int_ids_of_every_kind_give_the_actions_of_str_ids(example_rules):
    """Small ids (kernel lookup), ids beyond the index, negative ids and a forgotten-then-new
    id all behave exactly like the same viewers named by strings."""
    ids = [3, 70_000, 2**40, -7, 0]
    as_int, as_str = Engine(example_rules), Engine(example_rules)
    got_int, got_str = [], []
    t = 1000.0
    for rep in range(2):
        for v in ids:
            for kind in ("enter", "like", "like", "comment", "like", "click", "like"):
                t += 1.0
                e = {"type": kind, "viewer": v, "room": "r1", "ts": t}
                if kind == "click":
                    e.update(item="i1", category="digital", price=9.0)
                got_int += [(a.rule, a.action, a.ts) for a in as_int.ingest(e)]
                got_str += [(a.rule, a.action, a.ts) for a in as_str.ingest({**e, "viewer": f"v{v}"})]
        t += 600.0
        got_int += [(a.rule, a.action, a.ts) for a in as_int.advance(t)]
        got_str += [(a.rule, a.action, a.ts) for a in as_str.advance(t)]
    assert got_int == got_str and got_int
    assert as_int.viewer(70_000)["features"]["sessions"] == as_str.viewer("v70000")["features"]["sessions"] == 2


def test_snapshot_restore_rebuilds_the_index(example_rules, tmp_path):
    engine = Engine(example_rules)
    for v in range(3000):
        engine.ingest({"type": "enter", "viewer": v, "room": "r1", "ts": 10.0 + v * 0.001})
    engine.snapshot(tmp_path / "s.snap")
    back = Engine.restore(tmp_path / "s.snap")
    agrees(back._viewers)
    assert back._store.VIDS.shape[0] == len(back._viewers.index)
    before = back.stats()["viewers"]
    back.ingest({"type": "like", "viewer": 2999, "room": "r1", "ts": 20.0})
    assert back.stats()["viewers"] == before  # found through the index, not interned again


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.integers(-3, 3000), max_size=40), st.lists(st.one_of(st.integers(-3, 3000), st.integers(0, 2**40)),
                                                               max_size=60, unique=True), st.booleans())
def test_bulk_interning_gives_the_slots_of_one_by_one(before, batch, release_some):
    one, bulk = Interner(), Interner()
    for key in before:
        one.intern(key), bulk.intern(key)
    if release_some and one.ids:
        victims = sorted(set(one.ids.values()))[::2]
        one.release(victims), bulk.release(victims)
    fresh = [k for k in batch if k not in bulk.ids]
    for key in fresh:
        one.intern(key)
    bulk.intern_many_ints(np.array(fresh, dtype=np.int64))
    assert bulk.ids == one.ids and bulk.keys == one.keys and bulk.state == one.state
    agrees(bulk)


@settings(max_examples=examples(80), deadline=None)
@given(st.lists(st.one_of(st.integers(-50, 300), st.integers(-2**62, 2**62)), max_size=60))
def test_first_seen_is_first_appearance_order(values):
    arr = np.array(values, np.int64)
    expected = list(dict.fromkeys(values))  # a dict keeps first-insertion order
    assert first_seen(arr).tolist() == expected
