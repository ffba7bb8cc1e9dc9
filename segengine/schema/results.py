"""What the room view and the outcome read-out return: :class:`RoomMetrics`, :class:`Outcomes`.

Plain msgspec structs, so they encode to JSON and msgpack as they are (``replay --json``,
the HTML report, the sharded engine's merge) and compare field by field in tests.
A ratio whose denominator is 0 reads 0.
"""

from __future__ import annotations

import msgspec

__all__ = ["RoomMetrics", "Outcomes", "FUNNEL_STEPS"]

#: The purchase funnel of a session, in order: a session reaches a step only after the one before it.
FUNNEL_STEPS = ("enter", "view", "click", "cart", "checkout", "pay")


class RoomMetrics(msgspec.Struct, kw_only=True):
    """One room's metrics for the stream so far (``Engine.room``) or for one slot of stream
    time (``Engine.room_slots``: what happened in it; sessions ending in it for dwell).

    ``start`` and ``end`` are the stream-time seconds the struct covers.
    """

    room: str
    start: float = 0.0
    end: float = 0.0
    # audience and sessions
    audience: int = 0
    peak_audience: int = 0
    uv: int = 0
    entries: int = 0
    sessions_ended: int = 0
    avg_dwell: float = 0.0
    short_sessions: int = 0  # ended with dwell < 1 m
    long_sessions: int = 0  # ended with dwell >= 5 m
    segments: dict[str, int] = {}  # segment -> present viewers in it
    # interaction
    interacting_uv: int = 0  # distinct viewers with a like, comment, share or click
    new_followers: int = 0
    views: int = 0  # ``view`` events
    # the purchase funnel, per session, in FUNNEL_STEPS order
    funnel: dict[str, int] = {}  # step -> sessions that reached it
    dropoff: dict[str, int] = {}  # step -> sessions lost before it (0 for "enter")
    break_point: str = ""  # the step with the largest relative loss; "" when nothing is lost
    # money
    orders: int = 0
    buyers: int = 0
    gmv: float = 0.0  # pay minus refund amounts
    aov: float = 0.0  # gmv / orders
    uv_value: float = 0.0  # gmv / uv
    gpm: float = 0.0  # gmv per 1,000 entries
    conversion: float = 0.0  # buyers / uv
    carted_unpaid: int = 0  # sessions with a cart and no pay
    fan_gmv_share: float = 0.0  # share of gmv paid by viewers in segment "fan" when they paid


class Outcomes(msgspec.Struct, kw_only=True):
    """Does a rule work? Its firings against its held-out control group (``Engine.outcomes``).

    ``converted``: firings followed by the viewer's outcome event within the attribution window;
    ``control_converted``: the same for firings suppressed by the holdout. ``uplift`` is the
    difference of the two conversion rates, with its 95 % confidence interval.
    """

    rule: str
    room: str | None = None
    outcome: str = "pay"
    attribution: float = 1800.0  # seconds
    fired: int = 0
    held_out: int = 0
    converted: int = 0
    control_converted: int = 0
    conversion: float = 0.0  # converted / fired
    control_conversion: float = 0.0  # control_converted / held_out
    uplift: float = 0.0
    uplift_low: float = 0.0
    uplift_high: float = 0.0
