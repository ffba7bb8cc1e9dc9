"""Scans of one room's present viewers (``Engine.mix``): one pass over the store's ``PRES`` column
(each slot's room while present, else -1: 8 bytes a viewer), no Python per viewer."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..config import KERNEL_FLAGS

__all__ = ["mix_bins", "mix_codes", "mix_values"]


@njit(**KERNEL_FLAGS)
def mix_bins(PRES, VF, n, col, room, edges, counts):
    """counts[k] += 1 for each present viewer of ``room`` whose VF[col] lies in bin k: k = the
    number of edges <= value (counts has len(edges) + 1 cells). Returns the viewers counted."""
    total = 0
    for s in range(n):
        if PRES[s, 0] == room:
            counts[np.searchsorted(edges, VF[s, col], side="right")] += 1
            total += 1
    return total


@njit(**KERNEL_FLAGS)
def mix_codes(PRES, VN, n, col, room, counts):
    """counts[code] += 1 for each present viewer of ``room`` (VN[col]: a category code, 0 = unset)."""
    total = 0
    for s in range(n):
        if PRES[s, 0] == room:
            counts[VN[s, col]] += 1
            total += 1
    return total


@njit(**KERNEL_FLAGS)
def mix_values(PRES, VF, n, col, room, out):
    """The VF[col] values of the present viewers of ``room``, into ``out``; returns how many."""
    total = 0
    for s in range(n):
        if PRES[s, 0] == room:
            out[total] = VF[s, col]
            total += 1
    return total
