"""Frequency caps on vs off, single-event ingest: ``python -m benchmarks.bench_caps [--quick]``.

The same rules file (examples/live_room.toml) twice: as is ("off"), and with every rule in one
cap, ``[caps] marketing = "5/1m"`` ("on"). Both engines hold the same viewers and get the same
events; the rounds alternate which engine goes first, so machine load hits both alike. Prints
the median per-call latency of each and the ratio on/off (the target: within 5 %).
"""

from __future__ import annotations

import gc
import statistics
import tempfile
from pathlib import Path

from .bench_ingest import latencies
from .common import Result, cli
from .data import RULES, populated, single_events


def capped_rules(directory: str) -> Path:
    text = RULES.read_text().replace("[[rules]]\n", '[[rules]]\ncap = "marketing"\n')
    path = Path(directory) / "live_room_capped.toml"
    path.write_text(text + '\n[caps]\nmarketing = "5/1m"\n')
    return path


def measure(viewers: int, n_events: int, rounds: int) -> tuple[float, float]:
    """(median us per ingest with caps off, with caps on), rounds interleaved."""
    with tempfile.TemporaryDirectory() as tmp:
        engines = {"off": populated(viewers), "on": populated(viewers, rules=capped_rules(tmp))}
        events = single_events(viewers, n_events)
        for e in engines.values():  # warm: compile, fill caches
            for ev in single_events(viewers, 2000, seed=9, start=events[0]["ts"] - 1):
                e.ingest(ev)
        medians: dict[str, list[float]] = {"off": [], "on": []}
        for r in range(rounds):
            # each round its own events, later than the last round's (both engines get the same)
            batch = events if r == 0 else single_events(viewers, n_events, seed=r + 1, start=events[0]["ts"] + 10.0 * r)
            order = ("off", "on") if r % 2 == 0 else ("on", "off")
            for name in order:
                gc.collect()
                lat = sorted(latencies(engines[name].ingest, batch, repeat=1))
                medians[name].append(lat[len(lat) // 2])
    return statistics.median(medians["off"]), statistics.median(medians["on"])


def run(quick: bool) -> list[Result]:
    viewers, n, rounds = (10_000, 5_000, 3) if quick else (100_000, 50_000, 7)
    off, on = measure(viewers, n, rounds)
    params = {"viewers": viewers, "events": n, "rounds": rounds}
    ratio = on / off
    return [Result("bench_caps", "single ingest, caps off", off, "us", params=params),
            Result("bench_caps", "single ingest, every rule in one cap (5/1m)", on, "us", params=params),
            Result("bench_caps", "ratio caps on/off", ratio, "x", "<= 1.05", ratio <= 1.05 if not quick else None,
                   params=params)]


if __name__ == "__main__":
    raise SystemExit(cli("bench_caps", run))
