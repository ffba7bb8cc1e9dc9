"""What the command line writes and how it fails: exit codes, errors, text formats, ``--json`` errors.

Exit codes: 0 ok; 1 rule or data errors (a ``RulesError``, :class:`DataError`); 2 usage
(:class:`UsageError`: bad arguments, an unreadable input file). :func:`json_failure` writes the one
JSON object a failing ``--json`` command still prints on stdout, :func:`diagnostic_json` is a rules
error in that form. :func:`clock`, :func:`span`, :func:`plural`, :func:`tenths` and :func:`pct`
format numbers and times for the text reports.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from ..runtime.actions import format_value

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or an unreadable input: exit code 2."""


class DataError(Exception):
    """A malformed event or file content: exit code 1. ``str`` is the full message.

    ``info`` is the error as JSON (``kind``, ``message``, ``file``, ``line``, ``col``, ``field``,
    ``source_line``); ``payload`` holds more keys for the ``--json`` output (the summary of
    what was replayed before the stop).
    """

    def __init__(self, message: str, info: dict[str, Any] | None = None):
        super().__init__(message)
        self.info = info or {"kind": "data", "message": message}
        self.payload: dict[str, Any] = {}


def clock(seconds: float) -> str:
    """3725 -> ``1:02:05``."""
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def span(seconds: float) -> str:
    """A duration for prose: ``45 s``, ``12 min``, ``3.0 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plural(n: int, word: str) -> str:
    """``plural(1, "rule")`` -> ``1 rule``; ``plural(1200, "rule")`` -> ``1,200 rules``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def tenths(part: float, whole: float) -> int:
    """``part / whole`` in tenths of a percent, rounded once, half up: 939/2000 -> 470."""
    if isinstance(part, int) and isinstance(whole, int):
        return (2000 * part + whole) // (2 * whole)     # exact integer arithmetic
    return math.floor(1000.0 * part / whole + 0.5)


def pct(part: float, whole: float) -> str:
    """``46.9 %``: one rounding of the exact ratio (``-`` when ``whole`` is 0)."""
    return f"{tenths(part, whole) / 10:.1f} %" if whole else "-"


def diagnostic_json(d: Any) -> dict[str, Any]:
    """One rules-file diagnostic (``RulesError.diagnostics``) as the JSON of ``--json`` output."""
    return {"kind": "rules", "file": d.file, "line": d.line, "col": d.col, "message": d.message,
            "source_line": d.source_line}


def params_text(params: dict[str, Any]) -> str:
    """An action's params for a text report: ``pct=10 item=i027`` (empty values left out)."""
    return " ".join(f"{k}={format_value(v)}" for k, v in params.items() if v != "")


def json_failure(args: argparse.Namespace, errors: list[dict[str, Any]], payload: dict[str, Any] | None = None) -> None:
    """With ``--json``, a command that fails still writes one JSON object on stdout."""
    if getattr(args, "json", None) is not True:   # bench's --json is a path
        return
    print(json.dumps({**(payload or {}), "ok": False, "errors": errors}, indent=2, default=str))
