"""Columnar batches: many events as numpy arrays, validated without a per-event Python loop.

``ingest_many`` turns every input (a list of events, NDJSON bytes or a :class:`Batch`)
into the integer and float columns one kernel call consumes. Ids are interned per
*distinct* value (in order of first appearance, so slots match one-by-one ingestion),
never per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from .events import Event, encodable, num_range_message, ts_range_message
from .fields import BY_NAME, FIELDS, NAMES, OPTIONAL

if TYPE_CHECKING:
    from .ndjson import Scanned

__all__ = ["Batch", "Coded"]

_FIELDS = NAMES  # the event schema's fields (schema/fields.py): one column each
#: optional string columns: one left out is None, no work at all
_OPTIONAL = tuple(f.name for f in FIELDS if f.required == OPTIONAL and f.is_str)
#: optional number columns: one left out is all NaN (absent)
_OPTIONAL_NUM = tuple(f.name for f in FIELDS if f.required == OPTIONAL and f.kind == "num")
_TS_MIN, _TS_MAX = BY_NAME["ts"].range


class Coded:
    """A dictionary-encoded column (Arrow's DictionaryArray, pandas' Categorical): row ``i`` holds
    ``uniques[codes[i]]``, or nothing where ``codes[i] < 0``.

    Ids and strings are then mapped once per distinct value, never per row: the form a columnar
    backend (or segengine's NDJSON scanner) hands over without building a Python object per event.

    >>> c = Coded(np.array([0, 1, 0, -1]), ["u1", "u2"])
    >>> [c.value(i) for i in range(4)]
    ['u1', 'u2', 'u1', None]
    """

    __slots__ = ("codes", "uniques")

    def __init__(self, codes: Any, uniques: Any):
        self.codes = np.asarray(codes, dtype=np.int64)
        self.uniques = np.empty(len(uniques), dtype=object)
        self.uniques[:] = list(uniques)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, rows: Any) -> "Coded":
        out = Coded.__new__(Coded)
        out.codes, out.uniques = self.codes[rows], self.uniques
        return out

    def value(self, i: int) -> Any:
        code = int(self.codes[i])
        return self.uniques[code] if 0 <= code < len(self.uniques) else None



def _float_column(values: Any) -> np.ndarray:
    """A float64 column from numbers. Strict, as single events are: a value that is not a number
    (a str, a bool, a list) or that no float holds (an int beyond 1e308) becomes inf, so the batch
    checks reject that row, with its index, instead of numpy converting it or the constructor
    raising. ``None`` becomes NaN (absent)."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "iuf":
            return values.astype(np.float64, copy=False)
        if values.dtype != object:  # bools, strings, bytes: not numbers
            return np.full(len(values), np.inf)
    # a sequence (or objects): value by value, as numpy would turn True or "1.5" into a number
    return np.fromiter(map(_as_float, values), np.float64, len(values))


def _as_float(v: Any) -> float:
    if v is None:
        return np.nan
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return np.inf
    try:
        return float(v)
    except OverflowError:
        return np.inf


def _column(values: Any, n: int, name: str) -> Any:
    if values is None and name in _OPTIONAL:
        return None
    if isinstance(values, str) or values is None:
        return np.full(n, values, dtype=object)
    if isinstance(values, Coded):
        if len(values) != n:
            raise ValueError(f"Batch column {name!r} has {len(values)} rows, expected {n}")
        return values
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(f"Batch column {name!r} has shape {arr.shape}, expected ({n},)")
    return arr


class Batch:
    """Events as columns, one row per event.

    Parameters
    ----------
    type : array of str, or of int codes (index into ``engine.rules.event_types``), shape (n,)
    viewer : array of int or of str, or :class:`Coded`, shape (n,); ignored for room events
    room : array of str, :class:`Coded`, or one str for every row
    ts : float array, shape (n,), unix seconds
    item : array of str (``None`` = absent), of int ids (negative = absent), or :class:`Coded`; optional
    category : array of str (``None`` or ``""`` = absent), of int codes (index into
        ``engine.rules.categories``, negative = absent, past the end: a category that equals
        no literal; send undeclared categories as str), or :class:`Coded`; optional
    text : array of str (``None`` = absent) or :class:`Coded`; optional
    price, amount : float arrays (``NaN`` = absent), optional

    Examples
    --------
    >>> import numpy as np
    >>> b = Batch(type=["enter", "like"], viewer=np.array([1, 1]), room="r1", ts=[10.0, 11.0])
    >>> len(b), b.event(1).type
    (2, 'like')
    """

    __slots__ = (*_FIELDS, "room_scalar", "viewer_missing", "checked")

    def __init__(self, type, viewer, room, ts, item=None, category=None, price=None, amount=None, text=None,
                 viewer_missing=None):
        n = len(ts)
        self.viewer_missing = viewer_missing  # rows of an int viewer column that had no viewer
        self.checked = False  # True: built by a decoder that validated every row (no column checks needed)
        self.ts = _float_column(ts)
        self.type = _column(type, n, "type")
        self.viewer = _column(viewer, n, "viewer")
        self.room_scalar = room if isinstance(room, str) else None  # one room for every row: no column at all
        self.room = None if self.room_scalar is not None else _column(room, n, "room")
        self.item = _column(item, n, "item")
        self.category = _column(category, n, "category")
        self.text = _column(text, n, "text")
        self.price = np.full(n, np.nan) if price is None else _float_column(price)
        self.amount = np.full(n, np.nan) if amount is None else _float_column(amount)

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
            item=_str_column([e.item for e in events], absent_is_blank=True, none_if_all_absent=True),
            category=_str_column([e.category for e in events], absent_is_blank=True, none_if_all_absent=True),
            price=np.fromiter((nan if e.price is None else e.price for e in events), np.float64, n),
            amount=np.fromiter((nan if e.amount is None else e.amount for e in events), np.float64, n),
            text=_str_column([e.text for e in events], absent_is_blank=True, none_if_all_absent=True),
            viewer_missing=viewer_missing,
        )

    @classmethod
    def from_scanned(cls, s: "Scanned", categories: Sequence[str]) -> "Batch":
        """A checked Batch over the scanner's columns: strings stay dictionary-encoded.

        ``categories``: the names the scanner coded categories by (``scan_ndjson``'s).
        """
        if s.viewer_uniques is None:
            viewer, missing = s.viewer, (s.viewer_absent if s.viewer_absent.any() else None)
        else:
            viewer, missing = Coded(s.viewer, s.viewer_uniques), None
        one_room = len(s.room_uniques) == 1
        # scanner codes (0 absent, i + 1 for categories[i], -1 any other string) -> a Coded column
        # whose last unique stands for "any other string": a str none of the names equals
        other = "\x00"
        while other in categories:
            other += "\x00"
        category = Coded(np.where(s.category > 0, s.category - 1, np.where(s.category == 0, -1, len(categories))),
                         [*categories, other])
        batch = cls(type=s.type, viewer=viewer, room=s.room_uniques[0] if one_room else Coded(s.room, s.room_uniques),
                    ts=s.ts, item=Coded(s.item, s.item_uniques) if s.item_uniques else None,
                    category=category if s.category.any() else None, price=s.price, amount=s.amount,
                    text=Coded(s.text, s.text_uniques) if s.text_uniques else None, viewer_missing=missing)
        batch.checked = True
        return batch

    def take(self, rows: np.ndarray) -> "Batch":
        """The rows selected by an index or boolean array."""
        out = Batch.__new__(Batch)
        for name in _FIELDS:
            col = getattr(self, name)
            setattr(out, name, None if col is None else col[rows])
        out.room_scalar = self.room_scalar
        out.checked = self.checked
        out.viewer_missing = None if self.viewer_missing is None else self.viewer_missing[rows]
        return out

    def event(self, i: int) -> Event:
        """Row ``i`` as an :class:`Event` (built only when an action needs it)."""
        return Event(**{name: self.value(name, i) for name in _FIELDS})

    def value(self, name: str, i: int) -> Any:
        """Field ``name`` of row ``i`` as a Python value (None where absent)."""
        col = getattr(self, name)
        if col is None:
            return self.room_scalar if name == "room" else None
        if type(col) is Coded:
            return col.value(i)
        value = col.item(i)  # a Python scalar (or the object itself), in one call
        return None if value != value else value  # NaN: an absent number


