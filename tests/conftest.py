"""Shared fixtures: rules files are loaded and compiled once per session (Numba compiles are slow);
each test gets a fresh Engine, which only allocates arrays."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Compile cache: reuse across runs, but never write into the user's home during CI.
os.environ.setdefault("SEGENGINE_CACHE_DIR", str(Path(tempfile.gettempdir()) / "segengine-test-cache"))

from segengine import Engine  # noqa: E402
from segengine.rules.load import RuleSet, load_rules_file  # noqa: E402

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
