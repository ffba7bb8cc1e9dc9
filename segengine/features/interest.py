"""Interest: ``interest(c)`` per declared category and ``top_interest``.

Columns (only when the rules read interest): ``interest_ts`` (VI, when the values were last
decayed) and one VF column per declared category. A ``view``, ``click``, ``cart`` or ``pay``
of a declared category adds its weight after decaying every value to the event's time (all
halve every ``interest_half_life``). Between events a value is ``stored * 2 ** (-dt / half_life)``.
"""

from __future__ import annotations

from ..rules import ast
from .base import DECAY, NEVER, Feature

#: What an event of each type adds to its category's interest.
WEIGHTS = {"view": 1.0, "click": 2.0, "cart": 4.0, "pay": 8.0}


def decay(gen) -> str:
    if "decay" not in gen.cache:
        gen.emit(f"decay = 2.0 ** (-(now - {gen.vi('interest_ts')}) / HALF_LIFE_US)")
        gen.cache["decay"] = ("decay",)
    return "decay"


class Interest(Feature):
    key = "interest"
    rank = 50
    names = {"top_interest": "str"}
    nodes = (ast.Interest,)
    inputs = {"top_interest": None}
    categories = frozenset({"top_interest"})

    def columns(self, rs, lay, nodes, names) -> None:
        if self.used(names, nodes):
            lay.add("vi", "interest_ts")
            for cat in rs.categories:
                lay.interest_cols[cat] = lay.add("vf", f"interest({cat})")

    def update(self, k):
        lay = k.lay
        if not lay.interest_cols:
            return []
        first, last = (k.col("vf", c) for c in (min(lay.interest_cols.values()), max(lay.interest_cols.values())))
        test = " or ".join(f"code == {k.code(t)}" for t in WEIGHTS)
        ts = k.col("vi", "interest_ts")
        # codes past the declared categories (undeclared ones the rules name) feed no interest
        L = [f"if 0 < ev_cat <= {len(lay.interest_cols)} and ({test}):",
             f"    factor = 2.0 ** (-(now - VI[slot, {ts}]) / HALF_LIFE_US)",
             f"    for c in range({first}, {last} + 1):",
             "        VF[slot, c] *= factor",
             f"    VI[slot, {ts}] = now",
             "    w = 0.0"]
        for t, w in WEIGHTS.items():
            L += [f"    if code == {k.code(t)}:", f"        w = {w}"]
        return L + [f"    VF[slot, {first} - 1 + ev_cat] += w"]

    def number(self, gen, node, v):
        s = gen.tmp("s")
        gen.emit(f"{v} = VF[slot, {gen.col('vf', f'interest({node.category})')}] * {decay(gen)}")
        gen.emit(f"{s} = -LAMBDA * {v}")
        return v, s, DECAY, NEVER

    def string(self, gen, node) -> str:
        if "top" not in gen.cache:
            gen.emit("top = 0")
            gen.emit("best = 0.0")
            for i, cat in enumerate(gen.rs.categories):
                col = gen.col("vf", f"interest({cat})")
                gen.emit(f"if VF[slot, {col}] > best:")
                gen.emit(f"    best = VF[slot, {col}]")
                gen.emit(f"    top = {i + 1}")
            gen.cache["top"] = ("top",)
        return "top"

    def readouts(self, rs, lay):
        if not lay.interest_cols:
            return []
        return [("top_interest", ast.Name("top_interest", kind="builtin", type="str")),
                *((f"interest({cat})", ast.Interest(cat, type="num")) for cat in lay.interest_cols)]


FEATURES = [Interest()]
