"""``NUMBA_DISABLE_JIT=1``: the engine runs as plain Python (step through a kernel, measure coverage).

Each check runs one subprocess with the variable set (Numba reads it at import):

* ``test_plain_python_matches_compiled``: a scenario that uses every public feature (ingest of
  a dict, an Event, JSON bytes and text, int and str viewer ids; ingest_many of NDJSON through
  the scanner, of short and long lists, of a Batch; advance, set_profile, viewer,
  segment_size, explain, snapshot and restore, reload, retention, stats) gives exactly the
  same result in plain Python as compiled (this process).
* ``test_suite_runs_as_plain_python``: the golden, property, batch, explain and reference
  (differential) tests, with at most ``EXAMPLES`` hypothesis examples per test
  (``SEGENGINE_MAX_EXAMPLES``) and a fixed hypothesis seed: deterministic, under a minute.

``python tests/test_nojit.py DIR`` prints the scenario's result as JSON (the subprocess side).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "live_room.toml"
V2 = Path(__file__).resolve().parent / "rules" / "live_room_v2.toml"
T0 = 1_700_000_000.0
DAY = 86_400.0
EXAMPLES = 15  # hypothesis examples per test in the plain Python run


def _plain_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": path, "PYTHONIOENCODING": "utf-8"}


def _tail(proc: subprocess.CompletedProcess, n: int = 60) -> str:
    return "\n".join((proc.stdout + proc.stderr).splitlines()[-n:])


def mode() -> dict[str, Any]:
    """How kernels run in this process: compiled (Numba dispatchers) or plain Python functions."""
    from segengine import Engine
    from segengine.compiler import compile_rules
    from segengine.kernels.primitives import PURE_PYTHON

    engine = Engine.from_file(EXAMPLE)
    module = compile_rules(engine.rules).module
    return {"pure_python": PURE_PYTHON, "kernels_are_functions": inspect.isfunction(module.ingest_event),
            "c_fast_path": not inspect.ismethod(engine.ingest)}  # the C path's ingest is a builtin


def scenario(tmp: Path) -> dict[str, Any]:
    """Every public feature once; returns everything observable as JSON-able values."""
    import msgspec
    import numpy as np

    from segengine import Batch, Engine, Event, EventError
    from segengine.testing.simulate import generate_ndjson

    engine = Engine.from_file(EXAMPLE, capacity=4)  # small: the arrays grow on the way
    acts: list[Any] = []
    out: dict[str, Any] = {}
    acts += engine.ingest({"type": "live_start", "room": "r1", "ts": T0})
    acts += engine.ingest({"type": "enter", "viewer": "u1", "room": "r1", "ts": T0 + 1.0})
    acts += engine.ingest(Event(type="view", viewer="u1", room="r1", ts=T0 + 2.0, item="tv", category="digital",
                                price=99.0))
    acts += engine.ingest(b'{"type":"cart","viewer":"u1","room":"r1","ts":1700000003.0,"item":"tv","price":99.0}')
    acts += engine.ingest('{"type":"enter","viewer":7,"room":"r1","ts":1700000004.0}')
    for k in range(8):  # an int id seen before: the kernel looks it up itself
        acts += engine.ingest({"type": "like", "viewer": 7, "room": "r1", "ts": T0 + 5.0 + k})
    try:
        engine.ingest({"type": "like", "room": "r1", "ts": T0 + 20.0})
    except EventError as err:
        out["rejected"] = str(err)
    engine.set_profile("u1", level="high", age=30)
    ndjson = generate_ndjson(viewers=30, hours=0.25, seed=1, start_ts=T0 + 30.0)
    acts += engine.ingest_many(ndjson)  # >= 64 lines: the NDJSON scanner
    t = T0 + 1000.0
    few = [{"type": "click", "viewer": f"s{k % 3}", "room": "r2", "ts": t + k, "item": "a", "category": "snacks"}
           for k in range(10)]
    acts += engine.ingest_many(few)  # one by one
    many = [Event(type="like" if k % 4 else "view", viewer=100 + k % 9, room="r2", ts=t + 20.0 + k / 4, item="b",
                  price=5.0) for k in range(80)]
    acts += engine.ingest_many(many)  # one batch
    codes = {name: i for i, name in enumerate(engine.rules.event_types)}
    n = 70
    batch = Batch(type=np.array([codes["comment" if k % 2 else "click"] for k in range(n)], np.int64),
                  viewer=np.arange(n, dtype=np.int64) % 7 + 200, room="r3", ts=t + 60.0 + np.arange(n) / 8.0,
                  item=np.full(n, 3, np.int64), category=np.arange(n, dtype=np.int64) % 4)
    acts += engine.ingest_many(batch)
    acts += engine.advance(T0 + 3600.0)
    out["viewer"] = engine.viewer("u1")
    out["segments"] = {name: [engine.segment_size(name), engine.segment_size(name, "r1")]
                       for name in engine.rules.segments}
    out["explain"] = [str(engine.explain(v, r.name)) for v in ("u1", 7) for r in engine.rules.rules]
    size = engine.snapshot(tmp / "engine.snap")
    restored = Engine.restore(tmp / "engine.snap")
    out["snapshot"] = [size > 0, restored.viewer("u1") == engine.viewer("u1"), restored.stats() == engine.stats()]
    acts += restored.ingest({"type": "pay", "viewer": "u1", "room": "r1", "ts": T0 + 3700.0, "amount": 99.0})
    out["reload"] = restored.reload(V2)
    acts += restored.ingest_many(generate_ndjson(viewers=10, hours=0.1, seed=2, start_ts=T0 + 3800.0))
    acts += restored.advance(T0 + 2 * 3600.0)
    acts += restored.ingest({"type": "enter", "viewer": "late", "room": "r9", "ts": T0 + 9 * DAY})  # retention
    try:
        out["viewer_after"] = restored.viewer("u1")
    except KeyError:
        out["viewer_after"] = "forgotten"
    out["stats"] = restored.stats()
    out["actions"] = msgspec.to_builtins(acts)
    return json.loads(json.dumps(out, default=str))


# --- tests ------------------------------------------------------------------------------------------
def test_kernels_run_compiled_unless_jit_is_disabled():
    m = mode()
    plain = bool(__import__("numba").config.DISABLE_JIT)
    assert m["pure_python"] is plain
    assert m["kernels_are_functions"] is plain
    if plain:
        assert not m["c_fast_path"]


def test_plain_python_divides_like_the_compiled_kernels(tmp_path):
    """x / 0 is inf or nan in a kernel (Numba's numpy error model), never ZeroDivisionError."""
    import math

    from segengine.compiler import _import  # the module loader (plain Python: rewrites every /)
    from segengine.kernels.primitives import true_divide

    assert true_divide(1.0, 0.0) == math.inf and true_divide(-2, 0) == -math.inf
    assert true_divide(1.0, -0.0) == -math.inf and math.isnan(true_divide(0.0, 0.0))
    assert math.isnan(true_divide(math.nan, 0.0)) and true_divide(3, 4) == 0.75
    path = tmp_path / "divides.py"
    path.write_text("def f(a, b):\n    x = a\n    x /= b\n    return (a / b, x)\n")
    module = _import(path, "segengine_test_divides")
    plain = bool(__import__("numba").config.DISABLE_JIT)
    if plain:
        assert module.f(1.0, 0.0) == (math.inf, math.inf)
        assert module.f.__code__.co_filename == str(path)  # a debugger shows the file as written
    else:
        with pytest.raises(ZeroDivisionError):  # compiled kernels never run this module's Python
            module.f(1.0, 0.0)


needs_jit = pytest.mark.skipif(bool(__import__("numba").config.DISABLE_JIT),
                               reason="already plain Python: these tests start a plain Python run")


@needs_jit
def test_plain_python_matches_compiled(example_rules, tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "compiled").mkdir()
    proc = subprocess.run([sys.executable, __file__, str(tmp_path / "plain")], capture_output=True, text=True,
                          cwd=ROOT, env=_plain_env(), timeout=300)
    assert proc.returncode == 0, _tail(proc)
    plain = json.loads(proc.stdout)
    assert plain["mode"] == {"pure_python": True, "kernels_are_functions": True, "c_fast_path": False}
    compiled = scenario(tmp_path / "compiled")
    assert compiled["actions"], "the scenario fires rules"
    assert compiled["snapshot"] == [True, True, True] and compiled["reload"] is True
    assert compiled["stats"]["expired_viewers"] > 0, "the scenario reaches a retention sweep"
    for key, value in compiled.items():
        assert plain["result"][key] == value, key


@needs_jit
def test_suite_runs_as_plain_python():
    tests = ["tests/test_golden.py", "tests/test_properties.py", "tests/test_differential.py", "tests/test_batch.py",
             "tests/test_explain.py", "tests/test_text.py", "tests/test_nojit.py::test_kernels_run_compiled_unless_jit_is_disabled",
             "tests/test_nojit.py::test_plain_python_divides_like_the_compiled_kernels"]
    env = {**_plain_env(), "SEGENGINE_MAX_EXAMPLES": str(EXAMPLES)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           "--hypothesis-seed=0", *tests,
                           "--deselect", "tests/test_text.py::test_the_c_path_computes_new_texts_without_the_python_path"], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)
    assert proc.returncode == 0, _tail(proc)
    assert " passed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1], _tail(proc)


if __name__ == "__main__":
    print(json.dumps({"mode": mode(), "result": scenario(Path(sys.argv[1]))}))
