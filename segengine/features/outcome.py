"""Outcomes of tracked rules (a holdout or an ``outcome`` key): the outcome event closes the waiting firing.

The firing side (columns, recording a firing or a withheld one) is :mod:`segengine.guards.holdout`.
Here: when a viewer's event of a tracked rule's outcome type comes at most ``[engine] attribution``
after that rule's last firing (or withheld firing) of the viewer, the firing counts as converted
(``outcomes_converted``) or, withheld, as control converted (``outcomes_control``), in the room of
the firing. Each firing converts at most once (the waiting time is cleared); a later firing restarts
the window. The outcome is counted before the event's own rules run, so a firing on the outcome
event itself waits for the next one.
"""

from __future__ import annotations

from ..guards.holdout import tracked
from .base import Feature, us


class Outcome(Feature):
    key = "outcome"
    rank = 900

    def on(self, k):
        window = us(k.rs.attribution)
        by_type: dict[str, list[str]] = {}
        for rule in k.rs.rules:
            if not tracked(rule):
                continue
            at, held, froom = (k.lay.vi.index(f"{n}:{rule.name}") for n in ("outcome_at", "outcome_held", "outcome_room"))
            conv, ctrl = (k.lay.ri.index(f"{n}:{rule.name}") for n in ("outcomes_converted", "outcomes_control"))
            by_type.setdefault(rule.outcome, []).extend([
                f"if VI[slot, {at}] != MISSING and 0 <= now - VI[slot, {at}] <= {window}:  # outcome of {rule.name}",
                f"    if VI[slot, {froom}] >= 0:",
                f"        if VI[slot, {held}] != 0:",
                f"            RI[VI[slot, {froom}], {ctrl}] += 1",
                "        else:",
                f"            RI[VI[slot, {froom}], {conv}] += 1",
                f"    VI[slot, {at}] = MISSING",
            ])
        return by_type


FEATURES = [Outcome()]
