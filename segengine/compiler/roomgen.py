"""Kernel code of the room parts of a rules file: ``room.share`` counts, room rules, room-wide triggers.

What :class:`~segengine.compiler.codegen.ModuleGen` calls (each returns nothing or no lines when
the rules do not use the part, so a rules file without room parts compiles as before):

* :func:`add_columns` -- the RI columns: each room rule's edge, last firing, fired and
  suppressed counters (``room_edge:NAME``...), the trigger cursor (``trigger_cursor``);
  ``room.share`` columns come from the feature (:mod:`segengine.features.roomnames`);
* :func:`share_sync` -- statements of ``_pass``: move the viewer's unit between rooms' present
  counts of each shared segment or target when "present and in NAME" changed;
* :func:`functions` -- ``_room_rules(tab, room, now)`` (each room rule: edge, cooldown, output
  row with slot -1), ``_trigger(tab, room, code, ...)`` (a room-wide trigger: ``_pass`` for every
  present viewer of the room, in the order of their first accepted event, resumable when the output buffer or heap is full)
  and ``share_rebuild(tab, now, n)`` (every count recomputed: after a reload);
* :func:`after_event`, :func:`after_timer`, :func:`room_event`, :func:`resume` -- the lines the
  event and timer code call them with.

Room rule ``j`` writes output rows with rule index ``N_RULES + j`` and slot -1 (``viewer = ""``).
"""

from __future__ import annotations

import hashlib

from ..features.roomnames import ROOM_VALUES, share_names
from ..rules import ast
from .exprgen import NEVER, ExprGen, desugar
from .layout import us

__all__ = ["add_columns", "share_sync", "functions", "after_event", "after_timer", "room_event", "resume",
           "room_rules_of"]


def room_rules_of(rs) -> list:
    return [r for r in rs.room_rules if r.enabled]


def add_columns(lay, rs) -> None:
    for name in share_names(rs):
        if membership_inputs(rs, name) is not None:
            lay.add("vi", f"share_due:{name}")  # its next time-driven change (0: evaluate at the next pass)
    for rule in rs.room_rules:
        for what in ("room_edge", "room_last", "room_fired", "room_suppressed"):
            lay.add("ri", f"{what}:{rule.name}")
    if room_rules_of(rs) and changing_types(rs) is not None:
        lay.add("ri", checked_column(rs))
    if rs.room_types:
        lay.add("ri", "trigger_cursor")
    lay.extra_rows = 2 * len(room_rules_of(rs))  # room rules of the event's room and of the one it left


def _membership(mg, gen: ExprGen, name: str) -> tuple[str, str]:
    """(value, next change) of segment or target ``name`` for ``slot``."""
    if name in mg.rs.targets:
        return gen.boolean(desugar(mg.rs.targets[name]))
    return gen.boolean(ast.Name(name, kind="segment", type="bool"))


def share_sync(mg, gen: ExprGen, end: bool = False, gate: bool = False) -> None:
    """Keep ``RI[r, share:NAME]`` = present viewers of room r in NAME, for ``slot`` (``room`` is its room).

    At the start of the pass every shared name; at its end (``end``) again those reading tags
    (the pass's rules may have changed them)."""
    from .layout import tags_read

    names = share_names(mg.rs)
    if end:
        names = [n for n in names if n in mg.rs.segments and tags_read(mg.rs, mg.rs.segments[n])]
    if not names:
        return
    present = f"(VI[slot, {mg.vi('flags')}] & FLAG_PRESENT) != 0"
    gen.emit(f"spres = {present}")
    if gate:  # in _pass: a session that started or ended now, or the idle timeout
        gen.emit(f"severy = timer == TIMER_ENDED or VI[slot, {mg.vi('sess_start')}] == now "
                 f"or VI[slot, {mg.vi('sess_end')}] == now")
    for name in names:
        inputs = membership_inputs(mg.rs, name) if gate else None
        scope = gen
        if inputs is not None:
            # skipped while nothing that changes it happened: no session start or end, none of
            # its input event types, its next time-driven change not come
            dcol = mg.col("vi", f"share_due:{name}")
            scope = gen.child()
            touched = [f"ev_code == {mg.code(t)}" for t in inputs]
            gen.emit(f"srun = {' or '.join(['severy', f'now >= VI[slot, {dcol}]', *touched])}")
        b, c = _membership(mg, scope, name)
        col, rcol = mg.col("vi", f"share_room:{name}"), mg.col("ri", f"share:{name}")
        scope.emit(f"# room.share({name}): present viewers per room")
        scope.emit(f"want = room + 1 if spres and {b} else 0")
        scope.emit(f"had = VI[slot, {col}]")
        scope.emit("if had != want:")
        scope.emit("    if had > 0:")
        scope.emit(f"        RI[had - 1, {rcol}] -= 1")
        scope.emit("    if want > 0:")
        scope.emit(f"        RI[want - 1, {rcol}] += 1")
        scope.emit(f"    VI[slot, {col}] = want")
        if inputs is not None:
            scope.emit(f"VI[slot, {dcol}] = {c if c != NEVER else 'NEVER'}")
            gen.nest("if srun:", scope)
            gen.emit(f"due = min(due, VI[slot, {dcol}])")
        elif c != NEVER and gen.with_timers:
            gen.emit(f"due = min(due, {c})")


