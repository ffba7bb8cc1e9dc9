"""``cooldown = "10m"``: per viewer and rule, no firing until the duration has passed since the last one.

Columns: one VI column per rule, the time of its last firing (``MISSING`` before any):
``Layout.cooldown_cols``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from numba import njit

from ..config import KERNEL_FLAGS
from ..kernels.primitives import MISSING
from ..rules import ast
from ..features.base import us
from .base import Guard, GuardState, Suppressor, number_text

if TYPE_CHECKING:
    from ..compiler.layout import Layout
    from ..rules.load import Rule, RuleSet

__all__ = ["GUARD", "cooldown_blocks", "cooldown_commit"]


@njit(**KERNEL_FLAGS)
def cooldown_blocks(VI, RI, slot, room, now, col, cooldown_us):
    last = VI[slot, col]
    return last != MISSING and now - last < cooldown_us


@njit(**KERNEL_FLAGS)
def cooldown_commit(VI, RI, slot, room, now, col, cooldown_us):
    VI[slot, col] = now


class Cooldown(Guard):
    name = "cooldown"
    key = "cooldown"
    blocks = staticmethod(cooldown_blocks)
    commit = staticmethod(cooldown_commit)

    def add_columns(self, lay: "Layout", rs: "RuleSet") -> None:
        for rule in rs.rules:
            if self.applies(rule):
                lay.cooldown_cols[rule.name] = lay.add("vi", f"cooldown:{rule.name}")

    def initial(self, lay: "Layout", matrix: str) -> dict[int, int]:
        return {col: int(MISSING) for col in lay.cooldown_cols.values()} if matrix == "vi" else {}

    def args(self, lay: "Layout", rule: "Rule") -> tuple[int, ...]:
        return lay.cooldown_cols[rule.name], us(rule.cooldown)

    def explain(self, state: GuardState, lay: "Layout", rule: "Rule") -> Suppressor:
        col, cd = self.args(lay, rule)
        last = int(state.VI[state.slot, col])
        setting = ast.duration_text(rule.cooldown)
        if self.blocked(state, lay, rule):
            left = (last + cd - state.now) / 1e6
            return Suppressor("cooldown", setting, True, f"cooldown {setting}: {number_text(left)} s remaining "
                              f"(last firing at {number_text(last / 1e6)})", remaining=left)
        if last != MISSING:
            return Suppressor("cooldown", setting, False,
                              f"cooldown {setting}: over (last firing at {number_text(last / 1e6)})", remaining=0.0)
        return Suppressor("cooldown", setting, False, f"cooldown {setting}: not running (never fired)", remaining=0.0)


GUARD = Cooldown()
