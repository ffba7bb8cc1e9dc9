"""The event schema: one table of the event's fields, from which every consumer is derived.

:data:`FIELDS` says, per field, its name, what kind of value it holds, for which events it is
required, its accepted range and the kernel column(s) it becomes. Derived from it (and checked
against it by ``tests/test_schema_fields.py``):

* ``Event`` (``schema/events.py``): the msgspec struct, checked against the table at import;
  ``EVENT_FIELDS``, the type of ``event.FIELD`` in rules; ``check()``'s per-kind checks;
* ``Batch`` (``schema/batch.py``): its columns, which of them may be left out, their checks;
* the NDJSON scanner (``schema/ndjson.py``): its key table and the column of each key;
* the event kernel's row (:data:`EVENT_ROW`): ``INGEST_EVENT_SIG`` (``compiler/__init__.py``),
  the parameters of the generated ``ingest_event``/``ingest_batch`` (``compiler/codegen.py``)
  and the columns ``Engine`` hands ``ingest_batch``;
* the C fast path (``runtime/_fastpath.c``): :func:`fastpath_fields` gives it every field's
  name, role, requirement and range when an engine builds its ``FastPath``.

Adding a field means adding a row here and teaching the kinds it uses (if new) to the consumers;
every consumer that disagrees with the table fails the agreement test, not a user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ALWAYS", "BATCH_ROW", "BY_NAME", "EVENT_ROW", "FIELDS", "KINDS", "NAMES", "NUM_MAX", "OPTIONAL", "ROW_DTYPES", "ROW_ORDER", "TS_MAX", "TS_MIN", "VIEWER_EVENTS", "Field", "KernelColumn", "fastpath_fields"]

#: Accepted event times, unix seconds: ``TS_MIN <= ts < TS_MAX`` (1970-01-01 to the year 5138).
#: Kernels keep times as int64 microseconds (TS_MAX is 1e17 us, int64 ends at 9.2e18 us) and
#: mark "never" as -2**62 us: ``now - never`` stays below 4.7e18 us, which leaves more than
#: 140,000 years of room for ``ts + idle_timeout + windows + cooldowns`` before int64 overflows.
#: A millisecond (1.7e12) or microsecond (1.7e15) timestamp sent by mistake is rejected.
TS_MIN = 0.0
TS_MAX = 1e11
#: Accepted prices and amounts: ``-NUM_MAX < x < NUM_MAX`` (a quadrillion: money, not overflow).
NUM_MAX = 1e15

#: ``Field.required`` values: every event, viewer events only (not room events), never.
ALWAYS, VIEWER_EVENTS, OPTIONAL = "always", "viewer events", "no"

#: Kinds of field value: what a value must be, and how it reaches the kernel.
#:
#: ========== ============== ===========================================================
#: kind       Python value   kernel column
#: ========== ============== ===========================================================
#: type       str            int64 code: index into the rules' event types
#: time       float (or int) float64 seconds (kernels convert to int64 microseconds)
#: id         str or int     int64 viewer slot (and the int id itself, for the kernel's
#:                           own lookup of int ids)
#: room       str            int64 room slot
#: str        str            int64 id in the engine's string table ("" when absent)
#: category   str            int64 code: 0 absent, i + 1 for a category the rules name,
#:                           -1 any other string
#: num        float (or int) float64, NaN when absent
#: text       str            int64 id in the string table, looked up, never interned
#:                           (-2: unseen; -1: the rules never read it); with text
#:                           predicates, their bits above id + 2 (segengine.text)
#: ========== ============== ===========================================================
KINDS = ("type", "time", "id", "room", "str", "category", "num", "text")


@dataclass(frozen=True)
class KernelColumn:
    """One argument of the event kernel's row: its name in the generated kernels, its dtype
    (``"i8"`` or ``"f8"``) and the field it encodes."""

    name: str
    dtype: str
    field: str


@dataclass(frozen=True)
class Field:
    """One event field (see :data:`FIELDS`)."""

    name: str
    kind: str
    required: str
    #: the type of ``event.FIELD`` in rules expressions
    expr: str
    #: accepted values (time: ``lo <= x < hi``; num: ``lo < x < hi``); None: no range
    range: tuple[float, float] | None
    #: the kernel columns this field becomes, in row order (a viewer is a slot and an int id)
    kernel: tuple[str, ...]

    @property
    def annotation(self) -> Any:
        """The ``Event`` struct's annotation (every field defaults to ``None``: absent)."""
        return {"time": float, "num": float, "id": str | int}.get(self.kind, str) | None

    @property
    def is_str(self) -> bool:
        """Whether a present value must be a ``str`` (every kind but id, time and num)."""
        return self.kind not in ("id", "time", "num")


