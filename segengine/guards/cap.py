"""``cap = "NAME"``: a frequency cap of ``[caps] NAME = "N/DURATION"``: per viewer, at most N
firings of all the rules that name the cap in any window of that length (sliding, exact).

Columns: per cap, 1 + N VI columns ``cap:NAME:N/D[i]``: the ring head (the slot of the oldest
of the last N firing times) and the ring (``MISSING`` when unused). A firing is allowed when
the oldest of the cap's last N firings is outside the window. The columns are named after
the cap's setting, so a reload keeps the ring when the cap is unchanged and starts a new one
when N or the duration changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from ..config import KERNEL_FLAGS
from ..kernels.primitives import MISSING
from ..rules import ast
from ..features.base import us
from .base import Guard, GuardState, Suppressor, number_text

if TYPE_CHECKING:
    from ..compiler.layout import Layout
    from ..rules.load import Rule, RuleSet

__all__ = ["GUARD", "cap_blocks", "cap_commit", "cap_column"]


@njit(**KERNEL_FLAGS)
def cap_blocks(VI, RI, slot, room, now, col, n, window_us):
    oldest = VI[slot, col + 1 + VI[slot, col]]
    return oldest != MISSING and oldest > now - window_us


@njit(**KERNEL_FLAGS)
def cap_commit(VI, RI, slot, room, now, col, n, window_us):
    head = VI[slot, col]
    VI[slot, col + 1 + head] = now
    VI[slot, col] = (head + 1) % n


def cap_column(cap: tuple[str, int, float]) -> str:
    """The layout name of a cap's columns: its name and setting."""
    name, n, window = cap
    return f"cap:{name}:{n}/{ast.duration_text(window)}"


def cap_text(cap: tuple[str, int, float]) -> str:
    return f"{cap[1]}/{ast.duration_text(cap[2])}"


class Cap(Guard):
    name = "cap"
    key = "cap"
    blocks = staticmethod(cap_blocks)
    commit = staticmethod(cap_commit)

    def add_columns(self, lay: "Layout", rs: "RuleSet") -> None:
        done: set[str] = set()
        for rule in rs.rules:
            if self.applies(rule) and rule.cap[0] not in done:
                done.add(rule.cap[0])
                lay.add("vi", cap_column(rule.cap), 1 + rule.cap[1])

    def _col(self, lay: "Layout", cap: tuple[str, int, float]) -> int:
        return lay.col("vi", f"{cap_column(cap)}[0]")

    def initial(self, lay: "Layout", matrix: str) -> dict[int, int]:
        if matrix != "vi":
            return {}
        out: dict[int, int] = {}
        for i, name in enumerate(lay.vi):
            if name.startswith("cap:") and not name.endswith("[0]"):
                out[i] = int(MISSING)  # ring times; the head (…[0]) starts at 0
        return out

    def args(self, lay: "Layout", rule: "Rule") -> tuple[int, ...]:
        _, n, window = rule.cap
        return self._col(lay, rule.cap), n, us(window)

    def explain(self, state: GuardState, lay: "Layout", rule: "Rule") -> Suppressor:
        col, n, w = self.args(lay, rule)
        setting = f"{rule.cap[0]} = {cap_text(rule.cap)}"
        ring = state.VI[state.slot, col + 1:col + 1 + n]
        spent = int(np.count_nonzero((ring != MISSING) & (ring > state.now - w)))
        active = self.blocked(state, lay, rule)
        detail = f"cap {setting}: {spent} of {n} spent by this viewer in the last {number_text(rule.cap[2])} s"
        left = 0.0
        if active:
            oldest = int(state.VI[state.slot, col + 1 + state.VI[state.slot, col]])
            left = (oldest + w - state.now) / 1e6
            detail += f"; the next firing is allowed in {number_text(left)} s"
        return Suppressor("cap", setting, active, detail, remaining=left, spent=spent, limit=n)


GUARD = Cap()
