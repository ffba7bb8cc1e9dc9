"""Rules compile time, each in a fresh process: cold (empty compile cache) and cached (a new
process, same rules, to the first ingest). Targets: cold <= 5 s; cached <= 0.5 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from .common import Result, cli, median_of
from .data import RULES

PROBE = """
import json, sys, time
t0 = time.perf_counter()
from segengine import Engine
t1 = time.perf_counter()
engine = Engine.from_file(sys.argv[1])
engine.ingest({"type": "enter", "viewer": 1, "room": "r1", "ts": 1000.0})
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_ingest": t2 - t1}))
"""


def measure(rules, cache_dir: str) -> dict:
    env = {**os.environ, "SEGENGINE_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", PROBE, str(rules)], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool, rules=RULES, label: str = "standard rules") -> list[Result]:
    repeat = 1 if quick else 3
    cold = []

    def cold_once() -> float:
        with tempfile.TemporaryDirectory() as cache:
            m = measure(rules, cache)
            cold.append(m)
            return m["first_ingest"]

    cold_s = median_of(cold_once, repeat, warmup=0)
    with tempfile.TemporaryDirectory() as cache:
        measure(rules, cache)  # fill the cache
        cached_s = median_of(lambda: measure(rules, cache)["first_ingest"], repeat + 2, warmup=0)
        import_s = median_of(lambda: measure(rules, cache)["import"], repeat, warmup=0)
    return [
        Result("bench_compile", f"compile cold ({label})", cold_s, "s", "<= 5 s", cold_s <= 5.0, note="fresh cache dir, to first ingest"),
        Result("bench_compile", f"compile cached ({label})", cached_s, "s", "<= 0.5 s", cached_s <= 0.5, note="new process, warm cache, to first ingest"),
        Result("bench_compile", "import segengine", import_s, "s", note="new process"),
    ]


if __name__ == "__main__":
    raise SystemExit(cli("bench_compile", run))
