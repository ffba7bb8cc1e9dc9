"""Event counts and times: ``count(T, W)``, ``sum``/``avg(F, T, W)``, ``since(T)``, ``count(T)``.

* ``since(T)``: one VI column per set of types, the time of the last such event (per viewer,
  across sessions);
* ``count(T)`` (no window): one VN column per set of types, cleared when a session starts;
* ``count(T, W)``: a sliding window of 12 buckets of ``W / 12`` (12 VN columns), sharing one VI
  "head" column (the newest bucket written) with every window of the same length;
* ``sum``/``avg(F, T, W)``: 12 VN columns counting the events that carry field ``F`` and 12 VF
  columns summing it.

A window's value changes with time alone when its oldest buckets drop out: its *horizon*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..kernels.primitives import COUNT_MAX
from ..rules import ast
from .base import CONST, LINEAR, NEVER, Feature, us


def clear_buckets(cells: list[str]) -> list[str]:
    """Statements clearing the ``nclear`` buckets a roll to bucket ``k`` passed (``window_roll``)
    in every window of ``cells`` (each ``VN[slot, C + pos] = 0``, with its bucket 0 at C): all
    12 without position arithmetic (a new head, or a window idle for its length, the common
    case of a keyed window), else from ``k``'s bucket back, wrapping without a modulo each."""
    return ["if nclear >= 12:",
            "    for pos in range(12):",
            *(f"        {c}" for c in cells),
            "else:",
            "    pos = k % 12",
            "    for j in range(nclear):",
            *(f"        {c}" for c in cells),
            "        pos = pos - 1 if pos > 0 else 11"]


@dataclass
class WindowFeature:
    """A sliding window of 12 buckets: counts in VN (and sums in VF for ``sum``/``avg``)."""

    types: tuple[str, ...]
    window_us: int
    count_col: int  # first of 12 VN columns
    sum_col: int = -1  # first of 12 VF columns (sum/avg of `field`)
    field_name: str = ""
    head_col: int = -1  # VI column shared by all windows of this length


def _key(types) -> tuple[str, ...]:
    return tuple(sorted(types))


# helpers of the expression generator ------------------------------------------------------
def bucket(gen, w_us: int, head_col: int) -> tuple[str, str]:
    key = f"bucket:{w_us}"
    if key not in gen.cache:
        k, head = gen.tmp("k"), gen.tmp("head")
        gen.emit(f"{k} = bucket_of(now, np.int64({w_us}))")
        gen.emit(f"{head} = VI[slot, {gen.col('vi', head_col)}]")
        gen.cache[key] = (k, head)
    return gen.cache[key]


def window_count(gen, col: int, head: str, k: str) -> str:
    return gen.shared(("count", col), f"window_count(VN, slot, np.int64({gen.col('vn', col)}), np.int64({head}), np.int64({k}))",
                      "-1.0", "{0} < 0.0")


def expiry(gen, col: int, head: str, k: str, w_us: int, count: str = "") -> str:
    """When the window's value next changes by a bucket dropping out; ``count``: its count, if
    already computed (an empty window never changes that way: skip the walk)."""
    if not gen.with_timers:
        return NEVER
    call = f"window_expiry(VN, slot, np.int64({gen.col('vn', col)}), np.int64({head}), np.int64({k}), np.int64({w_us}))"
    return gen.shared(("expiry", col), f"({call} if {count} > 0.0 else NEVER)" if count else call,
                      "MISSING", "{0} == MISSING")


