"""A hand-written, pure-Python implementation of the standard rules, for side-by-side benchmarks.

The yardstick every ratio in docs/benchmarks.md is measured against: the six rules and three
segments of ``examples/live_room.toml`` hard-coded in Python the way a careful backend engineer
would write them without this library (no rules parser, no compiler, nothing generated), and
checked by ``tests/test_baseline.py`` to fire the same actions as segengine.

* Per-viewer state is one ``Viewer`` object with ``__slots__`` (no per-viewer ``__dict__``);
  sliding windows are ``collections.deque`` of event times, trimmed with the 12-bucket
  definition of a window (``count(T, W)`` counts events whose bucket ``t // (W/12)`` is among
  the 12 buckets ending with now's bucket).
* Sessions: implicit enter, room switch, ``leave``, the 90 s idle timeout (present until
  ``last + 90 s``, dwell counted up to the last event), late events applied at the viewer's
  latest time.
* State rules fire on rising edges; suppression is ``once`` (per session), ``cooldown``
  (per viewer) and ``budget`` (per room, sliding window), checked in that order, and a
  suppressed edge is used up.
* Time: one timer heap (``heapq``) with lazy invalidation. After each evaluation a viewer
  computes, for every state rule, the interval ``[R, F)`` of instants at which the condition
  holds if no further event arrives (e.g. ``enter + 300 s`` for ``dwell > 5m``); its next due
  instant is the earliest rising edge, falling edge or idle expiry after now. The heap holds
  ``(instant, seq, viewer)`` entries; a viewer's live entry is never later than its due
  instant: an earlier due instant is pushed at once, a later one (an active viewer's idle
  expiry moves on with every event) is requeued when the live entry pops, and superseded
  entries are skipped. Strict thresholds hold from their instant on, so that instant is the
  action's ``ts``. Nothing ever scans all viewers: ``ingest`` and ``advance`` pop only the
  entries that fell due, O(log timers) each.
* As in segengine, ``ingest(e)`` first fires every timer due at or before ``e.ts`` (all
  viewers' timers, not only ``e``'s viewer's), then applies ``e``; timers due at the same
  instant fire viewer by viewer in the order of each viewer's first event (``seq``), and
  within a viewer in file order. The results do not depend on how often ``advance()`` is
  called.

Times are kept as integer microseconds, like the engine (docs/semantics.md, "Resolution"),
so thresholds, buckets and cooldowns compare exactly; an action's ``ts`` is ``us / 1e6``.

What the baseline leaves out, because the standard rules do not use it: a rules parser,
interest decay, profile fields other than ``level``, retention, snapshots. It is fair for the
rules it runs, and only for those.

Actions are tuples ``(rule, action, viewer, room, ts)``; with ``BaselineEngine(with_params=True)``
a sixth element holds the rule's rendered ``params`` dict.

``BaselineEngine(variants=...)`` adds the generated rules of the 50-rule file
(``benchmarks/bench_rules50.py``), table-driven, the way a developer would add 44 rules of five
shapes: a loop over each shape's parameters, not 44 hand-written copies. The extra per-viewer
state (a like window, a view|click window, the last like|comment, spend, cart value per item,
cooldowns, lifetime marks) is filled only then, so the 6-rule figures are unchanged.
"""

from __future__ import annotations

import sys
from collections import deque
from heapq import heappop, heappush

__all__ = ["BaselineEngine", "Viewer", "memory_per_viewer"]

INF = float("inf")
US = 1_000_000  # microseconds per second

IDLE_TIMEOUT = 90 * US
NUDGE_DWELL = 300 * US          # cart_nudge: dwell > 5m
EXIT_DWELL = 120 * US           # early_exit_risk: dwell > 2m
EXIT_SINCE = 90 * US            # early_exit_risk: since(like|comment|click|view) > 90s
CHECKOUT_SINCE = 120 * US       # checkout_abandon: since(checkout) > 2m
BUCKET_1M = 60 * US // 12       # bucket width of a 1m window
BUCKET_10M = 600 * US // 12     # bucket width of a 10m window
COUPON_COOLDOWN = 600 * US      # hot_interest_coupon: cooldown = "10m"
COUPON_BUDGET = 200             # hot_interest_coupon: budget = "200/1m"
COUPON_BUDGET_WINDOW = 60 * US
COUPON_COOLED = ("hot_interest_coupon", "cooldown")  # its key in stats()["suppressed"]

