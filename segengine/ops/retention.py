"""Bounded memory: forget viewers and rooms idle longer than ``[engine] retention``.

Why: a live-commerce backend sees millions of passers-by a day; without forgetting,
state grows with every viewer ever seen. A viewer absent longer than the retention
gives its slot back (its row is reset to the template, its id forgotten); a new
viewer takes a freed slot before the arrays grow.

When: at fixed points of engine time, the multiples of the *sweep period*
(``max(60 s, retention / 64)``, counted from time 0). Before an ``ingest`` or ``advance``
call moves past such a point, the engine fires the timers due up to it, then sweeps
once (for the latest point passed). So what is forgotten, and when, depends only on
the event sequence, never on how often ``advance()`` is called, and a viewer is kept
at most one sweep period longer than the retention.

What: see :func:`segengine.kernels.retention.sweep` for the exact conditions, and
``docs/operations.md`` (Memory) for what a returning viewer keeps (nothing).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..runtime.interning import SLOT_FREE, SLOT_PINNED, SLOT_USED, Interner
from ..kernels.primitives import META_HEAP_N, META_NOW
from ..compiler.layout import FLAG_PRESENT, FLAG_SEEN, us

if TYPE_CHECKING:
    from ..runtime.core import EngineCore
    from ..schema.events import Action

__all__ = ["Retention", "sweep_period_us"]

SWEEP_MIN_US = 60_000_000
SWEEPS_PER_RETENTION = 64


def sweep_period_us(retention: float) -> int:
    """Engine time between two sweeps, in microseconds: ``max(60 s, retention / 64)``."""
    return max(SWEEP_MIN_US, us(retention) // SWEEPS_PER_RETENTION)


class Retention:
    """The sweep schedule and counters of one engine (saved in snapshots).

    Attributes
    ----------
    due : float
        Event time (seconds) from which the next call must run :meth:`step`: slightly
        below the next sweep point, so the float check on the hot path never misses it.
    last : int or None
        The latest sweep point done (microseconds).
    expired_viewers, expired_rooms : int
        How many viewers and rooms were forgotten so far.
    """

    __slots__ = ("due", "last", "expired_viewers", "expired_rooms")

    def __init__(self) -> None:
        self.due = -math.inf
        self.last: int | None = None
        self.expired_viewers = 0
        self.expired_rooms = 0

    # saving and loading ------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """The schedule and counters as plain data; :meth:`load_state` reads them back."""
        return {"last": self.last, "expired_viewers": self.expired_viewers, "expired_rooms": self.expired_rooms}

    def load_state(self, data: dict[str, Any]) -> None:
        self.last = data["last"]
        self.expired_viewers = int(data["expired_viewers"])
        self.expired_rooms = int(data["expired_rooms"])
        self.restart()

    def restart(self) -> None:
        """Make the next call run :meth:`step` (after a load, or new rules: the period may differ)."""
        self.due = -math.inf

    # the schedule ----------------------------------------------------------------------
    def step(self, core: "EngineCore", ts: float, actions: "list[Action]") -> None:
        """Sweep at the latest sweep point at or before ``ts`` unless done already.

        Fires the timers due up to that point first (their actions go to ``actions``),
        exactly as the coming call would have, so the order of actions is unchanged.
        """
        period = sweep_period_us(core.rules.retention)
        point = us(ts) // period * period
        if self.last is None or point > self.last:
            store = core.store
            if store.META[0, META_HEAP_N] > 0 and store.HEAP[0, 0] <= point:  # timers are due
                core.fire_due(point, actions)
            elif point > store.META[0, META_NOW]:
                # nothing due: what the advance kernel would do, without loading it (the first
                # ingest of a process then compiles or loads one kernel fewer)
                store.META[0, META_NOW] = point
            self.sweep(core, point)
            self.last = point
        self.due = (self.last + period - 2) / 1e6

    def sweep(self, core: "EngineCore", point: int) -> tuple[int, int]:
        """Forget what expired at sweep point ``point`` (microseconds); returns (viewers, rooms)."""
        from ..kernels import retention as kr  # compiled (or loaded from cache) at the first sweep, not at import

        store, lay = core.store, core.compiled.layout
        viewers, rooms = core.viewers, core.rooms
        literals = core.compiled.generated.literals
        _pin(literals, viewers, "viewers")
        _pin(literals, rooms, "rooms")
        cols = np.zeros(kr.N_COLS, np.int64)
        cols[kr.C_CLOCK] = lay.vi.index("clock")
        cols[kr.C_LAST_TS] = lay.vi.index("last_ts")
        cols[kr.C_QUEUED] = lay.vi.index("queued")
        cols[kr.C_FLAGS] = lay.vi.index("flags")
        cols[kr.C_ROOM] = lay.vi.index("room")
        cols[kr.C_FLAG_PRESENT] = FLAG_PRESENT
        cols[kr.C_FLAG_SEEN] = FLAG_SEEN
        cols[kr.C_RI_START] = lay.ri.index("start")
        cols[kr.C_RI_AUDIENCE] = lay.ri.index("audience")
        cols[kr.C_RI_LIVE_END] = lay.ri.index("live_end")
        nv, nr = len(viewers), len(rooms)
        out_v = np.empty(nv, np.int64)
        out_r = np.empty(nr, np.int64)
        vstate = np.frombuffer(viewers.state, np.uint8)  # zero-copy views: dropped before any intern
        rstate = np.frombuffer(rooms.state, np.uint8)
        cutoff = point - us(core.rules.retention)
        n_v, n_r, _ = kr.sweep(store.VI, store.VF, store.VN, store.RI, store.CARTK, store.CARTV, store.HEAP, store.META,
                             store.vi_row, store.ri_row, vstate, rstate, cols, cutoff, point, out_v, out_r)
        del vstate, rstate
        # the kernel marked unpinned expired slots FREE; forget their ids
        viewers.release([s for s in out_v[:n_v].tolist() if viewers.state[s] == SLOT_FREE])
        rooms.release([s for s in out_r[:n_r].tolist() if rooms.state[s] == SLOT_FREE])
        self.expired_viewers += n_v
        self.expired_rooms += n_r
        return n_v, n_r

    def stats(self, core: "EngineCore") -> dict[str, int]:
        """Slot counters for :meth:`Engine.stats`."""
        capacity = core.store.VI.shape[0]
        live = core.viewers.live
        return {
            "live_slots": live,
            "free_slots": capacity - live,
            "slot_capacity": capacity,
            "expired_viewers": self.expired_viewers,
            "expired_rooms": self.expired_rooms,
        }


def _pin(literals: list[tuple[str, str]], interner: Interner, table: str) -> None:
    """Mark the slots that the rules' string literals refer to: reset when expired, never reused."""
    state = np.frombuffer(interner.state, np.uint8)
    state[state == SLOT_PINNED] = SLOT_USED
    for lit_table, text in literals:
        if lit_table == table:
            slot = interner.ids.get(text)
            if slot is not None:
                state[slot] = SLOT_PINNED
