"""Standard benchmark workload (SPEC §7): synthetic live-room events, seeded and streamed.

Why: the benchmark suite, `segengine simulate` and `segengine demo` need millions of
realistic events that are byte-identical for a given seed, without holding them in
memory. Viewers arrive lazily (exactly `viewers` of them, spaced as a Poisson process);
each present viewer keeps one pending entry (its next heartbeat, interaction or end of
stay) plus one per pending purchase step in a calendar queue, so memory grows with the
viewers present at once, not with the length of the stream. Random numbers come from
numpy in blocks.

Two opt-in additions for rehearsing a show, both off by default so that the standard
workload's bytes stay as they were: profiles (`on_profile=`: age, gender, region, level,
tz per viewer, drawn from a random stream of their own; a viewer's level then steers
what it buys) and a content schedule (`schedule=`: slots of stream time with a
category, a price band and a `weak` flag, which steer what viewers view and how long
they stay).
"""
from __future__ import annotations

import heapq
import json
import re
import tomllib
from bisect import bisect
from collections import deque
from functools import partial
from io import BytesIO
from itertools import accumulate, chain, count, islice, repeat
from math import inf, log
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, NamedTuple

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
_TICK, _CHECKOUT, _PAY, _UNCART, _REFUND, _RETURN, _ARRIVE, _NUDGED = range(8)
NUDGED_PAY_DELAY = 2.0  # seconds from a nudge that works (effects=) to the pay it causes
_EVENTS_PER_VIEWER = 90  # of the default workload; sizes the calendar queue's buckets

# Profiles (opt-in). Regions: (name, share, IANA time zone); the last four are
# cross-border viewers of a Chinese live room.
REGIONS = (
    ("guangdong", 0.16, "Asia/Shanghai"), ("zhejiang", 0.12, "Asia/Shanghai"),
    ("jiangsu", 0.11, "Asia/Shanghai"), ("shanghai", 0.09, "Asia/Shanghai"),
    ("beijing", 0.08, "Asia/Shanghai"), ("sichuan", 0.08, "Asia/Shanghai"),
    ("shandong", 0.08, "Asia/Shanghai"), ("henan", 0.07, "Asia/Shanghai"),
    ("fujian", 0.06, "Asia/Shanghai"), ("hubei", 0.06, "Asia/Shanghai"),
    ("singapore", 0.03, "Asia/Singapore"), ("malaysia", 0.02, "Asia/Kuala_Lumpur"),
    ("japan", 0.02, "Asia/Tokyo"), ("usa", 0.02, "America/Los_Angeles"),
)
GENDERS = ("female", "male", "unknown")
GENDER_SHARES = (0.55, 0.35, 0.10)
LEVELS = ("low", "mid", "high")
# Spending level by viewer kind (passerby, watcher, fan): fans are richer.
LEVEL_SHARES = ((0.35, 0.50, 0.15), (0.30, 0.50, 0.20), (0.15, 0.45, 0.40))
AGE_MEAN, AGE_SD, AGE_MIN, AGE_MAX = 31.0, 9.0, 16, 70
# Content schedule (opt-in).
SLOT_SHARE = 0.5      # views in a slot with a category: the slot's items, this often
MATCH_STAY = 1.25     # stay and interaction rate of a viewer whose favourite is on air
WEAK_STAY = 0.25       # stay of a session that starts in a weak slot
WEAK_ACTIVITY = 0.4   # interaction rate during a weak slot
_BAND_FALLBACK = 3    # items nearest the band when none of the category's lies in it
_GENDER_CUM = list(accumulate(GENDER_SHARES))
_REGION_CUM = list(accumulate(r[1] for r in REGIONS))
_LEVEL_CUM = [list(accumulate(shares)) for shares in LEVEL_SHARES]
_MID = 1  # index in LEVELS: the level whose item picks are the standard workload's


class Slot(NamedTuple):
    """One segment of stream time, in seconds from the room's `live_start`."""
    start: float
    end: float
    category: str | None = None               # one of CATEGORIES, or None: no steering
    price: tuple[float, float] | None = None  # the band of item prices on air
    weak: bool = False                        # the host talks about nothing


