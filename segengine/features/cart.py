"""The cart: ``carted``, ``cart_items``, ``cart_value``.

Columns (only when the rules read one of them): ``cart_value`` (VF), ``cart_items`` and
``cart_epoch`` (VN). Items in the cart live in the store's cart table (``CK``/``CV``, one row
per viewer and item): an ``uncart`` removes one unit at the item's average price. A ``pay``
empties the cart (the epoch moves on: old rows are dead without being visited).
"""

from __future__ import annotations

from .base import CONST, NEVER, Feature


class Cart(Feature):
    key = "cart"
    rank = 40
    names = {"carted": "bool", "cart_items": "num", "cart_value": "num"}
    inputs = {name: ("cart", "uncart", "pay") for name in names}

    def columns(self, rs, lay, nodes, names) -> None:
        if self.used(names, nodes):
            lay.has_cart = True
            lay.add("vf", "cart_value")
            lay.add("vn", "cart_items")
            lay.add("vn", "cart_epoch")

    def on(self, k):
        if not k.lay.has_cart:
            return {}
        items, value, epoch = k.col("vn", "cart_items"), k.col("vf", "cart_value"), k.col("vn", "cart_epoch")
        return {
            "cart": [
                "row = cart_find(CK, slot, ev_item, slot >= 0, meta)",
                f"if CK[row, 2] != VN[slot, {epoch}]:",
                f"    CK[row, 2] = VN[slot, {epoch}]",
                "    CK[row, 3] = 0",
                "    CV[row, 0] = 0.0",
                "unit = 0.0 if np.isnan(ev_price) else ev_price",
                "CK[row, 3] += 1",
                "CV[row, 0] += unit",
                f"if VN[slot, {items}] < COUNT_MAX:",
                f"    VN[slot, {items}] += 1",
                f"VF[slot, {value}] += unit",
            ],
            "uncart": [
                "row = cart_find(CK, slot, ev_item, slot < 0, meta)",
                f"if row >= 0 and CK[row, 2] == VN[slot, {epoch}] and CK[row, 3] > 0:",
                "    unit = CV[row, 0] / CK[row, 3]",
                "    CK[row, 3] -= 1",
                "    CV[row, 0] = 0.0 if CK[row, 3] == 0 else CV[row, 0] - unit",
                f"    VN[slot, {items}] -= 1",
                f"    VF[slot, {value}] = 0.0 if VN[slot, {items}] == 0 else VF[slot, {value}] - unit",
            ],
            "pay": [  # after the payment (money), which pays the cart's value when it has no amount
                f"VN[slot, {epoch}] = (VN[slot, {epoch}] + 1) % COUNT_MAX",
                f"VN[slot, {items}] = 0",
                f"VF[slot, {value}] = 0.0",
            ],
        }

    def truth(self, gen, node) -> str:
        return f"VN[slot, {gen.col('vn', 'cart_items')}] > 0"

    def number(self, gen, node, v):
        if node.name == "cart_items":
            gen.emit(f"{v} = float(VN[slot, {gen.col('vn', 'cart_items')}])")
        else:
            gen.emit(f"{v} = VF[slot, {gen.col('vf', 'cart_value')}]")
        return v, "0.0", CONST, NEVER

    def readouts(self, rs, lay):
        return super().readouts(rs, lay) if lay.has_cart else []


FEATURES = [Cart()]
