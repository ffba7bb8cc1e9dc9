"""Id interning: viewer ids, room ids and strings -> dense integer slots."""

from __future__ import annotations

from typing import Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)


class Interner(Generic[K]):
    """A bijection between keys and 0..n-1, in order of first sight (deterministic)."""

    __slots__ = ("ids", "keys")

    def __init__(self) -> None:
        self.ids: dict[K, int] = {}
        self.keys: list[K] = []

    def intern(self, key: K) -> int:
        slot = self.ids.get(key)
        if slot is None:
            slot = len(self.keys)
            self.ids[key] = slot
            self.keys.append(key)
        return slot

    def get(self, key: K, default: int = -1) -> int:
        return self.ids.get(key, default)

    def __len__(self) -> int:
        return len(self.keys)
