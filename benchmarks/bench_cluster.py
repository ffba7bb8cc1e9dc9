"""ShardedEngine figures: ``python -m benchmarks.bench_cluster [--quick] [--json PATH]``.

Runs itself inside a network namespace with only loopback up (``unshare --net``; root), with Ray
pinned to 127.0.0.1. Without Ray it prints why and exits 0 (``segengine bench`` never needs Ray).
Figures: throughput of one Engine, 1 and 2 shards on 1,000-event NDJSON batches in one run; the
driver's routing cost per event; the latency an ``ingest_many`` call adds; a single ``ingest``
through the shards; recovery time of a SIGKILLed shard holding N viewers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

LIVE_ROOM = os.path.join(os.path.dirname(__file__), "..", "examples", "live_room.toml")


def _reexec(argv: list[str]) -> int:
    if shutil.which("unshare") is None:
        print("bench_cluster: skipped: `unshare` is not available (the Ray figures run in a loopback-only namespace)")
        return 0
    cmd = "ip link set lo up && " + " ".join([sys.executable, "-m", "benchmarks.bench_cluster", *argv])
    return subprocess.run(["unshare", "--net", "sh", "-c", cmd],
                          env={**os.environ, "SEGENGINE_NETNS": "1"}).returncode


def _batches(viewers: int, hours: float) -> list[bytes]:
    from .data import workload
    lines = workload(viewers, hours).splitlines(keepends=True)
    return [b"".join(lines[i:i + 1000]) for i in range(0, len(lines), 1000)]


def _throughput(engine, batches: list[bytes]) -> tuple[float, list[float]]:
    calls = []
    start = time.perf_counter()
    for b in batches:
        t = time.perf_counter()
        engine.ingest_many(b)
        calls.append(time.perf_counter() - t)
    seconds = time.perf_counter() - start
    return sum(b.count(b"\n") for b in batches) / seconds, calls


def run(quick: bool) -> list[dict]:
    import numpy as np
    import ray

    from segengine import Engine
    from segengine.cluster import ShardedEngine
    from segengine.cluster.route import shard_of
    from segengine.rules.load import load_rules_file

    rules = load_rules_file(LIVE_ROOM)
    batches = _batches(2_000 if quick else 20_000, 0.5 if quick else 1.0)
    events = sum(b.count(b"\n") for b in batches)
    out: list[dict] = []
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2, log_to_driver=False,
             configure_logging=False)
    try:
        one = Engine(rules).warmup()
        eps, calls = _throughput(one, batches)
        out.append({"name": "engine: events/s on 1,000-event batches", "value": eps, "unit": "events/s"})
        base_call = statistics.median(calls)
        for n in (1, 2):
            sharded = ShardedEngine(rules, shards=n, checkpoint_every=10**9, checkpoint_seconds=1e9)
            try:
                eps, calls = _throughput(sharded, batches)
                out.append({"name": f"{n} shard(s): events/s on 1,000-event batches", "value": eps, "unit": "events/s"})
                out.append({"name": f"{n} shard(s): latency added per ingest_many call (median)",
                            "value": (statistics.median(calls) - base_call) * 1e3, "unit": "ms"})
                if n == 2:
                    single = []
                    for i in range(200):
                        line = json.dumps({"type": "heartbeat", "viewer": f"x{i}", "room": "r1",
                                           "ts": 1_700_000_000.0 + 7200 + i}).encode()
                        t = time.perf_counter()
                        sharded.ingest(line)
                        single.append(time.perf_counter() - t)
                    out.append({"name": "2 shards: a single ingest (median)", "value": statistics.median(single) * 1e6,
                                "unit": "us"})
            finally:
                sharded.close()
        # the driver's routing cost per event: parse the key, hash, split (no shard involved)
        from segengine.cluster.sharded import _decode_key
        t = time.perf_counter()
        for b in batches:
            parts = [[], []]
            for line in b.splitlines():
                k = _decode_key(line)
                parts[0 if k.viewer is None else shard_of(k.viewer, 2)].append(line)
        out.append({"name": "driver routing cost per event (NDJSON line)",
                    "value": (time.perf_counter() - t) / events * 1e6, "unit": "us"})
        # recovery: a shard holding `viewers` viewers, killed after a checkpoint and 5 batches
        for viewers in ((20_000,) if quick else (100_000, 1_000_000)):
            sharded = ShardedEngine(rules, shards=1, checkpoint_every=10**9, checkpoint_seconds=1e9)
            try:
                ids = np.arange(viewers)
                for start in range(0, viewers, 50_000):
                    chunk = ids[start:start + 50_000]
                    sharded.ingest_many([{"type": "enter", "viewer": int(v), "room": "r1", "ts": 1_700_000_000.0}
                                         for v in chunk.tolist()])
                ray.get(sharded._actors[0].checkpoint.remote())
                sharded._log[0] = []
                for k in range(5):
                    sharded.ingest_many([{"type": "heartbeat", "viewer": int(v), "room": "r1",
                                          "ts": 1_700_000_010.0 + k} for v in range(1000)])
                os.kill(sharded.shard_pids()[0], signal.SIGKILL)
                t = time.perf_counter()
                sharded.advance(1_700_000_020.0)  # the call that finds it dead: restart + restore + re-send
                out.append({"name": f"recovery of a killed shard holding {viewers:,} viewers (5 batches re-sent)",
                            "value": time.perf_counter() - t, "unit": "s"})
            finally:
                sharded.close()
    finally:
        ray.shutdown()
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_cluster", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("ray") is None:
        print("bench_cluster: skipped: Ray is not installed (pip install 'segengine[ray]')")
        return 0
    if os.environ.get("SEGENGINE_NETNS") != "1":
        return _reexec(argv)
    results = run(args.quick)
    for r in results:
        print(f"{r['name']:<75} {r['value']:>14,.3f} {r['unit']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