def membership_inputs(rs, name: str) -> tuple[str, ...] | None:
    """The event types whose events can change "in NAME" (besides a session starting or ending,
    time, and set_profile for a target); None when anything can (tags, the room...)."""
    from . import layout

    if not layout.SKIP_UNCHANGED:
        return None
    if name in rs.targets:
        return ()  # profile attributes only: set_profile recounts (share_update)
    return layout.rule_inputs(rs, ast.Name(name, kind="segment", type="bool"))


def share_due(mg, gen: ExprGen) -> None:
    """In ``_due`` (rescan after a reload): the next time-driven change of each shared membership."""
    for name in share_names(mg.rs):
        _, c = _membership(mg, gen, name)
        if c != NEVER:
            gen.emit(f"due = min(due, {c})")


def _room_rule(mg, rule, j: int, gen: ExprGen, r: str = "room", now: str = "now") -> None:
    """Rule ``j`` of the room rules for room slot ``r`` at time ``now`` (local names: ``rfire``, ``rn``)."""
    edge, last = mg.col("ri", f"room_edge:{rule.name}"), mg.col("ri", f"room_last:{rule.name}")
    fired, supp = mg.col("ri", f"room_fired:{rule.name}"), mg.col("ri", f"room_suppressed:{rule.name}")
    gen.emit(f"# room rule {rule.name!r}: {rule.when_text}")
    b, _ = gen.boolean(desugar(rule.when))
    gen.emit(f"rfire = {b} and RI[{r}, {edge}] == 0")
    gen.emit(f"RI[{r}, {edge}] = 1 if {b} else 0")
    body = gen.child()
    values, kinds = [], []
    for text, node in rule.placeholders.items():
        val, kind = body.value(node)
        values.append(val)
        kinds.append((text, kind))
    mg.placeholder_kinds[rule.name] = kinds
    out = ["rn = meta[0, META_OUT_N]", f"OI[rn, 0] = N_RULES + {j}", "OI[rn, 1] = -1", f"OI[rn, 2] = {now}",
           "OI[rn, 3] = -1", f"OI[rn, 4] = {r}", *(f"OF[rn, {k}] = {v}" for k, v in enumerate(values)),
           "meta[0, META_OUT_N] = rn + 1", f"RI[{r}, {fired}] += 1", f"RI[{r}, {last}] = {now}"]
    if rule.cooldown is not None:
        cd = us(rule.cooldown)
        body.emit(f"if RI[{r}, {last}] != MISSING and {now} - RI[{r}, {last}] < {cd}:")
        body.emit(f"    RI[{r}, {supp}] += 1  # cooldown")
        body.emit("else:")
        body.lines.extend("    " + line for line in out)
    else:
        body.lines.extend(out)
    gen.nest("if rfire:", body)


def room_rule_lines(mg, r: str, now: str) -> list[str]:
    """Every enabled room rule for room slot ``r`` at ``now``, as statements (file order)."""
    gen = ExprGen(mg.rs, mg.lay, mg.lits, with_timers=False)
    gen.cache["room"] = (r,)  # room names read the rule's room
    gen.counter = [10_000]  # temporaries apart from the surrounding kernel's
    for rule in room_rules_of(mg.rs):
        _room_rule(mg, rule, mg.rs.room_rules.index(rule), gen, r, now)
    return gen.lines


