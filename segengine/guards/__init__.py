"""Guards: the rule settings that suppress a firing, one module each (see :mod:`.base`).

``GUARDS`` is the registry, in check order: a firing is suppressed by the first guard
that blocks it, and counted under that guard's reason. A guard's reason code is its
position here; every place that reads or writes a suppression counter (the generated
kernel, ``Engine.stats``, ``explain``, ``reload``) gets the offset from
:func:`counter_index`, and the reason names from :data:`REASONS`.

Counters live in row 0 of the META matrix, after the engine's own fields::

    META_RULES + r                                  firings of rule r
    META_RULES + n_rules + len(GUARDS) * r + code    firings of rule r suppressed by guard ``code``

Adding a guard: a new module here with a :class:`~.base.Guard` subclass, appended to
``GUARDS`` (docs/architecture.md, "Adding a guard").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..kernels.primitives import META_RULES
from . import budget, cap, cooldown, holdout, once, quiet
from .base import Guard, GuardState, Suppressor

if TYPE_CHECKING:
    from ..compiler.layout import Layout
    from ..rules.load import Rule, RuleSet

__all__ = ["GUARDS", "REASONS", "Guard", "GuardState", "Suppressor", "add_columns", "counter_index", "counter_columns",
           "fired_index", "meta_width", "guards_of", "used_guards", "reason_code", "suppressed_counts"]

#: Every guard, in check order; a guard's reason code is its index.
GUARDS: tuple[Guard, ...] = (once.GUARD, cooldown.GUARD, budget.GUARD, quiet.GUARD, cap.GUARD, holdout.GUARD)
#: The suppression reasons, by code, as ``Engine.stats()["suppressed"][rule]`` lists them.
REASONS: tuple[str, ...] = tuple(g.name for g in GUARDS)


# Everything below reads GUARDS when called (never a copy taken at import), so a test can
# register a guard by replacing GUARDS and REASONS.

def reason_code(reason: str) -> int:
    """The code of a suppression reason (its guard's index in ``GUARDS``)."""
    return [g.name for g in GUARDS].index(reason)


def fired_index(rule_index: int) -> int:
    """META column counting the firings of rule ``rule_index``."""
    return META_RULES + rule_index


def counter_index(n_rules: int, rule_index: int, reason: int) -> int:
    """META column counting the firings of rule ``rule_index`` (of ``n_rules``) suppressed for reason code ``reason``."""
    return META_RULES + n_rules + len(GUARDS) * rule_index + reason


def counter_columns(n_rules: int, rule_index: int) -> list[int]:
    """META columns of rule ``rule_index``'s suppression counters, by reason code."""
    return [counter_index(n_rules, rule_index, k) for k in range(len(GUARDS))]


def suppressed_counts(meta_row, n_rules: int, rule_index: int) -> dict[str, int]:
    """Suppressed firings of rule ``rule_index`` by reason, from row 0 of META (``stats()``, ``explain``)."""
    return {g.name: int(meta_row[col]) for g, col in zip(GUARDS, counter_columns(n_rules, rule_index))}


def meta_width(n_rules: int) -> int:
    """Width of the META row: the engine's fields, then the fired and suppressed counters, then one spare."""
    return counter_index(n_rules, n_rules, 0) + 1


def guards_of(rule: "Rule") -> list[Guard]:
    """The guards that take part in ``rule``'s firing, in check order."""
    return [g for g in GUARDS if g.applies(rule)]


def used_guards(rs: "RuleSet") -> list[Guard]:
    """The guards that some rule of ``rs`` uses, in check order."""
    return [g for g in GUARDS if any(g.applies(rule) for rule in rs.rules)]


def add_columns(lay: "Layout", rs: "RuleSet") -> None:
    """Add every guard's columns for ``rs`` to the layout (cooldown, budget, then once: the historical
    column order, which snapshots of earlier versions were written with)."""
    for g in (cooldown.GUARD, budget.GUARD, once.GUARD, *GUARDS[3:]):
        g.add_columns(lay, rs)
