"""The HTML report in a real browser: headless Chromium opens it from file://, no console errors,
and the numbers in the DOM equal the engine's room view of the replay that made it."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from report_browser import Browser, find_chromium

from segengine import Engine
from segengine.cli.replay import Replay
from segengine.report import write_report
from segengine.testing.simulate import iter_events

SHOTS = Path(__file__).resolve().parent.parent / "report-screenshots"  # ignored by git

pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason="chromium not found (apt-get install -y chromium; .ci/run installs it)")


@pytest.fixture(scope="module")
def browser():
    b = Browser(find_chromium())
    yield b
    b.close()


def _replay(rules, path: Path) -> tuple[Engine, dict]:
    lines = [msgspec.json.encode(e) + b"\n" for e in iter_events(viewers=300, hours=0.5, seed=1)]
    engine = Engine(rules)
    replay = Replay(engine, str(path), timeline_every=300.0)
    replay.feed(lines, list(range(1, len(lines) + 1)))
    replay.finish()
    return engine, json.loads(json.dumps(replay.summary(), default=str))  # as replay --json saves it


def test_report_in_chromium(example_rules, browser, tmp_path):
    engine, summary = _replay(example_rules, tmp_path / "events.jsonl")
    page = tmp_path / "report.html"
    write_report(summary, page)
    browser.open(page.as_uri())
    assert browser.errors() == []
    SHOTS.mkdir(exist_ok=True)
    browser.screenshot(str(SHOTS / "report.png"))
    assert (SHOTS / "report.png").stat().st_size > 10_000

    dom = browser.evaluate("""JSON.stringify([...document.querySelectorAll('section[data-room]')].map(s => ({
        room: s.dataset.room,
        tiles: Object.fromEntries([...s.querySelectorAll('[data-metric]')].map(t => [t.dataset.metric, t.dataset.value])),
        funnel: Object.fromEntries([...s.querySelectorAll('[data-step]')].map(t => [t.dataset.step, +t.dataset.value])),
        gmv: [...s.querySelectorAll('svg[data-chart=gmv] rect[data-value]')].map(r => +r.dataset.value),
        actions: [...s.querySelectorAll('svg[data-chart=actions] rect[data-value]')].map(
            r => [r.dataset.series, +r.dataset.slot, +r.dataset.value]),
    })))""")
    rooms = json.loads(dom)
    assert [r["room"] for r in rooms] == list(summary["room_metrics"])
    for r in rooms:
        m = engine.room(r["room"])
        assert m.uv > 0 and m.gmv > 0
        assert float(r["tiles"]["gmv"]) == m.gmv
        assert int(r["tiles"]["uv"]) == m.uv
        assert float(r["tiles"]["conversion"]) == m.conversion
        assert int(r["tiles"]["peak_audience"]) == m.peak_audience
        assert r["tiles"]["break_point"] == m.break_point
        assert float(r["tiles"]["avg_dwell"]) == m.avg_dwell
        assert r["funnel"] == m.funnel
        assert r["gmv"] == [s.gmv for s in engine.room_slots(r["room"])]
        actions = summary["actions_by_slot"][r["room"]]
        assert sum(v for _, _, v in r["actions"]) == sum(map(sum, actions.values())) > 0
        for rule, slot, value in r["actions"]:
            assert actions[rule][slot] == value
    per_rule = {x["rule"]: x["actions"] for x in summary["rules"]}
    for rule, total in per_rule.items():  # actions_by_slot counts every action once
        assert sum(sum(by_rule.get(rule, [])) for by_rule in summary["actions_by_slot"].values()) == total


def test_harness_sees_console_errors(browser, tmp_path):
    """The check above can fail: a page that logs an error or throws is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><script>console.error('broken chart'); null.x;</script>")
    browser.open(page.as_uri())
    errors = browser.errors()
    assert any("broken chart" in e for e in errors) and len(errors) >= 2
