"""Room queries over every viewer: ``segment_size`` and ``segment_members`` at 1 M viewers, as
viewers scanned per second (one kernel call each). Target (issue 16): ``segment_members``
>= 10 M viewers/s scanned."""

from __future__ import annotations

import time

from .common import Result, cli, median_of
from .data import T0, populated


def run(quick: bool) -> list[Result]:
    viewers = 100_000 if quick else 1_000_000
    engine = populated(viewers)  # every viewer present, entered in the first minute
    engine.advance(T0 + 61.0)
    params = {"viewers": viewers, "segment": "passerby"}
    engine.segment_size("passerby"), engine.segment_members("passerby")  # compile outside the timing
    repeat = 3 if quick else 7

    def rate(query) -> float:
        started = time.perf_counter()
        query()
        return viewers / (time.perf_counter() - started)

    size = median_of(lambda: rate(lambda: engine.segment_size("passerby")), repeat)
    members = median_of(lambda: rate(lambda: engine.segment_members("passerby")), repeat)
    found = len(engine.segment_members("passerby"))
    return [
        Result("bench_queries", f"segment_size scan @{viewers:,}", size, "viewers/s", params=params),
        Result("bench_queries", f"segment_members scan @{viewers:,}", members, "viewers/s", ">= 10 M viewers/s",
               members >= 10e6, params={**params, "members": found}),
    ]


if __name__ == "__main__":
    raise SystemExit(cli("bench_queries", run))