def _str_column(values: list, absent_is_blank: bool = False, none_if_all_absent: bool = False) -> np.ndarray | None:
    """Fixed-width strings when every value is a str (vectorized downstream), else objects.

    ``absent_is_blank``: None becomes "" (for item, category and text an absent value reads
    as "" in every rule, so nothing is lost). ``none_if_all_absent``: no value at all gives
    None (a left-out column: no work downstream).
    """
    if none_if_all_absent and values.count(None) == len(values):
        return None
    if absent_is_blank:
        values = ["" if v is None else v for v in values]
    elif None in values:
        return np.array(values, dtype=object)
    try:  # decoded events hold str or None only; anything else stays an object column
        return np.array(values, dtype=str) if values else np.array(values, dtype=object)
    except (TypeError, ValueError):
        return np.array(values, dtype=object)


class BatchView:
    """Row access for ``{event.FIELD}`` placeholders: fields are read from the columns by row."""

    __slots__ = ("batch", "categories")

    def __init__(self, batch: Batch, categories: Sequence[str] = ()):
        self.batch, self.categories = batch, categories

    def field(self, index: int, name: str) -> Any:
        """Field ``name`` of row ``index`` as the event would carry it (None where absent)."""
        batch = self.batch
        value = batch.value(name, index)
        if name == "category" and type(value) is int:  # an int code column: the category's name
            names = self.categories
            return names[value] if 0 <= value < len(names) else None
        if name == "item" and type(value) is int and value < 0 and type(batch.item) is not Coded:
            return None  # int item ids: negative means absent
        return value


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
        if hits.size:  # at equal rows, the first flagged wins: the order check() tests fields in
            candidates.append((int(hits[0]), len(candidates), field, message))

    flag(codes < 0, "type", "unknown or missing event type")
    ts = batch.ts
    bad_ts = ~((ts >= _TS_MIN) & (ts < _TS_MAX))  # NaN (missing) and inf too
    if bad_ts.any():
        first = float(ts[np.flatnonzero(bad_ts)[0]])
        flag(bad_ts, "ts", "Expected a finite number, got a missing or non-finite ts" if first != first
             else ts_range_message(first))
    if batch.room_scalar is None:
        flag(_missing(batch.room) | ~_all_str(batch.room), "room", "Expected `str`, got a missing or non-string room")
    is_room_event = np.isin(codes, room_codes)
    missing_viewer = _missing(batch.viewer)
    if batch.viewer_missing is not None:
        missing_viewer = missing_viewer | batch.viewer_missing
    # a viewer is needed on viewer events; where present (room events too) it must be an id
    flag((~is_room_event & missing_viewer) | (~missing_viewer & ~_viewer_ok(batch.viewer)), "viewer",
         "Expected `str | int`, got a missing or mistyped viewer")
    for name in _OPTIONAL:
        col = getattr(batch, name)
        if col is None or (name != "text" and not isinstance(col, Coded) and col.dtype.kind in "iu"):
            continue  # left out; or int item ids / category codes (columnar backends use them)
        flag(_present_but_not_str(col, ints_ok=name == "item"), name, "Expected `str`")
    for name in _OPTIONAL_NUM:
        col = getattr(batch, name)
        lo, hi = BY_NAME[name].range
        out = (col <= lo) | (col >= hi)  # NaN (absent) is not
        if out.any():
            flag(out, name, num_range_message(float(col[np.flatnonzero(out)[0]])))
    # strings that do not encode as UTF-8 (lone surrogates), in check()'s order
    flag(_unencodable(batch.viewer), "viewer", _SURROGATE)
    if batch.room_scalar is None:
        flag(_unencodable(batch.room), "room", _SURROGATE)
    elif not encodable(batch.room_scalar):
        flag(np.ones(n, bool), "room", _SURROGATE)
    for name in _OPTIONAL:
        col = getattr(batch, name)
        if col is not None:
            flag(_unencodable(col), name, _SURROGATE)
    if not candidates:
        return bad, (-1, "", "")
    row, _, field, message = min(candidates)
    return bad, (row, field, message)


