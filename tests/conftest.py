"""Shared fixtures: rules files are loaded and compiled once per session (Numba compiles are slow);
each test gets a fresh Engine, which only allocates arrays."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Compile cache: reuse across runs, but never write into the user's home during CI.
os.environ.setdefault("SEGENGINE_CACHE_DIR", str(Path(tempfile.gettempdir()) / "segengine-test-cache"))

from hypothesis import HealthCheck, Phase, settings  # noqa: E402

from segengine import Engine  # noqa: E402
from segengine.rules.load import RuleSet, load_rules_file  # noqa: E402

# --- hypothesis profiles ------------------------------------------------------------------------
# "ci" (the default): derandomized, so every run of `python -m pytest -q` tries the same examples
# on every machine, and no example database, so an old .hypothesis/ changes nothing.
# "dev": random examples at the same counts, failures kept in .hypothesis/ and replayed first.
# "thorough": ten times the examples, random, for hunting bugs (minutes per property test).
# Pick one with HYPOTHESIS_PROFILE=NAME (or pytest --hypothesis-profile=NAME).
#
# Every profile prints a failing example, with the @reproduce_failure blob: one bug per test
# (report_multiple_bugs=False), no explain phase (it re-runs slow tests many times), and shrinking
# bounded by SHRINK_SECONDS (hypothesis' own bound is 5 minutes; it documents the constant as
# monkeypatchable for this purpose).
#
# Tests state their example counts as ``examples(n)``: n under "ci" and "dev", 10 n under "thorough".
SHRINK_SECONDS = 60
_BASE_EXAMPLES = 100
_COMMON = dict(deadline=None, print_blob=True, report_multiple_bugs=False,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                      HealthCheck.data_too_large])
_NO_EXPLAIN = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)
settings.register_profile("ci", derandomize=True, database=None, max_examples=_BASE_EXAMPLES,
                          phases=_NO_EXPLAIN, **_COMMON)
settings.register_profile("dev", max_examples=_BASE_EXAMPLES, phases=_NO_EXPLAIN, **_COMMON)
settings.register_profile("thorough", max_examples=10 * _BASE_EXAMPLES, phases=_NO_EXPLAIN, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
try:  # hypothesis.internal is not public API: if the constant moves, keep hypothesis' own bound
    from hypothesis.internal.conjecture import engine as _hypothesis_engine
except ImportError:  # pragma: no cover
    _hypothesis_engine = None
if isinstance(getattr(_hypothesis_engine, "MAX_SHRINKING_SECONDS", None), (int, float)):
    _hypothesis_engine.MAX_SHRINKING_SECONDS = min(_hypothesis_engine.MAX_SHRINKING_SECONDS, SHRINK_SECONDS)


def examples(n: int) -> int:
    """A test's example count under the loaded profile: ``n`` for "ci" and "dev", more for "thorough".

    Read when the test module is imported, after pytest's --hypothesis-profile was applied.
    ``SEGENGINE_MAX_EXAMPLES=N`` caps it (tests/test_nojit.py: the plain-Python run)."""
    count = max(1, n * settings.default.max_examples // _BASE_EXAMPLES)
    cap = os.environ.get("SEGENGINE_MAX_EXAMPLES")
    return min(count, int(cap)) if cap else count


ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "rules" / "golden.toml"
EXAMPLE = ROOT / "examples" / "live_room.toml"


@pytest.fixture(scope="session")
def golden_rules() -> RuleSet:
    rules = load_rules_file(GOLDEN)
    Engine(rules).warmup()
    return rules


@pytest.fixture(scope="session")
def example_rules() -> RuleSet:
    rules = load_rules_file(EXAMPLE)
    Engine(rules).warmup()
    return rules


@pytest.fixture
def golden(golden_rules) -> Engine:
    return Engine(golden_rules)


@pytest.fixture
def live(example_rules) -> Engine:
    return Engine(example_rules)


def ev(type: str, viewer="u1", ts: float = 1000.0, room: str = "r1", **fields) -> dict:
    """A viewer event as a dict (the shape backends send)."""
    return {"type": type, "viewer": viewer, "room": room, "ts": float(ts), **fields}


def named(actions, rule: str) -> list:
    """Actions of one rule, as (action, ts) pairs."""
    return [(a.action, a.ts) for a in actions if a.rule == rule]


def heartbeats(engine: Engine, viewer, start: float, end: float, every: float = 30.0, room: str = "r1") -> list:
    """Keep a viewer present with heartbeats in (start, end]; returns all actions."""
    out = []
    t = start + every
    while t <= end:
        out += engine.ingest(ev("heartbeat", viewer, t, room))
        t += every
    return out
