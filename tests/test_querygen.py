"""Query kernels (``segment_count``, ``readout``, ``explain_values``) split into small kernels.

One generated function per query made cold compiles superlinear in the number of segments
(35 s of CPU for ``segment_count`` of a 62-segment file). The generator now groups segments
(and explain's rules, and readout values) into kernels of about ``QUERY_CHUNK_LINES`` lines,
each compiled on its first call. These tests check that no query kernel grows with the rules
file (no compile) and that a module split into many kernels answers exactly as the session's
module does, on the same engine state (only the small query kernels compile).
"""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest
from conftest import ev

from segengine import Engine
from segengine.compiler import _import, _write_module, codegen
from segengine.compiler.codegen import generate
from segengine.compiler.explaingen import add_explain, explain_nodes
from segengine.rules.load import load_rules
from segengine.compiler.layout import build_layout

T0 = 1_700_000_000.0


def _many_segments(n: int) -> str:
    """A rules file with ``n`` segments, each built on the previous ones (as generated files are)."""
    lines = ['[profile]', 'age = "int"', "", "[segments]"]
    for i in range(n):
        own = ["dwell > 5m", "count(view|click, 1m) >= 2", "sum(price, cart, 10m) > 30", "age >= 30",
               "since(like) < 20s", "interest(x) > 1.5 or spend > 100"][i % 6]
        ref = f" or (s{i // 4} and not present)" if i >= 4 else ""
        lines.append(f's{i} = "({own}){ref}"')
    lines += ["", "[engine]", 'categories = ["x"]']
    return "\n".join(lines) + "\n"


def _functions(source: str) -> dict[str, int]:
    """Lines of each top-level function of a generated module."""
    out = {}
    for chunk in re.split(r"\n(?=@njit|def )", source):
        m = re.search(r"^def (\w+)", chunk, re.MULTILINE)
        if m:
            out[m.group(1)] = len(chunk.rstrip().splitlines())
    return out


def test_query_kernels_stay_small_with_many_segments():
    rs = load_rules(_many_segments(80), "many.toml")
    layout = build_layout(rs)
    gen = generate(rs, layout)
    add_explain(gen, rs, layout)
    sizes = _functions(gen.source)
    limit = 300  # QUERY_CHUNK_LINES (200), one part overshooting it, the matrix views and the loop
    for name, lines in sizes.items():
        if re.fullmatch(r"_?(segment_count|readout|explain_values)\d*", name):
            assert lines <= limit, (name, lines)
    assert sum(name.startswith("_segment_count") for name in sizes) >= 2
    assert sum(name.startswith("_readout") for name in sizes) >= 2


def _stream(rnd: random.Random) -> list[dict]:
    types = ["enter", "view", "click", "like", "cart", "pay", "follow", "heartbeat", "leave", "comment"]
    t, out = T0, []
    for _ in range(300):
        t += rnd.choice([0.5, 1, 5, 20, 60])
        typ = rnd.choice(types)
        e = ev(typ, f"v{rnd.randint(1, 12)}", t, rnd.choice(["r1", "r1", "r2"]))
        if typ in ("view", "click", "cart", "pay"):
            e.update(item=rnd.choice(["a", "b"]), price=rnd.choice([10.0, 50.0]), category=rnd.choice(["snacks", "digital"]))
        if typ == "pay":
            e["amount"] = 30.0
        out.append(e)
    return out


@pytest.fixture(scope="module")
def split_module(golden_rules, tmp_path_factory, monkeypatch_module):
    """The golden rules' module generated with tiny query kernels (many of each), imported."""
    monkeypatch_module.setattr(codegen, "QUERY_CHUNK_LINES", 25)
    layout = build_layout(golden_rules)
    gen = generate(golden_rules, layout)
    add_explain(gen, golden_rules, layout)
    for table in ("_SEGMENT_COUNT_KERNELS", "def _readout1(", "_EXPLAIN_VALUES_KERNELS"):
        assert table in gen.source
    path = _write_module(tmp_path_factory.mktemp("split"), "segengine_rules_split_test", gen.source)
    return gen, _import(path, "segengine_rules_split_test")


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_split_kernels_answer_as_one(golden_rules, split_module):
    gen, mod = split_module
    engine = Engine(golden_rules)
    rnd = random.Random(5)
    engine.set_profile("v1", age=25, level="high")
    engine.set_profile("v2", age=40, level="low")
    stream = _stream(rnd)
    checked = 0
    for k, e in enumerate(stream):
        engine.ingest(e)
        if k % 60 != 59:
            continue
        tab, now, n = engine._store.tab, engine._now_us(), len(engine._viewers)
        ours = engine._compiled.generated
        assert [r.label for r in gen.readouts] == [r.label for r in ours.readouts]
        for seg, name in enumerate(golden_rules.segments):
            for room in (None, "r1", "r2"):
                slot = -1 if room is None else engine._rooms.get(room)
                assert mod.segment_count(tab, seg, now, slot, n, np.empty(0, np.int64)) == engine.segment_size(name, room), (name, room)
        for viewer in [f"v{i}" for i in range(1, 13)]:
            slot = engine._viewers.get(viewer)
            if slot < 0:
                continue
            a = np.zeros(len(ours.readouts))
            b = np.zeros(len(ours.readouts))
            assert engine._mod.readout(tab, slot, now, a) == mod.readout(tab, slot, now, b) == len(a)
            assert all(_same(x, y) for x, y in zip(a.tolist(), b.tolist())), (viewer, a, b)
            for r, rule in enumerate(golden_rules.rules):
                size = len(explain_nodes(golden_rules, rule))
                a, b = np.zeros(size), np.zeros(size)
                assert engine._mod.explain_values(tab, slot, now, r, a) == mod.explain_values(tab, slot, now, r, b)
                assert all(_same(x, y) for x, y in zip(a.tolist(), b.tolist())), (viewer, rule.name)
            checked += 1
    assert checked >= 10
