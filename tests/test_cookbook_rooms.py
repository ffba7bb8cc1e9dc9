"""The room recipes of docs/cookbook.md (sections 14 and 15), run as written in the doc."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT
from segengine import Engine
from segengine.testing.simulate import iter_events

DOC = (ROOT / "docs" / "cookbook.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = DOC.index(title)
    end = DOC.find("\n## ", start + 1)
    return DOC[start: end if end > 0 else len(DOC)]


def _block(section: str, lang: str) -> str:
    return re.search(rf"```{lang}\n(.*?)```", section, re.S).group(1)


def ev(t, ts, v, **kw):
    return {"type": t, "viewer": v, "room": "r1", "ts": float(ts), **kw}


def test_the_break_point_alert_fires_when_clickers_do_not_cart():
    engine = Engine.from_toml(_block(_section("## 14. Where the purchase path breaks"), "text"), "cookbook14.toml")
    events = []
    for i in range(25):  # 25 sessions reach click; 3 of them cart
        v = f"u{i}"
        events += [ev("enter", i, v), ev("view", i + 1, v, item="a"), ev("click", i + 2, v, item="a")]
        if i < 3:
            events.append(ev("cart", i + 3, v, item="a", price=10.0))
    actions = [a for e in sorted(events, key=lambda e: e["ts"]) for a in engine.ingest(e)]
    alerts = [(a.rule, a.viewer, a.room, a.params) for a in actions]
    # the alert rises when the 20th session clicks (3 carts < 0.2 * 20 = 4)
    assert alerts == [("cart_step_breaks", "", "r1", {"clicked": 20.0, "carted": 3.0})]
    m = engine.room("r1")
    assert (m.funnel["click"], m.funnel["cart"], m.dropoff["cart"]) == (25, 3, 22)
    assert m.break_point == "checkout"  # the largest relative loss: none of the 3 carts went on to checkout


def test_the_weak_slot_recipe_names_the_simulated_weak_half_hour():
    namespace: dict = {}
    exec(_block(_section("## 15. A weak content slot"), "python"), namespace)  # the recipe as written
    engine = Engine.from_file(ROOT / "examples" / "live_room.toml")
    engine.ingest_many(list(iter_events(viewers=3000, hours=3.0, seed=3, schedule="builtin")))
    found = namespace["weak_slots"](engine, "r1")
    assert [(start / 60, end / 60) for start, end, _ in found] == [(90.0, 105.0), (105.0, 120.0)]
    assert all(per_entry < 10 for _, _, per_entry in found)


@pytest.mark.parametrize("seed", [4])
def test_no_weak_slot_without_a_weak_schedule_slot(seed):
    namespace: dict = {}
    exec(_block(_section("## 15. A weak content slot"), "python"), namespace)
    engine = Engine.from_file(ROOT / "examples" / "live_room.toml")
    engine.ingest_many(list(iter_events(viewers=3000, hours=3.0, seed=seed)))
    assert namespace["weak_slots"](engine, "r1") == []
