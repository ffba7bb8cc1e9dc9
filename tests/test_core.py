"""EngineCore and its parts: the public API the operations use, and each part's saved state.

The operations (snapshot, reload, explain, retention) take an ``EngineCore``, not an
``Engine``; these tests run them on the core an engine wraps and check each part's
``to_state`` / ``load_state`` round trip on its own.
"""

from __future__ import annotations

import math

import numpy as np

from segengine import Engine
from segengine.kernels.primitives import BY_VIEWER_ID, UNKNOWN_VIEWER
from segengine.ops import snapshot as snap
from segengine.ops.explain import FiringLog, explain
from segengine.ops.reload import reload
from segengine.ops.retention import Retention
from segengine.rules.load import load_rules
from segengine.runtime.core import EngineCore
from segengine.runtime.interning import SLOT_FREE, Interner

from conftest import ev


def _played(rules) -> Engine:
    engine = Engine(rules)
    for i in range(40):
        viewer = i if i % 3 else f"s{i}"
        engine.ingest(ev("enter", viewer, 1000.0 + i, room=f"r{i % 3}"))
        engine.ingest(ev("like", viewer, 1000.5 + i, room=f"r{i % 3}"))
    engine.advance(1400.0)
    return engine


def test_slot_markers_are_distinct():
    """BY_VIEWER_ID is an argument (look the int id up), UNKNOWN_VIEWER a result (not there):
    neither may be mistaken for the other, for a room event's slot (-1) or for a row count."""
    assert len({BY_VIEWER_ID, UNKNOWN_VIEWER, -1}) == 3
    assert BY_VIEWER_ID < 0 and UNKNOWN_VIEWER < 0


def test_interner_round_trip():
    interner = Interner()
    for key in ["a", 5, "b", 70_000, 7, "c"]:
        interner.intern(key)
    interner.release([1, 3])  # 5 and 70_000
    interner.intern(9)  # takes slot 1 back
    fresh = Interner()
    fresh.load_state(interner.to_state())
    assert fresh.keys == interner.keys and fresh.ids == interner.ids
    assert fresh.free == interner.free == [3] and fresh.state[3] == SLOT_FREE
    assert len(fresh.index) == len(interner.index)
    assert np.array_equal(fresh.int_slots(np.array([9, 7, 5])), [1, 4, -1])
    strings = Interner()
    strings.load_state(interner.to_state(with_slots=False) | {"keys": ["x", "y"]})
    assert strings.ids == {"x": 0, "y": 1} and strings.free == []


def test_firing_log_round_trip_keeps_the_eviction_order():
    log = FiringLog(maxsize=3)
    log.record_many([("u1", "a", 1.0), ("u2", "a", 2.0), ("u1", "b", 3.0)])
    log.record_many([("u1", "a", 4.0)])  # u1/a is now the most recent
    log.forget_rules(["b"])
    fresh = FiringLog()
    fresh.load_state(log.to_state())
    assert fresh.to_state() == log.to_state()
    fresh.record_many([("u3", "c", 5.0)])  # evicts the least recently fired: u2/a
    assert fresh.last("u2", "a") is None and fresh.last("u1", "a") == 4.0 and fresh.evicted == {"a"}


def test_retention_round_trip_restarts_the_schedule():
    retention = Retention()
    retention.last, retention.expired_viewers, retention.expired_rooms, retention.due = 60_000_000, 4, 1, 119.0
    fresh = Retention()
    fresh.load_state(retention.to_state())
    assert fresh.to_state() == retention.to_state() == {"last": 60_000_000, "expired_viewers": 4, "expired_rooms": 1}
    assert fresh.due == -math.inf


def test_a_snapshot_is_the_cores_parts_and_arrays(golden_rules, tmp_path):
    core = _played(golden_rules)._core
    path = tmp_path / "s.seg"
    snap.save(core, path)
    loaded = snap.load(path)
    assert isinstance(loaded, EngineCore)
    assert loaded.save_parts() == core.save_parts()
    ours = core.store.saved_arrays(len(core.viewers), len(core.rooms))
    theirs = loaded.store.saved_arrays(len(loaded.viewers), len(loaded.rooms))
    for (name, a, cap_a), (other, b, cap_b) in zip(ours, theirs, strict=True):
        assert name == other and cap_a == cap_b and np.array_equal(a, b), name


def test_explain_runs_on_the_core(golden_rules):
    engine = _played(golden_rules)
    for rule in ("dwell_5m", "budgeted", "like3"):
        assert explain(engine._core, 4, rule) == engine.explain(4, rule)


def test_swap_tells_the_facade(example_rules):
    engine = _played(example_rules)
    core = engine._core
    calls = []
    adopt = core.on_swap
    core.on_swap = lambda: (calls.append(core.compiled), adopt())
    assert not reload(core, example_rules.text)  # the same text: nothing swapped
    assert calls == []
    longer = load_rules(example_rules.text.replace("[engine]\n", '[engine]\nretention = "10m"\n', 1))
    assert reload(core, longer.text)
    assert calls == [core.compiled] and core.rules.fingerprint == longer.fingerprint
    assert engine.rules is core.rules and engine._store is core.store  # the facade took the new parts
    assert core.retention.due == -math.inf  # the sweep period follows the new retention
    assert engine.ingest(ev("like", 4, 1500.0, room="r1")) == []
