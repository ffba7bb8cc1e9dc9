"""Id interning: viewer ids, room ids and strings -> dense integer slots, with slot reuse."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, Hashable, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)

#: Per-slot states kept in :attr:`Interner.state` (one byte a slot).
SLOT_USED = 0
SLOT_PINNED = 1  # a literal of the rules refers to it: reset by retention, never handed to another key
SLOT_FREE = 2


def first_seen(values: np.ndarray) -> np.ndarray:
    """The distinct values of an int array, in order of first appearance (the interning order).

    Ints within a modest span are marked in an array (O(n), ~7x faster than a stable sort
    on a 100 k-row batch); others fall back to ``np.unique``.
    """
    n = len(values)
    if n == 0:
        return values[:0]
    lo, hi = int(values.min()), int(values.max())
    if hi - lo > 4 * n + 65_536:
        _, first = np.unique(values, return_index=True)
        return values[np.sort(first)]
    first_at = np.full(hi - lo + 1, n, np.int64)
    np.minimum.at(first_at, values - lo, np.arange(n, dtype=np.int64))
    firsts = first_at[first_at < n]
    firsts.sort()
    return values[firsts]


class Interner(Generic[K]):
    """A bijection between live keys and slots, in order of first sight (deterministic).

    Released slots (see :mod:`segengine.ops.retention`) go to a free list and are handed to
    the next new key before the slot range grows. ``len()`` is the number of slots handed
    out so far, free ones included: the range ``0..len()-1`` that scans must cover.
    Non-negative int keys also get a dense array index (:meth:`int_slots`), so a numpy
    column of int ids maps to slots with one vectorized gather instead of a dict lookup
    per row.

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

    __slots__ = ("ids", "keys", "free", "state", "_dense", "_beyond", "on_index", "on_new")

    #: int keys at or above this fall back to dict lookups (the dense index would be too big)
    DENSE_LIMIT = 1 << 26

    def __init__(self) -> None:
        self.ids: dict[K, int] = {}
        self.keys: list[K | None] = []
        self.free: list[int] = []
        self.state = bytearray()
        self._dense = np.full(1024, -1, np.int64)  # int key -> slot (-1: none); derived from ids
        self._beyond = 0  # live int keys >= 0 the index does not reach (too sparse when they came)
        self.on_index = None  # called with the new index array whenever it is replaced
        self.on_new = None  # called with (slots, keys) of newly interned keys (the holdout membership)

    @property
    def index(self) -> np.ndarray:
        """The dense int-key index: ``index[k]`` is the slot of int key ``k`` (-1: unseen or not indexed)."""
        return self._dense

    def _cover(self, hi: int) -> bool:
        """Grow the index to cover int key ``hi``, unless that would make it too big or too sparse
        (more than ~8 entries per live key): those keys stay dict-only."""
        if hi < len(self._dense):
            return True
        if hi >= self.DENSE_LIMIT or hi >= 4 * (len(self.ids) + 4096):
            return False
        size = max(1024, 2 * (hi + 1))
        if self._beyond:  # some live keys are only in the dict: rebuild from it
            self.rebuild_index(size)
        else:  # every indexed key is already in place: a copy does
            fresh = np.full(size, -1, np.int64)
            fresh[:len(self._dense)] = self._dense
            self._set_index(fresh)
        return True

    def reindex(self) -> None:
        """Rebuild the index from ``ids`` (after a restore), as large as the density rule allows."""
        hi = max((k for k in self.ids if type(k) is int and k >= 0), default=0)
        self.rebuild_index(1024)
        self._cover(hi)

    def rebuild_index(self, size: int | None = None) -> None:
        """Recompute the index from ``ids`` (after a restore, or to grow it)."""
        size = len(self._dense) if size is None else size
        fresh = np.full(size, -1, np.int64)
        beyond = 0
        for key, slot in self.ids.items():
            if type(key) is int and key >= 0:
                if key < size:
                    fresh[key] = slot
                else:
                    beyond += 1
        self._beyond = beyond
        self._set_index(fresh)

    def _set_index(self, index: np.ndarray) -> None:
        self._dense = index
        if self.on_index is not None:
            self.on_index(index)

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
            if type(key) is int and key >= 0:
                if self._cover(key):
                    self._dense[key] = slot
                else:
                    self._beyond += 1
            if self.on_new is not None:
                self.on_new((slot,), (key,))
        return slot

    def intern_many_ints(self, keys: np.ndarray) -> None:
        """Intern distinct int keys none of which is interned yet, in order: the slots one-by-one
        interning would give, at C speed when no freed slot waits for reuse (a batch's new viewers)."""
        if self.free or len(keys) == 0:
            for key in keys.tolist():
                self.intern(key)
            return
        start = len(self.keys)
        slots = np.arange(start, start + len(keys), dtype=np.int64)
        listed = keys.tolist()
        self.keys.extend(listed)
        self.state.extend(bytes(len(listed)))  # SLOT_USED == 0
        self.ids.update(zip(listed, slots.tolist()))
        hi = int(keys.max())
        if hi >= 0:
            self._cover(hi)  # grows the index if it stays dense enough
            covered = (keys >= 0) & (keys < len(self._dense))
            self._dense[keys[covered]] = slots[covered]
            self._beyond += int(np.count_nonzero(keys >= 0)) - int(np.count_nonzero(covered))
        if self.on_new is not None:
            self.on_new(slots.tolist(), listed)

    def release(self, slots: Iterable[int]) -> None:
        """Forget the keys of ``slots`` (ascending); the lowest of them is reused first."""
        keys, ids, state, dense = self.keys, self.ids, self.state, self._dense
        batch = []
        for slot in slots:
            key = keys[slot]
            del ids[key]
            if type(key) is int and key >= 0:
                if key < len(dense):
                    dense[key] = -1
                else:
                    self._beyond -= 1
            keys[slot] = None
            state[slot] = SLOT_FREE
            batch.append(slot)
        batch.reverse()
        self.free.extend(batch)

    # saving and loading ------------------------------------------------------------------
    def to_state(self, with_slots: bool = True) -> dict[str, Any]:
        """The id map as plain data (msgpack-encodable); :meth:`load_state` reads it back.

        The int-key index is derived from the keys, but its size is kept: the loaded
        interner's index (the viewers' one is a state array, in ``stats()["memory"]``) is then
        the same size. ``with_slots=False``: no free list and slot states (an interner whose
        slots are never released, as the strings').
        """
        out: dict[str, Any] = {"keys": self.keys, "index": len(self._dense)}
        if with_slots:
            out["free"] = self.free
            out["state"] = bytes(self.state)
        return out

    def load_state(self, data: dict[str, Any]) -> None:
        """Replace the keys with those :meth:`to_state` saved (``ValueError`` if inconsistent).

        ``ids`` is updated in place: the engine and its fast path hold references to it.
        """
        keys = data["keys"]
        if not isinstance(keys, list):
            raise ValueError("bad id map")
        self.keys = keys
        self.ids.clear()
        self.ids.update(zip(keys, range(len(keys))))
        self.ids.pop(None, None)  # free slots
        self.free = list(data.get("free", ()))
        self.state = bytearray(data["state"]) if "state" in data else bytearray(len(keys))
        if len(self.state) != len(keys) or len(self.ids) + len(self.free) != len(keys):
            raise ValueError("inconsistent id map")
        size = data.get("index")
        if size is None:  # written before the size was saved
            self.reindex()
        elif type(size) is not int or not 0 < size <= min(2 * self.DENSE_LIMIT, 8 * (len(keys) + 4096)):
            raise ValueError(f"bad index size {size!r}")  # an index grows to at most that (_cover)
        else:  # every int key below the size is in the index, as in the saved interner
            self.rebuild_index(size)

    def get(self, key: K, default: int = -1) -> int:
        return self.ids.get(key, default)

    @property
    def live(self) -> int:
        """Number of live keys."""
        return len(self.ids)

    def __len__(self) -> int:
        return len(self.keys)

    def int_slots(self, values: np.ndarray) -> np.ndarray | None:
        """Slots of an int64 column (-1 where unseen), or None when ids are too sparse for the index."""
        if len(values) == 0:
            return np.zeros(0, np.int64)
        lo, hi = int(values.min()), int(values.max())
        if lo < 0 or not self._cover(hi):
            return None
        return self._dense[values]
