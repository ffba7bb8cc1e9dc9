"""segengine.metrics: an exporter on a loopback port, fetched over HTTP and parsed by the
Prometheus client library's own parser."""

from __future__ import annotations

import urllib.request

import pytest

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from conftest import ev, heartbeats  # noqa: E402
from segengine import Engine  # noqa: E402
from segengine.metrics import Metrics  # noqa: E402


def _scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_exporter_serves_the_engines_counters(golden_rules):
    engine = Engine(golden_rules)
    metrics = Metrics(engine, sample_every=1)
    server, thread = metrics.serve(0)  # port 0: any free loopback port
    try:
        port = server.server_port
        assert server.server_address[0] == "127.0.0.1"
        timed = metrics.timed()
        timed.ingest(ev("enter", ts=1000))
        heartbeats(timed, "u1", 1000, 1400)
        timed.ingest_many([ev("like", viewer=f"v{i}", ts=1500) for i in range(3)] + [{"type": "like", "ts": 1500}],
                          errors="skip")
        engine.advance(2000)
        before = _scrape(port)
        assert before[("segengine_events_total", ())] == 0  # nothing is read until refresh()
        metrics.refresh()
        got = _scrape(port)
        stats = engine.stats()
        assert got[("segengine_events_total", ())] == stats["events"] > 10
        assert got[("segengine_rejected_total", ())] == stats["rejected"] == 1
        assert got[("segengine_viewers", ())] == stats["viewers"] == 4
        assert got[("segengine_memory_bytes", ())] == stats["memory"]
        assert got[("segengine_fired_total", (("rule", "dwell_5m"),))] == stats["fired"]["dwell_5m"] == 1
        assert got[("segengine_suppressed_total", (("reason", "once"), ("rule", "dwell_5m")))] == 0
        calls = got[("segengine_ingest_latency_seconds_count", (("call", "ingest"),))]
        assert calls == 1 + len(range(1030, 1401, 30))  # every call sampled (sample_every=1)
        assert got[("segengine_ingest_latency_seconds_count", (("call", "ingest_many"),))] == 1
    finally:
        server.shutdown()
        server.server_close()


def test_latency_is_sampled_not_timed_on_every_call(golden_rules):
    metrics = Metrics(Engine(golden_rules), sample_every=10)
    timed = metrics.timed()
    for i in range(25):
        timed.ingest(ev("heartbeat", ts=1000 + i))
    count = metrics.registry.get_sample_value("segengine_ingest_latency_seconds_count", {"call": "ingest"})
    assert count == 2


def test_replay_metrics_port_serves_during_the_replay(tmp_path):
    import json
    import socket
    import subprocess
    import sys
    import time

    from conftest import GOLDEN

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "segengine", "replay", str(GOLDEN), "-", "--chunk", "5",
                             "--metrics-port", str(port)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        lines = [json.dumps(ev("heartbeat", viewer=f"v{i}", ts=1000 + i)) + "\n" for i in range(10)]
        proc.stdin.write("".join(lines).encode())
        proc.stdin.flush()
        got = {}
        for _ in range(300):  # the replay compiles or loads its kernels first
            try:
                got = _scrape(port)
                if got.get(("segengine_events_total", ())) == 10:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert got[("segengine_events_total", ())] == 10
        assert got[("segengine_viewers", ())] == 10
    finally:
        proc.stdin.close()
        err = proc.stderr.read()
        proc.stderr.close()
        proc.wait(timeout=120)
        assert proc.returncode == 0, err.decode()
