"""Sessions: ``present``, ``dwell``, ``total_dwell``, ``sessions``.

They read the core session columns (``sess_start``, ``sess_end``, ``closed_dwell``, ``sessions``,
``flags``), which the event kernel keeps for every viewer: no columns of their own.
"""

from __future__ import annotations

from .base import CONST, LINEAR, NEVER, Feature


def present(gen) -> str:
    """A local holding "the viewer is present", once per scope."""
    # a fresh name per scope: one name assigned in hundreds of nested scopes (deep or long
    # conditions) makes Numba's SSA pass quadratic
    if "present" not in gen.cache:
        name = gen.tmp("pres")
        gen.emit(f"{name} = ({gen.vi('flags')} & FLAG_PRESENT) != 0")
        gen.cache["present"] = (name,)
    return gen.cache["present"][0]


class Session(Feature):
    key = "session"
    rank = 10
    names = {"present": "bool", "dwell": "num", "total_dwell": "num", "sessions": "num"}
    inputs = {"present": (), "dwell": (), "total_dwell": (), "sessions": ()}
    seconds = frozenset({"dwell", "total_dwell"})

    def truth(self, gen, node) -> str:
        return present(gen)

    def number(self, gen, node, v):
        if node.name == "sessions":
            gen.emit(f"{v} = float({gen.vi('sessions')})")
            return v, "0.0", CONST, NEVER
        p = present(gen)
        s = gen.tmp("s")
        start = gen.vi("sess_start")
        if node.name == "dwell":
            gen.emit(f"{v} = secs(now - {start}) if {p} else secs({gen.vi('sess_end')} - {start})")
        else:  # total_dwell
            gen.emit(f"{v} = secs({gen.vi('closed_dwell')} + (now - {start} if {p} else 0))")
        gen.emit(f"{s} = 1.0 if {p} else 0.0")
        return v, s, LINEAR, NEVER


FEATURES = [Session()]