class Schedule(NamedTuple):
    """A content schedule: non-overlapping slots; room rK runs it (K-1) x room_offset later."""
    slots: tuple[Slot, ...]
    room_offset: float = 0.0

    @classmethod
    def from_dict(cls, data: Any) -> Schedule:
        """Validate a decoded schedule file (`slot` list, optional `room_offset`)."""
        if not isinstance(data, dict):
            raise ValueError("a schedule is a table with a `slot` list")
        unknown = set(data) - {"slot", "room_offset"}
        if unknown:
            raise ValueError(f"unknown schedule key {sorted(unknown)[0]!r} (keys: slot, room_offset)")
        raw = data.get("slot")
        if not isinstance(raw, list) or not raw:
            raise ValueError("a schedule needs at least one [[slot]]")
        slots = sorted((_slot(k + 1, d) for k, d in enumerate(raw)), key=lambda s: s.start)
        for a, b in zip(slots, slots[1:]):
            if b.start < a.end:
                raise ValueError(f"slots overlap: {_hms(a.start)}-{_hms(a.end)} and "
                                 f"{_hms(b.start)}-{_hms(b.end)}")
        return cls(tuple(slots), _seconds(data.get("room_offset", 0), "room_offset"))


def _seconds(value: Any, what: str) -> float:
    """"90s", "30m", "1.5h" or a number of seconds (>= 0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|m|h)\s*", value)):
        seconds = float(m.group(1)) * {"s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2)]
    else:
        raise ValueError(f"{what}: expected a time like \"30m\", \"90s\", \"1h\" or seconds, got {value!r}")
    if not 0 <= seconds < inf:
        raise ValueError(f"{what} must be a finite time >= 0, got {value!r}")
    return seconds


def _hms(seconds: float) -> str:
    return f"{seconds / 60:g}m"


def _slot(k: int, d: Any) -> Slot:
    where = f"slot {k}"
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a table")
    unknown = set(d) - {"start", "end", "category", "price", "weak"}
    if unknown:
        raise ValueError(f"{where}: unknown key {sorted(unknown)[0]!r} "
                         "(keys: start, end, category, price, weak)")
    if "start" not in d or "end" not in d:
        raise ValueError(f"{where}: needs start and end")
    start, end = _seconds(d["start"], f"{where} start"), _seconds(d["end"], f"{where} end")
    if end <= start:
        raise ValueError(f"{where}: end must be after start")
    category = d.get("category")
    if category is not None and category not in CATEGORIES:
        raise ValueError(f"{where}: category must be one of {', '.join(CATEGORIES)}, got {category!r}")
    price = d.get("price")
    if price is not None:
        if not (isinstance(price, list) and len(price) == 2
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in price)
                and 0 <= price[0] <= price[1] < inf):
            raise ValueError(f"{where}: price must be [low, high] with 0 <= low <= high, got {price!r}")
        price = (float(price[0]), float(price[1]))
    weak = d.get("weak", False)
    if not isinstance(weak, bool):
        raise ValueError(f"{where}: weak must be true or false, got {weak!r}")
    return Slot(start, end, category, price, weak)


# `--schedule builtin`: a 3-hour show, one product category per half hour, and one weak
# half hour (90-120 min) in which the host chats and sells nothing; room rK runs it
# (K-1) x 10 minutes later.
BUILTIN_SCHEDULE = Schedule((
    Slot(0.0, 1800.0, "snacks", (10.0, 80.0)),
    Slot(1800.0, 3600.0, "beauty", (80.0, 300.0)),
    Slot(3600.0, 5400.0, "digital", (150.0, 800.0)),
    Slot(5400.0, 7200.0, None, None, True),
    Slot(7200.0, 9000.0, "apparel", (50.0, 250.0)),
    Slot(9000.0, 10800.0, "home", (30.0, 200.0)),
), room_offset=600.0)


def load_schedule(spec: str | Path) -> Schedule:
    """`"builtin"`, or a TOML (or, for `*.json`, JSON) schedule file; ValueError if invalid."""
    if str(spec) == "builtin":
        return BUILTIN_SCHEDULE
    path = Path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"cannot read schedule {str(spec)!r}: {err.strerror}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"{spec}: {err}") from None
    try:
        return Schedule.from_dict(data)
    except ValueError as err:
        raise ValueError(f"{spec}: {err}") from None


class _OnAir(NamedTuple):
    """A slot placed in one room's time: absolute bounds, the items it steers views to."""
    start: float
    end: float
    cat: int              # index in CATEGORIES, -1 for none
    items: list | None    # catalogue indices on air, None: no steering
    weak: bool


