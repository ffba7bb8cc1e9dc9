"""Columnar batches in their fast forms (coded, int codes, left-out columns) give exactly the
actions of the same events sent one by one, placeholders included."""

from __future__ import annotations

import numpy as np
import pytest

from segengine import Batch, Coded, Engine, EventError

RULES = """
[engine]
categories = ["snacks", "digital"]

[[rules]]
name = "shown"
on = ["view"]
when = "true"
then = "show"
params = { item = "{event.item}", cat = "{event.category}", line = "{event.item} in {event.category}", pct = 5 }
"""

EVENTS = [
    {"type": "enter", "viewer": 7, "room": "r1", "ts": 10.0},
    {"type": "view", "viewer": 7, "room": "r1", "ts": 11.0, "item": "i3", "category": "digital", "price": 9.5},
    {"type": "view", "viewer": 8, "room": "r1", "ts": 12.0, "category": "snacks"},
    {"type": "view", "viewer": 7, "room": "r1", "ts": 13.0, "item": "i4"},
    {"type": "like", "viewer": 8, "room": "r1", "ts": 14.0},
]


@pytest.fixture(scope="module")
def rules():
    engine = Engine.from_toml(RULES)
    engine.warmup()
    return engine.rules


def one_by_one(rules) -> list:
    engine = Engine(rules)
    return [a for e in EVENTS for a in engine.ingest(e)]


def column(name):
    return [e.get(name) for e in EVENTS]


def test_coded_columns_match_one_by_one(rules):
    codes = {t: i for i, t in enumerate(rules.event_types)}
    items = ["i3", "i4"]
    batch = Batch(
        type=np.array([codes[t] for t in column("type")]),
        viewer=Coded([0, 0, 1, 0, 1], [7, 8]),
        room=Coded(np.zeros(5, np.int64), ["r1"]),
        ts=np.array(column("ts")),
        item=Coded([-1, 0, -1, 1, -1], items),
        category=Coded([-1, 0, 1, -1, -1], ["digital", "snacks"]),
        price=np.array([np.nan, 9.5, np.nan, np.nan, np.nan]),
    )
    assert Engine(rules).ingest_many(batch) == one_by_one(rules)


def test_int_codes_and_ids_match_one_by_one_with_str_items(rules):
    """int category codes show as their names; a negative int item id is an absent item."""
    codes = {t: i for i, t in enumerate(rules.event_types)}
    batch = Batch(type=np.array([codes[t] for t in column("type")]), viewer=np.array(column("viewer")), room="r1",
                  ts=np.array(column("ts")), item=np.array([-1, 3, -1, 4, -1]),
                  category=np.array([-1, 1, 0, -1, -1]), price=np.array([np.nan, 9.5, np.nan, np.nan, np.nan]))
    got = Engine(rules).ingest_many(batch)
    expected = one_by_one(rules)
    assert [a.params["cat"] for a in got] == [a.params["cat"] for a in expected] == ["digital", "snacks", ""]
    assert [a.params["item"] for a in got] == [3, "", 4]  # int ids render as given
    assert [a.params["line"] for a in got] == ["3 in digital", " in snacks", "4 in "]


def test_left_out_columns_cost_nothing_and_read_as_absent(rules):
    batch = Batch(type=np.array(["enter", "view"]), viewer=np.array([1, 1]), room="r1", ts=np.array([1.0, 2.0]))
    assert batch.item is None and batch.text is None and batch.category is None
    [action] = Engine(rules).ingest_many(batch)
    assert action.params == {"item": "", "cat": "", "line": " in ", "pct": 5}


def test_bad_coded_values_are_named(rules):
    batch = Batch(type=np.array(["enter", "view"]), viewer=Coded([0, 1], ["u1", 2.5]), room="r1",
                  ts=np.array([1.0, 2.0]))
    engine = Engine(rules)
    with pytest.raises(EventError) as err:
        engine.ingest_many(batch)
    assert err.value.field == "viewer" and err.value.index == 1
    assert engine.stats()["events"] == 1
    with pytest.raises(EventError) as err:
        Engine(rules).ingest_many(Batch(type=np.array(["view"]), viewer=np.array([1]), room="r1",
                                        ts=np.array([1.0]), item=Coded([0], [3.5])))
    assert err.value.field == "item"
