"""Local time: ``local_hour``, ``local_weekday``, ``active_hour_share(H1, H2)``, ``peak_hour``.

A viewer's time zone comes from its built-in profile attributes ``tz`` (an IANA name) or
``utc_offset`` (minutes east of UTC), set with ``set_profile`` (the last one set wins), else from
``[engine] default_tz`` (UTC when unset). Columns (always: ``set_profile`` accepts them whatever
the rules read): ``tz_row`` (VI: zone table row + 1, -1 for a fixed ``utc_offset``, 0 for none)
and ``utc_off`` (VI, microseconds). When the rules read local time (or set quiet hours):
``lt_off`` (VI), the viewer's offset now, refreshed at the start of each of its passes from the
zone table (runtime/zones.py: DST transitions found once per zone, a binary search per pass: no
Python per event). When they read the active hours: 24 VF columns ``ah[h]``, a histogram of the
viewer's events by local hour decayed with a half-life of 7 days, and ``ah_last`` (VI).
"""

from __future__ import annotations

from ..rules import ast
from .base import CONST, LINEAR, NEVER, Feature, us

__all__ = ["LocalTime", "HALF_LIFE", "offset_code"]

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
HALF_LIFE = 7 * 86400.0  # seconds: the active-hours histogram halves every week
NAMES = {"local_hour": "num", "local_weekday": "num", "peak_hour": "num"}


def default_zone(k) -> str:
    """The zone row of viewers without a zone: ``[engine] default_tz`` (a literal bound to its row), or UTC."""
    return f"LITS[0, {k.lits.index('zones', k.rs.default_tz)}]" if k.rs.default_tz else "0"


def offset_code(k, out: str) -> list[str]:
    """Statements setting ``out`` to the viewer's UTC offset (microseconds) at ``now``."""
    tz, fixed = k.col("vi", "tz_row"), k.col("vi", "utc_off")
    default = default_zone(k)
    return [f"tzr = VI[slot, {tz}]",
            "if tzr > 0:",
            f"    {out} = zone_offset(ZONES, tzr - 1, now)",
            "elif tzr < 0:",
            f"    {out} = VI[slot, {fixed}]",
            "else:",
            f"    {out} = zone_offset(ZONES, {default}, now)"]


def uses_histogram(nodes, names) -> bool:
    return "peak_hour" in names or any(isinstance(n, ast.ActiveHours) for n in nodes)


class LocalTime(Feature):
    key = "localtime"
    rank = 70
    names = NAMES
    nodes = (ast.ActiveHours,)
    inputs = {"local_hour": None, "local_weekday": None, "peak_hour": None}  # time, and set_profile

    def node_inputs(self, node):
        return None

    def used(self, names, nodes) -> bool:
        return True  # tz_row and utc_off are always kept (set_profile takes them)

    def columns(self, rs, lay, nodes, names) -> None:
        lay.add("vi", "tz_row")
        lay.add("vi", "utc_off")
        reads = bool(names & NAMES.keys()) or any(isinstance(n, ast.ActiveHours) for n in nodes)
        if reads or rs.quiet_hours is not None:
            lay.add("vi", "lt_off")
            lay.add("vi", "lt_next")
        if uses_histogram(nodes, names):
            lay.add("vf", "ah", 24)
            lay.add("vi", "ah_last")

    def update(self, k) -> list[str]:
        if "ah[0]" not in k.lay.vf:
            return []
        ah, last = k.col("vf", "ah[0]"), k.col("vi", "ah_last")
        return [*offset_code(k, "ahoff"),
                f"if VI[slot, {last}] != 0 and now > VI[slot, {last}]:",
                f"    decay = np.exp2(-(now - VI[slot, {last}]) / {us(HALF_LIFE)}.0)",
                "    for h in range(24):",
                f"        VF[slot, {ah} + h] *= decay",
                f"VF[slot, {ah} + ((now + ahoff) // {HOUR_US}) % 24] += 1.0",
                f"if now > VI[slot, {last}]:",
                f"    VI[slot, {last}] = now"]

    def pass_start(self, mg, gen) -> None:
        if "lt_off" not in mg.lay.vi:
            return
        for line in offset_code(mg, f"VI[slot, {mg.col('vi', 'lt_off')}]"):
            gen.emit(line)
        nxt = f"VI[slot, {mg.col('vi', 'lt_next')}]"  # the zone's next offset change: a horizon of local time
        gen.emit(f"{nxt} = zone_next(ZONES, tzr - 1 if tzr > 0 else {default_zone(mg)}, now) if tzr >= 0 else NEVER")

    def _midnight(self, gen) -> str:
        """The next local midnight (or offset change, when sooner): local hour and weekday's horizon."""
        h = gen.tmp("hz")
        off = f"VI[slot, {gen.col('vi', 'lt_off')}]"
        gen.emit(f"{h} = min(now + ({DAY_US} - (now + {off}) % {DAY_US}), VI[slot, {gen.col('vi', 'lt_next')}])")
        return h

    def number(self, gen, node, v):
        off = f"VI[slot, {gen.col('vi', 'lt_off')}]" if "lt_off" in gen.lay.vi else "0"
        if isinstance(node, ast.ActiveHours):
            ah = gen.col("vf", "ah[0]")
            h1, h2 = int(node.start), int(node.end)
            hours = [h % 24 for h in (range(h1, h2) if h1 <= h2 else [*range(h1, 24), *range(0, h2)])]
            total, part = gen.tmp("aht"), gen.tmp("ahp")
            gen.emit(f"{total} = 0.0")
            gen.emit("for h in range(24):")
            gen.emit(f"    {total} += VF[slot, {ah} + h]")
            gen.emit(f"{part} = " + (" + ".join(f"VF[slot, {ah} + {h}]" for h in hours) if hours else "0.0"))
            gen.emit(f"{v} = {part} / {total} if {total} > 0.0 else 0.0")
            return v, "0.0", CONST, NEVER
        if node.name == "peak_hour":
            ah = gen.col("vf", "ah[0]")
            best = gen.tmp("ahb")
            gen.emit(f"{v} = -1.0")
            gen.emit(f"{best} = 0.0")
            gen.emit("for h in range(24):")
            gen.emit(f"    if VF[slot, {ah} + h] > {best}:")
            gen.emit(f"        {best} = VF[slot, {ah} + h]")
            gen.emit(f"        {v} = float(h)")
            return v, "0.0", CONST, NEVER
        horizon = self._midnight(gen)
        if node.name == "local_hour":
            gen.emit(f"{v} = ((now + {off}) % {DAY_US}) / {HOUR_US}.0")
            return v, f"{1 / 3600!r}", LINEAR, horizon
        gen.emit(f"{v} = float(((now + {off}) // {DAY_US} + 3) % 7)  # 1970-01-01 was a Thursday (Monday is 0)")
        return v, "0.0", CONST, horizon

    def readouts(self, rs, lay):
        out = [(name, ast.Name(name, kind="builtin", type="num")) for name in ("local_hour", "local_weekday")
               if "lt_off" in lay.vi]
        if "ah[0]" in lay.vf:
            out.append(("peak_hour", ast.Name("peak_hour", kind="builtin", type="num")))
        return out


FEATURES = [LocalTime()]
