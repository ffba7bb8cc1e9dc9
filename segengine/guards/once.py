"""``once = "session" | "lifetime"``: at most one firing per viewer per session, or ever.

Columns: one bit per rule, 63 rules to a VI column; one set of columns for the "session"
rules (cleared when a session starts: ``Layout.session_once_cols``), one for the "lifetime"
rules (never cleared). ``Layout.once_bits`` maps a rule to its (column, mask).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from numba import njit

from ..config import KERNEL_FLAGS
from ..features.base import FLAG_PRESENT
from .base import Guard, GuardState, Suppressor

if TYPE_CHECKING:
    from ..compiler.layout import Layout
    from ..rules.load import Rule, RuleSet

__all__ = ["GUARD", "KINDS", "once_blocks", "once_commit"]

#: The values of the rule key ``once``.
KINDS = ("session", "lifetime")


@njit(**KERNEL_FLAGS)
def once_blocks(VI, RI, slot, room, now, col, mask):
    return (VI[slot, col] & mask) != 0


@njit(**KERNEL_FLAGS)
def once_commit(VI, RI, slot, room, now, col, mask):
    VI[slot, col] |= mask


class Once(Guard):
    name = "once"
    key = "once"
    blocks = staticmethod(once_blocks)
    commit = staticmethod(once_commit)

    def add_columns(self, lay: "Layout", rs: "RuleSet") -> None:
        for kind in KINDS:
            marked = [r.name for r in rs.rules if self.applies(r) and r.once == kind]
            for i in range(0, len(marked), 63):
                col = lay.add("vi", f"once_{kind}{i // 63}")
                if kind == "session":
                    lay.session_once_cols.append(col)
                for j, name in enumerate(marked[i:i + 63]):
                    lay.once_bits[name] = (col, 1 << j)

    def args(self, lay: "Layout", rule: "Rule") -> tuple[int, ...]:
        return lay.once_bit(rule.name)

    def explain(self, state: GuardState, lay: "Layout", rule: "Rule") -> Suppressor:
        used = self.blocked(state, lay, rule)
        if rule.once == "lifetime":
            detail = "once per lifetime: already fired for this viewer" if used else "once per lifetime: not used yet"
            return Suppressor("once", "lifetime", used, detail)
        session = int(state.VI[state.slot, lay.vi.index("sessions")])
        if used:
            detail = f"once per session: already fired in this session (session {session})"
            if not state.VI[state.slot, lay.vi.index("flags")] & FLAG_PRESENT:
                detail += "; the viewer is absent, so an event would start a new session and allow it"
        else:
            detail = f"once per session: not used in this session (session {session})"
        return Suppressor("once", "session", used, detail)


GUARD = Once()
