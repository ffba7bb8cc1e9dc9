"""Room metrics: what ``Engine.room()`` and ``Engine.room_slots()`` report, kept by the event kernel.

Always on (a room's metrics do not depend on the rules). Per room, in ``RI``:

* totals ``rm_NAME`` for each of :data:`SLOT_METRICS` but ``peak`` and ``audience``
  (``rm_peak`` is the peak audience; the live audience is the core ``audience`` column);
* a ring of :data:`BUCKETS` rows of stream time, :data:`BUCKET` each (24 hours of 5 minutes):
  row ``b % BUCKETS`` holds bucket ``b`` (its tag, bucket + 1, in the first column), then the
  same metrics for what happened in that bucket (sessions ending in it, for dwell); ``peak``
  the highest audience in it, ``audience`` the audience at its last change (a new row starts both
  at the room's audience; after that only sessions' starts and ends change them, so events that
  start no session do no audience bookkeeping).
* ``rm_cur``: the last bucket :func:`room_bucket` found ([from, to), its row, and the stream start
  it was found for: a ``live_start`` moves the start, and the buckets with it), so that an
  event in the current 5 minutes finds its row with two comparisons.

Per viewer: ``rm_visit`` (4 VI columns), the viewer's last rooms (room + 1), most recent first,
each with two flag bits (interacted, bought there): a session starting in a room the viewer has
not visited adds one to the room's UV. The current room is always first, so a like or a pay marks
it in O(1). A viewer who visited more than 4 rooms and comes back to the oldest counts again.
``rm_step`` (VN) is the session's funnel step (1 enter .. 6 pay: a session reaches a step only
from the one before it), ``rm_sess`` (VN) its cart/pay state for ``carted_unpaid`` (low two bits:
0 none, 1 carted, 2 paid) and :data:`SESS_MARKED` once the session's room is marked interacted
(so the session's later likes and comments read the viewer's VN line only, not ``rm_visit``'s
VI line: one cache line fewer per interaction at a million viewers), ``rm_paid`` (VI)
the last payment (a refund: minus its amount) in thousandths (read by the pass for ``fan_gmv_share``). Money is kept in
thousandths of the currency unit (int64).
"""

from __future__ import annotations

from ..rules import ast
from .base import Feature
from .roomnames import ROOM_METRICS

__all__ = ["RoomMetrics", "SLOT_METRICS", "BUCKET", "BUCKETS", "WIDTH", "room_value_code"]

#: What a ring row holds after its tag, in order (``gmv_milli``: thousandths).
SLOT_METRICS = ("entries", "uv", "ended", "dwell_us", "short", "long", "iuv", "follows", "views",
                "f_enter", "f_view", "f_click", "f_cart", "f_checkout", "f_pay",
                "orders", "buyers", "gmv_milli", "fan_gmv_milli", "carted_unpaid", "peak", "audience")
assert SLOT_METRICS[-2:] == ("peak", "audience")  # room_bucket starts a new row's last two at the audience
FUNNEL = ("f_enter", "f_view", "f_click", "f_cart", "f_checkout", "f_pay")
BUCKET = 300.0  # seconds of stream time per ring row
BUCKETS = 288  # 24 hours
WIDTH = 1 + len(SLOT_METRICS)
VISITS = 4
INTERACTED = 1 << 40
BOUGHT = 1 << 41
ROOM_MASK = (1 << 40) - 1
SHORT_US, LONG_US = 60_000_000, 300_000_000
SESS_MARKED = 4  # rm_sess: this session's room already has the viewer's interacted bit
OFF = {name: 1 + i for i, name in enumerate(SLOT_METRICS)}


def _add(k, metric: str, amount: str, room: str, base: str) -> list[str]:
    """``metric`` += ``amount`` in the room's total and in its ring row (``base`` >= 0)."""
    return [f"RI[{room}, {k.col('ri', 'rm_' + metric)}] += {amount}",
            f"if {base} >= 0:",
            f"    RI[{room}, {base} + {OFF[metric]}] += {amount}"]


def _bucket(k, room: str, t: str) -> str:
    """``room``'s ring row for time ``t``: the cached bucket checked inline (nearly every event),
    the call only when it misses (a real call with a dozen arguments costs more than the check)."""
    cur, start = k.col('ri', 'rm_cur[0]'), k.col('ri', 'start')
    hit = (f"RI[{room}, {cur}] <= {t} and {t} < RI[{room}, {cur} + 1] "
           f"and RI[{room}, {cur} + 3] == RI[{room}, {start}]")
    return (f"RI[{room}, {cur} + 2] if {hit} else room_bucket(RI, {room}, {t}, np.int64({k.col('ri', 'start')}), np.int64({k.col('ri', 'rm_ring[0]')}), "
            f"np.int64({WIDTH}), np.int64({BUCKETS}), np.int64({int(BUCKET * 1_000_000)}), np.int64({k.col('ri', 'rm_cur[0]')}), np.int64({k.col('ri', 'audience')}))")


