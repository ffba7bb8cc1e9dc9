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


def test_instruction_counter_replays_the_events_it_is_given(tmp_path):
    """benchmarks/instructions.py runs its child under valgrind (not installed in CI); the child
    itself must keep working: it replays exactly the first N events with a bench_keyed rules file."""
    from benchmarks.instructions import _events_file, child

    events = _events_file(tmp_path / "events.ndjson")
    rules = tmp_path / "rules"
    rules.mkdir()
    assert child("bare", 300, events, rules) == 300
    assert child("bare", 0, events, rules) == 0



def test_instruction_counter_reads_cg_annotate_rows():
    from benchmarks.instructions import parse_annotate

    text = """--------------------------------------------------------------------------------
Ir                       I1mr              D1mr               Bcm               Bim

1,234,567 (100.0%) 2,345 (100.0%) 34,567 (100.0%) 4,567 (100.0%) 567 (100.0%)  PROGRAM TOTALS
  123,456 (10.0%)    234 (10.0%)  3,456 (10.0%)    456 (10.0%)   56 (9.9%)  ???:???
"""
    rows = parse_annotate(text)
    assert rows["PROGRAM TOTALS"] == [1234567, 2345, 34567, 4567, 567]
    assert rows["???:???"] == [123456, 234, 3456, 456, 56]
