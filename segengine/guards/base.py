"""What a guard is: a rule setting that can suppress a firing (``once``, ``cooldown``, ``budget``).

A guard is one small object that declares everything the engine needs to know about it:

* ``name``: its suppression reason, as ``Engine.stats()`` and ``explain`` report it;
* ``key``: the rule key it reads (the loader parses it; ``setting(rule)`` gives the parsed value);
* ``add_columns(lay, rs)``: the state columns it needs, added to the layout, and
  ``initial(lay, matrix)`` their values in a new viewer's or room's row;
* ``blocks`` and ``commit``: two Numba helpers, both called as
  ``f(VI, RI, slot, room, now, *args(lay, rule))``: ``blocks`` says whether a firing is
  suppressed now, ``commit`` records a firing that went through;
* ``explain(state, lay, rule)``: what ``explain`` shows, a :class:`Suppressor` whose
  ``active`` is the very ``blocks`` call the kernel makes, on the same state.

The generated kernel calls the helpers with the same ``args`` (see :meth:`Guard.check_code`
and :meth:`Guard.commit_code`), and ``explain`` calls their Python source on the same arrays
(:meth:`Guard.blocked`), so the two cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import msgspec
import numpy as np

if TYPE_CHECKING:
    from ..compiler.layout import Layout
    from ..rules.load import Rule, RuleSet

__all__ = ["Guard", "GuardState", "Suppressor", "KERNEL_ARGS", "number_text"]

#: The state every guard helper receives first, as named in the generated kernel's rule pass.
KERNEL_ARGS = ("VI", "RI", "slot", "room", "now")


class Suppressor(msgspec.Struct, omit_defaults=True):
    """A guard setting of a rule (``once``, ``cooldown``, ``budget``) and whether it would suppress a firing now."""

    kind: str  # the guard's name: "once", "cooldown" or "budget"
    setting: str  # as written: "session", "10m", "200/1m"
    active: bool
    detail: str
    remaining: float | None = None  # seconds until it lets a firing through (cooldown, budget)
    spent: int | None = None  # budget: firings in the window, in the viewer's room
    limit: int | None = None


@dataclass
class GuardState:
    """The state a guard's explain text reads: the kernel's arrays and arguments, plus names for the text."""

    VI: np.ndarray
    RI: np.ndarray
    slot: int
    room: int  # the viewer's room slot, -1 before any
    now: int  # microseconds
    room_name: str | None = None


def number_text(v: float) -> str:
    """A number as explain prints it: ``312``, ``0.25``, ``inf``."""
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if math.isnan(v):
        return "nan"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    if abs(v) >= 1e5:
        return f"{v:.3f}"
    return f"{v:.6g}"


def _python(fn: Callable) -> Callable:
    """The Python source of a Numba helper (the function itself under ``NUMBA_DISABLE_JIT=1``)."""
    return getattr(fn, "py_func", fn)


class Guard:
    """Base of every guard; subclasses set the class attributes and the four methods below."""

    name: str = ""  # the suppression reason
    key: str = ""  # the rule key it reads
    blocks: Callable[..., bool]  # njit (VI, RI, slot, room, now, *args) -> suppressed?
    commit: Callable[..., None]  # njit (VI, RI, slot, room, now, *args): record a firing

    def setting(self, rule: "Rule") -> Any:
        """The rule's parsed setting of this guard, ``None`` if unset."""
        return getattr(rule, self.key)

    def applies(self, rule: "Rule") -> bool:
        """Does this guard take part in the rule's firing (an enabled rule that sets the key)?"""
        return rule.enabled and self.setting(rule) is not None

    def add_columns(self, lay: "Layout", rs: "RuleSet") -> None:
        """Add the columns this guard needs for ``rs`` to ``lay``."""
        raise NotImplementedError(f"guard {self.name!r} must say which columns it needs (add_columns)")

    def initial(self, lay: "Layout", matrix: str) -> dict[int, int]:
        """Initial values of this guard's columns in ``matrix`` ("vi" or "ri") that differ from the
        matrix's default (VI: 0, RI: ``MISSING``): a new viewer's or room's row starts with them."""
        return {}

    def args(self, lay: "Layout", rule: "Rule") -> tuple[int, ...]:
        """The constant arguments of ``blocks`` and ``commit`` for ``rule``: columns, masks, durations."""
        raise NotImplementedError(f"guard {self.name!r} must give its helpers' arguments (args)")

    def explain(self, state: GuardState, lay: "Layout", rule: "Rule") -> Suppressor:
        """What ``explain`` says about this guard for ``rule`` now; ``active`` must be :meth:`blocked`."""
        raise NotImplementedError(f"guard {self.name!r} must explain itself (explain)")

    # derived: the kernel code and the Python check share blocks/commit and args ----------------
    def _call(self, fn: Callable, lay: "Layout", rule: "Rule") -> str:
        consts = ", ".join(f"np.int64({a})" for a in self.args(lay, rule))
        return f"{fn.__name__}({', '.join(KERNEL_ARGS)}, {consts})"

    def check_code(self, lay: "Layout", rule: "Rule") -> str:
        """Kernel expression, true when this guard suppresses the firing."""
        return self._call(self.blocks, lay, rule)

    def commit_code(self, lay: "Layout", rule: "Rule") -> str:
        """Kernel statement recording a firing."""
        return self._call(self.commit, lay, rule)

    def on_event(self, k: Any) -> dict[str, list[str]]:
        """Statements per event type of the event kernel (``k``: the kernel generator; ``slot``,
        ``room``, ``now``), run before the event's rules. None by default; the holdout counts outcomes."""
        return {}

    def suppressed_code(self, lay: "Layout", rule: "Rule", guarded: list["Guard"]) -> list[str]:
        """Kernel statements run when this guard suppresses a firing (after its counter); ``guarded``
        are the rule's guards. None by default; the holdout records the withheld firing."""
        return []

    def blocked(self, state: GuardState, lay: "Layout", rule: "Rule") -> bool:
        """The kernel's check, run in Python on the same state."""
        return bool(_python(self.blocks)(state.VI, state.RI, state.slot, state.room, state.now, *self.args(lay, rule)))

    def helpers(self) -> tuple[str, str]:
        """(module, names) the generated kernel imports."""
        return self.blocks.__module__, f"{self.blocks.__name__}, {self.commit.__name__}"

    def __repr__(self) -> str:
        return f"<guard {self.name} (rule key {self.key!r})>"
