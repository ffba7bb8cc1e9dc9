"""The C fast path of ``Engine.ingest`` (segengine/runtime/_fastpath.c) against the same engine with
its checks in Python: every event, valid, odd or malformed, in every form, must give the same
actions or the same error, and leave the same state.

The C path decides nothing itself: whatever is unusual it hands to Python. These tests make
sure it hands over everything it should (a wrong "fast" answer would differ from Python's).
"""

from __future__ import annotations

import gc
import os
import weakref
from unittest import mock

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segengine.engine as engine_module
from segengine import Engine, Event, EventError
from segengine.kernels.primitives import META_HEAP_N

from conftest import examples

SETTINGS = settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])
PURE = os.environ.get("SEGENGINE_PURE_PYTHON", "") not in ("", "0")


def pure_python(rules) -> Engine:
    """An engine built as on a machine without the C extension."""
    with mock.patch.object(engine_module, "_fastpath", None):
        return Engine(rules)


def test_the_extension_is_built_and_used(example_rules):
    """setup.py builds it wherever a C compiler is (every CI machine); only an explicit
    SEGENGINE_PURE_PYTHON=1 run goes without."""
    if PURE:
        assert Engine(example_rules)._fast is None
        return
    from segengine.runtime import _fastpath

    engine = Engine(example_rules)
    assert isinstance(engine._fast, _fastpath.FastPath)
    assert engine.ingest == engine._fast.ingest and engine._k_event == engine._fast.call
    slow = pure_python(example_rules)
    assert slow._fast is None and slow.ingest.__func__ is Engine.ingest


def test_ingest_has_a_signature_on_both_paths(example_rules):
    """inspect.signature (IDEs, help(), typer-like tools) works on the C method too: a text signature."""
    import inspect

    for engine in (Engine(example_rules), pure_python(example_rules)):
        sig = inspect.signature(engine.ingest)
        assert list(sig.parameters) == ["event"]
        assert "ConcurrentUseError" in engine.ingest.__doc__ and "EventError" in engine.ingest.__doc__


def test_known_viewers_events_stay_in_c_in_every_form(example_rules):
    """Only the new viewer's first event goes to Python; later ones (dict, Event, JSON) and an
    event in a new room-free form do not (an Event's fields are read from its slots)."""
    if PURE:
        pytest.skip("pure-Python run")
    python_ingest = Engine._ingest  # Engine.ingest's code, which FastPath.ingest hands over to
    with mock.patch.object(Engine, "_ingest", autospec=True, side_effect=python_ingest) as full_path:
        engine = Engine(example_rules)  # its FastPath hands over to the mock
    engine.ingest({"type": "enter", "viewer": "u1", "room": "r1", "ts": 1000.0})
    assert full_path.call_count == 1  # a new viewer: interned in Python
    engine.ingest({"type": "like", "viewer": "u1", "room": "r1", "ts": 1001.0})
    engine.ingest(Event(type="like", viewer="u1", room="r1", ts=1002.0))
    engine.ingest(b'{"type": "like", "viewer": "u1", "room": "r1", "ts": 1003.0}')
    engine.ingest({"type": "view", "viewer": "u1", "room": "r1", "ts": 1004.0, "item": "", "price": 5.0})
    assert full_path.call_count == 1
    engine.ingest(Event(type="like", viewer="u1", room="r1", ts=1005.0, price=5))  # an int price: Python
    assert full_path.call_count == 2
    assert engine.stats()["events"] == 6


def test_an_engine_and_its_fast_path_are_collected(example_rules):
    """The engine holds its FastPath, which holds the engine's methods: the cycle is collected."""
    engine = Engine(example_rules)
    engine.ingest({"type": "enter", "viewer": 1, "room": "r1", "ts": 1.0})
    gone = weakref.ref(engine)
    del engine
    gc.collect()
    assert gone() is None


class Tagged(str):
    """A str subclass: valid for validate(), never taken by the exact-type fast checks."""


TYPES = ["enter", "leave", "heartbeat", "view", "click", "like", "comment", "cart", "uncart", "checkout", "pay",
         "refund", "live_start", "live_end", "teleport"]
VIEWERS = ["u1", "u2", 3, 1, 0, -5, 10**9, 2**70, True, False, 1.0, 3.0, None, Tagged("u1"), [1]]
ODD = {
    "ts": [5, float("inf"), float("nan"), "1000", None, True],
    "room": [None, 5, Tagged("r1"), ["r1"]],
    "type": [None, 5, Tagged("like"), ["like"]],
    "item": [None, 5, "", "tv", "new-item", Tagged("a")],
    "category": [None, 5, "nope", "digital", Tagged("digital")],
    "price": [None, 5, float("nan"), float("-inf"), "9.9", 0.0, -1.5, True],
    "amount": [None, 7, float("inf"), 12.5],
    "text": [None, 5, "hi", ""],
    "extra": [1, None, "x"],
}


