"""Snapshot and restore time and file size with N viewers (standard rules).

Run: ``python -m benchmarks.bench_snapshot [--viewers 1000000] [--dir DIR] [--repeat 3]``

Every viewer sends one ``enter`` to ``examples/live_room.toml``'s rules, so each has a
pending idle timer (a full timer heap). Prints the wall-clock and CPU time of
``engine.snapshot(path)`` (including the fsyncs) and of ``Engine.restore(path)`` (in a
warm process: the rules' kernels are already compiled), min and median of the repeats,
the file size and ``stats()["memory"]``; checks that the restored engine has the same
``stats()`` and gives the same actions for the next minute.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from segengine import Engine

ROOT = Path(__file__).resolve().parent.parent


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=1_000_000)
    parser.add_argument("--dir", default=None, help="where to write the snapshot (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    engine = Engine.from_file(ROOT / "examples" / "live_room.toml").warmup()
    t0 = time.perf_counter()
    batch = [{"type": "enter", "viewer": f"u{i}", "room": "r1", "ts": 1_000.0 + i * 0.001} for i in range(args.viewers)]
    engine.ingest_many(batch)
    del batch
    print(f"ingested {args.viewers} enters in {time.perf_counter() - t0:.1f} s; "
          f"stats()['memory'] = {engine.stats()['memory'] / 2**20:.0f} MiB")

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "state.seg"
        saves, loads = [], []
        restored = None
        for _ in range(args.repeat):
            size, wall, cpu = _timed(lambda: engine.snapshot(path))
            saves.append((wall, cpu))
            restored, wall, cpu = _timed(lambda: Engine.restore(path))
            loads.append((wall, cpu))
        assert restored is not None and restored.stats() == engine.stats()
        end = 1_000.0 + args.viewers * 0.001 + 60.0
        assert restored.advance(end) == engine.advance(end)
        print(f"file size: {size / 2**20:.0f} MiB ({size / args.viewers:.0f} bytes/viewer), {os.cpu_count()} CPUs")
        for name, runs in (("snapshot", saves), ("restore", loads)):
            walls = sorted(w for w, _ in runs)
            cpus = sorted(c for _, c in runs)
            print(f"{name:9s} wall min {walls[0]:.2f} s, median {statistics.median(walls):.2f} s; "
                  f"cpu min {cpus[0]:.2f} s")


if __name__ == "__main__":
    main()
