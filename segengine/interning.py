"""Id interning: viewer ids, room ids and strings -> dense integer slots."""

from __future__ import annotations

from typing import Generic, Hashable, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)


class Interner(Generic[K]):
    """A bijection between keys and 0..n-1, in order of first sight (deterministic).

    Non-negative int keys also get a dense array index (``int_slots``), so a numpy column
    of int ids maps to slots with one vectorized gather instead of a dict lookup per row.
    """

    __slots__ = ("ids", "keys", "_dense")

    #: int keys at or above this many entries of the dense index fall back to the dict
    DENSE_LIMIT = 1 << 26

    def __init__(self) -> None:
        self.ids: dict[K, int] = {}
        self.keys: list[K] = []
        self._dense: np.ndarray | None = None

    def intern(self, key: K) -> int:
        slot = self.ids.get(key)
        if slot is None:
            slot = len(self.keys)
            self.ids[key] = slot
            self.keys.append(key)
            dense = self._dense
            if dense is not None and type(key) is int and 0 <= key < len(dense):
                dense[key] = slot
        return slot

    def get(self, key: K, default: int = -1) -> int:
        return self.ids.get(key, default)

    def __len__(self) -> int:
        return len(self.keys)

    def int_slots(self, values: np.ndarray) -> np.ndarray | None:
        """Slots of an int64 column (-1 where unseen), or None when ids are too sparse for an array index."""
        if len(values) == 0:
            return np.zeros(0, np.int64)
        lo, hi = int(values.min()), int(values.max())
        if lo < 0 or hi >= self.DENSE_LIMIT:
            return None
        dense = self._dense
        if dense is None or hi >= len(dense):
            size = max(1024, 2 * (hi + 1))
            fresh = np.full(size, -1, np.int64)
            for key, slot in self.ids.items():
                if type(key) is int and 0 <= key < size:
                    fresh[key] = slot
            self._dense = dense = fresh
        return dense[values]