def functions(mg) -> list[str]:
    """``_room_rules``, ``_trigger`` and ``share_rebuild`` (the ones the rules need)."""
    from .codegen import views_for

    rs, out = mg.rs, []
    rules = room_rules_of(rs)
    if rules:
        body = "\n".join("    " + line for line in [*room_rule_lines(mg, "room", "now"), "return 0"])
        out.append(f"@njit(**KERNEL_FLAGS)\ndef _room_rules(tab, room, now):\n"
                   f"    # the room rules of one room, after a pass in it (file order)\n{views_for(body)}\n{body}")
    if rs.room_types:
        rows = mg.lay.rows_per_pass(len(mg.rules))
        v = mg.vi
        body = f"""    # the present viewers of the room, in the order of their first accepted event (SPEC 8: the
    # order of same-instant firings); slots are handed out in that order until retention reuses one
    order = np.empty(RI[room, {mg.col('ri', 'audience')}], np.int64)
    n = 0
    for s in range(PRES.shape[0]):
        if PRES[s, 0] == room and n < order.shape[0]:
            order[n] = s
            n += 1
    order = order[:n]
    for j in range(1, n):
        if VI[order[j], {v('arrival')}] < VI[order[j - 1], {v('arrival')}]:
            arrivals = np.empty(n, np.int64)
            for i in range(n):
                arrivals[i] = VI[order[i], {v('arrival')}]
            order = order[np.argsort(arrivals)]
            break
    for j in range(RI[room, RI_TRIGGER_CURSOR], n):
        s = order[j]
        if meta[0, META_OUT_N] + {rows} > OI.shape[0] or meta[0, META_HEAP_N] + 2 > H.shape[0]:
            RI[room, RI_TRIGGER_CURSOR] = j  # resumed here once Python has drained and grown
            return -1
        snow = until
        if snow < VI[s, {v('clock')}]:
            snow = VI[s, {v('clock')}]
        VI[s, {v('clock')}] = snow
        _pass(tab, s, snow, np.int64(EVENT), code, item, cat, text, room, ts, price, amount, index, np.int64(0))
    RI[room, RI_TRIGGER_CURSOR] = MISSING
    return 0"""
        out.append(f"@njit(**KERNEL_FLAGS)\ndef _trigger(tab, room, code, until, item, cat, text, ts, price, amount, index):\n"
                   f"    # a room-wide trigger: the event's rules for every viewer present in the room, in arrival order\n"
                   f"{views_for(body)}\n{body}")
    names = share_names(rs)
    gen = ExprGen(rs, mg.lay, mg.lits, with_timers=False)
    lines = []
    for name in names:
        lines.append(f"    RI[:, {mg.col('ri', 'share:' + name)}] = 0")
    if names:
        gen.emit(f"room = VI[slot, {mg.vi('room')}]")
        gen.emit(f"spres = (VI[slot, {mg.vi('flags')}] & FLAG_PRESENT) != 0")
        for name in names:
            b, _ = _membership(mg, gen, name)
            gen.emit(f"want = room + 1 if spres and {b} else 0")
            gen.emit(f"VI[slot, {mg.col('vi', 'share_room:' + name)}] = want")
            gen.emit("if want > 0:")
            gen.emit(f"    RI[want - 1, {mg.col('ri', 'share:' + name)}] += 1")
        lines += ["    for slot in range(n):", *("        " + line for line in gen.lines)]
    lines.append("    return 0")
    body = "\n".join(lines)
    one = ExprGen(rs, mg.lay, mg.lits, with_timers=False)
    one.emit(f"room = VI[slot, {mg.vi('room')}]")
    share_sync(mg, one)
    one.emit("return 0")
    text = "\n".join("    " + line for line in one.lines)
    out.append(f"@njit(**KERNEL_FLAGS)\ndef share_update(tab, slot, now):\n"
               f"    # one viewer's room.share units (after set_profile: targets read profiles)\n{views_for(text)}\n{text}")
    out.append(f"@njit(**KERNEL_FLAGS)\ndef share_rebuild(tab, now, n):\n"
               f"    # every room.share count from scratch (after a reload: segments may have changed)\n"
               f"{views_for(body)}\n{body}")
    return out