_SURROGATE = "Expected a string encodable as UTF-8, got one with a lone surrogate"


def _unencodable(col: np.ndarray | Coded) -> np.ndarray:
    """Rows holding a str that does not encode as UTF-8 (a lone surrogate)."""
    if isinstance(col, Coded):
        u = col.uniques
        ok = np.fromiter((not isinstance(v, str) or encodable(v) for v in u), bool, len(u))
        present = (col.codes >= 0) & (col.codes < len(u))
        return present & ~np.append(ok, True)[np.where(present, col.codes, -1)]
    if col.dtype.kind == "U":  # UCS-4 code points: one vectorized pass for the surrogate range
        if col.dtype.itemsize == 0 or len(col) == 0:
            return np.zeros(len(col), bool)
        points = np.ascontiguousarray(col).view(np.uint32).reshape(len(col), -1)
        return ((points & 0xFFFFF800) == 0xD800).any(axis=1)
    if col.dtype == object:
        return np.fromiter((isinstance(v, str) and not encodable(v) for v in col), bool, len(col))
    return np.zeros(len(col), bool)


def _by_unique(col: Coded, ok: np.ndarray) -> np.ndarray:
    """A per-unique verdict spread to the rows (rows without a value get False)."""
    present = (col.codes >= 0) & (col.codes < len(col.uniques))
    return present & np.append(ok, False)[np.where(present, col.codes, -1)]


