"""State per viewer: bytes of arrays, and the whole process at scale (int ids).
Targets: whole process at 10 M viewers <= 6 GiB. Bytes per viewer are reported against the
baseline with no target: the owner withdrew 160 B/viewer (times stay exact 64-bit values)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

from .common import Result, cli

PROBE = """
import json, sys
from benchmarks.common import rss_bytes
before = rss_bytes()
from benchmarks.data import populated
engine = populated(int(sys.argv[1]), pages=False)  # pages as the enters left them (see docs/performance.md)
stats = engine.stats()
print(json.dumps({"rss": rss_bytes(), "rss_before": before, "state": stats["memory"], "per_viewer": stats["bytes_per_viewer"]}))
"""


def run(quick: bool) -> list[Result]:
    sizes = (100_000,) if quick else (1_000_000, 10_000_000)
    results = []
    for viewers in sizes:
        out = subprocess.run([sys.executable, "-c", PROBE, str(viewers)], check=True, capture_output=True, text=True)
        m = json.loads(out.stdout.strip().splitlines()[-1])
        gib = m["rss"] / 2**30
        results.append(Result("bench_memory", f"process RSS @{viewers:,} viewers", gib, "GiB",
                              "<= 6 GiB @10M" if viewers == 10_000_000 else "",
                              (gib <= 6.0) if viewers == 10_000_000 else None, params={"viewers": viewers}))
        per_viewer = m["per_viewer"]
    per = Result("bench_memory", "state arrays per viewer", per_viewer, "bytes",
                 note="no target: 160 B withdrawn (exact 64-bit times)")
    try:
        from .baseline import BaselineEngine, memory_per_viewer
    except ImportError:
        return [per, *results]
    base = BaselineEngine()
    from .data import T0
    n = 20_000
    for v in range(n):
        base.ingest({"type": "enter", "viewer": v, "room": "r1", "ts": T0 + v * 0.001})
        base.ingest({"type": "like", "viewer": v, "room": "r1", "ts": T0 + v * 0.001})
    gc.collect()
    per.baseline = memory_per_viewer(base)
    per.ratio = per.baseline / per.value
    return [per, *results]


if __name__ == "__main__":
    raise SystemExit(cli("bench_memory", run))