def _on_air(schedule: Schedule, t0: float, room: int, cats: list, prices: list) -> list[_OnAir]:
    shift = t0 + room * schedule.room_offset
    placed = []
    for s in schedule.slots:
        items = None
        if s.category is not None or s.price is not None:
            pool = [k for k, c in enumerate(cats) if s.category in (None, c)]
            items = pool
            if s.price is not None:
                lo, hi = s.price
                items = [k for k in pool if lo <= prices[k] <= hi]
                if not items:  # none in the band: the category's nearest prices
                    items = sorted(pool, key=lambda k: (max(lo - prices[k], prices[k] - hi), k)
                                   )[:_BAND_FALLBACK]
        placed.append(_OnAir(shift + s.start, shift + s.end,
                             -1 if s.category is None else CATEGORIES.index(s.category), items, s.weak))
    return placed


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
                 "last_item", "followed", "silent", "visits", "checkout_pending", "gave_up",
                 "ri", "level")

    def __init__(self, vid: int | str, room: str, kind: int, fav: int, ri: int) -> None:
        self.id, self.room, self.kind, self.fav, self.ri = vid, room, kind, fav, ri
        self.level = _MID
        self.gap = _MEAN_GAPS[kind]  # mean seconds between interactions
        self.cart, self.last_item, self.followed = [], None, False
        self.visits, self.checkout_pending, self.gave_up = 0, False, False


def _check_args(viewers, hours, rooms, start_ts, viewer_ids, schedule, on_profile) -> None:
    for ok, rule, value in (
            (schedule is None or isinstance(schedule, Schedule),
             "schedule must be a Schedule, 'builtin' or a file", schedule),
            (on_profile is None or callable(on_profile), "on_profile must be callable", on_profile),
            (isinstance(viewers, int) and viewers >= 0, "viewers must be an int >= 0", viewers),
            (0 < hours < inf, "hours must be a positive finite number", hours),
            (-inf < start_ts < inf, "start_ts must be a finite number", start_ts),
            (isinstance(rooms, int) and rooms >= 1, "rooms must be an int >= 1", rooms),
            (viewer_ids in ("int", "str"), "viewer_ids must be 'int' or 'str'", viewer_ids)):
        if not ok:
            raise ValueError(f"{rule}, got {value!r}")


def iter_events(viewers: int = 10_000, hours: float = 3.0, rooms: int = 1, seed: int = 0,
                start_ts: float = 1_700_000_000.0, viewer_ids: str = "int",
                with_kind: bool = False, schedule: Schedule | str | Path | None = None,
                on_profile: Callable[[dict], Any] | None = None,
                effects: dict[str, float] | None = None, engine: Any = None) -> Iterator[dict]:
    """Yield the workload's events as dicts in non-decreasing `ts` (see `_iter_events`).

    `effects` (with `engine`, an Engine running the rules) runs the engine in the loop to give
    rules a known effect: every event goes through `engine.ingest` before it is yielded, and
    when a rule named in `effects` sends an action to a viewer, the viewer pays (a `pay` of its
    cart, or of the item last viewed, `NUDGED_PAY_DELAY` seconds later) with probability
    `effects[rule]`, drawn from a random stream of its own, on top of its own behaviour. Held-out
    viewers (a rule's `holdout`) get no action, so they are untouched. Without `effects` the
    stream is the standard workload's, byte for byte."""
    if not effects:
        yield from _iter_events(viewers, hours, rooms, seed, start_ts, viewer_ids, with_kind, schedule, on_profile)
        return
    if engine is None:
        raise ValueError("effects= needs engine=: the Engine running the rules whose actions take effect")
    unknown = sorted(set(effects) - {r.name for r in engine.rules.rules})
    if unknown:
        raise ValueError(f"effects= names rules the engine does not have: {', '.join(unknown)}")
    for rule, p in effects.items():
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"effects[{rule!r}] is a probability in [0, 1], got {p!r}")
    nudged: list = []  # viewer ids whose nudge works, handed to the event loop
    coin = np.random.default_rng([seed, 0xEFFEC7]).random  # never shifts the workload's draws
    ingest = engine.ingest
    for ev in _iter_events(viewers, hours, rooms, seed, start_ts, viewer_ids, with_kind, schedule, on_profile,
                           nudged=nudged):
        for a in ingest(ev):
            p = effects.get(a.rule)
            if p is not None and coin() < p:
                nudged.append(a.viewer)
        yield ev


