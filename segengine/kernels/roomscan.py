"""Scans of one room's present viewers (``Engine.mix``): one pass over the viewer rows, no Python per viewer."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..config import KERNEL_FLAGS

__all__ = ["mix_bins", "mix_codes", "mix_values"]

_PRESENT = 1  # FLAG_PRESENT (features/base.py)


@njit(**KERNEL_FLAGS)
def mix_bins(VI, VF, n, room_col, flags_col, col, room, edges, counts):
    """counts[k] += 1 for each present viewer of ``room`` whose VF[col] lies in bin k: k = the
    number of edges <= value (counts has len(edges) + 1 cells). Returns the viewers counted."""
    total = 0
    for s in range(n):
        if VI[s, room_col] == room and (VI[s, flags_col] & _PRESENT) != 0:
            counts[np.searchsorted(edges, VF[s, col], side="right")] += 1
            total += 1
    return total


@njit(**KERNEL_FLAGS)
def mix_codes(VI, VN, n, room_col, flags_col, col, room, counts):
    """counts[code] += 1 for each present viewer of ``room`` (VN[col]: a category code, 0 = unset)."""
    total = 0
    for s in range(n):
        if VI[s, room_col] == room and (VI[s, flags_col] & _PRESENT) != 0:
            counts[VN[s, col]] += 1
            total += 1
    return total


@njit(**KERNEL_FLAGS)
def mix_values(VI, VF, n, room_col, flags_col, col, room, out):
    """The VF[col] values of the present viewers of ``room``, into ``out``; returns how many."""
    total = 0
    for s in range(n):
        if VI[s, room_col] == room and (VI[s, flags_col] & _PRESENT) != 0:
            out[total] = VF[s, col]
            total += 1
    return total