class Windows(Feature):
    key = "windows"
    rank = 60
    nodes = (ast.Count, ast.Agg, ast.Since)

    def owns(self, node) -> bool:
        return isinstance(node, self.nodes) and node.by is None  # keyed ones: features/keyed.py

    def node_inputs(self, node):
        return tuple(node.types)

    def unit(self, node) -> str:
        return "s" if isinstance(node, ast.Since) else ""

    def columns(self, rs, lay, nodes, names) -> None:
        for n in nodes:
            if not self.owns(n):
                continue
            if isinstance(n, ast.Since):
                key = _key(n.types)
                if key not in lay.since:
                    lay.since[key] = lay.add("vi", f"since({'|'.join(key)})")
            elif isinstance(n, ast.Count) and n.window is None:
                key = _key(n.types)
                if key not in lay.session_counts:
                    lay.session_counts[key] = lay.add("vn", f"count({'|'.join(key)})")
            elif isinstance(n, (ast.Count, ast.Agg)):
                w = us(n.window)
                types = _key(n.types)
                if w not in lay.heads:
                    lay.heads[w] = lay.add("vi", f"head:{w}")
                ckey = (types, w)
                if isinstance(n, ast.Count) and ckey not in lay.windows:
                    col = lay.add("vn", f"count({'|'.join(types)},{w}us)", 12)
                    lay.windows[ckey] = WindowFeature(types, w, col, head_col=lay.heads[w])
                if isinstance(n, ast.Agg):
                    # sum/avg count only the events that carry the field: their own count buckets
                    skey = (types, w, n.field_name)
                    if skey not in lay.windows:
                        label = f"{n.field_name},{'|'.join(types)},{w}us"
                        ncol = lay.add("vn", f"n({label})", 12)
                        scol = lay.add("vf", f"sum({label})", 12)
                        lay.windows[skey] = WindowFeature(types, w, ncol, scol, n.field_name, lay.heads[w])

    def session_start(self, k):
        return [f"VN[slot, {k.col('vn', col)}] = 0" for col in k.lay.session_counts.values()]

    def update(self, k):
        lay = k.lay
        L: list[str] = []
        for types, col in lay.since.items():
            L += [f"if {k.type_test(types)}:", f"    VI[slot, {k.col('vi', col)}] = now"]
        for types, col in lay.session_counts.items():
            vn = k.col("vn", col)
            L += [f"if in_session and {k.type_test(types)} and VN[slot, {vn}] < COUNT_MAX:", f"    VN[slot, {vn}] += 1"]
        by_width: dict[int, list] = {}
        for win in lay.windows.values():
            by_width.setdefault(win.window_us, []).append(win)
        for w_us, wins in by_width.items():
            all_types = tuple(sorted({t for win in wins for t in win.types}))
            L += [f"if {k.type_test(all_types)}:",
                  f"    k = bucket_of(now, np.int64({w_us}))",
                  f"    nclear = window_roll(VI, slot, np.int64({k.col('vi', wins[0].head_col)}), k)"]
            cells = [f"VN[slot, {k.col('vn', win.count_col)} + pos] = 0" for win in wins]
            cells += [f"VF[slot, {k.col('vf', win.sum_col)} + pos] = 0.0" for win in wins if win.sum_col >= 0]
            L += ["    " + line for line in clear_buckets(cells)]
            L.append("    pos = k % 12")
            for win in wins:
                count = k.col("vn", win.count_col)
                tests = [] if set(win.types) == set(all_types) else [k.type_test(win.types)]  # the block's own test
                if win.sum_col >= 0:
                    tests.append(f"not np.isnan(ev_{win.field_name})")
                L.append(f"    if {' and '.join([*tests, f'VN[slot, {count} + pos] < COUNT_MAX'])}:")
                L.append(f"        VN[slot, {count} + pos] += 1")
                if win.sum_col >= 0:
                    L.append(f"        VF[slot, {k.col('vf', win.sum_col)} + pos] += ev_{win.field_name}")
        return L

    def number(self, gen, node, v):
        lay = gen.lay
        if isinstance(node, ast.Since):
            col = gen.col("vi", lay.since[_key(node.types)])
            s = gen.tmp("s")
            gen.emit(f"last = VI[slot, {col}]")
            gen.emit(f"{v} = secs(now - last) if last != MISSING else np.inf")
            gen.emit(f"{s} = 1.0 if last != MISSING else 0.0")
            return v, s, LINEAR, NEVER
        if isinstance(node, ast.Count) and node.window is None:
            gen.emit(f"{v} = float(VN[slot, {gen.col('vn', lay.session_counts[_key(node.types)])}])")
            return v, "0.0", CONST, NEVER
        if isinstance(node, ast.Count):
            win = lay.windows[(_key(node.types), us(node.window))]
            k, head = bucket(gen, win.window_us, win.head_col)
            n = window_count(gen, win.count_col, head, k)
            gen.emit(f"{v} = {n}")
            return v, "0.0", CONST, expiry(gen, win.count_col, head, k, win.window_us, n)
        win = lay.windows[(_key(node.types), us(node.window), node.field_name)]
        k, head = bucket(gen, win.window_us, win.head_col)
        total = gen.shared(("sum", win.sum_col),
                           f"window_sum(VF, slot, np.int64({gen.col('vf', win.sum_col)}), np.int64({head}), np.int64({k}))",
                           "np.nan", "{0} != {0}")
        if node.func == "sum":
            gen.emit(f"{v} = {total}")
            return v, "0.0", CONST, expiry(gen, win.count_col, head, k, win.window_us)
        n = window_count(gen, win.count_col, head, k)
        gen.emit(f"{v} = {total} / {n} if {n} > 0.0 else 0.0")
        return v, "0.0", CONST, expiry(gen, win.count_col, head, k, win.window_us, n)

    def compare(self, gen, node, b):
        """``count(T, W) OP number`` (OP one of < <= > >=): its exact next change.

        Between events a window count only falls (buckets drop out), so the comparison changes
        at most once: when the count falls below the threshold. That instant is when the bucket
        holding the threshold-th newest event drops out, not when the oldest bucket does (the
        window's horizon): a viewer with a full window gets one timer, not one per bucket.
        """
        op, left, right = node.op, node.left, node.right
        if isinstance(left, ast.Num) and isinstance(right, ast.Count):  # 3 <= count(...)
            left, right, op = right, left, {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        if (op not in ("<", "<=", ">", ">=") or not isinstance(left, ast.Count) or left.window is None
                or not isinstance(right, ast.Num)):
            return None
        win = gen.lay.windows[(_key(left.types), us(left.window))]
        k, head = bucket(gen, win.window_us, win.head_col)
        n = window_count(gen, win.count_col, head, k)
        limit = float(right.value)
        gen.emit(f"{b} = {n} {op} {limit!r}")
        if not gen.with_timers:
            return NEVER
        # the smallest count for which "count >= need" holds; the comparison is that test or its negation
        need = math.ceil(limit) if op in (">=", "<") else math.floor(limit) + 1
        if need <= 0 or need > 12 * COUNT_MAX:
            return NEVER  # true (or false) whatever the count can be: time cannot change it
        c = gen.tmp("c")
        gen.emit(f"{c} = NEVER")
        sub = gen.child()  # only while "count >= need" holds can time change the comparison
        drop = sub.shared(("drop", win.count_col, need),
                          f"window_drop(VN, slot, np.int64({gen.col('vn', win.count_col)}), np.int64({head}), np.int64({k}), "
                          f"np.int64({win.window_us}), np.int64({need}))", "MISSING", "{0} == MISSING")
        sub.emit(f"{c} = {drop}")
        gen.nest(f"if {b}:" if op in (">", ">=") else f"if not {b}:", sub)
        return c

    def readouts(self, rs, lay):
        items: list[tuple[str, ast.Node]] = []
        seen: set[str] = set()
        for root in [*rs.segments.values(), *(r.when for r in rs.rules)]:
            for node in ast.walk(root):
                if self.owns(node):
                    label = ast.to_source(node)
                    if label not in seen:
                        seen.add(label)
                        node.type = "num"
                        items.append((label, node))
        return items


FEATURES = [Windows()]
