"""Replay of the standard workload one ``ingest`` at a time, with ``advance`` every simulated
second, against the pure-Python baseline doing the same. Target: >= 1 M events/s."""

from __future__ import annotations

import gc
import time

import msgspec

from segengine import Engine

from .common import Result, cli, median_of
from .data import RULES, workload


def feed(ingest, advance, events, next_tick: float) -> float:
    """Feed ``events`` one by one, advancing each simulated second from ``next_tick``; returns
    the next second to advance to (a replay fed in parts continues from it)."""
    for e in events:
        ts = e["ts"]
        while ts >= next_tick:
            advance(next_tick)
            next_tick += 1.0
        ingest(e)
    return next_tick


def replay(ingest, advance, events) -> float:
    """Events per second of feeding ``events`` one by one, advancing each simulated second."""
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        feed(ingest, advance, events, events[0]["ts"] + 1.0)
        return len(events) / (time.perf_counter() - started)
    finally:
        gc.enable()


def run(quick: bool) -> list[Result]:
    viewers = 2_000 if quick else 10_000
    hours = 0.5 if quick else 3.0
    events = msgspec.json.decode(b"[" + workload(viewers, hours).strip().replace(b"\n", b",") + b"]")
    def once() -> float:  # a fresh engine each time, every kernel loaded: no compile inside the timing
        engine = Engine.from_file(RULES).warmup()
        return replay(engine.ingest, engine.advance, events)

    ours = median_of(once, repeat=1 if quick else 3, warmup=0)
    result = Result("bench_replay", "replay one by one + advance/s", ours, "events/s", ">= 1 M events/s", ours >= 1e6,
                    params={"viewers": viewers, "hours": hours, "events": len(events)})
    try:
        from .baseline import BaselineEngine
    except ImportError:
        return [result]
    def base_once() -> float:  # a fresh baseline each time, as many replays as segengine's
        base = BaselineEngine()
        return replay(base.ingest, base.advance, events)

    result.baseline = median_of(base_once, repeat=1 if quick else 3, warmup=0)
    result.ratio = ours / result.baseline
    return [result]


if __name__ == "__main__":
    raise SystemExit(cli("bench_replay", run))