@st.composite
def events(draw, max_events: int = 50):
    """Mostly valid events of a few viewers (some late, some in a new room), sprinkled with
    odd values that are valid (int ts, str subclasses, a new item) or malformed."""
    n = draw(st.integers(1, max_events))
    t = 1_000.0
    out = []
    for _ in range(n):
        t += draw(st.sampled_from([0.0, 0.5, 2.0, 30.0, 95.0, 301.0, -40.0]))  # -40: a late event
        e = {"type": draw(st.sampled_from(TYPES[:12])), "viewer": draw(st.sampled_from(["u1", "u2", 3, 1, 0])),
             "room": draw(st.sampled_from(["r1", "r1", "r2"])), "ts": t}
        if draw(st.booleans()):
            e["item"] = draw(st.sampled_from(["a", "b", "tv"]))
            e["category"] = draw(st.sampled_from(["snacks", "digital", "nope"]))
            e["price"] = draw(st.sampled_from([9.9, 40.0, 1500.0]))
        if e["type"] == "pay" and draw(st.booleans()):
            e["amount"] = 99.5
        if draw(st.integers(0, 3)) == 0:  # an odd or malformed value somewhere
            key = draw(st.sampled_from([*ODD, "viewer", "type!", "drop"]))
            if key == "viewer":
                e["viewer"] = draw(st.sampled_from(VIEWERS))
            elif key == "type!":
                e["type"] = draw(st.sampled_from(TYPES))
            elif key == "drop":
                del e[draw(st.sampled_from(["type", "ts", "room", "viewer"]))]
            else:
                e[key] = draw(st.sampled_from(ODD[key]))
        form = draw(st.sampled_from(["dict", "dict", "Event", "json"]))
        out.append((form, e))
    return out


def _as(form: str, e: dict):
    if form == "Event":
        try:
            return Event(**e)
        except TypeError:  # an unknown key: only dicts and JSON carry those
            return e
    if form == "json":
        try:
            return msgspec.json.encode(e)
        except (TypeError, OverflowError):  # NaN is fine; a list in a key, an int beyond 64 bits is not
            return e
    return e


def _outcome(engine: Engine, event):
    try:
        return ("ok", engine.ingest(event))
    except EventError as err:
        return ("error", type(err), str(err), err.field)


def _state(engine: Engine) -> tuple:
    store = engine._store
    n = len(engine._viewers)
    return (engine.stats(), store.VI[:n].tobytes(), store.VF[:n].tobytes(), store.VN[:n].tobytes(),
            store.RI[:len(engine._rooms)].tobytes(), dict(engine._viewers.ids), dict(engine._strings.ids))


@pytest.fixture(params=["golden", "example"])
def rules(request, golden_rules, example_rules):
    return golden_rules if request.param == "golden" else example_rules


@SETTINGS
@given(stream=events())
def test_c_and_python_give_the_same_actions_errors_and_state(rules, stream):
    fast, slow = Engine(rules), pure_python(rules)
    for form, e in stream:
        assert _outcome(fast, _as(form, e)) == _outcome(slow, _as(form, e)), (form, e)
    end = max((e["ts"] for _, e in stream if type(e.get("ts")) is float and np.isfinite(e["ts"])), default=1000.0)
    assert fast.advance(end + 3600) == slow.advance(end + 3600)
    assert _state(fast) == _state(slow)


def test_a_kernel_call_that_needs_room_is_retried_with_the_same_arguments(golden_rules):
    """A kernel call that finds the timer heap full returns -1 having done nothing: the C path
    hands Python its arguments (last_args), the heap grows, and the event is applied once."""
    fast, slow = Engine(golden_rules), pure_python(golden_rules)
    enter = [{"type": "enter", "viewer": v, "room": "r1", "ts": 1000.0 + v} for v in range(10)]
    follow = [{"type": "follow", "viewer": v, "room": "r1", "ts": 1020.0 + v} for v in range(10)]
    for engine in (fast, slow):
        for e in enter:  # new viewers: Python interns them
            engine.ingest(e)
        store = engine._store
        store.HEAP = store.HEAP[:store.META[0, META_HEAP_N] + 1].copy()  # full: the next event needs room
        store.refresh()
    size = fast._store.HEAP.shape[0]
    with mock.patch.object(fast, "_finish", wraps=fast._finish) as finish:
        got = [a for e in follow for a in fast.ingest(e)]
    assert got == [a for e in follow for a in slow.ingest(e)]
    assert len(got) >= 10 and fast.stats()["events"] == 20
    assert fast._store.HEAP.shape[0] > size
    if fast._fast is not None:
        assert finish.call_args_list[0].args[0] == -1  # the first follow needed room
    assert _state(fast) == _state(slow)


TEXT_RULES = """
[[rules]]
name = "buyer"
on = ["comment"]
when = "event.text == 'buy' and count(comment, 1m) >= 1"
then = "offer"
"""


def test_rules_that_read_the_text_keep_the_python_checks():
    """Texts are interned by Python for such rules: no FastPath, the kernel still the C one."""
    fast = Engine.from_toml(TEXT_RULES)
    slow = pure_python(fast.rules)
    assert fast._fast is None
    if not PURE:
        from segengine.runtime import _fastpath

        assert isinstance(fast._k_event.__self__, _fastpath.FastPath)
    stream = [{"type": "comment", "viewer": v % 3, "room": "r1", "ts": 1000.0 + v, "text": t}
              for v, t in enumerate(["hi", "buy", "buy", None, "buy", "nope"])]
    got = [a for e in stream for a in fast.ingest(e)]
    assert got == [a for e in stream for a in slow.ingest(e)]
    assert [a.viewer for a in got] == [1, 2, 1]


def test_call_checks_its_table(example_rules):
    engine = Engine(example_rules)
    if engine._fast is None:
        pytest.skip("pure-Python build")
    other = Engine(example_rules)
    with pytest.raises(ValueError):
        engine._fast.call(other._store.tab_addr, 0, 0, 0, 0, 1.0, 0, 0, 1.0, 1.0, -1, 0)
    with pytest.raises(TypeError):
        engine._fast.call(engine._store.tab_addr)
