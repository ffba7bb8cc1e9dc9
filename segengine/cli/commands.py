"""The rules-file and tooling commands: ``check``, ``test``, ``compile`` and ``bench``.

``replay``, ``simulate`` and ``demo`` have modules of their own (replay.py, simulate.py, demo.py).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..engine import Engine
from ..errors import RulesError
from ..rules.load import load_rules_file
from .inputs import PACKAGE_DIR, load_rules
from .output import (
    EXIT_ERRORS,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    diagnostic_json,
    plural,
)


def cmd_check(args: argparse.Namespace) -> int:
    """Check a rules file, a rule-test file (``*.test.toml``), or every ``*.toml`` in a directory."""
    path = Path(args.rules)
    if path.is_dir():
        # rules files first, then rule-test files (which name a rules file, maybe one of these)
        files = sorted((p for p in path.glob("*.toml") if p.is_file()),
                       key=lambda p: (p.name.endswith(".test.toml"), p.name))
        if not files:
            raise UsageError(f"no *.toml files in directory {args.rules!r}")
        names = [str(p) for p in files]
    elif path.is_file():
        names = [args.rules]
    else:
        raise UsageError(f"cannot read rules file {args.rules!r}: no such file or directory")
    results, seen, failed = [], set(), 0
    for name in names:
        result, report = _check_file(name, args.compile)
        results.append(result)
        if result["ok"]:
            if not args.json:
                print(report)
            continue
        failed += 1
        # a test file repeats the errors of its rules file: print each diagnostic once
        fresh = [d for d in report if (d.file, d.line, d.col, d.message) not in seen]
        seen.update((d.file, d.line, d.col, d.message) for d in report)
        n = len(report)
        text = "\n".join(str(d) for d in fresh)
        if len(fresh) < n:
            k = n - len(fresh)
            text += ("\n" if text else "") + f"({plural(k, 'error')} of the rules file it names, reported above)"
        print(f"{text}\n{n} error{'s' if n != 1 else ''} in {name}", file=sys.stderr)
    if args.json:
        print(json.dumps(results[0] if not path.is_dir() else results, indent=2))
    elif len(names) > 1:
        print(f"checked {plural(len(names), 'file')} in {args.rules}: {len(names) - failed} ok, {failed} with errors")
    return EXIT_ERRORS if failed else EXIT_OK


def _check_file(name: str, compile_: bool) -> tuple[dict[str, Any], Any]:
    """(JSON result, the ok line or the list of diagnostics) for one file; prints nothing."""
    if name.endswith(".test.toml"):
        return _check_test_file(name)
    try:
        rules = load_rules_file(name)
    except RulesError as err:
        return {"file": name, "ok": False, "errors": [diagnostic_json(d) for d in err.diagnostics]}, err.diagnostics
    compiled = 0.0
    if compile_:
        started = time.perf_counter()
        Engine(rules).warmup()
        compiled = time.perf_counter() - started
    n_event = sum(r.is_event_rule for r in rules.rules)
    result = {"file": name, "ok": True, "errors": [],
              "rules": [r.name for r in rules.rules], "segments": list(rules.segments),
              "profile": list(rules.profile), "categories": list(rules.categories),
              "event_types": list(rules.event_types)}
    line = (f"{name}: ok: {plural(len(rules.rules), 'rule')} ({len(rules.rules) - n_event} state, "
            f"{n_event} event), {plural(len(rules.segments), 'segment')}, "
            f"{plural(len(rules.profile), 'profile attribute')}"
            + (f"; compiled in {compiled:.1f} s" if compile_ else ""))
    return result, line


def _check_test_file(name: str) -> tuple[dict[str, Any], Any]:
    """A rule-test file is checked as one (its keys, times, names and its rules file), not run."""
    from ..testing.ruletest import load_suite

    try:
        suite = load_suite(name)
    except RulesError as err:
        return {"file": name, "ok": False, "errors": [diagnostic_json(d) for d in err.diagnostics]}, err.diagnostics
    result = {"file": name, "ok": True, "errors": [], "rules_file": suite.rules_path,
              "tests": [case.name for case in suite.cases]}
    line = f"{name}: ok: {plural(len(suite.cases), 'rule test')} of {suite.rules_path} (run them with segengine test)"
    return result, line


def cmd_test(args: argparse.Namespace) -> int:
    from ..testing.ruletest import format_report, load_suite, run_suite

    reports = []
    status = EXIT_OK
    for path in args.files:
        if not Path(path).is_file():
            raise UsageError(f"cannot read test file {path!r}: no such file")
        try:
            suite = load_suite(path)
        except RulesError as err:
            n = len(err.diagnostics)
            print(f"{err}\n{n} error{'s' if n != 1 else ''}; no tests run from {path}", file=sys.stderr)
            status = EXIT_ERRORS
            reports.append({"file": path, "error": str(err), "passed": 0, "failed": 0, "tests": []})
            continue
        report = run_suite(suite)
        if not report.ok:
            status = EXIT_ERRORS
        if args.json:
            reports.append(report.to_json())
        else:
            print(format_report(report, verbose=args.verbose))
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
    return status


def cmd_compile(args: argparse.Namespace) -> int:
    """Write the generated kernel module (``--emit``), or compile it and tell where it is cached."""
    from .. import config
    from ..compiler import compile_rules, module_source
    from ..kernels.primitives import PURE_PYTHON

    if args.json and args.emit == "-":
        raise UsageError("--json and --emit - both want stdout: emit to a file")
    rules = load_rules(args.rules)
    if args.emit is not None:
        source = module_source(rules)
        lines = source.count("\n")
        if args.emit == "-":
            sys.stdout.write(source)
            return EXIT_OK
        try:
            Path(args.emit).write_text(source, encoding="utf-8")
        except OSError as err:
            raise UsageError(f"cannot write {args.emit!r}: {err.strerror}") from None
        if args.json:
            print(json.dumps({"file": args.rules, "ok": True, "emit": args.emit, "lines": lines}, indent=2))
        else:
            print(f"{args.rules}: wrote the generated kernel module ({lines:,} lines) to {args.emit}")
        return EXIT_OK
    started = time.perf_counter()
    module = compile_rules(rules).path  # generated and imported; Numba compiles at the first call
    # Numba keeps the machine code next to the module, in __pycache__ (index files *.nbi)
    cached = any((module.parent / "__pycache__").glob(f"{module.stem}.*.nbi"))
    Engine(rules).warmup()  # every kernel an engine calls, compiled or loaded from the cache
    seconds = time.perf_counter() - started
    lines = module.read_text(encoding="utf-8").count("\n")
    how = ("loaded as plain Python (NUMBA_DISABLE_JIT=1: nothing compiled)" if PURE_PYTHON
           else "loaded from the compile cache" if cached else "compiled")
    if args.json:
        print(json.dumps({"file": args.rules, "ok": True, "seconds": round(seconds, 3), "module": str(module),
                          "lines": lines, "cache_dir": str(config.cache_dir()), "jit": not PURE_PYTHON,
                          "cached": cached and not PURE_PYTHON}, indent=2))
    else:
        where = "SEGENGINE_CACHE_DIR" if os.environ.get("SEGENGINE_CACHE_DIR") else "set SEGENGINE_CACHE_DIR to move it"
        print(f"{args.rules}: {how} in {seconds:.1f} s\n"
              f"  kernel module: {module} ({lines:,} lines)\n"
              f"  cache directory: {config.cache_dir()} ({where})")
    return EXIT_OK


def repo_root() -> Path:
    """The parent of the ``segengine`` package directory: the source tree in an editable install."""
    return PACKAGE_DIR.parent


def cmd_bench(args: argparse.Namespace) -> int:
    root = repo_root()
    if not (root / "benchmarks" / "run.py").is_file():
        print(f"segengine: error: the benchmark suite (benchmarks/run.py) is not next to the package at {root}.\n"
              "It ships with the source tree only: clone the repository and install it with "
              "`pip install -e .`, then run `segengine bench` from there.", file=sys.stderr)
        return EXIT_USAGE
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    run = importlib.import_module("benchmarks.run")
    argv = (["--quick"] if args.quick else []) + (["--json", args.json] if args.json else []) + list(args.rest)
    try:
        return int(run.main(argv) or 0)
    except SystemExit as exit_:            # the suite's own argparse
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
