"""Shared Numba helpers for the generated rule kernels.

State lives in a few 2-D arrays owned by :class:`segengine.compiler.layout.State`. A kernel
receives one int64 *table* of ``(address, rows, cols)`` triples instead of a dozen
array arguments: Numba's dispatch cost grows with every array argument (about
90 ns each here), so one table keeps a single-event ``ingest`` cheap. The Python
side keeps the arrays alive and rewrites the table whenever an array grows.

Time inside kernels is int64 microseconds (exact arithmetic, exact bucket
boundaries); values seen by expressions are float64 seconds.
"""

from __future__ import annotations

import ctypes
import math
from types import FunctionType

import numba
import numpy as np
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic
from llvmlite import ir

from ..config import KERNEL_FLAGS

#: ``NUMBA_DISABLE_JIT=1``: kernels are plain Python functions (no machine code, no C fast path)
PURE_PYTHON = bool(numba.config.DISABLE_JIT)

NEVER = np.int64(2**62)  # "no timer"; far beyond any real time, still safe to add to
MISSING = np.int64(-(2**62))  # "never happened"

# Table slots: matrix k is described by tab[3k] (address), tab[3k+1] (rows), tab[3k+2] (cols).
M_VI, M_VF, M_VN, M_RI, M_HEAP, M_CARTK, M_CARTV, M_OUTI, M_OUTF, M_META, M_LITS, M_VIDS, M_ZONES, M_PRES = range(14)
N_MATRICES = 14

# META fields (row 0 of the meta matrix).
META_NOW = 0  # engine's latest time
META_HEAP_N = 1
META_OUT_N = 2
META_CART_N = 3
META_EVENTS = 4
META_LATE = 5
META_TIMERS = 6  # timers processed
META_ARRIVALS = 7  # arrival numbers handed out: a viewer's first accepted event takes the next one
META_RULES = 8  # then the fired and suppressed counters: segengine.guards.counter_index

# What a pass is for (_pass's ``timer`` argument): an event, a timer, or a timer at which the
# viewer's session ended by the idle timeout (every rule is evaluated then).
EVENT, TIMER, TIMER_ENDED = 0, 1, 2

# Kernel return codes.
DONE = 0
NEED_ROOM = 1  # out buffer, heap or cart table is full: drain / grow and call again
#: ingest_event's ``slot`` argument asking it to look the viewer up by int id (``vid``) in the
#: viewer index (M_VIDS); -1 is a room event's slot
BY_VIEWER_ID = -3
#: ingest_event's result when the int id of a BY_VIEWER_ID call is not in the index: nothing was
#: changed, Python interns the viewer and calls again (the C fast path's FULL_PATH has this value)
UNKNOWN_VIEWER = -2

#: Counters in VN are uint16 and saturate here (per bucket, per session, per cart).
COUNT_MAX = 65535
#: A keyed slot's use number: the low 31 bits of its column (features/keyed.py; the key is above bit 32).
USE_MASK = np.int64((1 << 31) - 1)

OUT_COLS = 5  # rule, slot, ts_us, event index (-1 for a timer), room
HEAP_COLS = 3  # timer heap rows: due (us), the viewer's arrival number, slot


if PURE_PYTHON:
    # NUMBA_DISABLE_JIT=1: every kernel runs as plain Python (to step through it in a debugger or
    # measure its coverage). A pointer is then a ctypes pointer, which ``carray`` accepts as
    # Numba does; a prefetch hint does nothing.
    def _i64_ptr(addr):
        return ctypes.cast(int(addr), ctypes.POINTER(ctypes.c_int64))

    def _f64_ptr(addr):
        return ctypes.cast(int(addr), ctypes.POINTER(ctypes.c_double))

    def _u16_ptr(addr):
        return ctypes.cast(int(addr), ctypes.POINTER(ctypes.c_uint16))

    def _prefetch(addr):
        """Start loading the cache line at ``addr``: nothing to do in plain Python."""

else:
    @intrinsic
    def _i64_ptr(typingctx, addr):
        sig = types.CPointer(types.int64)(addr)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

        return sig, codegen

    @intrinsic
    def _f64_ptr(typingctx, addr):
        sig = types.CPointer(types.float64)(addr)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

        return sig, codegen

    @intrinsic
    def _u16_ptr(typingctx, addr):
        sig = types.CPointer(types.uint16)(addr)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

        return sig, codegen

    @intrinsic
    def _prefetch(typingctx, addr):
        """Start loading the cache line at ``addr`` (a hint to the CPU: never faults)."""
        sig = types.void(addr)

        def codegen(context, builder, signature, args):
            i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                                "llvm.prefetch.p0")
            builder.call(fn, [builder.inttoptr(args[0], i8p), i32(0), i32(3), i32(1)])  # read, keep, data
            return context.get_dummy_value()

        return sig, codegen


