"""Holdouts (segengine/guards/holdout.py): what ``holdout = 0.1`` on every rule costs a single ``ingest``.

The standard rules (examples/live_room.toml) against the same rules with ``holdout = 0.1`` on each
of their six rules: every firing then also records its time and room for the outcome count, every
``pay`` closes the waiting firings, and the membership is one column read (the hash is computed
once per viewer, when it is interned, not per event). Both engines hold the same present viewers
and take the same events (``dict`` form) one ``ingest`` at a time; the two run interleaved, the
order alternating per round, on fresh engines each round; the figure is the median over rounds of
the time per event, and the ratio on/off is what to read. Target: within 5 %.
"""

from __future__ import annotations

import gc
import re
import statistics
import tempfile
import time
from pathlib import Path

from .common import Result, cli
from .data import RULES, populated, single_events

ROUNDS = 5


def holdout_rules(tmp: Path) -> Path:
    """examples/live_room.toml with ``holdout = 0.1`` on every rule."""
    text = re.sub(r'^(name = "[^"]+")$', r"\1\nholdout = 0.1", RULES.read_text(), flags=re.M)
    path = tmp / "live_room_holdout.toml"
    path.write_text(text)
    return path


def per_event(rules: Path, viewers: int, events: list[dict]) -> float:
    engine = populated(viewers, rules)
    ingest = engine.ingest
    gc.collect()
    t = time.perf_counter()
    for e in events:
        ingest(e)
    return (time.perf_counter() - t) / len(events) * 1e6


def run(quick: bool) -> list[Result]:
    viewers, n = (10_000, 20_000) if quick else (100_000, 200_000)
    events = single_events(viewers, n)
    with tempfile.TemporaryDirectory() as tmp:
        on_rules = holdout_rules(Path(tmp))
        per_event(RULES, 1000, events[:2000])  # compile (or load) both kernels before timing
        per_event(on_rules, 1000, events[:2000])
        off, on = [], []
        for k in range(ROUNDS):
            for which in ((off, RULES), (on, on_rules)) if k % 2 == 0 else ((on, on_rules), (off, RULES)):
                which[0].append(per_event(which[1], viewers, events))
    off_us, on_us = statistics.median(off), statistics.median(on)
    ratio = on_us / off_us
    params = {"viewers": viewers, "events": n, "rounds": ROUNDS}
    return [Result("bench_holdout", "single ingest, no holdout", off_us, "µs/event", params=params),
            Result("bench_holdout", "single ingest, holdout = 0.1 on all 6 rules", on_us, "µs/event", params=params),
            Result("bench_holdout", "ratio on/off", ratio, "x", target="<= 1.05", met=ratio <= 1.05, params=params)]


if __name__ == "__main__":
    raise SystemExit(cli("bench_holdout", run))
