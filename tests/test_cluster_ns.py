"""ShardedEngine on a real Ray instance. Runs only inside a network namespace with nothing but
loopback up (tests/test_cluster.py re-executes this module under ``unshare --net``): one Ray
instance for the whole module, shut down at its end."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess

import msgspec
import pytest

if os.environ.get("SEGENGINE_NETNS") != "1":
    pytest.skip("runs inside a loopback-only network namespace (via tests/test_cluster.py)", allow_module_level=True)
ray = pytest.importorskip("ray")

import test_golden  # noqa: E402
from conftest import GOLDEN, ev  # noqa: E402
from segengine import Engine, RulesError  # noqa: E402
from segengine.cluster import ShardedEngine  # noqa: E402
from segengine.rules.load import load_rules_file  # noqa: E402
from segengine.testing.simulate import iter_events  # noqa: E402

LIVE_ROOM = os.path.join(os.path.dirname(__file__), "..", "examples", "live_room.toml")


@pytest.fixture(scope="module")
def ray_local():
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2, log_to_driver=False,
             configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def sharded_golden(ray_local):
    engine = ShardedEngine(load_rules_file(GOLDEN), shards=3)
    yield engine
    engine.close()


@pytest.fixture(params=["engine", "sharded"])
def either(request, golden_rules):
    """The same scenario on one Engine and on three shards."""
    if request.param == "engine":
        return Engine(golden_rules)
    engine = request.getfixturevalue("sharded_golden")
    engine._reset()
    return engine


def _listeners() -> list[str]:
    out = subprocess.run(["ss", "-Htln"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]


def test_nothing_listens_beyond_loopback(sharded_golden):
    addresses = _listeners()
    assert addresses, "ray should be listening on loopback"
    for address in addresses:
        host = address.rsplit(":", 1)[0].strip("[]")
        assert host in ("127.0.0.1", "::ffff:127.0.0.1", "::1", "127.0.0.53%lo") or host.startswith("127."), address


GOLDEN_SCENARIOS = [
    test_golden.test_dwell_threshold_fires_at_the_threshold_instant_via_advance,
    test_golden.test_due_timer_fires_at_start_of_next_ingest_with_its_due_time,
    test_golden.test_timer_due_exactly_at_event_time_fires_before_the_event,
    test_golden.test_idle_timeout_ends_session_at_last_event_plus_timeout,
    test_golden.test_window_expiry_is_a_timer,
    test_golden.test_interest_decay_crossing_fires_at_the_computed_instant,
]


@pytest.mark.parametrize("scenario", GOLDEN_SCENARIOS, ids=lambda f: f.__name__[5:])
def test_golden_scenarios_on_both(scenario, either):
    scenario(either)


def _key(action) -> bytes:
    return msgspec.json.encode(action)


ROOM_WIDE = {"crowd"}  # reads `audience`: a shard sees its own part of the room (docs/scaling.md)


def test_many_viewers_same_actions_sizes_and_stats(either, golden_rules):
    events = [ev("enter", viewer=f"v{i}", ts=1000 + i) for i in range(40)]
    events += [ev("like", viewer=f"v{i}", ts=1100 + i) for i in range(0, 40, 3)]
    events += [ev("heartbeat", viewer=f"v{i}", ts=t + i) for t in range(1130, 1400, 30) for i in range(12)]
    events.append(ev("live_start", viewer=None, ts=1200))
    one = Engine(golden_rules)
    want = one.ingest_many(events) + one.advance(5000)
    got = either.ingest_many(events) + either.advance(5000)
    want = [a for a in want if a.rule not in ROOM_WIDE]
    got = [a for a in got if a.rule not in ROOM_WIDE]
    assert len(want) >= 12
    assert collections.Counter(map(_key, got)) == collections.Counter(map(_key, want))
    for name in golden_rules.segments:
        assert either.segment_size(name) == one.segment_size(name)
        assert sorted(map(str, either.segment_members(name))) == sorted(map(str, one.segment_members(name)))
    a, b = one.stats(), either.stats()
    for key in ("fired", "suppressed"):
        for rule in ROOM_WIDE:
            a[key].pop(rule), b[key].pop(rule)
    for key in ("events", "late", "rejected", "fired", "suppressed", "viewers", "rooms"):
        assert b[key] == a[key], key
    assert either.viewer("v3") == one.viewer("v3")


def test_reload_is_all_or_nothing(sharded_golden, golden_rules):
    sharded_golden._reset()
    before = sharded_golden.rules.text
    with pytest.raises(RulesError):
        sharded_golden.reload(before + "\n[[rules]]\nname = 'broken'\nwhen = 'nonsense +'\n")
    assert sharded_golden.rules.text == before
    assert sharded_golden.reload(before) is False
    assert sharded_golden.reload(before + "\n# a comment\n") is True
    assert sharded_golden.rules.text.endswith("# a comment\n")
    sharded_golden.reload(before)


def test_snapshot_directory_restores_every_shard(sharded_golden, tmp_path):
    sharded_golden._reset()
    sharded_golden.ingest_many([ev("enter", viewer=f"v{i}", ts=1000 + i) for i in range(30)])
    sharded_golden.snapshot(tmp_path / "snap")
    names = sorted(p.name for p in (tmp_path / "snap").iterdir())
    assert names == ["manifest.json", "shard-0.snap", "shard-1.snap", "shard-2.snap"]
    restored = ShardedEngine.restore(tmp_path / "snap")
    try:
        assert restored.stats()["viewers"] == sharded_golden.stats()["viewers"] == 30
        want = sharded_golden.advance(9000)
        got = restored.advance(9000)
        assert collections.Counter(map(_key, got)) == collections.Counter(map(_key, want))
    finally:
        restored.close()


def test_kill_three_shards_gives_one_engines_actions(ray_local):
    """The standard workload through 4 shards, 3 SIGKILLs at seeded moments == one Engine."""
    rules = load_rules_file(LIVE_ROOM)
    events = list(iter_events(viewers=1500, hours=0.5, seed=1))
    batches = [events[i:i + 1000] for i in range(0, len(events), 1000)]
    one = Engine(rules)
    want = [a for b in batches for a in one.ingest_many(b)] + one.advance(events[-1]["ts"] + 3600)
    sharded = ShardedEngine(rules, shards=4, checkpoint_every=5)
    try:
        rng = random.Random(18)
        kills = set(rng.sample(range(1, len(batches)), 3))
        got = []
        for k, batch in enumerate(batches):
            if k in kills:
                os.kill(rng.choice(sharded.shard_pids()), signal.SIGKILL)
            got += sharded.ingest_many(batch)
        got += sharded.advance(events[-1]["ts"] + 3600)
        assert sharded.recoveries == 3
        assert len(got) == len(want)
        assert collections.Counter(map(_key, got)) == collections.Counter(map(_key, want))
        for name in rules.segments:
            assert sharded.segment_size(name) == one.segment_size(name)
        a, b = one.stats(), sharded.stats()
        for key in ("events", "late", "rejected", "fired", "suppressed", "viewers", "timers"):
            assert b[key] == a[key], key
    finally:
        sharded.close()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import examples  # noqa: E402
from test_properties import streams  # noqa: E402


@settings(max_examples=examples(8), deadline=None)
@given(events=streams(max_events=30, viewers=("u1", "u2", 3, "u4", 5)), chunked=st.booleans())
def test_property_same_actions_as_one_engine(sharded_golden, golden_rules, events, chunked):
    """Random streams of 5 viewers: the sharded engine's actions == one engine's (room-wide rules aside)."""
    sharded_golden._reset()
    one = Engine(golden_rules)
    if chunked:
        want = one.ingest_many(events)
        got = sharded_golden.ingest_many(events)
    else:
        want = [a for e in events for a in one.ingest(e)]
        got = [a for e in events for a in sharded_golden.ingest(e)]
    end = events[-1]["ts"] + 4000
    want += one.advance(end)
    got += sharded_golden.advance(end)
    keep = [a for a in want if a.rule not in ROOM_WIDE]
    assert collections.Counter(_key(a) for a in got if a.rule not in ROOM_WIDE) == collections.Counter(map(_key, keep))
    for name in golden_rules.segments:
        assert sharded_golden.segment_size(name) == one.segment_size(name)


def test_a_bad_event_raises_like_the_engine_and_keeps_the_other_shards_actions(sharded_golden, golden_rules):
    from segengine import EventError

    sharded_golden._reset()
    one = Engine(golden_rules)
    events = [ev("enter", viewer=f"v{i}", ts=1000) for i in range(10)] + [{"type": "like", "viewer": "v1", "ts": "x"}]
    for engine in (one, sharded_golden):
        with pytest.raises(EventError) as info:
            engine.ingest_many(events)
        assert isinstance(info.value.actions, list)
        engine.ingest_many(events, errors="skip")
    a, b = one.stats(), sharded_golden.stats()
    assert b["rejected"] == a["rejected"] >= 1
    assert b["viewers"] == a["viewers"] == 10
