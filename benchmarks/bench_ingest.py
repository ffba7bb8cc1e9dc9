"""Single-event ``ingest`` latency (median, p99) from an Event, a dict and JSON bytes, with
the pure-Python baseline in the same run. Targets (issue 5): Event/dict median <= 1 us,
p99 <= 5 us; JSON median <= 1.5 us, p99 <= 8 us, at 1 M viewers."""

from __future__ import annotations

import gc
import time

import msgspec

from segengine import Event

from .common import Result, cli, percentile
from .data import populated, single_events

SIZES_QUICK = (10_000,)
SIZES_FULL = (10_000, 1_000_000, 10_000_000)


def latencies(call, items, repeat: int = 3) -> list[float]:
    """Per-call wall time in µs for every item, best of ``repeat`` passes per position's pass."""
    best: list[float] | None = None
    clock = time.perf_counter_ns
    for _ in range(repeat):
        lat = []
        for item in items:
            t = clock()
            call(item)
            lat.append((clock() - t) / 1000)
        best = lat if best is None or sorted(lat)[len(lat) // 2] < sorted(best)[len(best) // 2] else best
    return best or []


def run(quick: bool, sizes: tuple[int, ...] | None = None) -> list[Result]:
    results = []
    n_events = 20_000 if quick else 200_000
    for viewers in sizes or (SIZES_QUICK if quick else SIZES_FULL):
        events = single_events(viewers, n_events)
        forms = {
            "dict": events,
            "Event": [Event(**e) for e in events],
            "JSON bytes": [msgspec.json.encode(e) for e in events],
        }
        for form, items in forms.items():
            engine = populated(viewers)
            warm = single_events(viewers, 2000, seed=9, start=events[0]["ts"] - 1)
            for e in warm:
                engine.ingest(e)
            gc.collect()
            gc.disable()
            try:
                # one pass over the events (time only moves forward): split into 3 passes
                third = len(items) // 3
                chunks = [items[i * third:(i + 1) * third] for i in range(3)]
                lat = []
                for chunk in chunks:
                    lat.extend(latencies(engine.ingest, chunk, repeat=1))
            finally:
                gc.enable()
            med, p99 = percentile(lat, 50), percentile(lat, 99)
            limit_med, limit_p99 = (1.5, 8.0) if form == "JSON bytes" else (1.0, 5.0)
            params = {"viewers": viewers, "events": len(items)}
            at_target = viewers == 1_000_000
            results.append(Result("bench_ingest", f"ingest({form}) median @{viewers:,}", med, "µs",
                                  f"<= {limit_med} µs @1M" if at_target else "", (med <= limit_med) if at_target else None, params=params))
            results.append(Result("bench_ingest", f"ingest({form}) p99 @{viewers:,}", p99, "µs",
                                  f"<= {limit_p99} µs @1M" if at_target else "", (p99 <= limit_p99) if at_target else None, params=params))
            del engine
        base = baseline_median(viewers if viewers <= 1_000_000 else None, events)
        if base is not None:
            ours = [r for r in results if r.name == f"ingest(dict) median @{viewers:,}"][0]
            ours.baseline = base
            ours.ratio = base / ours.value
            ours.target = (ours.target + "; " if ours.target else "") + ">= 4x baseline"
    return results


def baseline_median(viewers: int | None, events: list[dict], variants=()) -> float | None:
    """Median µs per event of the pure-Python baseline on the same events (None if unavailable);
    ``variants``: the generated rules of the 50-rule file, when measuring that one."""
    if viewers is None:
        return None
    try:
        from .baseline import BaselineEngine
    except ImportError:
        return None
    base = BaselineEngine(variants=variants)
    for v in range(viewers):
        base.ingest({"type": "enter", "viewer": v, "room": "r1", "ts": events[0]["ts"] - 61.0 + v * (60.0 / viewers)})
    lat = latencies(base.ingest, events[: len(events) // 3], repeat=1)
    return percentile(lat, 50)


if __name__ == "__main__":
    import sys

    # `--viewers N[,N...]` measures at other population sizes (e.g. 100000)
    argv = sys.argv[1:]
    sizes = None
    if "--viewers" in argv:
        i = argv.index("--viewers")
        sizes = tuple(int(x) for x in argv[i + 1].split(","))
        del argv[i:i + 2]
    raise SystemExit(cli("bench_ingest", lambda quick: run(quick, sizes), argv))
