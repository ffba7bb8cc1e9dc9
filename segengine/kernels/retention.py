"""The retention sweep: give back the slots of viewers and rooms idle longer than the retention.

One fixed-signature kernel (compiled once, cached on disk like every kernel: flags in
:mod:`segengine.config`). It is called by :mod:`segengine.ops.retention` at fixed points of
engine time, so what it frees depends only on the event sequence. Cost: one pass over
the viewer slots handed out, one over the rooms, one over the cart table and one over
the timer heap: about 25 ms per million viewer slots on a small VM.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..config import KERNEL_FLAGS
from .primitives import META_HEAP_N, MISSING, NEVER, heap_sift_down

# Slot states (same values as segengine.runtime.interning).
USED = 0
PINNED = 1
FREE = 2

# Positions in the ``cols`` argument.
C_CLOCK, C_LAST_TS, C_QUEUED, C_FLAGS, C_ROOM, C_FLAG_PRESENT, C_FLAG_SEEN, C_RI_START, C_RI_AUDIENCE, C_RI_LIVE_END = range(10)
N_COLS = 10

CART_DEAD_EPOCH = -2  # never a viewer's cart epoch (those count up from 0)

_SIG = ("UniTuple(int64, 3)(int64[:, ::1], float64[:, ::1], uint16[:, ::1], int64[:, ::1], int64[:, ::1], "
        "float64[:, ::1], int64[:, ::1], int64[:, ::1], int64[::1], int64[::1], uint8[::1], uint8[::1], "
        "int64[::1], int64, int64, int64[::1], int64[::1])")


@njit(_SIG, **KERNEL_FLAGS)
def sweep(VI, VF, VN, RI, CK, CV, H, meta, vi_row, ri_row, vstate, rstate, cols, cutoff, stamp, out_v, out_r):
    """Reset expired viewer and room rows; returns (viewers expired, rooms expired, stale timers dropped).

    A viewer slot expires when its viewer has sent an accepted event, is not present, has
    no pending timer and its clock (latest event or timer instant) is at or before
    ``cutoff``. A slot known only from ``set_profile`` is stamped with ``stamp`` at the
    first sweep that sees it and expires once that stamp is at or before ``cutoff``.
    A room expires when its stream ended (``live_end`` at or before ``cutoff``, after its
    last ``live_start``) and no viewer slot refers to it any more. Expired rows get the
    template values; ``vstate``/``rstate`` of expired unpinned slots become FREE and their
    numbers are written to ``out_v``/``out_r`` (pinned ones are reset and listed too).
    Cart rows of expired viewers are marked dead (kept, so probe chains still pass over
    them; the next rehash drops them) and stale timer-heap entries are dropped.
    """
    clock_c = cols[C_CLOCK]
    last_c = cols[C_LAST_TS]
    queued_c = cols[C_QUEUED]
    flags_c = cols[C_FLAGS]
    room_c = cols[C_ROOM]
    present = cols[C_FLAG_PRESENT]
    seen = cols[C_FLAG_SEEN]
    nv = vstate.shape[0]
    nr = rstate.shape[0]
    expired = np.zeros(nv, np.uint8)
    n_out = 0
    for slot in range(nv):
        st = vstate[slot]
        if st == FREE:
            continue
        flags = VI[slot, flags_c]
        if (flags & seen) != 0:
            if (flags & present) != 0 or VI[slot, queued_c] != NEVER or VI[slot, clock_c] > cutoff:
                continue
        else:
            if st == PINNED:
                continue
            last = VI[slot, last_c]
            if last == MISSING:
                VI[slot, last_c] = stamp
                continue
            if last > cutoff:
                continue
        for c in range(VI.shape[1]):
            VI[slot, c] = vi_row[c]
        for c in range(VF.shape[1]):
            VF[slot, c] = 0.0
        for c in range(VN.shape[1]):
            VN[slot, c] = 0
        expired[slot] = 1
        if st == USED:
            vstate[slot] = FREE
        out_v[n_out] = slot
        n_out += 1

    if n_out > 0:
        for i in range(CK.shape[0]):
            s = CK[i, 0]
            if s >= 0 and s < nv and expired[s] != 0:
                CK[i, 2] = CART_DEAD_EPOCH
                CK[i, 3] = 0
                CV[i, 0] = 0.0

    refs = np.zeros(nr, np.int64)
    for slot in range(nv):
        if vstate[slot] != FREE:
            r = VI[slot, room_c]
            if r >= 0 and r < nr:
                refs[r] += 1
    r_out = 0
    for room in range(nr):
        st = rstate[room]
        if st == FREE or refs[room] != 0:
            continue
        end = RI[room, cols[C_RI_LIVE_END]]
        if end == MISSING or end > cutoff or RI[room, cols[C_RI_START]] > end or RI[room, cols[C_RI_AUDIENCE]] != 0:
            continue
        for c in range(RI.shape[1]):
            RI[room, c] = ri_row[c]
        if st == USED:
            rstate[room] = FREE
        out_r[r_out] = room
        r_out += 1

    # timer heap: keep live entries (t == the slot's queued time), rebuild the heap order
    n = meta[0, META_HEAP_N]
    kept = 0
    for i in range(n):
        t = H[i, 0]
        s = H[i, 2]
        if s < nv and VI[s, queued_c] == t:
            for c in range(3):
                H[kept, c] = H[i, c]
            kept += 1
    dropped = n - kept
    if dropped > 0:
        for start in range(kept // 2 - 1, -1, -1):
            heap_sift_down(H, start, kept)
        meta[0, META_HEAP_N] = kept
    return n_out, r_out, dropped

