"""Checked rules + layout -> the source of one Numba module.

The generated module exports (each takes the pointer table ``tab`` of :mod:`..memory`, the
event kernel its address ``tab_addr``, an int a C caller passes as it is):

* ``ingest_event(tab_addr, slot, vid, room, code, ts, item, cat, price, amount, text, index)``
  -- fire due timers, apply one event (slot -1: a room event), evaluate its rules in one
  pass; returns the number of pending output rows, or -1 when the output buffer, heap or
  cart table needs room (drain or grow, then call again: work done is not repeated). Its
  twin ``ingest_event_c`` (the same function under another name), which
  ``CompiledRules.event_cfunc`` compiles to a C function for ``segengine.runtime._fastpath``;
* ``ingest_batch(tab, slots, rooms, codes, ts, ...)`` -- the same over columns, in one call;
* ``advance(tab, until_us)`` -- fire timers due up to ``until_us``;
* ``rescan(tab, now, n)`` -- recompute every viewer's next timer (after a reload);
* ``segment_count(tab, seg, now, room, n)`` and ``readout(tab, slot, now, out)``.

Everything on the event path is generated inline into the entry points (only ``_pass``,
the rule evaluation, is a separate function): Numba re-optimizes every callee at each level
of a call tree, so a flat module compiles about twice as fast.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from .. import features
from ..features import base as feature_base
from ..kernels import primitives
from ..schema.fields import BATCH_ROW, EVENT_ROW
from ..rules import ast
from ..rules.load import Rule, RuleSet
from .layout import Layout, const_name, us
from ..guards import counter_index, fired_index, guards_of, reason_code, used_guards
from .exprgen import CONST, VIEW_LINES, ExprGen, Literals, NEVER, desugar
from ..text.predicates import bit_name as text_bit
from ..text.predicates import constants as text_constants
from ..text.predicates import intent_of
from . import roomgen


def views_for(body: str) -> str:
    """The matrix-view lines a function body uses (fewer lines to type: Numba compiles faster),
    as few statements as fit a line: ``VI, VF, VN, RI = mat_i64(tab, M_VI), ...``."""
    used = [line.split(" = ") for line in VIEW_LINES if re.search(rf"\b{line.split(' =')[0]}\b", body)]
    lines: list[list[list[str]]] = []
    for pair in used:
        if not lines or len(lines[-1]) == 4:
            lines.append([])
        lines[-1].append(pair)
    return "\n".join(f"    {', '.join(p[0] for p in group)} = {', '.join(p[1] for p in group)}" for group in lines)


@dataclass
class Readout:
    """One value ``viewer()`` reports: its label, kind ("num", "bool", "str:SPACE") and origin."""

    label: str
    kind: str
    group: str  # "feature", "profile", "segment"


@dataclass
class Generated:
    source: str
    literals: list[tuple[str, str]]
    placeholder_kinds: dict[str, list[tuple[str, str]]]  # rule -> [(placeholder text, kind)] in OUTF order
    readouts: list[Readout]
    segments: list[str]
    out_width: int
    rule_order: list[str] = field(default_factory=list)
    constants: dict[str, int] = field(default_factory=dict)  # every constant the source may name
    constant_lines: str = ""  # the definitions in the source: those it names


#: The header line the module's imports of kernel helpers and its constants follow.
CONSTANTS_HEADER = "from segengine.config import BATCH_FLAGS, KERNEL_FLAGS"



def _primitives() -> list[str]:
    """What a generated module may import from :mod:`segengine.kernels.primitives`: its constants
    and its own functions, in the order it defines them."""
    out = []
    for name, obj in vars(primitives).items():
        if name.startswith("_") or isinstance(obj, type(primitives)):
            continue
        if isinstance(obj, (int, float, np.generic)) or getattr(obj, "__module__", "") == primitives.__name__:
            out.append(name)
    return out


def define_constants(gen: Generated) -> None:
    """After :data:`CONSTANTS_HEADER`: import the kernel helpers ``gen.source`` uses and define the
    constants it names (again after an addition to the source). Numba reads module globals as
    compile-time constants: a name costs nothing over the number."""
    used = set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", re.sub(r"(^|\s)#[^\n]*", "", gen.source)))
    imports, line = [], "from segengine.kernels.primitives import ("
    for name in (n for n in _primitives() if n in used):
        if len(line) + len(name) > 112:
            imports.append(line.rstrip())
            line = "    "
        line += f"{name}, "
    imports.append(line.rstrip(", ") + ")")
    lines = "".join(f"\n{line}" for line in imports)
    lines += "\n# the rules' event type codes, flag bits and state columns (see segengine.compiler.layout)"
    lines += "".join(f"\n{name} = {value}" for name, value in gen.constants.items() if name in used)
    at = gen.source.index(CONSTANTS_HEADER) + len(CONSTANTS_HEADER)
    gen.source = gen.source[:at] + lines + gen.source[at + len(gen.constant_lines):]
    gen.constant_lines = lines


def _indent(lines: list[str], n: int) -> list[str]:
    pad = "    " * n
    return [pad + line for line in lines]


class ModuleGen:
    def __init__(self, rs: RuleSet, lay: Layout):
        self.rs = rs
        self.lay = lay
        self.lits = Literals()
        self.codes = {name: i for i, name in enumerate(rs.event_types)}
        self.type_names: dict[str, str] = {}
        for name, code in self.codes.items():
            const = const_name("T", name)
            self.type_names[name] = f"{const}_{code}" if const in self.type_names.values() or const == "T" else const
        self.rules = [r for r in rs.rules if r.enabled]
        self.rule_index = {r.name: i for i, r in enumerate(rs.rules)}
        self.placeholder_kinds: dict[str, list[tuple[str, str]]] = {}

    def vi(self, name: str) -> str:
        """The named constant of VI column ``name``."""
        return self.lay.const("vi", name)

    def col(self, matrix: str, col: int | str) -> str:
        """The named constant of a column (an index or a name) of ``matrix``."""
        return self.lay.const(matrix, col)

    def code(self, event_type: str) -> str:
        """The named constant of an event type's code: ``T_PAY``."""
        return self.type_names[event_type]

    # -------------------------------------------------------------------------------
    def generate(self) -> Generated:
        parts = [self.header(), self.pass_fn(), self.due_fn(), self.entry_fns(),
                 self.segment_fn(), self.readout_fn(), *roomgen.functions(self)]
        out_width = max([1, *(len(v) for v in self.placeholder_kinds.values())])
        src = "\n\n".join(parts).replace("OUT_WIDTH_PLACEHOLDER", str(out_width))
        gen = Generated(src, list(self.lits.items), self.placeholder_kinds, self.readouts, list(self.rs.segments),
                        out_width, [r.name for r in self.rs.evaluation_order()], self.constants())
        define_constants(gen)
        return gen

    def constants(self) -> dict[str, int]:
        """Every constant the module may name: event type codes, flag bits, columns."""
        out = {const: self.codes[name] for name, const in self.type_names.items()}
        out.update(text_constants(self.rs))  # text predicate bits (segengine.text)
        out.update((name, getattr(feature_base, name)) for name in feature_base.__all__ if name.startswith("FLAG_"))
        for matrix in ("vi", "vf", "vn", "ri"):
            out.update((const, col) for col, const in self.lay.constants(matrix).items())
        return out

    def header(self) -> str:
        rs = self.rs
        hl_us = us(rs.interest_half_life)
        return "\n".join([
            '"""Generated by segengine from a rules file. Do not edit: regenerated when the rules change."""',
            "import numpy as np",
            "from numba import njit",
            CONSTANTS_HEADER,
            *self.guard_imports(),
            "",
            f"IDLE_US = {us(rs.idle_timeout)}",
            f"HALF_LIFE_US = {float(hl_us)!r}",
            f"LAMBDA = {math.log(2) / rs.interest_half_life!r}",
            f"N_RULES = {len(rs.rules)}",
            "OUT_WIDTH = OUT_WIDTH_PLACEHOLDER",
            "PREFETCH_AHEAD = 8  # batch: start loading the rows of the event this far ahead",
        ])

    def guard_imports(self) -> list[str]:
        """Import the kernel helpers of the guards the rules use."""
        return ["from %s import %s" % g.helpers() for g in used_guards(self.rs)]

    # event application ------------------------------------------------------------
    def apply_lines(self) -> list[str]:
        """Apply the event to the viewer's state: its session, then every feature's update code
        (statements for every event, then one if/elif chain over the event types)."""
        v = self.vi
        L: list[str] = []
        L.append(f"pres = (VI[slot, {v('flags')}] & FLAG_PRESENT) != 0")
        leave = self.code("leave")
        L += [
            f"same_room = VI[slot, {v('room')}] == room",
            f"in_session = code != {leave} or (pres and same_room)  # counts for count(T): a leave, in the session it ends",
            f"if pres and (code == {leave}) == same_room:  # a leave ends its session, an event from another room the old one",
            *_indent(self.end_session_lines("slot", "now"), 1),
            "    pres = False",
            f"if code == {leave}:",
            f"    if not in_session and VI[slot, {v('room')}] < 0:",
            f"        VI[slot, {v('room')}] = room  # a leave before any session: its room is the viewer's last",
            "elif not pres:",
            *_indent(self.start_session_lines(), 1),
            f"VI[slot, {v('last_ts')}] = now",
            f"if (VI[slot, {v('flags')}] & FLAG_SEEN) == 0:  # its first accepted event (or its return after retention)",
            f"    VI[slot, {v('arrival')}] = meta[0, META_ARRIVALS]",
            "    meta[0, META_ARRIVALS] += 1",
            f"VI[slot, {v('flags')}] |= FLAG_SEEN",
            f"if RI[room, {self.col('ri', 'start')}] == MISSING:",
            f"    RI[room, {self.col('ri', 'start')}] = now",
        ]
        by_type: dict[str, list[str]] = {}
        for feature in features.REGISTRY:
            L += feature.update(self)
            for event_type, lines in feature.on(self).items():
                by_type.setdefault(event_type, []).extend(lines)
        for g in used_guards(self.rs):  # guards that watch events (the holdout's outcome events)
            for event_type, lines in g.on_event(self).items():
                by_type.setdefault(event_type, []).extend(lines)
        for i, (event_type, lines) in enumerate(by_type.items()):
            L += [f"{'el' if i else ''}if code == {self.code(event_type)}:", *_indent(lines, 1)]
        return L

    def end_session_lines(self, slot: str, end: str) -> list[str]:
        """End ``slot``'s session at ``end`` (inline: a helper function would cost a compile level)."""
        v = self.vi
        return [f"sroom = VI[{slot}, {v('room')}]",
                f"VI[{slot}, {v('sess_end')}] = {end}",
                f"VI[{slot}, {v('closed_dwell')}] += {end} - VI[{slot}, {v('sess_start')}]",
                f"VI[{slot}, {v('flags')}] &= ~FLAG_PRESENT",
                f"PRES[{slot}, 0] = -1",
                f"RI[sroom, {self.col('ri', 'audience')}] -= 1",
                *(line for f in features.REGISTRY for line in f.session_end(self, slot, end))]

    def start_session_lines(self) -> list[str]:
        v = self.vi
        cleared = [name for name in feature_base.__all__ if name.startswith("FLAG_")
                   and any(getattr(feature_base, name) & f.session_flags for f in features.REGISTRY)]
        clear = "".join(f" & ~{name}" for name in cleared)  # flags that hold for one session (paid)
        flags = f"(VI[slot, {v('flags')}] | FLAG_PRESENT){clear}" if clear else f"VI[slot, {v('flags')}] | FLAG_PRESENT"
        return [f"VI[slot, {v('room')}] = room",
                f"VI[slot, {v('sess_start')}] = now",
                f"VI[slot, {v('sess_end')}] = now",
                f"VI[slot, {v('sessions')}] += 1",
                f"VI[slot, {v('flags')}] = {flags}",
                "PRES[slot, 0] = room",
                f"RI[room, {self.col('ri', 'audience')}] += 1",
                *(line for f in features.REGISTRY for line in f.session_start(self)),
                *(f"VI[slot, {self.col('vi', col)}] = 0" for col in self.lay.session_once_cols)]  # once = "session" marks

    def type_test(self, types: tuple[str, ...]) -> str:
        return "(" + " or ".join(self.type_is(t) for t in types) + ")"

    def type_is(self, t: str, code: str = "code", text: str = "text") -> str:
        """A test that the event is of type ``t``; ``comment:NAME``: a comment whose text has intent
        NAME (a bit of its text value, segengine.text)."""
        intent = intent_of(t)
        if intent is None or t in self.codes:
            return f"{code} == {self.code(t)}"
        return f"({code} == {self.code('comment')} and {text} > 0 and ({text} & {text_bit(self.rs, ('intent', intent))}) != 0)"

    # the evaluation pass ----------------------------------------------------------
    def pass_fn(self) -> str:
        lay = self.lay
        gen = ExprGen(self.rs, lay, self.lits, with_timers=True, in_event="not timer")
        gen.share_windows()
        L = gen.lines
        gen.emit(f"room = VI[slot, {self.vi('room')}]")
        gen.emit("due = NEVER")
        roomgen.share_sync(self, gen, gate=True)  # room.share counts (compiler/roomgen.py)
        for feature in features.REGISTRY:
            feature.pass_start(self, gen)
        readers = set(lay.tag_readers)
        if readers:
            # state rules that read tags put their next change in tdue (replaced when they are
            # evaluated again); tagged: a firing changed a tag one of them reads
            gen.emit("tdue = NEVER")
            gen.emit("tagged = False")
        if lay.deadline_cols:
            # a session that started or ended at this pass (an event, or the idle timeout at a
            # timer): evaluate every rule. A plain timer evaluates the groups whose deadline came.
            gen.emit(f"every = timer == TIMER_ENDED or VI[slot, {self.vi('sess_start')}] == now or VI[slot, {self.vi('sess_end')}] == now")
        opened: set[int] = set()
        last_in_group = {lay.deadline_cols[rule.name]: rule.name for rule in self.rs.evaluation_order()
                         if rule.name in lay.deadline_cols}
        for rule in self.rs.evaluation_order():
            r = self.rule_index[rule.name]
            gen.emit(f"# rule {rule.name!r}: {rule.when_text}")
            if rule.is_event_rule:
                # evaluated only for its own event types, and without timer arithmetic
                body = gen.child(with_timers=False)
                b, _ = body.boolean(desugar(rule.when))
                body.emit(f"if {b}:")
                body.lines.extend(_indent(self.firing(rule, r, body), 1))
                test = " or ".join(self.type_is(t, "ev_code", "ev_text") for t in rule.on)
                gen.nest(f"if (not timer) and ({test}):", body)
                continue
            deadline = lay.deadline_cols.get(rule.name)
            if deadline is None:
                self.state_rule(rule, r, gen, "tdue" if rule.name in readers else None)
                continue
            # a group of state rules with the same inputs: while no event could have changed
            # them and the group's deadline has not come, their values, edges and deadline stand
            run, earliest = f"run{deadline}", f"next{deadline}"
            if deadline not in opened:
                opened.add(deadline)
                touched = [self.type_is(t, "ev_code", "ev_text") for t in lay.input_types[rule.name]]
                came = f"now >= VI[slot, {self.col('vi', deadline)}]"
                gen.emit(f"{run} = {' or '.join(['every', came, *touched])}")
                gen.emit(f"{earliest} = NEVER")
            body = gen.child()
            self.state_rule(rule, r, body, earliest)
            gen.nest(f"if {run}:", body)
            if rule.name == last_in_group[deadline]:
                gen.emit(f"if {run}:")
                gen.emit(f"    VI[slot, {self.col('vi', deadline)}] = {earliest}")
                gen.emit(f"due = min(due, VI[slot, {self.col('vi', deadline)}])")
        if readers:
            self.reevaluation(gen)
        roomgen.share_sync(self, gen, end=True)
        gen.emit(f"if (VI[slot, {self.vi('flags')}] & FLAG_PRESENT) != 0:")
        gen.emit(f"    due = min(due, VI[slot, {self.vi('last_ts')}] + IDLE_US)")
        gen.emit(f"schedule(VI, H, meta, slot, due, np.int64({self.vi('due')}), np.int64({self.vi('queued')}), np.int64({self.vi('arrival')}))")
        L[0:0] = gen.memo_inits  # shared window values: unset until a rule needs them
        body = "\n".join(_indent(L, 1))
        # the matrices are re-derived from ``tab`` (a few loads) rather than passed: an array
        # argument is nine machine words, and _pass is called once per event and per timer
        return f"""@njit(**KERNEL_FLAGS)
def _pass(tab, slot, now, timer, ev_code, ev_item, ev_cat, ev_text, ev_room, ev_ts, ev_price, ev_amount, ev_index,
          ev_kslots):
{views_for(body)}
{body}"""

    def reevaluation(self, gen: ExprGen) -> None:
        """State rules see the pass's final tags: while a firing changed a tag that a state rule
        reads, evaluate every such rule again at the same instant, in pass order (edges updated,
        rising edges fire after the pass's other actions). At most one round per such rule: only
        rules that tag and untag each other in a cycle can reach the bound."""
        lay = self.lay
        body = gen.child()
        body.emit("tagged = False")
        body.emit("rounds += 1")
        body.emit("tdue = NEVER")
        for name in lay.tag_readers:
            rule = next(x for x in self.rules if x.name == name)
            body.emit(f"# rule {rule.name!r} again: {rule.when_text}")
            self.state_rule(rule, self.rule_index[name], body, "tdue")
        gen.emit("rounds = 0")
        gen.nest(f"while tagged and rounds < {len(lay.tag_readers)}:", body)
        gen.emit("due = min(due, tdue)")

    def state_rule(self, rule: Rule, r: int, gen: ExprGen, earliest: str | None = None) -> None:
        """Evaluate a state rule: its edge bit, its next change (into ``due``, or into its
        group's ``earliest`` local), and its firing on a rising edge."""
        col, mask = self.lay.edge_bit(rule.name)
        col = self.col("vi", col)
        b, c = gen.boolean(desugar(rule.when))
        gen.emit(f"fire = {b} and (VI[slot, {col}] & {mask}) == 0")
        gen.emit(f"if {b}:")
        gen.emit(f"    VI[slot, {col}] |= {mask}")
        gen.emit("else:")
        gen.emit(f"    VI[slot, {col}] &= ~{mask}")
        if c != NEVER:
            target = earliest or "due"
            gen.emit(f"{target} = min({target}, {c})")
        gen.emit("if fire:")
        gen.lines.extend(_indent(self.firing(rule, r, gen), 1))

    def due_fn(self) -> str:
        """``rescan``: recompute every viewer's next timer without firing or touching edges (after reload)."""
        gen = ExprGen(self.rs, self.lay, self.lits, with_timers=True)
        gen.emit("due = NEVER")
        for rule in self.rs.evaluation_order():
            if rule.is_event_rule:
                continue
            _, c = gen.boolean(desugar(rule.when))
            if c != NEVER:
                gen.emit(f"due = min(due, {c})")
        roomgen.share_due(self, gen)  # room.share memberships that change with time
        gen.emit(f"if (VI[slot, {self.vi('flags')}] & FLAG_PRESENT) != 0:")
        gen.emit(f"    due = min(due, VI[slot, {self.vi('last_ts')}] + IDLE_US)")
        gen.emit("return due")
        body = "\n".join(_indent(gen.lines, 1))
        loop = f"""    for slot in range(n):
        if (VI[slot, {self.vi('flags')}] & FLAG_SEEN) == 0:
            continue
        schedule(VI, H, meta, slot, _due(VI, VF, VN, RI, LITS, slot, max(now, VI[slot, {self.vi('clock')}])), np.int64({self.vi('due')}), np.int64({self.vi('queued')}), np.int64({self.vi('arrival')}))
    return DONE"""
        return f"""@njit(**KERNEL_FLAGS)
def _due(VI, VF, VN, RI, LITS, slot, now):
{body}


@njit(**KERNEL_FLAGS)
def rescan(tab, now, n):
    \"\"\"Reschedule slots 0..n-1 (the heap needs room for n more entries).\"\"\"
{views_for(loop)}
{loop}"""

    def firing(self, rule: Rule, r: int, gen: ExprGen) -> list[str]:
        """Suppression checks (the rule's guards, segengine/guards/), then the output row, counters,
        guard commits and tag actions. Placeholder values are computed here, only when the rule fires."""
        lay = self.lay
        values_gen = gen.child(with_timers=False)
        values = []
        kinds = []
        for text, node in rule.placeholders.items():
            if isinstance(node, ast.EventField):
                continue  # rendered in Python from the event itself
            val, kind = values_gen.value(node)
            values.append(val)
            kinds.append((text, kind))
        self.placeholder_kinds[rule.name] = kinds
        F = [*values_gen.lines,
            "n = meta[0, META_OUT_N]",
            f"OI[n, 0] = {r}",
            "OI[n, 1] = slot",
            "OI[n, 2] = now",
            "OI[n, 3] = ev_index",
            "OI[n, 4] = room",
        ]
        F += [f"OF[n, {j}] = {val}" for j, val in enumerate(values)]
        F += ["meta[0, META_OUT_N] = n + 1", f"meta[0, {fired_index(r)}] += 1  # fired[{r}]"]
        guarded = guards_of(rule)
        F += [g.commit_code(lay, rule) for g in guarded]
        for action in rule.then:
            if action.startswith(("tag:", "untag:")):
                tag = action.split(":", 1)[1]
                col, mask = lay.tag_bit(tag)
                change = f"VI[slot, {col}] |= {mask}" if action.startswith("tag:") else f"VI[slot, {col}] &= ~{mask}"
                if tag in lay.read_tags:  # a state rule reads it: evaluate the readers again if it changed
                    F += [f"if (VI[slot, {col}] & {mask}) {'==' if action.startswith('tag:') else '!='} 0:",
                          f"    {change}", "    tagged = True"]
                else:
                    F.append(change)
        if not guarded:
            return F
        # the first guard that blocks the firing suppresses it, counted under its reason
        n_rules = len(self.rs.rules)
        L: list[str] = []
        for g in guarded:
            code = reason_code(g.name)
            L += [f"{'elif' if L else 'if'} {g.check_code(lay, rule)}:",
                  f"    meta[0, {counter_index(n_rules, r, code)}] += 1  # suppressed[{r}, {g.name}]"]
            L += _indent(g.suppressed_code(lay, rule, guarded), 1)
        return [*L, "else:", *_indent(F, 1)]

    # timers and entry points ------------------------------------------------------------
    def timers_lines(self, need_room: str) -> list[str]:
        """Fire every timer due at or before ``until``; ``need_room`` is the statement that leaves
        when the output buffer or heap is full (the loop resumes there on the next call)."""
        v = self.vi
        n_rules = self.lay.rows_per_pass(len(self.rules))
        return [
            "while meta[0, META_HEAP_N] > 0:",
            "    t = H[0, 0]",
            "    tslot = H[0, 2]",
            "    if t > until:",
            "        break",
            f"    if meta[0, META_OUT_N] + {n_rules} > OI.shape[0] or meta[0, META_HEAP_N] + 2 > H.shape[0]:",
            f"        {need_room}",
            "    heap_pop(H, meta)",
            f"    if t != VI[tslot, {v('queued')}]:",
            "        continue  # superseded by an earlier entry for the same viewer",
            f"    VI[tslot, {v('queued')}] = NEVER",
            f"    due = VI[tslot, {v('due')}]",
            "    if due > t:",
            "        if due < NEVER:",
            f"            heap_push(H, meta, due, VI[tslot, {v('arrival')}], tslot)",
            f"            VI[tslot, {v('queued')}] = due",
            "        continue",
            "    meta[0, META_TIMERS] += 1",
            f"    tnow = max(t, VI[tslot, {v('clock')}])",
            f"    VI[tslot, {v('clock')}] = tnow",
            # typed values, not literals: literal arguments would compile a second copy of _pass
            "    tkind = np.int64(TIMER)",
            f"    if (VI[tslot, {v('flags')}] & FLAG_PRESENT) != 0 and VI[tslot, {v('last_ts')}] + IDLE_US <= tnow:",
            f"        last = VI[tslot, {v('last_ts')}]",
            *_indent(self.end_session_lines("tslot", "last"), 2),
            "        tkind = np.int64(TIMER_ENDED)",
            "    none = np.int64(-1)",
            "    _pass(tab, tslot, tnow, tkind, none, none, none + 1, none, none,",
            "          np.float64(0.0), np.float64(np.nan), np.float64(np.nan), none, none + 1)",
            *roomgen.after_timer(self),
        ]

    def event_lines(self, need_room: str, done: str) -> list[str]:
        """Timers due up to the event, then the event itself (slot -1: a room event)."""
        v = self.vi
        n_rules = self.lay.rows_per_pass(len(self.rules))
        return [
            "until = to_us(ts)",
            *self.timers_lines(need_room),
            f"if (meta[0, META_OUT_N] + {n_rules} > OI.shape[0] or meta[0, META_HEAP_N] + 2 > H.shape[0]",
            "        or 2 * (meta[0, META_CART_N] + 1) > CK.shape[0]):",
            f"    {need_room}",
            *roomgen.resume(self, need_room, done),
            "meta[0, META_EVENTS] += 1",
            "if until > meta[0, META_NOW]:",
            "    meta[0, META_NOW] = until",
            "if slot < 0:  # a room event",
            f"    if code == {self.code('live_start')}:",
            f"        RI[room, {self.col('ri', 'start')}] = until",
            f"    elif RI[room, {self.col('ri', 'start')}] == MISSING:  # stream time counts from the room's first event",
            f"        RI[room, {self.col('ri', 'start')}] = until",
            f"    if code == {self.code('live_end')}:",
            f"        RI[room, {self.col('ri', 'live_end')}] = until",
            *roomgen.room_event(self, need_room),
            f"    {done}",
            "now = until",
            f"if now < VI[slot, {v('clock')}]:",
            f"    now = VI[slot, {v('clock')}]",
            "    meta[0, META_LATE] += 1",
            f"VI[slot, {v('clock')}] = now",
            "ev_item = item",
            "ev_cat = cat",
            "ev_price = price",
            "ev_amount = amount",
            *roomgen.before_apply(self),
            "ev_kslots = np.int64(0)  # the event's keyed slots, found by the update (features/keyed.py)",
            *self.apply_lines(),
            "_pass(tab, slot, now, np.int64(EVENT), code, item, cat, text, room, ts, price, amount, index, ev_kslots)",
            *roomgen.after_event(self),
        ]

    def entry_fns(self) -> str:
        one = "\n".join(_indent(self.event_lines("return -1", "return meta[0, META_OUT_N]"), 1))
        batch = "\n".join(_indent(self.event_lines("return i", "continue"), 2))
        timers = "\n".join(_indent(self.timers_lines("return NEED_ROOM"), 1))
        views = views_for(one)
        # the event kernel, and its twin ingest_event_c, which CompiledRules.event_cfunc compiles to
        # a C function for segengine.runtime._fastpath (a process compiles only one of them)
        # parameters and batch columns: the event schema's kernel row (schema/fields.py)
        row = ", ".join(c.name for c in EVENT_ROW)
        reads = "\n".join(f"        {c.name} = {c.name}s[i]" for c in BATCH_ROW)
        event_body = f"""(tab_addr, {row}, index):
    # one event (slot -1: a room event); returns -1 (no room: drain or grow, then call again)
    # or the number of actions waiting in the output buffer (Python reads it only if > 0)
    tab = table_at(tab_addr)
    if slot == BY_VIEWER_ID:  # an int viewer id: one array read here instead of a Python dict lookup
        VIDS = mat_i64(tab, M_VIDS)
        slot = VIDS[vid, 0] if 0 <= vid < VIDS.shape[0] else np.int64(-1)
        if slot < 0:
            return UNKNOWN_VIEWER  # nothing changed: Python interns the viewer and calls again
{views}
{one}
    return meta[0, META_OUT_N]
"""
        return f"""@njit(**KERNEL_FLAGS)
def ingest_event{event_body}

# the same function for the C fast path (CompiledRules.event_cfunc compiles it to a C function):
# a twin under its own name, so that its compiled form has its own cache entry
ingest_event_c = twin(ingest_event, "ingest_event_c")


@njit(**BATCH_FLAGS)
def ingest_batch(tab, {", ".join(c.name + "s" for c in BATCH_ROW)}, start):
    # events start..n-1 of a columnar batch in one call; returns the index to resume at
    # (n when done), stopping early when the output buffer, heap or cart table needs room
{views_for(batch)}
    n = slots.shape[0]
    for i in range(start, n):
        if i + PREFETCH_AHEAD < n and slots[i + PREFETCH_AHEAD] >= 0:
            prefetch_viewer(tab, slots[i + PREFETCH_AHEAD])  # a later event's rows load meanwhile
{reads}
        index = np.int64(i)
{batch}
    return n


@njit(**KERNEL_FLAGS)
def advance(tab, until):
{views_for(timers)}
{timers}
    if until > meta[0, META_NOW]:
        meta[0, META_NOW] = until
    return DONE"""

    # queries ---------------------------------------------------------------------------
    def segment_fn(self) -> str:
        """``segment_count(tab, seg, now, room, n, out)``: how many of viewers 0..n-1 (in ``room``,
        or any room when -1) are in segment ``seg``, writing the first ``len(out)`` of their slots
        to ``out`` (``segment_size`` passes an empty array, ``segment_members`` one of n). Segments
        are grouped into kernels of about :data:`QUERY_CHUNK_LINES` lines (see :func:`query_kernels`)."""
        counter = [0]  # one for every segment: temporaries never collide within a kernel
        parts = []
        for name in self.rs.segments:
            gen = ExprGen(self.rs, self.lay, self.lits, with_timers=False)
            gen.counter = counter
            b, _ = gen.boolean(ast.Name(name, kind="segment", type="bool"))
            gen.emit(f"if {b}:")
            gen.emit("    if total < out.shape[0]:")
            gen.emit("        out[total] = slot")
            gen.emit("    total += 1")
            parts.append(gen.lines)
        loop = ["total = 0",
                "for slot in range(n):",
                "    if room <= -2:  # room -2 - r: the viewers present in room r (Engine.room)",
                "        if PRES[slot, 0] != -2 - room:",
                "            continue",
                f"    elif (VI[slot, {self.vi('flags')}] & FLAG_SEEN) == 0:",
                "        continue",
                f"    elif room >= 0 and VI[slot, {self.vi('room')}] != room:",
                "        continue"]
        return query_kernels("segment_count", "tab, seg, now, room, n, out", parts, loop, "return total", key="seg",
                             depth=1, labels=list(self.rs.segments))

    def readout_fn(self) -> str:
        """Every feature the rules use, every profile attribute, every segment: for ``viewer()``."""
        lay, rs = self.lay, self.rs
        items: list[tuple[str, ast.Node, str]] = [(label, node, "feature") for f in features.REGISTRY
                                                   for label, node in f.readouts(rs, lay)]
        for attr in rs.profile.values():
            items.append((attr.name, ast.Name(attr.name, kind="profile", type="num" if attr.kind == "num" else "str"), "profile"))
        for name in rs.segments:
            items.append((name, ast.Name(name, kind="segment", type="bool"), "segment"))
        self.readouts = []
        done: dict[str, tuple] = {}  # values already in ``out``: a later kernel reads them from there
        gen = ExprGen(rs, lay, self.lits, with_timers=False)
        parts = [gen.lines]
        for j, (label, node, group) in enumerate(items):
            if len(gen.lines) >= QUERY_CHUNK_LINES:  # the next kernel
                gen = ExprGen(rs, lay, self.lits, with_timers=False)
                gen.cache.update(done)
                parts.append(gen.lines)
            val, kind = gen.value(node)
            gen.emit(f"out[{j}] = {val}")
            self.readouts.append(Readout(label, kind, group))
            if group == "segment":
                done[f"segment:{label}"] = (f"(out[{j}] != 0.0)", NEVER)
            elif node.type == "num" and gen.cache.get(ast.to_source(node), ())[2:3] == (CONST,):
                done[ast.to_source(node)] = (f"out[{j}]", "0.0", CONST, NEVER)  # constant between events: no slope
        return query_kernels("readout", "tab, slot, now, out", parts, [], f"return {len(items)}")


