"""Money and follows: ``paid``, ``follows``, ``orders``, ``spend``, ``aov``.

Columns: ``orders`` (VI) and ``spend`` (VF), for every rules file; ``paid`` and ``follows`` are
bits of the core ``flags`` column. A ``pay`` without an
amount pays the cart's value when the rules keep a cart (see :mod:`.cart`).
"""

from __future__ import annotations

from .base import CONST, FLAG_FOLLOWS, FLAG_PAID, NEVER, Feature


class Money(Feature):
    key = "money"
    rank = 20
    names = {"paid": "bool", "follows": "bool", "orders": "num", "spend": "num", "aov": "num"}
    inputs = {"paid": ("pay",), "follows": ("follow",), "orders": ("pay",), "spend": ("pay", "refund"),
              "aov": ("pay", "refund")}
    session_flags = FLAG_PAID  # paid is per session

    def columns(self, rs, lay, nodes, names) -> None:
        # kept whether or not the rules read them (stats and a reload that adds such a rule see them)
        lay.add("vi", "orders")
        lay.add("vf", "spend")

    def on(self, k):
        spend, flags = k.col("vf", "spend"), k.col("vi", "flags")
        amount = "ev_amount"
        if "cart_value" in k.lay.vf:
            amount = f"ev_amount if not np.isnan(ev_amount) else VF[slot, {k.col('vf', 'cart_value')}]"
        return {
            "follow": [f"VI[slot, {flags}] |= FLAG_FOLLOWS"],
            "pay": [f"VI[slot, {k.col('vi', 'orders')}] += 1",
                    f"paid_amount = {amount}",
                    f"VF[slot, {spend}] += 0.0 if np.isnan(paid_amount) else paid_amount",
                    f"VI[slot, {flags}] |= FLAG_PAID"],
            "refund": [f"VF[slot, {spend}] -= 0.0 if np.isnan(ev_amount) else ev_amount"],
        }

    def truth(self, gen, node) -> str:
        flag = "FLAG_PAID" if node.name == "paid" else "FLAG_FOLLOWS"
        return f"({gen.vi('flags')} & {flag}) != 0"

    def number(self, gen, node, v):
        name = node.name
        if name == "orders":
            gen.emit(f"{v} = float({gen.vi('orders')})")
        elif name == "spend":
            gen.emit(f"{v} = VF[slot, {gen.col('vf', 'spend')}]")
        else:  # aov
            orders = gen.vi("orders")
            gen.emit(f"{v} = VF[slot, {gen.col('vf', 'spend')}] / {orders} if {orders} > 0 else 0.0")
        return v, "0.0", CONST, NEVER


_ = (FLAG_FOLLOWS,)
FEATURES = [Money()]
