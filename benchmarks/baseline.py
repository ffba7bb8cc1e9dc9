"""A hand-written, pure-Python implementation of the standard rules, for side-by-side benchmarks.

Issue 5 asks for "a straightforward pure-Python implementation of the same standard rules
(dicts, deques, the way a competent backend developer would write it without this library)".
This module is that baseline: the six rules and three segments of ``examples/live_room.toml``
hard-coded in Python, with no rules parser and no compiler.

* Per-viewer state is one plain ``dict``; sliding windows are ``collections.deque`` of
  event times, trimmed with the SPEC §4 12-bucket definition (``count(T, W)`` counts events
  whose bucket ``t // (W/12)`` is among the 12 buckets ending with now's bucket).
* Sessions follow SPEC §2/§8: implicit enter, room switch, ``leave``, the 90 s idle timeout
  (present until ``last + 90 s``, dwell counted up to the last event), late events applied at
  the viewer's latest time.
* State rules fire on rising edges; suppression is ``once`` (per session), ``cooldown``
  (per viewer) and ``budget`` (per room, sliding window), checked in that order, and a
  suppressed edge is used up.
* Time-driven state rules are handled the way a backend developer would: ``advance(now)``
  scans every watched viewer (present, or with a pending timer) and, for the ones whose next
  due instant has passed, works out the exact instant the condition turned true (e.g.
  ``enter + 300 s`` for ``dwell > 5m``). Strict thresholds hold from their instant on
  (docs/semantics.md), so that instant is the action's ``ts``.

Times are kept as integer microseconds, like the engine (docs/semantics.md, "Resolution"),
so thresholds, buckets and cooldowns compare exactly; an action's ``ts`` is ``us / 1e6``.

Difference from segengine, by design: the engine keeps a timer heap and fires every viewer's
due timers at the start of each call; this baseline has no heap. ``ingest(e)`` first brings
``e``'s own viewer up to the latest time seen (firing what fell due, moving the viewer's clock
to the instants its conditions changed, so a late event is applied where segengine applies
it), but other viewers' timers wait for the next ``advance()`` scan. Their ``ts`` is still
the exact due instant, so the multiset of actions is the same; only the call that returns
an action can differ, and ``advance`` may be called at any cadence (every simulated second
in the benchmark).

Actions are tuples ``(rule, action, viewer, room, ts)``; with ``BaselineEngine(with_params=True)``
a sixth element holds the rule's rendered ``params`` dict.

``BaselineEngine(variants=...)`` adds the generated rules of the 50-rule file
(``benchmarks/bench_rules50.py``), table-driven, the way a developer would add 44 rules of five
shapes: a loop over each shape's parameters, not 44 hand-written copies. The extra per-viewer
state (a like window, a view|click window, the last like|comment, spend, cart value per item,
cooldowns, lifetime marks) exists only then, so the 6-rule figures are unchanged.
"""

from __future__ import annotations

import sys
from collections import deque

__all__ = ["BaselineEngine", "memory_per_viewer"]

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

INTERACTIONS = frozenset(("like", "comment", "click"))
ROOM_EVENTS = frozenset(("live_start", "live_end"))

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


def _new_viewer(seq: int, n_state: int = 3, variants: bool = False) -> dict:
    v = _std_viewer(seq)
    if n_state != 3:
        v["prev"] = [False] * n_state
        v["once"] = [-1] * n_state
    if variants:
        v["likes"] = None          # deque of like times, for count(like, 1m)
        v["views_clicks"] = None   # deque of view|click times, for count(view|click, 10m)
        v["last_lc"] = None        # since(like|comment)
        v["spend"] = 0.0
        v["cart_value"] = {}       # item -> carted value (a pay without amount pays the cart)
        v["cooldowns"] = {}        # rule -> last firing
        v["lifetime"] = set()      # rules fired once = "lifetime"
    return v