def twin(kernel, name: str):
    """The Python function of ``kernel`` under another ``name``: the same lines of the same file,
    compiled on its own (Numba keys its disk cache by a function's qualified name). The generated
    module's ``ingest_event_c``, which becomes a C function, is the twin of ``ingest_event``."""
    fn = getattr(kernel, "py_func", kernel)  # plain Python with NUMBA_DISABLE_JIT=1
    copy = FunctionType(fn.__code__.replace(co_name=name, co_qualname=name), fn.__globals__, name,
                              fn.__defaults__, fn.__closure__)
    copy.__qualname__ = name
    copy.__module__ = fn.__module__
    return copy


def true_divide(a, b):
    """``a / b`` as a kernel computes it (Numba's numpy error model): ``x / 0`` is ``±inf``, ``0 / 0``
    is ``nan``, never an exception. Only plain Python needs it (``NUMBA_DISABLE_JIT=1``): the
    compiler then calls it for every ``/`` of the generated module."""
    a, b = float(a), float(b)
    if b != 0.0:
        return a / b
    if a != a or a == 0.0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


@njit(**KERNEL_FLAGS)
def table_at(addr):
    """The pointer table at address ``addr`` (``Store.tab_addr``) as an array: the event
    kernel takes one int instead of an array, which a C caller can pass as it is."""
    return carray(_i64_ptr(addr), (3 * N_MATRICES,))


@njit(**KERNEL_FLAGS)
def mat_i64(tab, k):
    return carray(_i64_ptr(tab[3 * k]), (tab[3 * k + 1], tab[3 * k + 2]))


@njit(**KERNEL_FLAGS)
def mat_f64(tab, k):
    return carray(_f64_ptr(tab[3 * k]), (tab[3 * k + 1], tab[3 * k + 2]))


@njit(**KERNEL_FLAGS)
def mat_u16(tab, k):
    return carray(_u16_ptr(tab[3 * k]), (tab[3 * k + 1], tab[3 * k + 2]))


@njit(**KERNEL_FLAGS)
def prefetch_viewer(tab, slot):
    """Start loading a viewer's rows of VI, VF and VN before the kernel needs them.

    At a million viewers the state is far larger than the caches: each row is a miss. The batch
    kernel asks for the rows of the event PREFETCH_AHEAD places ahead, so the misses of several
    events overlap (2x at 1 M viewers). A single event gains nothing: its misses come first anyway.
    """
    for k, size in ((M_VI, 8), (M_VF, 8), (M_VN, 2)):
        width = tab[3 * k + 2] * size
        if width > 0:
            start = tab[3 * k] + slot * width
            line = start & ~np.int64(63)
            while line < start + width:
                _prefetch(line)
                line += 64


# --- time ------------------------------------------------------------------------------

@njit(**KERNEL_FLAGS)
def to_us(ts):
    return np.int64(np.round(ts * 1e6))


@njit(**KERNEL_FLAGS)
def milli(amount):
    """An amount in thousandths, rounded half to even (0 for NaN: no amount). Here, compiled
    and cached once with the package: ``np.round`` in a generated kernel cost every cold compile
    ~0.45 s of typing its overloads."""
    return np.int64(0) if np.isnan(amount) else np.int64(np.round(amount * 1000.0))


@njit(**KERNEL_FLAGS)
def secs(us):
    return us / 1e6


@njit(**KERNEL_FLAGS)
def after(now, dt):
    """The first microsecond at or after ``now + dt`` seconds (dt > 0), never ``now`` itself."""
    x = dt * 1e6
    if not (x < 1e17):
        return NEVER
    r = np.round(x)
    if abs(x - r) <= 1e-3 + 1e-13 * abs(x):
        step = np.int64(r)
    else:
        step = np.int64(math.ceil(x))
    if step < 1:
        step = np.int64(1)
    return now + step


@njit(**KERNEL_FLAGS)
def cross_linear(now, d, s):
    """When ``d + s * t`` next changes sign (t in seconds from now); NEVER if it moves away."""
    if d == 0.0:
        return now + 1 if s != 0.0 else NEVER
    if s == 0.0 or not math.isfinite(d) or not math.isfinite(s):
        return NEVER
    dt = -d / s
    if dt <= 0.0:
        return NEVER
    return after(now, dt)


