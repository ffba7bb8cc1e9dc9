"""Frequency caps: ``[caps] NAME = "N/DURATION"`` and the rule key ``cap = "NAME"`` (guards/cap.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segengine import Engine, RulesError
from segengine.rules.load import load_rules, load_rules_file

from conftest import ev, examples, named

CAPS = Path(__file__).resolve().parent / "rules" / "caps.toml"


@pytest.fixture(scope="module")
def caps_rules():
    rules = load_rules_file(CAPS)
    Engine(rules).warmup()
    return rules


def test_a_cap_is_shared_by_its_rules_per_viewer_in_a_sliding_window(caps_rules):
    e = Engine(caps_rules)
    out = []
    # promo = 2/1h: firings at 1000 and 1100 fill the window; 1200 is capped; at 4601 the firing
    # of 1000 has left the window (4601 - 3600 = 1001 > 1000); at 4700 the one of 1100 has left
    # it (exactly one hour: the window is (now - 1h, now]); at 4800 the window holds 4601 and 4700.
    for typ, ts in [("like", 1000), ("share", 1100), ("like", 1200), ("like", 4601), ("share", 4700),
                    ("share", 4800)]:
        out += [(a.rule, a.ts) for a in e.ingest(ev(typ, "u1", ts)) if a.rule != "free"]
    assert out == [("like_promo", 1000.0), ("share_promo", 1100.0), ("like_promo", 4601.0), ("share_promo", 4700.0)]
    # another viewer has its own cap; an uncapped rule is never capped
    assert named(e.ingest(ev("like", "u2", 4800)), "like_promo") == [("push_like", 4800.0)]
    s = e.stats()["suppressed"]
    assert s["like_promo"] == {"once": 0, "cooldown": 0, "budget": 0, "quiet": 0, "cap": 1, "holdout": 0}
    assert s["share_promo"]["cap"] == 1 and s["free"]["cap"] == 0
    assert e.stats()["fired"]["free"] == 4


def test_a_firing_suppressed_by_the_cooldown_does_not_spend_the_cap(caps_rules):
    e = Engine(caps_rules)
    assert named(e.ingest(ev("comment", "u1", 1000)), "solo") == [("nudge", 1000.0)]
    assert named(e.ingest(ev("comment", "u1", 1100)), "solo") == []  # cooldown 5m (and the cap)
    assert named(e.ingest(ev("comment", "u1", 1400)), "solo") == []  # cooldown over; cap 1/10m full
    assert named(e.ingest(ev("comment", "u1", 1600)), "solo") == [("nudge", 1600.0)]
    s = e.stats()["suppressed"]["solo"]
    assert s["cooldown"] == 1 and s["cap"] == 1


def test_explain_says_how_long_until_the_cap_lets_one_through(caps_rules):
    e = Engine(caps_rules)
    e.ingest(ev("like", "u1", 1000))
    x = e.explain("u1", "share_promo")
    (cap,) = x.suppressors
    assert (cap.kind, cap.active, cap.spent, cap.limit) == ("cap", False, 1, 2)
    assert "cap promo = 2/1h: 1 of 2 spent" in str(x)
    e.ingest(ev("share", "u1", 1100))
    e.ingest(ev("share", "u1", 1200))
    text = str(e.explain("u1", "like_promo"))
    assert "SUPPRESSES" in text and "next firing is allowed in 3400 s" in text  # 1000 + 3600 - 1200
    (cap,) = e.explain("u1", "like_promo").suppressors
    assert cap.active and cap.remaining == 3400.0 and x.suppressed["cap"] == 0


def test_reload_keeps_the_cap_state_when_the_cap_is_unchanged(caps_rules, tmp_path):
    e = Engine(caps_rules)
    e.ingest(ev("like", "u1", 1000))
    e.ingest(ev("like", "u1", 1100))
    changed = tmp_path / "caps.toml"
    changed.write_text(CAPS.read_text().replace('then = "thanks"', 'then = "thank_you"'))
    e.reload(changed, warmup=False)
    assert named(e.ingest(ev("share", "u1", 1200)), "share_promo") == []  # still 2 of 2 in the hour
    # a changed cap starts afresh
    changed.write_text(CAPS.read_text().replace('promo = "2/1h"', 'promo = "3/1h"'))
    e.reload(changed, warmup=False)
    assert named(e.ingest(ev("share", "u1", 1300)), "share_promo") == [("push_share", 1300.0)]


def test_snapshot_restore_keeps_the_cap_state(caps_rules, tmp_path):
    e = Engine(caps_rules)
    e.ingest(ev("like", "u1", 1000))
    e.ingest(ev("like", "u1", 1100))
    e.snapshot(tmp_path / "s.snap")
    r = Engine.restore(tmp_path / "s.snap")
    assert named(r.ingest(ev("share", "u1", 1200)), "share_promo") == []
    assert named(r.ingest(ev("share", "u1", 4601)), "share_promo") == [("push_share", 4601.0)]


@given(stream=st.lists(st.tuples(st.sampled_from(["like", "share"]), st.sampled_from(["u1", "u2"]),
                                 st.integers(0, 8)), max_size=40))
@settings(max_examples=examples(40))
def test_no_window_ever_holds_more_than_n_firings_and_the_cap_is_tight(caps_rules, stream):
    """promo = 2/1h; timestamps in steps of 10 min, so firings often sit exactly on a window's edge."""
    e = Engine(caps_rules)
    ts = 1000.0
    fired: dict[str, list[float]] = {"u1": [], "u2": []}
    for typ, viewer, gap in stream:
        ts += gap * 600
        window = [t for t in fired[viewer] if t > ts - 3600]
        got = [a for a in e.ingest(ev(typ, viewer, ts)) if a.rule.endswith("_promo")]
        # tight: suppressed exactly when the window (now - 1h, now] already holds 2 firings
        assert len(got) == (0 if len(window) >= 2 else 1)
        fired[viewer] += [a.ts for a in got]
    for times in fired.values():
        for i in range(len(times) - 2):
            assert times[i + 2] - times[i] >= 3600  # no 3 firings within one hour


