"""Local time (features/localtime.py, runtime/zones.py) and quiet hours (guards/quiet.py):
hand-computed local hours across DST transitions, fixed offsets, default_tz, the active-hours
histogram, quiet hours across midnight for a cross-border viewer, snapshot and reload."""

from __future__ import annotations

import datetime as dt

import pytest

from segengine import Engine, RulesError
from segengine.rules.load import load_rules
from segengine.runtime.zones import transitions

RULES = """
[engine]
default_tz = "Asia/Shanghai"

[caps]
marketing = "5/1h"
quiet_hours = "22:00-08:00"

[[rules]]
name = "clock"
on = ["like"]
when = "true"
then = "tick"
params = { h = "{local_hour}", wd = "{local_weekday}" }

[[rules]]
name = "promo"
on = ["comment"]
when = "true"
then = "promo"
cap = "marketing"

[[rules]]
name = "night_owl"
on = ["heartbeat"]
when = "active_hour_share(22, 4) > 0.5"
then = "owl"
params = { share = "{active_hour_share(22, 4)}", peak = "{peak_hour}" }

[[rules]]
name = "evening"
when = "present and local_hour >= 20"
then = "evening"
"""


@pytest.fixture(scope="module")
def rules():
    return load_rules(RULES, "localtime.toml")