def checked_column(rs) -> str:
    """The RI column saying the room rules were evaluated in the room since they last changed:
    named after the rules' conditions, so a reload that changes them starts it at 0 again."""
    text = "\n".join(f"{r.name}: {r.when_text}" for r in room_rules_of(rs))
    return f"room_checked:{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def changing_types(rs) -> set[str] | None:
    """The viewer event types after which the room rules are evaluated besides those that start
    or end a session (which change the room's audience, UV, dwell, funnel entries): the types that
    change a value they read (features/roomnames.py ``changed_by``). None: after every event
    (``room.share``: any pass can change a viewer's segments; tests turn the skipping off,
    compiler/layout.py ``SKIP_UNCHANGED``)."""
    from . import layout

    if not layout.SKIP_UNCHANGED:
        return None
    types: set[str] = {"leave"}
    for rule in room_rules_of(rs):
        for n in ast.walk(rule.when):
            if isinstance(n, ast.RoomValue):
                changed = ROOM_VALUES[n.name].changed_by
                if changed is None:
                    return None
                types.update(changed)
    return types


def after_event(mg) -> list[str]:
    """After the event's pass: the room rules of its room, and of the room it left; skipped when
    nothing they read can have changed (their conditions would give the same edges: no firing)."""
    if not room_rules_of(mg.rs):
        return []
    rules = room_rule_lines(mg, "rroom", "now")
    types = changing_types(mg.rs)
    if types is not None:
        checked = mg.col("ri", checked_column(mg.rs))
        gate = " or ".join(["not prev_pres", "prev_room != room", *(f"code == {mg.code(t)}" for t in sorted(types))])
        rules = [f"if {gate} or RI[rroom, {checked}] == 0:",
                 f"    RI[rroom, {checked}] = 1  # evaluated since the room rules last changed (a reload)",
                 *("    " + line for line in rules)]
    # inline (a call to _room_rules costs ~100 ns on this path): the event's room, then the one it left
    return ["rroom = room",
            "for rk in range(2):",
            "    if rk == 1:",
            "        if prev_room < 0 or prev_room == room:",
            "            break",
            "        rroom = prev_room",
            *("    " + line for line in rules)]


def before_apply(mg) -> list[str]:
    if not room_rules_of(mg.rs):
        return []
    return [f"prev_room = VI[slot, {mg.vi('room')}]",
            f"prev_pres = (VI[slot, {mg.vi('flags')}] & FLAG_PRESENT) != 0  # before the event (timers ran)"]


def after_timer(mg) -> list[str]:
    if not room_rules_of(mg.rs):
        return []
    return [f"    if VI[tslot, {mg.vi('room')}] >= 0:",
            f"        _room_rules(tab, VI[tslot, {mg.vi('room')}], tnow)"]


def room_event(mg, need_room: str) -> list[str]:
    """In the room-event branch: a room-wide trigger, then the room's rules."""
    rs, L = mg.rs, []
    if rs.room_types:
        test = " or ".join(f"code == {mg.code(t)}" for t in rs.room_types)
        L += [f"    if {test}:",
              "        RI[room, RI_TRIGGER_CURSOR] = 0",
              "        if _trigger(tab, room, code, until, item, cat, text, ts, price, amount, index) < 0:",
              f"            {need_room}"]
    if room_rules_of(rs):
        L.append("    _room_rules(tab, room, until)")
    return L


def resume(mg, need_room: str, done: str) -> list[str]:
    """Before the event is counted: a room-wide trigger that stopped for room goes on where it stopped."""
    if not mg.rs.room_types:
        return []
    L = ["if slot < 0 and RI[room, RI_TRIGGER_CURSOR] != MISSING:  # a room-wide trigger resumed",
         "    if _trigger(tab, room, code, until, item, cat, text, ts, price, amount, index) < 0:",
         f"        {need_room}"]
    if room_rules_of(mg.rs):
        L.append("    _room_rules(tab, room, until)")
    return [*L, f"    {done}"]
