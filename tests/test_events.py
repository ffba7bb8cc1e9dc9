"""Event schema validation (SPEC §1, §8 Errors): every malformed event names its field."""

from __future__ import annotations

import msgspec
import pytest

import segengine.engine as engine_module
from segengine.errors import EventError
from segengine.schema.events import BUILTIN_TYPES, Event, decode_ndjson, validate

KNOWN = frozenset(BUILTIN_TYPES)
GOOD = {"type": "view", "viewer": "u1", "room": "r1", "ts": 1.5, "item": "i", "category": "c", "price": 9.9}


def test_three_input_forms_decode_to_the_same_event():
    a = validate(GOOD, KNOWN)
    b = validate(msgspec.json.encode(GOOD), KNOWN)
    c = validate(Event(**GOOD), KNOWN)
    assert a == b == c


def test_unknown_keys_are_ignored_and_null_is_missing():
    e = validate({**GOOD, "extra": [1, 2], "text": None}, KNOWN)
    assert e.text is None
    e = validate(b'{"type":"like","viewer":1,"room":"r","ts":2,"price":null,"whatever":{}}', KNOWN)
    assert e.viewer == 1 and e.price is None


def test_room_events_need_no_viewer():
    assert validate({"type": "live_start", "room": "r1", "ts": 1.0}, KNOWN).viewer is None


@pytest.mark.parametrize("patch,field", [
    ({"type": None}, "type"), ({"type": 3}, "type"), ({"type": "nope"}, "type"),
    ({"ts": None}, "ts"), ({"ts": "1"}, "ts"), ({"ts": float("inf")}, "ts"), ({"ts": True}, "ts"),
    ({"room": None}, "room"), ({"room": 5}, "room"),
    ({"viewer": None}, "viewer"), ({"viewer": 1.5}, "viewer"), ({"viewer": False}, "viewer"),
    ({"item": 7}, "item"), ({"category": 1}, "category"), ({"text": 2}, "text"),
    ({"price": "9"}, "price"), ({"price": float("nan")}, "price"), ({"amount": float("-inf")}, "amount"),
])
def test_bad_field_is_named(patch, field):
    bad = {**GOOD, **patch}
    with pytest.raises(EventError) as err:
        validate(bad, KNOWN)
    assert err.value.field == field
    assert f"$.{field}" in str(err.value)
    json_form = {k: v for k, v in bad.items() if not (isinstance(v, float) and v != v) and v not in (float("inf"), float("-inf"))}
    if json_form != bad:
        return  # non-finite numbers have no JSON form
    with pytest.raises(EventError) as err:
        validate(msgspec.json.encode(bad), KNOWN)
    assert err.value.field == field


def test_declared_types_are_accepted():
    assert validate({**GOOD, "type": "gift"}, KNOWN | {"gift"}).type == "gift"


def test_ndjson_error_names_the_line():
    lines = b'{"type":"like","viewer":1,"room":"r","ts":1}\n\n{"type":"like","viewer":1,"room":"r","ts":"x"}\n'
    with pytest.raises(EventError) as err:
        decode_ndjson(lines)
    assert err.value.index == 1 and err.value.field == "ts"
    assert len(decode_ndjson(lines.replace(b'"x"', b"2"))) == 2


@pytest.mark.parametrize("patch,field", [
    ({"type": ["like"]}, "type"), ({"type": "live_start", "room": ["r"]}, "room"), ({"viewer": [1]}, "viewer"),
    ({"type": "nope"}, "type"), ({"ts": 5}, None),
])
def test_engine_fast_path_rejects_like_validate(live, patch, field):
    """Four-key dicts take the engine's inline fast path: odd values must still get EventError
    (not TypeError from an unhashable key) and leave the engine untouched; ints for ts are fine."""
    event = {"type": "like", "viewer": 1, "room": "r1", "ts": 10.0, **patch}
    if field is None:
        live.ingest(event)
        assert live.stats()["events"] == 1
        return
    with pytest.raises(EventError) as err:
        live.ingest(event)
    assert err.value.field == field
    assert live.stats()["events"] == 0 and live.stats()["rejected"] == 1


@pytest.mark.parametrize("data", [
    b'{"type":"like","viewer":1,"room":"r","ts":1,"text":"\xff"}',  # invalid UTF-8
    b'{"type":"like","viewer":1,"room":"r","ts":1}{"type":"like","viewer":1,"room":"r","ts":2}',  # two on a line
    b'{"type":"comment","viewer":1,"room":"r","ts":1,"text":"a\nb"}',  # raw newline inside a string
    b'{"type":"like","viewer":1,"room":"r","ts":1,"x":' + b"[" * 3000 + b"]" * 3000 + b"}",  # absurd nesting
])
@pytest.mark.parametrize("small_batch", [engine_module.SMALL_BATCH, 0], ids=["one-by-one", "batch-kernel"])
def test_broken_json_is_an_event_error_in_every_form(live, data, small_batch, monkeypatch):
    """Not UnicodeDecodeError or RecursionError, and no line silently split or joined."""
    monkeypatch.setattr(engine_module, "SMALL_BATCH", small_batch)
    with pytest.raises(EventError) as err:
        live.ingest_many(data)
    assert err.value.index == 0
    with pytest.raises(EventError):
        live.ingest(data.split(b"\n")[0] if b"comment" not in data else data)
    assert live.stats()["events"] == 0
