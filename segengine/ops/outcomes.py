"""``Engine.outcomes``: a tracked rule's firings against its control group, with the uplift's 95 % interval.

The counters are RI columns of :mod:`segengine.guards.holdout` (per room). The interval of the
uplift (a difference of two proportions) is Newcombe's hybrid score interval (his method 10, from
two Wilson score intervals): unlike the normal approximation (Wald) it stays inside [-1, 1], is
defined when a count is 0 or equal to its total, and keeps close to its 95 % coverage at the
small counts a young experiment has.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..guards.holdout import tracked
from ..rules.suggest import did_you_mean
from ..schema.results import Outcomes

if TYPE_CHECKING:
    from ..runtime.core import EngineCore

__all__ = ["outcomes", "tracked_rules", "wilson", "newcombe"]

Z95 = 1.959963984540054


def wilson(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of the proportion ``x / n`` ([0, 1] when ``n`` is 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """(difference, low, high): ``x1/n1 - x2/n2`` and Newcombe's hybrid score interval."""
    p1 = x1 / n1 if n1 else 0.0
    p2 = x2 / n2 if n2 else 0.0
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def tracked_rules(core: "EngineCore") -> list[str]:
    """Names of the rules whose outcomes are counted (a holdout or an outcome key)."""
    return [r.name for r in core.rules.rules if tracked(r)]


def outcomes(core: "EngineCore", rule: str, room: str | None = None) -> Outcomes:
    """The outcome counters of ``rule`` in ``room`` (every live room when None)."""
    rs, lay = core.rules, core.compiled.layout
    found = {r.name: r for r in rs.rules}
    r = found.get(rule)
    if r is None or not tracked(r):
        names = tracked_rules(core)
        if r is None:
            raise KeyError(f"unknown rule {rule!r}{did_you_mean(rule, list(found))}")
        raise ValueError(f"rule {rule!r} has no holdout and no outcome key, so its outcomes are not counted"
                             + (f" (counted: {', '.join(names)})" if names else ""))
    RI = core.store.RI
    cols = [lay.ri.index(f"{n}:{rule}") for n in ("outcomes_fired", "outcomes_held", "outcomes_converted", "outcomes_control")]
    if room is None:
        slots = [s for s, key in enumerate(core.rooms.keys) if key is not None]
    else:
        slot = core.rooms.ids.get(room)
        slots = [] if slot is None else [slot]
    fired, held, conv, ctrl = (int(RI[slots, c].sum()) if slots else 0 for c in cols)
    uplift, low, high = newcombe(conv, fired, ctrl, held)
    return Outcomes(rule=rule, room=room, outcome=r.outcome or "pay", attribution=rs.attribution,
                    fired=fired, held_out=held, converted=conv, control_converted=ctrl,
                    conversion=conv / fired if fired else 0.0, control_conversion=ctrl / held if held else 0.0,
                    uplift=uplift, uplift_low=low, uplift_high=high)
