"""The ``segengine`` command line (docs/cli.md): check, replay, explain, simulate, demo, bench, test, compile.

Exit codes: 0 ok; 1 rule or data errors (a bad rules file, a malformed event, a failing
rule test); 2 usage (bad arguments, an unreadable input file). Errors go to stderr, rules
errors as ``FILE:LINE:COL: message`` with the source line and a caret. ``--json`` prints
machine-readable results on stdout. Progress bars go to stderr, only when it is a terminal
or ``--progress`` is given.

This module holds only the argument parser and :func:`main`, which maps errors to exit codes.
The rest, one concern per module:

- ``commands``: check, test, compile, bench; ``replay``, ``explain``, ``simulate``, ``demo``: those
  commands (``replay.Replay`` feeds events to an engine and keeps what the summary needs);
  ``profiles``: the ``--profiles`` file of replay and explain;
- ``summary``: the replay summary as text tables (rules, segment timeline, funnel, viewer kinds);
- ``inputs``: rules and event files, NDJSON chunks; ``progress``: the progress bar;
- ``output``: exit codes, the error classes, number formats, ``--json`` error output.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..errors import RulesError
from .commands import cmd_bench, cmd_check, cmd_compile, cmd_test, repo_root
from .demo import DEMO_VIEWERS, cmd_demo
from .explain import cmd_explain, parse_at
from .inputs import bundled_rules, iter_chunks
from .output import (
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_USAGE,
    DataError,
    UsageError,
    clock,
    diagnostic_json,
    json_failure,
)
from .progress import Progress
from .replay import CHUNK_LINES, FUNNEL, Replay, cmd_replay
from .report import cmd_report
from .simulate import cmd_simulate
from .summary import render_funnel, render_replay

# main and build_parser, and the parts that tests and scripts drive directly
__all__ = ["FUNNEL", "DataError", "Progress", "Replay", "UsageError", "build_parser", "bundled_rules", "clock",
           "iter_chunks", "main", "render_funnel", "render_replay", "repo_root"]


def _duration(text: str) -> float:
    from ..testing.ruletest import parse_time

    try:
        return parse_time(text if any(c.isalpha() for c in text) else float(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segengine", description="In-process rule engine for live-stream e-commerce audience targeting.",
        epilog="Exit codes: 0 ok, 1 rule or data errors, 2 usage. Docs: docs/cli.md")
    parser.add_argument("--version", action="version", version=f"segengine {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    progress_flag = argparse.ArgumentParser(add_help=False)
    progress_flag.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                               help="progress bar on stderr (default: only when stderr is a terminal)")

    p = sub.add_parser("check", parents=[json_flag],
                       help="check a rules file (or every *.toml in a directory); report every error with its position",
                       description="Load and type-check a rules file, a rule-test file (*.test.toml, checked, not run) "
                                   "or every *.toml in a directory. Errors: FILE:LINE:COL: message, source line, caret.")
    p.add_argument("rules", metavar="RULES", help="rules file (TOML), rule-test file, or a directory of them")
    p.add_argument("--compile", action="store_true", help="also compile the kernels (fills the cache)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("replay", parents=[json_flag, progress_flag], help="run an NDJSON event file through rules",
                       description="Stream EVENTS (NDJSON, '-' for stdin) through RULES in batches, write the actions "
                                   "as NDJSON and print a summary: actions per rule, segment sizes, funnel.")
    p.add_argument("rules", metavar="RULES", help="rules file (TOML)")
    p.add_argument("events", metavar="EVENTS.jsonl", help="events, one JSON object per line ('-': stdin)")
    p.add_argument("-o", "--output", metavar="ACTIONS.jsonl", help="write the actions here as NDJSON ('-': stdout)")
    p.add_argument("--skip-errors", action="store_true",
                   help="report malformed events and go on (exit code 1 at the end) instead of stopping")
    p.add_argument("--chunk", type=_positive_int, default=CHUNK_LINES, metavar="N",
                   help=f"events per ingest_many call (default {CHUNK_LINES})")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on 127.0.0.1:PORT during the replay (needs segengine[metrics])")
    p.add_argument("--timeline", type=_duration, default=1800.0, metavar="DURATION",
                   help="sample segment sizes every DURATION of event time (default 30m; 0: off)")
    p.add_argument("--profiles", metavar="PROFILES.jsonl",
                   help="set these viewer profiles (JSON lines, as simulate --profiles-out writes) before the replay")
    p.add_argument("--report", metavar="REPORT.html", help="also write the HTML report (per room charts) here")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("report", help="write the HTML report of a saved replay --json summary",
                       description="Write one self-contained HTML file (no network needed to view it) from the JSON "
                                   "that replay --json printed: per room tiles, audience, segments, funnel, dwell, GMV "
                                   "and actions per rule over stream time.")
    p.add_argument("summary", metavar="REPLAY.json", help="the output of segengine replay --json")
    p.add_argument("-o", "--output", metavar="REPORT.html", required=True, help="the HTML file to write")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("explain", parents=[json_flag, progress_flag],
                       help="replay events, then explain why a rule did or did not fire for a viewer",
                       description="Replay EVENTS through RULES (as replay does) to the end of the stream or to --at, "
                                   "then print engine.explain(VIEWER, RULE): the condition with its values, the "
                                   "rule's firings for the viewer during the replay, and what suppresses it.")
    p.add_argument("rules", metavar="RULES", help="rules file (TOML)")
    p.add_argument("events", metavar="EVENTS.jsonl", help="events, one JSON object per line ('-': stdin)")
    p.add_argument("viewer", metavar="VIEWER", nargs="?",
                   help="viewer id (an integer id if the events use integer ids); none with --room")
    p.add_argument("rule", metavar="RULE", nargs="?", help="rule name")
    p.add_argument("--room", metavar="ROOM",
                   help="explain a room rule ([[room_rules]]) in this room: segengine explain RULES EVENTS RULE --room ROOM")
    p.add_argument("--at", type=parse_at, metavar="TS|+DURATION",
                   help="replay only up to this event time (unix seconds, as the events' ts) or this long after "
                        "the first event (+90m), and explain at that time")
    p.add_argument("--profiles", metavar="PROFILES.jsonl", help="set these viewer profiles before the replay")
    p.add_argument("--skip-errors", action="store_true",
                   help="report malformed events and go on (exit code 1 at the end) instead of stopping")
    p.set_defaults(func=cmd_explain)

    workload = argparse.ArgumentParser(add_help=False)
    workload.add_argument("--viewers", type=int, default=10_000, metavar="N", help="viewers arriving (default 10000)")
    workload.add_argument("--hours", type=float, default=3.0, metavar="H", help="stream length (default 3)")
    workload.add_argument("--rooms", type=int, default=1, metavar="R", help="rooms (default 1)")
    workload.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")

    p = sub.add_parser("simulate", parents=[workload, json_flag, progress_flag],
                       help="write the standard synthetic workload as NDJSON",
                       description="Synthetic live-room events (the benchmark workload), deterministic for a seed, streamed. "
                                   "Refuses to write to a terminal without -o.")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write here instead of stdout ('-': stdout, even a terminal)")
    p.add_argument("--with-kind", action="store_true", help="add the true viewer kind to enter events")
    p.add_argument("--string-ids", action="store_true", help="viewer ids 'u1', 'u2' ... instead of integers")
    p.add_argument("--profiles-out", metavar="FILE",
                   help="give viewers profiles (age, gender, region, level, tz; level steers buying), write them here")
    p.add_argument("--schedule", metavar="FILE|builtin",
                   help="content schedule (TOML/JSON slots of category, price band, weak) that steers views and stays")
    p.add_argument("--rules", metavar="RULES.toml", help="run these rules in the loop (for --effect)")
    p.add_argument("--effect", action="append", default=[], metavar="RULE=P",
                   help="a viewer who gets RULE's action pays with probability P (0..1) on top of its own "
                        "behaviour; held-out viewers are untouched (needs --rules; repeatable)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("demo", parents=[json_flag, progress_flag],
                       help="simulate a 3-hour room and tell what the bundled rules did",
                       description="Simulate a live room and replay it through the bundled example rules.")
    p.add_argument("--viewers", type=int, default=DEMO_VIEWERS, metavar="N", help=f"viewers (default {DEMO_VIEWERS})")
    p.add_argument("--hours", type=float, default=3.0, metavar="H", help="stream length (default 3)")
    p.add_argument("--rooms", type=int, default=1, metavar="R", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--rules", metavar="RULES", help="rules file (default: the bundled live_room.toml)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench", help="run the benchmark suite (source tree only)",
                       description="Run benchmarks/run.py from the source tree.")
    p.add_argument("--quick", action="store_true", help="small sizes only")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("test", parents=[json_flag], help="run rule tests (TOML) against their rules file",
                       description="Run the [[tests]] of each test file; see docs/cli.md for the format.")
    p.add_argument("files", metavar="RULES_TEST.toml", nargs="+", help="test files")
    p.add_argument("-v", "--verbose", action="store_true", help="also show the action count of passing tests")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("compile", parents=[json_flag],
                       help="compile rules and show where the kernel is cached, or write its source (--emit)",
                       description="Compile the kernels of RULES (or load them from the compile cache) and report the "
                                   "time and the generated module's path; with --emit, write the generated Python "
                                   "module instead (nothing is compiled). See docs/cli.md.")
    p.add_argument("rules", metavar="RULES", help="rules file (TOML)")
    p.add_argument("--emit", metavar="FILE", help="write the generated kernel module to FILE ('-': stdout)")
    p.set_defaults(func=cmd_compile)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 rule or data errors, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else EXIT_USAGE
    try:
        return args.func(args)
    except UsageError as err:
        print(f"segengine {args.command}: error: {err}", file=sys.stderr)
        json_failure(args, [{"kind": "usage", "message": str(err)}])
        return EXIT_USAGE
    except RulesError as err:
        n = len(err.diagnostics)
        print(f"{err}\n{n} error{'s' if n != 1 else ''}", file=sys.stderr)
        json_failure(args, [diagnostic_json(d) for d in err.diagnostics])
        return EXIT_ERRORS
    except DataError as err:
        print(str(err), file=sys.stderr)
        json_failure(args, [err.info], err.payload)
        return EXIT_ERRORS
    except BrokenPipeError:
        # The reader went away (`segengine simulate | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