def _missing(col: np.ndarray | Coded) -> np.ndarray:
    """Rows holding None (only object and coded columns can); one C-level comparison."""
    if isinstance(col, Coded):
        return ~_by_unique(col, ~np.equal(col.uniques, None))
    if col.dtype != object:
        return np.zeros(len(col), bool)
    return np.equal(col, None)


def _present_but_not_str(col: np.ndarray | Coded, ints_ok: bool = False) -> np.ndarray:
    """Rows with a value that is not a str; type checks only where a value is present."""
    if isinstance(col, Coded):
        u = col.uniques
        ok = np.fromiter((v is None or isinstance(v, str) or (ints_ok and _is_int(v)) for v in u), bool, len(u))
        present = (col.codes >= 0) & (col.codes < len(u))
        return present & ~np.append(ok, True)[np.where(present, col.codes, -1)]
    bad = np.zeros(len(col), bool)
    if col.dtype.kind == "U":
        return bad
    if col.dtype != object:
        return ~bad
    present = np.flatnonzero(~np.equal(col, None))
    if present.size:
        bad[present] = ~_all_str(col[present])
    return bad


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _all_str(col: np.ndarray | Coded) -> np.ndarray:
    if isinstance(col, Coded):
        return _by_unique(col, np.fromiter((isinstance(v, str) for v in col.uniques), bool, len(col.uniques)))
    if col.dtype.kind == "U":
        return np.ones(len(col), bool)
    if col.dtype == object:
        return np.fromiter((isinstance(v, str) for v in col), bool, len(col)) if len(col) else np.zeros(0, bool)
    return np.zeros(len(col), bool)


def _viewer_ok(col: np.ndarray | Coded) -> np.ndarray:
    if isinstance(col, Coded):
        return _by_unique(col, np.fromiter((isinstance(v, str) or _is_int(v) for v in col.uniques), bool,
                                           len(col.uniques)))
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
    mapped = lookup_all(table, uniques, missing)
    return mapped[inverse], uniques, inverse


def lookup_all(table: dict, uniques: Sequence[Any] | np.ndarray, missing: int) -> np.ndarray:
    """``table[u]`` (or ``missing``) for each distinct value, as Python values: a C-level loop
    (a generator with a call per value cost ~0.5 us a value, which small batches felt)."""
    values = uniques.tolist() if isinstance(uniques, np.ndarray) else uniques
    return np.fromiter(map(table.get, values, repeat(missing, len(values))), np.int64, len(values))


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
