"""Frequency caps on vs off, single-event ingest: ``python -m benchmarks.bench_caps [--rounds 5]``.

The same rules file (examples/live_room.toml) twice: as is ("off"), and with every rule in one
cap, ``[caps] marketing = "5/1m"`` ("on"). Both engines hold the same viewers and get the same
events; the rounds alternate which engine goes first, so machine load hits both alike. Prints
the median per-call latency of each and the ratio on/off (the target: within 5 %).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
from pathlib import Path

from benchmarks.bench_ingest import latencies
from benchmarks.data import RULES, populated, single_events


def capped_rules(directory: str) -> Path:
    text = RULES.read_text().replace("[[rules]]\n", '[[rules]]\ncap = "marketing"\n')
    path = Path(directory) / "live_room_capped.toml"
    path.write_text(text + '\n[caps]\nmarketing = "5/1m"\n')
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--viewers", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=20_000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        engines = {"off": populated(args.viewers), "on": populated(args.viewers, rules=capped_rules(tmp))}
        events = single_events(args.viewers, args.events)
        for e in engines.values():  # warm: compile, fill caches
            for ev in single_events(args.viewers, 2000, seed=9, start=events[0]["ts"] - 1):
                e.ingest(ev)
        medians: dict[str, list[float]] = {"off": [], "on": []}
        for r in range(args.rounds):
            # each round its own events, later than the last round's (both engines get the same)
            batch = events if r == 0 else single_events(args.viewers, args.events, seed=r + 1,
                                                        start=events[0]["ts"] + 10.0 * r)
            order = ("off", "on") if r % 2 == 0 else ("on", "off")
            for name in order:
                gc.collect()
                lat = sorted(latencies(engines[name].ingest, batch, repeat=1))
                medians[name].append(lat[len(lat) // 2])
    off, on = statistics.median(medians["off"]), statistics.median(medians["on"])
    print(f"ingest median us: caps off {off:.3f}, caps on {on:.3f}, on/off {on / off:.3f}")


if __name__ == "__main__":
    main()