def _iter_events(viewers: int, hours: float, rooms: int, seed: int, start_ts: float, viewer_ids: str,
                 with_kind: bool, schedule: Schedule | str | Path | None,
                 on_profile: Callable[[dict], Any] | None, nudged: list | None = None) -> Iterator[dict]:
    """Yield the workload's events as dicts in non-decreasing `ts`.

    `with_kind=True` adds the true `kind` (passerby/watcher/fan) to `enter` events, as
    ground truth for evaluating segments; the engine ignores unknown keys.

    `on_profile` turns profiles on: it is called with each viewer's profile dict
    (viewer, age, gender, region, level, tz) when the viewer first arrives, before its
    `enter` is yielded, and the viewer's level steers its item picks (high: the pricier
    of two candidates, low: the cheaper). `schedule` (a Schedule, "builtin" or a file,
    see `load_schedule`) steers views and stays by slot of stream time. Both change the
    events; without them the stream is the standard workload's."""
    if isinstance(schedule, (str, Path)):
        schedule = load_schedule(schedule)
    _check_args(viewers, hours, rooms, start_ts, viewer_ids, schedule, on_profile)
    cat_items = catalogue(seed)
    items = [i for i, _, _ in cat_items]
    cats = [c for _, c, _ in cat_items]
    prices = [p for _, _, p in cat_items]
    by_cat = [[k for k, c in enumerate(cats) if c == name] for name in CATEGORIES]
    anywhere = list(range(CATALOGUE_SIZE))
    _, arr_ss, ev_ss, prof_ss = np.random.SeedSequence(seed).spawn(4)
    gen = np.random.default_rng(ev_ss)
    rand, expo = _draws(gen.random), _draws(gen.standard_exponential)
    stream_end = start_ts + hours * 3600.0
    room_ids = [f"r{r + 1}" for r in range(rooms)]
    if on_profile is not None:
        pgen = np.random.default_rng(prof_ss)  # profiles never shift the event draws
        prand, pnormal = _draws(pgen.random), _draws(pgen.standard_normal)
    # With a schedule: per room, the slots' start times (for bisect) and the slots.
    sched = None if schedule is None else [
        ([a.start for a in placed], placed)
        for placed in (_on_air(schedule, start_ts, r, cats, prices) for r in range(rooms))]

    def on_air(v: _Viewer, t: float) -> _OnAir | None:
        starts, placed = sched[v.ri]
        i = bisect(starts, t) - 1
        return placed[i] if i >= 0 and t < placed[i].end else None

    def gap_at(v: _Viewer, t: float) -> float:
        """Mean seconds to the next interaction, as the slot on air at t makes it."""
        air = on_air(v, t)
        if air is None:
            return v.gap
        if air.weak:
            return v.gap / WEAK_ACTIVITY
        return v.gap / MATCH_STAY if air.cat == v.fav else v.gap

    def profile(v: _Viewer) -> None:
        region = REGIONS[bisect(_REGION_CUM, prand() * _REGION_CUM[-1])]
        age = min(max(int(AGE_MEAN + AGE_SD * pnormal() + 0.5), AGE_MIN), AGE_MAX)
        gender = GENDERS[bisect(_GENDER_CUM, prand() * _GENDER_CUM[-1])]
        cum = _LEVEL_CUM[v.kind]
        v.level = bisect(cum, prand() * cum[-1])
        on_profile({"viewer": v.id, "age": age, "gender": gender, "region": region[0],
                    "level": LEVELS[v.level], "tz": region[2]})
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
        stay = expo() * kind.mean_stay
        if sched is not None and (air := on_air(v, t)) is not None:
            stay *= WEAK_STAY if air.weak else MATCH_STAY if air.cat == v.fav else 1.0
        v.end = end = min(t + stay, stream_end)
        v.silent = rand() < SILENT_PROB
        v.gave_up = False
        v.visits += 1
        beat, act = t + HEARTBEAT_EVERY, t + expo() * (v.gap if sched is None else gap_at(v, t))
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
    by_id: dict = {}  # viewer id -> viewer, with effects only
    last_t = start_ts
    while True:
        if nudged:  # effects: the nudges that work, each a pay shortly after the event that fired them
            for vid in nudged:
                if last_t + NUDGED_PAY_DELAY < stream_end:
                    push((last_t + NUDGED_PAY_DELAY, next(seq), _NUDGED, -1, by_id[vid]))
            nudged.clear()
        if not cur:
            if not buckets:
                break
            cur_key += 1
            while cur_key not in buckets:
                cur_key += 1
            cur.extend(buckets.pop(cur_key))
            cur.sort()
        t, _, code, slot, arg = cur[0]
        last_t = t
        if code == _ARRIVE:
            n_arrived += 1
            ri = int(rand() * rooms)
            v = _Viewer(n_arrived if viewer_ids == "int" else f"u{n_arrived}", room_ids[ri],
                        bisect(_KIND_CUM, rand() * _KIND_CUM[-1]), int(rand() * len(CATEGORIES)), ri)
            if on_profile is not None:
                profile(v)
            if nudged is not None:
                by_id[v.id] = v
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
                if (sched is not None and (air := on_air(v, t)) is not None
                        and air.items is not None and rand() < SLOT_SHARE):
                    pool_ = air.items
                elif rand() < FAVOURITE_SHARE:
                    pool_ = by_cat[v.fav]
                else:
                    pool_ = anywhere
                k = pool_[int(rand() * len(pool_))]
                if v.level != _MID:  # high picks the pricier of two, low the cheaper
                    k2 = pool_[int(rand() * len(pool_))]
                    if prices[k2] != prices[k] and (prices[k2] > prices[k]) == (v.level > _MID):
                        k = k2
                v.last_item = k
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
            act = t + expo() * (v.gap if sched is None else gap_at(v, t))
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
            elif code == _NUDGED:
                v = arg
                k = v.cart[-1] if v.cart else v.last_item
                if k is not None:
                    ev = item_event("pay", v, ts, k)
                    ev["amount"] = round(sum([prices[j] for j in v.cart]), 2) if v.cart else prices[k]
                    v.cart = []
                    yield ev
            elif code == _REFUND:
                yield {"type": "refund", "viewer": v.id, "room": v.room, "ts": ts,
                       "amount": arg}
    for room in room_ids:
        yield {"type": "live_end", "room": room, "ts": _ms(stream_end)}


