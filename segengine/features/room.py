"""The room and the clock: ``stream_time``, ``audience``, ``now``.

Room state lives in the core RI columns (``start``, ``audience``); other viewers and room
events change it, so rules reading ``stream_time`` or ``audience`` are evaluated at every pass.
"""

from __future__ import annotations

from .base import CONST, LINEAR, NEVER, Feature


def room(gen) -> str:
    """A local holding the viewer's room, once per scope."""
    if "room" not in gen.cache:
        name = gen.tmp("vroom")
        gen.emit(f"{name} = {gen.vi('room')}")
        gen.cache["room"] = (name,)
    return gen.cache["room"][0]


class Room(Feature):
    key = "room"
    rank = 30
    names = {"stream_time": "num", "audience": "num", "now": "num"}
    inputs = {"stream_time": None, "audience": None, "now": ()}
    seconds = frozenset({"stream_time", "now"})

    def number(self, gen, node, v):
        if node.name == "now":
            gen.emit(f"{v} = secs(now)")
            return v, "1.0", LINEAR, NEVER
        r = room(gen)
        if node.name == "audience":
            gen.emit(f"{v} = float(RI[{r}, {gen.col('ri', 'audience')}]) if {r} >= 0 else 0.0")
            return v, "0.0", CONST, NEVER
        s = gen.tmp("s")
        start = f"RI[{r}, {gen.col('ri', 'start')}]"
        gen.emit(f"{v} = secs(now - {start}) if {r} >= 0 and {start} != MISSING else 0.0")
        gen.emit(f"{s} = 1.0 if {r} >= 0 and {start} != MISSING else 0.0")
        return v, s, LINEAR, NEVER

    def readouts(self, rs, lay):
        return [(name, node) for name, node in super().readouts(rs, lay) if name != "now"]


FEATURES = [Room()]
