"""Tests of the standard workload generator (SPEC §7)."""
from __future__ import annotations

import collections
import io
import json
import math
import os
import statistics
import subprocess
import sys
import tracemalloc
from pathlib import Path

import msgspec
import pytest

from segengine.testing import simulate

ROOT = Path(__file__).resolve().parents[1]
INTERACTIONS = {"like", "comment", "view", "click", "share", "follow", "cart"}
ITEM_TYPES = {"view", "click", "cart", "uncart", "checkout", "pay"}


def decode(data: bytes) -> list[dict]:
    return msgspec.json.Decoder().decode_lines(data)


@pytest.fixture(scope="module")
def standard() -> list[dict]:
    """3 000 viewers over the standard 3-hour stream, with the true viewer kinds."""
    return decode(simulate.generate_ndjson(viewers=3000, seed=7, with_kind=True))


@pytest.fixture(scope="module")
def long_stream() -> list[dict]:
    """A 24-hour stream, so that stays are rarely cut by the end of the stream."""
    return list(simulate.iter_events(viewers=2000, hours=24.0, seed=3, with_kind=True))


def kinds_of(events: list[dict]) -> dict:
    return {e["viewer"]: e["kind"] for e in events if e["type"] == "enter"}


def test_same_seed_same_bytes_other_seed_differs():
    a = simulate.generate_ndjson(viewers=300, hours=0.5, seed=1)
    assert a == simulate.generate_ndjson(viewers=300, hours=0.5, seed=1)
    assert a != simulate.generate_ndjson(viewers=300, hours=0.5, seed=2)
    assert a.endswith(b"\n") and a.count(b"\n") == len(decode(a))


def test_write_ndjson_counts_and_matches_iter_events():
    out = io.BytesIO()
    n = simulate.write_ndjson(out, viewers=500, hours=0.5, seed=5, rooms=2)
    events = list(simulate.iter_events(viewers=500, hours=0.5, seed=5, rooms=2))
    assert n == len(events) == out.getvalue().count(b"\n")
    assert decode(out.getvalue()) == events


def test_time_order(standard):
    ts = [e["ts"] for e in standard]
    assert all(a <= b for a, b in zip(ts, ts[1:]))
    multi = [e["ts"] for e in simulate.iter_events(viewers=1000, hours=0.5, rooms=4)]
    assert all(a <= b for a, b in zip(multi, multi[1:]))


def test_required_fields_and_types(standard):
    for e in standard:
        assert isinstance(e["type"], str) and isinstance(e["ts"], float)
        assert math.isfinite(e["ts"]) and abs(e["ts"] * 1000 - round(e["ts"] * 1000)) < 1e-3
        assert isinstance(e["room"], str) and e["room"].startswith("r")
        if e["type"] in ("live_start", "live_end"):
            assert "viewer" not in e
            continue
        assert type(e["viewer"]) is int
        if e["type"] in ITEM_TYPES:
            assert isinstance(e["item"], str) and e["category"] in simulate.CATEGORIES
            assert isinstance(e["price"], float) and e["price"] > 0
        if e["type"] in ("pay", "refund"):
            assert isinstance(e["amount"], float) and e["amount"] > 0
        if e["type"] == "comment":
            assert isinstance(e["text"], str) and e["text"]
    types = {e["type"] for e in standard}
    assert types == {"enter", "leave", "heartbeat", "view", "click", "like", "comment", "share",
                     "follow", "cart", "uncart", "checkout", "pay", "refund",
                     "live_start", "live_end"}


def test_string_viewer_ids():
    events = list(simulate.iter_events(viewers=50, hours=0.2, viewer_ids="str"))
    ids = {e["viewer"] for e in events if "viewer" in e}
    assert ids and all(isinstance(v, str) and v[0] == "u" and v[1:].isdigit() for v in ids)


