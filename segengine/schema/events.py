"""Event and action schemas, and the validation every ingest path shares.

Decoders are built once and reused: decoding is on the hot path.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from ..errors import EventError
from ..rules.suggest import closest
from .fields import FIELDS, NUM_MAX, OPTIONAL, TS_MAX, TS_MIN

__all__ = ["Event", "Action", "BUILTIN_TYPES", "ROOM_TYPES", "EVENT_FIELDS", "TS_MIN", "TS_MAX", "NUM_MAX", "validate",
           "decode_json", "decode_ndjson"]

BUILTIN_TYPES: tuple[str, ...] = (
    "enter", "leave", "heartbeat", "view", "click", "like", "comment", "share", "follow",
    "cart", "uncart", "checkout", "pay", "refund", "live_start", "live_end",
)
#: Types that concern a whole room and carry no viewer.
ROOM_TYPES = frozenset({"live_start", "live_end"})


class Event(msgspec.Struct, omit_defaults=True, gc=False):
    """One viewer (or room) event. ``None`` means absent; JSON ``null`` counts as absent.

    The fields are those of ``schema/fields.py``'s table, in its order (checked at import:
    a class statement keeps msgspec's decoder and type checkers seeing a plain Struct).
    """

    type: str | None = None
    ts: float | None = None
    viewer: str | int | None = None
    room: str | None = None
    item: str | None = None
    category: str | None = None
    price: float | None = None
    amount: float | None = None
    text: str | None = None


def _agrees(struct: type, fields=FIELDS) -> None:
    """Raise unless ``struct``'s fields are the table's: names, order, annotations, None defaults."""
    got = [(f.name, f.type, f.default) for f in msgspec.structs.fields(struct)]
    want = [(f.name, f.annotation, None) for f in fields]
    if got != want:
        raise TypeError(f"{struct.__name__} disagrees with schema/fields.py: {got} != {want}")


_agrees(Event)

#: Field name -> expression type, for ``event.FIELD`` in rules.
EVENT_FIELDS: dict[str, str] = {f.name: f.expr for f in FIELDS}


class Action(msgspec.Struct, gc=False):
    """What a rule asks the caller to do, built only when a rule fires.

    Not tracked by Python's cycle collector (``gc=False``): an action holds only strings,
    numbers and its params, so it can never be part of a cycle, and a batch of thousands
    of actions no longer triggers collections that walk every live object (a kept action
    cost ~1.2 us to build, ~0.45 us untracked).
    """

    rule: str
    action: str
    viewer: str | int
    room: str
    ts: float
    params: dict[str, Any] = {}


json_decoder = msgspec.json.Decoder(Event)  # also used by the C fast path (engine.py)
_ndjson_decoder = msgspec.json.Decoder(list[Event])
#: the optional fields by what they hold (the required ones are checked one by one, in check())
_STR_FIELDS = tuple(f.name for f in FIELDS if f.required == OPTIONAL and f.is_str)
_NUM_FIELDS = tuple(f.name for f in FIELDS if f.required == OPTIONAL and f.kind == "num")


def _field_from_msgspec(err: msgspec.ValidationError) -> str:
    text = str(err)
    marker = "at `$."
    if marker in text:
        rest = text.split(marker, 1)[1]
        return rest.split("`", 1)[0].split("[", 1)[0].split(".", 1)[0]
    if "missing required field" in text:
        return text.split("`")[1]
    return ""


def _convert_dict(data: dict) -> Event:
    """A dict's fields as an Event; keys that are not fields are ignored.

    No conversion at all: the values are taken as given and :func:`check` judges them, so
    the verdict never depends on other keys (a string ``ts`` is rejected with or without an
    extra key).
    """
    if data.keys() <= _FIELD_SET:
        return Event(**data)
    return Event(**{k: v for k, v in data.items() if k in _FIELD_SET})


_FIELD_SET = frozenset(Event.__struct_fields__)


def validate(event: Any, known_types: frozenset[str], room_types: frozenset[str] = ROOM_TYPES) -> Event:
    """Return ``event`` as a checked :class:`Event`, or raise :class:`EventError` naming the field.

    Accepts an :class:`Event`, a ``dict`` with the same keys, or JSON bytes/str of one object.
    """
    if isinstance(event, Event):
        ev = event
    elif isinstance(event, dict):
        ev = _convert_dict(event)
    elif isinstance(event, (bytes, bytearray, memoryview, str)):
        ev = decode_json(event)
        check_decoded(ev, known_types, room_types)
        return ev
    else:
        raise EventError(f"Expected an Event, a dict or JSON bytes, got `{type(event).__name__}`")
    check(ev, known_types, room_types)
    return ev


def check(ev: Event, known_types: frozenset[str], room_types: frozenset[str] = ROOM_TYPES) -> None:
    """Field checks shared by every path (msgspec already checked JSON types).

    Strict types (no conversion: ``"12.5"`` is not a number, ``True`` not a number nor an
    id), a field that is present is checked even where it is not used (a ``viewer`` on a
    room event), numbers within their ranges, strings encodable as UTF-8.
    """
    t = ev.type
    if t is None:
        raise EventError("Object missing required field `type`", "type")
    if not isinstance(t, str):
        raise EventError(f"Expected `str`, got `{type(t).__name__}`", "type")
    if t not in known_types:
        raise EventError(unknown_type_message(t, known_types), "type")
    ts = ev.ts
    if ts is None:
        raise EventError("Object missing required field `ts`", "ts")
    if type(ts) is not float:
        if isinstance(ts, bool) or not isinstance(ts, (int, float)):
            raise EventError(f"Expected `float`, got `{type(ts).__name__}`", "ts")
    if not TS_MIN <= ts < TS_MAX:  # exact for ints of any size; false for NaN
        raise EventError(ts_range_message(ts), "ts")
    room = ev.room
    if room is None:
        raise EventError("Object missing required field `room`", "room")
    if not isinstance(room, str):
        raise EventError(f"Expected `str`, got `{type(room).__name__}`", "room")
    v = ev.viewer
    if v is None:
        if t not in room_types:  # live_start, live_end and [engine] room_types
            raise EventError("Object missing required field `viewer`", "viewer")
    elif isinstance(v, bool) or not isinstance(v, (str, int)):
        raise EventError(f"Expected `str | int`, got `{type(v).__name__}`", "viewer")
    for name in _STR_FIELDS:
        val = getattr(ev, name)
        if val is not None and not isinstance(val, str):
            raise EventError(f"Expected `str`, got `{type(val).__name__}`", name)
    for name in _NUM_FIELDS:
        val = getattr(ev, name)
        if val is not None:
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                raise EventError(f"Expected `float`, got `{type(val).__name__}`", name)
            if not -NUM_MAX < val < NUM_MAX:
                raise EventError(num_range_message(val), name)
    for name in _TEXT_FIELDS:
        val = getattr(ev, name)
        if type(val) is str and val.isascii():
            continue
        if isinstance(val, str) and not encodable(val):
            raise EventError("Expected a string encodable as UTF-8, got one with a lone surrogate", name)
    # ints are accepted for float fields; kernels take floats (one compiled signature)
    if type(ts) is not float:
        ev.ts = float(ts)
    if ev.price is not None and type(ev.price) is not float:
        ev.price = float(ev.price)
    if ev.amount is not None and type(ev.amount) is not float:
        ev.amount = float(ev.amount)


def unknown_type_message(t: str, known_types: frozenset[str]) -> str:
    """``unknown event type 'lik' (did you mean 'like'?)``: the one wording of every ingest path."""
    best = closest(t, sorted(known_types))
    return f"unknown event type {show_value(t)}" + (f" (did you mean {best!r}?)" if best else "")


def type_problem(t: Any, known_types: frozenset[str]) -> str:
    """What is wrong with an event's ``type`` value (batch paths: the same words as :func:`check`)."""
    if t is None:
        return "Object missing required field `type`"
    if not isinstance(t, str):
        return f"Expected `str`, got `{type(t).__name__}`"
    return unknown_type_message(t, known_types)
