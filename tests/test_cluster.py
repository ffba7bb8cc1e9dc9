"""segengine.cluster without Ray: routing, merges, the core package without the extras; and the
Ray tests (tests/test_cluster_ns.py) re-executed in a loopback-only network namespace."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from segengine.cluster.route import shard_of
from segengine.cluster.sharded import _merge_stats, merge_room
from segengine.schema.results import RoomMetrics

HERE = Path(__file__).resolve().parent


def test_routing_is_stable_and_int_ids_hash_as_their_decimal_text():
    # fixed values: the map must never change between processes, machines or Python versions
    assert [shard_of(v, 4) for v in ("u1", "u2", "观众", 42)] == [shard_of("u1", 4), shard_of("u2", 4), shard_of("观众", 4), shard_of("42", 4)]
    assert shard_of(42, 4) == shard_of("42", 4)
    counts = [0] * 4
    for i in range(4000):
        counts[shard_of(i, 4)] += 1
    assert min(counts) > 850  # spread evenly
    out = subprocess.run([sys.executable, "-c", "from segengine.cluster.route import shard_of; "
                          "print([shard_of(v, 7) for v in ('u1', 'u2', 123456789)])"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "7"}, check=True)
    assert out.stdout.strip() == str([shard_of(v, 7) for v in ("u1", "u2", 123456789)])


def test_routing_pinned_values():
    assert [shard_of(v, 1000) for v in ("u1", "viewer-7", 0, 99)] == PINNED


PINNED = [130, 735, 764, 570]  # BLAKE2b-64 of the UTF-8 id, little-endian, mod 1000: never to change


def test_stats_merge_sums_nested_counters():
    a = {"events": 3, "fired": {"r": 1}, "suppressed": {"r": {"once": 2}}, "memory": 10}
    b = {"events": 4, "fired": {"r": 2, "s": 1}, "suppressed": {"r": {"once": 1, "budget": 1}}, "memory": 5}
    assert _merge_stats([a, b]) == {"events": 7, "fired": {"r": 3, "s": 1},
                                    "suppressed": {"r": {"once": 3, "budget": 1}}, "memory": 15}


def test_room_merge_sums_counts_and_recomputes_averages():
    a = RoomMetrics(room="r1", start=0.0, end=60.0, audience=3, peak_audience=5, uv=10, sessions_ended=2,
                    avg_dwell=100.0, segments={"fan": 1}, funnel={"view": 2})
    b = RoomMetrics(room="r1", start=0.0, end=60.0, audience=4, peak_audience=6, uv=20, sessions_ended=6,
                    avg_dwell=20.0, segments={"fan": 2, "watcher": 1}, funnel={"view": 1})
    m = merge_room([a, b])
    assert (m.audience, m.uv, m.sessions_ended) == (7, 30, 8)
    assert m.avg_dwell == pytest.approx((2 * 100 + 6 * 20) / 8)
    assert m.segments == {"fan": 3, "watcher": 1} and m.funnel == {"view": 3}
    # the peak from the per-slot audiences summed across shards, not the sum of the shards' peaks
    slots = [[RoomMetrics(room="r1", audience=5), RoomMetrics(room="r1", audience=1)],
             [RoomMetrics(room="r1", audience=1), RoomMetrics(room="r1", audience=6)]]
    assert merge_room([a, b], slots).peak_audience == 7


def test_core_package_runs_without_ray_and_prometheus():
    code = ("import sys\n"
            "sys.modules['ray'] = None\n"
            "sys.modules['prometheus_client'] = None\n"
            "import segengine, segengine.cluster\n"
            "from segengine import Engine\n"
            "from segengine.rules.load import load_rules_file\n"
            f"e = Engine(load_rules_file({str(HERE / 'rules' / 'golden.toml')!r}))\n"
            "e.ingest({'type': 'enter', 'viewer': 'u1', 'room': 'r1', 'ts': 1000.0})\n"
            "assert e.stats()['viewers'] == 1\n"
            "try:\n"
            "    segengine.cluster.ShardedEngine(e.rules)\n"
            "except ImportError as exc:\n"
            "    assert 'segengine[ray]' in str(exc)\n"
            "else:\n"
            "    raise AssertionError('no ImportError')\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def _can_unshare() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return "ray is not installed (pip install 'segengine[ray]')"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare/ip not available"
    probe = subprocess.run(["unshare", "--net", "sh", "-c", "ip link set lo up"], capture_output=True)
    if probe.returncode != 0:
        return "cannot create a network namespace (needs root): " + probe.stderr.decode(errors="replace").strip()
    return None


def test_ray_tests_in_a_loopback_only_namespace():
    """tests/test_cluster_ns.py under `unshare --net` with only `lo` up: Ray can reach nothing else."""
    reason = _can_unshare()
    if reason:
        pytest.skip(reason)
    cmd = (f"ip link set lo up && {sys.executable} -m pytest -q -x -n 0 -p no:cacheprovider "
           f"{HERE / 'test_cluster_ns.py'}")
    out = subprocess.run(["unshare", "--net", "sh", "-c", cmd], capture_output=True, text=True,
                         env={**os.environ, "SEGENGINE_NETNS": "1"}, cwd=HERE.parent, timeout=600)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    assert " passed" in out.stdout and " failed" not in out.stdout
