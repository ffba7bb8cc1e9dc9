"""The arrays behind a running engine, their growth, and the pointer table kernels receive.

Kernels get one int64 table of (address, rows, cols) triples (see
:mod:`segengine.kernels.primitives`). Every array is owned here; whenever one is
replaced by a larger copy the table is rewritten, so a kernel never sees a stale
address. Capacity grows by doubling (amortized O(1) per new viewer).
"""

from __future__ import annotations

import numpy as np

from ..kernels.primitives import (
    M_CARTK, M_CARTV, M_HEAP, M_LITS, M_META, M_OUTF, M_OUTI, M_RI, M_VF, M_VI, M_PRES, M_VIDS, M_VN, M_ZONES,
    HEAP_COLS, META_CART_N, META_HEAP_N, META_NOW, MISSING, N_MATRICES, NEVER, OUT_COLS, cart_rehash,
)
from ..compiler.layout import FLAG_PRESENT, Layout
from .. import guards
from ..guards import meta_width
from ..features.roomnames import RI_ZERO_PREFIXES

from .zones import Zones

__all__ = ["Store"]

#: The output buffer grows (by doubling) to at most this many rows.
MAX_OUT_ROWS = 1 << 16

#: The arrays a snapshot saves, in order, and what bounds the rows in use: the viewer or
#: room slots handed out, the live timer-heap entries, or every row ("all").
SAVED = (
    ("VI", "viewers"), ("VF", "viewers"), ("VN", "viewers"), ("RI", "rooms"), ("HEAP", "heap"),
    ("CARTK", "all"), ("CARTV", "all"), ("OUTI", "all"), ("OUTF", "all"), ("META", "all"), ("LITS", "all"),
)


def aligned_rows(n: int, width: int, dtype=np.int64, zeroed: bool = False) -> np.ndarray:
    """An (n, width) array whose data starts on a 64-byte boundary (uninitialised, or zeroed:
    pages the kernel maps on first touch). Rows of a keyed layout are whole cache lines
    (compiler/layout.py pad_to_line), so with this every row starts a line and a block of 8 VI
    columns is one line; other rows start at their lowest line offset (numpy's own large arrays
    start 16 bytes past one, and a 128-byte row then spans 3 lines instead of 2)."""
    itemsize = np.dtype(dtype).itemsize
    extra = 64 // itemsize
    buf = (np.zeros if zeroed else np.empty)(n * width + extra, dtype)
    skip = (-buf.ctypes.data % 64) // itemsize
    return buf[skip: skip + n * width].reshape(n, width)


#: The per-viewer matrices (held 64-byte aligned) and their types.
ROW_TYPES = {"VI": np.int64, "VF": np.float64, "VN": np.uint16}


def _vi_template(lay: Layout) -> np.ndarray:
    row = np.zeros(len(lay.vi), np.int64)
    for i, name in enumerate(lay.vi):
        if name in ("clock", "last_ts") or name.startswith(("head:", "since(", "deadline:")):
            row[i] = MISSING
        elif name in ("due", "queued"):
            row[i] = NEVER
        elif name in ("room", "arrival"):
            row[i] = -1
    for g in guards.GUARDS:
        for col, value in g.initial(lay, "vi").items():
            row[col] = value
    return row


def _ri_template(lay: Layout) -> np.ndarray:
    row = np.full(len(lay.ri), MISSING, np.int64)
    row[lay.ri.index("audience")] = 0
    for i, name in enumerate(lay.ri):
        if name.startswith(RI_ZERO_PREFIXES):  # room.share counts and room rule state (features/roomnames.py)
            row[i] = 0
    for g in guards.GUARDS:
        for col, value in g.initial(lay, "ri").items():
            row[col] = value
    return row