#: fields that may hold a str (each must encode as UTF-8), in check()'s order
_TEXT_FIELDS = tuple(f.name for f in FIELDS if f.kind not in ("time", "num"))


def encodable(s: str) -> bool:
    """Whether ``s`` encodes as UTF-8 (no lone surrogates): what snapshots and JSON need."""
    if s.isascii():
        return True
    try:
        s.encode()
    except UnicodeEncodeError:
        return False
    return True


def show_value(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def ts_range_message(ts: Any) -> str:
    """The reason a time is rejected (the same words on every path)."""
    if isinstance(ts, float) and not math.isfinite(ts):
        return f"Expected a finite number, got {ts!r}"
    return f"Expected a time in seconds in [0, 1e11) (unix seconds, 1970 to 5138), got {show_value(ts)}"


def num_range_message(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"Expected a finite number, got {value!r}"
    return f"Expected a number in (-1e15, 1e15), got {show_value(value)}"


def check_decoded(ev: Event, known_types: frozenset[str], room_types: frozenset[str] = ROOM_TYPES) -> None:
    """The checks msgspec's typed decode leaves to us: presence, known type, ranges.

    (JSON cannot carry a lone surrogate: msgspec rejects the escape.)
    """
    t, ts, price, amount = ev.type, ev.ts, ev.price, ev.amount
    if (t not in known_types or ts is None or ev.room is None or not (TS_MIN <= ts < TS_MAX)
            or (ev.viewer is None and t not in room_types)
            or (price is not None and not (-NUM_MAX < price < NUM_MAX))
            or (amount is not None and not (-NUM_MAX < amount < NUM_MAX))):
        check(ev, known_types, room_types)  # slow path: finds the field and raises


#: A UTF-8 byte order mark: accepted (ignored) at the start of NDJSON input, on every path.
UTF8_BOM = b"\xef\xbb\xbf"


def decode_json(data: bytes | bytearray | memoryview | str) -> Event:
    """Decode one JSON object into an :class:`Event` (types checked, values not yet)."""
    try:
        return json_decoder.decode(data)
    except msgspec.ValidationError as err:
        raise EventError(str(err).split(" - at ")[0], _field_from_msgspec(err)) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as err:
        raise EventError(f"invalid JSON: {err}") from None


def decode_ndjson(data: bytes, fallback: bool = True) -> list[Event]:
    """Decode NDJSON bytes (one object per line, blank lines skipped) into events.

    A UTF-8 byte order mark at the very start is ignored.

    One batch decode when every line is valid; otherwise falls back line by line so
    the error names the offending line (``EventError.index``, 0-based among events).
    """
    body = bytes(data)
    if body[:3] == UTF8_BOM:  # a byte order mark opening the file (Windows editors write one)
        body = body[3:]
    body = body.strip()
    if not body:
        return []
    try:
        events = _ndjson_decoder.decode(b"[" + body.replace(b"\n", b",") + b"]")
        if len(events) == body.count(b"\n") + 1:
            return events
        # two objects on one line, or a raw newline inside a string: not one object per line
        err = ValueError("a line does not hold exactly one JSON object")
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        err = exc
    if not fallback:
        raise EventError(f"invalid NDJSON: {err}") from None
    events: list[Event] = []
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        try:
            events.append(decode_json(line))
        except EventError as err:
            raise err.at_index(len(events)) from None
    return events
