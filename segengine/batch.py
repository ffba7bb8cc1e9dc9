"""Columnar batches: many events as numpy arrays, validated without a per-event Python loop.

``ingest_many`` turns every input (a list of events, NDJSON bytes or a :class:`Batch`)
into the integer and float columns one kernel call consumes. Ids are interned per
*distinct* value (in order of first appearance, so slots match one-by-one ingestion),
never per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .events import Event

__all__ = ["Batch"]

_FIELDS = ("type", "viewer", "room", "ts", "item", "category", "price", "amount", "text")


def _column(values: Any, n: int, name: str) -> np.ndarray:
    if isinstance(values, str) or values is None:
        return np.full(n, values, dtype=object)
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(f"Batch column {name!r} has shape {arr.shape}, expected ({n},)")
    return arr


class Batch:
    """Events as columns, one row per event.

    Parameters
    ----------
    type : array of str (or of int codes from ``Engine.type_codes``), shape (n,)
    viewer : array of int or of str, shape (n,); ignored for room events
    room : array of str, or one str for every row
    ts : float array, shape (n,), unix seconds
    item, category, text : arrays of str (``None`` = absent), optional
    price, amount : float arrays (``NaN`` = absent), optional

    Examples
    --------
    >>> import numpy as np
    >>> b = Batch(type=["enter", "like"], viewer=np.array([1, 1]), room="r1", ts=[10.0, 11.0])
    >>> len(b), b.event(1).type
    (2, 'like')
    """

    __slots__ = (*_FIELDS, "room_scalar", "viewer_missing")

    def __init__(self, type, viewer, room, ts, item=None, category=None, price=None, amount=None, text=None,
                 viewer_missing=None):
        n = len(ts)
        self.viewer_missing = viewer_missing  # rows of an int viewer column that had no viewer
        self.ts = np.asarray(ts, dtype=np.float64)
        self.type = _column(type, n, "type")
        self.viewer = _column(viewer, n, "viewer")
        self.room_scalar = room if isinstance(room, str) else None  # one room for every row: no column work
        self.room = _column(room, n, "room")
        self.item = _column(item, n, "item")
        self.category = _column(category, n, "category")
        self.text = _column(text, n, "text")
        self.price = np.full(n, np.nan) if price is None else np.asarray(price, dtype=np.float64)
        self.amount = np.full(n, np.nan) if amount is None else np.asarray(amount, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def from_events(cls, events: Sequence[Event], type_codes: dict[str, int] | None = None) -> "Batch":
        """Columns from decoded events, as typed as the values allow (one pass per field).

        With ``type_codes``, types become int codes (-1 for unknown ones); viewer ids become an
        int64 column when they are all ints; strings become fixed-width numpy columns when no
        value is absent. Typed columns are what the vectorized checks and id maps work on.
        """
        nan = float("nan")
        n = len(events)
        if type_codes is not None:
            types = np.fromiter((type_codes.get(e.type, -1) for e in events), np.int64, n)
        else:
            types = np.array([e.type for e in events], dtype=object)
        viewers = [e.viewer for e in events]
        viewer_missing = None
        try:  # int ids (the common case for backends): an int64 column, absent ones marked
            viewer = np.array([0 if v is None else v for v in viewers], dtype=np.int64)
            if None in viewers:
                viewer_missing = np.array([v is None for v in viewers])
        except (TypeError, ValueError, OverflowError):
            viewer = np.array(viewers, dtype=object)
        return cls(
            type=types,
            viewer=viewer,
            room=_str_column([e.room for e in events]),
            ts=np.fromiter((e.ts for e in events), np.float64, n),
            item=_str_column([e.item for e in events], absent_is_blank=True),
            category=_str_column([e.category for e in events], absent_is_blank=True),
            price=np.fromiter((nan if e.price is None else e.price for e in events), np.float64, n),
            amount=np.fromiter((nan if e.amount is None else e.amount for e in events), np.float64, n),
            text=_str_column([e.text for e in events], absent_is_blank=True),
            viewer_missing=viewer_missing,
        )

    def take(self, rows: np.ndarray) -> "Batch":
        """The rows selected by an index or boolean array."""
        out = Batch.__new__(Batch)
        for name in _FIELDS:
            setattr(out, name, getattr(self, name)[rows])
        out.room_scalar = self.room_scalar
        out.viewer_missing = None if self.viewer_missing is None else self.viewer_missing[rows]
        return out

    def event(self, i: int) -> Event:
        """Row ``i`` as an :class:`Event` (built only when an action needs it)."""
        def get(name: str):
            value = getattr(self, name)[i]
            if isinstance(value, float) and value != value:
                return None
            return value.item() if isinstance(value, np.generic) else value
        return Event(**{name: get(name) for name in _FIELDS})


def _str_column(values: list, absent_is_blank: bool = False) -> np.ndarray:
    """Fixed-width strings when every value is a str (vectorized downstream), else objects.

    ``absent_is_blank``: None becomes "" (for item, category and text an absent value reads
    as "" in every rule, so nothing is lost).
    """
    if absent_is_blank:
        values = ["" if v is None else v for v in values]
    elif None in values:
        return np.array(values, dtype=object)
    try:  # decoded events hold str or None only; anything else stays an object column
        return np.array(values, dtype=str) if values else np.array(values, dtype=object)
    except (TypeError, ValueError):
        return np.array(values, dtype=object)


class BatchView(Sequence):
    """Row access for placeholders: ``view[i]`` is the i-th event of the batch."""

    __slots__ = ("batch",)

    def __init__(self, batch: Batch):
        self.batch = batch

    def __getitem__(self, i):  # type: ignore[override]
        return self.batch.event(i)

    def __len__(self) -> int:
        return len(self.batch)


def validity(batch: Batch, codes: np.ndarray, room_codes: np.ndarray) -> tuple[np.ndarray, tuple[int, str, str]]:
    """Rows that are invalid, and (row, field, message) of the first one ((-1, "", "") if none).

    ``codes`` are the type codes (-1 for unknown types); ``room_codes`` the codes of room events.
    """
    n = len(batch)
    bad = np.zeros(n, bool)
    candidates: list[tuple[int, str, str]] = []

    def flag(mask: np.ndarray, field: str, message: str) -> None:
        bad[mask] = True
        hits = np.flatnonzero(mask)
        if hits.size:
            candidates.append((int(hits[0]), field, message))

    flag(codes < 0, "type", "unknown or missing event type")
    flag(~np.isfinite(batch.ts), "ts", "Expected a finite number, got non-finite or missing")
    if batch.room_scalar is None:
        flag(_missing(batch.room) | ~_all_str(batch.room), "room", "Expected `str`, got a missing or non-string room")
    is_room_event = np.isin(codes, room_codes)
    bad_viewer = _missing(batch.viewer) | ~_viewer_ok(batch.viewer)
    if batch.viewer_missing is not None:
        bad_viewer |= batch.viewer_missing
    flag(~is_room_event & bad_viewer, "viewer", "Expected `str | int`, got a missing or mistyped viewer")
    for name in ("item", "category", "text"):
        col = getattr(batch, name)
        if name == "item" and col.dtype.kind in "iu":
            continue  # int item ids are fine too (columnar backends use them)
        flag(_present_but_not_str(col), name, "Expected `str`")
    for name in ("price", "amount"):
        col = getattr(batch, name)
        flag(np.isinf(col), name, "Expected a finite number, got non-finite")
    return bad, (min(candidates) if candidates else (-1, "", ""))


def _missing(col: np.ndarray) -> np.ndarray:
    """Rows holding None (only object columns can); one C-level comparison."""
    if col.dtype != object:
        return np.zeros(len(col), bool)
    return np.equal(col, None)


def _present_but_not_str(col: np.ndarray) -> np.ndarray:
    """Rows with a value that is not a str; type checks only where a value is present."""
    bad = np.zeros(len(col), bool)
    if col.dtype.kind == "U":
        return bad
    if col.dtype != object:
        return ~bad
    present = np.flatnonzero(~np.equal(col, None))
    if present.size:
        bad[present] = ~_all_str(col[present])
    return bad


def _all_str(col: np.ndarray) -> np.ndarray:
    if col.dtype.kind == "U":
        return np.ones(len(col), bool)
    if col.dtype == object:
        return np.fromiter((isinstance(v, str) for v in col), bool, len(col)) if len(col) else np.zeros(0, bool)
    return np.zeros(len(col), bool)


def _viewer_ok(col: np.ndarray) -> np.ndarray:
    if col.dtype.kind in "iuU":
        return np.ones(len(col), bool)
    if col.dtype == object:
        return np.fromiter((isinstance(v, (str, int)) and not isinstance(v, bool) for v in col), bool, len(col)) if len(col) else np.zeros(0, bool)
    return np.zeros(len(col), bool)


def codes_of(values: np.ndarray, table: dict, missing: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map each row to ``table[value]`` through the distinct values.

    Returns (codes, uniques in order of first appearance, inverse) so callers can intern
    unknown values in a deterministic order.
    """
    if len(values) == 0:
        return np.zeros(0, np.int64), values[:0], np.zeros(0, np.int64)
    keys = values
    if values.dtype == object:
        # np.unique needs orderable values; None and mixed types are mapped through a dict
        seen: dict = {}
        inverse = np.fromiter((seen.setdefault(v, len(seen)) for v in values), np.int64, len(values))
        uniques = np.empty(len(seen), dtype=object)
        uniques[:] = list(seen)
    else:
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        uniques = uniq[order]
        inverse = rank[inverse]
    mapped = np.fromiter((table.get(_py(u), missing) for u in uniques), np.int64, len(uniques))
    return mapped[inverse], uniques, inverse


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
