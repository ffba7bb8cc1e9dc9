"""Interleaved A/B speed comparison of two commits: ``python -m benchmarks.ab OLD NEW [--runs 5]``.

A refactor must not cost speed, and on a shared, noisy machine two separate benchmark runs
differ by more than the effect being looked for. So both commits are checked out side by side
(``git worktree``, C fast path built in each), and each run measures OLD then NEW (the order
alternates from run to run, so a drift in the machine's load hits both alike). Every figure is
the median over the runs; the ratio NEW/OLD is what to read (for times, < 1 is faster).

The probe uses only the public API (``Engine``, ``ingest``, ``ingest_many``, ``advance``) and
``benchmarks.data`` of its own checkout, so it runs unchanged on both sides of a refactor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import gc, json, os, subprocess, sys, tempfile, time
import msgspec
from segengine import Engine, Event
from benchmarks.data import RULES, populated, single_events, workload
from benchmarks.bench_ingest import latencies
from benchmarks.bench_replay import replay

viewers, n_events = int(sys.argv[1]), int(sys.argv[2])
out = {}
events = single_events(viewers, n_events)
forms = {"dict": events, "Event": [Event(**e) for e in events], "JSON": [msgspec.json.encode(e) for e in events]}
for form, items in forms.items():
    engine = populated(viewers)
    for e in single_events(viewers, 2000, seed=9, start=events[0]["ts"] - 1):
        engine.ingest(e)
    gc.collect()
    lat = sorted(latencies(engine.ingest, items))
    out[f"ingest {form} median us @{viewers:,}"] = lat[len(lat) // 2]
data = workload(10_000, 3.0)
evs = msgspec.json.decode(b"[" + data.strip().replace(b"\n", b",") + b"]")
engine = Engine.from_file(RULES).warmup()
out["replay one by one, events/s"] = replay(engine.ingest, engine.advance, evs)
lines = data.splitlines(keepends=True)
chunks = [b"".join(lines[i:i + 100_000]) for i in range(0, len(lines), 100_000)]
engine = Engine.from_file(RULES)
started = time.perf_counter()
for c in chunks:
    engine.ingest_many(c)
out["ingest_many(NDJSON), events/s"] = len(lines) / (time.perf_counter() - started)
probe = ("import sys, time; t = time.perf_counter(); from segengine import Engine; "
         "e = Engine.from_file(sys.argv[1]); e.ingest({'type': 'enter', 'viewer': 1, 'room': 'r1', 'ts': 1000.0}); "
         "print(time.perf_counter() - t)")
with tempfile.TemporaryDirectory() as cache:
    env = {**os.environ, "SEGENGINE_CACHE_DIR": cache}
    run = lambda: float(subprocess.run([sys.executable, "-c", probe, str(RULES)], env=env, check=True,
                                       capture_output=True, text=True).stdout.split()[-1])
    out["compile cold to first ingest, s"] = run()
    out["cached load to first ingest, s"] = min(run() for _ in range(3))
print("AB-RESULT " + json.dumps(out))
"""

#: figures where bigger is better (throughputs); the others are times
HIGHER_IS_BETTER = ("events/s",)


def checkout(ref: str, where: Path) -> Path:
    """A detached worktree of ``ref`` with the C fast path built in place."""
    path = where / ref.replace("/", "_")
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(path), ref], cwd=ROOT, check=True)
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=path, check=True,
                   capture_output=True)
    return path


def measure(tree: Path, viewers: int, n_events: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "PYTHONPATH": str(tree), "SEGENGINE_CACHE_DIR": cache, "SEGENGINE_BENCH_DATA": cache}
        proc = subprocess.run([sys.executable, "-c", PROBE, str(viewers), str(n_events)], cwd=tree, env=env,
                              capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed in {tree}:\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("AB-RESULT "))
    return json.loads(line[len("AB-RESULT "):])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--viewers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=100_000, help="single ingests timed per form")
    parser.add_argument("--json", help="write the per-run figures and medians here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        trees = {side: checkout(ref, Path(tmp)) for side, ref in (("old", args.old), ("new", args.new))}
        try:
            runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
            for i in range(args.runs):
                for side in (("old", "new") if i % 2 == 0 else ("new", "old")):
                    runs[side].append(measure(trees[side], args.viewers, args.events))
                    print(f"run {i + 1}/{args.runs} {side}: done", flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
    names = list(runs["old"][0])
    medians = {side: {n: statistics.median(r[n] for r in runs[side]) for n in names} for side in runs}
    print(f"\nA/B, {args.runs} interleaved runs, medians: old = {args.old}, new = {args.new}")
    width = max(map(len, names))
    print(f"{'figure'.ljust(width)}  {'old':>10}  {'new':>10}  new/old")
    for n in names:
        old, new = medians["old"][n], medians["new"][n]
        better = "higher is better" if n.endswith(HIGHER_IS_BETTER) else "lower is better"
        print(f"{n.ljust(width)}  {old:10.4g}  {new:10.4g}  {new / old:6.3f}  ({better})")
    if args.json:
        Path(args.json).write_text(json.dumps({"old": args.old, "new": args.new, "runs": runs, "medians": medians},
                                              indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
