"""``segengine simulate``: the standard synthetic workload as NDJSON, streamed (``demo`` replays it too)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator
from itertools import islice
from typing import Any

import msgspec

from .output import EXIT_OK, UsageError
from .progress import Progress, progress_enabled

_encode_lines = msgspec.json.Encoder().encode_lines


def simulate_blocks(viewers: int, hours: float, rooms: int, seed: int, with_kind: bool, string_ids: bool,
                    progress: Progress, **options: Any) -> Iterator[bytes]:
    """NDJSON blocks of the standard workload (the same bytes as ``simulate.write_ndjson``)."""
    from ..testing.simulate import iter_events

    start = 1_700_000_000.0
    events = iter_events(viewers=viewers, hours=hours, rooms=rooms, seed=seed, start_ts=start,
                         viewer_ids="str" if string_ids else "int", with_kind=with_kind, **options)
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
    from ..testing.simulate import rehearsal_options

    try:  # --schedule, --profiles-out
        options, profiles = rehearsal_options(args.schedule, args.profiles_out, args.output)
    except ValueError as err:
        raise UsageError(str(err)) from None
    options.update(effect_options(args))
    progress = Progress("simulate", args.hours * 3600.0, progress_enabled(args.progress))
    started = time.perf_counter()
    n = 0
    if args.output in (None, "-"):
        out = sys.stdout.buffer
    else:
        try:
            out = open(args.output, "wb")
        except OSError as err:
            if profiles is not None:
                profiles.out.close()
            raise UsageError(f"cannot write {args.output!r}: {err.strerror}") from None
    try:
        for block in simulate_blocks(args.viewers, args.hours, args.rooms, args.seed, args.with_kind, args.string_ids,
                                     progress, **options):
            out.write(block)
            n += block.count(b"\n")
        out.flush()
        if profiles is not None:
            profiles.flush()
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        if profiles is not None:
            profiles.out.close()
    if args.output not in (None, "-"):
        info = {"file": args.output, "events": n, "viewers": args.viewers, "hours": args.hours, "rooms": args.rooms,
                "seed": args.seed, "seconds": round(time.perf_counter() - started, 3)}
        if profiles is not None:
            info.update(profiles_file=args.profiles_out, profiles=profiles.count)
        if args.schedule is not None:
            info["schedule"] = args.schedule
        print(json.dumps(info) if args.json else
              f"wrote {n:,} events ({args.viewers:,} viewers, {args.hours:g} h, {args.rooms} room"
              f"{'s' if args.rooms != 1 else ''}, seed {args.seed}) to {args.output}"
              + (f"; {profiles.count:,} profiles to {args.profiles_out}" if profiles is not None else ""))
    return EXIT_OK


def effect_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--rules FILE --effect RULE=P``: the engine in the loop and the rules' effects (``iter_events``)."""
    if not args.effect:
        if args.rules is not None:
            raise UsageError("--rules is for --effect RULE=P: give an effect, or drop --rules")
        return {}
    if args.rules is None:
        raise UsageError("--effect needs --rules FILE: the rules whose actions take effect")
    effects: dict[str, float] = {}
    for spec in args.effect:
        rule, eq, p = spec.partition("=")
        try:
            prob = float(p) if eq else math.nan
        except ValueError:
            prob = math.nan
        if not rule or not 0.0 <= prob <= 1.0:
            raise UsageError(f"--effect {spec!r}: expected RULE=P with P a probability in [0, 1], such as cart_nudge=0.2")
        effects[rule] = prob
    from ..engine import Engine
    engine = Engine.from_file(args.rules)  # a bad file: RulesError, reported as for replay
    known = {r.name for r in engine.rules.rules}
    for rule in effects:
        if rule not in known:
            from ..rules.suggest import did_you_mean
            raise UsageError(f"--effect: no rule {rule!r} in {args.rules}{did_you_mean(rule, known)}")
    return {"effects": effects, "engine": engine}


def check_workload(args: argparse.Namespace) -> None:
    if args.viewers < 0:
        raise UsageError("--viewers must be >= 0")
    if not (0 < args.hours < math.inf):
        raise UsageError("--hours must be a positive number")
    if args.rooms < 1:
        raise UsageError("--rooms must be >= 1")