def _step(k, frm: int, metric: str) -> list[str]:
    step = f"VN[slot, {k.col('vn', 'rm_step')}]"
    return [f"if {step} == {frm}:", f"    {step} = {frm + 1}", *("    " + x for x in _add(k, metric, "1", "room", "rmb"))]


def _mark(k, bit: int, metric: str) -> list[str]:
    v0 = f"VI[slot, {k.col('vi', 'rm_visit[0]')}]"
    return [f"if ({v0} & {bit}) == 0:", f"    {v0} |= {bit}", *("    " + x for x in _add(k, metric, "1", "room", "rmb"))]


def _interacted(k) -> list[str]:
    """Mark the room interacted, at most once per session (the session's flag is read first)."""
    sess = f"VN[slot, {k.col('vn', 'rm_sess')}]"
    return [f"if ({sess} & {SESS_MARKED}) == 0:", f"    {sess} |= {SESS_MARKED}",
            *("    " + x for x in _mark(k, INTERACTED, "iuv"))]


class RoomMetrics(Feature):
    key = "roommetrics"
    rank = 36  # after money (paid_amount), before the cart (which empties cart_value on pay)

    def used(self, names, nodes) -> bool:
        return True  # kept whatever the rules read: Engine.room() does not depend on them

    # every hook is empty when ``[engine] room_metrics = false`` (the rules' k.rs)
    def columns(self, rs, lay, nodes, names) -> None:
        if not rs.room_metrics:
            return
        lay.add("ri", "rm_peak")
        for metric in SLOT_METRICS:
            if metric not in ("peak", "audience"):
                lay.add("ri", f"rm_{metric}")
        lay.add("ri", "rm_ring", BUCKETS * WIDTH)
        lay.add("ri", "rm_cur", 4)  # the last bucket found: from, to (us), its first column, the start it was found for
        lay.add("vi", "rm_visit", VISITS)
        lay.add("vi", "rm_paid")
        lay.add("vn", "rm_step")
        lay.add("vn", "rm_sess")

    def session_start(self, k) -> list[str]:
        if not k.rs.room_metrics:
            return []
        v0 = k.col("vi", "rm_visit[0]")
        aud, peak = k.col("ri", "audience"), k.col("ri", "rm_peak")
        return [
            f"rmb = {_bucket(k, 'room', 'now')}",
            # the audience changes only when sessions start and end: its peaks are kept here
            f"if RI[room, {aud}] > RI[room, {peak}]:",
            f"    RI[room, {peak}] = RI[room, {aud}]",
            "if rmb >= 0:",
            f"    RI[room, rmb + {OFF['audience']}] = RI[room, {aud}]",
            f"    if RI[room, {aud}] > RI[room, rmb + {OFF['peak']}]:",
            f"        RI[room, rmb + {OFF['peak']}] = RI[room, {aud}]",
            *_add(k, "entries", "1", "room", "rmb"),
            *_add(k, "f_enter", "1", "room", "rmb"),
            f"VN[slot, {k.col('vn', 'rm_step')}] = 1",
            f"VN[slot, {k.col('vn', 'rm_sess')}] = 0",
            f"if (VI[slot, {v0}] & {ROOM_MASK}) != room + 1:  # another room than the last: move it first",
            f"    pos = {VISITS - 1}",
            "    seen = False",
            f"    for j in range(1, {VISITS}):",
            f"        if (VI[slot, {v0} + j] & {ROOM_MASK}) == room + 1:",
            "            pos = j",
            "            seen = True",
            "            break",
            f"    entry = VI[slot, {v0} + pos] if seen else room + 1",
            "    for j in range(pos, 0, -1):",
            f"        VI[slot, {v0} + j] = VI[slot, {v0} + j - 1]",
            f"    VI[slot, {v0}] = entry",
            "    if not seen:",
            *("        " + x for x in _add(k, "uv", "1", "room", "rmb")),
        ]

    def session_end(self, k, slot: str, end: str) -> list[str]:
        if not k.rs.room_metrics:
            return []
        aud, ring = k.col("ri", "audience"), "rme"
        return [
            f"{ring} = {_bucket(k, 'sroom', end)}",
            f"dwell_us = {end} - VI[{slot}, {k.col('vi', 'sess_start')}]",
            *_add(k, "ended", "1", "sroom", ring),
            *_add(k, "dwell_us", "dwell_us", "sroom", ring),
            "if dwell_us < %d:" % SHORT_US, *("    " + x for x in _add(k, "short", "1", "sroom", ring)),
            "if dwell_us >= %d:" % LONG_US, *("    " + x for x in _add(k, "long", "1", "sroom", ring)),
            f"if {ring} >= 0:",
            f"    RI[sroom, {ring} + {OFF['audience']}] = RI[sroom, {aud}]",
        ]

    def update(self, k) -> list[str]:
        if not k.rs.room_metrics:
            return []
        return [
            f"rmb = {_bucket(k, 'room', 'now')}",
            f"rm_following = (VI[slot, {k.col('vi', 'flags')}] & FLAG_FOLLOWS) != 0",
        ]

    def on(self, k) -> dict[str, list[str]]:
        if not k.rs.room_metrics:
            return {}
        sess = f"VN[slot, {k.col('vn', 'rm_sess')}]"
        interact = _interacted(k)
        return {
            "view": [*_add(k, "views", "1", "room", "rmb"), *_step(k, 1, "f_view")],
            "click": [*_step(k, 2, "f_click"), *interact],
            "like": interact,
            "comment": interact,
            "share": interact,
            "cart": [*_step(k, 3, "f_cart"),
                     f"if ({sess} & 3) == 0:  # the session's first cart, before any pay",
                     f"    {sess} |= 1",
                     *("    " + x for x in _add(k, "carted_unpaid", "1", "room", "rmb"))],
            "checkout": _step(k, 4, "f_checkout"),
            "pay": [*_step(k, 5, "f_pay"),
                    *_add(k, "orders", "1", "room", "rmb"),
                    "rm_milli = milli(paid_amount)",
                    f"VI[slot, {k.col('vi', 'rm_paid')}] = rm_milli",
                    *_add(k, "gmv_milli", "rm_milli", "room", "rmb"),
                    *_mark(k, BOUGHT, "buyers"),
                    f"if ({sess} & 3) == 1:  # carted, now paid",
                    *("    " + x for x in _add(k, "carted_unpaid", "-1", "room", "rmb")),
                    f"{sess} = ({sess} & {SESS_MARKED}) | 2"],
            "refund": ["rm_milli = milli(ev_amount)",
                       f"VI[slot, {k.col('vi', 'rm_paid')}] = -rm_milli",
                       *_add(k, "gmv_milli", "-rm_milli", "room", "rmb")],
            "follow": ["if not rm_following:", *("    " + x for x in _add(k, "follows", "1", "room", "rmb"))],
        }

    def pass_start(self, mg, gen) -> None:
        """The GMV paid by viewers in segment ``fan`` when they paid (after the payment is applied),
        less what viewers in it when they asked for a refund got back."""
        if "fan" not in mg.rs.segments or not mg.rs.room_metrics:
            return
        body = gen.child(with_timers=False)
        b, _ = body.boolean(ast.Name("fan", kind="segment", type="bool"))
        body.emit(f"if {b}:")
        body.emit(f"    rmf = {_bucket(mg, 'room', 'now')}")
        for line in _add(mg, "fan_gmv_milli", f"VI[slot, {mg.col('vi', 'rm_paid')}]", "room", "rmf"):
            body.emit("    " + line)
        gen.nest(f"if (not timer) and (ev_code == {mg.code('pay')} or ev_code == {mg.code('refund')}):", body)

    def readouts(self, rs, lay):
        return []  # room values: Engine.room()


def room_value_code(gen, name: str, r: str) -> str:
    """The Numba expression (float) of room metric ``name`` in room slot ``r``: the room names
    ``room.uv``, ``room.gmv``, ``room.conversion``, ``room.avg_dwell``, ``room.funnel(STEP)``."""
    def col(metric: str) -> str:
        return f"RI[{r}, {gen.col('ri', 'rm_' + metric)}]"
    if name == "uv":
        return f"float({col('uv')})"
    if name == "gmv":
        return f"({col('gmv_milli')} / 1000.0)"
    if name == "conversion":
        return f"({col('buyers')} / float({col('uv')}) if {col('uv')} > 0 else 0.0)"
    if name == "avg_dwell":
        return f"({col('dwell_us')} / 1e6 / {col('ended')} if {col('ended')} > 0 else 0.0)"
    if name.startswith("funnel:"):
        return f"float({col('f_' + name.split(':', 1)[1])})"
    raise KeyError(f"no room metric {name!r}")


ROOM_METRICS.append(room_value_code)
FEATURES = [RoomMetrics()]
