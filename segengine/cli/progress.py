"""The progress bar: one line on stderr, only when stderr is a terminal or ``--progress`` is given."""

from __future__ import annotations

import sys
import time
from typing import IO


class Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second; no dependency."""

    WIDTH = 28

    def __init__(self, label: str, total: float | None, enabled: bool, stream: IO[str] | None = None):
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.last_draw = 0.0
        self.drawn = False

    def update(self, done: float, count: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.1:
            return
        self.last_draw = now
        self._draw(done, count, now)

    def _draw(self, done: float, count: int, now: float) -> None:
        elapsed = now - self.started
        rate = f"{count / elapsed:,.0f}/s" if elapsed > 0 else ""
        if self.total:
            frac = min(1.0, max(0.0, done / self.total))
            fill = int(frac * self.WIDTH)
            bar = f"[{'#' * fill}{'.' * (self.WIDTH - fill)}] {frac * 100:3.0f}%"
        else:
            bar = ""
        self.stream.write(f"\r{self.label} {bar} {count:,} events {elapsed:.1f} s {rate}   ")
        self.stream.flush()
        self.drawn = True

    def close(self, done: float, count: int) -> None:
        if self.enabled:
            self._draw(done, count, time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()


def progress_enabled(flag: bool | None) -> bool:
    """``--progress`` / ``--no-progress`` as given, else only when stderr is a terminal."""
    return sys.stderr.isatty() if flag is None else flag
