"""The benchmark suite's quick mode runs in CI so it cannot rot: every benchmark must run and
report its figures. (Figures are measurements, not pass/fail: nothing here checks speed.)"""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_quick_benchmark_suite_runs_and_reports_every_figure(tmp_path):
    out = tmp_path / "quick.json"
    env = {**os.environ, "SEGENGINE_BENCH_DATA": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--json", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    benches = {r["bench"] for r in report["results"]}
    suite = re.search(r"SUITE = \[(.*?)\]", (ROOT / "benchmarks" / "run.py").read_text(), re.S).group(1)
    assert benches == {name.strip() for name in suite.split(",")}  # every benchmark of the suite reported
    assert {"bench_ingest", "bench_replay", "bench_batch", "bench_advance", "bench_memory", "bench_compile",
            "bench_rules50", "bench_queries", "bench_text", "bench_room_trigger", "bench_keyed", "bench_room", "bench_caps", "bench_holdout"} <= benches
    for r in report["results"]:
        assert r["value"] == r["value"] and r["value"] >= 0, r  # a number, not NaN
    baseline = [r for r in report["results"] if r["baseline"] is not None]
    assert baseline, "the pure-Python baseline must run side by side"
