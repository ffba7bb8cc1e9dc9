"""Batch column preparation in one pass (numpy would take several passes over short columns).

Compiled once per machine (``cache=True``, stored beside this file) and warmed up by
``Engine.warmup()``.
"""

from __future__ import annotations

from numba import njit

__all__ = ["dense_slots", "category_codes"]


@njit(cache=True, nogil=True, boundscheck=False)
def dense_slots(values, index, absent, out):
    """``out[i] = index[values[i]]``, ``absent`` for a negative value. Returns False as soon as a
    value is not in ``index`` (beyond it, or -1 there): the caller then interns the column."""
    m = index.shape[0]
    for i in range(values.shape[0]):
        v = values[i]
        if v < 0:
            out[i] = absent
        elif v < m and index[v] >= 0:
            out[i] = index[v]
        else:
            return False
    return True


@njit(cache=True, nogil=True, boundscheck=False)
def category_codes(values, n_categories, out):
    """Batch category codes (index into the declared categories, negative: absent) -> kernel
    codes: 0 absent, ``i + 1`` declared, -1 out of range (undeclared)."""
    for i in range(values.shape[0]):
        c = values[i]
        out[i] = 0 if c < 0 else (c + 1 if c < n_categories else -1)
