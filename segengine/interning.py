"""Id interning: viewer ids, room ids and strings -> dense integer slots, with slot reuse."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)

#: Per-slot states kept in :attr:`Interner.state` (one byte a slot).
SLOT_USED = 0
SLOT_PINNED = 1  # a literal of the rules refers to it: reset by retention, never handed to another key
SLOT_FREE = 2


class Interner(Generic[K]):
    """A bijection between live keys and slots, in order of first sight (deterministic).

    Released slots (see :mod:`segengine.retention`) go to a free list and are handed to
    the next new key before the slot range grows. ``len()`` is the number of slots handed
    out so far, free ones included: the range ``0..len()-1`` that scans must cover.

    Attributes
    ----------
    ids : dict
        key -> slot, live keys only.
    keys : list
        slot -> key; ``None`` for a free slot.
    free : list[int]
        Free slots; the next new key takes ``free[-1]``.
    state : bytearray
        One byte a slot: ``SLOT_USED``, ``SLOT_PINNED`` or ``SLOT_FREE`` (a zero-copy
        ``numpy.frombuffer`` view of it is what the retention kernel reads).
    """

    __slots__ = ("ids", "keys", "free", "state")

    def __init__(self) -> None:
        self.ids: dict[K, int] = {}
        self.keys: list[K | None] = []
        self.free: list[int] = []
        self.state = bytearray()

    def intern(self, key: K) -> int:
        slot = self.ids.get(key)
        if slot is None:
            if self.free:
                slot = self.free.pop()
                self.keys[slot] = key
                self.state[slot] = SLOT_USED
            else:
                slot = len(self.keys)
                self.keys.append(key)
                self.state.append(SLOT_USED)
            self.ids[key] = slot
        return slot

    def release(self, slots: Iterable[int]) -> None:
        """Forget the keys of ``slots`` (ascending); the lowest of them is reused first."""
        keys, ids, state = self.keys, self.ids, self.state
        batch = []
        for slot in slots:
            del ids[keys[slot]]
            keys[slot] = None
            state[slot] = SLOT_FREE
            batch.append(slot)
        batch.reverse()
        self.free.extend(batch)

    def get(self, key: K, default: int = -1) -> int:
        return self.ids.get(key, default)

    @property
    def live(self) -> int:
        """Number of live keys."""
        return len(self.ids)

    def __len__(self) -> int:
        return len(self.keys)
