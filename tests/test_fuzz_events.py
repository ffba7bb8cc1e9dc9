"""The malformed-event fuzzer: odd and broken events through every ingest path.

Every event is judged against an independent oracle written from docs/events.md
(:func:`faults`). On every path -- ``ingest`` of a dict, an Event or JSON bytes (C fast path
and pure Python), ``ingest_many`` of a list (one by one below 64 events, the batch kernel
from 64), NDJSON bytes (< 64 lines and >= 64 lines: the Numba scanner or msgspec), and a
columnar ``Batch`` -- the engine must either accept the event or raise ``EventError`` naming
a field at fault (with the batch index in batches), never anything else; a rejected event
must change nothing; ``errors="skip"`` must skip exactly the bad events.

Bounded for CI (a few seconds per test). ``SEGENGINE_FUZZ_EXAMPLES=N`` raises the example
counts for a long local exploration (each example is 1-80 events).
"""

from __future__ import annotations

import math
import os
from unittest import mock

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segengine.engine as engine_module
from segengine import Engine, Event, EventError
from segengine.schema.batch import Batch
from segengine.schema.events import NUM_MAX, ROOM_TYPES, TS_MAX, TS_MIN

EXAMPLES = int(os.environ.get("SEGENGINE_FUZZ_EXAMPLES", "0"))


