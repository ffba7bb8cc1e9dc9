"""Rules compile time, each in a fresh process: cold (empty compile cache) and cached (a new
process, same rules, to the first ingest). Targets: cold <= 5 s; cached <= 0.5 s. Also the cold
``warmup()`` of a file with many segments (every query kernel compiled), a figure without target."""

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


WARMUP_PROBE = """
import json, sys, time
from segengine import Engine
t0 = time.perf_counter()
Engine.from_file(sys.argv[1]).warmup()
print(json.dumps({"warmup": time.perf_counter() - t0}))
"""

#: Segment conditions of the many-segments file, cycled; every fourth segment also refers to an
#: earlier one (as generated files do), so the kernels hold some nested segments.
SEGMENT_SHAPES = [
    "present and dwell > {m}m",
    "count(view|click, 1m) >= {k} and not carted",
    "sum(price, cart, 10m) > {m}0 or cart_items >= {k}",
    "since(like|comment) < {s}s and interest(beauty) > 1.5",
    "age >= 3{k} and level == 'high'",
    "avg(amount, pay, 10m) > {m} and orders >= {k}",
    "total_dwell > {m}m and count(like) == {k}",
    "top_interest == 'snacks' and stream_time > {s}",
]


def many_segments_text(n: int) -> str:
    """A rules file with ``n`` segments (no rules): what ``segment_size`` users load."""
    lines = ["[engine]", 'categories = ["snacks", "beauty"]', "", "[profile]", 'age = "int"',
             'level = ["low", "mid", "high"]', "", "[segments]"]
    for i in range(n):
        cond = SEGMENT_SHAPES[i % len(SEGMENT_SHAPES)].format(k=1 + i % 4, m=2 + i % 5, s=10 + 10 * (i % 6))
        if i >= 4 and i % 4 == 0:
            cond = f"({cond}) or (s{i // 2} and present)"
        lines.append(f's{i} = "{cond}"')
    return "\n".join(lines) + "\n"


def measure(rules, cache_dir: str, probe: str = PROBE) -> dict:
    env = {**os.environ, "SEGENGINE_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", probe, str(rules)], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def warmup_cold(n_segments: int, repeat: int) -> float:
    """Median seconds of a cold ``warmup()`` (fresh cache dir) of the ``n_segments`` file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"segments{n_segments}.toml")
        with open(path, "w") as f:
            f.write(many_segments_text(n_segments))

        def once() -> float:
            with tempfile.TemporaryDirectory() as cache:
                return measure(path, cache, WARMUP_PROBE)["warmup"]

        return median_of(once, repeat, warmup=0)


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
    n_segments = 20 if quick else 60
    warm_s = warmup_cold(n_segments, repeat)
    return [
        Result("bench_compile", f"compile cold ({label})", cold_s, "s", "<= 5 s", cold_s <= 5.0, note="fresh cache dir, to first ingest"),
        Result("bench_compile", f"compile cached ({label})", cached_s, "s", "<= 0.5 s", cached_s <= 0.5, note="new process, warm cache, to first ingest"),
        Result("bench_compile", "import segengine", import_s, "s", note="new process"),
        Result("bench_compile", f"warmup() cold, {n_segments} segments", warm_s, "s", params={"segments": n_segments},
               note="fresh cache dir: every kernel, every segment's"),
    ]


if __name__ == "__main__":
    raise SystemExit(cli("bench_compile", run))