def _std_viewer(seq: int) -> dict:
    return {
        "seq": seq,            # first-seen order (ties between timers due at the same instant)
        "room": None,          # current room, or last room when absent
        "present": False,
        "start": 0,            # session start (us)
        "last": 0,             # time of the last event (us): idle expiry is last + 90 s
        "clock": -INF,         # latest event time or timer instant: older events are late
        "evald": -INF,         # time of the last evaluation of the state rules
        "due": INF,            # next instant a time-driven change may happen
        "sessions": 0,
        "dwell_last": 0,       # dwell of the session that ended last (us)
        "paid": False,         # paid in this session (the last one when absent)
        "orders": 0,
        "follows": False,
        "cart": {},            # item -> units (a multiset); "carted" = any unit left
        "cart_units": 0,
        "interactions": None,  # deque of like/comment/click times, for count(..., 1m)
        "views": None,         # deque of (time, price or None), for count/avg(view, 10m)
        "last_interaction": None,  # since(like|comment|click|view)
        "last_checkout": None,     # since(checkout); count(checkout, 10m) >= 1 only needs the latest
        "tags": set(),
        "level": "",           # profile
        "prev": [False, False, False],  # last value of each state rule (rising edges)
        "once": [-1, -1, -1],  # session number in which each state rule fired (once = "session";
                               # before the first session, "session 0" allows one firing too)
        "cooldown": None,      # last firing of hot_interest_coupon
    }


