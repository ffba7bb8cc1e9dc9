"""``ingest_many`` throughput from NDJSON bytes and from a columnar ``Batch``, on the standard
workload. Targets: NDJSON >= 2 M events/s. Batch is reported with no target: the owner deferred
20 M events/s columnar (a different event-application design; docs/performance.md)."""

from __future__ import annotations

import time

import msgspec
import numpy as np

from segengine import Batch, Engine
from segengine.schema.events import decode_ndjson

from .common import Result, cli, median_of
from .data import RULES, workload

CHUNK = 100_000  # events per ingest_many call, as a server would batch them
SMALL_CHUNK = 1_000  # a server flushing every few milliseconds: the fixed cost per call shows


def _chunks(data: bytes, size: int) -> list[bytes]:
    lines = data.split(b"\n")
    return [b"\n".join(lines[i:i + size]) for i in range(0, len(lines), size)]


def to_batches(data: bytes, size: int) -> list[Batch]:
    return [Batch.from_events(decode_ndjson(chunk)) for chunk in _chunks(data, size) if chunk.strip()]


def run(quick: bool) -> list[Result]:
    viewers = 2_000 if quick else 10_000
    hours = 0.5 if quick else 3.0
    data = workload(viewers, hours)
    n = data.count(b"\n")
    params = {"viewers": viewers, "hours": hours, "events": n, "chunk": CHUNK}
    chunks = _chunks(data, CHUNK)
    small_chunks = _chunks(data, SMALL_CHUNK)
    batches = to_batches(data, CHUNK)
    # Batch columns as a columnar backend holds them (Arrow/Avro style): int type and category
    # codes, int viewer and item ids (negative = absent), one room, NaN for absent numbers
    probe = Engine.from_file(RULES)
    categories = {c: i for i, c in enumerate(probe.rules.categories)}
    batches = [Batch(type=np.array([probe.rules.event_types.index(t) for t in b.type], np.int64),
                     viewer=np.array([-1 if v is None else v for v in b.viewer], np.int64),
                     room="r1", ts=b.ts,
                     item=np.array([int(i[1:]) if i else -1 for i in b.item], np.int64),
                     category=np.array([categories.get(c, -1) for c in b.category], np.int64),
                     price=b.price, amount=b.amount) for b in batches]

    def timed(feed) -> float:
        engine = Engine.from_file(RULES)
        started = time.perf_counter()
        feed(engine)
        return n / (time.perf_counter() - started)

    repeat = 3
    ndjson = median_of(lambda: timed(lambda e: [e.ingest_many(c) for c in chunks]), repeat)
    columnar = median_of(lambda: timed(lambda e: [e.ingest_many(b) for b in batches]), repeat)
    small = median_of(lambda: timed(lambda e: [e.ingest_many(c) for c in small_chunks]), repeat)
    columnar_result = Result("bench_batch", "ingest_many(Batch)", columnar, "events/s",
                             note="no target: 20 M events/s deferred", params=params)
    results = [
        Result("bench_batch", "ingest_many(NDJSON bytes)", ndjson, "events/s", ">= 2 M events/s", ndjson >= 2e6, params=params),
        Result("bench_batch", f"ingest_many(NDJSON bytes), {SMALL_CHUNK:,}-event calls", small, "events/s", "",
               params={**params, "chunk": SMALL_CHUNK}),
        columnar_result,
    ]
    try:
        from .baseline import BaselineEngine
        from .bench_replay import replay
    except ImportError:
        return results
    events = msgspec.json.decode(b"[" + data.strip().replace(b"\n", b",") + b"]")
    def base_once() -> float:  # a fresh baseline each time; the median, like segengine's figures
        base = BaselineEngine()
        return replay(base.ingest, base.advance, events)

    baseline = median_of(base_once, repeat, warmup=0)
    for r in results:
        r.baseline = baseline
        r.ratio = r.value / baseline
    columnar_result.met = columnar_result.met and columnar_result.ratio >= 50
    return results


if __name__ == "__main__":
    raise SystemExit(cli("bench_batch", run))
