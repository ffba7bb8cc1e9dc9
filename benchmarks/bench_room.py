"""Room metrics (``Engine.room``, ``Engine.room_slots``): what reading them costs.

A 3-hour stream of the standard workload in one room, then 1 M viewers (quick: 10 k) entered in
it: ``room()`` counters only (``segments=False``) and with the present count of every segment of
the standard rules (one viewer scan per segment), and ``room_slots`` in 5-minute slots.
Targets (issue 16): ``room()`` <= 50 us, ``room_slots`` for a 3-hour stream <= 1 ms.
"""

from __future__ import annotations

import time

from segengine import Engine

from .common import Result, cli, median_of
from .data import RULES, populated, workload


def _timed_us(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1e6


def run(quick: bool) -> list[Result]:
    stream = Engine.from_file(RULES)
    stream.ingest_many(workload(2_000 if quick else 20_000, hours=3.0))
    room = "r1" if stream.room("r1").entries else next(iter(stream._rooms.keys))  # noqa: SLF001 (the workload's room)
    repeat = 50 if quick else 200
    slots_us = median_of(lambda: _timed_us(lambda: stream.room_slots(room, "5m")), repeat)
    n_slots = len(stream.room_slots(room, "5m"))
    viewers = 10_000 if quick else 1_000_000
    big = populated(viewers)
    counters_us = median_of(lambda: _timed_us(lambda: big.room("r1", segments=False)), repeat)
    full_ms = median_of(lambda: _timed_us(lambda: big.room("r1")) / 1000, 5)
    n_segments = len(big.rules.segments)
    return [
        Result("bench_room", f"room() counters @{viewers:,} viewers", counters_us, "us", "<= 50 us",
               counters_us <= 50 if not quick else None, params={"viewers": viewers}),
        Result("bench_room", f"room() with {n_segments} segments' present counts @{viewers:,} viewers", full_ms, "ms",
               params={"viewers": viewers, "segments": n_segments}, note="one viewer scan per segment"),
        Result("bench_room", f"room_slots(5m) of a 3-hour stream ({n_slots} slots)", slots_us, "us", "<= 1 ms",
               slots_us <= 1000 if not quick else None, params={"slots": n_slots}),
    ]


if __name__ == "__main__":
    raise SystemExit(cli("bench_room", run))
