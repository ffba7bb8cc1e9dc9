"""``quiet_hours = "22:00-08:00"`` in ``[caps]``: no capped rule fires while the viewer's local
time is in that range (suppression reason ``quiet``).

It reads the viewer's current UTC offset, ``lt_off`` (features/localtime.py refreshes it at the
start of every pass of the viewer), so the hours are the viewer's own: its ``tz`` or
``utc_offset``, else ``[engine] default_tz``. Checked before the cap, so a quiet firing does not
spend the cap. No state of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from numba import njit

from ..config import KERNEL_FLAGS
from .base import Guard, GuardState, Suppressor

if TYPE_CHECKING:
    from ..compiler.layout import Layout
    from ..rules.load import Rule, RuleSet

__all__ = ["GUARD", "quiet_blocks", "quiet_commit"]

_MINUTE_US = 60_000_000


@njit(**KERNEL_FLAGS)
def quiet_blocks(VI, RI, slot, room, now, off_col, start, end):
    minute = ((now + VI[slot, off_col]) // 60_000_000) % 1440
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end  # across midnight


@njit(**KERNEL_FLAGS)
def quiet_commit(VI, RI, slot, room, now, off_col, start, end):
    pass


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class Quiet(Guard):
    name = "quiet"
    key = "quiet"
    blocks = staticmethod(quiet_blocks)
    commit = staticmethod(quiet_commit)

    def add_columns(self, lay: "Layout", rs: "RuleSet") -> None:
        pass  # lt_off comes from the local-time feature

    def initial(self, lay: "Layout", matrix: str) -> dict[int, int]:
        return {}

    def args(self, lay: "Layout", rule: "Rule") -> tuple[int, ...]:
        start, end = rule.quiet
        return lay.col("vi", "lt_off"), start, end

    def explain(self, state: GuardState, lay: "Layout", rule: "Rule") -> Suppressor:
        col, start, end = self.args(lay, rule)
        setting = f"{hhmm(start)}-{hhmm(end)}"
        active = self.blocked(state, lay, rule)
        minute = ((state.now + int(state.VI[state.slot, col])) // _MINUTE_US) % 1440
        detail = f"quiet hours {setting}: the viewer's local time is {hhmm(minute)}"
        left = None
        if active:
            left = float(((end - minute) % 1440) * 60)
            detail += f"; capped rules are quiet for {left / 60:.0f} more minutes"
        return Suppressor("quiet", setting, active, detail, remaining=left)


GUARD = Quiet()
