"""``holdout = 0.1``: a fixed share of viewers is a rule's control group; their firings are withheld.

A viewer is held out of rule R when the 64-bit BLAKE2b digest of ``R + "\\0" + str(viewer)`` (UTF-8;
an int viewer id by its decimal text), read as a big-endian unsigned integer, is below
``holdout * 2**64``: the same viewers in every process, machine and Python version. The digest is
computed once per viewer, when the viewer is interned (:func:`assign`, called by the engine core),
and kept in the VI column ``holdout:R`` (1: held out); the kernel only reads that column.

Check order: the holdout is checked after every other guard (it is last in ``GUARDS``). A firing
that ``once``, ``cooldown`` or ``budget`` suppress is suppressed for a held-out viewer as for a
treated one; a firing that passes them is either sent (treated) or withheld and counted under
``holdout`` (control). A withheld firing commits the other guards as a sent one would (the
cooldown restarts, the once bit and the budget are spent): the control group's "would have fired"
firings follow exactly the cadence of the treated group's firings.

Outcomes: every rule with a holdout or an ``outcome`` key is *tracked*. Columns, per tracked rule R:

* VI ``outcome_at:R`` (the time of the viewer's last firing or withheld firing of R, ``MISSING``
  when none is waiting for its outcome), ``outcome_held:R`` (1 when that firing was withheld),
  ``outcome_room:R`` (the room slot of that firing);
* RI ``outcomes_fired:R``, ``outcomes_held:R``, ``outcomes_converted:R``, ``outcomes_control:R``:
  per room, the firings sent, the firings withheld, and how many of each were followed by the
  viewer's outcome event within ``[engine] attribution``.

Conversion (:meth:`Holdout.on_event`): when a viewer's event of a tracked rule's outcome type comes
at most ``[engine] attribution`` after that rule's last firing (or withheld firing) of the viewer,
the firing counts as converted or, withheld, as control converted, in the room of the firing. Each
firing converts at most once (the waiting time is cleared); a later firing restarts the window
(the earlier firing, unconverted, is then never converted). The outcome is counted before the
event's own rules run, so a firing on the outcome event itself waits for the next one.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Iterable

from numba import njit

from ..config import KERNEL_FLAGS
from ..kernels.primitives import MISSING
from ..features.base import us
from .base import Guard, GuardState, Suppressor, number_text

if TYPE_CHECKING:
    from ..compiler.layout import Layout
    from ..rules.load import Rule, RuleSet

__all__ = ["GUARD", "held_out", "tracked", "assign", "assign_all", "holdout_blocks", "holdout_commit", "holdout_withhold"]

#: Per tracked rule: the VI columns (membership, firing time, withheld flag, firing room), then the RI counters.
VI_COLS = ("holdout", "outcome_at", "outcome_held", "outcome_room")
RI_COLS = ("outcomes_fired", "outcomes_held", "outcomes_converted", "outcomes_control")


def held_out(viewer: str | int, rule: str, share: float) -> bool:
    """Is ``viewer`` in ``rule``'s control group of ``share`` (stable across processes)?"""
    if not share:
        return False
    digest = hashlib.blake2b(f"{rule}\0{viewer}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < share * 2.0**64


def tracked(rule: "Rule") -> bool:
    """Does the engine count ``rule``'s outcomes (it has a holdout or an outcome key)?"""
    return rule.enabled and rule.outcome is not None


@njit(**KERNEL_FLAGS)
def holdout_blocks(VI, RI, slot, room, now, member, at, held, froom, fired, withheld):
    return VI[slot, member] != 0


@njit(**KERNEL_FLAGS)
def holdout_commit(VI, RI, slot, room, now, member, at, held, froom, fired, withheld):
    VI[slot, at] = now
    VI[slot, held] = 0
    VI[slot, froom] = room
    if room >= 0:
        RI[room, fired] += 1


@njit(**KERNEL_FLAGS)
def holdout_withhold(VI, RI, slot, room, now, member, at, held, froom, fired, withheld):
    VI[slot, at] = now
    VI[slot, held] = 1
    VI[slot, froom] = room
    if room >= 0:
        RI[room, withheld] += 1


class Holdout(Guard):
    name = "holdout"
    key = "holdout"
    blocks = staticmethod(holdout_blocks)
    commit = staticmethod(holdout_commit)

    def applies(self, rule: "Rule") -> bool:
        return tracked(rule)

    def add_columns(self, lay: "Layout", rs: "RuleSet") -> None:
        for rule in rs.rules:
            if self.applies(rule):
                for name in VI_COLS:
                    lay.add("vi", f"{name}:{rule.name}")
                for name in RI_COLS:
                    lay.add("ri", f"{name}:{rule.name}")

    def initial(self, lay: "Layout", matrix: str) -> dict[int, int]:
        if matrix == "vi":
            return {i: int(MISSING) for i, name in enumerate(lay.vi) if name.startswith("outcome_at:")}
        return {i: 0 for i, name in enumerate(lay.ri) if name.startswith(tuple(f"{n}:" for n in RI_COLS))}

    def args(self, lay: "Layout", rule: "Rule") -> tuple[int, ...]:
        return (*(lay.vi.index(f"{n}:{rule.name}") for n in VI_COLS),
                *(lay.ri.index(f"{n}:{rule.name}") for n in RI_COLS[:2]))

    def helpers(self) -> tuple[str, str]:
        return self.blocks.__module__, "holdout_blocks, holdout_commit, holdout_withhold"

    def suppressed_code(self, lay: "Layout", rule: "Rule", guarded: list[Guard]) -> list[str]:
        """Statements run when this guard withholds a firing: record it, and commit the other guards."""
        return [self._call(holdout_withhold, lay, rule), *(g.commit_code(lay, rule) for g in guarded if g is not self)]

    def on_event(self, k) -> dict[str, list[str]]:
        """The outcome event of a tracked rule closes the viewer's waiting firing of it (see the module)."""
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

    def explain(self, state: GuardState, lay: "Layout", rule: "Rule") -> Suppressor:
        setting = number_text(rule.holdout or 0.0)
        if self.blocked(state, lay, rule):
            return Suppressor("holdout", setting, True, f"holdout {setting}: the viewer is in the control group "
                              "(the firing is withheld and counted)")
        if rule.holdout:
            return Suppressor("holdout", setting, False, f"holdout {setting}: the viewer is in the treated group")
        return Suppressor("holdout", setting, False, f"no holdout: outcomes of firings counted ({rule.outcome})")


GUARD = Holdout()


def _columns(lay: "Layout", rs: "RuleSet") -> list[tuple[int, str, float]]:
    return [(lay.vi.index(f"holdout:{r.name}"), r.name, r.holdout) for r in rs.rules if tracked(r) and r.holdout]


def assign(core, slots: Iterable[int], keys: Iterable) -> None:
    """Write the holdout membership of newly interned viewers ``keys`` at ``slots`` (the store grows to hold them)."""
    cols = _columns(core.compiled.layout, core.compiled.rules)
    if not cols:
        return
    slots = list(slots)
    if not slots:
        return
    store = core.store
    store.ensure_viewers(max(slots) + 1)
    VI = store.VI
    for slot, key in zip(slots, keys):
        for col, rule, share in cols:
            VI[slot, col] = held_out(key, rule, share)


def assign_all(core) -> None:
    """Write the membership of every live viewer (after a reload, whose rules may add holdouts)."""
    live = [(slot, key) for slot, key in enumerate(core.viewers.keys) if key is not None]
    assign(core, [s for s, _ in live], [k for _, k in live])
