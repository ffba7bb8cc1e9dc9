"""One event schema: every consumer of the event's fields agrees with ``schema/fields.py``'s table.

Names, order and kinds of ``Event``, ``EVENT_FIELDS``, ``Batch``, the NDJSON scanner's key
tables, the kernel signature and the generated entry points, and the C fast path (which is
told the fields when an engine builds it, and follows what it is told).
"""

from __future__ import annotations

import ast
import inspect
import math

import msgspec
import numba
import pytest

from segengine import Batch, Engine, Event
from segengine.compiler import INGEST_EVENT_SIG, module_source
from segengine.kernels.primitives import PURE_PYTHON
from segengine.schema import batch as batch_module
from segengine.schema import events, fields, ndjson
from segengine.schema.fields import (
    ALWAYS,
    BATCH_ROW,
    BY_NAME,
    EVENT_ROW,
    FIELDS,
    NAMES,
    OPTIONAL,
    VIEWER_EVENTS,
)

try:
    from segengine.runtime import _fastpath
except ImportError:  # pragma: no cover - a build without a compiler
    _fastpath = None

STRING_KINDS = ("type", "room", "str", "category", "text")


def test_the_table_is_well_formed():
    assert len(set(NAMES)) == len(NAMES)
    assert {f.kind for f in FIELDS} == set(fields.KINDS)
    assert {f.required for f in FIELDS} <= {ALWAYS, VIEWER_EVENTS, OPTIONAL}
    assert sorted(fields.ROW_ORDER) == sorted(NAMES)  # the kernel row holds every field once
    for f in FIELDS:
        assert (f.range is not None) == (f.kind in ("time", "num")), f.name
        assert f.expr == ("num" if f.kind in ("time", "num") else "str"), f.name
    assert BY_NAME["ts"].range == (events.TS_MIN, events.TS_MAX)
    assert BY_NAME["price"].range == (-events.NUM_MAX, events.NUM_MAX)


def test_event_is_the_table():
    got = [(f.name, f.type, f.default) for f in msgspec.structs.fields(Event)]
    assert got == [(f.name, f.annotation, None) for f in FIELDS]
    assert events.EVENT_FIELDS == {f.name: f.expr for f in FIELDS}
    assert list(events.EVENT_FIELDS) == list(NAMES)


def test_a_struct_that_disagrees_is_refused():
    class Swapped(msgspec.Struct):
        ts: float | None = None
        type: str | None = None

    with pytest.raises(TypeError, match="disagrees"):
        events._agrees(Swapped, FIELDS[:2])
    events._agrees(msgspec.defstruct("Two", [(f.name, f.annotation, None) for f in FIELDS[:2]]), FIELDS[:2])


def test_check_covers_every_field_by_kind():
    assert set(events._STR_FIELDS) == {f.name for f in FIELDS if f.required == OPTIONAL and f.kind in STRING_KINDS}
    assert set(events._NUM_FIELDS) == {f.name for f in FIELDS if f.required == OPTIONAL and f.kind == "num"}
    assert set(events._TEXT_FIELDS) == {f.name for f in FIELDS if f.kind in (*STRING_KINDS, "id")}
    # every required field is required by check(): an event without it names it
    base = {"type": "like", "viewer": "u1", "room": "r1", "ts": 1.0}
    for f in FIELDS:
        if f.required != OPTIONAL:
            with pytest.raises(events.EventError) as err:
                events.validate({k: v for k, v in base.items() if k != f.name}, frozenset({"like"}))
            assert err.value.field == f.name


def test_batch_is_the_table():
    params = list(inspect.signature(Batch.__init__).parameters)[1:]
    assert set(params) - {"viewer_missing"} == set(NAMES)
    assert set(NAMES) <= set(Batch.__slots__)
    assert batch_module._FIELDS == NAMES
    assert set(batch_module._OPTIONAL) == {f.name for f in FIELDS if f.required == OPTIONAL and f.kind in STRING_KINDS}
    assert set(batch_module._OPTIONAL_NUM) == {f.name for f in FIELDS if f.required == OPTIONAL and f.kind == "num"}
    b = Batch(type=["like"], viewer=["u1"], room="r1", ts=[1.0], item=["i"], category=["c"], price=[2.0], amount=[3.0],
              text=["t"])
    full = Event(type="like", ts=1.0, viewer="u1", room="r1", item="i", category="c", price=2.0, amount=3.0, text="t")
    assert all(getattr(full, name) is not None for name in NAMES)
    assert Batch.from_events([full]).event(0) == full  # every field makes it through the columns
    assert msgspec.structs.asdict(b.event(0)) == {"type": "like", "viewer": "u1", "room": "r1", "ts": 1.0, "item": "i",
                                                   "category": "c", "price": 2.0, "amount": 3.0, "text": "t"}


def test_the_ndjson_scanner_is_the_table():
    assert ndjson._KEYS == NAMES
    for k, f in enumerate(FIELDS):
        assert (ndjson._SCOL[k] >= 0) == (f.kind in (*STRING_KINDS, "id")), f.name
        assert (ndjson._FCOL[k] >= 0) == (f.kind in ("time", "num")), f.name
        assert bool(ndjson._REQUIRED >> k & 1) == (f.required == ALWAYS), f.name
    assert [NAMES[k] for k in (ndjson.K_TYPE, ndjson.K_TS, ndjson.K_VIEWER, ndjson.K_ROOM)] == [
        "type", "ts", "viewer", "room"]