class LinesWriter:
    """A callable that writes the dicts it is given to `out` as NDJSON, in batches.

    Use it as `on_profile=LinesWriter(f)` and call `flush()` at the end."""

    def __init__(self, out: BinaryIO) -> None:
        self.out, self.pending, self.count = out, [], 0
        self._encode_lines = msgspec.json.Encoder().encode_lines

    def __call__(self, record: dict) -> None:
        self.pending.append(record)
        if len(self.pending) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.out.write(self._encode_lines(self.pending))
            self.count += len(self.pending)
            self.pending = []


def rehearsal_options(schedule: str | None, profiles_out: str | None,
                      output: str | None = None) -> tuple[dict, LinesWriter | None]:
    """`segengine simulate --schedule S --profiles-out FILE` as `iter_events` options.

    Returns the options and the profile writer (flush it, then close `writer.out`), or
    raises ValueError with a message for the user."""
    options: dict = {}
    if schedule is not None:
        options["schedule"] = load_schedule(schedule)
    writer = None
    if profiles_out is not None:
        if profiles_out == "-" or (output not in (None, "-") and Path(profiles_out).resolve()
                                   == Path(output).resolve()):
            raise ValueError("--profiles-out needs a file of its own (not '-', not the -o file)")
        try:
            options["on_profile"] = writer = LinesWriter(open(profiles_out, "wb"))
        except OSError as err:
            raise ValueError(f"cannot write {profiles_out!r}: {err.strerror}") from None
    return options, writer


def write_ndjson(out: BinaryIO, profiles_out: BinaryIO | None = None, **kwargs) -> int:
    """Stream `iter_events(**kwargs)` to `out` as NDJSON, in batches; return the count.

    With `profiles_out`, profiles are on and written there as NDJSON, one per viewer."""
    encode_lines = msgspec.json.Encoder().encode_lines
    sink = None
    if profiles_out is not None:
        kwargs["on_profile"] = sink = LinesWriter(profiles_out)
    events = iter_events(**kwargs)
    n = 0
    while batch := list(islice(events, _BATCH)):
        out.write(encode_lines(batch))
        n += len(batch)
    if sink is not None:
        sink.flush()
    return n


def iter_profiles(**kwargs) -> Iterator[dict]:
    """The profiles of `iter_events(**kwargs)` (profiles on), in order of first arrival.

    Runs the simulation to draw them (profiles follow the viewers' kinds), holding only
    the profiles not yet yielded."""
    got: deque = deque()
    for _ in iter_events(on_profile=got.append, **kwargs):
        while got:
            yield got.popleft()
    yield from got


def generate_ndjson(**kwargs) -> bytes:
    """The whole stream as NDJSON bytes (small workloads, tests)."""
    buf = BytesIO()
    write_ndjson(buf, **kwargs)
    return buf.getvalue()
