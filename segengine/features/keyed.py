"""Keyed counters: ``count``, ``since``, ``sum``, ``avg`` with ``by = item`` or ``by = category``.

``count(click|view|cart, 2m, by = item) >= 4`` counts only the viewer's events on the current
event's item: a viewer who viewed four different items has four keys with one view each.

Per viewer and per key kind (item, category), a table of ``[engine] keyed_slots`` (K) keys,
most recently used kept:

* ``kkey:KIND`` K VI columns, each ``(key + 1) << 32 | use`` (0: an empty slot): a keyed event
  gives its key the use number ``kuse:KIND`` + 1 (one VI column before the rows' tail, holding
  the highest number given), so the least recently used key, evicted for a new one, is the one
  with the lowest ``use``; finding a held key is one compare per slot. One column per key,
  starting a cache line (the VI row is padded to whole lines, compiler/layout.py
  ``pad_to_line``): a keyed event reads one 64-byte line of keys (a key + 1 below 2**31: string
  ids and category codes are);
* for each keyed window, the same 12 buckets as an unkeyed window (features/windows.py), once
  per key: 12 x K VN columns (and 12 x K VF for ``sum``/``avg``), with a head per key and
  window length (``khead:W:KIND``, K VI columns);
* ``count(T, by = KIND)``: K VN columns, cleared when a session starts; ``since(T, by = KIND)``:
  K VI columns.

A key is *used* by an event of a type some keyed counter of its kind counts, carrying that
key; a key evicted for a newer one starts again from zero (its slot's state is cleared), and
the eviction is counted in the room's ``keyed_evictions`` (``Engine.stats()``). Only event rules
read keyed counters (the loader rejects them elsewhere): the current event's key is looked up,
and a key the viewer does not hold reads as no events.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..rules import ast
from .base import CONST, LINEAR, NEVER, Feature, us
from ..compiler.layout import pad_to_line
from .windows import clear_buckets

KINDS = ("item", "category")
#: The room column counting keys evicted for newer ones (summed by ``Engine.stats()``).
EVICTIONS = "keyed_evictions"


@dataclass
class KeyedWindow:
    """One keyed counter's columns: ``first`` the first of its K (x 12) columns."""

    kind: str
    types: tuple[str, ...]
    window_us: int  # 0: no window (count per session, since)
    what: str  # "count", "since", "session" or "agg"
    first: int  # VN (count, session, agg counts) or VI (since) column
    sum_first: int = -1  # VF columns (agg)
    field_name: str = ""
    head: int = -1  # VI: K heads shared by the kind's windows of this length


def _key(node) -> tuple:
    types = tuple(sorted(node.types))
    if isinstance(node, ast.Since):
        return (node.by, "since", types)
    if isinstance(node, ast.Count) and node.window is None:
        return (node.by, "session", types)
    if isinstance(node, ast.Count):
        return (node.by, "count", types, us(node.window))
    return (node.by, "agg", types, us(node.window), node.field_name)


def _add(lay, matrix: str, name: str, width: int) -> int:
    """Add ``width`` columns ``name[0]``, ``name[1]``...: numbered even when there is one, so a
    reload that changes keyed_slots migrates the key slots both layouts have (by column name)."""
    cols = getattr(lay, matrix)
    start = len(cols)
    cols.extend(f"{name}[{i}]" for i in range(width))
    return start


def first_column(lay, matrix: str, name: str) -> int:
    """The first of a group of columns named ``name``."""
    return getattr(lay, matrix).index(f"{name}[0]")


def _has(lay, matrix: str, name: str) -> bool:
    return f"{name}[0]" in getattr(lay, matrix)


#: ``ev_kslots`` (the event kernel's local, passed to ``_pass``): for each kind, 16 bits holding
#: the key slot + 1 the update gave the event's key (0: the update did not look it up, as for
#: an event type no keyed counter of the kind counts, a timer or a room-wide trigger).
HINT_MASK = 0xFFFF


def _hint_shift(kind: str) -> int:
    return 16 * KINDS.index(kind)