BAD = [
    ('[caps]\npromo = "2 per hour"\n', 2, 9, "'cap' is \"N/DURATION\""),
    ('[caps]\npromo = "0/1h"\n', 2, 9, "a cap needs at least 1 firing"),
    ('[caps]\npromo = "2/1h"\n[[rules]]\nname = "a"\nwhen = "true"\nthen = "x"\ncap = "prom"\n', 7, 7,
     "unknown cap 'prom'; did you mean 'promo'?"),
    ('[[rules]]\nname = "a"\nwhen = "true"\nthen = "x"\ncap = "promo"\n', 5, 7, "define it in [caps]"),
    ('[caps]\nquiet_hours = "22:00-22:00"\n', 2, 15, "quiet hours must not start and end at the same time"),
]


@pytest.mark.parametrize("text,line,col,message", BAD)
def test_cap_errors_point_at_the_file_line_and_column(text, line, col, message):
    with pytest.raises(RulesError) as err:
        load_rules(text, "caps.toml")
    shown = str(err.value)
    assert f"caps.toml:{line}:{col}" in shown, shown
    assert message in shown, shown


def test_cookbook_marketing_cap_recipe():
    """docs/cookbook.md §12: the block loads and behaves as the text says."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "cookbook.md").read_text(encoding="utf-8")
    section = text.split("## 16. A marketing cap", 1)[1]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    e = Engine(load_rules(block, "cookbook.md"))
    acts = []
    for typ, ts in [("share", 1000), ("comment", 1030), ("share", 1040), ("like", 1050), ("like", 1060),
                    ("like", 1070), ("comment", 1100)]:
        acts += [(a.rule, a.ts) for a in e.ingest(ev(typ, "u1", ts))]
    assert acts == [("share_reward", 1000.0), ("comment_flash_sale", 1030.0)]
    s = e.stats()["suppressed"]
    assert s["share_reward"]["cooldown"] == 1 and s["share_reward"]["cap"] == 0  # the cooldown first
    assert s["like_coupon"]["cap"] == 1 and s["comment_flash_sale"]["cap"] == 1
    assert named(e.ingest(ev("comment", "u1", 4600.5)), "comment_flash_sale") == [("flash_sale", 4600.5)]