def test_items_follow_the_fixed_catalogue(standard):
    catalogue = simulate.catalogue(7)
    assert len(catalogue) == 200 and {c for _, c, _ in catalogue} == set(simulate.CATEGORIES)
    assert 90 < statistics.median(p for _, _, p in catalogue) < 160
    by_id = {i: (c, p) for i, c, p in catalogue}
    for e in standard:
        if "item" in e:
            assert by_id[e["item"]] == (e["category"], e["price"])
    assert simulate.catalogue(7) == catalogue != simulate.catalogue(8)


def test_kind_mix(long_stream, standard):
    for events in (long_stream, standard):
        mix = collections.Counter(kinds_of(events).values())
        total = sum(mix.values())
        assert abs(mix["passerby"] / total - 0.6) < 0.04
        assert abs(mix["watcher"] / total - 0.3) < 0.04
        assert abs(mix["fan"] / total - 0.1) < 0.03
    assert [k.name for k in simulate.VIEWER_KINDS] == ["passerby", "watcher", "fan"]
    assert sum(k.share for k in simulate.VIEWER_KINDS) == pytest.approx(1.0)


def test_mean_stays(long_stream):
    """First sessions that end with `leave` and start in the first 12 hours (never cut)."""
    kinds = kinds_of(long_stream)
    start = long_stream[0]["ts"]
    entered, sessions, stays = {}, collections.Counter(), {}
    for e in long_stream:
        if e["type"] == "enter":
            entered.setdefault(e["viewer"], e["ts"])
            sessions[e["viewer"]] += 1
        elif e["type"] == "leave" and sessions[e["viewer"]] == 1:
            stays[e["viewer"]] = e["ts"] - entered[e["viewer"]]
    by_kind = collections.defaultdict(list)
    for viewer, stay in stays.items():
        if entered[viewer] < start + 12 * 3600:
            by_kind[kinds[viewer]].append(stay)
    expected = {"passerby": (20.0, 0.15), "watcher": (480.0, 0.15), "fan": (2400.0, 0.25)}
    for kind, (mean, tolerance) in expected.items():
        assert len(by_kind[kind]) > 50
        assert statistics.fmean(by_kind[kind]) == pytest.approx(mean, rel=tolerance), kind


def test_heartbeats_every_30s(standard):
    last = {}
    for e in standard:
        if e["type"] in ("enter", "heartbeat"):
            if e["type"] == "heartbeat":
                assert e["ts"] - last[e["viewer"]] == pytest.approx(30.0, abs=0.002)
            last[e["viewer"]] = e["ts"]


def test_fans_interact_more_per_minute_than_watchers(long_stream):
    kinds = kinds_of(long_stream)
    interactions, first, last = collections.Counter(), {}, {}
    for e in long_stream:
        v = e.get("viewer")
        if v is None:
            continue
        first.setdefault(v, e["ts"])
        last[v] = e["ts"]
        if e["type"] in INTERACTIONS:
            interactions[kinds[v]] += 1
    minutes = collections.Counter()
    for v, t0 in first.items():
        minutes[kinds[v]] += (last[v] - t0) / 60
    rate = {k: interactions[k] / minutes[k] for k in ("watcher", "fan")}
    assert rate["fan"] > 2.5 * rate["watcher"]


def test_about_15_percent_of_carts_unpaid(standard):
    carts, unpaid_since_pay = 0, collections.Counter()
    for e in standard:
        if e["type"] == "cart":
            carts += 1
            unpaid_since_pay[e["viewer"]] += 1
        elif e["type"] == "pay":
            unpaid_since_pay[e["viewer"]] = 0
    assert carts > 500
    assert 0.05 <= sum(unpaid_since_pay.values()) / carts <= 0.30


def test_pay_amount_is_cart_value(standard):
    carts = collections.defaultdict(list)
    pays = 0
    for e in standard:
        cart = carts[e.get("viewer")]
        if e["type"] == "cart":
            cart.append((e["item"], e["price"]))
        elif e["type"] == "uncart":
            cart.remove((e["item"], e["price"]))  # only ever undoes a unit in the cart
        elif e["type"] == "checkout":
            assert cart and cart[-1][0] == e["item"]
        elif e["type"] == "pay":
            assert e["amount"] == pytest.approx(sum(p for _, p in cart), abs=0.006)
            cart.clear()
            pays += 1
    assert pays > 200