INTERACTIONS = frozenset(("like", "comment", "click"))
ROOM_EVENTS = frozenset(("live_start", "live_end"))
NEVER = (INF, INF)  # the interval of a condition that does not hold

# The state rules, in file order (index into a viewer's "prev" and "once" lists).
CART_NUDGE, EARLY_EXIT, CHECKOUT_ABANDON = 0, 1, 2
STATE_RULES = (
    # name, actions, params
    ("cart_nudge", ("nudge",), {"template": "cart_reminder"}),
    ("early_exit_risk", ("retain",), {"template": "flash_deal"}),
    ("checkout_abandon", ("remind_checkout",), {"template": "checkout_reminder"}),
)
WELCOME_PARAMS = {"template": "welcome_back"}

# Shapes of the generated rules of the 50-rule file (bench_rules50.VARIANTS), with k, m, s:
#   dwell:   present and dwell > {m}m and count(like, 1m) >= {k}        once = "session"  (state)
#   likes:   on like: count(like, 1m) >= {k} and dwell > {s}s           cooldown = "10m"
#   views:   on view, click: count(view|click, 10m) >= {k} and not carted   cooldown = "10m"
#   quiet:   present and since(like|comment) > {s}s and dwell > {m}m    once = "session"  (state)
#   spender: on pay: spend > {m}0 and orders >= {k}                    once = "lifetime"
VARIANT_STATE = ("dwell", "quiet")
VARIANT_ON = {"likes": ("like",), "views": ("view", "click"), "spender": ("pay",)}
VARIANT_COOLDOWN = 600 * US


class Viewer:
    """One viewer's state, in ``__slots__`` (no per-viewer ``__dict__``); windows and the cart
    are created on first use."""

    __slots__ = (
        "vid", "seq", "room", "present", "start", "last", "clock", "evald", "due", "queued", "sessions",
        "dwell_last", "paid", "orders", "follows", "cart", "cart_units", "interactions", "views",
        "last_interaction", "last_checkout", "tags", "level", "prev", "once", "cooldown",
        # the generated rules of the 50-rule file (BaselineEngine(variants=...)) only
        "likes", "views_clicks", "last_lc", "spend", "cart_value", "cooldowns", "lifetime",
    )

    def __init__(self, vid, n_state: int):
        self.vid = vid
        self.seq = -1             # order of the first event (ties between timers due at one instant)
        self.room = None          # current room, or last room when absent
        self.present = False
        self.start = 0            # session start (us)
        self.last = 0             # time of the last event (us): idle expiry is last + 90 s
        self.clock = -INF         # latest event time or timer instant: older events are late
        self.evald = -INF         # time of the last evaluation of the state rules
        self.due = INF            # the next instant a time-driven change may happen (INF: none)
        self.queued = INF         # the instant of the viewer's live heap entry, <= due (INF: none)
        self.sessions = 0
        self.dwell_last = 0       # dwell of the session that ended last (us)
        self.paid = False         # paid in this session (the last one when absent)
        self.orders = 0
        self.follows = False
        self.cart = None          # item -> units (a multiset); "carted" = any unit left
        self.cart_units = 0
        self.interactions = None  # deque of like/comment/click times, for count(..., 1m)
        self.views = None         # deque of (time, price or None), for count/avg(view, 10m)
        self.last_interaction = None  # since(like|comment|click|view)
        self.last_checkout = None     # since(checkout); count(checkout, 10m) >= 1 only needs the latest
        self.tags = None          # set of tag names
        self.level = ""           # profile
        self.prev = [False] * n_state  # last value of each state rule (rising edges)
        self.once = [-1] * n_state     # session number in which each state rule fired (once = "session";
                                       # before the first session, "session 0" allows one firing too)
        self.cooldown = None      # last firing of hot_interest_coupon
        self.likes = None         # deque of like times, for count(like, 1m)
        self.views_clicks = None  # deque of view|click times, for count(view|click, 10m)
        self.last_lc = None       # since(like|comment)
        self.spend = 0.0
        self.cart_value = None    # item -> carted value (a pay without amount pays the cart)
        self.cooldowns = None     # rule -> last firing
        self.lifetime = None      # rules fired once = "lifetime"


