"""Engines are single-threaded: a call from a second thread while one runs is refused with
``ConcurrentUseError`` before it reads or changes anything; it never corrupts memory.

1. Hammer: four threads call every public entry of one engine for about a second, in a
   subprocess (a crash fails the test instead of killing pytest). Accepted + refused events
   == events sent, the counters agree, and replaying each thread's accepted calls on a fresh
   engine gives every call's actions and the same final state. (Before the guard: a
   segfault or ``malloc(): ... corrupted`` in most runs.)
2. Every public entry refuses a second thread while a call is in progress, and changes nothing.
3. Nested calls from the same thread (``ingest_many`` calls ``ingest``) keep working.
Each for the C guard and for the pure-Python one (a build without a C compiler).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from unittest import mock

import msgspec
import numpy as np
import pytest

import segengine
from segengine import Batch, ConcurrentUseError, Engine, Event
from segengine import engine as engine_module

from conftest import GOLDEN, ev

ROOT = Path(__file__).resolve().parent.parent

HAMMER = r"""
import json, sys, threading, time
from unittest import mock
import msgspec, numpy as np
from segengine import Batch, ConcurrentUseError, Engine, Event
from segengine import engine as engine_module
from segengine.rules.load import load_rules_file

if sys.argv[2] == "python":
    mock.patch.object(engine_module, "_fastpath", None).start()  # the pure-Python guard
rules = load_rules_file(sys.argv[1])
engine = Engine(rules)
SECONDS, THREADS, MAX_CALLS = 1.0, 4, 40_000
codes = {t: i for i, t in enumerate(rules.event_types)}
KINDS = ["like", "comment", "heartbeat", "share", "follow", "view", "cart"]

def event(k, i, ts):
    # thread k's own viewers and rooms; every ts in [1000, 1005): no timer falls due (the
    # shortest in golden.toml is 60 s), so the final state does not depend on the interleaving
    e = {"type": KINDS[i % len(KINDS)], "viewer": f"t{k}-v{i % 40}", "room": f"t{k}-r{i % 3}", "ts": ts}
    if e["type"] in ("view", "cart"):
        e.update(item=f"i{i % 5}", price=float(i % 7) + 0.5, category="snacks")
    return e

