"""Standard benchmark workload (SPEC §7): synthetic live-room events, seeded and streamed.

Why: the benchmark suite, `segengine simulate` and `segengine demo` need millions of
realistic events that are byte-identical for a given seed, without holding them in
memory. Viewers arrive lazily (exactly `viewers` of them, spaced as a Poisson process);
each present viewer keeps one pending entry (its next heartbeat, interaction or end of
stay) plus one per pending purchase step in a calendar queue, so memory grows with the
viewers present at once, not with the length of the stream. Random numbers come from
numpy in blocks.
"""
from __future__ import annotations

import heapq
from bisect import bisect
from functools import partial
from io import BytesIO
from itertools import accumulate, chain, count, islice, repeat
from math import inf, log
from typing import BinaryIO, Iterator, NamedTuple

import msgspec
import numpy as np


class ViewerKind(NamedTuple):
    name: str
    share: float      # fraction of arriving viewers
    mean_stay: float  # seconds; stays are exponential, cut at the end of the stream
    activity: float   # multiplier on the interaction and purchase rates below


# The audience layers of SPEC §7 (passers-by barely engage, fans at 5x).
VIEWER_KINDS = (
    ViewerKind("passerby", 0.6, 20.0, 0.5),
    ViewerKind("watcher", 0.3, 480.0, 1.0),
    ViewerKind("fan", 0.1, 2400.0, 5.0),
)

# Base rates of a watcher, events per second, each an independent Poisson process.
ACTION_RATES = {
    "like": 1 / 40,      # taps the heart every ~40 s
    "comment": 1 / 180,  # a comment every ~3 min
    "view": 1 / 60,      # opens a product card every minute
    "click": 1 / 150,    # follows the product link of the last card
    "share": 1 / 1200,
    "follow": 1 / 1800,  # at most once per viewer (later draws become likes)
    "cart": 1 / 1200,    # adds the last viewed item (a view if none yet)
}
HEARTBEAT_EVERY = 30.0   # seconds, from `enter`
# Purchase path: a cart schedules a checkout (unless one is pending), a checkout a pay.
# A viewer who skips checkout or abandons it gives up buying for the rest of the session,
# so its later carts stay unpaid too (with stays cut short: ~15 % of carts never paid).
NO_CHECKOUT_PROB = 0.01  # per cart: the viewer hesitates and never checks out
CHECKOUT_DELAY = 45.0    # mean seconds from cart to checkout
ABANDON_PROB = 0.01      # per checkout: abandoned, never paid
PAY_DELAY = 15.0         # mean seconds from checkout to pay
UNCART_PROB = 0.08       # a cart is later undone
UNCART_DELAY = 60.0
REFUND_PROB = 0.03       # a pay is later refunded (one item's price)
REFUND_DELAY = 300.0
SILENT_PROB = 0.10       # sessions that end without `leave` (idle timeout)
REPEAT_PROB = 0.35       # fans who come back for another session
REPEAT_GAP_MIN = 300.0   # seconds between sessions: minimum + exponential mean
REPEAT_GAP_MEAN = 1800.0
FAVOURITE_SHARE = 0.6    # views in the viewer's favourite category
INTEREST_SHIFT_PROB = 0.02  # per view: the favourite moves on (snacks -> digital)
CATEGORIES = ("snacks", "beauty", "digital", "apparel", "home", "books", "toys", "sports")
CATALOGUE_SIZE = 200
PRICE_MEDIAN = 120.0     # log-normal prices
PRICE_SIGMA = 0.7
COMMENTS = ("nice", "how much?", "link please", "size?", "shipping?", "love it",
            "666", "好看", "多少钱", "还有货吗", "wow", "restock when?")

_BLOCK = 4096  # random numbers drawn per numpy call
_BATCH = 1024  # events per encode_lines call and write
_ACTIONS = tuple(ACTION_RATES)
_ACTION_CUM = [c / sum(ACTION_RATES.values()) for c in accumulate(ACTION_RATES.values())]
_ACTION_CUM[-1] = 1.0  # rand() < 1 always picks an action
_KIND_CUM = list(accumulate(k.share for k in VIEWER_KINDS))
_FAN = 2  # index in VIEWER_KINDS; only fans come back
_MEAN_GAPS = tuple(1.0 / (sum(ACTION_RATES.values()) * k.activity) for k in VIEWER_KINDS)
# Queue entries: (t, seq, code, viewer slot, arg); seq breaks ties in creation order.
_TICK, _CHECKOUT, _PAY, _UNCART, _REFUND, _RETURN, _ARRIVE = range(7)
_EVENTS_PER_VIEWER = 90  # of the default workload; sizes the calendar queue's buckets


