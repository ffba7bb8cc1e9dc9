"""The facade: ``Engine``, the public API over an :class:`~segengine.runtime.core.EngineCore`.

The core holds the compiled rules, state arrays, id maps, sweep schedule and firing log,
builds actions and decodes values; the engine validates and encodes events, binds the
kernels (the C fast path where it is built), answers queries and enters the thread
guard. Single-threaded by design, like a game loop: one engine per process (or per shard
of viewers). Every public call validates first and mutates after, so a rejected
event changes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from types import MethodType
from typing import Any

import numpy as np

from .schema.batch import Batch, BatchView, Coded, _py, codes_of, lookup_all, validity
from .compiler import INGEST_EVENT_SIG, CompiledRules, entry_point
from .errors import ConcurrentUseError, EventError
from .schema.events import (
    ROOM_TYPES, TS_MAX, TS_MIN, UTF8_BOM, Action, Event, decode_json, decode_ndjson, encodable, json_decoder, show_value,
    type_problem, validate,
)
from .ops.explain import Explanation, FiringLog, explain as explain_rule
from .runtime.core import EngineCore
from .runtime.exclusive import Guard, exclusive
from .runtime.interning import Interner, first_seen
from .kernels.columns import category_codes, dense_slots
from .kernels.primitives import (
    BY_VIEWER_ID, META_EVENTS, META_LATE, META_OUT_N, META_TIMERS, M_VF, M_VI,
    M_VIDS, M_VN, PURE_PYTHON, UNKNOWN_VIEWER,
)
from .schema.fields import BATCH_ROW, ROW_DTYPES, fastpath_fields
from .schema.ndjson import scan_ndjson
from .ops.reload import reload as reload_rules
from .ops import snapshot as _snapshot
from .ops import room as _room
from .ops import roommetrics as _roommetrics
from .schema.results import RoomMetrics
from .ops import outcomes as _outcomes
from .schema.results import Outcomes
from .features.roomnames import share_names
from .rules import ast
from .rules.load import RuleSet, load_rules, load_rules_file
from .rules.suggest import did_you_mean
from .compiler.layout import FLAG_SEEN
from .text.codes import text_codes
from .text.predicates import predicates as text_predicates
from .guards import fired_index, suppressed_counts
from . import config

try:  # the optional C fast path of ingest (setup.py builds it where a C compiler is)
    from .runtime import _fastpath
except ImportError:  # pragma: no cover - a build without a compiler
    _fastpath = None

__all__ = ["Engine"]

_NAN = float("nan")
_FMAX = sys.float_info.max  # comparisons, not math.isfinite: an int beyond floats is no OverflowError
#: Below this many events an ``ingest_many`` call applies them one by one: a batch call has a
#: fixed cost of ~150 us (about forty numpy operations on short columns), one event ~2 us.
SMALL_BATCH = 64


class Engine:
    """A compiled rules file and the live state of every viewer and room.

    Examples
    --------
    >>> engine = Engine.from_toml('''
    ... [[rules]]
    ... name = "liker"
    ... on = ["like"]
    ... when = "count(like) >= 2"
    ... then = "thank"
    ... ''')
    >>> engine.ingest({"type": "like", "viewer": "u1", "room": "r1", "ts": 10.0})
    []
    >>> [a.action for a in engine.ingest({"type": "like", "viewer": "u1", "room": "r1", "ts": 11.0})]
    ['thank']
    """

    def __init__(self, rules: RuleSet, *, capacity: int = 1024):
        self._start(EngineCore(rules, capacity=capacity))

    @classmethod
    def _from_core(cls, core: EngineCore) -> "Engine":
        """An engine over an existing core (a restored snapshot)."""
        engine = cls.__new__(cls)
        cls._start(engine, core)
        return engine

    def _start(self, core: EngineCore) -> None:
        # one thread at a time: every public call enters it (segengine/runtime/exclusive.py); the C one when built
        self._guard = (_fastpath.Guard if _fastpath is not None else Guard)(ConcurrentUseError)
        self._core = core
        # the parts and core methods the event path reads, as attributes (a lookup less per use)
        self._viewers: Interner = core.viewers
        self._rooms: Interner = core.rooms
        self._strings: Interner = core.strings
        self._intern = self._strings.intern
        self._string_ids = self._strings.ids
        self._viewer_ids = self._viewers.ids
        self._room_ids = self._rooms.ids
        self._retention = core.retention  # bounded memory: sweep schedule and counters
        self._viewer_slot = core.viewer_slot
        self._room_slot = core.room_slot
        self._drain = core.drain  # output rows -> actions (the only place actions are built)
        self._index_len = len(self._viewers.index)
        core.on_index = self._on_viewer_index
        core.on_swap = self._adopt
        self._adopt()

    def _on_viewer_index(self, length: int) -> None:
        """The viewer interner replaced its int-id index (the core pointed the kernels at it)."""
        self._index_len = length

    def _adopt(self) -> None:
        """Take the core's rules and store (at the start, and after a reload swapped them)."""
        self._compiled: CompiledRules = self._core.compiled
        self._store = self._core.store
        self._setup(self._compiled)
        self._bind_kernel()  # the new kernel, on the new store

    def _setup(self, compiled: CompiledRules) -> None:
        """What the event path needs of the rules, decided once per rules."""
        rs = compiled.rules
        self._rules = rs
        self._types = frozenset(rs.event_types)
        self._codes = {t: i for i, t in enumerate(rs.event_types)}
        # category -> kernel code: the declared categories, then the other category strings the
        # rules name (Layout.category_names); "" is absent (0), any other string -1
        self._category_names = compiled.layout.category_names
        self._cat_codes = {"": 0, **{c: i + 1 for i, c in enumerate(self._category_names)}}
        self._mod = compiled.module
        self._uses_text = any(isinstance(n, ast.EventField) and n.field_name == "text"
                              for r in rs.rules for n in ast.walk(r.when))
        # text predicates and intents (segengine.text): the text column is computed per distinct text
        self._text = text_codes(rs, self._string_ids) if text_predicates(rs) else None
        # the Python path looks texts up only in the text cache (a text not there: _ingest_one)
        self._texts_interned = self._uses_text and self._text is None
        self._text_cache = None if self._text is None else self._text.cache
        self._uses_text = self._uses_text or self._text is not None
        self._segment_index = {name: i for i, name in enumerate(rs.segments)}
        # room events: live_start, live_end and the rules' [engine] room_types (room-wide triggers)
        self._room_types = ROOM_TYPES | frozenset(rs.room_types)
        self._room_codes = frozenset(self._codes[t] for t in self._room_types)
        self._room_code_array = np.array(sorted(self._room_codes), np.int64)
        self._room_codes_pair = tuple(sorted(self._room_codes))  # live_start, live_end: two compares, no isin
        self._cat_codes_none = {None: 0, **self._cat_codes}
        self._viewer_codes = {t: c for t, c in self._codes.items() if t not in self._room_types}
        self._shows_category = any("event.category" in str(r.params) for r in rs.rules)
        self._shares = bool(share_names(rs))  # room.share counts (features/roomnames.py)

    def _bind_kernel(self) -> None:
        """Choose how ``ingest`` calls the event kernel (after ``_setup`` and a new store: ``_adopt``).

        With ``segengine.runtime._fastpath`` built: a ``FastPath`` does the common event in one C call
        and ``_k_event`` is its generic call; Numba's ``ingest_event`` is then never compiled.
        Without it (or with ``SEGENGINE_PURE_PYTHON=1``): Numba's entry point, and the same
        checks in Python. Rules that compare ``event.text`` keep the Python checks (they intern
        texts); their kernel is still the C function when it is there. With ``NUMBA_DISABLE_JIT=1``
        (kernels as plain Python, no C function to call) the kernel is the Python ``ingest_event``.
        """
        self._fast = None
        self.__dict__.pop("ingest", None)  # back to the class's Python ingest
        if _fastpath is None or not config.c_fast_path_enabled() or PURE_PYTHON:
            self._k_event = entry_point(self._mod.ingest_event, INGEST_EVENT_SIG)
            return
        kernel = self._compiled.event_cfunc()
        store = self._store
        fast = _fastpath.FastPath(
            kernel=kernel.address, tab_addr=store.tab_addr, matrices=(M_VI, M_VF, M_VN, M_VIDS),
            prefetch=store.prefetch_spec(self._viewer_codes), keep=(store.tab, kernel),
            viewer_codes=self._viewer_codes, viewer_ids=self._viewer_ids, room_ids=self._room_ids,
            string_ids=self._string_ids, cat_codes=self._cat_codes, retention=self._retention, event_type=Event,
            decode=json_decoder.decode, full_path=MethodType(Engine._ingest, self), finish=self._finish_fast,
            guard=self._guard, fields=fastpath_fields(), row=ROW_DTYPES,  # FastPath.ingest holds the guard: its hand-overs need not enter it again
            text_codes=None if self._text is None else self._text.cache,  # a text seen before: its value
            text_value=None if self._text is None else self._text.value)  # a new one: computed and cached
        self._k_event = fast.call
        if not self._uses_text or self._text is not None:
            self._fast = fast
            self.ingest = fast.ingest  # an instance attribute: engine.ingest(e) is one C call

    def _finish_fast(self, pending: int, event) -> list[Action]:
        """FastPath.ingest's kernel call reported actions (or no room): build them here."""
        return self._finish(pending, [], event, *self._fast.last_args())

    # construction -------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> "Engine":
        """Load, check and compile a rules file (raises :class:`RulesError` listing every problem)."""
        return cls(load_rules_file(path), **kwargs)

    @classmethod
    def from_toml(cls, text: str, filename: str = "<rules>", **kwargs: Any) -> "Engine":
        return cls(load_rules(text, filename), **kwargs)

    @classmethod
    def restore(cls, path: str | Path) -> "Engine":
        """A new engine continuing exactly where the one saved by :meth:`snapshot` stopped.

        Compiles the rules stored in the file (cached: fast in a warm process). Raises
        :class:`SnapshotError` for a truncated, corrupt, foreign or other-version file.
        """
        return cls._from_core(_snapshot.load(path))

    @exclusive
    def snapshot(self, path: str | Path) -> int:
        """Save the whole state to ``path`` atomically (temp file, fsync, rename); returns its size in bytes."""
        return _snapshot.save(self._core, path)

    @property
    def rules(self) -> RuleSet:
        return self._rules

    @property
    def kernel_source(self) -> str:
        """The generated Python source of the running rules' kernels (one module).

        The engine imports it from the compile cache (``$SEGENGINE_CACHE_DIR``, else
        ``~/.cache/segengine``), where Numba compiles it; with ``NUMBA_DISABLE_JIT=1`` it runs
        as plain Python, so a debugger can step through it. ``segengine compile RULES --emit
        FILE`` writes the same text. After :meth:`reload`, the new rules' module.
        """
        return self._compiled.generated.source

    def warmup(self) -> "Engine":
        """Compile (or load from cache) every kernel now, so the first real event is fast."""
        probe = Engine(self._rules, capacity=4)
        probe.ingest({"type": "enter", "viewer": "warmup", "room": "warmup", "ts": 1.0})
        probe.ingest({"type": "live_start", "room": "warmup", "ts": 1.0})
        probe.ingest_many(b'{"type":"like","viewer":"warmup","room":"warmup","ts":1.5}\n' * SMALL_BATCH)  # NDJSON scanner
        probe.ingest_many(Batch(type=np.zeros(1, np.int64), viewer=np.ones(1, np.int64), room="warmup",
                                ts=np.full(1, 1.6), item=np.ones(1, np.int64), category=np.ones(1, np.int64)))
        probe.advance(2.0)
        for name in self._rules.segments:
            probe.segment_size(name)
        for attr in list(self._rules.profile.values())[:1]:  # set_profile's room.share recount, mix's scans
            probe.set_profile("warmup", **{attr.name: 0 if attr.kind == "num" else attr.values[0]})
            probe.mix(attr.name, "warmup")
        probe.viewer("warmup")
        return self

    # ingestion -------------------------------------------------------------------------------
    def ingest(self, event: Event | dict | bytes | str) -> list[Action]:
        """Apply one event; return the actions of due timers, then of the event's rules.

        Cost: one kernel call, O(rules) plus O(log n) per timer that falls due. Raises
        :class:`EventError` (state untouched) on a malformed event, and
        :class:`ConcurrentUseError` (state untouched) when another thread is inside a call
        of this engine. Where ``segengine.runtime._fastpath`` is built this is one C call
        (``FastPath.ingest``, see :meth:`_bind_kernel`).
        """
        with self._guard:
            return self._ingest(event)

    def _ingest(self, event: Event | dict | bytes | str) -> list[Action]:
        """Apply one event; return the actions of due timers, then of the event's rules.

        Cost: one kernel call, O(rules) plus O(log n) per timer that falls due. Raises
        :class:`EventError` (state untouched) on a malformed event.

        Where ``segengine.runtime._fastpath`` is built, an engine's ``ingest`` is its ``FastPath``'s
        (see :meth:`_bind_kernel`): the common event in one C call, which hands everything
        else (new ids, unusual or malformed events, sweep points, actions) to this method's
        code. Same results either way; this is the code without a C compiler.
        """
        kind = type(event)
        if kind is bytes:  # JSON: decoded with msgspec's typed decoder, then read like an Event
            try:
                event = decode_json(event)
            except EventError:
                self._core.rejected += 1
                raise
            kind = Event
        if kind is dict or kind is Event:
            # fast path, fully inline (a Python call costs ~100 ns here): exact types need no
            # conversion; anything unusual (or a retention sweep point) takes the full path
            if kind is dict:
                try:  # subscripts: ~65 ns less than four .get() calls
                    t, ts, room_id, viewer = event["type"], event["ts"], event["room"], event["viewer"]
                except KeyError:  # a required field is missing (or a room event): the full path
                    t = None
            else:
                t, ts, room_id, viewer = event.type, event.ts, event.room, event.viewer
            # the accepted range (events.TS_MIN <= ts < TS_MAX) as literals: false for NaN and inf too
            if (type(t) is str and type(ts) is float and 0.0 <= ts < 1e11 and type(room_id) is str
                    and (type(viewer) is str or type(viewer) is int)
                    and (code := self._viewer_codes.get(t)) is not None):
                # int viewer ids are looked up by the kernel (BY_VIEWER_ID): no Python dict lookup
                if type(viewer) is int and 0 <= viewer < self._index_len:
                    slot, vid = BY_VIEWER_ID, viewer
                else:
                    slot, vid = self._viewer_ids.get(viewer), 0
                if kind is Event:
                    item, cat, price, amount, text = event.item, event.category, event.price, event.amount, event.text
                elif len(event) == 4:  # the four required keys only (like, heartbeat, enter...): nothing optional
                    item = cat = price = amount = text = None
                else:
                    get = event.get
                    item, cat, price, amount, text = get("item"), get("category"), get("price"), get("amount"), get("text")
                # prices and amounts within events.NUM_MAX (literals); a text must encode (isascii:
                # a flag read; anything else is judged by validate())
                if ((item is None or type(item) is str) and (cat is None or type(cat) is str)
                        and (price is None or (type(price) is float and -1e15 < price < 1e15))
                        and (amount is None or (type(amount) is float and -1e15 < amount < 1e15))
                        and (text is None or (type(text) is str and text.isascii()))):
                    room = self._room_ids.get(room_id)
                    item_id = self._string_ids.get("" if item is None else item)
                    cat_code = 0 if cat is None else self._cat_codes.get(cat, -1)
                    text_value = -1 if self._text_cache is None else self._text_cache.get("" if text is None else text)
                    if (room is None or slot is None or item_id is None or self._texts_interned
                            or text_value is None or ts >= self._retention.due):
                        # a string not in the id maps (those were checked when added) must encode:
                        # ASCII does; anything else falls through to validate(), which judges it
                        if ((slot is not None or type(viewer) is int or viewer.isascii())
                                and (room is not None or room_id.isascii())
                                and (item_id is not None or item is None or item.isascii())
                                and (cat_code >= 0 or cat.isascii())):
                            return self._ingest_one(t, viewer, room_id, ts, item, cat, price, amount, text, event)
                    elif cat_code >= 0 or cat.isascii():  # an undeclared category must encode too
                        fprice = _NAN if price is None else price
                        famount = _NAN if amount is None else amount
                        pending = self._k_event(self._store.tab_addr, slot, vid, room, code, ts, item_id, cat_code,
                                                fprice, famount, text_value, 0)
                        if not pending:
                            return []
                        if pending == UNKNOWN_VIEWER:
                            return self._ingest_one(t, viewer, room_id, ts, item, cat, price, amount, text, event)
                        return self._finish(pending, [], event, slot, vid, room, code, ts, item_id, cat_code, fprice,
                                            famount, text_value)
        try:
            ev = validate(event, self._types, self._room_types)
        except EventError:
            self._core.rejected += 1
            raise
        return self._ingest_one(ev.type, ev.viewer, ev.room, ev.ts, ev.item, ev.category, ev.price, ev.amount, ev.text, ev)

    def _ingest_one(self, t, viewer, room_id, ts, item, cat, price, amount, text, source) -> list[Action]:
        """Apply checked fields; ``source`` is the event as given (for ``{event.FIELD}`` placeholders)."""
        actions: list[Action] = []
        if ts >= self._retention.due:  # a sweep point passed: fire timers up to it, forget the expired
            self._retention.step(self._core, ts, actions)
        room = self._rooms.ids.get(room_id)
        if room is None:
            room = self._room_slot(room_id)
        code = self._codes[t]
        if code in self._room_codes:
            slot, vid, item_id, cat_code, text_id = -1, 0, -1, 0, -1
        else:
            if type(viewer) is int and 0 <= viewer < self._index_len:
                slot, vid = BY_VIEWER_ID, viewer  # looked up by the kernel (UNKNOWN_VIEWER if new)
            else:
                slot, vid = self._viewers.ids.get(viewer), 0
                if slot is None:
                    slot = self._viewer_slot(viewer)
            item_id = self._string_ids.get("" if item is None else item)
            if item_id is None:
                item_id = self._intern("" if item is None else item)  # missing reads as ""
            cat_code = 0 if cat is None else self._cat_codes.get(cat, -1)
            # text is only compared, never stored: look it up without interning (an unseen text, -2, equals no literal)
            if self._text is not None:  # predicate bits (and the id): once per distinct text, cached
                text_id = self._text.value(text)
            else:
                text_id = self._string_ids.get("" if text is None else text, -2) if self._uses_text else -1
        price = _NAN if price is None else price
        amount = _NAN if amount is None else amount
        pending = self._k_event(self._store.tab_addr, slot, vid, room, code, ts, item_id, cat_code, price, amount, text_id, 0)
        if pending == UNKNOWN_VIEWER:  # a new viewer (nothing was changed): intern it, then apply
            slot, vid = self._viewer_slot(viewer), 0
            pending = self._k_event(self._store.tab_addr, slot, vid, room, code, ts, item_id, cat_code, price, amount, text_id, 0)
        if not pending:
            return actions
        return self._finish(pending, actions, source, slot, vid, room, code, ts, item_id, cat_code, price, amount, text_id)

    def _finish(self, pending: int, actions: list[Action], source, *args) -> list[Action]:
        """Build the actions of an ingest whose kernel call reported output (or no room: -1)."""
        events = (source,)
        while pending < 0:
            self._drain(events, actions)
            self._store.make_room()
            pending = self._k_event(self._store.tab_addr, *args, 0)
        if pending:
            self._drain(events, actions)
        return actions

    @exclusive
    def ingest_many(self, batch: Iterable[Event | dict] | bytes | str | Batch, errors: str = "raise") -> list[Action]:
        """Apply a batch in order, in one kernel call; same actions as ingesting the events one by one.

        ``batch`` is a sequence of events (Event, dict or JSON bytes), NDJSON bytes, or a
        columnar :class:`Batch`. A list or NDJSON of fewer than ``SMALL_BATCH`` (64) events
        is applied one by one: a batch call's fixed cost (~150 us) would exceed it. ``errors="raise"``: the events before the first bad one are
        applied, then :class:`EventError` is raised with its ``index`` (and the applied part's
        actions on ``err.actions``). ``errors="skip"``: bad events are counted as rejected in
        :meth:`stats` and the rest are applied.
        """
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
        if isinstance(batch, Batch):
            return self._run_batch(batch, errors)
        if isinstance(batch, (bytes, bytearray, memoryview, str)):
            data = batch.encode() if isinstance(batch, str) else bytes(batch)
            if data[:3] == UTF8_BOM:  # a byte order mark opening the input: ignored on every NDJSON path
                data = data[3:]
            if data.count(b"\n") >= SMALL_BATCH:
                scanned = scan_ndjson(data, self._rules.event_types, self._room_types, self._category_names)
                # every line valid: straight from the bytes to columns (categories the rules never
                # name are kept as codes only, so a rule that shows {event.category} takes the decoder path)
                if scanned is not None and not (self._shows_category and (scanned.category < 0).any()):
                    return self._run_batch(Batch.from_scanned(scanned, self._category_names), errors)
                try:
                    events = decode_ndjson(data, fallback=False)
                except EventError:
                    events = None  # some line does not decode: go line by line to find and locate it
                if events is not None:
                    try:
                        return self._run_batch(Batch.from_events(events, self._codes), errors)
                    except EventError as err:  # the types became codes: name the bad one as check() does
                        if err.field != "type" or err.index is None:
                            raise
                        named = EventError(type_problem(events[err.index].type, self._types), "type", err.index)
                        named.actions = err.actions  # type: ignore[attr-defined]
                        raise named from None
            items: Iterable[Any] = (line for line in data.split(b"\n") if line.strip())
        else:
            items = batch
        events: list[Event] = []
        failure: EventError | None = None
        for index, raw in enumerate(items):
            try:
                events.append(validate(raw, self._types, self._room_types))
            except EventError as err:
                self._core.rejected += 1
                if errors == "raise":
                    failure = err.at_index(index)
                    break
        actions = self._run_events(events)
        if failure is not None:
            failure.actions = actions  # type: ignore[attr-defined]
            raise failure
        return actions

    def _run_events(self, events: list[Event]) -> list[Action]:
        """Apply checked events: one kernel call for a batch, one by one below SMALL_BATCH."""
        if len(events) >= SMALL_BATCH:
            return self._run_batch(Batch.from_events(events, self._codes), "raise")
        actions: list[Action] = []
        ingest = self.ingest  # the C fast path where it is built (checked events pass its checks)
        for ev in events:
            actions += ingest(ev)
        return actions

    def _run_batch(self, batch: Batch, errors: str) -> list[Action]:
        """Validate columns, intern ids per distinct value, then one kernel call per buffer-full."""
        codes = self._type_codes(batch.type)
        if batch.checked:  # its decoder validated every row
            bad, (row, field, message) = None, (-1, "", "")
        else:
            bad, (row, field, message) = validity(batch, codes, self._room_code_array)
        failure = None
        if row >= 0:
            if errors == "skip":
                self._core.rejected += int(bad.sum())
                batch, codes = batch.take(~bad), codes[~bad]
            else:
                self._core.rejected += 1
                if field == "type" and batch.type.dtype.kind not in "iu":  # names, not codes: say which
                    message = type_problem(batch.value("type", row), self._types)
                failure = EventError(message, field, row)
                batch, codes = batch.take(np.arange(row)), codes[:row]
        actions: list[Action] = []
        if len(batch):
            self._run_segments(batch, codes, actions)
        if failure is not None:
            failure.actions = actions  # type: ignore[attr-defined]
            raise failure
        return actions

    def _run_segments(self, batch: Batch, codes: np.ndarray, actions: list[Action]) -> None:
        """Split the batch where it passes a retention sweep point (as one-by-one ingestion would
        sweep there); each segment interns its ids after the sweep before it."""
        ts, n, start = batch.ts, len(batch), 0
        while start < n:
            if ts[start] >= self._retention.due:
                self._retention.step(self._core, float(ts[start]), actions)
            later = np.flatnonzero(ts[start + 1:] >= self._retention.due)
            stop = n if later.size == 0 else start + 1 + int(later[0])
            whole = start == 0 and stop == n
            self._run_columns(batch if whole else batch.take(np.arange(start, stop)), codes[start:stop], actions)
            start = stop

    def _run_columns(self, batch: Batch, codes: np.ndarray, actions: list[Action]) -> None:
        n = len(batch)
        if batch.room_scalar is not None:
            rooms = np.full(n, self._room_slot(batch.room_scalar), np.int64)
        else:
            rooms = self._intern_column(batch.room, self._rooms, self._store.ensure_rooms)
        is_viewer = (codes != self._room_codes_pair[0]) & (codes != self._room_codes_pair[1])
        if len(self._room_code_array) > 2:  # [engine] room_types
            is_viewer &= ~np.isin(codes, self._room_code_array)
        if is_viewer.all():
            slots = self._intern_column(batch.viewer, self._viewers, self._store.ensure_viewers)
        else:
            slots = np.full(n, -1, np.int64)
            slots[is_viewer] = self._intern_column(batch.viewer[is_viewer], self._viewers, self._store.ensure_viewers)
        items = self._item_slots(batch.item, n)
        cats = self._category_codes(batch.category, n)
        # texts are only compared, never stored: looked up, not interned (unseen: -2, equals no literal)
        if self._text is not None:  # predicate bits: each distinct text once
            texts = self._text.column(batch.text, n, _blank)
        else:
            texts = self._text_ids(batch.text, n) if self._uses_text else np.full(n, -1, np.int64)
        by_field = {"viewer": slots, "room": rooms, "type": codes.astype(np.int64, copy=False), "ts": batch.ts,
                    "item": items, "category": cats, "price": batch.price, "amount": batch.amount, "text": texts}
        cols = [by_field[c.field] for c in BATCH_ROW]  # ingest_batch's columns, in the schema's order
        view = BatchView(batch, self._rules.categories)
        start = 0
        store = self._store
        while True:
            start = self._mod.ingest_batch(store.tab, *cols, start)
            if store.META[0, META_OUT_N]:
                self._drain(view, actions)
            if start >= n:
                return
            store.make_room()

    def _item_slots(self, col: np.ndarray | Coded | None, n: int) -> np.ndarray:
        """String slots of the item column; an absent item reads as "" (as in single events)."""
        if col is None:
            return np.full(n, self._intern(""), np.int64)
        if isinstance(col, Coded) or col.dtype.kind in "iu":
            if not isinstance(col, Coded):  # the common case, every id seen before: one pass
                out = np.empty(n, np.int64)
                if dense_slots(col.astype(np.int64, copy=False), self._strings.index, self._intern(""), out):
                    return out
            absent = (col.codes if isinstance(col, Coded) else col) < 0
            if absent.any():
                out = np.empty(n, np.int64)
                out[absent] = self._intern("")
                out[~absent] = self._intern_column(col[~absent], self._strings, None)
                return out
            return self._intern_column(col, self._strings, None)
        return self._intern_column(_blank(col), self._strings, None)

    def _text_ids(self, col: np.ndarray | Coded | None, n: int) -> np.ndarray:
        blank = self._string_ids.get("", -2)
        if col is None:
            return np.full(n, blank, np.int64)
        if isinstance(col, Coded):
            table = lookup_all(self._string_ids, col.uniques, -2)
            return np.append(table, blank)[np.where(col.codes >= 0, col.codes, -1)]
        return codes_of(_blank(col), self._strings.ids, -2)[0]

    def _category_codes(self, col: np.ndarray | Coded | None, n: int) -> np.ndarray:
        """Kernel category codes (Layout.category_names): a name the rules know -> index + 1, absent
        or "" -> 0, any other string -> -1; int codes index the declared categories (vectorized)."""
        if col is None:
            return np.zeros(n, np.int64)
        if isinstance(col, Coded):
            table = lookup_all(self._cat_codes_none, col.uniques, -1)
            return np.append(table, 0)[np.where(col.codes >= 0, col.codes, -1)]
        if col.dtype.kind in "iu":  # codes: index into rules.categories, negative = absent
            out = np.empty(n, np.int64)
            category_codes(col.astype(np.int64, copy=False), len(self._rules.categories), out)
            return out
        if col.dtype.kind == "U" and self._category_names:
            declared = np.array(self._category_names)
            order = np.argsort(declared)
            pos = np.clip(np.searchsorted(declared[order], col), 0, len(declared) - 1)
            hit = declared[order][pos] == col
            return np.where(hit, order[pos] + 1, np.where(col == "", 0, -1)).astype(np.int64)
        codes, _, _ = codes_of(col, self._cat_codes_none)
        return codes

    def _type_codes(self, types: np.ndarray) -> np.ndarray:
        if types.dtype.kind in "iu":
            codes = types.astype(np.int64)
            codes[(codes < 0) | (codes >= len(self._codes))] = -1
            return codes
        if types.dtype == object:  # any value, hashable or not: only a str can be a type
            get = self._codes.get
            return np.fromiter((get(t, -1) if isinstance(t, str) else -1 for t in types), np.int64, len(types))
        codes, _, _ = codes_of(types, self._codes)
        return codes

    @staticmethod
    def _intern_column(values: np.ndarray, interner: Interner, ensure) -> np.ndarray:
        """Slots for a column; unseen values are interned in order of first appearance."""
        if isinstance(values, Coded):  # one lookup per distinct value, then a gather
            uniques, codes = values.uniques, values.codes
            table = lookup_all(interner.ids, uniques, -1)
            slots = table[codes]
            unseen = slots < 0
            if unseen.any():
                for code in first_seen(codes[unseen]).tolist():  # first appearance order
                    table[code] = interner.intern(_py(uniques[code]))
                if ensure is not None:
                    ensure(len(interner))
                slots = table[codes]
            return slots
        if values.dtype.kind in "iu":
            ids = values.astype(np.int64, copy=False)
            slots = interner.int_slots(ids)
            if slots is not None:
                unseen = slots < 0
                if not unseen.any():
                    return slots
                fresh = ids[unseen]
                if len(fresh) <= 64:  # a few new ids (small batches): numpy's per-call cost would dominate
                    for key in dict.fromkeys(fresh.tolist()):  # first appearance order
                        interner.intern(key)
                else:
                    interner.intern_many_ints(first_seen(fresh))
                if ensure is not None:
                    ensure(len(interner))
                return interner.int_slots(ids)
        slots, uniques, inverse = codes_of(values, interner.ids)
        if (slots < 0).any():
            fresh = np.fromiter((interner.intern(_py(u)) for u in uniques), np.int64, len(uniques))
            slots = fresh[inverse]
            if ensure is not None:
                ensure(len(interner))
        return slots

    @exclusive
    def advance(self, now: float) -> list[Action]:
        """Fire every timer due at or before ``now`` (event time, seconds). Cost: O(due timers x log n).

        ``now`` is in the range of event times (``0 <= now < 1e11``); outside it: ``ValueError``.
        """
        if isinstance(now, bool) or not isinstance(now, (int, float)) or not TS_MIN <= now < TS_MAX:
            raise ValueError(f"advance() needs a time in seconds in [0, 1e11) (unix seconds, as event times), "
                             f"got {show_value(now)}")
        now = float(now)
        actions: list[Action] = []
        if now >= self._retention.due:
            self._retention.step(self._core, now, actions)
        self._core.fire_due(int(round(now * 1e6)), actions)
        return actions

    # profiles and queries -------------------------------------------------------------------
    @exclusive
    def set_profile(self, viewer: str | int, **attrs: Any) -> None:
        """Set profile attributes declared in ``[profile]``; checked before anything changes."""
        if isinstance(viewer, bool) or not isinstance(viewer, (str, int)):
            raise EventError(f"Expected `str | int`, got `{type(viewer).__name__}`", "viewer")
        if isinstance(viewer, str) and not encodable(viewer):
            raise EventError("Expected a string encodable as UTF-8, got one with a lone surrogate", "viewer")
        writes = []
        for name, value in attrs.items():
            if name in ("tz", "utc_offset"):  # built-in: the viewer's time zone (features/localtime.py)
                writes += self._zone_writes(name, value)
                continue
            attr = self._rules.profile.get(name)
            if attr is None:
                raise ValueError(f"unknown profile attribute {name!r}{did_you_mean(name, self._rules.profile)}")
            matrix, col = self._compiled.layout.profile_cols[name]
            if attr.kind == "num":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not -_FMAX <= value <= _FMAX:
                    raise ValueError(f"profile attribute {name!r} takes a finite number, got {show_value(value)}")
                writes.append((matrix, col, float(value)))
            else:
                if value not in attr.values and value != "":
                    raise ValueError(f"{value!r} is not a value of {name!r}{did_you_mean(str(value), attr.values)}"
                                     f" (values: {', '.join(attr.values)})")
                writes.append((matrix, col, attr.values.index(value) + 1 if value else 0))
        slot = self._viewer_slot(viewer)
        for matrix, col, value in writes:
            {"vf": self._store.VF, "vn": self._store.VN, "vi": self._store.VI}[matrix][slot, col] = value
        if self._shares:  # room.share of a target counts this viewer by its profile: recount it now
            self._mod.share_update(self._store.tab, slot, self._now_us())

    def _zone_writes(self, name: str, value: Any) -> list[tuple[str, int, int]]:
        """``tz`` (an IANA name, "" for none) or ``utc_offset`` (minutes east of UTC): the writes, checked."""
        vi = self._compiled.layout.vi
        row, fixed = vi.index("tz_row"), vi.index("utc_off")
        if name == "tz":
            if not isinstance(value, str):
                raise ValueError(f"profile attribute 'tz' takes an IANA time zone name, got {show_value(value)}")
            if value == "":
                return [("vi", row, 0)]
            return [("vi", row, self._core.zone_row(value) + 1)]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1440 < value < 1440:
            raise ValueError(f"profile attribute 'utc_offset' takes minutes east of UTC (-1439 to 1439), got {show_value(value)}")
        return [("vi", row, -1), ("vi", fixed, int(round(value * 60_000_000)))]

    def _now_us(self) -> int:
        return self._core.now_us()

    @exclusive
    def segment_size(self, name: str, room: str | None = None) -> int:
        """Viewers (that sent an accepted event) in segment ``name`` at the engine's latest time. O(viewers)."""
        return self._scan_segment(name, room, _NO_SLOTS)[0]

    @exclusive
    def segment_members(self, name: str, room: str | None = None) -> list[str | int]:
        """The ids of the viewers :meth:`segment_size` counts (in slot order: first seen first,
        a slot reused after retention takes its place). O(viewers), in one kernel call."""
        found, slots = self._scan_segment(name, room, np.empty(len(self._viewers), np.int64))
        keys = self._viewers.keys
        return [keys[slot] for slot in slots[:found].tolist()]

    def _scan_segment(self, name: str, room: str | None, slots: np.ndarray) -> tuple[int, np.ndarray]:
        """How many viewers are in segment ``name`` (in ``room``, or any), the first ``len(slots)``
        of their slots written to ``slots``."""
        seg = self._segment_index.get(name)
        if seg is None:
            raise KeyError(f"unknown segment {name!r}{did_you_mean(name, self._segment_index)}")
        room_slot = -1 if room is None else self._rooms.get(room)
        if room_slot < 0 and room is not None:
            return 0, slots
        n = len(self._viewers)
        return int(self._mod.segment_count(self._store.tab, seg, self._now_us(), room_slot, n, slots)), slots

    @exclusive
    def room(self, room: str, *, segments: bool = True) -> RoomMetrics:
        """The room's metrics for the stream so far (docs/rooms.md): O(1) for the counters, plus one
        scan of the viewers per declared segment for ``segments`` while anyone is present
        (``segments=False`` skips it and leaves ``segments`` empty). ``RuntimeError`` when the
        rules turn the room metrics off (``[engine] room_metrics = false``)."""
        self._needs_room_metrics()
        return _roommetrics.room_metrics(self._core, room, self._present_in_segment if segments else None)

    @exclusive
    def room_slots(self, room: str, slot: str | float = "5m") -> list[RoomMetrics]:
        """The room's metrics per slot of stream time (a multiple of 5 minutes; the last 24 hours)."""
        self._needs_room_metrics()
        return _roommetrics.room_slots(self._core, room, slot)

    def _needs_room_metrics(self) -> None:
        if not self._rules.room_metrics:
            raise RuntimeError(f"{self._rules.filename}: the room metrics are off ([engine] room_metrics = false); "
                               "remove that line to keep them")

    def _present_in_segment(self, name: str, room_slot: int) -> int:
        n = len(self._viewers)
        return int(self._mod.segment_count(self._store.tab, self._segment_index[name], self._now_us(), -2 - room_slot, n,
                                           _NO_SLOTS))

    @exclusive
    def viewer(self, viewer: str | int) -> dict[str, Any]:
        """Features, profile, tags and segments of one viewer, at the engine's latest time."""
        slot = self._viewers.get(viewer)
        if slot < 0:
            raise KeyError(f"unknown viewer {viewer!r}")
        gen = self._compiled.generated
        out = np.zeros(len(gen.readouts), np.float64)
        self._mod.readout(self._store.tab, slot, self._now_us(), out)
        result: dict[str, Any] = {"viewer": viewer, "room": None, "features": {}, "profile": {}, "tags": [], "segments": {}}
        room = int(self._store.VI[slot, self._compiled.layout.vi.index("room")])
        result["room"] = self._rooms.keys[room] if room >= 0 else None
        for readout, value in zip(gen.readouts, out.tolist()):
            group = {"feature": "features", "profile": "profile", "segment": "segments"}[readout.group]
            result[group][readout.label] = self._core.decode(readout.kind, value)
        lay = self._compiled.layout
        result["tags"] = [t for t in lay.tags if self._store.VI[slot, lay.tag_bit(t)[0]] & lay.tag_bit(t)[1]]
        return result

    @exclusive
    def explain(self, viewer: str | int, rule: str) -> Explanation:
        """Why ``rule`` would or would not fire for ``viewer`` now (the engine's latest time).

        The condition as a tree with every sub-expression's value, whether the rule would
        fire, what would suppress it (once, cooldown, budget) and when it last fired for
        this viewer. ``str()`` of the result is a readable report; it is a ``msgspec.Struct``,
        so ``msgspec.json.encode`` gives JSON. Changes nothing. Cost: one kernel call (the
        first call per rules file compiles it, or loads it from the disk cache).
        Raises ``KeyError`` for an unknown viewer or rule. See docs/operations.md (Explain).
        """
        return explain_rule(self._core, viewer, rule)

    @exclusive
    def explain_room(self, room: str, rule: str) -> _room.RoomExplanation:
        """Why room rule ``rule`` (``[[room_rules]]``) would or would not fire in ``room`` now.

        The condition's value and each room name's value, whether it held at the last
        evaluation (a firing needs a rising edge), the cooldown, and the room's firing counts.
        ``str()`` is a readable report. Changes nothing. Raises ``KeyError`` for an unknown
        room or room rule. See docs/api.md (Room rules).
        """
        return _room.explain_room(self._core, room, rule)

    @exclusive
    def mix(self, attribute: str, room: str, bins: list[float] | None = None) -> dict[Any, int]:
        """The present audience of ``room`` over profile attribute ``attribute``, in one scan.

        A category attribute: ``{value: viewers, ..., "missing": viewers without it}``. A number
        attribute with ``bins`` (increasing edges, e.g. ``[0, 18, 25, 35, 50]``):
        ``{"<0": n, "0-18": n, "18-25": n, "25-35": n, "35-50": n, ">=50": n}`` (a bin holds
        ``lo <= value < hi``); without ``bins``: ``{value: viewers}`` per distinct value. An unset
        number reads 0, as in rules. An unknown room gives zero counts. Cost: O(viewers), one
        Numba scan (about 4 ms per million viewer rows). Raises ``KeyError`` for an unknown
        attribute. See docs/api.md (Audience mix).
        """
        return _room.mix(self._core, attribute, room, bins)

    @exclusive
    def reload(self, rules: str | Path, *, warmup: bool = True) -> bool:
        """Run new rules from now on, keeping every viewer's and room's state.

        ``rules`` is a path or TOML text. The new rules are loaded, checked and compiled
        (and their kernels warmed up unless ``warmup=False``) before anything changes: a
        bad file raises :class:`RulesError` and the old rules keep running. The same text
        as the running rules returns ``False`` at once. State is matched by feature, rule
        and tag name; new features start empty (docs/operations.md, Reload).
        """
        return reload_rules(self._core, rules, warmup=self._warm_up if warmup else None)

    def _warm_up(self, rules: RuleSet) -> None:
        """Compile (or load) the kernels of ``rules`` on a throw-away engine."""
        type(self)(rules, capacity=4).warmup()

    @exclusive
    def outcomes(self, rule: str, room: str | None = None) -> Outcomes:
        """Does ``rule`` work? Its firings, its held-out firings, their conversions and the uplift with
        its 95 % interval (Newcombe), in ``room`` or over every live room. Cost: O(rooms).

        The rule must have a ``holdout`` or an ``outcome`` key (else ``ValueError``; an unknown rule:
        ``KeyError``). See docs/rules.md, "Holdouts and outcomes".
        """
        return _outcomes.outcomes(self._core, rule, room)

    @exclusive
    def stats(self) -> dict[str, Any]:
        """Counters: events, late, rejected, timers, fired and suppressed per rule, viewers, rooms, memory."""
        meta = self._store.META[0]
        n = len(self._rules.rules)
        fired = {r.name: int(meta[fired_index(i)]) for i, r in enumerate(self._rules.rules)}
        suppressed = {r.name: suppressed_counts(meta, n, i) for i, r in enumerate(self._rules.rules)}
        room_fired, room_suppressed = _room.room_rule_counts(self._core)  # [[room_rules]], over every room
        fired.update(room_fired)
        suppressed.update(room_suppressed)
        seen = int(np.count_nonzero(self._store.VI[: len(self._viewers), self._compiled.layout.vi.index("flags")] & FLAG_SEEN))
        return {
            "events": int(meta[META_EVENTS]),
            "late": int(meta[META_LATE]),
            "rejected": self._core.rejected,
            "timers": int(meta[META_TIMERS]),
            "fired": fired,
            "suppressed": suppressed,
            "viewers": seen,
            "rooms": self._rooms.live,
            "memory": self._store.nbytes,
            "bytes_per_viewer": self._compiled.layout.bytes_per_viewer,
            "keyed_evictions": self._keyed_evictions(),
            **self._retention.stats(self._core),  # live_slots, free_slots, slot_capacity, expired_viewers, expired_rooms
        }

    def _keyed_evictions(self) -> int:
        """Keys evicted for newer ones by keyed counters (features/keyed.py), over every room."""
        ri = self._compiled.layout.ri
        if "keyed_evictions" not in ri:
            return 0
        return int(self._store.RI[: len(self._rooms), ri.index("keyed_evictions")].sum())


_NO_SLOTS = np.empty(0, np.int64)  # segment_size counts without listing


def _blank(col: np.ndarray) -> np.ndarray:
    """A string column with absent values read as "" (as single events do)."""
    if col.dtype == object:
        out = col.copy()
        out[np.equal(out, None)] = ""
        return out
    return col
