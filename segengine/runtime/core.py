"""``EngineCore``: the running parts of an engine behind one small public API.

An engine is a compiled rules file (:class:`~segengine.compiler.CompiledRules`), the
state arrays (:class:`~segengine.runtime.store.Store`), three id maps
(:class:`~segengine.runtime.interning.Interner`: viewers, rooms, strings), the sweep
schedule (:class:`~segengine.ops.retention.Retention`) and the firing log
(:class:`~segengine.ops.explain.FiringLog`). The core holds them and does what needs
more than one of them: hand out slots (growing the arrays), turn the kernels' output
rows into actions (:meth:`EngineCore.drain`, the only place actions are built), decode
kernel values (:meth:`EngineCore.decode`), fire due timers (:meth:`EngineCore.fire_due`),
swap in new rules (:meth:`EngineCore.swap`) and save or load its parts
(:meth:`EngineCore.save_parts`, :meth:`EngineCore.load_parts`).

Who uses it: :class:`~segengine.engine.Engine` (the public facade: event validation and
encoding, the fast path, queries) and the operations in ``segengine/ops/`` (snapshot,
reload, explain, retention), which use only the public names below and those of each
part. The facade keeps direct references to the parts its hot path reads; it learns of
a swap through :attr:`EngineCore.on_swap` and of a new viewer index through
:attr:`EngineCore.on_index`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..compiler import CompiledRules, compile_rules
from ..kernels.primitives import DONE, META_NOW, META_OUT_N, MISSING
from ..ops.explain import FiringLog
from ..ops.retention import Retention
from ..rules.load import RuleSet
from ..schema.batch import BatchView
from ..schema.events import Action
from .actions import ParamsTemplate
from ..guards import holdout
from .interning import Interner
from .store import Store
from .zones import Zones

__all__ = ["EngineCore"]

#: Output rows counted per row rather than with one bincount (whose fixed cost is ~1.5 us).
_FEW_ROWS = 16


class EngineCore:
    """Compiled rules, state arrays, id maps, sweep schedule and firing log of one engine.

    Parameters
    ----------
    rules : RuleSet
        Checked rules; compiled here (cached per process and on disk).
    capacity : int
        Viewer rows allocated up front (the arrays grow by doubling).

    Attributes
    ----------
    compiled : CompiledRules
        The running rules' layout, generated source and kernel module.
    store : Store
        The state arrays and the pointer table kernels receive.
    viewers, rooms, strings : Interner
        Id maps: viewer ids, room ids, other strings (items, texts, literals) -> slots.
    retention : Retention
        Sweep schedule and expiry counters.
    firings : FiringLog
        The last firing per (viewer, rule), for ``explain``.
    rejected : int
        Events rejected so far (malformed, or skipped in a batch).
    on_swap : callable or None
        Called with no argument after :meth:`swap` (the facade rebinds its references).
    on_index : callable or None
        Called with the new length whenever the viewer interner replaces its int-id index.
    """

    def __init__(self, rules: RuleSet, *, capacity: int = 1024) -> None:
        self.on_swap: Callable[[], None] | None = None
        self.on_index: Callable[[int], None] | None = None
        self.compiled: CompiledRules = compile_rules(rules)
        self._setup()
        self.viewers: Interner = Interner()
        self.rooms: Interner = Interner()
        self.strings: Interner = Interner()
        self.zones = Zones()  # time zones named by tz profiles and default_tz (runtime/zones.py)
        self.rejected = 0
        self.retention = Retention()
        self.firings = FiringLog()
        gen = self.compiled.generated
        self.store = Store(self.compiled.layout, len(rules.rules), gen.out_width, len(gen.literals), viewers=capacity)
        self.viewers.on_index = self._viewer_index_changed  # kernels look int viewer ids up themselves
        self._viewer_index_changed(self.viewers.index)
        self._holdouts()
        self._bind_literals()

    # the running rules -----------------------------------------------------------------
    @property
    def rules(self) -> RuleSet:
        return self.compiled.rules

    @property
    def module(self) -> Any:
        """The generated kernel module (``ingest_batch``, ``advance``, ``readout``, ``explain_values``...)."""
        return self.compiled.module

    def _setup(self) -> None:
        """What drain and decode need of the rules, decided once per rules."""
        rs, compiled = self.compiled.rules, self.compiled
        self.category_names = compiled.layout.category_names
        kinds = compiled.generated.placeholder_kinds
        self._plans = []
        for r in rs.rules:
            template = ParamsTemplate(r.params, kinds.get(r.name, []))
            self._plans.append((r.name, r.then[0], tuple(r.then[1:]), r.params, kinds.get(r.name, []),
                                template if template.dynamic else None))
        for r in rs.room_rules:  # output rows N_RULES + j (compiler/roomgen.py); disabled ones never fire
            template = ParamsTemplate(r.params, kinds.get(r.name, []))
            self._plans.append((r.name, r.then[0], tuple(r.then[1:]), r.params, kinds.get(r.name, []),
                                template if template.dynamic else None))
        self._needs_values = any(plan[4] for plan in self._plans)

    def _holdouts(self) -> None:
        """Compute new viewers' holdout membership when interned, if some rule has a holdout (guards/holdout.py)."""
        held = any(r.holdout for r in self.compiled.rules.rules if holdout.tracked(r))
        self.viewers.on_new = (lambda slots, keys: holdout.assign(self, slots, keys)) if held else None

    def _bind_literals(self) -> None:
        """Give each string literal of the rules its id in this engine's interners."""
        for i, (table, text) in enumerate(self.compiled.generated.literals):
            if table == "rooms":
                self.store.LITS[0, i] = self.room_slot(text)
            elif table == "viewers":
                self.store.LITS[0, i] = self.viewer_slot(text)  # no accepted event yet: not counted anywhere
            elif table == "zones":
                self.store.LITS[0, i] = self.zone_row(text)  # [engine] default_tz (features/localtime.py)
            else:
                self.store.LITS[0, i] = self.strings.intern(text)

    def _viewer_index_changed(self, index: np.ndarray) -> None:
        """The viewer interner replaced its int-id index: point the kernels at the new one."""
        self.store.set_viewer_index(index)
        if self.on_index is not None:
            self.on_index(len(index))

    def swap(self, compiled: CompiledRules, store: Store) -> None:
        """Run ``compiled`` on ``store`` from now on (a reload: ``store`` holds the migrated state).

        Rebinds the literals, restarts the sweep schedule (its period follows the rules),
        starts the firing history of removed rules afresh, then calls :attr:`on_swap`.
        The caller recomputes the timers (``segengine.ops.reload.rescan``).
        """
        gone = {r.name for r in self.compiled.rules.rules} - {r.name for r in compiled.rules.rules}
        self.store = store
        store.ZONES = self.zones.table
        store.set_viewer_index(self.viewers.index)
        self.compiled = compiled
        self._setup()
        self._holdouts()
        holdout.assign_all(self)  # the new rules may hold out viewers the old ones did not
        self._bind_literals()
        self.retention.restart()
        self.firings.forget_rules(gone)
        if self.on_swap is not None:
            self.on_swap()

    def zone_row(self, name: str) -> int:
        """The zone table row of ``name`` (added, and the kernels pointed at the new table, when new)."""
        known = name in self.zones.rows
        row = self.zones.row(name)
        if not known:
            self.store.ZONES = self.zones.table
            self.store.refresh()
        return row

    # slots -----------------------------------------------------------------------------
    def viewer_slot(self, viewer: str | int) -> int:
        """The slot of ``viewer``, interned (and the arrays grown) if new."""
        slot = self.viewers.ids.get(viewer)
        if slot is None:
            slot = self.viewers.intern(viewer)
            self.store.ensure_viewers(slot + 1)
        return slot

    def room_slot(self, room: str) -> int:
        """The slot of ``room``, interned (and the arrays grown) if new."""
        slot = self.rooms.ids.get(room)
        if slot is None:
            slot = self.rooms.intern(room)
            self.store.ensure_rooms(slot + 1)
        return slot

    def now_us(self) -> int:
        """The engine's latest time (microseconds; 0 before any event)."""
        now = int(self.store.META[0, META_NOW])
        return 0 if now == MISSING else now

    # timers and actions ----------------------------------------------------------------
    def fire_due(self, until: int, actions: list[Action]) -> None:
        """Fire every timer due at or before ``until`` (microseconds); their actions go to ``actions``."""
        store = self.store
        while self.module.advance(store.tab, until) != DONE:
            self.drain((), actions)
            store.make_room()
        if store.META[0, META_OUT_N]:
            self.drain((), actions)

    def drain(self, events: Sequence[Any] | BatchView, actions: list[Action]) -> None:
        """Turn the kernel's output rows into actions (the only place actions are built).

        ``events[index]`` is the event a row fired on (index -1: a timer); params with
        ``{event.FIELD}`` read the field from it, nothing else touches it.
        """
        store = self.store
        n = int(store.META[0, META_OUT_N])
        out = store.OUTI[:n]
        store.META[0, META_OUT_N] = 0
        if n > _FEW_ROWS and self._columnar(out, actions):
            store.grow_out(n)
            return
        rows = out.tolist()
        values = store.OUTF[:n].tolist() if self._needs_values else None
        viewer_keys, room_keys, plans = self.viewers.keys, self.rooms.keys, self._plans
        fired = []
        add, decode = actions.append, self.decode
        for j, (r, slot, ts_us, index, room) in enumerate(rows):
            name, first, rest, params, kinds, template = plans[r]
            viewer = viewer_keys[slot] if slot >= 0 else ""  # -1: a room rule
            room_name = room_keys[room] if room >= 0 else ""
            ts = ts_us / 1e6
            fired.append((viewer, name, ts))
            # each action owns its params (callers may change them): rendered placeholders, or a
            # copy of the static ones ({} rather than copying an empty dict: ~50 ns less)
            if template is not None:
                own = template.render(decode, kinds, values[j] if kinds else (), events, index)
            else:
                own = params.copy() if params else {}
            add(Action(name, first, viewer, room_name, ts, own))
            for action in rest:
                add(Action(name, action, viewer, room_name, ts, own.copy()))
        counts = None  # single events: FiringLog counts per row (a bincount's fixed cost is ~1.5 us)
        if n > _FEW_ROWS:  # batches: one bincount over the rule column
            totals = np.bincount(out[:, 0], minlength=len(plans)).tolist()
            counts = {plan[0]: k for plan, k in zip(plans, totals) if k}
        self.firings.record_many(fired, counts)
        store.grow_out(n)

    def _columnar(self, out: np.ndarray, actions: list[Action]) -> bool:
        """Many rows of viewer rules with one action and static params (a room-wide trigger's
        thousands of reminders): built column by column, with no Python code per row (~5x
        faster than the row loop). False, having done nothing, when some row needs the loop."""
        plans = self._plans
        rules = out[:, 0]
        totals = np.bincount(rules, minlength=len(plans))
        used = np.flatnonzero(totals).tolist()
        if any(plans[r][2] or plans[r][5] is not None for r in used) or out[:, 1].min() < 0 or out[:, 4].min() < 0:
            return False
        names = [plan[0] for plan in plans]
        rule_list = rules.tolist()
        viewers = list(map(self.viewers.keys.__getitem__, out[:, 1].tolist()))
        rooms = map(self.rooms.keys.__getitem__, out[:, 4].tolist())
        ts = (out[:, 2] / 1e6).tolist()
        rule_names = list(map(names.__getitem__, rule_list))
        firsts = map([plan[1] for plan in plans].__getitem__, rule_list)
        if all(not plans[r][3] for r in used):  # no params: each action gets its own {} (msgspec's default)
            actions.extend(map(Action, rule_names, firsts, viewers, rooms, ts))
        else:
            params = map(dict, map([plan[3] for plan in plans].__getitem__, rule_list))
            actions.extend(map(Action, rule_names, firsts, viewers, rooms, ts, params))
        self.firings.record_many(list(zip(viewers, rule_names, ts)), {names[r]: int(totals[r]) for r in used})
        return True

    def decode(self, kind: str, value: float) -> Any:
        """A kernel value (float64) as Python: ``kind`` is ``num``, ``bool`` or ``str:SPACE``
        (SPACE: category, profile:NAME, type, rooms, viewers, else the string table)."""
        if kind == "num":
            return value
        if kind == "bool":
            return value != 0.0
        code = int(value)
        space = kind[4:]
        if space == "category":
            return self.category_names[code - 1] if code > 0 else ""
        if space.startswith("profile:"):
            values = self.rules.profile[space[8:]].values
            return values[code - 1] if code > 0 else ""
        if space == "type":
            return self.rules.event_types[code] if code >= 0 else ""
        if space == "rooms":
            return self.rooms.keys[code] if code >= 0 else ""
        if space == "viewers":
            return self.viewers.keys[code] if code >= 0 else ""
        return self.strings.keys[code] if 0 <= code < len(self.strings) else ""

    # saving and loading ------------------------------------------------------------------
    def save_parts(self) -> dict[str, Any]:
        """The state of every part but the arrays, as plain data (msgpack-encodable).

        The arrays are the store's (:meth:`Store.arrays`); together they are the whole
        state. :meth:`load_parts` reads this back.
        """
        return {
            "viewers": self.viewers.to_state(),
            "rooms": self.rooms.to_state(),
            "strings": self.strings.to_state(with_slots=False),
            "rejected": self.rejected,
            "retention": self.retention.to_state(),
            "firings": self.firings.to_state(),
            "zones": self.zones.to_state(),
        }

    def load_parts(self, parts: dict[str, Any], arrays: dict[str, np.ndarray], rows: dict[str, int]) -> None:
        """Load what :meth:`save_parts` and :meth:`Store.arrays` saved, into this (fresh) core.

        ``rows``: how many rows of each array were saved (the rest are reset). Raises
        ``KeyError``, ``TypeError`` or ``ValueError`` on inconsistent data; the core is then
        unusable (the caller drops it).
        """
        self.store.load_arrays(arrays, rows)
        self.viewers.load_state(parts["viewers"])
        self.rooms.load_state(parts["rooms"])
        self.strings.load_state(parts["strings"])
        if len(self.viewers) != rows["VI"] or len(self.rooms) != rows["RI"]:
            raise ValueError("id maps and state rows disagree")
        self.rejected = int(parts["rejected"])
        self.retention.load_state(parts["retention"])
        if parts.get("firings") is not None:
            self.firings.load_state(parts["firings"])
        self.zones.load_state(parts.get("zones") or [])
        self.store.ZONES = self.zones.table
        self.store.refresh()