@njit(**KERNEL_FLAGS)
def cross_decay(now, d, s, lam):
    """When ``D0 * exp(-lam t) + C`` crosses 0, given its value ``d`` and slope ``s`` now."""
    if d == 0.0:
        return now + 1 if s != 0.0 else NEVER
    if s == 0.0 or lam <= 0.0:
        return NEVER
    d0 = -s / lam
    c = d - d0
    if c == 0.0:
        return NEVER
    ratio = -c / d0
    if not (ratio > 0.0 and ratio < 1.0):
        return NEVER
    return after(now, -math.log(ratio) / lam)


@njit(**KERNEL_FLAGS)
def cmp_gt(d, s):
    return d > 0.0 or (d == 0.0 and s > 0.0)


@njit(**KERNEL_FLAGS)
def cmp_lt(d, s):
    return d < 0.0 or (d == 0.0 and s < 0.0)


@njit(**KERNEL_FLAGS)
def nc_and(a, ca, b, cb):
    """Next change of ``a and b`` given each side's value and next change."""
    if a and b:
        return min(ca, cb)
    if a:
        return cb
    if b:
        return ca
    return max(ca, cb)


@njit(**KERNEL_FLAGS)
def nc_or(a, ca, b, cb):
    if not a and not b:
        return min(ca, cb)
    if a and b:
        return max(ca, cb)
    if a:
        return ca
    return cb


# --- sliding windows: 12 buckets, bucket k holds floor(ts / (W/12)) == k --------------

@njit(**KERNEL_FLAGS)
def bucket_of(now, w_us):
    return (now * 12) // w_us


@njit(**KERNEL_FLAGS)
def zone_offset(Z, zone, t):
    """The UTC offset (microseconds) in effect at time ``t`` in zone row ``zone`` of the zone
    table (runtime/zones.py): ``Z[zone, 0]`` transitions, then (time, offset from then) pairs."""
    n = Z[zone, 0]
    lo, hi = 0, n - 1
    while lo < hi:  # the last transition at or before t (the first one stands for "always before")
        mid = (lo + hi + 1) // 2
        if Z[zone, 1 + 2 * mid] <= t:
            lo = mid
        else:
            hi = mid - 1
    return Z[zone, 2 + 2 * lo]


@njit(**KERNEL_FLAGS)
def zone_next(Z, zone, t):
    """The next transition of zone row ``zone`` after time ``t`` (NEVER when none)."""
    n = Z[zone, 0]
    for i in range(n):
        if Z[zone, 1 + 2 * i] > t:
            return Z[zone, 1 + 2 * i]
    return NEVER


@njit(**KERNEL_FLAGS)
def room_bucket(RI, room, t, start_col, ring_col, width, nbuckets, bucket_us, cur_col, aud_col):
    """The first column of room ``room``'s ring row for stream-time bucket of ``t`` (cleared when
    the row held an older bucket), or -1 when the row already holds a newer one (a late event:
    the totals count it, its slot does not). Column ``ring_col + row * width`` is the row's tag:
    bucket + 1, 0 for a row never used (features/roommetrics.py). A new row's last two cells
    (its peak and audience) start at the room's audience (``aud_col``), which only sessions'
    starts and ends change after that.

    ``cur_col``: the last bucket found, as [from, to) in microseconds, its first column and the
    stream start it was found for, set here. The caller checks it inline first (the generated
    kernel, features/roommetrics.py ``_bucket``), so nearly every event takes a few comparisons,
    not this call and two integer divisions. It stays right: a row's tag changes only below,
    which then points it at that row's new bucket, and a new start (``live_start``) makes it miss."""
    start = RI[room, start_col]
    b = 0 if start == MISSING or t <= start else (t - start) // bucket_us
    base = ring_col + (b % nbuckets) * width
    tag = RI[room, base]
    if tag > b + 1:
        return -1
    if tag < b + 1:
        for c in range(width):
            RI[room, base + c] = 0
        RI[room, base] = b + 1
        RI[room, base + width - 2] = RI[room, aud_col]
        RI[room, base + width - 1] = RI[room, aud_col]
    if start != MISSING:
        RI[room, cur_col] = start + b * bucket_us if b > 0 else MISSING  # bucket 0 holds every time up to the start
        RI[room, cur_col + 1] = start + (b + 1) * bucket_us
        RI[room, cur_col + 2] = base
        RI[room, cur_col + 3] = start
    return base


