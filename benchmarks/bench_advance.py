"""``advance`` cost: per due timer, and per call when nothing is due, at 1 M viewers.
Targets: <= 0.3 µs per due timer; <= 20 µs per call when nothing is due."""

from __future__ import annotations

import time

from .common import Result, cli, median_of
from .data import T0, populated


def run(quick: bool) -> list[Result]:
    viewers = 20_000 if quick else 1_000_000
    engine = populated(viewers)  # every viewer entered in [T0, T0 + 60): idle expiry at T0 + 90..150
    params = {"viewers": viewers}
    calls = 2000

    def idle_calls() -> float:
        t = T0 + 61.0
        started = time.perf_counter()
        for i in range(calls):
            engine.advance(t + i * 1e-6)
        return (time.perf_counter() - started) / calls * 1e6

    nothing = median_of(idle_calls, 5)
    timers_before = engine.stats()["timers"]
    started = time.perf_counter()
    fired = engine.advance(T0 + 200.0)  # every viewer's idle timeout falls due
    elapsed = time.perf_counter() - started
    due = engine.stats()["timers"] - timers_before
    per_timer = elapsed / max(1, due) * 1e6
    return [
        Result("bench_advance", f"advance, nothing due @{viewers:,}", nothing, "µs", "<= 20 µs @1M",
               nothing <= 20 if viewers >= 1_000_000 else None, params=params),
        Result("bench_advance", f"advance per due timer @{viewers:,}", per_timer, "µs", "<= 0.3 µs", per_timer <= 0.3,
               params={**params, "timers": due, "actions": len(fired)}),
    ]


if __name__ == "__main__":
    raise SystemExit(cli("bench_advance", run))