def catalogue(seed: int = 0) -> list[tuple[str, str, float]]:
    """The (item, category, price) catalogue that `seed` fixes, 200 items in 8 categories."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[0])
    cats = rng.permutation(np.arange(CATALOGUE_SIZE) % len(CATEGORIES)).tolist()
    raw = rng.lognormal(log(PRICE_MEDIAN), PRICE_SIGMA, CATALOGUE_SIZE).tolist()
    return [(f"i{k + 1:03d}", CATEGORIES[c], max(round(p, 2), 0.01))
            for k, (c, p) in enumerate(zip(cats, raw))]


def _draws(draw) -> partial:
    """A zero-argument callable returning the next float of `draw(size)` blocks."""
    return partial(next, chain.from_iterable(draw(_BLOCK).tolist() for _ in repeat(None)))


def _arrivals(ss: np.random.SeedSequence, n: int, t0: float, duration: float) -> Iterator[float]:
    """Exactly n sorted arrival times in (t0, t0 + duration), Poisson-process spacing.

    Normalised cumulative exponential spacings give uniform order statistics; the total
    is summed in a first pass and the same stream replayed, so nothing is stored."""
    total, left, rng = 0.0, n + 1, np.random.default_rng(ss)
    while left:
        k = min(_BLOCK, left)
        total += float(rng.standard_exponential(k).sum())
        left -= k
    scale, acc, left, rng = duration / total, 0.0, n, np.random.default_rng(ss)
    while left:
        k = min(_BLOCK, left)
        cum = np.cumsum(rng.standard_exponential(k)) + acc
        acc = float(cum[-1])
        yield from (np.minimum(cum * scale, duration) + t0).tolist()
        left -= k


def _ms(t: float) -> float:
    """Round to milliseconds (half up); about twice as fast as round(t, 3), monotonic."""
    return int(t * 1000.0 + 0.5) / 1000.0


class _Viewer:
    __slots__ = ("id", "room", "kind", "gap", "end", "next_beat", "next_act", "fav", "cart",
                 "last_item", "followed", "silent", "visits", "checkout_pending", "gave_up")

    def __init__(self, vid: int | str, room: str, kind: int, fav: int) -> None:
        self.id, self.room, self.kind, self.fav = vid, room, kind, fav
        self.gap = _MEAN_GAPS[kind]  # mean seconds between interactions
        self.cart, self.last_item, self.followed = [], None, False
        self.visits, self.checkout_pending, self.gave_up = 0, False, False


def _check_args(viewers, hours, rooms, start_ts, viewer_ids) -> None:
    for ok, rule, value in (
            (isinstance(viewers, int) and viewers >= 0, "viewers must be an int >= 0", viewers),
            (0 < hours < inf, "hours must be a positive finite number", hours),
            (-inf < start_ts < inf, "start_ts must be a finite number", start_ts),
            (isinstance(rooms, int) and rooms >= 1, "rooms must be an int >= 1", rooms),
            (viewer_ids in ("int", "str"), "viewer_ids must be 'int' or 'str'", viewer_ids)):
        if not ok:
            raise ValueError(f"{rule}, got {value!r}")


def iter_events(viewers: int = 10_000, hours: float = 3.0, rooms: int = 1, seed: int = 0,
                start_ts: float = 1_700_000_000.0, viewer_ids: str = "int",
                with_kind: bool = False) -> Iterator[dict]:
    """Yield the workload's events as dicts in non-decreasing `ts`.

    `with_kind=True` adds the true `kind` (passerby/watcher/fan) to `enter` events, as
    ground truth for evaluating segments; the engine ignores unknown keys."""
    _check_args(viewers, hours, rooms, start_ts, viewer_ids)
    cat_items = catalogue(seed)
    items = [i for i, _, _ in cat_items]
    cats = [c for _, c, _ in cat_items]
    prices = [p for _, _, p in cat_items]
    by_cat = [[k for k, c in enumerate(cats) if c == name] for name in CATEGORIES]
    _, arr_ss, ev_ss = np.random.SeedSequence(seed).spawn(3)
    gen = np.random.default_rng(ev_ss)
    rand, expo = _draws(gen.random), _draws(gen.standard_exponential)
    stream_end = start_ts + hours * 3600.0
    room_ids = [f"r{r + 1}" for r in range(rooms)]
    # Calendar queue: the current bucket is a heap, later entries are appended to their
    # bucket's list (~128 entries per bucket), so pushes are O(1) and heaps stay small;
    # events still come out in (t, seq) order, as from one big heap.
    # Entries hold a viewer's slot in `pool`, not the viewer: tuples of plain numbers
    # drop out of the garbage collector's sight, which keeps full collections cheap.
    per_sec = min(1000.0, max(0.2, viewers / (stream_end - start_ts) * _EVENTS_PER_VIEWER / 128))
    buckets: dict[int, list] = {}
    cur: list = []
    cur_key = 0
    pool: list = []
    free: list = []
    seq = count()
    heappush, heappop, heapreplace = heapq.heappush, heapq.heappop, heapq.heapreplace

    def push(entry: tuple) -> None:
        k = int((entry[0] - start_ts) * per_sec)
        if k <= cur_key:
            heappush(cur, entry)
        elif (b := buckets.get(k)) is None:
            buckets[k] = [entry]
        else:
            b.append(entry)

    def start_session(v: _Viewer, slot: int, t: float) -> dict:
        """Draw the stay, schedule heartbeat, first interaction and end; return `enter`."""
        kind = VIEWER_KINDS[v.kind]
        v.end = end = min(t + expo() * kind.mean_stay, stream_end)
        v.silent = rand() < SILENT_PROB
        v.gave_up = False
        v.visits += 1
        beat, act = t + HEARTBEAT_EVERY, t + expo() * v.gap
        v.next_beat = beat if beat < end else inf
        v.next_act = act if act < end else inf
        push((min(v.next_beat, v.next_act, end), next(seq), _TICK, slot, None))
        ev = {"type": "enter", "viewer": v.id, "room": v.room, "ts": _ms(t)}
        if with_kind:
            ev["kind"] = kind.name
        return ev

    def item_event(typ: str, v: _Viewer, ts: float, k: int) -> dict:
        return {"type": typ, "viewer": v.id, "room": v.room, "ts": ts,
                "item": items[k], "category": cats[k], "price": prices[k]}

    def later(v: _Viewer, slot: int, t: float, code: int, arg=None) -> bool:
        """Schedule a one-off step if it falls inside the current session."""
        if t < v.end:
            push((t, next(seq), code, slot, arg))
            return True
        return False

    for room in room_ids:
        yield {"type": "live_start", "room": room, "ts": _ms(start_ts)}
    arrivals = _arrivals(arr_ss, viewers, start_ts, stream_end - start_ts)
    if viewers:
        push((next(arrivals), next(seq), _ARRIVE, -1, None))
    n_arrived = 0
    while True:
        if not cur:
            if not buckets:
                break
            cur_key += 1
            while cur_key not in buckets:
                cur_key += 1
            cur.extend(buckets.pop(cur_key))
            cur.sort()
        t, _, code, slot, arg = cur[0]
        if code == _ARRIVE:
            n_arrived += 1
            v = _Viewer(n_arrived if viewer_ids == "int" else f"u{n_arrived}",
                        room_ids[int(rand() * rooms)], bisect(_KIND_CUM, rand() * _KIND_CUM[-1]),
                        int(rand() * len(CATEGORIES)))
            if free:
                slot = free.pop()
                pool[slot] = v
            else:
                slot = len(pool)
                pool.append(v)
            heappop(cur)
            if n_arrived < viewers:
                push((next(arrivals), next(seq), _ARRIVE, -1, None))
            yield start_session(v, slot, t)
            continue
        v = pool[slot]
        ts = int(t * 1000.0 + 0.5) / 1000.0  # _ms(t), inlined on the hot path
        if code == _TICK and t == v.next_beat:
            beat = t + HEARTBEAT_EVERY
            v.next_beat = beat if beat < v.end else inf
            ev = {"type": "heartbeat", "viewer": v.id, "room": v.room, "ts": ts}
        elif code == _TICK and t == v.next_act:
            typ = _ACTIONS[bisect(_ACTION_CUM, rand())]
            if typ == "follow" and v.followed:
                typ = "like"
            elif typ == "cart" and v.last_item is None:
                typ = "view"
            if typ == "view" or (typ == "click" and v.last_item is None):
                if rand() < INTEREST_SHIFT_PROB:
                    v.fav = int(rand() * len(CATEGORIES))
                if rand() < FAVOURITE_SHARE:
                    fav = by_cat[v.fav]
                    v.last_item = fav[int(rand() * len(fav))]
                else:
                    v.last_item = int(rand() * CATALOGUE_SIZE)
            if typ == "view" or typ == "click" or typ == "cart":
                k = v.last_item
                ev = {"type": typ, "viewer": v.id, "room": v.room, "ts": ts,
                      "item": items[k], "category": cats[k], "price": prices[k]}
            else:
                ev = {"type": typ, "viewer": v.id, "room": v.room, "ts": ts}
            if typ == "comment":
                ev["text"] = COMMENTS[int(rand() * len(COMMENTS))]
            elif typ == "follow":
                v.followed = True
            elif typ == "cart":
                v.cart.append(k)
                if rand() < UNCART_PROB:
                    later(v, slot, t + expo() * UNCART_DELAY, _UNCART, k)
                if not (v.checkout_pending or v.gave_up):
                    if rand() < NO_CHECKOUT_PROB:
                        v.gave_up = True
                    else:
                        v.checkout_pending = later(v, slot, t + expo() * CHECKOUT_DELAY, _CHECKOUT)
            act = t + expo() * v.gap
            v.next_act = act if act < v.end else inf
        else:
            ev = None
        if ev is not None:
            # Steps scheduled above lie after t, so this entry is still the heap top.
            nt = v.next_beat if v.next_beat < v.next_act else v.next_act
            entry = (nt if nt < v.end else v.end, next(seq), _TICK, slot, None)
            k = int((entry[0] - start_ts) * per_sec)
            if k <= cur_key:
                heapreplace(cur, entry)
            else:
                heappop(cur)
                if (b := buckets.get(k)) is None:
                    buckets[k] = [entry]
                else:
                    b.append(entry)
            yield ev
        else:
            heappop(cur)
            if code == _TICK:  # end of stay
                v.checkout_pending = False
                back = inf
                if v.kind == _FAN and v.visits == 1 and rand() < REPEAT_PROB:
                    back = t + REPEAT_GAP_MIN + expo() * REPEAT_GAP_MEAN
                if back < stream_end:
                    push((back, next(seq), _RETURN, slot, None))
                else:
                    pool[slot] = None
                    free.append(slot)
                if not v.silent:
                    yield {"type": "leave", "viewer": v.id, "room": v.room, "ts": ts}
            elif code == _RETURN:
                yield start_session(v, slot, t)
            elif code == _CHECKOUT:
                v.checkout_pending = False
                if v.cart:
                    if rand() < ABANDON_PROB:
                        v.gave_up = True
                    else:
                        later(v, slot, t + expo() * PAY_DELAY, _PAY)
                    yield item_event("checkout", v, ts, v.cart[-1])
            elif code == _PAY:
                if v.cart:
                    ev = item_event("pay", v, ts, v.cart[-1])
                    ev["amount"] = amount = round(sum([prices[k] for k in v.cart]), 2)
                    if rand() < REFUND_PROB:
                        later(v, slot, t + expo() * REFUND_DELAY, _REFUND,
                              min(prices[v.cart[int(rand() * len(v.cart))]], amount))
                    v.cart = []
                    yield ev
            elif code == _UNCART:
                if arg in v.cart:
                    v.cart.remove(arg)
                    yield item_event("uncart", v, ts, arg)
            elif code == _REFUND:
                yield {"type": "refund", "viewer": v.id, "room": v.room, "ts": ts,
                       "amount": arg}
    for room in room_ids:
        yield {"type": "live_end", "room": room, "ts": _ms(stream_end)}


def write_ndjson(out: BinaryIO, **kwargs) -> int:
    """Stream `iter_events(**kwargs)` to `out` as NDJSON, in batches; return the count."""
    encode_lines = msgspec.json.Encoder().encode_lines
    events = iter_events(**kwargs)
    n = 0
    while batch := list(islice(events, _BATCH)):
        out.write(encode_lines(batch))
        n += len(batch)
    return n


def generate_ndjson(**kwargs) -> bytes:
    """The whole stream as NDJSON bytes (small workloads, tests)."""
    buf = BytesIO()
    write_ndjson(buf, **kwargs)
    return buf.getvalue()