@njit(**KERNEL_FLAGS)
def oldest_key(VI, slot, keys_col, k):
    """The key slot a new key takes: the first empty one (0), else the least recently used (the
    lowest use number: features/keyed.py)."""
    best = 0
    low = USE_MASK + 1
    for j in range(k):
        held = VI[slot, keys_col + j]
        if held == 0:
            return j
        if (held & USE_MASK) < low:
            low = held & USE_MASK
            best = j
    return best


@njit(**KERNEL_FLAGS)
def renumber_uses(VI, slot, keys_col, k):
    """A viewer's keyed use numbers reached USE_MASK (2**31 keyed events of one kind): number its
    held keys 1.. again in the same order, so the least recently used stays the lowest. Returns
    the highest number given."""
    n = 0
    last = np.int64(0)
    for _ in range(k):  # k passes of k: the next lowest use above ``last``, each given n + 1
        best = -1
        for j in range(k):
            use = VI[slot, keys_col + j] & USE_MASK
            if VI[slot, keys_col + j] != 0 and use > last and (best < 0 or use < (VI[slot, keys_col + best] & USE_MASK)):
                best = j
        if best < 0:
            break
        last = VI[slot, keys_col + best] & USE_MASK
        n += 1
        VI[slot, keys_col + best] = (VI[slot, keys_col + best] >> 32 << 32) | n
    return n


@njit(**KERNEL_FLAGS)
def window_roll(VI, slot, head_col, k):
    """Advance a window group's head to bucket ``k``; returns how many buckets to clear (0..12)."""
    head = VI[slot, head_col]
    if head == MISSING:
        VI[slot, head_col] = k
        return 12
    if k <= head:
        return 0
    VI[slot, head_col] = k
    return min(12, k - head)


@njit(**KERNEL_FLAGS)
def window_count(VN, slot, col, head, k_now):
    """Sum of a count window's buckets still inside the window at bucket ``k_now``.

    Walks only the buckets in the window (no modulo per bucket); when the head is the current
    bucket (the common case: the viewer just acted) it is a plain sum of 12 cells.
    """
    if head == MISSING:
        return 0.0
    lag = k_now - head
    if lag == 0:
        total = 0
        for j in range(12):
            total += VN[slot, col + j]
        return float(total)
    if lag >= 12 or lag <= -12:
        return 0.0
    pos = min(head, k_now) % 12
    total = 0
    for _ in range(12 - abs(lag)):
        total += VN[slot, col + pos]
        pos = 11 if pos == 0 else pos - 1
    return float(total)


@njit(**KERNEL_FLAGS)
def window_sum(VF, slot, col, head, k_now):
    """Like :func:`window_count`, always newest bucket first (a fixed order keeps sums exact-repeatable)."""
    if head == MISSING:
        return 0.0
    lag = k_now - head
    if lag >= 12 or lag <= -12:
        return 0.0
    pos = min(head, k_now) % 12
    total = 0.0
    for _ in range(12 - abs(lag)):
        total += VF[slot, col + pos]
        pos = 11 if pos == 0 else pos - 1
    return total


@njit(**KERNEL_FLAGS)
def window_expiry(VN, slot, col, head, k_now, w_us):
    """When the oldest non-empty bucket still in the window drops out (NEVER if empty)."""
    if head == MISSING:
        return NEVER
    lag = k_now - head
    if lag >= 12 or lag <= -12:
        return NEVER
    n = 12 - abs(lag)
    oldest = min(head, k_now) - n + 1
    pos = oldest % 12
    for j in range(n):
        if VN[slot, col + pos] != 0:
            # first microsecond t with t * 12 // w_us >= oldest + j + 12
            return ((oldest + j + 12) * w_us + 11) // 12
        pos = 0 if pos == 11 else pos + 1
    return NEVER


@njit(**KERNEL_FLAGS)
def window_drop(VN, slot, col, head, k_now, w_us, need):
    """When a count window's total falls below ``need`` (>= 1) as buckets drop out: the instant
    the bucket holding the need-th newest event leaves the window (NEVER if below already)."""
    if head == MISSING:
        return NEVER
    lag = k_now - head
    if lag < 0:  # a head ahead of now (not reached by passes): the window's own horizon, conservative
        return window_expiry(VN, slot, col, head, k_now, w_us)
    if lag >= 12:
        return NEVER
    pos = head % 12
    total = 0
    for j in range(12 - lag):
        total += VN[slot, col + pos]
        if total >= need:
            # first microsecond t with t * 12 // w_us >= bucket + 12
            return ((head - j + 12) * w_us + 11) // 12
        pos = 11 if pos == 0 else pos - 1
    return NEVER


