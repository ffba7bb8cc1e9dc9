"""``segment_members``: exactly the viewers ``segment_size`` counts, each of whom ``viewer()``
reports in the segment, in every room and in none."""

from __future__ import annotations

import pytest

from segengine import Engine
from segengine.testing.simulate import iter_events


def _expected(engine: Engine, seen: dict, name: str, room: str | None) -> set:
    out = set()
    for vid in seen:
        got = engine.viewer(vid)
        if got["segments"][name] and (room is None or got["room"] == room):
            out.add(vid)
    return out


def test_members_are_the_viewers_in_the_segment(example_rules):
    engine = Engine(example_rules)
    seen: dict = {}
    checkpoints = 0
    for i, event in enumerate(iter_events(viewers=200, hours=0.4, rooms=2, seed=3)):
        engine.ingest(event)
        if event.get("viewer") is not None:
            seen[event["viewer"]] = True
        if i % 1500 == 1499:
            checkpoints += 1
            for name in example_rules.segments:
                for room in (None, "r1", "r2"):
                    members = engine.segment_members(name, room=room)
                    assert len(members) == len(set(members)) == engine.segment_size(name, room=room)
                    assert set(members) == _expected(engine, seen, name, room), (name, room, i)
    assert checkpoints >= 3
    sizes = {name: engine.segment_size(name) for name in example_rules.segments}
    assert any(sizes.values()), "the stream puts viewers in segments"


def test_members_of_an_unknown_room_or_segment(live):
    live.ingest({"type": "enter", "viewer": 7, "room": "r1", "ts": 1000.0})
    assert live.segment_members("passerby") == [7]
    assert live.segment_members("passerby", room="elsewhere") == []
    with pytest.raises(KeyError, match="did you mean 'passerby'"):
        live.segment_members("passerbys")


def test_members_keep_string_and_int_ids(live):
    live.ingest({"type": "enter", "viewer": 1, "room": "r1", "ts": 1000.0})
    live.ingest({"type": "enter", "viewer": "u1", "room": "r1", "ts": 1001.0})
    assert live.segment_members("passerby") == [1, "u1"]