#: The event's fields, in ``Event``'s order (the order msgspec encodes them in).
FIELDS: tuple[Field, ...] = (
    Field("type", "type", ALWAYS, "str", None, ("code",)),
    Field("ts", "time", ALWAYS, "num", (TS_MIN, TS_MAX), ("ts",)),
    Field("viewer", "id", VIEWER_EVENTS, "str", None, ("slot", "vid")),
    Field("room", "room", ALWAYS, "str", None, ("room",)),
    Field("item", "str", OPTIONAL, "str", None, ("item",)),
    Field("category", "category", OPTIONAL, "str", None, ("cat",)),
    Field("price", "num", OPTIONAL, "num", (-NUM_MAX, NUM_MAX), ("price",)),
    Field("amount", "num", OPTIONAL, "num", (-NUM_MAX, NUM_MAX), ("amount",)),
    Field("text", "text", OPTIONAL, "str", None, ("text",)),
)
NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}

#: The fields in the order of the event kernel's row (the kernels' own argument order).
ROW_ORDER = ("viewer", "room", "type", "ts", "item", "category", "price", "amount", "text")
_DTYPE = {"time": "f8", "num": "f8"}
#: The event kernel's row: ``ingest_event(tab_addr, *row, index)`` and, one column per field
#: (a viewer is its slot column only), ``ingest_batch(tab, *columns, start)``.
EVENT_ROW: tuple[KernelColumn, ...] = tuple(
    KernelColumn(col, _DTYPE.get(BY_NAME[name].kind, "i8"), name) for name in ROW_ORDER for col in BY_NAME[name].kernel)
#: The row's dtypes as letters (``i`` int64, ``f`` float64): the C fast path checks it against its kernel type.
ROW_DTYPES = "".join(c.dtype[0] for c in EVENT_ROW)
#: ``ingest_batch``'s columns: each field's first kernel column (a viewer's slot: a batch has
#: no int ids for the kernel to look up), named in the kernels as the column's name + "s".
BATCH_ROW: tuple[KernelColumn, ...] = tuple(c for c in EVENT_ROW if c.name == BY_NAME[c.field].kernel[0])

#: Roles of the C fast path (``runtime/_fastpath.c``, ``enum role``): one per kind, and the
#: kernel column a C value fills is the role's (a kind with two fields -- num -- is told
#: apart by its kernel column).
_C_ROLES = {"type": 0, "time": 1, "id": 2, "room": 3, "str": 4, "category": 5, "num": 6, "text": 7}


def fastpath_fields() -> tuple[tuple[str, int, int, int, float, float], ...]:
    """What the C fast path is told of each field: (name, role, kernel column, required for
    viewer events (0/1), lo, hi); ``lo``/``hi`` are the accepted range (NaN: none)."""
    nan = float("nan")
    cols = [c.name for c in EVENT_ROW]
    return tuple((f.name, _C_ROLES[f.kind], cols.index(f.kernel[0]), int(f.required != OPTIONAL),
                  *(f.range if f.range is not None else (nan, nan))) for f in FIELDS)
