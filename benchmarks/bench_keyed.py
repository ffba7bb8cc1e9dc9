"""Keyed counters (``count(..., by = item)``): what a one-product coupon rule costs.

The standard rules (examples/live_room.toml) with and without one more rule,
``count(click|view|cart, 2m, by = item) >= 4``, measured interleaved in one run: single
``ingest`` median at 1 M viewers (quick: 10 k) and replay throughput of the standard workload.
Also the state per viewer it adds with ``keyed_slots = 8``, and that at 10 M viewers.
Target (issue 16): within 10 % of the rules without it.
"""

from __future__ import annotations

import statistics
import time

from segengine import Engine
from segengine.compiler.layout import build_layout
from segengine.rules.load import load_rules

from .bench_ingest import latencies
from .common import Result, cli
from .data import RULES, populated, single_events, workload

COUPON = """
[[rules]]
name = "one_product_coupon"
on = ["click", "view", "cart"]
when = "count(click|view|cart, 2m, by = item) >= 4"
then = "coupon"
params = { item = "{event.item}", touches = "{count(click|view|cart, 2m, by = item)}" }
once = "session"
"""


def files(tmp) -> tuple:
    base = RULES.read_text(encoding="utf-8")
    keyed = tmp / "live_room_keyed.toml"
    keyed.write_text(base + COUPON, encoding="utf-8")
    return RULES, keyed


def run(quick: bool) -> list[Result]:
    import tempfile
    from pathlib import Path

    tmp = Path(tempfile.mkdtemp(prefix="bench-keyed-"))
    off_file, on_file = files(tmp)
    viewers = 10_000 if quick else 1_000_000
    n_events = 20_000 if quick else 100_000
    engines = {"off": populated(viewers, off_file), "on": populated(viewers, on_file)}
    events = single_events(viewers, n_events)
    rounds = 3 if quick else 7
    med: dict[str, list[float]] = {"off": [], "on": []}
    for r in range(rounds):  # interleaved: off, on, on, off, ... so drift hits both alike
        for name in (("off", "on") if r % 2 == 0 else ("on", "off")):
            lat = latencies(engines[name].ingest, events, repeat=1)
            med[name].append(statistics.median(lat))
            for e in events:  # the next round starts later in stream time (same events, later)
                e["ts"] += n_events * 1e-4
    ingest_off, ingest_on = statistics.median(med["off"]), statistics.median(med["on"])

    data = workload(10_000 if quick else 100_000, hours=0.5 if quick else 1.0)
    rate: dict[str, list[float]] = {"off": [], "on": []}
    for r in range(rounds):
        for name, path in ((("off", off_file), ("on", on_file)) if r % 2 == 0 else (("on", on_file), ("off", off_file))):
            engine = Engine.from_file(path)
            started = time.perf_counter()
            engine.ingest_many(data)
            rate[name].append(data.count(b"\n") / (time.perf_counter() - started))
    replay_off, replay_on = statistics.median(rate["off"]), statistics.median(rate["on"])

    with_keyed = build_layout(load_rules(on_file.read_text(encoding="utf-8"), str(on_file))).bytes_per_viewer
    without = build_layout(load_rules(off_file.read_text(encoding="utf-8"), str(off_file))).bytes_per_viewer
    added = with_keyed - without
    params = {"viewers": viewers, "keyed_slots": 8, "rounds": rounds}
    ratio_ingest = ingest_on / ingest_off
    ratio_replay = replay_off / replay_on
    return [
        Result("bench_keyed", f"ingest (dict) median with a keyed rule @{viewers:,}", ingest_on, "us",
               "<= 1.10 x without", ratio_ingest <= 1.10 if not quick else None, baseline=ingest_off,
               params=params, note=f"without: {ingest_off:.3f} us; ratio {ratio_ingest:.3f}"),
        Result("bench_keyed", "replay throughput with a keyed rule", replay_on, "events/s",
               ">= 0.90 x without", ratio_replay <= 1.0 / 0.90 if not quick else None, baseline=replay_off,
               params=params, note=f"without: {replay_off:,.0f} events/s; ratio {replay_on / replay_off:.3f}"),
        Result("bench_keyed", "state per viewer added by one keyed window (keyed_slots = 8)", added, "bytes",
               params={"total_bytes_per_viewer": with_keyed, "without": without},
               note=f"{with_keyed} B/viewer in all; {with_keyed * 10_000_000 / 2**30:.2f} GiB of state arrays at 10 M viewers "
                    f"({without * 10_000_000 / 2**30:.2f} GiB without)"),
    ]


if __name__ == "__main__":
    raise SystemExit(cli("bench_keyed", run))
