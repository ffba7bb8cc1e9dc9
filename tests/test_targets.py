"""Targets (``[targets.NAME] match = ...``), ``room.share`` of a target, and ``engine.mix``."""

from __future__ import annotations

import pytest

from segengine import Engine, RulesError
from segengine.rules.load import load_rules

from room_common import engine, ev, rows


def _share(e, room="r1"):
    return e.explain_room(room, "off_target").values["room.share(young_women)"]


def test_target_share_hand_computed():
    e = engine()
    e.set_profile("w1", gender="female", age=25)
    e.set_profile("w2", gender="female", age=45)  # too old
    e.set_profile("m", gender="male", age=25)
    for i, v in enumerate(["w1", "w2", "m", "n"]):
        e.ingest(ev("enter", v, ts=i))
    assert _share(e) == 0.25
    e.set_profile("w2", age=39)  # a profile change moves the count at once
    assert _share(e) == 0.5
    e.ingest(ev("leave", "w1", ts=10))
    assert _share(e) == pytest.approx(1 / 3)
    e.set_profile("w1", age=50)  # not present: no count either way
    e.ingest(ev("enter", "w1", ts=11))
    assert _share(e) == 0.25


def test_recipe_alert_when_the_target_share_drops_below_0_3():
    """A room rule: `room.audience >= 2 and room.share(young_women) < 0.3`, cooldown 1m."""
    e = engine()
    for v in ("w1", "w2"):
        e.set_profile(v, gender="female", age=30)
    alerts = []
    for i, v in enumerate(["w1", "w2", "m1", "m2", "m3", "m4", "m5"]):  # shares 1, 1, 2/3, 1/2, 2/5, 1/3, 2/7
        alerts += [a for a in e.ingest(ev("enter", v, ts=i)) if a.rule == "off_target"]
    assert [(a.viewer, a.ts, a.params["share"]) for a in alerts] == [("", 6.0, pytest.approx(2 / 7))]


def test_targets_survive_snapshot_and_reload(tmp_path):
    e = engine()
    e.set_profile("w", gender="female", age=30)
    e.ingest(ev("enter", "w", ts=1))
    e.ingest(ev("enter", "m", ts=2))
    e.snapshot(tmp_path / "s.seg")
    r = Engine.restore(tmp_path / "s.seg")
    assert _share(r) == 0.5
    assert r.mix("gender", "r1") == {"female": 1, "male": 0, "unknown": 0, "missing": 1}
    from room_common import ROOM_RULES
    text = ROOM_RULES.read_text().replace("age >= 20 and age < 40", "age >= 31")
    assert r.reload(text, warmup=False)
    assert _share(r) == 0.0  # the target's meaning changed: recounted


def test_mix_categories_bins_and_values():
    e = engine()
    profiles = {"a": dict(gender="female", age=17), "b": dict(gender="male", age=18), "c": dict(gender="female", age=34.5),
                "d": dict(age=50), "e": dict(gender="unknown", age=70)}
    for v, p in profiles.items():
        e.set_profile(v, **p)
    for i, v in enumerate(["a", "b", "c", "d", "e", "f"]):
        e.ingest(ev("enter", v, ts=i))
    e.ingest(ev("enter", "z", room="r2", ts=10))  # another room
    e.ingest(ev("leave", "e", ts=11))  # absent: not counted
    assert e.mix("gender", "r1") == {"female": 2, "male": 1, "unknown": 0, "missing": 2}
    assert e.mix("age", "r1", bins=[0, 18, 25, 35, 50]) == {
        "<0": 0, "0-18": 2, "18-25": 1, "25-35": 1, "35-50": 0, ">=50": 1}  # f: unset reads 0
    assert e.mix("age", "r1") == {0: 1, 17: 1, 18: 1, 34.5: 1, 50: 1}
    assert e.mix("gender", "r2") == {"female": 0, "male": 0, "unknown": 0, "missing": 1}
    assert e.mix("gender", "nowhere") == {"female": 0, "male": 0, "unknown": 0, "missing": 0}
    with pytest.raises(KeyError, match="did you mean 'gender'"):
        e.mix("gendr", "r1")
    with pytest.raises(ValueError, match="category"):
        e.mix("gender", "r1", bins=[1, 2])
    with pytest.raises(ValueError, match="increasing"):
        e.mix("age", "r1", bins=[5, 1])


BAD = [
    ('[profile]\nage = "int"\n[targets.t]\nmatch = "dwell > 1m"\n', "4:10: a target reads only profile attributes, not 'dwell'"),
    ('[profile]\nage = "int"\n[targets.t]\nmatch = "ag > 20"\n', "4:10: unknown profile attribute 'ag'; did you mean 'age'?"),
    ('[profile]\nage = "int"\n[targets.t]\nmatch = "count(like) > 2"\n', "4:10: a target reads only profile attributes"),
    ('[profile]\nage = "int"\n[targets.t]\nmatch = "age > 1"\nwhere = "x"\n', "5:1: unknown key 'where' in [targets.t]"),
    ('[profile]\nage = "int"\n[targets.t]\n', "3:10: target 't' has no 'match'"),
    ('[profile]\nage = "int"\n[segments]\nt = "age > 3"\n[targets.t]\nmatch = "age > 1"\n', "target 't' has the name of a segment"),
    ('[profile]\nage = "int"\n[targets.t]\nmatch = "age + 1"\n', "4:10: a condition must be true or false"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_target_errors(text, message):
    with pytest.raises(RulesError) as err:
        load_rules(text, "t.toml")
    assert message in str(err.value)


def test_share_of_a_target_in_a_viewer_rule_and_unknown_target():
    with pytest.raises(RulesError, match="unknown segment or target 'youn'; did you mean 'young'"):
        load_rules('[profile]\nage = "int"\n[targets.young]\nmatch = "age < 30"\n'
                   '[[rules]]\nname = "r"\non = ["like"]\nwhen = "room.share(youn) > 0.5"\nthen = "x"\n')
    assert rows([]) == []


def test_the_cookbook_room_recipes_load():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "cookbook.md").read_text(encoding="utf-8")
    section = text[text.index("## 11. The room as a whole"):]
    section = section[: section.index("\n## ", 1)]
    blocks = [b.split("```", 1)[0] for b in section.split("```text\n")[1:]]
    files = [b for b in blocks if "[[" in b]
    assert len(files) == 2
    for block in files:
        rs = load_rules(block, "cookbook.md")
        assert rs.room_rules or rs.room_types
