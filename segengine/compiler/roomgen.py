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
  present viewer of the room, in slot order, resumable when the output buffer or heap is full)
  and ``share_rebuild(tab, now, n)`` (every count recomputed: after a reload);
* :func:`after_event`, :func:`after_timer`, :func:`room_event`, :func:`resume` -- the lines the
  event and timer code call them with.

Room rule ``j`` writes output rows with rule index ``N_RULES + j`` and slot -1 (``viewer = ""``).
"""

from __future__ import annotations

from ..features.roomnames import share_names
from ..rules import ast
from .exprgen import NEVER, ExprGen, desugar
from .layout import us

__all__ = ["add_columns", "share_sync", "functions", "after_event", "after_timer", "room_event", "resume",
           "room_rules_of"]


def room_rules_of(rs) -> list:
    return [r for r in rs.room_rules if r.enabled]


def add_columns(lay, rs) -> None:
    for rule in rs.room_rules:
        for what in ("room_edge", "room_last", "room_fired", "room_suppressed"):
            lay.add("ri", f"{what}:{rule.name}")
    if rs.room_types:
        lay.add("ri", "trigger_cursor")
    lay.extra_rows = 2 * len(room_rules_of(rs))  # room rules of the event's room and of the one it left


def _membership(mg, gen: ExprGen, name: str) -> tuple[str, str]:
    """(value, next change) of segment or target ``name`` for ``slot``."""
    if name in mg.rs.targets:
        return gen.boolean(desugar(mg.rs.targets[name]))
    return gen.boolean(ast.Name(name, kind="segment", type="bool"))


def share_sync(mg, gen: ExprGen, end: bool = False) -> None:
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
    for name in names:
        b, c = _membership(mg, gen, name)
        col, rcol = mg.col("vi", f"share_room:{name}"), mg.col("ri", f"share:{name}")
        gen.emit(f"# room.share({name}): present viewers per room")
        gen.emit(f"want = room + 1 if spres and {b} else 0")
        gen.emit(f"had = VI[slot, {col}]")
        gen.emit("if had != want:")
        gen.emit("    if had > 0:")
        gen.emit(f"        RI[had - 1, {rcol}] -= 1")
        gen.emit("    if want > 0:")
        gen.emit(f"        RI[want - 1, {rcol}] += 1")
        gen.emit(f"    VI[slot, {col}] = want")
        if c != NEVER and gen.with_timers:
            gen.emit(f"due = min(due, {c})")


def share_due(mg, gen: ExprGen) -> None:
    """In ``_due`` (rescan after a reload): the next time-driven change of each shared membership."""
    for name in share_names(mg.rs):
        _, c = _membership(mg, gen, name)
        if c != NEVER:
            gen.emit(f"due = min(due, {c})")


def _room_rule(mg, rule, j: int, gen: ExprGen) -> None:
    lay = mg.lay
    edge, last = mg.col("ri", f"room_edge:{rule.name}"), mg.col("ri", f"room_last:{rule.name}")
    fired, supp = mg.col("ri", f"room_fired:{rule.name}"), mg.col("ri", f"room_suppressed:{rule.name}")
    gen.emit(f"# room rule {rule.name!r}: {rule.when_text}")
    b, _ = gen.boolean(desugar(rule.when))
    gen.emit(f"fire = {b} and RI[room, {edge}] == 0")
    gen.emit(f"RI[room, {edge}] = 1 if {b} else 0")
    body = gen.child()
    values, kinds = [], []
    for text, node in rule.placeholders.items():
        val, kind = body.value(node)
        values.append(val)
        kinds.append((text, kind))
    mg.placeholder_kinds[rule.name] = kinds
    out = ["n = meta[0, META_OUT_N]", f"OI[n, 0] = N_RULES + {j}", "OI[n, 1] = -1", "OI[n, 2] = now",
           "OI[n, 3] = -1", "OI[n, 4] = room", *(f"OF[n, {k}] = {v}" for k, v in enumerate(values)),
           "meta[0, META_OUT_N] = n + 1", f"RI[room, {fired}] += 1", f"RI[room, {last}] = now"]
    if rule.cooldown is not None:
        cd = us(rule.cooldown)
        body.emit(f"if RI[room, {last}] != MISSING and now - RI[room, {last}] < {cd}:")
        body.emit(f"    RI[room, {supp}] += 1  # cooldown")
        body.emit("else:")
        body.lines.extend("    " + line for line in out)
    else:
        body.lines.extend(out)
    gen.nest("if fire:", body)
    del lay


def functions(mg) -> list[str]:
    """``_room_rules``, ``_trigger`` and ``share_rebuild`` (the ones the rules need)."""
    from .codegen import views_for

    rs, out = mg.rs, []
    rules = room_rules_of(rs)
    if rules:
        gen = ExprGen(rs, mg.lay, mg.lits, with_timers=False, in_event="False")
        gen.cache["room"] = ("room",)  # room names read the rule's room
        gen.emit("slot = np.int64(-1)")
        for j, rule in enumerate(rules):
            _room_rule(mg, rule, rs.room_rules.index(rule), gen)
        gen.emit("return 0")
        body = "\n".join("    " + line for line in gen.lines)
        out.append(f"@njit(**KERNEL_FLAGS)\ndef _room_rules(tab, room, now):\n"
                   f"    # the room rules of one room, after a pass in it (file order)\n{views_for(body)}\n{body}")
    if rs.room_types:
        rows = mg.lay.rows_per_pass(len(mg.rules))
        v = mg.vi
        body = f"""    start = RI[room, RI_TRIGGER_CURSOR]
    for s in range(start, VI.shape[0]):
        if VI[s, {v('room')}] != room or (VI[s, {v('flags')}] & FLAG_PRESENT) == 0:
            continue
        if meta[0, META_OUT_N] + {rows} > OI.shape[0] or meta[0, META_HEAP_N] + 2 > H.shape[0]:
            RI[room, RI_TRIGGER_CURSOR] = s  # resumed here once Python has drained and grown
            return -1
        snow = until
        if snow < VI[s, {v('clock')}]:
            snow = VI[s, {v('clock')}]
        VI[s, {v('clock')}] = snow
        _pass(tab, s, snow, np.int64(EVENT), code, item, cat, text, room, ts, price, amount, index)
    RI[room, RI_TRIGGER_CURSOR] = MISSING
    return 0"""
        out.append(f"@njit(**KERNEL_FLAGS)\ndef _trigger(tab, room, code, until, item, cat, text, ts, price, amount, index):\n"
                   f"    # a room-wide trigger: the event's rules for every viewer present in the room, in slot order\n"
                   f"{views_for(body)}\n{body}")
    names = share_names(rs)
    gen = ExprGen(rs, mg.lay, mg.lits, with_timers=False, in_event="False")
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
    one = ExprGen(rs, mg.lay, mg.lits, with_timers=False, in_event="False")
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


def after_event(mg) -> list[str]:
    """After the event's pass: the room rules of its room, and of the room it left."""
    if not room_rules_of(mg.rs):
        return []
    return ["_room_rules(tab, room, now)",
            "if prev_room >= 0 and prev_room != room:",
            "    _room_rules(tab, prev_room, now)"]


def before_apply(mg) -> list[str]:
    return [f"prev_room = VI[slot, {mg.vi('room')}]"] if room_rules_of(mg.rs) else []


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
