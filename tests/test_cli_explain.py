"""``segengine explain`` and ``--profiles`` of replay and explain (docs/cli.md).

Small hand-written streams through examples/live_room.toml (compiled once per session by
``example_rules``; the command loads the same file, so its kernels come from the cache).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segengine.cli import main

from conftest import ev

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "live_room.toml")


@pytest.fixture(autouse=True)
def _compiled(example_rules):
    """Compile live_room.toml once for the session before the commands load it."""


def write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def cart_stream(viewer="u1") -> list[dict]:
    """u1 carts and stays 6 minutes: cart_nudge fires at 1300 (dwell > 5m); u2 only watches."""
    rows = [ev("live_start", None, 1000), ev("enter", viewer, 1000), ev("enter", "u2", 1000),
            ev("cart", viewer, 1010, item="a", price=20.0)]
    rows[0].pop("viewer")
    t = 1030.0
    while t <= 1360:
        rows += [ev("heartbeat", viewer, t), ev("heartbeat", "u2", t)]
        t += 30
    return rows


def likes_stream() -> list[dict]:
    """Five likes in a minute fire hot_interest_coupon at 1004; five more are within its 10m cooldown."""
    rows = [ev("enter", "u1", 1000)]
    rows += [ev("like", "u1", 1000 + i) for i in range(5)]
    rows += [ev("like", "u1", 1030 + i) for i in range(5)]
    return rows


def cheap_views(viewer=7) -> list[dict]:
    """Three views of items under 60 in 10 minutes: price_sensitive fires for a `high` viewer only."""
    return [ev("enter", viewer, 1000), ev("view", viewer, 1010, item="a", price=20.0),
            ev("view", viewer, 1020, item="b", price=30.0), ev("view", viewer, 1030, item="c", price=40.0),
            ev("enter", 8, 1040)]


# --- explain --------------------------------------------------------------------------------------
def test_explain_rule_that_fired_and_is_now_suppressed_by_once(tmp_path, capsys):
    events = write(tmp_path / "ev.jsonl", cart_stream())
    assert main(["explain", EXAMPLE, events, "u1", "cart_nudge"]) == 0
    out = capsys.readouterr().out
    assert f"Replayed 28 events of {events} through {EXAMPLE}, to the end of the stream (ts 1360)" in out
    assert "cart_nudge fired once for viewer 'u1' during the replay:" in out
    assert "  0:05:00  ts 1300  room r1  nudge template=cart_reminder" in out
    assert "explain 'cart_nudge' for viewer 'u1' at 1360 s in room 'r1'" in out
    assert "carted = true ✓" in out
    assert "once: SUPPRESSES: once per session: already fired in this session" in out
    assert "last fired: 1300" in out


def test_explain_rule_suppressed_by_cooldown(tmp_path, capsys):
    events = write(tmp_path / "ev.jsonl", likes_stream())
    assert main(["explain", EXAMPLE, events, "u1", "hot_interest_coupon", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["fired"] == 1
    assert doc["firings"] == [{"ts": 1004.0, "at": 4.0, "room": "r1", "actions": [
        {"action": "coupon", "params": {"pct": 10, "item": ""}},
        {"action": "tag:engaged", "params": {"pct": 10, "item": ""}}]}]
    x = doc["explanation"]
    assert x["holds"] is True and x["would_fire"] is False and x["suppressed_by"] == "cooldown"
    assert x["suppressed"]["cooldown"] == 5
    cooldown = next(s for s in x["suppressors"] if s["kind"] == "cooldown")
    assert cooldown["active"] and cooldown["remaining"] == pytest.approx(600 - 30)
    assert main(["explain", EXAMPLE, events, "u1", "hot_interest_coupon"]) == 0
    assert "cooldown: SUPPRESSES: cooldown 10m: 570 s remaining" in capsys.readouterr().out


def test_explain_condition_false_shows_the_values(tmp_path, capsys):
    events = write(tmp_path / "ev.jsonl", cart_stream())
    assert main(["explain", EXAMPLE, events, "u2", "cart_nudge"]) == 0
    out = capsys.readouterr().out
    assert "cart_nudge did not fire for viewer 'u2' during the replay" in out
    assert "carted = false ✗" in out
    assert "dwell = 360 s > 300 s ✓" in out
    assert "would fire now: no: the condition is false" in out


def test_explain_at_replays_only_up_to_that_time(tmp_path, capsys):
    events = write(tmp_path / "ev.jsonl", cart_stream())
    for at in ("+4m", "1240"):
        assert main(["explain", EXAMPLE, events, "u1", "cart_nudge", "--at", at, "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["at"] == 1240.0 and doc["stopped_early"] and doc["fired"] == 0
        assert doc["explanation"]["now"] == 1240.0
        assert doc["events"] == 4 + 2 * 8      # the heartbeats from 1030 to 1240
        dwell = next(c for c in doc["explanation"]["condition"]["children"] if c["text"] == "dwell > 5m")
        assert dwell["children"][0]["value"] == 240.0
    assert main(["explain", EXAMPLE, events, "u1", "cart_nudge", "--at", "+6m"]) == 0
    assert "up to ts 1360 (--at)" in capsys.readouterr().out
    assert main(["explain", EXAMPLE, events, "u1", "cart_nudge", "--at", "soon"]) == 2
    assert "expected an event time" in capsys.readouterr().err


def test_explain_int_and_string_viewer_ids(tmp_path, capsys):
    ints = write(tmp_path / "ints.jsonl", cheap_views(7))
    assert main(["explain", EXAMPLE, ints, "7", "price_sensitive", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["viewer"] == 7
    strs = write(tmp_path / "strs.jsonl", cheap_views("7"))
    assert main(["explain", EXAMPLE, strs, "7", "price_sensitive", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["viewer"] == "7"


def test_explain_unknown_viewer_and_rule_are_usage_errors(tmp_path, capsys):
    events = write(tmp_path / "ev.jsonl", cart_stream())
    assert main(["explain", EXAMPLE, events, "u11", "cart_nudge"]) == 2
    err = capsys.readouterr().err
    assert f"segengine explain: error: unknown viewer 'u11': no event of {events} names it; did you mean 'u1'?" in err
    assert main(["explain", EXAMPLE, events, "1", "cart_nudge"]) == 2   # no int ids in this stream, not u1
    assert main(["explain", EXAMPLE, events, "u1", "cart_nudg"]) == 2
    assert "unknown rule 'cart_nudg' in" in capsys.readouterr().err
    assert main(["explain", EXAMPLE, events, "zzz", "cart_nudge", "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["errors"][0]["kind"] == "usage"
    assert "unknown viewer 'zzz'" in doc["errors"][0]["message"]
    assert doc["errors"][0]["message"].endswith("names it (its 2 viewers have ids like 'u1', 'u2')")


def test_explain_unknown_rule_suggests(tmp_path, capsys):
    events = write(tmp_path / "ev.jsonl", cart_stream())
    assert main(["explain", EXAMPLE, events, "u1", "cart_nudg", "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert "did you mean 'cart_nudge'?" in doc["errors"][0]["message"]


def test_explain_skip_errors_like_replay(tmp_path, capsys):
    rows = cart_stream()
    path = tmp_path / "ev.jsonl"
    lines = [json.dumps(r) for r in rows]
    lines.insert(5, '{"type":"like","viewer":"u1","room":"r1","ts":"soon"}')
    path.write_text("\n".join(lines) + "\n")
    assert main(["explain", EXAMPLE, str(path), "u1", "cart_nudge"]) == 1
    assert f"{path}:6:" in capsys.readouterr().err
    assert main(["explain", EXAMPLE, str(path), "u1", "cart_nudge", "--skip-errors"]) == 1
    captured = capsys.readouterr()
    assert "cart_nudge fired once for viewer 'u1'" in captured.out
    assert "rejected events: 1 (lines 6)" in captured.out


# --- --profiles -----------------------------------------------------------------------------------
PROFILES = [{"viewer": 7, "age": 31, "gender": "female", "region": "jiangsu", "level": "high", "tz": "Asia/Shanghai"},
            {"viewer": 8, "age": 40, "gender": "male", "region": "hubei", "level": "low", "tz": "Asia/Shanghai"},
            {"viewer": 99, "level": "mid", "region": None}]


def test_replay_profiles_change_what_fires(tmp_path, capsys):
    events = write(tmp_path / "ev.jsonl", cheap_views(7))
    profiles = write(tmp_path / "profiles.jsonl", PROFILES)
    assert main(["replay", EXAMPLE, events, "--json"]) == 0
    rule = {r["rule"]: r for r in json.loads(capsys.readouterr().out)["rules"]}["price_sensitive"]
    assert rule["fired"] == 0                          # no profile: level is not 'high'
    assert main(["replay", EXAMPLE, events, "--profiles", profiles, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {r["rule"]: r for r in doc["rules"]}["price_sensitive"]["fired"] == 1
    assert doc["profiles"] == {"file": profiles, "set": 3, "viewers": 3, "without_events": 1,
                               "skipped_attributes": {"region": 3, "tz": 2}, "rejected": 0, "rejected_lines": []}
    assert main(["replay", EXAMPLE, events, "--profiles", profiles]) == 0
    out = capsys.readouterr().out
    assert f"  profiles: 3 viewers set from {profiles} (1 of them for viewers without events)" in out
    assert out.count("skipped attributes not in [profile]: region, tz") == 1


def test_explain_with_profiles(tmp_path, capsys):
    events = write(tmp_path / "ev.jsonl", cheap_views(7))
    profiles = write(tmp_path / "profiles.jsonl", PROFILES)
    assert main(["explain", EXAMPLE, events, "7", "price_sensitive", "--profiles", profiles]) == 0
    out = capsys.readouterr().out
    assert "price_sensitive fired once for viewer 7 during the replay:" in out
    assert "level = 'high' == 'high' ✓" in out
    assert main(["explain", EXAMPLE, events, "8", "price_sensitive", "--profiles", profiles]) == 0
    out = capsys.readouterr().out
    assert "price_sensitive did not fire for viewer 8" in out
    assert "level = 'low' == 'high' ✗" in out


@pytest.mark.parametrize(("line", "attribute", "message"), [
    ('{"viewer": 8, "level": 5}', "level", "attribute 'level' takes a string, got an integer 5"),
    ('{"viewer": 8, "age": "old"}', "age", "attribute 'age' takes a number, got a string \"old\""),
    ('{"viewer": 8, "level": "hi"}', "level", "'hi' is not a value of 'level'"),
    ('{"level": "high"}', "viewer", 'no "viewer" key'),
    ('[1, 2]', None, "expected a JSON object"),
    ('{"viewer": 8,', None, "not JSON"),
])
def test_bad_profile_line_names_file_line_and_attribute(tmp_path, capsys, line, attribute, message):
    events = write(tmp_path / "ev.jsonl", cheap_views(7))
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text(json.dumps(PROFILES[0]) + "\n" + line + "\n")
    assert main(["replay", EXAMPLE, events, "--profiles", str(profiles)]) == 1
    err = capsys.readouterr().err
    assert f"{profiles}:2: bad profile: " in err and message in err
    assert main(["replay", EXAMPLE, events, "--profiles", str(profiles), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert doc["errors"][0]["kind"] == "profile" and doc["errors"][0]["line"] == 2
    assert doc["errors"][0]["attribute"] == attribute


def test_bad_profile_lines_skipped_with_skip_errors(tmp_path, capsys):
    events = write(tmp_path / "ev.jsonl", cheap_views(7))
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text('{"viewer": 8, "level": 5}\n' + json.dumps(PROFILES[0]) + "\n\n" + '{"viewer": 9, "age": true}\n')
    assert main(["replay", EXAMPLE, events, "--profiles", str(profiles), "--skip-errors", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["profiles"]["set"] == 1 and doc["profiles"]["rejected"] == 2
    assert doc["profiles"]["rejected_lines"] == [1, 4]
    assert [e["line"] for e in doc["errors"]] == [1, 4]
    assert {r["rule"]: r for r in doc["rules"]}["price_sensitive"]["fired"] == 1   # the good line still counts
    assert main(["replay", EXAMPLE, events, "--profiles", str(profiles), "--skip-errors"]) == 1
    out = capsys.readouterr().out
    assert "skipped bad profile lines at lines 1, 4" in out


def test_missing_profiles_file_is_a_usage_error(tmp_path, capsys):
    events = write(tmp_path / "ev.jsonl", cheap_views(7))
    assert main(["replay", EXAMPLE, events, "--profiles", str(tmp_path / "nope.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


# --- the documented example stays true --------------------------------------------------------------
def test_docs_explain_example_is_the_output(tmp_path, monkeypatch, capsys):
    """docs/cli.md's `segengine explain ... ev1k.jsonl 15 cart_nudge` block is the command's output, verbatim."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8").splitlines()
    command = "$ segengine explain examples/live_room.toml ev1k.jsonl 15 cart_nudge"
    start = text.index(command) + 1
    documented = text[start:text.index("```", start)]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "live_room.toml").write_bytes(Path(EXAMPLE).read_bytes())
    assert main(["simulate", "--viewers", "1000", "--hours", "1", "-o", "ev1k.jsonl"]) == 0
    capsys.readouterr()
    assert main(command.split()[2:]) == 0
    assert capsys.readouterr().out.splitlines() == documented
