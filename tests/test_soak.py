"""Soak: a long stream of short-lived viewers keeps memory flat under a retention.

Four simulated days, about 2 M events from 400 k viewer visits (a tenth of them return
after half an hour to five hours), one room per day (``live_start`` ... ``live_end``),
with the standard rules and ``retention = "1h"``. Passers-by enter, like and leave;
watchers view, cart, heartbeat, some check out and pay, and time out instead of
leaving. After the first retention period the viewer slot capacity must not change
and ``stats()["memory"]`` must not grow. Events are generated an hour at a time, so
the test itself holds only about an hour of them.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from segengine import Engine
from segengine.rules.load import load_rules

HOUR = 3600.0
DAYS = 4
VISITS = 400_000
T0 = 1_700_000_000.0


def _visit_events(rng: np.random.Generator, vid: int, t: float, room: str) -> list[dict]:
    if rng.random() < 0.65:  # passer-by
        like, leave = sorted(rng.uniform(1.0, 30.0, 2).tolist())
        return [{"type": "enter", "viewer": vid, "room": room, "ts": t},
                {"type": "like", "viewer": vid, "room": room, "ts": t + like},
                {"type": "leave", "viewer": vid, "room": room, "ts": t + leave}]
    item = int(rng.integers(0, 40))
    price = float(5 + item * 7)
    common = {"item": f"i{item}", "category": ("snacks", "beauty", "digital", "toys")[item % 4], "price": price}
    out = [{"type": "enter", "viewer": vid, "room": room, "ts": t},
           {"type": "view", "viewer": vid, "room": room, "ts": t + 5.0, **common},
           {"type": "cart", "viewer": vid, "room": room, "ts": t + 20.0, **common}]
    stay = float(rng.uniform(60.0, 300.0))
    out += [{"type": "heartbeat", "viewer": vid, "room": room, "ts": t + k}
            for k in np.arange(30.0, stay, 30.0).tolist()]
    if rng.random() < 0.5:
        out += [{"type": "checkout", "viewer": vid, "room": room, "ts": t + stay + 1.0, "item": common["item"]},
                {"type": "pay", "viewer": vid, "room": room, "ts": t + stay + 2.0, "amount": price}]
    return out  # no leave: the idle timeout ends the session


def _hourly_stream(seed: int = 7):
    """Yield (hour end, events of that hour in time order), room events included."""
    rng = np.random.default_rng(seed)
    arrivals = np.sort(rng.uniform(0.0, DAYS * 86400.0, VISITS)) + T0
    ids = np.arange(VISITS)
    back = rng.random(VISITS) < 0.1
    lag = rng.integers(2_000, 20_000, VISITS)
    ids = np.where(back & (ids >= lag), ids - lag, ids)
    pending: list[dict] = []
    i = 0
    for hour in range(DAYS * 24):
        start, end = T0 + hour * HOUR, T0 + (hour + 1) * HOUR
        room = f"day{hour // 24}"
        if hour % 24 == 0:
            pending.append({"type": "live_start", "room": room, "ts": start})
        if hour % 24 == 23:
            pending.append({"type": "live_end", "room": room, "ts": end - 1.0})
        while i < VISITS and arrivals[i] < end:
            pending += _visit_events(rng, int(ids[i]), float(arrivals[i]), room)
            i += 1
        pending.sort(key=lambda e: e["ts"])
        cut = next((k for k, e in enumerate(pending) if e["ts"] >= end), len(pending))
        yield end, pending[:cut]
        pending = pending[cut:]


@pytest.mark.slow
def test_memory_is_flat_under_retention(example_rules):
    rules = load_rules(example_rules.text.replace("[engine]\n", '[engine]\nretention = "1h"\n', 1), "soak.toml")
    engine = Engine(rules)
    started = time.perf_counter()
    hourly = []
    events = 0
    for end, batch in _hourly_stream():
        engine.ingest_many(batch)
        engine.advance(end)
        events += len(batch)
        s = engine.stats()
        hourly.append((s["slot_capacity"], s["memory"], s["live_slots"], s["rooms"]))
    elapsed = time.perf_counter() - started
    s = engine.stats()
    print(f"\nsoak: {events} events, {s['expired_viewers']} viewers forgotten, {elapsed:.1f} s; "
          f"capacity {s['slot_capacity']}, memory {s['memory']} bytes, live {s['live_slots']}")
    assert events > 1_900_000 and s["expired_viewers"] > 330_000 and s["expired_rooms"] == DAYS - 1
    settled = hourly[3:]  # after the first retention period (plus the longest visit and a sweep)
    capacities = {h[0] for h in settled}
    assert len(capacities) == 1, capacities  # no slot growth after the first hours
    first_day = max(h[1] for h in settled[:21])
    assert max(h[1] for h in settled[21:]) <= first_day  # memory stops growing
    assert max(h[2] for h in settled) < 0.8 * capacities.pop()  # live viewers: ~ arrivals in 1 h + visits
    assert max(h[3] for h in hourly) <= 2  # today's room, and yesterday's until it expires
