"""The rules file the room tests share (compiled once per process) and helpers."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from segengine import Engine
from segengine.rules.load import RuleSet, load_rules_file

ROOM_RULES = Path(__file__).resolve().parent / "rules" / "room.toml"


@lru_cache(maxsize=1)
def room_rules() -> RuleSet:
    rules = load_rules_file(ROOM_RULES)
    Engine(rules).warmup()
    return rules


def engine() -> Engine:
    return Engine(room_rules())


def ev(type: str, viewer=None, room: str = "r1", ts: float = 0.0, **fields) -> dict:
    out = {"type": type, "room": room, "ts": float(ts), **fields}
    if viewer is not None:
        out["viewer"] = viewer
    return out


def rows(actions) -> list[tuple]:
    return [(a.rule, a.action, a.viewer, a.room, a.ts) for a in actions]