def test_the_kernel_row_is_the_table(example_rules):
    dtypes = {"i8": numba.types.int64, "f8": numba.types.float64}
    assert INGEST_EVENT_SIG == (numba.types.int64, *(dtypes[c.dtype] for c in EVENT_ROW), numba.types.int64)
    assert [c.field for c in BATCH_ROW] == list(fields.ROW_ORDER)
    for c in EVENT_ROW:  # times and numbers are floats, every other column an int
        assert (c.dtype == "f8") == (BY_NAME[c.field].kind in ("time", "num")), c
    tree = ast.parse(module_source(example_rules))
    params = {fn.name: [a.arg for a in fn.args.args] for fn in tree.body if isinstance(fn, ast.FunctionDef)}
    row = [c.name for c in EVENT_ROW]
    assert params["ingest_event"] == ["tab_addr", *row, "index"]  # ingest_event_c is its twin: the same code
    assert params["ingest_batch"] == ["tab", *(c.name + "s" for c in BATCH_ROW), "start"]


needs_c = pytest.mark.skipif(_fastpath is None or PURE_PYTHON, reason="no C fast path")


@needs_c
def test_the_c_fast_path_is_told_the_table():
    told = fields.fastpath_fields()
    assert [t[0] for t in told] == list(NAMES)
    row = [c.name for c in EVENT_ROW]
    for (name, role, col, required, lo, hi), f in zip(told, FIELDS):
        assert row[col] == f.kernel[0] and required == (f.required != OPTIONAL)
        assert (lo, hi) == f.range if f.range else math.isnan(lo) and math.isnan(hi)
    assert not hasattr(_fastpath, "TS_MAX")  # no second home of the ranges


def _spied(rules, monkeypatch, told):
    """An engine whose FastPath was told ``told``, and the list of events it handed to Python."""
    handed = []
    python_ingest = Engine._ingest

    def full_path(self, event):
        handed.append(event)
        return python_ingest(self, event)

    monkeypatch.setattr(Engine, "_ingest", full_path)
    monkeypatch.setattr("segengine.engine.fastpath_fields", lambda: told)
    engine = Engine(rules)
    monkeypatch.undo()
    engine.ingest({"type": "enter", "viewer": "u1", "room": "r1", "ts": 1000.0})  # new ids: Python
    handed.clear()
    return engine, handed


@needs_c
def test_the_c_fast_path_follows_what_it_is_told(example_rules, monkeypatch):
    """Names and ranges come from the table: told another range or name, the C path follows it."""
    like = {"type": "like", "viewer": "u1", "room": "r1", "ts": 1001.0}
    engine, handed = _spied(example_rules, monkeypatch, fields.fastpath_fields())
    engine.ingest(like)
    assert handed == []  # the common event stays in C
    narrow = tuple((*t[:4], 0.0, 1000.5) if t[0] == "ts" else t for t in fields.fastpath_fields())
    engine, handed = _spied(example_rules, monkeypatch, narrow)
    engine.ingest(like)
    assert handed == [like]  # outside the range it was told: Python judges (and accepts) it
    renamed = tuple(("who", *t[1:]) if t[0] == "viewer" else t for t in fields.fastpath_fields())
    engine, handed = _spied(example_rules, monkeypatch, renamed)
    engine.ingest({"type": "like", "who": "u1", "room": "r1", "ts": 1001.0})
    assert handed == []  # read under the name it was told
    assert engine.stats()["events"] == 2


@needs_c
def test_the_c_fast_path_refuses_a_table_it_cannot_serve(example_rules):
    engine = Engine(example_rules)
    fast = engine._fast
    assert fast is not None
    kwargs = {"kernel": engine._compiled.event_cfunc().address, "tab_addr": engine._store.tab_addr,
              "matrices": (0, 1, 2, 3), "prefetch": engine._store.prefetch_spec({}), "keep": None, "viewer_codes": {}, "viewer_ids": {}, "room_ids": {},
              "string_ids": {}, "cat_codes": {}, "retention": engine._retention, "event_type": Event, "decode": len,
              "full_path": len, "finish": len, "guard": engine._guard, "fields": fields.fastpath_fields(),
              "row": fields.ROW_DTYPES}
    _fastpath.FastPath(**kwargs)
    with pytest.raises(TypeError, match="row"):
        _fastpath.FastPath(**{**kwargs, "row": "iiiifiiff"})
    with pytest.raises(TypeError):  # prefetch: (VI, VF, VN bytes, type mask)
        _fastpath.FastPath(**{**kwargs, "prefetch": (64, 64, 64)})
    with pytest.raises(ValueError, match="every role"):
        _fastpath.FastPath(**{**kwargs, "fields": fields.fastpath_fields()[:-1]})  # no text field
    with pytest.raises(ValueError, match="kernel column"):
        bad = tuple((t[0], t[1], 0, *t[3:]) if t[0] == "ts" else t for t in fields.fastpath_fields())
        _fastpath.FastPath(**{**kwargs, "fields": bad})  # a time in an int column


def test_the_docs_table_is_the_table():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "events.md").read_text(encoding="utf-8")
    section = text.split("## Fields\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| `")]
    assert [(r[0].strip(" `"), r[1].strip()) for r in rows] == [(f.name, f.kind) for f in FIELDS]
    for r, f in zip(rows, FIELDS):
        assert (r[3].strip() == "no") == (f.required == OPTIONAL), f.name
