"""``segengine report REPLAY.json -o report.html``: the HTML report from a saved ``replay --json``."""

from __future__ import annotations

import argparse
import json

from ..report import write_report
from .output import EXIT_OK, DataError, UsageError


def cmd_report(args: argparse.Namespace) -> int:
    try:
        with open(args.summary, encoding="utf-8") as f:
            summary = json.load(f)
    except OSError as err:
        raise UsageError(f"cannot read {args.summary!r}: {err.strerror}") from None
    except ValueError as err:
        raise DataError(f"{args.summary}: not a replay --json summary: {err}") from None
    if not isinstance(summary, dict) or "room_metrics" not in summary:
        raise DataError(f"{args.summary}: not a replay --json summary (no \"room_metrics\")")
    save(summary, args.output)
    return EXIT_OK


def save(summary: dict, path: str) -> None:
    """Write the report, a usage error if the file cannot be written."""
    try:
        write_report(summary, path)
    except OSError as err:
        raise UsageError(f"cannot write {path!r}: {err.strerror}") from None