def test_follow_once_silent_sessions_and_repeat_fans(standard):
    follows = collections.Counter(e["viewer"] for e in standard if e["type"] == "follow")
    assert follows and max(follows.values()) == 1
    enters = collections.Counter(e["viewer"] for e in standard if e["type"] == "enter")
    leaves = sum(1 for e in standard if e["type"] == "leave")
    assert 0.85 < leaves / sum(enters.values()) < 0.95
    kinds = kinds_of(standard)
    returning = [v for v, n in enters.items() if n > 1]
    assert returning and all(kinds[v] == "fan" for v in returning)


def test_live_start_first_and_live_end_last_per_room():
    events = list(simulate.iter_events(viewers=600, hours=0.5, rooms=3, seed=2))
    per_room = collections.defaultdict(list)
    for e in events:
        per_room[e["room"]].append(e)
    assert sorted(per_room) == ["r1", "r2", "r3"]
    for room, evs in per_room.items():
        assert evs[0] == {"type": "live_start", "room": room, "ts": 1_700_000_000.0}
        assert evs[-1] == {"type": "live_end", "room": room, "ts": 1_700_001_800.0}
        assert all(e["type"] not in ("live_start", "live_end") for e in evs[1:-1])
        assert all(1_700_000_000.0 <= e["ts"] <= 1_700_001_800.0 for e in evs)
    rooms_of = collections.defaultdict(set)
    for e in events:
        if "viewer" in e:
            rooms_of[e["viewer"]].add(e["room"])
    assert max(len(r) for r in rooms_of.values()) == 1


def test_empty_workload_and_bad_arguments():
    assert [e["type"] for e in simulate.iter_events(viewers=0)] == ["live_start", "live_end"]
    for bad in (dict(viewers=-1), dict(hours=0), dict(hours=float("nan")), dict(rooms=0),
                dict(viewer_ids="uuid"), dict(start_ts=float("inf"))):
        with pytest.raises(ValueError):
            next(simulate.iter_events(**bad))


class _Discard:
    """A write-only sink that keeps only the byte count."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        return len(data)


def _dict_bytes(events: list[dict]) -> float:
    """Mean memory one event takes when held as a dict (dict + ts float)."""
    return statistics.fmean(sys.getsizeof(e) + 24 for e in events)


def test_streaming_memory_tracemalloc(standard):
    """Traced peak while streaming is a small fraction of holding the events as dicts.

    tracemalloc slows every allocation about tenfold, so this run stays small; the
    200 k-viewer run below measures the peak RSS of a child process instead."""
    sink = _Discard()
    tracemalloc.start()
    try:
        n = simulate.write_ndjson(sink, viewers=600, hours=0.5, seed=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    held = n * _dict_bytes(standard)
    assert n > 15_000 and peak < 0.25 * held, (n, peak, held)


_RSS_SCRIPT = """
import json, resource, sys
from segengine.testing import simulate
class Discard:
    bytes = 0
    def write(self, data):
        self.bytes += len(data)
        return len(data)
sink = Discard()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = simulate.write_ndjson(sink, viewers=200_000, hours=0.02, seed=1)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
print(json.dumps({"events": n, "bytes": sink.bytes, "grown": grown}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB on Linux")
def test_200k_viewers_stream_in_bounded_memory(standard):
    """Peak memory follows the viewers present at once, not the events generated."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=True, timeout=600)
    result = json.loads(out.stdout.splitlines()[-1])
    held = result["events"] * _dict_bytes(standard)
    assert result["events"] > 500_000
    assert result["grown"] < 0.3 * held and result["grown"] < 120e6, (result, held)
