"""``Engine.reload``: swap in new rules while the engine runs, keeping viewer and room state.

Order of work, so that a bad file changes nothing: read the text; if it is the text
already running, stop (a hash, nothing else); load and check it (``RulesError``);
compile it and, by default, warm its kernels up on a throw-away engine; build a new
:class:`~segengine.runtime.store.Store` for the new layout and copy the state over
(:func:`migrate`); only then swap them in (:meth:`EngineCore.swap
<segengine.runtime.core.EngineCore.swap>`, which rebinds the literals) and recompute
every viewer's next timer (:func:`rescan`).

What is kept and what restarts is listed in ``docs/operations.md`` (Reload). In short,
state is matched by *name*: columns by the feature they hold (``since(checkout)``,
``count(like,60000000us)[3]``, ``interest(snacks)``), per-rule state by rule name,
tag bits by tag name, profile categories by value. Anything new starts empty; anything
gone is dropped. Slots, ids, the timer heap and the cart table stay as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from ..compiler import CompiledRules, compile_rules
from ..kernels.primitives import (
    HEAP_COLS, META_CART_N, META_HEAP_N, META_NOW, META_OUT_N, META_RULES, MISSING,
)
from ..runtime.store import Store
from ..rules.load import RuleSet, load_rules, read_rules_text
from ..compiler.layout import Layout
from ..guards import counter_columns, fired_index

if TYPE_CHECKING:
    from ..runtime.core import EngineCore

__all__ = ["read_source", "reload", "migrate", "rescan"]


def read_source(source: str | Path) -> tuple[str, str]:
    """``(text, filename)`` of a rules path or TOML text.

    A :class:`~pathlib.Path` is a file. A string is a file path when it is one line
    without ``=``, ``[`` or ``#`` (which no rules text of one line can be), else TOML text.
    """
    if isinstance(source, Path):
        return read_rules_text(source), str(source)
    if not isinstance(source, str):
        raise TypeError(f"reload() takes a path or TOML text, not {type(source).__name__}")
    line = source.strip()
    if line and "\n" not in line and not any(c in line for c in "=[#"):
        return read_rules_text(line), line
    return source, "<rules>"


def reload(core: "EngineCore", source: str | Path, *, warmup: Callable[[RuleSet], object] | None = None) -> bool:
    """See :meth:`Engine.reload`. Returns whether the rules changed.

    ``warmup``: called with the new rules after they compiled, before the swap (the engine
    warms their kernels up on a throw-away engine); an exception there changes nothing.
    """
    text, filename = read_source(source)
    try:
        same = hashlib.sha256(text.encode()).hexdigest() == core.rules.fingerprint
    except UnicodeEncodeError:  # a lone surrogate: load_rules reports where
        same = False
    if same:
        return False
    rs = load_rules(text, filename)  # RulesError: nothing touched
    compiled = compile_rules(rs)
    if warmup is not None:
        warmup(rs)  # compile (or load) the kernels before the swap
    store = migrate(core.compiled, core.store, compiled)
    # the swap: nothing below can fail on a bad rules file
    core.swap(compiled, store)  # literals, sweep schedule, firing log; the engine rebinds its kernel
    rescan(core.store, core.module, len(core.viewers))
    # room.share counts from scratch: a segment or target may mean something else now
    core.module.share_rebuild(core.store.tab, core.now_us(), len(core.viewers))
    return True


# --- state migration ----------------------------------------------------------------------

def migrate(old: CompiledRules, store: Store, new: CompiledRules) -> Store:
    """A new Store for ``new``'s layout holding ``store``'s state (same slots, same capacity)."""
    ol, nl = old.layout, new.layout
    ors, nrs = old.rules, new.rules
    gen = new.generated
    out = Store(nl, len(nrs.rules), gen.out_width, len(gen.literals), viewers=store.VI.shape[0], rooms=store.RI.shape[0])

    old_rules = {r.name: r for r in ors.rules}
    new_rules = {r.name: r for r in nrs.rules}
    # deadlines start unknown (MISSING): the first pass after a reload evaluates every rule
    skip_vi = {name for name in nl.vi if name.startswith(("tags", "edges", "deadline:", "once_"))}
    skip_vn = _copy_profile_codes(ors, nrs, ol, nl, store.VN, out.VN)
    _copy_columns(store.VI, ol.vi, out.VI, nl.vi, skip_vi)
    _copy_columns(store.VF, ol.vf, out.VF, nl.vf, set())
    _copy_columns(store.VN, ol.vn, out.VN, nl.vn, skip_vn)
    _copy_bits(store.VI, ol, out.VI, nl, ol.state_rules, nl.state_rules, Layout.edge_bit)
    _copy_bits(store.VI, ol, out.VI, nl, ol.tags, nl.tags, Layout.tag_bit)
    # a once mark means something else for the other kind ("session" / "lifetime"): dropped
    same_once = [name for name in nl.once_bits if name in ol.once_bits and old_rules[name].once == new_rules[name].once]
    _copy_bits(store.VI, ol, out.VI, nl, same_once, same_once, Layout.once_bit)

    budget_cols = {name for name in nl.ri if name.startswith("budget:")}
    _copy_columns(store.RI, ol.ri, out.RI, nl.ri, budget_cols)
    for name, col in nl.budget_cols.items():
        if name in ol.budget_cols:
            _copy_ring(store.RI, ol.budget_cols[name], old_rules[name].budget[0],
                       out.RI, col, new_rules[name].budget[0])

    out.META[0, :META_RULES] = store.META[0, :META_RULES]  # now, heap size, events, late, timers
    out.META[0, META_OUT_N] = 0
    n_old, n_new = len(ors.rules), len(nrs.rules)
    old_index = {r.name: i for i, r in enumerate(ors.rules)}
    for j, rule in enumerate(nrs.rules):
        i = old_index.get(rule.name)
        if i is None:
            continue
        out.META[0, fired_index(j)] = store.META[0, fired_index(i)]
        out.META[0, counter_columns(n_new, j)] = store.META[0, counter_columns(n_old, i)]

    out.HEAP = store.HEAP.copy()
    out.PRES = store.PRES.copy()  # same slots, same rooms
    if ol.has_cart and nl.has_cart:
        out.CARTK = store.CARTK.copy()
        out.CARTV = store.CARTV.copy()
    else:  # the cart is kept only while the rules track it; a cart that comes back starts empty
        out.META[0, META_CART_N] = 0
    out.refresh()
    return out


def _copy_columns(src: np.ndarray, src_names: list[str], dst: np.ndarray, dst_names: list[str], skip: set[str]) -> None:
    """Copy the columns both sides name alike (row-major arrays: runs of columns, copied as slices)."""
    where = {name: i for i, name in enumerate(src_names)}
    pairs = [(i, where[name]) for i, name in enumerate(dst_names) if name in where and name not in skip]
    start = 0
    for k in range(1, len(pairs) + 1):
        if k == len(pairs) or pairs[k] != (pairs[k - 1][0] + 1, pairs[k - 1][1] + 1):
            (d, s), width = pairs[start], k - start
            dst[:, d:d + width] = src[:, s:s + width]
            start = k


def _copy_bits(src: np.ndarray, src_lay: Layout, dst: np.ndarray, dst_lay: Layout,
               src_names: list[str], dst_names: list[str], bit) -> None:
    """Copy one bit per name (edge bits by rule, tag bits by tag); new names start at 0."""
    known = set(src_names)
    for name in dst_names:
        if name in known:
            scol, smask = bit(src_lay, name)
            dcol, dmask = bit(dst_lay, name)
            dst[:, dcol] |= ((src[:, scol] & smask) != 0).astype(np.int64) * np.int64(dmask)


def _copy_profile_codes(ors: RuleSet, nrs: RuleSet, ol: Layout, nl: Layout, src: np.ndarray, dst: np.ndarray) -> set[str]:
    """Category profile attributes: codes follow the value names. Returns the VN columns done here."""
    done: set[str] = set()
    for name, attr in nrs.profile.items():
        before = ors.profile.get(name)
        if attr.kind == "num" or before is None or before.kind == "num":
            continue
        lut = np.array([0] + [attr.values.index(v) + 1 if v in attr.values else 0 for v in before.values], np.int32)
        codes = src[:, ol.profile_cols[name][1]]
        dst[:, nl.profile_cols[name][1]] = lut[np.clip(codes, 0, len(lut) - 1)]
        done.add(f"profile:{name}")
    return done


def _copy_ring(src: np.ndarray, scol: int, sn: int, dst: np.ndarray, dcol: int, dn: int) -> None:
    """A budget ring (head, then n firing times, oldest at head) resized from sn to dn entries.

    Keeps the latest ``dn`` firing times of every room, oldest first from slot 0.
    """
    if sn == dn:
        dst[:, dcol:dcol + 1 + dn] = src[:, scol:scol + 1 + sn]
        return
    heads = src[:, scol]
    order = (heads[:, None] + np.arange(sn)[None, :]) % sn  # oldest -> newest
    times = np.take_along_axis(src[:, scol + 1:scol + 1 + sn], order, axis=1)
    keep = times[:, -dn:] if dn <= sn else np.concatenate([times, np.full((len(times), dn - sn), MISSING)], axis=1)
    # MISSING entries are the oldest (never used); move real times to the front, oldest first
    filled = keep != MISSING
    count = filled.sum(axis=1)
    ring = np.full_like(keep, MISSING)
    for row in np.nonzero(count)[0]:
        ring[row, :count[row]] = keep[row][filled[row]]
    dst[:, dcol] = count % dn
    dst[:, dcol + 1:dcol + 1 + dn] = ring


# --- timers ---------------------------------------------------------------------------------

def rescan(store: Store, module: ModuleType, n: int) -> None:
    """Recompute the next timer of slots ``0..n-1`` under the current rules (fires nothing)."""
    need = int(store.META[0, META_HEAP_N]) + n + 64
    cap = store.HEAP.shape[0]
    if need > cap:
        heap = np.zeros((max(need, 2 * cap), HEAP_COLS), np.int64)
        heap[:cap] = store.HEAP
        store.HEAP = heap
        store.refresh()
    now = int(store.META[0, META_NOW])
    module.rescan(store.tab, 0 if now == MISSING else now, n)
