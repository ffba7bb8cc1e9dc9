"""The HTML report builder without a browser: SVG charts, tiles, funnel, the CLI entry points."""

from __future__ import annotations

import json
import re

import msgspec
from conftest import EXAMPLE

from segengine.cli import main
from segengine.report import build_report
from segengine.report.svg import bar_chart, line_chart, nice_ticks
from segengine.testing.simulate import iter_events

SUMMARY = {
    "rules_file": "r.toml", "events_file": "e.jsonl", "events": 10, "viewers": 3, "stream_seconds": 900.0,
    "actions": 3, "segments": {"fan": 2}, "timeline": [{"at": 300.0, "segments": {"fan": 1}}],
    "rules": [{"rule": "nudge", "fired": 3, "actions": 3, "suppressed": {"cooldown": 2}}],
    "room_metrics": {"r<1>": {
        "metrics": {"room": "r<1>", "gmv": 12.5, "uv": 3, "conversion": 1 / 3, "peak_audience": 2,
                    "break_point": "cart", "avg_dwell": 90.0, "funnel": {"enter": 3, "view": 3, "cart": 1, "pay": 1},
                    "dropoff": {"enter": 0, "view": 0, "cart": 2, "pay": 0}},
        "slots": [{"start": 0.0, "end": 300.0, "gmv": 0.0, "audience": 2, "peak_audience": 2},
                  {"start": 300.0, "end": 600.0, "gmv": 12.5, "audience": 1, "peak_audience": 2}]}},
    "actions_by_slot": {"r<1>": {"nudge": [1, 2]}},
}


def test_nice_ticks():
    assert nice_ticks(37) == [0, 10, 20, 30, 40]
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(0.9)[-1] >= 0.9


def test_charts_carry_values_and_tooltips():
    svg = bar_chart({"GMV": [1.5, 0.0, 3.25]}, slot=300, title="g", kind="gmv")
    assert re.findall(r'data-value="([^"]+)"', svg) == ["1.5", "0.0", "3.25"]
    assert "<title>GMV, 10m–15m: 3.25</title>" in svg
    line = line_chart({"a": [(0.0, 1), (600.0, 4)]}, title="t", y_label="viewers")
    assert line.count("<circle") == 2 and "viewers" in line and "<title>a at 10m: 4</title>" in line
    assert "no data" in line_chart({}, title="t")


def test_page_is_self_contained_and_escaped():
    page = build_report(SUMMARY)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r'(src|href)=|<script|@import|url\(', page)  # nothing fetched at view time
    assert 'data-room="r&lt;1&gt;"' in page and "<1>" not in page
    assert 'data-metric="gmv" data-value="12.5"' in page
    assert 'data-metric="break_point" data-value="cart"' in page
    assert re.search(r'<tr class="break" data-step="cart" data-value="1"', page)
    assert page.count('data-chart="actions"') == 1 and 'data-series="nudge" data-slot="1" data-value="2"' in page
    assert '<td>nudge</td><td>3</td><td>3</td><td>2</td>' in page  # suppressed per guard, summed


def test_empty_summary_renders():
    assert "no rooms" in build_report({})


def test_report_command(tmp_path, capsys):
    saved = tmp_path / "s.json"
    saved.write_text(json.dumps(SUMMARY))
    assert main(["report", str(saved), "-o", str(tmp_path / "r.html")]) == 0
    assert 'data-metric="uv" data-value="3"' in (tmp_path / "r.html").read_text()
    saved.write_text("[]")
    assert main(["report", str(saved), "-o", str(tmp_path / "r.html")]) == 1
    assert "not a replay --json summary" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.json"), "-o", str(tmp_path / "r.html")]) == 2


def test_replay_report_flag(example_rules, tmp_path, capsys):
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in iter_events(viewers=40, hours=0.25, seed=2)))
    out = tmp_path / "r.html"
    assert main(["replay", str(EXAMPLE), str(events), "--json", "--report", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    for room, by_rule in summary["actions_by_slot"].items():
        n = len(summary["room_metrics"][room]["slots"])
        assert all(len(counts) == n for counts in by_rule.values())
    assert sum(sum(map(sum, r.values())) for r in summary["actions_by_slot"].values()) == summary["actions"]
    assert 'data-chart="gmv"' in out.read_text()


def test_replay_with_room_metrics_off_says_so(tmp_path, capsys):
    rules = tmp_path / "off.toml"
    rules.write_text('[engine]\nroom_metrics = false\n\n[[rules]]\nname = "hi"\non = ["like"]\nwhen = "true"\nthen = "wave"\n')
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in iter_events(viewers=40, hours=0.25, seed=2)))
    out = tmp_path / "r.html"
    assert main(["replay", str(rules), str(events), "--json", "--report", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["room_metrics"] == {} and summary["room_metrics_off"] is True and summary["actions"] > 0
    assert "the rules turn them off ([engine] room_metrics = false)" in out.read_text()
