"""Run the whole benchmark suite: ``python -m benchmarks.run [--quick] [--json PATH] [--docs]``
(also ``segengine bench``). Quick mode (CI, <= 2 min) keeps the suite from rotting; the full
run produces the published figures and rewrites docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from . import (bench_advance, bench_batch, bench_compile, bench_ingest, bench_memory, bench_queries, bench_replay,
               bench_caps, bench_holdout, bench_keyed, bench_room, bench_room_trigger, bench_rules50, bench_text)
from .common import Result, machine, print_table

SUITE = [bench_ingest, bench_replay, bench_batch, bench_advance, bench_queries, bench_memory, bench_compile, bench_rules50,
         bench_text, bench_room_trigger, bench_keyed, bench_room, bench_caps, bench_holdout]
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segengine bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, about 2 minutes (CI)")
    parser.add_argument("--json", help="write every result as JSON to this path")
    parser.add_argument("--docs", action="store_true", help="rewrite docs/benchmarks.md (default for a full run)")
    parser.add_argument("--only", help="comma-separated benchmark names, e.g. bench_ingest,bench_batch")
    args = parser.parse_args(argv)
    chosen = [b for b in SUITE if not args.only or b.__name__.split(".")[-1] in args.only.split(",")]
    results: list[Result] = []
    failed = []
    started = time.perf_counter()
    for bench in chosen:
        name = bench.__name__.split(".")[-1]
        t = time.perf_counter()
        try:
            results.extend(_run_isolated(name, args.quick))
        except Exception:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            traceback.print_exc()
        print(f"[{name}: {time.perf_counter() - t:.1f} s]", flush=True)
    print()
    print_table(results)
    elapsed = time.perf_counter() - started
    print(f"\n{len(results)} figures in {elapsed:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    report = {"machine": machine(), "quick": args.quick, "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "seconds": round(elapsed, 1), "results": [asdict(r) for r in results]}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    if args.docs or (not args.quick and not args.only):
        DOCS.write_text(render(report))
        print(f"wrote {DOCS}")
    return 1 if failed else 0


def _run_isolated(name: str, quick: bool) -> list[Result]:
    """One benchmark in a fresh process (as pyperf does): the 10 M-viewer engines of one must
    not leave a fragmented heap, a grown GC or a warm cache behind for the next."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        cmd = [sys.executable, "-m", f"benchmarks.{name}", "--json", str(out), *(["--quick"] if quick else [])]
        done = subprocess.run(cmd, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{done.stdout}{done.stderr}")
        return [Result(**r) for r in json.loads(out.read_text())["results"]]


def render(report: dict) -> str:
    """docs/benchmarks.md from one run's report."""
    m = report["machine"]
    mode = "quick" if report["quick"] else "full"
    lines = [
        "# Benchmarks",
        "",
        "Every figure below comes from one run of the suite in `benchmarks/`, reproduced with:",
        "",
        "```bash",
        f"python -m benchmarks.run{' --quick' if report['quick'] else ''}      # or: segengine bench{' --quick' if report['quick'] else ''}",
        "```",
        "",
        "How it is measured: each benchmark warms up first (compiles, caches, first passes), then",
        "reports medians over repetitions (latencies: per-call timings, median and p99). The",
        "baseline column is `benchmarks/baseline.py`: the standard rules written by hand in pure",
        "Python the way a careful engineer would without this library: one `__slots__` object per",
        "viewer, `deque` windows, and a timer heap (`heapq`) with lazy invalidation, so neither",
        "`ingest` nor `advance` ever scans all viewers. It implements the same semantics for the rules",
        "it runs (sessions, idle timeout, late events, exact due instants, once/cooldown/budget), and",
        "`tests/test_baseline.py` checks that it returns the same actions as segengine from the same",
        "calls, in the same order, on the standard workload, on adversarial streams and with the",
        "50-rule file (its 44 generated rules added table-driven for `bench_rules50`). It runs in the",
        "same process on the same data, so ratios are fair even where absolute figures are noisy.",
        "Caveat: these machines are shared virtual machines; absolute figures move by 2x with load.",
        "Compare ratios, and rerun before drawing conclusions.",
        "",
        "Why each figure is what it is, and what it would take to reach the targets not met:",
        "[performance.md](performance.md).",
        "",
        f"## Machine ({mode} run, {report['when']}, {report['seconds']:.0f} s)",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {m['cpu']} ({m['cores']} cores) |",
        f"| memory | {m['memory_gib']} GiB |",
        f"| versions | Python {m['python']}, numba {m['numba']}, numpy {m['numpy']}, msgspec {m['msgspec']}, segengine {m['segengine']} |",
        f"| platform | {m['platform']} |",
        f"| C fast path of `ingest` (`segengine/runtime/_fastpath.c`) | {m.get('c_fast_path', 'not recorded')} |",
        f"| load average at the end (1, 5, 15 min) | {', '.join(map(str, m.get('load_average', [])))} |",
        "",
        "## Figures",
        "",
        "| figure | value | target | met | baseline | segengine vs baseline |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        value = _fmt(r["value"], r["unit"])
        base = "" if r["baseline"] is None else _fmt(r["baseline"], r["unit"])
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.1f}x"
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        note = f" ({r['note']})" if r["note"] else ""
        lines.append(f"| {r['name']}{note} | {value} | {r['target']} | {met} | {base} | {ratio} |")
    lines += ["", "Raw results: rerun with `--json results.json`.", ""]
    outside = Path(__file__).with_name("outside.md")  # figures measured by their own commands
    if outside.exists():
        lines += [outside.read_text(encoding="utf-8").rstrip(), ""]
    return "\n".join(lines)


def _fmt(value: float, unit: str) -> str:
    if unit == "events/s":
        return f"{value / 1e6:.2f} M events/s" if value >= 1e6 else f"{value / 1e3:.0f} k events/s"
    if unit == "bytes":
        return f"{value:.0f} B"
    return f"{value:.3g} {unit}"


if __name__ == "__main__":
    raise SystemExit(main())