def call(k, n, ts):
    # the n-th call of thread k: (method, args, number of events)
    kind = n % 16
    if kind < 6:
        return "ingest", (event(k, n, ts),), 1
    if kind == 6:
        return "ingest", (msgspec.json.encode(event(k, n, ts)),), 1
    if kind == 7:
        return "ingest", (Event(**event(k, n, ts)),), 1
    if kind == 8:
        return "ingest_many", ([event(k, n * 100 + j, ts) for j in range(10)],), 10
    if kind == 9:  # >= 64 lines: the NDJSON batch kernel, which releases the GIL; new viewers
        # grow the state arrays (what another thread's kernel crashed on)
        lines = b"\n".join(msgspec.json.encode({**event(k, n * 100 + j, ts), "viewer": f"t{k}-n{n}-{j}"})
                           for j in range(80))
        return "ingest_many", (lines,), 80
    if kind == 10:
        evs = [event(k, n * 100 + j, ts) for j in range(70)]
        batch = Batch(type=np.array([codes[e["type"]] for e in evs]), viewer=np.array([e["viewer"] for e in evs]),
                      room=np.array([e["room"] for e in evs]), ts=np.array([e["ts"] for e in evs]))
        return "ingest_many", (batch,), 70
    if kind == 11:
        return "advance", (ts,), 0
    if kind == 12:
        return "set_profile", (f"t{k}-v{n % 40}",), 0
    if kind == 13:
        return "reload", (rules.text,), 0  # the running rules: returns False, changes nothing
    if kind == 14:
        return ["stats", "segment_size", "viewer", "explain"][n // 16 % 4], (), 0
    return "snapshot" if n % 400 == 15 else "stats", (), 0

def run(engine, k, method, args):
    if method == "set_profile":
        return engine.set_profile(*args, age=k)
    if method == "segment_size":
        return engine.segment_size("watcher", room=f"t{k}-r0")
    if method == "viewer":
        return engine.viewer(f"t{k}-v0") if engine._viewers.get(f"t{k}-v0") >= 0 else None
    if method == "explain":
        return str(engine.explain(f"t{k}-v0", "like3")) if engine._viewers.get(f"t{k}-v0") >= 0 else None
    if method == "snapshot":
        return engine.snapshot(sys.argv[3] + f"/t{k}.seg") and None
    return getattr(engine, method)(*args)

log = [[] for _ in range(THREADS)]  # per thread: its accepted calls and their results
counts = [{"sent": 0, "accepted": 0, "refused": 0, "refused_calls": 0, "other": []} for _ in range(THREADS)]
start = threading.Barrier(THREADS)

def work(k):
    c, n, ts = counts[k], 0, 1000.0
    start.wait()
    began = time.monotonic()
    stop = began + SECONDS
    # about a second, and on until the threads collided once and this one had a call accepted
    while n < MAX_CALLS and (time.monotonic() < stop or not c["accepted"]
                             or sum(x["refused_calls"] for x in counts) == 0):
        method, args, size = call(k, n, ts)
        c["sent"] += size
        try:
            result = run(engine, k, method, args)
        except ConcurrentUseError as err:
            assert err.owner != err.thread == threading.get_ident(), (err.owner, err.thread)
            c["refused"] += size
            c["refused_calls"] += 1
        except Exception as err:
            c["other"].append(repr(err))
        else:
            c["accepted"] += size
            log[k].append((n, method, args, result))
        n += 1
        ts += 0.0001  # <= 40,000 calls: ts < 1004
    c["seconds"] = time.monotonic() - began

threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
for t in threads: t.start()
for t in threads: t.join()

replay = Engine(rules)
mismatches = []
for k in range(THREADS):
    for n, method, args, result in log[k]:
        again = run(replay, k, method, args)
        # the writers' results are the thread's own; readings (stats, viewer and explain at the
        # engine's latest time) see the other threads too
        if method in ("ingest", "ingest_many", "advance", "set_profile", "reload") and again != result:
            mismatches.append(f"thread {k} call {n} {method}: {result!r} != {again!r}")

def observe(e):
    viewers = [f"t{k}-v{i}" for k in range(THREADS) for i in range(40)]
    rooms = [None] + [f"t{k}-r{i}" for k in range(THREADS) for i in range(3)]
    return {"stats": e.stats(), "viewers": [e.viewer(v) if e._viewers.get(v) >= 0 else None for v in viewers],
            "segments": [e.segment_size(s, room=r) for s in rules.segments for r in rooms]}

print(json.dumps({"counts": counts, "events": engine.stats()["events"], "rejected": engine.stats()["rejected"],
                  "mismatches": mismatches[:5], "same_state": observe(engine) == observe(replay),
                  "calls": [len(x) for x in log], "seconds": [c["seconds"] for c in counts]}, default=str))
"""


@pytest.mark.parametrize("guard", ["c", "python"])
def test_four_threads_hammering_one_engine(golden_rules, tmp_path, guard):
    if guard == "c" and engine_module._fastpath is None:
        pytest.skip("segengine.runtime._fastpath is not built")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", HAMMER, str(GOLDEN), guard, str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, f"the process died ({proc.returncode}):\n{proc.stderr[-3000:]}"
    out = json.loads(proc.stdout.splitlines()[-1])
    counts = out["counts"]
    assert [c["other"] for c in counts] == [[]] * 4
    sent = sum(c["sent"] for c in counts)
    accepted = sum(c["accepted"] for c in counts)
    assert accepted + sum(c["refused"] for c in counts) == sent
    assert sum(c["refused_calls"] for c in counts) > 0  # the threads did collide
    assert out["events"] == accepted and out["rejected"] == 0
    assert out["mismatches"] == []
    assert out["same_state"]
    assert min(out["calls"]) > 0


# --- every entry, deterministically ----------------------------------------------------------

def _engines(rules):
    yield "c", Engine(rules)
    with mock.patch.object(engine_module, "_fastpath", None):
        yield "python", Engine(rules)


def _entries(tmp_path: Path, rules):
    codes = {t: i for i, t in enumerate(rules.event_types)}
    one = ev("like", "u1", 1001.0)
    return {
        "ingest(dict)": lambda e: e.ingest(one),
        "ingest(bytes)": lambda e: e.ingest(msgspec.json.encode(one)),
        "ingest(Event)": lambda e: e.ingest(Event(**one)),
        "ingest(new viewer)": lambda e: e.ingest(ev("like", "new", 1001.0)),
        "ingest(room event)": lambda e: e.ingest({"type": "live_start", "room": "r1", "ts": 1001.0}),
        "ingest(bad)": lambda e: e.ingest({"type": "like"}),
        "Engine.ingest": lambda e: Engine.ingest(e, one),
        "ingest_many(list)": lambda e: e.ingest_many([one]),
        "ingest_many(NDJSON)": lambda e: e.ingest_many(b"\n".join([msgspec.json.encode(one)] * 70)),
        "ingest_many(Batch)": lambda e: e.ingest_many(Batch(type=np.array([codes["like"]]), viewer=np.array(["u1"]),
                                                           room="r1", ts=np.array([1001.0]))),
        "advance": lambda e: e.advance(5000.0),
        "set_profile": lambda e: e.set_profile("u1", age=3),
        "reload": lambda e: e.reload(rules.text),
        "snapshot": lambda e: e.snapshot(tmp_path / "s.seg"),
        "viewer": lambda e: e.viewer("u1"),
        "explain": lambda e: e.explain("u1", "like3"),
        "segment_size": lambda e: e.segment_size("watcher"),
        "stats": lambda e: e.stats(),
    }


def _in_thread(fn, *args):
    box = []

    def run():
        try:
            box.append(("ok", fn(*args)))
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            box.append(("raised", err))

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    assert box, "the call did not return"
    return box[0]


def test_every_entry_refuses_a_second_thread_and_changes_nothing(golden_rules, tmp_path):
    for kind, engine in _engines(golden_rules):
        engine.ingest(ev("enter", "u1", 1000.0))
        entries = _entries(tmp_path, golden_rules)
        before = engine.stats()
        with engine._guard:  # this thread is inside a call (as during a batch kernel, nogil)
            for name, entry in entries.items():
                status, err = _in_thread(entry, engine)
                assert status == "raised" and type(err) is ConcurrentUseError, (kind, name, err)
                assert isinstance(err, RuntimeError) and isinstance(err, segengine.SegengineError)
                assert err.owner == threading.get_ident() and err.thread != err.owner
                assert "single-threaded" in str(err) and "one engine per thread" in str(err) and "lock" in str(err)
        assert engine.stats() == before, kind
        assert not (tmp_path / "s.seg").exists()
        assert engine._guard.owner == 0
        # free again: the same calls from another thread now run
        for name, entry in entries.items():
            status, result = _in_thread(entry, engine)
            assert status == "ok" or name == "ingest(bad)", (kind, name, result)
        (tmp_path / "s.seg").unlink()


def test_nested_calls_from_the_owning_thread_run(golden_rules):
    for kind, engine in _engines(golden_rules):
        with engine._guard:
            with engine._guard:
                assert engine.ingest(ev("enter", "u1", 1000.0)) == []
                engine.ingest_many([ev("like", "u1", 1000.5 + i) for i in range(3)])  # calls ingest inside
                assert engine.stats()["events"] == 4
        assert engine._guard.owner == 0
        # an exception inside leaves the guard free
        with pytest.raises(segengine.EventError):
            engine.ingest_many([ev("like", "u1", 1010.0), {"type": "like"}])
        with pytest.raises(ValueError):
            engine.advance(float("nan"))
        assert engine._guard.owner == 0
        assert _in_thread(engine.stats)[0] == "ok"


def test_the_guard_survives_a_reload(golden_rules):
    """reload replaces the FastPath (with _bind_kernel, as here: no new rules to compile);
    the new one checks the same guard."""
    engine = Engine(golden_rules)
    guard, fast = engine._guard, engine._fast
    engine._bind_kernel()
    assert engine._guard is guard and (fast is None or engine._fast is not fast)
    with guard:
        status, err = _in_thread(engine.ingest, ev("like", "u1", 1000.0))
    assert status == "raised" and type(err) is ConcurrentUseError