def fuzz_settings(ci: int):
    """``ci`` examples in CI; SEGENGINE_FUZZ_EXAMPLES for a long exploration."""
    return settings(max_examples=EXAMPLES or ci, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


COUNT = {"events": 0}  # events pushed through the engine (reported by the long exploration)


class Tagged(str):
    """A str subclass: a valid str everywhere, never taken by the exact-type fast checks."""


# --- the oracle (docs/events.md) ----------------------------------------------------------------
KNOWN = ("enter", "leave", "heartbeat", "view", "click", "like", "comment", "share", "follow", "cart", "uncart",
         "checkout", "pay", "refund", "live_start", "live_end")


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _encodes(s: str) -> bool:
    try:
        s.encode()
    except UnicodeEncodeError:
        return False
    return True


def faults(e: dict, batch: bool = False) -> set[str]:
    """The fields at fault in event ``e`` (a dict, None = absent); empty: the event is accepted.

    ``batch``: the rules of Batch columns (NaN price or amount = absent, int item ids).
    """
    if not isinstance(e, dict):  # not an object at all (a line that is not JSON): no field to name
        return {""}
    bad = set()
    t = e.get("type")
    if not (isinstance(t, str) and t in KNOWN):
        bad.add("type")
    ts = e.get("ts")
    if not (_num(ts) and TS_MIN <= ts < TS_MAX):
        bad.add("ts")
    room = e.get("room")
    if not (isinstance(room, str) and _encodes(room)):
        bad.add("room")
    v = e.get("viewer")
    if v is None:
        if not (isinstance(t, str) and t in ROOM_TYPES):
            bad.add("viewer")
    elif not ((isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and _encodes(v))):
        bad.add("viewer")
    for name in ("item", "category", "text"):
        x = e.get(name)
        if batch and name == "item" and isinstance(x, int) and not isinstance(x, bool):
            continue
        if x is not None and not (isinstance(x, str) and _encodes(x)):
            bad.add(name)
    for name in ("price", "amount"):
        x = e.get(name)
        if batch and isinstance(x, float) and x != x:
            continue
        if x is not None and not (_num(x) and -NUM_MAX < x < NUM_MAX):
            bad.add(name)
    return bad


# --- strategies ---------------------------------------------------------------------------------
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
ODD_TEXT = st.one_of(
    st.sampled_from(["", "u1", "r1", "a", "like", "beauty", "digital", "\ud800", "a\udfffb", "é", "日本", "\x00"]),
    st.text(max_size=5), st.text(st.one_of(SURROGATES, st.characters()), max_size=4),
    st.builds(Tagged, st.sampled_from(["u1", "r1", "like", "a", "\ud800"])),
)
EDGE_NUMBERS = [0, 0.0, -0.0, 5e-324, -5e-324, 1.5, -1.0, 99.5, 1e11, math.nextafter(1e11, 0), 1e11 + 1, 9.2e12, 1e15,
                -1e15, math.nextafter(1e15, 0), 1e16, 1e20, -1e300, 1e308, float("inf"), float("-inf"), float("nan"),
                2**53 + 1, 2**63, 2**64, 10**20, 10**400, -(10**400), 1700000000, 1700000000.123]
ODD_NUMBER = st.one_of(st.sampled_from(EDGE_NUMBERS), st.floats(), st.integers(), st.integers(-2**70, 2**70))
ODD_VALUE = st.one_of(
    st.none(), st.booleans(), ODD_NUMBER, ODD_TEXT, st.binary(max_size=4),
    st.lists(st.integers(0, 3), max_size=2), st.dictionaries(st.sampled_from(["a", "ts"]), st.integers(), max_size=2),
    st.just([[["deep"]]]), st.just({"nested": {"ts": 1.0}}), st.just(1 + 2j),
)
FIELDS = ("type", "ts", "viewer", "room", "item", "category", "price", "amount", "text")
VALUES = {  # mostly odd, sometimes plausible, per field
    "type": st.one_of(ODD_VALUE, st.sampled_from([*KNOWN, "teleport", "LIKE", "gift"])),
    "ts": st.one_of(ODD_VALUE, st.sampled_from(["1700000100", "1e3", b"1"])),
    "viewer": st.one_of(ODD_VALUE, st.sampled_from(["u1", "u2", 1, 2, 3, 0, -5, 1.0, 2**70])),
    "room": ODD_VALUE, "item": ODD_VALUE, "category": ODD_VALUE, "text": ODD_VALUE,
    "price": st.one_of(ODD_VALUE, st.sampled_from(["12.5", "9"])), "amount": ODD_VALUE,
}


@st.composite
def event_streams(draw, min_events: int = 1, max_events: int = 20, odd: float = 0.5):
    """Valid events of a few viewers in two rooms on a rising clock; about ``odd`` of them
    carry one to three mutations (an odd value, a dropped field, an extra key)."""
    n = draw(st.integers(min_events, max_events))
    t = 1000.0
    out = []
    for _ in range(n):
        t += draw(st.sampled_from([0.0, 0.5, 3.0, 40.0, 301.0, -20.0]))
        e = {"type": draw(st.sampled_from(KNOWN)), "viewer": draw(st.sampled_from(["u1", "u2", 1, 2, "é"])),
             "room": draw(st.sampled_from(["r1", "r2"])), "ts": t}
        if e["type"] in ROOM_TYPES and draw(st.booleans()):
            del e["viewer"]
        if draw(st.booleans()):
            e["item"] = draw(st.sampled_from(["a", "b", "tv"]))
            e["category"] = draw(st.sampled_from(["beauty", "digital", "snacks", "other"]))
            e["price"] = draw(st.sampled_from([9.9, 40.0, 1500.0]))
        if e["type"] == "pay":
            e["amount"] = draw(st.sampled_from([99.5, 12.0]))
        if e["type"] == "comment" and draw(st.booleans()):
            e["text"] = draw(st.sampled_from(["hi", "buy", "多少钱"]))
        if draw(st.floats(0, 1)) < odd:
            for _ in range(draw(st.integers(1, 3))):
                how = draw(st.sampled_from(["set", "set", "set", "drop", "extra", "null"]))
                key = draw(st.sampled_from(FIELDS))
                if how == "set":
                    e[key] = draw(VALUES[key])
                elif how == "drop":
                    e.pop(key, None)
                elif how == "null":
                    e[key] = None
                else:
                    e[draw(st.sampled_from(["x", "extra", "Type", "ts ", "viewer_id"]))] = draw(ODD_VALUE)
        out.append(e)
    return out


# --- forms and helpers --------------------------------------------------------------------------
def as_event(e: dict):
    return Event(**{k: v for k, v in e.items() if k in FIELDS})


def as_json(e: dict) -> bytes | None:
    """The JSON form of ``e``, or None where JSON cannot carry it (lone surrogates, complex)."""
    try:
        return msgspec.json.encode(e)
    except (TypeError, UnicodeEncodeError, OverflowError, ValueError):
        return None


def json_view(raw: bytes) -> dict:
    """What a JSON event holds once decoded (NaN and inf encode as null; bytes as base64)."""
    return msgspec.json.decode(raw)


def pure_engine(rules) -> Engine:
    with mock.patch.object(engine_module, "_fastpath", None):
        return Engine(rules.rules)


def observed(engine: Engine) -> tuple:
    """What users observe in stats(): the counters (not memory: capacities grow differently in
    batches), and the rejected count apart."""
    s = engine.stats()
    counters = {k: s[k] for k in ("events", "late", "fired", "suppressed", "viewers", "rooms", "timers")}
    return counters, s["rejected"]


def full_state(engine: Engine) -> tuple:
    """Everything a rejected event must leave as it was (bytes of every state row, id maps)."""
    store = engine._store
    n = len(engine._viewers)
    s = engine.stats()
    s.pop("rejected")
    return (s, store.VI[:n].tobytes(), store.VF[:n].tobytes(), store.VN[:n].tobytes(),
            store.RI[:len(engine._rooms)].tobytes(), store.HEAP.tobytes(), store.META.tobytes(),
            dict(engine._viewers.ids), dict(engine._rooms.ids), dict(engine._strings.ids))


def end_of(events: list[dict]) -> float:
    times = [e["ts"] for e in events if isinstance(e, dict) and _num(e.get("ts")) and TS_MIN <= e["ts"] < TS_MAX]
    return min(max(times, default=1000.0) + 3600.0, math.nextafter(TS_MAX, 0))


def single(engine: Engine, event, want: set[str]):
    """Ingest one event; hold the outcome to the oracle; a rejection changes nothing."""
    COUNT["events"] += 1
    before = full_state(engine) if want else None
    rejected = engine.stats()["rejected"]
    try:
        actions = engine.ingest(event)
    except EventError as err:
        assert want, f"rejected a valid event: {err}"
        assert err.field in want, (err.field, want, str(err))
        assert err.index is None
        assert full_state(engine) == before, "a rejected event changed the state"
        assert engine.stats()["rejected"] == rejected + 1
        return ("error", err.field, str(err))
    assert not want, f"accepted an event with bad {want}"
    return ("ok", actions)


class QuietRules:
    """The session's compiled example rules, shown briefly in hypothesis' falsifying examples."""

    def __init__(self, rules):
        self.rules = rules

    def __repr__(self) -> str:
        return "<examples/live_room.toml>"


@pytest.fixture
def rules(example_rules):
    return QuietRules(example_rules)


# --- single events ------------------------------------------------------------------------------
@fuzz_settings(60)
@given(stream=event_streams())
def test_single_events_in_every_form_c_and_python_agree(rules, stream):
    """dict, Event and JSON bytes, through the C fast path and pure Python: the oracle's
    verdict, a field at fault named, nothing changed by a rejection, and the two engines
    giving the same outcome for every event and the same state at the end."""
    for form in ("dict", "Event", "json"):
        fast, slow = Engine(rules.rules), pure_engine(rules)
        for e in stream:
            if form == "json":
                event = as_json(e)
                if event is None:
                    continue
                want = faults(json_view(event))
            else:
                event = dict(e) if form == "dict" else as_event(e)
                want = faults(e)
            a = single(fast, event, want)
            b = single(slow, event, want)
            assert a == b, (form, e)
        end = end_of(stream)
        assert fast.advance(end) == slow.advance(end)
        assert full_state(fast) == full_state(slow)


@fuzz_settings(40)
@given(raw=st.one_of(st.binary(max_size=40), st.sampled_from([
    b"", b"{", b"[]", b"null", b"1", b'"x"', b'{"type":"like"}', b'{"type":"like","viewer":"u1","room":"r1","ts":1e400}',
    b'{"type":"like","viewer":"u1","room":"r1","ts":"\\ud800"}', b'{"type":"like","viewer":"\\ud800","room":"r1","ts":1}',
    b'{"type":"like","viewer":"u1","room":"r1","ts":1,"ts":2}', b'\xef\xbb\xbf{"type":"like","viewer":1,"room":"r","ts":1}',
    b'{"type":"like","viewer":1,"room":"r","ts":' + b"9" * 400 + b"}",
])))
def test_bytes_garbage_is_an_event_error(rules, raw):
    for engine in (Engine(rules.rules), pure_engine(rules)):
        COUNT["events"] += 1
        try:
            view = msgspec.json.decode(raw)
        except msgspec.ValidationError:  # a number beyond floats (1e400) somewhere: rejected
            view = {"", *FIELDS}
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            view = None
        want = faults(view) if isinstance(view, dict) else view if isinstance(view, set) else {""}
        before = full_state(engine)
        try:
            engine.ingest(raw)
        except EventError as err:
            assert want and (err.field in want or err.field == ""), (err.field, want)
            assert full_state(engine) == before
        else:
            assert not want


# --- batches ------------------------------------------------------------------------------------
def reference(rules, events: list[dict], batch: bool = False):
    """Actions and counters of ingesting only the events the oracle accepts, one by one."""
    ref = Engine(rules.rules)
    actions = []
    for e in events:
        if not faults(e, batch):  # (Batch int item ids are not generated: a dict cannot carry them)
            actions += ref.ingest({k: v for k, v in e.items() if k in FIELDS and v is not None
                                   and not (batch and isinstance(v, float) and v != v and k in ("price", "amount"))})
    return ref, actions


def check_batch(rules, events: list[dict], payload, batch_rules: bool = False):
    """``ingest_many(payload)`` in both modes against the oracle and a one-by-one reference."""
    bad = [i for i, e in enumerate(events) if faults(e, batch_rules)]
    COUNT["events"] += 2 * len(events)
    # errors="skip": exactly the bad ones skipped
    engine = Engine(rules.rules)
    got = engine.ingest_many(payload, errors="skip")
    ref, want = reference(rules, events, batch_rules)
    assert got == want
    assert observed(engine) == (observed(ref)[0], len(bad))
    end = end_of(events)
    assert engine.advance(end) == ref.advance(end)
    # errors="raise": the events before the first bad one applied, its index and a field at fault
    engine = Engine(rules.rules)
    try:
        got = engine.ingest_many(payload)
    except EventError as err:
        assert bad, f"rejected a valid batch: {err}"
        assert err.index == bad[0], (err.index, bad[0], str(err))
        assert err.field in faults(events[bad[0]], batch_rules), (err.field, events[bad[0]])
        got = err.actions
    else:
        assert not bad, f"accepted bad events {bad[:5]}"
    ref, want = reference(rules, events[:bad[0]] if bad else events, batch_rules)
    assert got == want
    assert observed(engine) == (observed(ref)[0], 1 if bad else 0)


@fuzz_settings(25)
@given(stream=event_streams(max_events=80, odd=0.15), form=st.sampled_from(["dict", "Event", "json"]))
def test_lists_small_and_large(rules, stream, form):
    """A list of dicts, Events or JSON bytes: one by one below 64 events, the batch kernel from 64."""
    if form == "json":
        payload = [as_json(e) for e in stream]
        if None in payload:
            form = "dict"
        else:
            stream = [json_view(raw) for raw in payload]
    if form == "dict":
        payload = [dict(e) for e in stream]
    elif form == "Event":
        payload = [as_event(e) for e in stream]
    check_batch(rules, stream, payload)


@fuzz_settings(25)
@given(stream=event_streams(max_events=80, odd=0.15), garbage=st.booleans())
def test_ndjson_small_and_large(rules, stream, garbage):
    """NDJSON bytes, < 64 lines (line by line) and >= 64 lines (the Numba scanner when every line
    is clean, else msgspec): the same verdicts, indices and skips."""
    lines = [as_json(e) for e in stream]
    keep = [i for i, raw in enumerate(lines) if raw is not None]
    events = [json_view(lines[i]) for i in keep]
    lines = [lines[i] for i in keep]
    if garbage and lines:  # one line that is not JSON at all: the error names no field
        lines[len(lines) // 2] = b'{"type": "like", oops}'
        events[len(events) // 2] = None
    check_batch(rules, events, b"\n".join(lines) + b"\n")


@fuzz_settings(25)
@given(stream=event_streams(max_events=80, odd=0.15))
def test_batch_columns(rules, stream):
    """A columnar Batch of object columns holding the odd values as given."""
    n = len(stream)
    for e in stream:  # int item ids are valid in a Batch only: the one-by-one reference has no form for them
        if isinstance(e.get("item"), int) and not isinstance(e["item"], bool):
            e["item"] = f"i{e['item']}"

    def column(name):
        col = np.empty(n, dtype=object)
        for i, e in enumerate(stream):
            col[i] = e.get(name)
        return col

    payload = Batch(type=column("type"), viewer=column("viewer"), room=column("room"), ts=column("ts").tolist(),
                    item=column("item"), category=column("category"), text=column("text"),
                    price=column("price").tolist(), amount=column("amount").tolist())
    check_batch(rules, stream, payload, batch_rules=True)


# --- the defects the fuzzer found (issue 14, defects 4-6), as plain regression tests -------------
GOOD = {"type": "like", "viewer": "u1", "room": "r1", "ts": 1000.0}


@pytest.mark.parametrize("field,value", [
    ("ts", 1e16), ("ts", 1e20), pytest.param("ts", 10**400, id="ts-10**400"), ("ts", -1e300), ("ts", 9.2e12),
    ("ts", -1.0), ("ts", 1e11), pytest.param("price", 10**400, id="price-10**400"), ("price", 1e15), ("amount", -1e16),
])
def test_out_of_range_numbers_are_event_errors_on_every_path(rules, field, value):
    event = {**GOOD, field: value}
    batch = [dict(GOOD, ts=1000.0 + i) for i in range(70)] + [event]
    for engine in (Engine(rules.rules), pure_engine(rules)):
        for form in (event, as_event(event), {**event, "x": 1}, as_json(event)):
            if form is None:
                continue
            with pytest.raises(EventError) as err:
                engine.ingest(form)
            assert err.value.field == field
        columns = {"type": ["like"] * 3, "viewer": ["u1"] * 3, "room": "r1", "ts": [1.0, 2.0, 3.0]}
        columns[field] = [1.0, value, 2.0]
        for payload, n in ((batch[-5:], 5), (batch, 71), (b"\n".join(msgspec.json.encode(e) for e in batch[-5:]), 5),
                           (b"\n".join(msgspec.json.encode(e) for e in batch), 71), (Batch(**columns), 3)):
            with pytest.raises(EventError) as err:
                engine.ingest_many(payload)
            assert err.value.field == field and err.value.index == n - 1 - (isinstance(payload, Batch))
            before = engine.stats()["events"]
            engine.ingest_many(payload, errors="skip")
            assert engine.stats()["events"] == before + n - 1


def test_a_far_future_event_does_not_make_retention_forget_everyone(rules):
    """9.2e12 (a millisecond timestamp sent as seconds) used to move the sweep point."""
    engine = Engine(rules.rules)
    for v in range(5):
        engine.ingest(dict(GOOD, viewer=v))
    with pytest.raises(EventError):
        engine.ingest(dict(GOOD, viewer=9, ts=9.2e12))
    assert engine.stats()["viewers"] == 5 and engine.stats()["expired_viewers"] == 0


@pytest.mark.parametrize("now", [1e16, -1.0, pytest.param(10**400, id="10**400"), float("nan"), float("inf"), True, "5"])
def test_advance_out_of_range_is_a_clear_value_error(rules, now):
    engine = Engine(rules.rules)
    with pytest.raises(ValueError, match="advance"):
        engine.advance(now)


@pytest.mark.parametrize("patch,field", [
    ({"ts": "1700000100"}, "ts"), ({"price": "12.5"}, "price"), ({"ts": True}, "ts"),
    ({"type": "live_end", "viewer": 1.5}, "viewer"), ({"type": "live_end", "viewer": [1]}, "viewer"),
])
@pytest.mark.parametrize("extra", [{}, {"x": 1}, {"x": None, "y": [1]}])
def test_the_verdict_does_not_depend_on_other_keys(rules, patch, field, extra):
    for engine in (Engine(rules.rules), pure_engine(rules)):
        with pytest.raises(EventError) as err:
            engine.ingest({**GOOD, **patch, **extra})
        assert err.value.field == field
    assert Engine(rules.rules).ingest({**GOOD, "type": "live_end", "viewer": "u9", **extra}) == []  # ignored, valid


@pytest.mark.parametrize("field", ["viewer", "room", "item", "category", "text"])
def test_lone_surrogates_are_rejected_and_snapshots_stay_possible(rules, field, tmp_path):
    from segengine.errors import SnapshotError

    for engine in (Engine(rules.rules), pure_engine(rules)):
        engine.ingest(dict(GOOD, item="a", category="other", text="hi"))  # every id known: the C path's case
        for bad in ("\ud800", "x\udfff", Tagged("\ud800")):
            for form in ({**GOOD, field: bad}, as_event({**GOOD, field: bad})):
                with pytest.raises(EventError) as err:
                    engine.ingest(form)
                assert err.value.field == field
        columns = {"type": ["like"], "viewer": ["u1"], "room": ["r1"], "ts": [1.0], field: np.array(["\ud800"])}
        with pytest.raises(EventError) as err:
            engine.ingest_many(Batch(**columns))
        assert err.value.field == field and err.value.index == 0
        assert engine.snapshot(tmp_path / "s.snap") > 0
    with pytest.raises(EventError):
        Engine(rules.rules).set_profile("\ud800")
    engine = Engine(rules.rules)
    engine._viewers.intern("\ud800")  # as if something let one through: still a SnapshotError
    engine._store.ensure_viewers(len(engine._viewers))
    with pytest.raises(SnapshotError):
        engine.snapshot(tmp_path / "t.snap")


def test_fuzz_count_report():
    """With SEGENGINE_FUZZ_EXAMPLES set, print how many events went through (run it last: -p no:randomly)."""
    if EXAMPLES:
        print(f"\nfuzzed events: {COUNT['events']}")