class Store:
    """Owns every state array of one engine."""

    def __init__(self, lay: Layout, n_rules: int, out_width: int, n_literals: int, viewers: int = 1024, rooms: int = 4):
        self.layout = lay
        self.vi_row = _vi_template(lay)
        self.ri_row = _ri_template(lay)
        self.VI = aligned_rows(viewers, len(self.vi_row))
        self.VI[:] = self.vi_row
        self.VF = aligned_rows(viewers, max(1, len(lay.vf)), np.float64, zeroed=True)
        self.VN = aligned_rows(viewers, max(1, len(lay.vn)), np.uint16, zeroed=True)
        self.RI = np.tile(self.ri_row, (rooms, 1))
        self.HEAP = np.zeros((1024, HEAP_COLS), np.int64)
        self.CARTK = np.full((64, 4), -1, np.int64)
        self.CARTV = np.zeros((64, 1), np.float64)
        # room for a few passes' rows (a kernel asks for room before each pass)
        self.OUTI = np.zeros((max(256, 4 * lay.rows_per_pass(n_rules)), OUT_COLS), np.int64)
        self.OUTF = np.zeros((self.OUTI.shape[0], out_width), np.float64)
        self.META = np.zeros((1, meta_width(n_rules)), np.int64)
        self.META[0, META_NOW] = MISSING
        self.LITS = np.full((1, max(1, n_literals)), -1, np.int64)
        # each viewer slot's room while present, else -1: one narrow column, so that a scan of
        # a room's present viewers (a room-wide trigger, mix) reads 8 bytes per viewer, not a VI row
        self.PRES = np.full((viewers, 1), -1, np.int64)
        self.VIDS = np.full((1, 1), -1, np.int64)  # int viewer id -> slot (the viewer interner's index)
        self.ZONES = Zones().table  # time-zone offset transitions (runtime/zones.py; the core's Zones owns it)
        self.n_rules = n_rules
        self.tab = np.zeros(3 * N_MATRICES, np.int64)
        self.tab_addr = self.tab.ctypes.data  # what the event kernel takes (the table never moves)
        self.refresh()

    def matrices(self) -> dict[int, np.ndarray]:
        return {M_VI: self.VI, M_VF: self.VF, M_VN: self.VN, M_RI: self.RI, M_HEAP: self.HEAP,
                M_CARTK: self.CARTK, M_CARTV: self.CARTV, M_OUTI: self.OUTI, M_OUTF: self.OUTF,
                M_META: self.META, M_LITS: self.LITS, M_VIDS: self.VIDS, M_ZONES: self.ZONES,
                M_PRES: self.PRES}

    def prefetch_spec(self, codes: dict[str, int]) -> tuple[int, int, int, int]:
        """What the C fast path starts loading of an event's viewer rows (runtime/_fastpath.c):
        the bytes of the VI, VF and VN columns before the rows' tail (compiler/layout.py
        ``tail_from``), and a bit per type code (``codes``: type -> code) whose events read the
        tail; those, and codes from 64, load the whole rows. A hint only: nothing reads it."""
        lay = self.layout
        mask = 0
        for t in lay.tail_types:
            code = codes.get(t, 64)
            if code < 64:
                mask |= 1 << code
        hot = [lay.tail_from.get(m, len(getattr(lay, m))) * ROW_TYPES[m.upper()]().itemsize for m in ("vi", "vf", "vn")]
        return hot[0], hot[1], hot[2], mask

    def set_viewer_index(self, index: np.ndarray) -> None:
        """Point kernels at the viewer interner's int-id index (called whenever it is replaced)."""
        self.VIDS = index.reshape(-1, 1)
        self.refresh()

    def refresh(self) -> None:
        """Rewrite the pointer table after any array was replaced."""
        for k, arr in self.matrices().items():
            assert arr.flags.c_contiguous
            self.tab[3 * k] = arr.ctypes.data
            self.tab[3 * k + 1] = arr.shape[0]
            self.tab[3 * k + 2] = arr.shape[1]

    # growth ------------------------------------------------------------------------
    def ensure_viewers(self, n: int) -> None:
        """Make room for slots 0..n-1."""
        cap = self.VI.shape[0]
        if n <= cap:
            return
        new = max(n, 2 * cap)
        grown = aligned_rows(new, self.VI.shape[1])
        grown[:cap] = self.VI
        grown[cap:] = self.vi_row
        self.VI = grown
        for name in ("VF", "VN"):
            old = getattr(self, name)
            grown = aligned_rows(new, old.shape[1], old.dtype, zeroed=True)
            grown[:cap] = old
            setattr(self, name, grown)
        self.PRES = np.concatenate([self.PRES, np.full((new - cap, 1), -1, np.int64)])
        self.refresh()

    def ensure_rooms(self, n: int) -> None:
        cap = self.RI.shape[0]
        if n <= cap:
            return
        self.RI = np.concatenate([self.RI, np.tile(self.ri_row, (max(n, 2 * cap) - cap, 1))])
        self.refresh()

    def make_room(self) -> None:
        """Called when a kernel said NEED_ROOM: grow whatever is close to full."""
        if self.META[0, META_HEAP_N] + 64 > self.HEAP.shape[0]:
            self.HEAP = np.concatenate([self.HEAP, np.zeros_like(self.HEAP)])
        if 2 * (self.META[0, META_CART_N] + 64) > self.CARTK.shape[0]:
            self.grow_cart()
        self.refresh()

    def grow_out(self, rows: int) -> None:
        """The last kernel call stopped with ``rows`` output rows waiting: when they filled more
        than half the buffer, double it (up to :data:`MAX_OUT_ROWS`), so that a room-wide trigger's
        thousands of rows or a busy batch need a few kernel calls, not one per 256 rows."""
        cap = self.OUTI.shape[0]
        if 2 * rows <= cap or cap >= MAX_OUT_ROWS:
            return
        self.OUTI = np.zeros((2 * cap, self.OUTI.shape[1]), np.int64)
        self.OUTF = np.zeros((2 * cap, self.OUTF.shape[1]), np.float64)
        self.refresh()

    def grow_cart(self) -> None:
        """Rehash the cart table, dropping paid-for and dead rows, into a size fitting the live rows.

        The table doubles only when live rows fill it; rows left by paid carts and by
        forgotten viewers (see :mod:`segengine.ops.retention`) are dropped, so its size
        follows the live carts, not the number of carts ever made. The new size is at
        least 4x the live rows (plus slack), so the next rehash is O(size) claims away.
        """
        lay = self.layout
        epoch_col = lay.vn.index("cart_epoch") if lay.has_cart else 0
        K = self.CARTK
        used = K[:, 0] >= 0
        live = used & (K[:, 3] > 0)
        live[live] = K[live, 2] == self.VN[K[live, 0], epoch_col]
        size = max(64, 1 << (4 * (int(np.count_nonzero(live)) + 64) - 1).bit_length())
        keys = np.full((size, 4), -1, np.int64)
        values = np.zeros((size, 1), np.float64)
        self.META[0, META_CART_N] = cart_rehash(self.CARTK, self.CARTV, keys, values, self.VN, epoch_col)
        self.CARTK, self.CARTV = keys, values

    # saving and loading ------------------------------------------------------------------
    def saved_arrays(self, viewers: int, rooms: int) -> list[tuple[str, np.ndarray, int]]:
        """``(name, rows in use, capacity)`` of each array a snapshot saves (:data:`SAVED` order),
        given the viewer and room slots handed out. The rows are C-contiguous views or copies."""
        bound = {"viewers": viewers, "rooms": rooms, "heap": int(self.META[0, META_HEAP_N])}
        out = []
        for name, rows in SAVED:
            full = getattr(self, name)
            arr = full if rows == "all" else full[: bound[rows]]
            out.append((name, np.ascontiguousarray(arr), full.shape[0]))
        return out

    def load_arrays(self, arrays: dict[str, np.ndarray], rows: dict[str, int]) -> None:
        """Take over saved arrays (full capacity; the first ``rows[name]`` rows hold the saved
        data, the rest are reset here). ``ValueError`` when one does not fit this layout."""
        for name, full in arrays.items():
            current = getattr(self, name)
            if full.shape[1] != current.shape[1] or full.dtype != current.dtype:
                raise ValueError(f"array {name} has {full.shape[1]} columns of {full.dtype}; "
                                 f"expected {current.shape[1]} of {current.dtype}")
            full[rows[name]:] = self.vi_row if name == "VI" else self.ri_row if name == "RI" else 0
            if name in ROW_TYPES and full.ctypes.data % 64:
                aligned = aligned_rows(*full.shape, full.dtype)
                aligned[:] = full
                full = aligned
            setattr(self, name, full)
        self.rebuild_present()

    def rebuild_present(self) -> None:
        """``PRES`` from the viewer rows (after a load: the column is derived, not saved); then
        the pointer table is rewritten, as after any array is replaced."""
        lay = self.layout
        room, flags = self.VI[:, lay.vi.index("room")], self.VI[:, lay.vi.index("flags")]
        self.PRES = np.where((flags & FLAG_PRESENT) != 0, room, -1).reshape(-1, 1).astype(np.int64)
        self.refresh()

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.matrices().values())