class BaselineEngine:
    """The standard rules of ``examples/live_room.toml``, written by hand."""

    def __init__(self, with_params: bool = False, variants=()):
        """``variants``: ``(shape, rule name, action, k, m, s)`` of each generated rule, in
        file order (``bench_rules50.variants(n)``)."""
        self.state_rules = list(STATE_RULES)
        self.state_variants: list = []   # (shape, k, M us, S us), parallel to state_rules[3:]
        self.on_variants: dict = {}      # event type -> [(shape, name, actions, k, m, S us)]
        for shape, name, action, k, m, sec in variants:
            if shape in VARIANT_STATE:
                self.state_rules.append((name, (action,), {}))
                self.state_variants.append((shape, k, m * 60 * US, sec * US))
            else:
                for typ in VARIANT_ON[shape]:
                    self.on_variants.setdefault(typ, []).append((shape, name, (action,), k, m, sec * US))
        self.n_state = len(self.state_rules)
        self.has_variants = bool(variants)
        self.viewers: dict = {}    # viewer id -> state dict
        self.watch: dict = {}      # viewers advance() must look at (present, or a timer pending)
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
            v = self.viewers[viewer] = _new_viewer(len(self.viewers), self.n_state, self.has_variants)
        v["level"] = level

    def ingest(self, event: dict) -> list:
        typ = event["type"]
        ts = round(event["ts"] * US)
        self.events += 1
        if typ in ROOM_EVENTS:
            if typ == "live_start":
                self.room_start[event["room"]] = ts
            if ts > self.now:
                self.now = ts
            return []
        vid = event["viewer"]
        room = event["room"]
        v = self.viewers.get(vid)
        if v is None:
            v = self.viewers[vid] = _new_viewer(len(self.viewers), self.n_state, self.has_variants)
        if ts > self.now:
            self.now = ts
        out: list = []
        # 1. this viewer's timers due by now (segengine fires every timer due at or before
        #    an event before applying it, so an event older than another viewer's may find
        #    this viewer's clock moved on), then its idle expiry
        self._catch_up(vid, v, self.now, out)
        t = ts
        if t < v["clock"]:
            t = v["clock"]
            self.late += 1

        # 2. sessions
        if typ == "leave":
            if v["present"] and v["room"] == room:
                v["present"] = False
                v["dwell_last"] = t - v["start"]
            elif v["room"] is None:
                v["room"] = room
        elif not v["present"]:
            self._start_session(v, room, t)
        elif v["room"] != room:  # room switch: the old session ends, a new one starts now
            v["dwell_last"] = t - v["start"]
            self._start_session(v, room, t)
        v["last"] = t
        v["clock"] = t

        # 3. the event's effect on features
        if self.has_variants:
            self._variant_features(v, typ, t, event)
        if typ in INTERACTIONS:
            d = v["interactions"]
            if d is None:
                d = v["interactions"] = deque()
            d.append(t)
            v["last_interaction"] = t
        elif typ == "view":
            d = v["views"]
            if d is None:
                d = v["views"] = deque()
            d.append((t, event.get("price")))
            self._count(d, BUCKET_10M, t, pairs=True)  # keep only the window
            v["last_interaction"] = t
        elif typ == "cart":
            item = event.get("item", "")
            cart = v["cart"]
            cart[item] = cart.get(item, 0) + 1
            v["cart_units"] += 1
        elif typ == "uncart":
            item = event.get("item", "")
            cart = v["cart"]
            n = cart.get(item, 0)
            if n:
                if n == 1:
                    del cart[item]
                else:
                    cart[item] = n - 1
                v["cart_units"] -= 1
        elif typ == "checkout":
            v["last_checkout"] = t
        elif typ == "pay":
            v["orders"] += 1
            v["paid"] = True
            v["cart"] = {}
            v["cart_units"] = 0
        elif typ == "follow":
            v["follows"] = True

        # 4. one pass: event rules of this type and all state rules, in file order
        vroom = v["room"]
        iv = self._intervals(v)
        # cart_nudge (state)
        self._edge(vid, v, CART_NUDGE, iv[0], t, out)
        # hot_interest_coupon (on like, comment, click)
        if typ in INTERACTIONS:
            if self._count(v["interactions"], BUCKET_1M, t) >= 5 and not v["cart_units"]:
                last = v["cooldown"]
                if last is not None and t - last < COUPON_COOLDOWN:
                    self._suppress("hot_interest_coupon", "cooldown")
                else:
                    bq = self.budgets.get(vroom)
                    if bq is None:
                        bq = self.budgets[vroom] = deque()
                    edge = t - COUPON_BUDGET_WINDOW
                    while bq and bq[0] <= edge:
                        bq.popleft()
                    if len(bq) >= COUPON_BUDGET:
                        self._suppress("hot_interest_coupon", "budget")
                    else:
                        bq.append(t)
                        v["cooldown"] = t
                        v["tags"].add("engaged")
                        params = {"pct": 10, "item": event.get("item") or ""}
                        self._fire("hot_interest_coupon", ("coupon", "tag:engaged"), vid, vroom, t, params, out)
        # price_sensitive (on view)
        elif typ == "view":
            if v["level"] == "high" and "price_sensitive" not in v["tags"]:
                views = v["views"]
                if self._count(views, BUCKET_10M, t, pairs=True) >= 3:
                    total = 0.0
                    n = 0
                    for _, price in views:
                        if price is not None:
                            total += price
                            n += 1
                    if (total / n if n else 0.0) < 60:
                        v["tags"].add("price_sensitive")
                        self._fire("price_sensitive", ("tag:price_sensitive",), vid, vroom, t, {}, out)
        # early_exit_risk (state)
        self._edge(vid, v, EARLY_EXIT, iv[1], t, out)
        # welcome_back (on enter)
        if typ == "enter" and v["sessions"] >= 2 and v["orders"] >= 1:
            self._fire("welcome_back", ("welcome",), vid, vroom, t, WELCOME_PARAMS, out)
        # checkout_abandon (state)
        self._edge(vid, v, CHECKOUT_ABANDON, iv[2], t, out)
        if self.has_variants:
            self._variant_rules(vid, v, typ, t, iv, out)
        v["evald"] = t
        self._schedule(vid, v, iv)
        return out

    def _variant_features(self, v: dict, typ: str, t: int, event: dict) -> None:
        """What the generated rules read, updated before the standard features (an uncart
        needs the item's units before they drop)."""
        if typ == "like" or typ == "comment":
            v["last_lc"] = t
            if typ == "like":
                d = v["likes"]
                if d is None:
                    d = v["likes"] = deque()
                d.append(t)
                self._count(d, BUCKET_1M, t)  # keep only the window
        elif typ == "view" or typ == "click":
            d = v["views_clicks"]
            if d is None:
                d = v["views_clicks"] = deque()
            d.append(t)
            self._count(d, BUCKET_10M, t)
        elif typ == "cart":
            item = event.get("item", "")
            values = v["cart_value"]
            values[item] = values.get(item, 0.0) + (event.get("price") or 0.0)
        elif typ == "uncart":
            item = event.get("item", "")
            n = v["cart"].get(item, 0)
            if n:
                values = v["cart_value"]
                values[item] = 0.0 if n == 1 else values[item] - values[item] / n
        elif typ == "pay":
            amount = event.get("amount")
            v["spend"] += sum(v["cart_value"].values()) if amount is None else amount
            v["cart_value"] = {}
        elif typ == "refund":
            amount = event.get("amount")
            if amount is not None:
                v["spend"] -= amount

    def _variant_rules(self, vid, v: dict, typ: str, t: int, iv, out: list) -> None:
        """The generated rules after the standard ones: event rules of ``typ``, then the
        state rules' edges (their order within the pass does not change what fires)."""
        room = v["room"]
        for shape, name, actions, k, m, s_us in self.on_variants.get(typ, ()):
            if shape == "likes":
                ok = self._count(v["likes"], BUCKET_1M, t) >= k and t - v["start"] >= s_us  # dwell > s
            elif shape == "views":
                ok = self._count(v["views_clicks"], BUCKET_10M, t) >= k and not v["cart_units"]
            else:  # spender
                ok = v["spend"] > m * 10 and v["orders"] >= k
            if not ok:
                continue
            if shape == "spender":
                if name in v["lifetime"]:
                    self._suppress(name, "once")
                    continue
                v["lifetime"].add(name)
            else:
                last = v["cooldowns"].get(name)
                if last is not None and t - last < VARIANT_COOLDOWN:
                    self._suppress(name, "cooldown")
                    continue
                v["cooldowns"][name] = t
            self._fire(name, actions, vid, room, t, {}, out)
        for k in range(3, self.n_state):
            self._edge(vid, v, k, iv[k], t, out)

    def advance(self, now: float) -> list:
        """Fire the time-driven rules due up to ``now``, scanning every watched viewer."""
        now = round(now * US)
        if now <= self.now:
            return []
        self.now = now
        out: list = []
        for vid, v in list(self.watch.items()):
            if v["due"] <= now:
                self._catch_up(vid, v, now, out)
        if len(out) > 1:  # by due time, then by viewer (first seen first), like the engine
            out.sort(key=lambda a: (a[4], self.viewers[a[2]]["seq"]))
        return out

    # ------------------------------------------------------------------------------------
    def _start_session(self, v: dict, room, t: int) -> None:
        v["present"] = True
        v["room"] = room
        v["start"] = t
        v["sessions"] += 1
        v["paid"] = False

    @staticmethod
    def _count(d, width: int, t: int, pairs: bool = False) -> int:
        """count(T, W): drop what fell out of the 12 buckets ending with t's bucket."""
        if d is None:
            return 0
        lo = t // width - 11
        if pairs:
            while d and d[0][0] // width < lo:
                d.popleft()
        else:
            while d and d[0] // width < lo:
                d.popleft()
        return len(d)

    def _intervals(self, v: dict) -> tuple:
        """For each state rule, the interval [R, F) of times at which it holds, given the
        viewer's state as left by its last event (nothing but the clock changes until the
        next event). R = INF: it does not hold. Strict thresholds hold from their instant."""
        present = v["present"]
        start = v["start"]
        last = v["last"]
        expiry = last + IDLE_TIMEOUT
        paid = v["paid"]
        # cart_nudge: carted and not paid and dwell > 5m
        if v["cart_units"] and not paid:
            if present:
                r = start + NUDGE_DWELL
                if r < expiry:
                    # after the idle expiry, dwell stops at last - start
                    nudge = (r, INF if last - start > NUDGE_DWELL else expiry)
                else:
                    nudge = (INF, INF)
            else:
                nudge = (-INF, INF) if v["dwell_last"] > NUDGE_DWELL else (INF, INF)
        else:
            nudge = (INF, INF)
        # early_exit_risk: present and dwell > 2m and since(like|comment|click|view) > 90s
        if present:
            r = start + EXIT_DWELL
            li = v["last_interaction"]
            if li is not None and li + EXIT_SINCE > r:
                r = li + EXIT_SINCE
            exit_ = (r, expiry) if r < expiry else (INF, INF)
        else:
            exit_ = (INF, INF)
        # checkout_abandon: count(checkout, 10m) >= 1 and not paid and since(checkout) > 2m
        lc = v["last_checkout"]
        if lc is not None and not paid:
            # the latest checkout leaves the 10m window when now's bucket is 12 past its own
            abandon = (lc + CHECKOUT_SINCE, (lc // BUCKET_10M + 12) * BUCKET_10M)
        else:
            abandon = (INF, INF)
        if not self.state_variants:
            return nudge, exit_, abandon
        out = [nudge, exit_, abandon]
        likes = v["likes"]
        last_lc = v["last_lc"]
        for shape, k, m_us, s_us in self.state_variants:
            if not present:
                out.append((INF, INF))
                continue
            r = start + m_us
            if shape == "dwell":
                # count(like, 1m) >= k holds until the k-th newest like leaves the window
                if likes is None or len(likes) < k:
                    out.append((INF, INF))
                    continue
                f = (likes[-k] // BUCKET_1M + 12) * BUCKET_1M
                if f > expiry:
                    f = expiry
            else:  # quiet
                if last_lc is not None and last_lc + s_us > r:
                    r = last_lc + s_us
                f = expiry
            out.append((r, f) if r < f else (INF, INF))
        return out

    def _edge(self, vid, v: dict, k: int, interval: tuple, t: int, out: list) -> None:
        """Evaluate state rule k at t (after an event): fire on a rising edge."""
        now_true = interval[0] <= t < interval[1]
        prev = v["prev"]
        if now_true and not prev[k]:
            self._rise(vid, v, k, t, out)
        prev[k] = now_true

    def _rise(self, vid, v: dict, k: int, t: int, out: list) -> None:
        name, actions, params = self.state_rules[k]
        if v["once"][k] == v["sessions"]:
            self._suppress(name, "once")
            return
        v["once"][k] = v["sessions"]
        self._fire(name, actions, vid, v["room"], t, params, out)

    def _catch_up(self, vid, v: dict, now: int, out: list) -> None:
        """Bring a viewer from its last evaluation up to ``now``: fire the state rules that
        turned true in between (at the instant they did), then apply an idle expiry."""
        t0 = v["evald"]
        if now <= t0:
            return
        iv = self._intervals(v)
        prev = v["prev"]
        rises = [(iv[k][0], k) for k in range(self.n_state) if not prev[k] and t0 < iv[k][0] <= now]
        if rises:
            rises.sort()
            for r, k in rises:
                self._rise(vid, v, k, r, out)
                if r > v["clock"]:
                    v["clock"] = r
        for k in range(self.n_state):
            r, f = iv[k]
            prev[k] = r <= now < f
            # a condition that turned false in between was evaluated then: the viewer's
            # clock moves on to that instant (a later event older than it is late)
            if t0 < f <= now and r < f and f > v["clock"]:
                v["clock"] = f
        if v["present"]:
            expiry = v["last"] + IDLE_TIMEOUT
            if expiry <= now:
                v["present"] = False
                v["dwell_last"] = v["last"] - v["start"]
                if expiry > v["clock"]:
                    v["clock"] = expiry
        v["evald"] = now
        self._schedule(vid, v, iv)

    def _schedule(self, vid, v: dict, iv: tuple) -> None:
        """Next instant advance() must look at this viewer; unwatch it if there is none."""
        t0 = v["evald"]
        prev = v["prev"]
        due = v["last"] + IDLE_TIMEOUT if v["present"] else INF
        for k in range(self.n_state):
            r = iv[k][0]
            if not prev[k] and t0 < r < due:
                due = r
        v["due"] = due
        if due == INF:
            self.watch.pop(vid, None)
        else:
            self.watch[vid] = v

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
        fan = (v["follows"] and v["orders"] >= 1) or v["orders"] >= 3
        if name == "fan":
            return fan
        present = v["present"] and t < v["last"] + IDLE_TIMEOUT
        if not present:
            return False
        dwell = t - v["start"]
        if name == "passerby":
            return dwell < 60 * US
        if name == "watcher":
            return dwell >= 60 * US and not fan
        raise KeyError(name)

    def segment_size(self, name: str, room: str | None = None, now: float | None = None) -> int:
        """Viewers that sent an event (present or not) in the segment; O(viewers)."""
        return sum(1 for vid, v in self.viewers.items()
                   if v["clock"] != -INF and (room is None or v["room"] == room)
                   and self.segment(vid, name, now))

    def stats(self) -> dict:
        return {"events": self.events, "late": self.late, "viewers": len(self.viewers),
                "fired": dict(self.fired), "suppressed": dict(self.suppressed)}


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
    return size


def memory_per_viewer(engine: BaselineEngine) -> float:
    """Bytes of per-viewer state (the viewers dict and everything it holds, objects shared
    between viewers counted once, None/bools/small ints not at all) divided by viewers."""
    n = len(engine.viewers)
    if not n:
        return 0.0
    seen = {id(None), id(True), id(False)}
    seen.update(id(i) for i in range(-5, 257))
    return _deep_size(engine.viewers, seen) / n
