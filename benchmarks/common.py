"""Timing, reporting and machine facts shared by every benchmark.

Machines here are shared and noisy: every figure is a median over repetitions after a
warm-up, and comparisons are reported as ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable


@dataclass
class Result:
    """One figure: ``value`` in ``unit``, with the target it is held to and how it compares."""

    bench: str
    name: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    baseline: float | None = None  # the pure-Python baseline's figure, same unit, same run
    ratio: float | None = None  # segengine / baseline advantage (>1 is better for segengine)
    params: dict = field(default_factory=dict)
    note: str = ""


def median_of(fn: Callable[[], float], repeat: int, warmup: int = 1) -> float:
    """Median of ``repeat`` calls of ``fn`` (each returns a measurement) after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    return statistics.median(fn() for _ in range(repeat))


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return ordered[k]


def rss_bytes() -> int:
    """Resident set size of this process now (Linux), in bytes."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def machine() -> dict:
    import msgspec
    import numba
    import numpy

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except OSError:
        pass
    from segengine import __version__

    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**30, 1),
        "python": platform.python_version(), "numba": numba.__version__, "numpy": numpy.__version__,
        "msgspec": msgspec.__version__, "segengine": __version__, "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],  # others' work on a shared VM
        "c_fast_path": _c_fast_path(),
    }


def _c_fast_path() -> str:
    """Whether single ingests ran through segengine.runtime._fastpath (built at install where a C
    compiler is) or the pure-Python path: the single-event figures differ by about 2x."""
    from segengine import config
    from segengine.engine import _fastpath  # the engine's own import: None when not built

    if _fastpath is None:
        return "not built: pure-Python ingest"
    return "built" if config.c_fast_path_enabled() else "built, off (SEGENGINE_PURE_PYTHON=1)"


def fmt(value: float, unit: str) -> str:
    if value != value:
        return "n/a"
    if unit in ("events/s", "viewers", "viewers/s"):
        return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.0f} k"
    if unit == "bytes" and value >= 2**20:
        return f"{value / 2**20:.0f} MiB"
    return f"{value:.3g}"


def print_table(results: list[Result], out=sys.stdout) -> None:
    rows = [("figure", "value", "unit", "target", "met", "baseline", "ratio")]
    for r in results:
        rows.append((r.name, fmt(r.value, r.unit), r.unit, r.target, {True: "yes", False: "NO", None: ""}[r.met],
                     "" if r.baseline is None else fmt(r.baseline, r.unit), "" if r.ratio is None else f"{r.ratio:.1f}x"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)), file=out)


def cli(bench: str, run: Callable[[bool], list[Result]], argv: list[str] | None = None) -> int:
    """``python -m benchmarks.bench_X [--quick] [--json PATH]``."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{bench}")
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--json", help="write results as JSON to this path")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = run(args.quick)
    print_table(results)
    print(f"({bench}: {time.perf_counter() - started:.1f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "results": [asdict(r) for r in results]}, f, indent=1)
    return 0