#: Most lines of generated code in one query kernel (segment_count, readout, explain_values).
#: The time Numba and LLVM take to compile one function grows faster than its size (62 segments
#: took 29 s of CPU to compile as one segment_count, 10 s as seven kernels), so a longer query is
#: split into kernels of about this size, each compiled on its first call (see docs/performance.md).
QUERY_CHUNK_LINES = 200


def _groups(sizes: list[int], budget: int) -> list[list[int]]:
    """Consecutive indices grouped while their total size stays within ``budget`` (a bigger one alone)."""
    groups: list[list[int]] = []
    total = 0
    for i, size in enumerate(sizes):
        if groups and total + size <= budget:
            groups[-1].append(i)
            total += size
        else:
            groups.append([i])
            total = size
    return groups


def query_kernels(name: str, params: str, parts: list[list[str]], head: list[str], tail: str,
                  key: str = "", depth: int = 0, labels: list[str] | None = None) -> str:
    """Source of the query ``name(params)``: the statements ``head``, each part (a list of
    statements, at indentation ``depth`` within ``head``), then ``tail``.

    Parts are grouped into kernels of about :data:`QUERY_CHUNK_LINES` lines. A single kernel is
    ``name`` itself; several are ``_name0, _name1, ...`` behind a plain Python function ``name``,
    each compiled on its first call. With ``key`` (one of the parameters), part ``i`` runs only
    when ``key == i``, and ``name`` calls the one kernel that holds it; without, ``name`` calls
    every kernel in turn and returns what the last one returns. ``labels`` name the parts in comments.
    """
    groups = _groups([len(part) for part in parts], QUERY_CHUNK_LINES) or [[]]

    def kernel(fn: str, group: list[int]) -> str:
        body = list(head)
        for n, i in enumerate(group):
            if key:
                label = f"  # {labels[i]}" if labels else ""
                body += _indent([f"{'el' if n else ''}if {key} == {i}:{label}", *_indent(parts[i], 1)], depth)
            else:
                body += _indent(parts[i], depth)
        text = "\n".join(_indent([*body, tail], 1))
        return f"@njit(**KERNEL_FLAGS)\ndef {fn}({params}):\n{views_for(text)}\n{text}"

    if len(groups) == 1:
        return kernel(name, groups[0])
    src = [kernel(f"_{name}{k}", group) for k, group in enumerate(groups)]
    if key:
        table = f"_{name.upper()}_KERNELS"
        owners = "".join(f"_{name}{k}, " for k, group in enumerate(groups) for _ in group)
        src.append(f"{table} = ({owners})  # the kernel of each {key}\n\n\n"
                   f"def {name}({params}):\n    return {table}[{key}]({params})")
    else:
        calls = [f"_{name}{k}({params})" for k in range(len(groups))]
        src.append(f"def {name}({params}):\n" + "".join(f"    {call}\n" for call in calls[:-1]) + f"    return {calls[-1]}")
    return "\n\n\n".join(src)


def generate(rs: RuleSet, lay: Layout) -> Generated:
    """The source of the rules' kernel module and what Python needs to read its output."""
    return ModuleGen(rs, lay).generate()