# --- timer heap: (due_us, arrival, slot) rows, smallest first; lazy deletion -----------------
# Ties at one due time go by the viewer's arrival number (the order of first accepted events,
# a viewer forgotten by retention counting from its return), never by slot: slots are reused.

@njit(**KERNEL_FLAGS)
def _heap_less(H, i, j):
    if H[i, 0] != H[j, 0]:
        return H[i, 0] < H[j, 0]
    if H[i, 1] != H[j, 1]:
        return H[i, 1] < H[j, 1]
    return H[i, 2] < H[j, 2]


@njit(**KERNEL_FLAGS)
def _heap_swap(H, i, j):
    for c in range(3):
        t = H[i, c]
        H[i, c] = H[j, c]
        H[j, c] = t


@njit(**KERNEL_FLAGS)
def heap_push(H, meta, due, arrival, slot):
    n = meta[0, META_HEAP_N]
    H[n, 0] = due
    H[n, 1] = arrival
    H[n, 2] = slot
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        if _heap_less(H, i, parent):
            _heap_swap(H, i, parent)
            i = parent
        else:
            break
    meta[0, META_HEAP_N] = n + 1


@njit(**KERNEL_FLAGS)
def heap_sift_down(H, i, n):
    """Restore the (due, arrival, slot) min-heap order of ``H[:n]`` below position ``i``."""
    while True:
        left = 2 * i + 1
        if left >= n:
            return
        best = left
        right = left + 1
        if right < n and _heap_less(H, right, left):
            best = right
        if not _heap_less(H, best, i):
            return
        _heap_swap(H, i, best)
        i = best


@njit(**KERNEL_FLAGS)
def heap_pop(H, meta):
    """Remove the smallest entry (the caller has read it at H[0])."""
    n = meta[0, META_HEAP_N] - 1
    meta[0, META_HEAP_N] = n
    if n == 0:
        return
    for c in range(3):
        H[0, c] = H[n, c]
    heap_sift_down(H, 0, n)


@njit(**KERNEL_FLAGS)
def schedule(VI, H, meta, slot, due, due_col, queued_col, arrival_col):
    """Set a viewer's next wake-up. Only pushes when it moves earlier than what is queued."""
    VI[slot, due_col] = due
    if due < VI[slot, queued_col]:
        heap_push(H, meta, due, VI[slot, arrival_col], slot)
        VI[slot, queued_col] = due


# --- cart: open addressing over (slot, item) -> (epoch, units, value) ----------------------
# CARTK rows: slot (-1 empty), item, epoch, units; CARTV rows: value of those units.

@njit(**KERNEL_FLAGS)
def _cart_hash(slot, item, mask):
    h = (slot * np.int64(0x9E3779B1) + item * np.int64(0x85EBCA77)) & np.int64(0x7FFFFFFFFFFFFFFF)
    h ^= h >> 29
    return h & mask


@njit(**KERNEL_FLAGS)
def cart_find(K, slot, item, insert, meta):
    """Row of (slot, item), or -1; with ``insert`` a new row is claimed when absent."""
    cap = K.shape[0]
    mask = cap - 1
    i = _cart_hash(slot, item, mask)
    while True:
        s = K[i, 0]
        if s == -1:
            if not insert:
                return -1
            K[i, 0] = slot
            K[i, 1] = item
            K[i, 2] = -1
            K[i, 3] = 0
            meta[0, META_CART_N] += 1
            return i
        if s == slot and K[i, 1] == item:
            return i
        i = (i + 1) & mask


@njit(**KERNEL_FLAGS)
def cart_rehash(K_old, V_old, K_new, V_new, epochs, epoch_col):
    """Copy live rows (current epoch, units > 0) into a fresh table; returns the row count."""
    n = 0
    mask = K_new.shape[0] - 1
    for r in range(K_old.shape[0]):
        slot = K_old[r, 0]
        if slot < 0 or K_old[r, 3] <= 0 or K_old[r, 2] != epochs[slot, epoch_col]:
            continue
        i = _cart_hash(slot, K_old[r, 1], mask)
        while K_new[i, 0] != -1:
            i = (i + 1) & mask
        for c in range(4):
            K_new[i, c] = K_old[r, c]
        V_new[i, 0] = V_old[r, 0]
        n += 1
    return n
