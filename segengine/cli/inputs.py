"""What the command line reads: rules files, event files (or stdin) as chunks of NDJSON lines, the bundled rules.

An input that cannot be read raises :class:`~segengine.cli.output.UsageError` (exit code 2).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import IO

from ..rules.load import RuleSet, load_rules_file
from ..schema.events import UTF8_BOM
from .output import UsageError
from .progress import Progress

PACKAGE_DIR = Path(__file__).resolve().parent.parent   # segengine/ (this file is segengine/cli/inputs.py)


def bundled_rules() -> Path:
    """``segengine/data/live_room.toml``, the copy of examples/live_room.toml shipped in the package."""
    return PACKAGE_DIR / "data" / "live_room.toml"


def load_rules(path: str) -> RuleSet:
    """The rules file at ``path``; a missing file is a usage error, a bad one a ``RulesError``."""
    if not Path(path).is_file():
        raise UsageError(f"cannot read rules file {path!r}: no such file")
    return load_rules_file(path)


def open_events(path: str) -> tuple[IO[bytes], int | None]:
    """(binary stream, size in bytes or None) of an events file, ``-`` for stdin (size unknown)."""
    if path == "-":
        return sys.stdin.buffer, None
    try:
        f = open(path, "rb")
    except OSError as err:
        raise UsageError(f"cannot read events file {path!r}: {err.strerror}") from None
    try:
        size = os.fstat(f.fileno()).st_size
    except OSError:
        size = None
    return f, size


def iter_chunks(stream: IO[bytes], size: int, progress: Progress | None = None) -> Iterator[tuple[list[bytes], list[int]]]:
    """Non-blank lines of ``stream`` in chunks of ``size``, with their 1-based line numbers.

    A UTF-8 byte order mark opening the stream is dropped.
    """
    lines: list[bytes] = []
    nos: list[int] = []
    done = 0
    rest = iter(stream)
    first = next(rest, b"")
    if first[:3] == UTF8_BOM:
        first = first[3:]
    for no, line in enumerate(chain((first,), rest), 1):
        done += len(line)
        if line.strip():
            lines.append(line)
            nos.append(no)
            if len(lines) >= size:
                yield lines, nos
                if progress:
                    progress.update(done, no)
                lines, nos = [], []
    if lines:
        if not lines[-1].endswith(b"\n"):
            lines[-1] += b"\n"
        yield lines, nos