def _source(kind: str, blank: str) -> str:
    """The current event's key + 1 (0: no key). Items: a string id, and an absent item is the
    id of "" (``blank``, a literal of the rules); categories: known codes are > 0."""
    if kind == "item":
        return f"(ev_item + 1 if ev_item >= 0 and ev_item != {blank} else 0)"
    return "(ev_cat + 1 if ev_cat > 0 else 0)"


def _guarded(conditions: list[str], body: list[str]) -> list[str]:
    """``body`` (lines indented 8 spaces, inside the keyed block's ``if``) under ``if`` the
    conditions all hold; with none, the body itself, one level out."""
    if not conditions:
        return [line[4:] for line in body]
    return [f"    if {' and '.join(conditions)}:", *body]


class Keyed(Feature):
    key = "keyed"
    rank = 61
    nodes = (ast.Count, ast.Agg, ast.Since)

    def owns(self, node) -> bool:
        return isinstance(node, self.nodes) and node.by is not None

    def node_inputs(self, node):
        return tuple(node.types)

    def unit(self, node) -> str:
        return "s" if isinstance(node, ast.Since) else ""

    # layout ---------------------------------------------------------------------------
    def columns(self, rs, lay, nodes, names) -> None:
        """Per kind, the highest use number given (``kuse:KIND``): before the tail, in a line
        every event loads, so that a held key's event need not walk the slots for the highest."""
        for kind in KINDS:
            if any(self.owns(n) and n.by == kind for n in nodes):
                lay.add("vi", f"kuse:{kind}")

    def tail_columns(self, rs, lay, nodes) -> set[str] | None:
        """The keyed columns end the rows: an event reads one key's block of them, and only an
        event of a type a keyed counter counts, or of a rule reading one (the C fast path loads
        the rest of the rows for the other types)."""
        K = rs.keyed_slots
        read: set[str] = set()
        for n in nodes:
            if not self.owns(n):
                continue
            read.update(n.types)
            if not lay.keyed:
                lay.add("ri", EVICTIONS)
            kind = n.by
            if not _has(lay, "vi", f"kkey:{kind}"):
                pad_to_line(lay, ("vi",))  # the keys one cache line (keyed_slots = 8), the heads the next
                _add(lay, "vi", f"kkey:{kind}", K)
            key = _key(n)
            if key in lay.keyed:
                continue
            label = f"{kind}:{'|'.join(key[2])}"
            if key[1] == "since":
                lay.keyed[key] = KeyedWindow(kind, key[2], 0, "since", _add(lay, "vi", f"ksince:{label}", K))
            elif key[1] == "session":
                lay.keyed[key] = KeyedWindow(kind, key[2], 0, "session", _add(lay, "vn", f"kcount:{label}", K))
            else:
                w = key[3]
                head = f"khead:{w}:{kind}"
                if not _has(lay, "vi", head):
                    pad_to_line(lay, ("vi",))
                    _add(lay, "vi", head, K)
                hcol = first_column(lay, "vi", head)
                if key[1] == "count":
                    lay.keyed[key] = KeyedWindow(kind, key[2], w, "count", _add(lay, "vn", f"kcount:{label},{w}us", 12 * K),
                                                 head=hcol)
                else:
                    name = f"{key[4]},{label},{w}us"
                    lay.keyed[key] = KeyedWindow(kind, key[2], w, "agg", _add(lay, "vn", f"kn:{name}", 12 * K),
                                                 _add(lay, "vf", f"ksum:{name}", 12 * K), key[4], head=hcol)
        if not lay.keyed:
            return None
        for rule in rs.rules:  # only event rules read keyed counters (the loader says so): their types
            if rule.on is not None and any(self.owns(n) for root in (rule.when, *rule.placeholders.values())
                                           for n in ast.walk(root)):
                read.update(rule.on)
        return read

    # the event kernel -----------------------------------------------------------------
    def session_start(self, k) -> list[str]:
        cols = [w for w in k.lay.keyed.values() if w.what == "session"]
        if not cols:
            return []
        return [f"for j in range({k.rs.keyed_slots}):", *(f"    VN[slot, {k.col('vn', w.first)} + j] = 0" for w in cols)]

    def update(self, k) -> list[str]:
        lay, K = k.lay, k.rs.keyed_slots
        L: list[str] = []
        for kind in KINDS:
            wins = [w for w in lay.keyed.values() if w.kind == kind]
            if not wins:
                continue
            keys = k.col("vi", first_column(lay, "vi", f"kkey:{kind}"))
            all_types = tuple(sorted({t for w in wins for t in w.types}))
            blank = f"LITS[0, {k.lits.index('strings', '')}]" if kind == "item" else ""
            # the key's slot: one compare per slot, no branches (the slots are one cache line); a
            # new key takes the first empty slot, else the least recently used (the lowest use)
            L += [f"key = {_source(kind, blank)}",
                  f"if key != 0 and {k.type_test(all_types)}:",
                  "    kj = -1",
                  f"    for j in range({K}):",
                  f"        kj = j if (VI[slot, {keys} + j] >> 32) == key else kj",
                  "    if kj < 0:  # a new key: the first empty slot, else the least recently used one",
                  f"        kj = oldest_key(VI, slot, np.int64({keys}), np.int64({K}))",
                  f"        if VI[slot, {keys} + kj] != 0:",
                  f"            RI[room, {k.col('ri', EVICTIONS)}] += 1"]
            # the slot starts again from zero; a window's buckets through its head: MISSING reads
            # as no events, and the next roll clears all 12 (kernels/primitives.py window_roll)
            for w in wins:
                if w.what == "since":
                    L.append(f"        VI[slot, {k.col('vi', w.first)} + kj] = MISSING")
                elif w.what == "session":
                    L.append(f"        VN[slot, {k.col('vn', w.first)} + kj] = 0")
            for head in sorted({w.head for w in wins if w.head >= 0}):
                L.append(f"        VI[slot, {k.col('vi', head)} + kj] = MISSING")
            use = k.col("vi", lay.vi.index(f"kuse:{kind}"))
            L += [f"    top = VI[slot, {use}]",
                  "    if top >= USE_MASK:  # 2**31 keyed events: number the held keys again from 1",
                  f"        top = renumber_uses(VI, slot, np.int64({keys}), np.int64({K}))",
                  f"    VI[slot, {use}] = top + 1",
                  f"    VI[slot, {keys} + kj] = (key << 32) | (top + 1)",
                  f"    ev_kslots |= (kj + 1) << {_hint_shift(kind)}  # the pass reads it: no second walk"]
            for w in wins:
                # the walk tested the kind's types: a window counting all of them needs no test
                test = [] if w.types == all_types else [k.type_test(w.types)]
                if w.what == "since":
                    L += _guarded(test, [f"        VI[slot, {k.col('vi', w.first)} + kj] = now"])
                elif w.what == "session":
                    vn = f"VN[slot, {k.col('vn', w.first)} + kj]"
                    L += _guarded(["in_session", *test, f"{vn} < COUNT_MAX"], [f"        {vn} += 1"])
                else:
                    carries = [f"not np.isnan(ev_{w.field_name})"] if w.sum_first >= 0 else []
                    body = [f"        k = bucket_of(now, np.int64({w.window_us}))",
                            f"        nclear = window_roll(VI, slot, np.int64({k.col('vi', w.head)}) + kj, k)"]
                    # windows of one length share a head: clear every one of them, as features/windows.py does
                    cells = []
                    for other in wins:
                        if other.head == w.head and other.what in ("count", "agg"):
                            cells.append(f"VN[slot, {k.col('vn', other.first)} + 12 * kj + pos] = 0")
                            if other.sum_first >= 0:
                                cells.append(f"VF[slot, {k.col('vf', other.sum_first)} + 12 * kj + pos] = 0.0")
                    body += ["        " + line for line in clear_buckets(cells)]
                    cell = f"VN[slot, {k.col('vn', w.first)} + 12 * kj + k % 12]"
                    body += [f"        if {cell} < COUNT_MAX:", f"            {cell} += 1"]
                    if w.sum_first >= 0:
                        body.append(f"        VF[slot, {k.col('vf', w.sum_first)} + 12 * kj + k % 12] += ev_{w.field_name}")
                    L += _guarded([*test, *carries], body)
        return L

    # values ---------------------------------------------------------------------------
    def _slot(self, gen, kind: str) -> str:
        """A local holding the current event's key slot (-1: not held, or not in an event)."""
        ck = f"keyed_slot:{kind}"
        if ck not in gen.cache:
            kj, key = gen.tmp("kj"), gen.tmp("key")
            keys = gen.col("vi", first_column(gen.lay, "vi", f"kkey:{kind}"))
            gen.emit(f"{kj} = -1")
            blank = f"LITS[0, {gen.lits.index('strings', '')}]" if kind == "item" else ""
            gen.emit(f"{key} = {_source(kind, blank)} if {gen.in_event} else 0")
            gen.emit(f"if {key} != 0:")
            walk = "    "
            if gen.event_pass:  # the update may have found the slot
                gen.emit(f"    {kj} = ((ev_kslots >> {_hint_shift(kind)}) & {HINT_MASK}) - 1")
                gen.emit(f"    if {kj} < 0:")
                walk = "        "
            gen.emit(f"{walk}for j in range({gen.rs.keyed_slots}):")  # no early exit: one cache line, branch-free
            gen.emit(f"{walk}    {kj} = j if (VI[slot, {keys} + j] >> 32) == {key} else {kj}")
            gen.cache[ck] = (kj,)
        return gen.cache[ck][0]

    def number(self, gen, node, v):
        w = gen.lay.keyed[_key(node)]
        kj = self._slot(gen, w.kind)
        if w.what == "since":
            s = gen.tmp("s")
            last = gen.tmp("last")
            gen.emit(f"{last} = VI[slot, {gen.col('vi', w.first)} + {kj}] if {kj} >= 0 else MISSING")
            gen.emit(f"{v} = secs(now - {last}) if {last} != MISSING else np.inf")
            gen.emit(f"{s} = 1.0 if {last} != MISSING else 0.0")
            return v, s, LINEAR, NEVER
        if w.what == "session":
            gen.emit(f"{v} = float(VN[slot, {gen.col('vn', w.first)} + {kj}]) if {kj} >= 0 else 0.0")
            return v, "0.0", CONST, NEVER
        k, head = gen.tmp("k"), gen.tmp("head")
        gen.emit(f"{k} = bucket_of(now, np.int64({w.window_us}))")
        gen.emit(f"{head} = VI[slot, {gen.col('vi', w.head)} + {kj}] if {kj} >= 0 else MISSING")
        count = f"window_count(VN, slot, np.int64({gen.col('vn', w.first)}) + 12 * {kj}, np.int64({head}), np.int64({k}))"
        if w.what == "count":
            # the head is now's bucket when the update has just counted the event (the common case:
            # the rule is on the types the window counts): the 12 buckets summed inline, for a call
            # with the array's fields as arguments costs ~15 ns here
            t = gen.tmp("t")
            gen.emit(f"{v} = 0.0")
            gen.emit(f"if {kj} >= 0 and {head} == {k}:")
            gen.emit(f"    {t} = 0")
            gen.emit("    for j in range(12):")
            gen.emit(f"        {t} += VN[slot, {gen.col('vn', w.first)} + 12 * {kj} + j]")
            gen.emit(f"    {v} = float({t})")
            gen.emit(f"elif {kj} >= 0:")
            gen.emit(f"    {v} = {count}")
            return v, "0.0", CONST, NEVER
        total = f"window_sum(VF, slot, np.int64({gen.col('vf', w.sum_first)}) + 12 * {kj}, np.int64({head}), np.int64({k}))"
        if node.func == "sum":
            gen.emit(f"{v} = {total} if {kj} >= 0 else 0.0")
            return v, "0.0", CONST, NEVER
        n = gen.tmp("n")
        gen.emit(f"{n} = {count} if {kj} >= 0 else 0.0")
        gen.emit(f"{v} = {total} / {n} if {n} > 0.0 else 0.0")
        return v, "0.0", CONST, NEVER

    def readouts(self, rs, lay):
        return []  # a keyed value needs a current event: viewer() has none


FEATURES = [Keyed()]
