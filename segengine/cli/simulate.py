"""``segengine simulate``: the standard synthetic workload as NDJSON, streamed (``demo`` replays it too)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator
from itertools import islice

import msgspec

from .output import EXIT_OK, UsageError
from .progress import Progress, progress_enabled

_encode_lines = msgspec.json.Encoder().encode_lines


def simulate_blocks(viewers: int, hours: float, rooms: int, seed: int, with_kind: bool, string_ids: bool,
              progress: Progress) -> Iterator[bytes]:
    """NDJSON blocks of the standard workload (the same bytes as ``simulate.write_ndjson``)."""
    from ..testing.simulate import iter_events

    start = 1_700_000_000.0
    events = iter_events(viewers=viewers, hours=hours, rooms=rooms, seed=seed, start_ts=start,
                         viewer_ids="str" if string_ids else "int", with_kind=with_kind)
    n = 0
    while batch := list(islice(events, 1024)):
        n += len(batch)
        progress.update(batch[-1]["ts"] - start, n)
        yield _encode_lines(batch)
    progress.close(hours * 3600.0, n)


def cmd_simulate(args: argparse.Namespace) -> int:
    check_workload(args)
    if args.output is None and sys.stdout.isatty():  # as gzip and zstd refuse to write to a terminal
        raise UsageError("not writing NDJSON to a terminal (the default run is about 65 MB): write it to a file "
                         "with -o FILE, or pipe it (segengine simulate | segengine replay RULES -); "
                         "-o - writes to stdout anyway")
    progress = Progress("simulate", args.hours * 3600.0, progress_enabled(args.progress))
    started = time.perf_counter()
    n = 0
    if args.output in (None, "-"):
        out = sys.stdout.buffer
    else:
        try:
            out = open(args.output, "wb")
        except OSError as err:
            raise UsageError(f"cannot write {args.output!r}: {err.strerror}") from None
    try:
        for block in simulate_blocks(args.viewers, args.hours, args.rooms, args.seed, args.with_kind, args.string_ids, progress):
            out.write(block)
            n += block.count(b"\n")
        out.flush()
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    if args.output not in (None, "-"):
        info = {"file": args.output, "events": n, "viewers": args.viewers, "hours": args.hours, "rooms": args.rooms,
                "seed": args.seed, "seconds": round(time.perf_counter() - started, 3)}
        print(json.dumps(info) if args.json else
              f"wrote {n:,} events ({args.viewers:,} viewers, {args.hours:g} h, {args.rooms} room"
              f"{'s' if args.rooms != 1 else ''}, seed {args.seed}) to {args.output}")
    return EXIT_OK


def check_workload(args: argparse.Namespace) -> None:
    if args.viewers < 0:
        raise UsageError("--viewers must be >= 0")
    if not (0 < args.hours < math.inf):
        raise UsageError("--hours must be a positive number")
    if args.rooms < 1:
        raise UsageError("--rooms must be >= 1")
