"""``budget = "N/DURATION"``: per rule and room, at most N firings in any window of that length.

Columns: per rule, 1 + N RI columns: a ring of the last N firing times (``MISSING`` when
unused) and its head, the slot of the oldest: ``Layout.budget_cols`` maps a rule to the head.
A firing is allowed when the oldest of the last N is outside the window.
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

__all__ = ["GUARD", "budget_blocks", "budget_commit"]


@njit(**KERNEL_FLAGS)
def budget_blocks(VI, RI, slot, room, now, col, n, window_us):
    oldest = RI[room, col + 1 + RI[room, col]]
    return oldest != MISSING and oldest > now - window_us


@njit(**KERNEL_FLAGS)
def budget_commit(VI, RI, slot, room, now, col, n, window_us):
    head = RI[room, col]
    RI[room, col + 1 + head] = now
    RI[room, col] = (head + 1) % n


class Budget(Guard):
    name = "budget"
    key = "budget"
    blocks = staticmethod(budget_blocks)
    commit = staticmethod(budget_commit)

    def add_columns(self, lay: "Layout", rs: "RuleSet") -> None:
        for rule in rs.rules:
            if self.applies(rule):
                lay.budget_cols[rule.name] = lay.add("ri", f"budget:{rule.name}", 1 + rule.budget[0])

    def initial(self, lay: "Layout", matrix: str) -> dict[int, int]:
        return {col: 0 for col in lay.budget_cols.values()} if matrix == "ri" else {}  # ring heads; times MISSING

    def args(self, lay: "Layout", rule: "Rule") -> tuple[int, ...]:
        n, window = rule.budget
        return lay.budget_cols[rule.name], n, us(window)

    def explain(self, state: GuardState, lay: "Layout", rule: "Rule") -> Suppressor:
        col, n, w = self.args(lay, rule)
        setting = f"{n}/{ast.duration_text(rule.budget[1])}"
        if state.room < 0:
            return Suppressor("budget", setting, False, f"budget {setting}: the viewer has no room yet", spent=0, limit=n)
        ring = state.RI[state.room, col + 1:col + 1 + n]
        spent = int(np.count_nonzero((ring != MISSING) & (ring > state.now - w)))
        active = self.blocked(state, lay, rule)
        detail = (f"budget {setting} in room {state.room_name!r}: {spent} of {n} spent in the last "
                  f"{number_text(rule.budget[1])} s")
        left = 0.0
        if active:
            oldest = int(state.RI[state.room, col + 1 + state.RI[state.room, col]])
            left = (oldest + w - state.now) / 1e6
            detail += f"; the next firing is allowed in {number_text(left)} s"
        return Suppressor("budget", setting, active, detail, remaining=left, spent=spent, limit=n)


GUARD = Budget()