def _trim(d, width: int, t: int) -> int:
    """count(T, W) of a deque of times: drop what fell out of the 12 buckets ending with t's."""
    if d is None:
        return 0
    lo = t // width - 11
    while d and d[0] // width < lo:
        d.popleft()
    return len(d)


def _trim_pairs(d, width: int, t: int) -> int:
    """``_trim`` for a deque of ``(time, value)``."""
    if d is None:
        return 0
    lo = t // width - 11
    while d and d[0][0] // width < lo:
        d.popleft()
    return len(d)


class BaselineEngine:
    """The standard rules of ``examples/live_room.toml``, written by hand."""

    def __init__(self, with_params: bool = False, variants=()):
        """``variants``: ``(shape, rule name, action, k, m, s)`` of each generated rule, in
        file order (``bench_rules50.variants(n)``)."""
        self.state_rules = list(STATE_RULES)
        self.state_variants: list = []   # (shape, k, M us, S us), parallel to state_rules[3:]
        # the pass over the generated rules, in file order, for each event type: a state rule
        # as its index into state_rules, an event rule of that type as (shape, name, actions,
        # k, m, S us)
        passes: dict = {typ: [] for on in VARIANT_ON.values() for typ in on}
        state_only: list = []
        for shape, name, action, k, m, sec in variants:
            if shape in VARIANT_STATE:
                self.state_rules.append((name, (action,), {}))
                self.state_variants.append((shape, k, m * 60 * US, sec * US))
                for rules in (*passes.values(), state_only):
                    rules.append(len(self.state_rules) - 1)
            else:
                for typ in VARIANT_ON[shape]:
                    passes[typ].append((shape, name, (action,), k, m, sec * US))
        self.variant_pass = passes
        self.variant_state_pass = state_only
        self.n_state = len(self.state_rules)
        self.has_variants = bool(variants)
        self.viewers: dict = {}    # viewer id -> Viewer
        self.heap: list = []       # (instant us, seq, Viewer); stale unless instant == viewer.queued
        self.seen = 0              # viewers that sent an event (the next seq)
        self.budgets: dict = {}    # room -> deque of hot_interest_coupon firing times
        self.room_start: dict = {}  # room -> live_start time (us)
        self.now = -INF            # latest time seen (us)
        self.with_params = with_params
        self.events = 0
        self.late = 0
        self.fired: dict = {}
        self.suppressed: dict = {}

    # ------------------------------------------------------------------------------------
    def set_profile(self, viewer, level: str = "") -> None:
        v = self.viewers.get(viewer)
        if v is None:
            v = self.viewers[viewer] = Viewer(viewer, self.n_state)
        v.level = level

    def ingest(self, event: dict) -> list:
        typ = event["type"]
        ts = round(event["ts"] * US)
        self.events += 1
        out: list = []
        # 1. every viewer's timers due by now (at or before the event, or before the latest
        #    time seen if the event is older), by due time, then first-seen order
        if ts > self.now:
            self.now = ts
        heap = self.heap
        if heap and heap[0][0] <= self.now:
            self._fire_due(self.now, out)
        if typ in ROOM_EVENTS:
            if typ == "live_start":
                self.room_start[event["room"]] = ts
            return out
        vid = event["viewer"]
        room = event["room"]
        v = self.viewers.get(vid)
        if v is None:
            v = self.viewers[vid] = Viewer(vid, self.n_state)
        if v.seq < 0:
            v.seq = self.seen
            self.seen += 1
        t = ts
        if t < v.clock:  # late: applied at the viewer's latest time
            t = v.clock
            self.late += 1

        # 2. sessions
        if typ == "leave":
            if v.present and v.room == room:
                v.present = False
                v.dwell_last = t - v.start
            elif v.room is None:
                v.room = room
        elif not v.present:
            self._start_session(v, room, t)
        elif v.room != room:  # room switch: the old session ends, a new one starts now
            v.dwell_last = t - v.start
            self._start_session(v, room, t)
        v.last = t
        v.clock = t

        # 3. the event's effect on features
        if self.has_variants:
            self._variant_features(v, typ, t, event)
        if typ in INTERACTIONS:
            d = v.interactions
            if d is None:
                d = v.interactions = deque()
            d.append(t)
            v.last_interaction = t
        elif typ == "view":
            d = v.views
            if d is None:
                d = v.views = deque()
            d.append((t, event.get("price")))
            _trim_pairs(d, BUCKET_10M, t)  # keep only the window
            v.last_interaction = t
        elif typ == "cart":
            item = event.get("item", "")
            cart = v.cart
            if cart is None:
                cart = v.cart = {}
            cart[item] = cart.get(item, 0) + 1
            v.cart_units += 1
        elif typ == "uncart":
            cart = v.cart
            if cart:
                item = event.get("item", "")
                n = cart.get(item, 0)
                if n:
                    if n == 1:
                        del cart[item]
                    else:
                        cart[item] = n - 1
                    v.cart_units -= 1
        elif typ == "checkout":
            v.last_checkout = t
        elif typ == "pay":
            v.orders += 1
            v.paid = True
            v.cart = None
            v.cart_units = 0
        elif typ == "follow":
            v.follows = True

        # 4. one pass: event rules of this type and all state rules, in file order
        vroom = v.room
        iv = self._intervals(v)
        prev = v.prev
        # cart_nudge (state)
        r, f = iv[CART_NUDGE]
        now_true = r <= t < f
        if now_true and not prev[CART_NUDGE]:
            self._rise(v, CART_NUDGE, t, out)
        prev[CART_NUDGE] = now_true
        # hot_interest_coupon (on like, comment, click)
        if typ in INTERACTIONS:
            d = v.interactions
            lo = t // BUCKET_1M - 11
            while d[0] // BUCKET_1M < lo:  # trim to count(like|comment|click, 1m); d holds t
                d.popleft()
            if len(d) >= 5 and not v.cart_units:
                last = v.cooldown
                if last is not None and t - last < COUPON_COOLDOWN:
                    suppressed = self.suppressed
                    suppressed[COUPON_COOLED] = suppressed.get(COUPON_COOLED, 0) + 1
                else:
                    self._coupon(v, vroom, t, event, out)
        # price_sensitive (on view)
        elif typ == "view":
            if v.level == "high" and (v.tags is None or "price_sensitive" not in v.tags):
                views = v.views
                if len(views) >= 3:  # trimmed to the window above
                    total = 0.0
                    n = 0
                    for _, price in views:
                        if price is not None:
                            total += price
                            n += 1
                    if (total / n if n else 0.0) < 60:
                        self._tag(v, "price_sensitive")
                        self._fire("price_sensitive", ("tag:price_sensitive",), vid, vroom, t, {}, out)
        # early_exit_risk (state)
        r, f = iv[EARLY_EXIT]
        now_true = r <= t < f
        if now_true and not prev[EARLY_EXIT]:
            self._rise(v, EARLY_EXIT, t, out)
        prev[EARLY_EXIT] = now_true
        # welcome_back (on enter)
        if typ == "enter" and v.sessions >= 2 and v.orders >= 1:
            self._fire("welcome_back", ("welcome",), vid, vroom, t, WELCOME_PARAMS, out)
        # checkout_abandon (state)
        r, f = iv[CHECKOUT_ABANDON]
        now_true = r <= t < f
        if now_true and not prev[CHECKOUT_ABANDON]:
            self._rise(v, CHECKOUT_ABANDON, t, out)
        prev[CHECKOUT_ABANDON] = now_true
        if self.has_variants:
            self._variant_rules(v, typ, t, iv, out)
        v.evald = t
        # 5. the next due instant: _schedule, unrolled for the standard rules (every event runs it)
        due = t + IDLE_TIMEOUT if v.present else INF
        r, f = iv[CART_NUDGE]
        if prev[CART_NUDGE]:
            if f < due:
                due = f
        elif t < r < due:
            due = r
        r, f = iv[EARLY_EXIT]
        if prev[EARLY_EXIT]:
            if f < due:
                due = f
        elif t < r < due:
            due = r
        r, f = iv[CHECKOUT_ABANDON]
        if prev[CHECKOUT_ABANDON]:
            if f < due:
                due = f
        elif t < r < due:
            due = r
        if self.has_variants:
            for k in range(3, self.n_state):
                r, f = iv[k]
                if prev[k]:
                    if f < due:
                        due = f
                elif t < r < due:
                    due = r
        v.due = due
        if due < v.queued:
            v.queued = due
            heappush(heap, (due, v.seq, v))
        return out

    def _coupon(self, v: Viewer, room, t: int, event: dict, out: list) -> None:
        """hot_interest_coupon's condition holds and no cooldown: the room's budget, then fire."""
        bq = self.budgets.get(room)
        if bq is None:
            bq = self.budgets[room] = deque()
        edge = t - COUPON_BUDGET_WINDOW
        while bq and bq[0] <= edge:
            bq.popleft()
        if len(bq) >= COUPON_BUDGET:
            self._suppress("hot_interest_coupon", "budget")
            return
        bq.append(t)
        v.cooldown = t
        self._tag(v, "engaged")
        params = {"pct": 10, "item": event.get("item") or ""}
        self._fire("hot_interest_coupon", ("coupon", "tag:engaged"), v.vid, room, t, params, out)

    @staticmethod
    def _tag(v: Viewer, name: str) -> None:
        if v.tags is None:
            v.tags = {name}
        else:
            v.tags.add(name)

    def _variant_features(self, v: Viewer, typ: str, t: int, event: dict) -> None:
        """What the generated rules read, updated before the standard features (an uncart
        needs the item's units before they drop)."""
        if typ == "like" or typ == "comment":
            v.last_lc = t
            if typ == "like":
                d = v.likes
                if d is None:
                    d = v.likes = deque()
                d.append(t)
                _trim(d, BUCKET_1M, t)  # keep only the window
        elif typ == "view" or typ == "click":
            d = v.views_clicks
            if d is None:
                d = v.views_clicks = deque()
            d.append(t)
            _trim(d, BUCKET_10M, t)
        elif typ == "cart":
            item = event.get("item", "")
            values = v.cart_value
            if values is None:
                values = v.cart_value = {}
            values[item] = values.get(item, 0.0) + (event.get("price") or 0.0)
        elif typ == "uncart":
            item = event.get("item", "")
            n = v.cart.get(item, 0) if v.cart else 0
            if n:
                values = v.cart_value
                values[item] = 0.0 if n == 1 else values[item] - values[item] / n
        elif typ == "pay":
            amount = event.get("amount")
            if amount is None:
                v.spend += sum(v.cart_value.values()) if v.cart_value else 0.0
            else:
                v.spend += amount
            v.cart_value = None
        elif typ == "refund":
            amount = event.get("amount")
            if amount is not None:
                v.spend -= amount

    def _variant_rules(self, v: Viewer, typ: str, t: int, iv, out: list) -> None:
        """The generated rules after the standard ones, in file order: the event rules of
        ``typ`` and the state rules' edges."""
        room = v.room
        prev = v.prev
        for rule in self.variant_pass.get(typ, self.variant_state_pass):
            if rule.__class__ is int:  # a state rule
                r, f = iv[rule]
                now_true = r <= t < f
                if now_true and not prev[rule]:
                    self._rise(v, rule, t, out)
                prev[rule] = now_true
                continue
            shape, name, actions, k, m, s_us = rule
            if shape == "likes":
                ok = _trim(v.likes, BUCKET_1M, t) >= k and t - v.start >= s_us  # dwell > s
            elif shape == "views":
                ok = _trim(v.views_clicks, BUCKET_10M, t) >= k and not v.cart_units
            else:  # spender
                ok = v.spend > m * 10 and v.orders >= k
            if not ok:
                continue
            if shape == "spender":
                if v.lifetime is None:
                    v.lifetime = set()
                if name in v.lifetime:
                    self._suppress(name, "once")
                    continue
                v.lifetime.add(name)
            else:
                if v.cooldowns is None:
                    v.cooldowns = {}
                last = v.cooldowns.get(name)
                if last is not None and t - last < VARIANT_COOLDOWN:
                    self._suppress(name, "cooldown")
                    continue
                v.cooldowns[name] = t
            self._fire(name, actions, v.vid, room, t, {}, out)

    def advance(self, now: float) -> list:
        """Fire the time-driven rules due up to ``now``: pops the timers that fell due, O(log n) each."""
        now = round(now * US)
        if now <= self.now:
            return []
        self.now = now
        out: list = []
        heap = self.heap
        if heap and heap[0][0] <= now:
            self._fire_due(now, out)
        return out

    # ------------------------------------------------------------------------------------
    def _fire_due(self, now: int, out: list) -> None:
        """Pop every heap entry due at or before ``now``; skip the stale ones."""
        heap = self.heap
        while heap and heap[0][0] <= now:
            at, seq, v = heappop(heap)
            if at != v.queued:  # stale: superseded by an earlier entry, already popped
                continue
            v.queued = INF
            due = v.due
            if due == at:
                v.due = INF
                self._catch_up(v, due, out)
            elif due != INF:  # the due instant moved later since this entry was pushed: requeue
                v.queued = due
                heappush(heap, (due, seq, v))

    @staticmethod
    def _start_session(v: Viewer, room, t: int) -> None:
        v.present = True
        v.room = room
        v.start = t
        v.sessions += 1
        v.paid = False

    def _intervals(self, v: Viewer):
        """For each state rule, the interval [R, F) of times at which it holds, given the
        viewer's state as left by its last event (nothing but the clock changes until the
        next event). R = INF: it does not hold. Strict thresholds hold from their instant."""
        present = v.present
        start = v.start
        last = v.last
        expiry = last + IDLE_TIMEOUT
        paid = v.paid
        # cart_nudge: carted and not paid and dwell > 5m
        if v.cart_units and not paid:
            if present:
                r = start + NUDGE_DWELL
                if r < expiry:
                    # after the idle expiry, dwell stops at last - start
                    nudge = (r, INF if last - start > NUDGE_DWELL else expiry)
                else:
                    nudge = NEVER
            else:
                nudge = (-INF, INF) if v.dwell_last > NUDGE_DWELL else NEVER
        else:
            nudge = NEVER
        # early_exit_risk: present and dwell > 2m and since(like|comment|click|view) > 90s
        if present:
            r = start + EXIT_DWELL
            li = v.last_interaction
            if li is not None and li + EXIT_SINCE > r:
                r = li + EXIT_SINCE
            exit_ = (r, expiry) if r < expiry else NEVER
        else:
            exit_ = NEVER
        # checkout_abandon: count(checkout, 10m) >= 1 and not paid and since(checkout) > 2m
        lc = v.last_checkout
        if lc is not None and not paid:
            # the latest checkout leaves the 10m window when now's bucket is 12 past its own
            abandon = (lc + CHECKOUT_SINCE, (lc // BUCKET_10M + 12) * BUCKET_10M)
        else:
            abandon = NEVER
        if not self.state_variants:
            return nudge, exit_, abandon
        out = [nudge, exit_, abandon]
        likes = v.likes
        last_lc = v.last_lc
        for shape, k, m_us, s_us in self.state_variants:
            if not present:
                out.append(NEVER)
                continue
            r = start + m_us
            if shape == "dwell":
                # count(like, 1m) >= k holds until the k-th newest like leaves the window
                if likes is None or len(likes) < k:
                    out.append(NEVER)
                    continue
                f = (likes[-k] // BUCKET_1M + 12) * BUCKET_1M
                if f > expiry:
                    f = expiry
            else:  # quiet
                if last_lc is not None and last_lc + s_us > r:
                    r = last_lc + s_us
                f = expiry
            out.append((r, f) if r < f else NEVER)
        return out

    def _rise(self, v: Viewer, k: int, t: int, out: list) -> None:
        name, actions, params = self.state_rules[k]
        if v.once[k] == v.sessions:
            self._suppress(name, "once")
            return
        v.once[k] = v.sessions
        self._fire(name, actions, v.vid, v.room, t, params, out)

    def _catch_up(self, v: Viewer, now: int, out: list) -> None:
        """A timer of ``v`` fell due at ``now``: fire the state rules that turned true (at the
        instant they did), note those that turned false, apply an idle expiry, reschedule."""
        t0 = v.evald
        if now <= t0:
            return
        iv = self._intervals(v)
        prev = v.prev
        clock = v.clock
        for k in range(self.n_state):
            r, f = iv[k]
            if not prev[k] and t0 < r <= now:  # rising edges are due one at a time: r == now
                self._rise(v, k, r, out)
                if r > clock:
                    clock = r
            prev[k] = r <= now < f
            # a condition that turned false was evaluated then: the viewer's clock moves on
            # to that instant (a later event older than it is late)
            if t0 < f <= now and r < f and f > clock:
                clock = f
        if v.present:
            expiry = v.last + IDLE_TIMEOUT
            if expiry <= now:
                v.present = False
                v.dwell_last = v.last - v.start
                if expiry > clock:
                    clock = expiry
        v.clock = clock
        v.evald = now
        self._schedule(v, iv)

    def _schedule(self, v: Viewer, iv) -> None:
        """Set the viewer's next due instant (the earliest rising edge, falling edge or idle
        expiry after its last evaluation). Only an earlier instant than the viewer's live heap
        entry is pushed; a later one is requeued when that entry pops (an active viewer's idle
        expiry moves on with every event, and costs one push per timeout, not per event)."""
        t0 = v.evald
        due = v.last + IDLE_TIMEOUT if v.present else INF
        for (r, f), p in zip(iv, v.prev):
            if p:
                if f < due:  # holds now (r <= t0 < f): due to turn false at f
                    due = f
            elif t0 < r < due:
                due = r
        v.due = due
        if due < v.queued:
            v.queued = due
            heappush(self.heap, (due, v.seq, v))

    def _fire(self, rule: str, actions: tuple, vid, room, t: int, params: dict, out: list) -> None:
        self.fired[rule] = self.fired.get(rule, 0) + 1
        ts = t / US
        if self.with_params:
            out.extend((rule, a, vid, room, ts, dict(params)) for a in actions)
        else:
            out.extend((rule, a, vid, room, ts) for a in actions)

    def _suppress(self, rule: str, reason: str) -> None:
        key = (rule, reason)
        self.suppressed[key] = self.suppressed.get(key, 0) + 1

    # segments ----------------------------------------------------------------------------
    def segment(self, viewer, name: str, now: float | None = None) -> bool:
        """passerby / watcher / fan of one viewer at ``now`` (default: the latest time seen)."""
        v = self.viewers[viewer]
        t = self.now if now is None else round(now * US)
        fan = (v.follows and v.orders >= 1) or v.orders >= 3
        if name == "fan":
            return fan
        present = v.present and t < v.last + IDLE_TIMEOUT
        if not present:
            return False
        dwell = t - v.start
        if name == "passerby":
            return dwell < 60 * US
        if name == "watcher":
            return dwell >= 60 * US and not fan
        raise KeyError(name)

    def segment_size(self, name: str, room: str | None = None, now: float | None = None) -> int:
        """Viewers that sent an event (present or not) in the segment; O(viewers)."""
        return sum(1 for vid, v in self.viewers.items()
                   if v.seq >= 0 and (room is None or v.room == room)
                   and self.segment(vid, name, now))

    def stats(self) -> dict:
        return {"events": self.events, "late": self.late, "viewers": len(self.viewers),
                "timers": len(self.heap), "fired": dict(self.fired), "suppressed": dict(self.suppressed)}


def _deep_size(obj, seen: set) -> int:
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        for k, val in obj.items():
            size += _deep_size(k, seen) + _deep_size(val, seen)
    elif isinstance(obj, (list, tuple, set, frozenset, deque)):
        for item in obj:
            size += _deep_size(item, seen)
    elif isinstance(obj, Viewer):
        for name in Viewer.__slots__:
            size += _deep_size(getattr(obj, name), seen)
    return size


def memory_per_viewer(engine: BaselineEngine) -> float:
    """Bytes of per-viewer state (the viewers dict, every Viewer and everything it holds, and
    the timer heap; objects shared between viewers counted once, None/bools/small ints not
    at all) divided by viewers."""
    n = len(engine.viewers)
    if not n:
        return 0.0
    seen = {id(None), id(True), id(False), id(INF), id(-INF)}
    seen.update(id(i) for i in range(-5, 257))
    return (_deep_size(engine.viewers, seen) + _deep_size(engine.heap, seen)) / n