def ts(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def ev(t, iso, v="u1"):
    return {"type": t, "viewer": v, "room": "r1", "ts": ts(iso)}


def clock(engine, iso, v):
    (a,) = [a for a in engine.ingest(ev("like", iso, v)) if a.rule == "clock"]
    return a.params["h"], a.params["wd"]


@pytest.mark.parametrize("iso, want", [
    ("2026-03-08T06:30:00+00:00", (1.5, 6.0)),   # 01:30 EST, Sunday
    ("2026-03-08T07:30:00+00:00", (3.5, 6.0)),   # 03:30 EDT: 02:00-03:00 does not exist
    ("2026-11-01T05:30:00+00:00", (1.5, 6.0)),   # 01:30 EDT
    ("2026-11-01T06:30:00+00:00", (1.5, 6.0)),   # 01:30 EST: the hour repeats
    ("2026-11-01T07:30:00+00:00", (2.5, 6.0)),
])
def test_local_hour_in_new_york_across_both_dst_transitions(rules, iso, want):
    engine = Engine(rules)
    engine.set_profile("u1", tz="America/New_York")
    assert clock(engine, iso, "u1") == want


def test_london_fixed_offsets_and_the_default_zone(rules):
    engine = Engine(rules)
    engine.set_profile("lon", tz="Europe/London")
    engine.set_profile("ist", utc_offset=330)
    assert clock(engine, "2026-03-29T00:30:00+00:00", "lon") == (0.5, 6.0)  # GMT
    assert clock(engine, "2026-03-29T01:30:00+00:00", "lon") == (2.5, 6.0)  # BST from 01:00 UTC
    assert clock(engine, "2026-03-29T01:30:00+00:00", "ist") == (7.0, 6.0)  # +05:30
    assert clock(engine, "2026-03-29T18:00:00+00:00", "cn") == (2.0, 0.0)  # default_tz: 02:00 Monday
    engine.set_profile("ist", tz="Asia/Tokyo")  # the last one set wins
    assert clock(engine, "2026-03-29T18:00:00+00:00", "ist") == (3.0, 0.0)


def test_quiet_hours_follow_each_viewers_local_time(rules):
    engine = Engine(rules)

    def promo(e):
        return [a.viewer for a in engine.ingest(e) if a.rule == "promo"]

    engine.set_profile("ny", tz="America/New_York")
    at = "2026-06-01T14:30:00+00:00"  # 22:30 in Shanghai (default), 10:30 in New York
    assert promo(ev("comment", at, "cn")) == []
    assert promo(ev("comment", at, "ny")) == ["ny"]
    at = "2026-06-02T03:30:00+00:00"  # 11:30 in Shanghai, 23:30 in New York
    assert promo(ev("comment", at, "cn")) == ["cn"]
    assert promo(ev("comment", at, "ny")) == []
    assert engine.stats()["suppressed"]["promo"]["quiet"] == 2
    text = str(engine.explain("ny", "promo"))
    assert "quiet hours 22:00-08:00: the viewer's local time is 23:30" in text and "quiet for 510 more minutes" in text


def test_a_quiet_firing_does_not_spend_the_cap(rules):
    engine = Engine(rules)
    for minute in range(0, 60, 10):  # 22:00-22:50 Shanghai: all quiet
        engine.ingest(ev("comment", f"2026-06-01T14:{minute:02d}:00+00:00", "cn"))
    fired = [a for m in range(6) for a in engine.ingest(ev("comment", f"2026-06-02T01:{10 * m:02d}:00+00:00", "cn"))
             if a.rule == "promo"]
    assert len(fired) == 5  # 09:00-09:50: the cap (5/1h) is whole
    assert engine.stats()["suppressed"]["promo"] == {"once": 0, "cooldown": 0, "budget": 0, "quiet": 6, "cap": 1,
                                                      "holdout": 0}


def test_active_hours_histogram_share_and_peak(rules):
    engine = Engine(rules)
    engine.set_profile("owl", utc_offset=0)
    out = []
    for day in range(1, 4):
        for hour in (22, 23, 1):
            out += engine.ingest(ev("heartbeat", f"2026-06-0{day}T{hour:02d}:00:00+00:00", "owl"))
    assert out and out[0].rule == "night_owl" and out[0].params["share"] == 1.0
    engine.ingest(ev("like", "2026-06-04T12:00:00+00:00", "owl"))
    features = engine.viewer("owl")["features"]
    assert features["peak_hour"] in (22.0, 23.0, 1.0)
    engine2 = Engine(rules)
    engine2.set_profile("day", utc_offset=0)
    got = [a for h in (9, 10, 11) for a in engine2.ingest(ev("heartbeat", f"2026-06-01T{h:02d}:00:00+00:00", "day"))]
    assert [a for a in got if a.rule == "night_owl"] == []
    assert engine2.viewer("day")["features"]["peak_hour"] == 11.0  # one event each: the decay favours the latest


def test_a_state_rule_on_local_hour_fires_at_the_local_hour(rules):
    engine = Engine(rules)
    engine.set_profile("ny", tz="America/New_York")
    got = engine.ingest(ev("enter", "2026-06-01T23:50:00+00:00", "ny"))  # 19:50 EDT
    for minute in range(51, 60):  # heartbeats keep the viewer present
        got += engine.ingest(ev("heartbeat", f"2026-06-01T23:{minute}:00+00:00", "ny"))
    got += engine.advance(ts("2026-06-02T00:00:30+00:00"))
    assert [a.ts for a in got if a.rule == "evening"] == [ts("2026-06-02T00:00:00+00:00")]  # 20:00 EDT exactly


def test_snapshot_and_reload_keep_zones(rules, tmp_path):
    engine = Engine(rules)
    engine.set_profile("ny", tz="America/New_York")
    engine.set_profile("fixed", utc_offset=-90)
    path = tmp_path / "s.bin"
    engine.snapshot(path)
    restored = Engine.restore(path)
    assert clock(restored, "2026-11-01T06:30:00+00:00", "ny") == (1.5, 6.0)
    assert clock(restored, "2026-11-01T06:30:00+00:00", "fixed") == (5.0, 6.0)
    more = tmp_path / "more.toml"
    more.write_text(RULES + '\n[[rules]]\nname = "x"\non = ["share"]\nwhen = "true"\nthen = "y"\n')
    assert restored.reload(more)
    assert clock(restored, "2026-11-01T07:30:00+00:00", "ny") == (2.5, 6.0)


def test_zone_transitions_are_found_to_the_second():
    pairs = dict(transitions("America/New_York"))
    assert pairs[int(ts("2026-03-08T07:00:00+00:00"))] == -4 * 3600
    assert pairs[int(ts("2026-11-01T06:00:00+00:00"))] == -5 * 3600
    assert transitions("Asia/Shanghai")[-1] == (int(ts("1991-09-14T17:00:00+00:00")), 8 * 3600)  # no DST since 1991


@pytest.mark.parametrize("text, message", [
    ('[engine]\ndefault_tz = "Asia/Shangai"\n', "unknown time zone 'Asia/Shangai'; did you mean 'Asia/Shanghai'"),
    ('[caps]\nm = "1/1h"\nquiet_hours = "25:00-08:00"\n', "'quiet_hours' is \"HH:MM-HH:MM\""),
    ('[[rules]]\nname = "r"\nwhen = "active_hour_share(22, 25) > 0.5"\nthen = "x"\n', "whole hours from 0 to 24"),
])
def test_load_errors(text, message):
    with pytest.raises(RulesError) as info:
        load_rules(text, "lt.toml")
    assert message in str(info.value) and "lt.toml:" in str(info.value)


def test_set_profile_rejects_a_bad_zone_and_changes_nothing(rules):
    engine = Engine(rules)
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Londn'; did you mean 'Europe/London'"):
        engine.set_profile("u1", tz="Europe/Londn")
    with pytest.raises(ValueError, match="utc_offset"):
        engine.set_profile("u1", utc_offset=5000)
    assert engine.stats()["viewers"] == 0


def _recipe(title: str) -> str:
    import re
    from conftest import ROOT
    doc = (ROOT / "docs" / "cookbook.md").read_text(encoding="utf-8")
    section = doc[doc.index(title):]
    return re.search(r"```text\n(.*?)```", section, re.S).group(1)


def test_cookbook_quiet_hours_for_a_cross_border_room():
    engine = Engine.from_toml(_recipe("### Quiet hours for a cross-border room"), "cookbook.toml")
    engine.set_profile("ny", tz="America/New_York")

    def pushes(hour_utc: str) -> list:
        out = []
        for v in ("cn", "ny"):
            for s in range(3):
                out += [a.viewer for a in engine.ingest(ev("like", f"2026-06-0{hour_utc}:0{s}:00+00:00", v))]
        return out

    assert pushes("1T14:30") == ["ny"]  # 22:30 in Shanghai: quiet; 10:30 in New York
    assert pushes("2T03:30") == ["cn"]  # 11:30 in Shanghai; 23:30 in New York: quiet
    assert engine.stats()["suppressed"]["flash_sale_push"]["quiet"] == 2


def test_cookbook_one_on_one_invitation_at_the_usual_hour():
    engine = Engine.from_toml(_recipe("## 17. A 1v1 invitation"), "cookbook.toml")
    engine.set_profile("eve", utc_offset=-300)
    got = []
    for day in range(1, 4):  # three evenings, 20:00-20:30 local (01:00 UTC the next day)
        for minute in range(0, 31):  # a heartbeat a minute: one session (idle timeout 90 s)
            got += engine.ingest(ev("heartbeat", f"2026-06-0{day + 1}T01:{minute:02d}:00+00:00", "eve"))
        engine.ingest(ev("leave", f"2026-06-0{day + 1}T01:31:00+00:00", "eve"))
    assert [(a.rule, a.ts, a.params["usual"]) for a in got] == [
        ("one_on_one_invite", ts("2026-06-04T01:00:00+00:00"), 20.0)]  # the third session, at once
