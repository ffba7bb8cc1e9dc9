"""Instructions per event of the compiled kernels, counted by cachegrind: a deterministic A/B.

Wall-clock A/B of a small kernel change is not usable on a shared machine: a change that saves
instructions can move single calls either way by 10 ns through code layout alone. Cachegrind
counts instructions, stable to 0.1 per event from run to run. This replays the first N and the
first 2N events of the replay benchmark's workload (10 k viewers) one by one under cachegrind
for each of ``bench_keyed``'s rules files, and prints the difference per event: the JIT code
(cachegrind's ``???:???``, which is the Numba kernels) and the whole process (Python included),
with first-level instruction and data cache misses and mispredicted branches.

    python -m benchmarks.instructions                      # bare, standard, keyed, room view
    python -m benchmarks.instructions "room view" --events 50000

Needs valgrind (``apt-get install valgrind``); a tool for developers, not part of the suite
(``segengine bench`` does not run it). About a minute per rules file with warm compile caches.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIGS = ("bare", "standard", "keyed", "room view")
COLUMNS = ("Ir", "I1mr", "D1mr", "Bcm", "Bim")


def _events_file(path: Path) -> Path:
    if not path.exists():
        from .data import workload
        path.write_bytes(workload(10_000, 1.0))
    return path


def child(config: str, n: int, events: Path, rules_dir: Path) -> int:
    """Replay the first ``n`` events with the rules file ``config`` (run under cachegrind)."""
    import msgspec

    from segengine import Engine

    from .bench_keyed import files

    lines = events.read_bytes().split(b"\n", n)[:n]
    decoded = msgspec.json.decode(b"[" + b",".join(x for x in lines if x) + b"]") if n else []
    engine = Engine.from_file(files(rules_dir)[config]).warmup()
    ingest = engine.ingest
    for event in decoded:
        ingest(event)
    return len(decoded)


def _per_function(out_file: Path) -> dict[str, list[int]]:
    return parse_annotate(subprocess.run(["cg_annotate", f"--show={','.join(COLUMNS)}", "--threshold=0.0001",
                                          "--auto=no", str(out_file)], capture_output=True, text=True, check=True).stdout)


def parse_annotate(text: str) -> dict[str, list[int]]:
    """cg_annotate's per-function table: name -> the COLUMNS counts ("PROGRAM TOTALS" included)."""
    row = re.compile(r"\s*" + r"\s+".join([r"([\d,]+) \([^)]*\)"] * len(COLUMNS)) + r"\s+(\S.*)$")
    found = {}
    for line in text.splitlines():
        m = row.match(line)
        if m:
            found[m.group(len(COLUMNS) + 1)] = [int(m.group(i).replace(",", "")) for i in range(1, len(COLUMNS) + 1)]
    return found


def measure(config: str, n: int, events: Path, work: Path) -> dict[str, list[float]]:
    """Per event, between N and 2N events: {"jit": [...], "total": [...]} in COLUMNS order."""
    me = [sys.executable, "-m", "benchmarks.instructions", "--child", config]
    rules_dir = work / "rules"
    rules_dir.mkdir(exist_ok=True)
    # compile (and cache) the kernels outside valgrind first: the counted runs only load them
    subprocess.run([*me, "--events", "10", "--events-file", str(events), "--rules-dir", str(rules_dir)], check=True)
    runs = []
    for count in (n, 2 * n):
        out = work / f"cg-{config.replace(' ', '_')}-{count}.out"
        runs.append((subprocess.Popen(
            ["valgrind", "--tool=cachegrind", "--cache-sim=yes", "--branch-sim=yes", f"--cachegrind-out-file={out}",
             *me, "--events", str(count), "--events-file", str(events), "--rules-dir", str(rules_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out))
    for proc, _ in runs:
        if proc.wait() != 0:
            raise SystemExit(f"valgrind failed for {config!r} (is valgrind installed?)")
    small, large = (_per_function(out) for _, out in runs)
    return {label: [(b - a) / n for a, b in zip(small[key], large[key])]
            for label, key in (("jit", "???:???"), ("total", "PROGRAM TOTALS"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", help=f"rules files of bench_keyed (default: all of {CONFIGS})")
    parser.add_argument("--events", type=int, default=100_000, help="N: the figure is (2N events - N events) / N")
    parser.add_argument("--events-file", type=Path, default=Path(tempfile.gettempdir()) / "segengine-instr-10k.ndjson")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--rules-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.events, args.events_file, args.rules_dir)
        return 0
    events = _events_file(args.events_file)
    work = Path(tempfile.mkdtemp(prefix="segengine-instr-"))
    print(f"{'rules':12s} {'code':6s} " + " ".join(f"{c:>8s}" for c in COLUMNS) + "   (per event)")
    for config in args.configs or CONFIGS:
        for label, values in measure(config, args.events, events, work).items():
            print(f"{config:12s} {label:6s} " + " ".join(f"{v:8.2f}" for v in values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
