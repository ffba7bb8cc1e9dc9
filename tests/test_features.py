"""The feature registry (segengine/features): every built-in is declared there once, and one check
set runs over every registered feature.

The checks reuse tests/rules/golden.toml (compiled once per session, tests/conftest.py), which
names every built-in: ``test_the_golden_rules_read_every_feature`` fails for a new feature until
the golden file reads it, so the check set always covers the whole registry.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path
from unittest import mock

import pytest

from segengine import Engine, features
from segengine.compiler import layout as layout_module
from segengine.compiler.layout import RI_CORE, VI_CORE, build_layout
from segengine.features.base import CONST, NEVER, Feature
from segengine.rules import ast, check
from segengine.rules.load import load_rules

ROOT = Path(__file__).resolve().parent.parent
FEATURES = {f.key: f for f in features.REGISTRY}
VIEWERS = ("u1", "u2", "u3", 4)


def _stream(rules, seed: int = 15, n: int = 160) -> list[dict]:
    """A deterministic stream of every event type, fields included, for a few viewers in two rooms."""
    rng = random.Random(seed)
    types = [t for t in rules.event_types if t not in ("live_start", "live_end")]
    ts, out = 1000.0, []
    for i in range(n):
        ts += rng.choice((0.0, 0.5, 3.0, 20.0, 70.0, 200.0))
        typ = "enter" if i < 4 else rng.choice(types)
        e = {"type": typ, "viewer": VIEWERS[i % 4] if i < 4 else rng.choice(VIEWERS),
             "room": rng.choice(("r1", "r1", "r2")), "ts": ts}
        if typ in ("view", "click", "cart", "uncart", "pay", "checkout"):
            e["item"] = rng.choice(("a", "b"))
            e["category"] = rng.choice(("snacks", "digital", "toys"))
            e["price"] = rng.choice((1.0, 9.5, 30.0))
        if typ in ("pay", "refund") and rng.random() < 0.7:
            e["amount"] = rng.choice((5.0, 12.0))
        out.append(e)
    return out


def _labels(feature: Feature, rules) -> list[str]:
    return [label for label, _ in feature.readouts(rules, build_layout(rules))]


def _features_of(engine: Engine, feature: Feature) -> dict:
    labels = _labels(feature, engine.rules)
    return {v: {k: engine.viewer(v)["features"][k] for k in labels} for v in VIEWERS}


@pytest.fixture(params=list(FEATURES), ids=list(FEATURES))
def feature(request) -> Feature:
    return FEATURES[request.param]


# --- one home: the registry declares every built-in --------------------------------------------------

def test_every_checker_builtin_comes_from_the_registry():
    assert check.BUILTINS == features.builtin_types()
    for name, kind in check.BUILTINS.items():
        owner = features.feature_of(ast.Name(name, kind="builtin"))
        assert owner is not None and owner.names[name] == kind
        assert name in owner.inputs, f"{name}: which event types change it?"
    claimed = {node_type for f in features.REGISTRY for node_type in f.nodes}
    assert claimed == {ast.Count, ast.Since, ast.Agg, ast.Interest, ast.RoomValue, ast.ActiveHours}  # every feature function of the language
    # a syntax node has one owner (count(...) and count(..., by = item) are two features)
    for node in (ast.Count(("view",), 60.0), ast.Count(("view",), None, by="item"), ast.Since(("view",)),
                 ast.Since(("view",), by="category"), ast.Agg("sum", "amount", ("pay",), 60.0),
                 ast.Agg("avg", "price", ("view",), 60.0, by="item"), ast.Interest("snacks"), ast.RoomValue("audience"), ast.ActiveHours(22.0, 4.0)):
        owners = [f.key for f in features.REGISTRY if f.nodes and f.owns(node)]
        assert len(owners) == 1, (ast.to_source(node), owners)


def test_every_module_of_the_package_registers_its_features():
    modules = {p.stem for p in (ROOT / "segengine" / "features").glob("*.py")} - {"__init__", "base"}
    assert modules == {type(f).__module__.rsplit(".", 1)[1] for f in features.REGISTRY}


def test_the_compiler_names_no_builtin_but_core_columns():
    """Adding a feature touches no generator: the built-in names appear only in their modules
    (a few are also the names of core state columns that every viewer has)."""
    core = set(VI_CORE) | set(RI_CORE) | {"now"}  # now: also the kernels' local for the current time
    for rel in ("compiler/exprgen.py", "compiler/codegen.py", "compiler/explaingen.py", "compiler/layout.py",
                "rules/check.py", "ops/explain.py"):
        text = (ROOT / "segengine" / rel).read_text(encoding="utf-8")
        for name in set(features.builtin_types()) - core:
            assert not re.search(rf"[\"']{name}[\"']", text), f"{rel} names the built-in {name!r}"


def test_the_golden_rules_read_every_feature(golden_rules, feature):
    nodes = [n for root in [*golden_rules.segments.values(), *(r.when for r in golden_rules.rules)]
             for n in ast.walk(root)]
    names = {n.name for n in nodes if isinstance(n, ast.Name)}
    assert feature.used(names, nodes), f"add a rule reading {feature.key} to tests/rules/golden.toml"


# --- the check set, over every registered feature ----------------------------------------------------

def test_readouts_report_the_feature(golden_rules, feature):
    engine = Engine(golden_rules)
    for e in _stream(golden_rules):
        engine.ingest(e)
    types = features.builtin_types()
    for viewer, values in _features_of(engine, feature).items():
        for label, value in values.items():
            want = {"bool": bool, "str": str}.get(types.get(label, "num"), float)
            assert isinstance(value, want), (viewer, label, value)


def test_batch_equals_one_by_one(golden_rules, feature):
    events = _stream(golden_rules)
    one, batch = Engine(golden_rules), Engine(golden_rules)
    singles = [a for e in events for a in one.ingest(e)]
    assert batch.ingest_many(events) == singles
    assert _features_of(batch, feature) == _features_of(one, feature)
    assert one.advance(events[-1]["ts"] + 900) == batch.advance(events[-1]["ts"] + 900)
    assert _features_of(batch, feature) == _features_of(one, feature)


def test_snapshot_round_trips(golden_rules, feature, tmp_path):
    events = _stream(golden_rules)
    original = Engine(golden_rules)
    for e in events[:100]:
        original.ingest(e)
    original.snapshot(tmp_path / "s.snap")
    restored = Engine.restore(tmp_path / "s.snap")
    assert _features_of(restored, feature) == _features_of(original, feature)
    for e in events[100:]:
        assert restored.ingest(e) == original.ingest(e)
    assert _features_of(restored, feature) == _features_of(original, feature)


@pytest.fixture(scope="module")
def golden_every_pass(golden_rules):
    """The golden rules compiled so that every pass evaluates every state rule (as in
    tests/test_properties.py: the same source, so the same compiled module)."""
    with mock.patch.object(layout_module, "SKIP_UNCHANGED", False):
        rules = load_rules(golden_rules.text, golden_rules.filename)
        Engine(rules)  # builds the layout under the patch
    return rules


def test_declared_inputs_skip_no_change(golden_rules, golden_every_pass, feature):
    """A state rule is skipped while no event of its features' ``inputs`` comes: the same actions
    and values as evaluating every rule at every pass (a missing input type fails here)."""
    events = _stream(golden_rules, seed=16, n=240)
    skipping, plain = Engine(golden_rules), Engine(golden_every_pass)
    for e in events:
        assert skipping.ingest(e) == plain.ingest(e), e
    assert skipping.advance(events[-1]["ts"] + 900) == plain.advance(events[-1]["ts"] + 900)
    assert _features_of(skipping, feature) == _features_of(plain, feature)


def _values(value):
    yield value
    for child in value.children:
        yield from _values(child)


def test_explain_agrees_with_the_kernel(golden_rules, feature):
    if not _labels(feature, golden_rules):
        pytest.skip(f"{feature.key} has no viewer() readout: its values need the current event (tests/test_{feature.key}.py)")
    engine = Engine(golden_rules)
    events = _stream(golden_rules)
    compared, done = 0, 0
    for cut in (60, len(events)):  # mid-stream and at its end
        for e in events[done:cut]:
            engine.ingest(e)
        done = cut
        for viewer, readouts in _features_of(engine, feature).items():
            for rule in golden_rules.rules:
                for v in _values(engine.explain(viewer, rule.name).condition):
                    if v.text in readouts:
                        want = readouts[v.text]
                        assert v.value == want or (isinstance(want, float) and math.isclose(v.value, want)), \
                            (viewer, rule.name, v.text, v.value, want)
                        compared += 1
    assert compared, f"no rule of the golden file shows {feature.key} in explain"


# --- adding a feature is one module ---------------------------------------------------------------

class _Likes(Feature):
    """What a new module of segengine/features/ would declare: ``likes``, the likes of a viewer."""

    key = "test_likes"
    rank = 1000
    names = {"likes": "num"}  # noqa: RUF012 (as the features' modules declare them)
    inputs = {"likes": ("like",)}  # noqa: RUF012

    def columns(self, rs, lay, nodes, names) -> None:
        if self.used(names, nodes):
            lay.add("vn", "likes")

    def on(self, k):
        if "likes" not in k.lay.vn:
            return {}
        col = k.col("vn", "likes")
        return {"like": [f"if VN[slot, {col}] < COUNT_MAX:", f"    VN[slot, {col}] += 1"]}

    def number(self, gen, node, v):
        gen.emit(f"{v} = float(VN[slot, {gen.col('vn', 'likes')}])")
        return v, "0.0", CONST, NEVER


def test_a_new_feature_needs_no_other_change(monkeypatch):
    """Registering a feature (what its module's FEATURES does) is all the checker, the compiler,
    viewer() and explain need."""
    likes = _Likes()
    monkeypatch.setattr(features, "REGISTRY", [*features.REGISTRY, likes])
    monkeypatch.setitem(features._BY_NAME, "likes", likes)
    monkeypatch.setitem(check.BUILTINS, "likes", "num")
    engine = Engine.from_toml('[[rules]]\nname = "fan"\nwhen = "likes >= 2 and dwell > 1s"\nthen = "thanks"\n')
    assert "VN[slot, VN_LIKES] += 1" in engine.kernel_source
    assert engine.ingest({"type": "like", "viewer": "u1", "room": "r1", "ts": 10.0}) == []
    engine.ingest({"type": "like", "viewer": "u1", "room": "r1", "ts": 10.5})
    assert [(a.action, a.ts) for a in engine.advance(20.0)] == [("thanks", 11.0)]
    assert engine.viewer("u1")["features"]["likes"] == 2.0
    shown = {v.text: v.value for v in _values(engine.explain("u1", "fan").condition)}
    assert shown["likes"] == 2.0
