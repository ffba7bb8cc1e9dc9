"""``Engine.room()`` and ``Engine.room_slots()``: the room-metrics columns read into RoomMetrics.

The counters are kept by the event kernel (segengine/features/roommetrics.py); this module only
reads them and derives the ratios, the funnel's drop-offs and its break point. ``room()`` reads
one RI row (plus one segment scan per declared segment for ``segments``); ``room_slots()``
sums ring rows into slots.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..features.roommetrics import BUCKET, BUCKETS, FUNNEL, OFF, SLOT_METRICS, WIDTH
from ..kernels.primitives import MISSING
from ..rules.expr import parse_duration
from ..schema.results import FUNNEL_STEPS, RoomMetrics

if TYPE_CHECKING:
    from ..runtime.core import EngineCore

#: The room totals, in their column order after ``rm_peak``.
TOTALS = tuple(m for m in SLOT_METRICS if m not in ("peak", "audience"))

__all__ = ["room_metrics", "room_slots", "metrics_from_counts", "funnel_break_point"]


def funnel_break_point(funnel: dict[str, int]) -> tuple[dict[str, int], str]:
    """(drop-off before each step, the step with the largest relative loss; "" when none is lost).
    Ties go to the earliest step; a step after one nobody reached loses nothing."""
    dropoff = {FUNNEL_STEPS[0]: 0}
    best, best_loss = "", 0.0
    for prev, step in zip(FUNNEL_STEPS, FUNNEL_STEPS[1:]):
        lost = max(0, funnel[prev] - funnel[step])
        dropoff[step] = lost
        loss = lost / funnel[prev] if funnel[prev] > 0 else 0.0
        if loss > best_loss:
            best, best_loss = step, loss
    return dropoff, best


def metrics_from_counts(room: str, c: dict[str, int], audience: int, peak: int, segments: dict[str, int],
                        start: float, end: float) -> RoomMetrics:
    """A RoomMetrics from raw counters ``c`` (keys of SLOT_METRICS; money in thousandths)."""
    funnel = {step: int(c[f]) for step, f in zip(FUNNEL_STEPS, FUNNEL)}
    dropoff, break_point = funnel_break_point(funnel)
    gmv = c["gmv_milli"] / 1000.0
    uv, orders, ended, entries = int(c["uv"]), int(c["orders"]), int(c["ended"]), int(c["entries"])
    return RoomMetrics(
        room=room, start=start, end=end, audience=audience, peak_audience=peak, uv=uv, entries=entries,
        sessions_ended=ended, avg_dwell=c["dwell_us"] / 1e6 / ended if ended else 0.0,
        short_sessions=int(c["short"]), long_sessions=int(c["long"]), segments=segments,
        interacting_uv=int(c["iuv"]), new_followers=int(c["follows"]), views=int(c["views"]),
        funnel=funnel, dropoff=dropoff, break_point=break_point, orders=orders, buyers=int(c["buyers"]),
        gmv=gmv, aov=gmv / orders if orders else 0.0, uv_value=gmv / uv if uv else 0.0,
        gpm=gmv * 1000.0 / entries if entries else 0.0, conversion=int(c["buyers"]) / uv if uv else 0.0,
        carted_unpaid=int(c["carted_unpaid"]),
        fan_gmv_share=c["fan_gmv_milli"] / c["gmv_milli"] if c["gmv_milli"] > 0 else 0.0)


def _row(core: "EngineCore", room: str) -> tuple[int, np.ndarray | None]:
    r = core.rooms.get(room)
    if r < 0:
        return -1, None
    return r, core.store.RI[r]


def _stream_seconds(core: "EngineCore", row: np.ndarray) -> float:
    lay = core.compiled.layout
    start = int(row[lay.ri.index("start")])
    now = core.now_us()
    return max(0.0, (now - start) / 1e6) if start != MISSING and now else 0.0


def room_metrics(core: "EngineCore", room: str, segment_counts) -> RoomMetrics:
    """The room's metrics for the stream so far; a room not seen yet reads all zeros."""
    r, row = _row(core, room)
    if row is None:
        return RoomMetrics(room=room)
    ri = core.compiled.layout.ri
    first = ri.index("rm_peak")  # then rm_NAME for each total, in SLOT_METRICS order (features/roommetrics.py)
    values = row[first + 1: first + 1 + len(TOTALS)].tolist()
    counts = dict(zip(TOTALS, values))
    audience = int(row[ri.index("audience")])
    if segment_counts is None:
        segments: dict[str, int] = {}
    elif audience:
        segments = {name: segment_counts(name, r) for name in core.rules.segments}
    else:
        segments = {name: 0 for name in core.rules.segments}
    return metrics_from_counts(room, counts, audience, int(row[first]), segments, 0.0,
                               _stream_seconds(core, row))


def room_slots(core: "EngineCore", room: str, slot: str | float = "5m") -> list[RoomMetrics]:
    """One RoomMetrics per slot of stream time, from the stream's start to its latest bucket
    (slots with nothing in them included). ``slot`` is a multiple of 5 minutes; the ring keeps
    the last 24 hours."""
    seconds = parse_duration(slot) if isinstance(slot, str) else float(slot)
    per = int(round(seconds / BUCKET))
    if per < 1 or abs(per * BUCKET - seconds) > 1e-6:
        raise ValueError(f"slot must be a multiple of {int(BUCKET // 60)}m, not {slot!r}")
    r, row = _row(core, room)
    if row is None:
        return []
    ring = row[core.compiled.layout.ri.index("rm_ring[0]"):][: BUCKETS * WIDTH].reshape(BUCKETS, WIDTH)
    tags = ring[:, 0]
    used = tags > 0
    if not used.any():
        return []
    last = int(tags.max()) - 1
    first = max(0, last - BUCKETS + 1)
    buckets = np.zeros((last - first + 1, WIDTH - 1), np.int64)
    present = np.zeros(last - first + 1, bool)
    for i in np.nonzero(used)[0].tolist():
        b = int(tags[i]) - 1
        if b >= first:
            buckets[b - first] = ring[i, 1:]
            present[b - first] = True
    out: list[RoomMetrics] = []
    audience = 0
    for s0 in range(0, len(buckets), per):
        part, seen = buckets[s0: s0 + per], present[s0: s0 + per]
        sums = part.sum(axis=0)
        counts = {m: int(sums[OFF[m] - 1]) for m in SLOT_METRICS if m not in ("peak", "audience")}
        peak = int(part[:, OFF["peak"] - 1].max()) if seen.any() else audience
        if seen.any():
            audience = int(part[np.nonzero(seen)[0][-1], OFF["audience"] - 1])
        start = (first + s0) * BUCKET
        out.append(metrics_from_counts(room, counts, audience, max(peak, audience), {}, start,
                                       start + len(part) * BUCKET))
    return out

