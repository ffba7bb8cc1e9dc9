"""Tests of the standard workload generator (SPEC §7)."""
from __future__ import annotations

import collections
import io
import json
import math
import os
import re
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
sink, profiles = Discard(), Discard()
options = json.loads(sys.argv[1])
if options.pop("profiles", False):
    options["profiles_out"] = profiles
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = simulate.write_ndjson(sink, viewers=200_000, hours=0.02, seed=1, **options)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
print(json.dumps({"events": n, "bytes": sink.bytes, "grown": grown}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB on Linux")
@pytest.mark.parametrize("options", [{}, {"schedule": "builtin", "profiles": True, "rooms": 3}],
                         ids=["standard", "rehearsal"])
def test_200k_viewers_stream_in_bounded_memory(standard, options):
    """Peak memory follows the viewers present at once, not the events generated (profiles
    are written as they are drawn)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, json.dumps(options)], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=True, timeout=600)
    result = json.loads(out.stdout.splitlines()[-1])
    held = result["events"] * _dict_bytes(standard)
    assert result["events"] > 500_000
    assert result["grown"] < 0.3 * held and result["grown"] < 120e6, (result, held)


# --- the standard workload stays the standard one -------------------------------------------------------
def test_default_workload_bytes_are_pinned():
    """Profiles and schedules are opt-in: without them the bytes are those of the standard
    workload that the recorded benchmarks ran on (a change here must be deliberate, and
    then also bump the workload key in benchmarks/data.py)."""
    import hashlib

    pinned = {
        (("rooms", 2), ("with_kind", True)):
            "fff495966b86b5b054c82a7d72a0794c91bc69dac49aa37d758d6f7acf9b3238",
        (("viewer_ids", "str"),):
            "5a654aefef564dfada0eb13ed71d348e685a9e168bb59c362038529a3a5bc69e",
    }
    for options, digest in pinned.items():
        data = simulate.generate_ndjson(viewers=300, hours=0.5, seed=1, **dict(options))
        assert hashlib.sha256(data).hexdigest() == digest, options


def test_rooms_share_the_viewers_evenly():
    events = simulate.iter_events(viewers=3000, hours=0.2, rooms=3, seed=4)
    room_of = {e["viewer"]: e["room"] for e in events if e["type"] == "enter"}
    per_room = collections.Counter(room_of.values())
    assert sorted(per_room) == ["r1", "r2", "r3"]
    assert all(900 < n < 1100 for n in per_room.values()), per_room


# --- profiles -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rehearsal() -> tuple[list[dict], list[dict]]:
    """A rehearsal: 4 000 viewers, 3 hours, 2 rooms, the built-in schedule, profiles on."""
    profiles: list[dict] = []
    events = list(simulate.iter_events(viewers=4000, seed=7, rooms=2, with_kind=True,
                                       schedule="builtin", on_profile=profiles.append))
    return events, profiles


def test_profiles_one_per_viewer_in_order_of_first_appearance(rehearsal):
    events, profiles = rehearsal
    first_seen = list(dict.fromkeys(e["viewer"] for e in events if "viewer" in e))
    assert [p["viewer"] for p in profiles] == first_seen == list(range(1, 4001))
    regions = {name: tz for name, _, tz in simulate.REGIONS}
    for p in profiles:
        assert list(p) == ["viewer", "age", "gender", "region", "level", "tz"]
        assert type(p["age"]) is int and 16 <= p["age"] <= 70
        assert p["gender"] in ("female", "male", "unknown") and p["level"] in ("low", "mid", "high")
        assert p["tz"] == regions[p["region"]]
    tz = collections.Counter(p["tz"] for p in profiles)
    assert 0.85 < tz["Asia/Shanghai"] / len(profiles) < 0.95 and len(tz) == 5
    assert 28 < statistics.fmean(p["age"] for p in profiles) < 34
    assert len({p["region"] for p in profiles}) == len(simulate.REGIONS)


def test_fans_are_richer(rehearsal):
    events, profiles = rehearsal
    kinds = kinds_of(events)
    high = collections.defaultdict(list)
    for p in profiles:
        high[kinds[p["viewer"]]].append(p["level"] == "high")
    share = {k: statistics.fmean(v) for k, v in high.items()}
    assert share["fan"] > 2 * share["passerby"] and share["fan"] > 0.3, share


def test_level_raises_purchase_amounts(rehearsal):
    events, profiles = rehearsal
    level = {p["viewer"]: p["level"] for p in profiles}
    viewed, paid = collections.defaultdict(list), collections.defaultdict(list)
    for e in events:
        if e["type"] == "view":
            viewed[level[e["viewer"]]].append(e["price"])
        elif e["type"] == "pay":
            paid[level[e["viewer"]]].append(e["amount"])
    mean_view = {k: statistics.fmean(v) for k, v in viewed.items()}
    mean_pay = {k: statistics.fmean(v) for k, v in paid.items()}
    assert mean_view["low"] < 0.85 * mean_view["mid"] < 0.85 * 0.85 * mean_view["high"], mean_view
    assert mean_pay["low"] < mean_pay["mid"] < mean_pay["high"], mean_pay
    assert min(len(v) for v in paid.values()) > 100


def test_profiles_are_deterministic_and_streamed_with_the_events():
    kwargs = dict(viewers=300, hours=0.5, seed=1, rooms=2, schedule="builtin")
    ev_a, pr_a, ev_b, pr_b = io.BytesIO(), io.BytesIO(), io.BytesIO(), io.BytesIO()
    n = simulate.write_ndjson(ev_a, profiles_out=pr_a, **kwargs)
    simulate.write_ndjson(ev_b, profiles_out=pr_b, **kwargs)
    assert ev_a.getvalue() == ev_b.getvalue() and pr_a.getvalue() == pr_b.getvalue()
    assert n == len(decode(ev_a.getvalue())) and pr_a.getvalue().count(b"\n") == 300
    assert decode(pr_a.getvalue()) == list(simulate.iter_profiles(**kwargs))
    other = io.BytesIO()
    simulate.write_ndjson(io.BytesIO(), profiles_out=other, **dict(kwargs, seed=2))
    assert other.getvalue() != pr_a.getvalue()
    # Profiles on change the events (levels steer the picks); the same options, the same bytes.
    assert ev_a.getvalue() != simulate.generate_ndjson(**kwargs)


# --- the content schedule --------------------------------------------------------------------------------
T0 = 1_700_000_000.0


def slot_of(ts: float, room: str, offset: float = 600.0) -> int:
    """Index of the built-in schedule's half-hour slot on air in `room` at `ts` (-1: none)."""
    t = ts - T0 - (int(room[1:]) - 1) * offset
    return int(t // 1800) if 0 <= t < 10800 else -1


def test_builtin_schedule_steers_views_to_the_category_and_price_band(rehearsal):
    events, _ = rehearsal
    views = collections.defaultdict(collections.Counter)
    in_band = collections.Counter()
    for e in events:
        if e["type"] == "view":
            k = slot_of(e["ts"], e["room"])
            views[k][e["category"]] += 1
            slot = simulate.BUILTIN_SCHEDULE.slots[k] if k >= 0 else None
            if slot is not None and slot.category == e["category"]:
                in_band[k] += slot.price[0] <= e["price"] <= slot.price[1]
    for k, slot in enumerate(simulate.BUILTIN_SCHEDULE.slots):
        top, n = views[k].most_common(1)[0]
        share = n / sum(views[k].values())
        if slot.category is None:
            assert share < 0.25, (k, views[k])  # nothing on air: favourites only
        else:
            assert top == slot.category and share > 0.4, (k, views[k])
            assert in_band[k] > 0.75 * views[k][slot.category], (k, in_band[k], views[k])


def test_weak_slot_shortens_stays_and_lowers_activity(rehearsal):
    """Sessions that start in the weak half hour are far shorter, and fewer interactions
    happen in it, in each room (whose schedule runs 10 minutes after the one before)."""
    events, _ = rehearsal
    weak = [k for k, s in enumerate(simulate.BUILTIN_SCHEDULE.slots) if s.weak]
    assert weak == [3]
    for room in ("r1", "r2"):
        entered, stays, acts = {}, collections.defaultdict(list), collections.Counter()
        for e in events:
            if e["room"] != room or "viewer" not in e:
                continue
            if e["type"] == "enter":
                entered[e["viewer"]] = e["ts"]
            elif e["type"] == "leave":
                stays[slot_of(entered[e["viewer"]], room)].append(e["ts"] - entered[e["viewer"]])
            elif e["type"] in INTERACTIONS:
                acts[slot_of(e["ts"], room)] += 1
        mean_stay = {k: statistics.fmean(v) for k, v in stays.items() if k >= 0}
        others = [mean_stay[k] for k in (1, 2, 4)]  # the first slot is cut by nothing; fine
        assert mean_stay[3] < 0.5 * min(others), (room, mean_stay)
        assert acts[3] < 0.6 * min(acts[k] for k in (1, 2, 4)), (room, acts)


def test_rooms_run_the_schedule_with_their_offset(rehearsal):
    """In r2 the snacks half hour runs from 10 to 40 minutes: before that nothing is on air."""
    events, _ = rehearsal
    snacks = collections.defaultdict(list)
    for e in events:
        if e["type"] == "view" and e["ts"] < T0 + 2400:
            window = "0-10m" if e["ts"] < T0 + 600 else "30-40m" if e["ts"] >= T0 + 1800 else None
            if window:
                snacks[e["room"], window].append(e["category"] == "snacks")
    share = {k: statistics.fmean(v) for k, v in snacks.items()}
    assert share["r1", "0-10m"] > 0.4 and share["r2", "0-10m"] < 0.25, share
    assert share["r2", "30-40m"] > 0.4 and share["r1", "30-40m"] < 0.25, share


def test_rehearsal_keeps_the_standard_figures(rehearsal):
    """With the built-in schedule and profiles, the workload's own guarantees still hold."""
    events, _ = rehearsal
    ts = [e["ts"] for e in events]
    assert all(a <= b for a, b in zip(ts, ts[1:]))
    test_kind_mix(events, events)
    test_heartbeats_every_30s(events)
    test_about_15_percent_of_carts_unpaid(events)
    test_pay_amount_is_cart_value(events)
    test_follow_once_silent_sessions_and_repeat_fans(events)
    test_items_follow_the_fixed_catalogue(events)
    per_room = collections.defaultdict(list)
    for e in events:
        per_room[e["room"]].append(e["type"])
    for types in per_room.values():
        assert types[0] == "live_start" and types[-1] == "live_end"
        assert types.count("live_start") == types.count("live_end") == 1


def test_schedule_from_toml_and_json_files(tmp_path):
    toml_file = tmp_path / "show.toml"
    toml_file.write_text('room_offset = "5m"\n'
                         '[[slot]]\nstart = "0m"\nend = "30m"\ncategory = "snacks"\nprice = [10, 50]\nweak = false\n'
                         '[[slot]]\nstart = "30m"\nend = "1h"\nweak = true\n', encoding="utf-8")
    json_file = tmp_path / "show.json"
    json_file.write_text(json.dumps({"room_offset": 300, "slot": [
        {"start": "30m", "end": 3600, "weak": True},
        {"start": 0, "end": "30m", "category": "snacks", "price": [10, 50.0]}]}), encoding="utf-8")
    expected = simulate.Schedule((simulate.Slot(0.0, 1800.0, "snacks", (10.0, 50.0), False),
                                  simulate.Slot(1800.0, 3600.0, None, None, True)), 300.0)
    assert simulate.load_schedule(toml_file) == simulate.load_schedule(str(json_file)) == expected
    assert simulate.load_schedule("builtin") is simulate.BUILTIN_SCHEDULE
    a = simulate.generate_ndjson(viewers=200, hours=0.5, seed=3, schedule=toml_file)
    assert a == simulate.generate_ndjson(viewers=200, hours=0.5, seed=3, schedule=expected)
    assert a != simulate.generate_ndjson(viewers=200, hours=0.5, seed=3)


@pytest.mark.parametrize("slots, message", [
    ('start = "0m"\nend = "30m"\ncategory = "cars"', "category must be one of snacks"),
    ('start = "0m"\nend = "30m"\nprice = [50, 10]', "price must be [low, high]"),
    ('start = "30m"\nend = "30m"', "end must be after start"),
    ('start = "0m"\nend = "30 minutes"', "expected a time like"),
    ('start = "0m"\nend = "30m"\nweak = "yes"', "weak must be true or false"),
    ('start = "0m"\nend = "30m"\ncolour = "red"', "unknown key 'colour'"),
    ('end = "30m"', "needs start and end"),
    ('start = "0m"\nend = "30m"\n[[slot]]\nstart = "20m"\nend = "40m"', "slots overlap: 0m-30m and 20m-40m"),
])
def test_bad_schedules_say_what_is_wrong(tmp_path, slots, message):
    path = tmp_path / "bad.toml"
    path.write_text("[[slot]]\n" + slots + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(message)):
        simulate.load_schedule(path)


def test_unusable_schedule_arguments():
    for spec, message in (("/nonexistent/show.toml", "cannot read schedule"),):
        with pytest.raises(ValueError, match=message):
            next(simulate.iter_events(viewers=1, schedule=spec))
    with pytest.raises(ValueError, match="at least one"):
        simulate.Schedule.from_dict({"slot": []})
    with pytest.raises(ValueError, match="unknown schedule key"):
        simulate.Schedule.from_dict({"slots": []})
    with pytest.raises(ValueError, match="schedule must be a Schedule"):
        next(simulate.iter_events(viewers=1, schedule=[(0, 60)]))
    with pytest.raises(ValueError, match="on_profile must be callable"):
        next(simulate.iter_events(viewers=1, on_profile="profiles.jsonl"))


def test_band_without_items_falls_back_to_the_nearest_prices():
    catalogue = simulate.catalogue(0)
    snacks = sorted(p for _, c, p in catalogue if c == "snacks")
    schedule = simulate.Schedule((simulate.Slot(0.0, 3600.0, "snacks", (0.0, snacks[0] / 2)),))
    prices = [e["price"] for e in simulate.iter_events(viewers=300, hours=0.5, seed=0, schedule=schedule)
              if e["type"] == "view" and e["category"] == "snacks"]
    cheapest = collections.Counter(p in snacks[:3] for p in prices)
    assert cheapest[True] > 2 * cheapest[False]


# --- the command line ----------------------------------------------------------------------------------
def test_cli_schedule_and_profiles_out(tmp_path, capsys):
    from segengine.cli import main

    events, profiles = tmp_path / "ev.jsonl", tmp_path / "profiles.jsonl"
    assert main(["simulate", "--viewers", "150", "--hours", "0.5", "--rooms", "2", "--seed", "4",
                 "--schedule", "builtin", "--profiles-out", str(profiles), "-o", str(events), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["profiles"] == 150 and info["schedule"] == "builtin"
    ev_buf, pr_buf = io.BytesIO(), io.BytesIO()
    n = simulate.write_ndjson(ev_buf, profiles_out=pr_buf, viewers=150, hours=0.5, rooms=2, seed=4,
                              schedule="builtin")
    assert events.read_bytes() == ev_buf.getvalue() and info["events"] == n
    assert profiles.read_bytes() == pr_buf.getvalue()


def test_cli_rejects_bad_schedule_and_profiles_out(tmp_path, capsys):
    from segengine.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[[slot]]\nstart = "0m"\nend = "1h"\ncategory = "cars"\n', encoding="utf-8")
    out = str(tmp_path / "ev.jsonl")
    assert main(["simulate", "--viewers", "5", "--schedule", str(bad), "-o", out]) == 2
    assert "category must be one of" in capsys.readouterr().err
    assert main(["simulate", "--viewers", "5", "--profiles-out", out, "-o", out]) == 2
    assert "--profiles-out needs a file of its own" in capsys.readouterr().err
