"""The rule-test harness (``segengine test``): the file format, its errors, failures shown as
expected vs got, and the bundled examples' own rule tests (the cookbook's included)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segengine import Engine, RulesError
from segengine.rules.load import load_rules, load_rules_file
from segengine.testing.ruletest import format_report, format_time, load_suite, parse_time, run_file, run_suite
from test_docs import toml_blocks

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


# --- the bundled rule tests ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["live_room.test.toml", "cookbook.test.toml"])
def test_bundled_rule_tests_pass(name):
    report = run_file(EXAMPLES / name)
    assert report.results, "no tests found"
    assert report.ok, format_report(report)


def test_every_cookbook_rule_is_tested():
    suite = load_suite(EXAMPLES / "cookbook.test.toml")
    tested = {a.rule for case in suite.cases for a in case.actions}
    assert tested == {r.name for r in suite.rules.rules}


def test_cookbook_doc_rules_are_the_tested_rules():
    """Each ```toml block of docs/cookbook.md loads, and its segments and rules are exactly
    those of examples/cookbook.toml (which cookbook.test.toml tests)."""
    tested = load_rules_file(EXAMPLES / "cookbook.toml")
    rules = {r.name: r for r in tested.rules}
    blocks = toml_blocks((ROOT / "docs" / "cookbook.md").read_text(encoding="utf-8"))
    seen = set()
    for line, block in blocks:
        doc = load_rules(block, f"docs/cookbook.md:{line}")
        for name, text in doc.segment_texts.items():
            assert tested.segment_texts.get(name) == text, f"segment {name} (block at line {line})"
        for r in doc.rules:
            t = rules.get(r.name)
            assert t is not None, f"rule {r.name} (block at line {line}) is not in examples/cookbook.toml"
            for key in ("when_text", "then", "on", "params", "cooldown", "once", "budget", "priority", "enabled", "holdout", "outcome"):
                assert getattr(r, key) == getattr(t, key), f"rule {r.name}: {key} differs from examples/cookbook.toml"
            seen.add(r.name)
    assert seen == set(rules), f"rules missing from docs/cookbook.md: {sorted(set(rules) - seen)}"


# --- times -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "seconds"), [
    ("0s", 0.0), ("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("2m30s", 150.0), ("1h 2m 3.5s", 3723.5),
    ("500ms", 0.5), ("1d", 86400.0), (45, 45.0), (1.25, 1.25), (".5s", 0.5),
])
def test_parse_time(text, seconds):
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5", "5 minutes", "-5s", "5x", True, [1], float("inf"), -1])
def test_parse_time_rejects(bad):
    with pytest.raises(ValueError):
        parse_time(bad)


@given(st.integers(min_value=0, max_value=10 * 86400 * 1000))
def test_format_time_round_trips(ms):
    assert round(parse_time(format_time(ms / 1000)) * 1000) == ms


def test_format_time_examples():
    assert [format_time(s) for s in (0, 0.5, 30, 90, 3600, 3630.5)] == ["0s", "0.5s", "30s", "1m30s", "1h", "1h30.5s"]


# --- the file format -----------------------------------------------------------------------------------------
def write(tmp_path: Path, body: str, rules: str | None = None) -> Path:
    (tmp_path / "rules.toml").write_text(rules or (EXAMPLES / "live_room.toml").read_text())
    path = tmp_path / "t.test.toml"
    path.write_text('rules = "rules.toml"\n' + textwrap.dedent(body))
    return path


@pytest.fixture
def harness(example_rules):
    """Runs a test file against live_room.toml, reusing the session's compiled rules."""
    def run(path: Path):
        suite = load_suite(path)
        return run_suite(suite, lambda: Engine(example_rules))
    return run


def test_repeats_expand_and_sort_stably(tmp_path):
    path = write(tmp_path, """\
        [[tests]]
        name = "r"
        events = [
          { at = "1m", type = "cart", viewer = "u1", item = "a", price = 1.0 },
          { at = "0s", type = "enter", viewer = ["u1", "u2"] },
          { at = "30s", every = "30s", until = "1m30s", type = "heartbeat", viewer = "u1" },
          { at = "10s", every = "0.1s", count = 3, type = "like", viewer = "u2" },
          { at = "0s", type = "live_start" },
        ]
        """)
    case = load_suite(path).cases[0]
    got = [(t, e["type"], e.get("viewer")) for t, e, _ in case.events]
    assert got == [
        (0.0, "enter", "u1"), (0.0, "enter", "u2"), (0.0, "live_start", None),
        (10.0, "like", "u2"), (10.1, "like", "u2"), (10.2, "like", "u2"),
        (30.0, "heartbeat", "u1"), (60.0, "cart", "u1"), (60.0, "heartbeat", "u1"), (90.0, "heartbeat", "u1"),
    ]
    assert all(e["room"] == "r1" for _, e, _ in case.events)
    assert case.until == 90.0


def test_action_without_action_name_expects_every_then_action(tmp_path, harness):
    path = write(tmp_path, """\
        [[tests]]
        name = "coupon"
        only = ["hot_interest_coupon"]
        events = [{ at = "0s", every = "1s", count = 5, type = "like", viewer = 7 }]
        actions = [{ at = "4s", rule = "hot_interest_coupon", viewer = 7, params = { pct = 10 } }]

        [[tests.expect]]
        at = "5s"
        tags = { 7 = ["engaged"] }
        viewers = { 7 = { "count(like|comment|click, 1m)" = 5, present = true } }
        """)
    case = load_suite(path).cases[0]
    assert [a.action for a in case.actions] == ["coupon", "tag:engaged"]
    report = harness(path)
    assert report.ok, format_report(report)


def test_profiles_apply_before_events(tmp_path, harness):
    path = write(tmp_path, """\
        [[tests]]
        name = "p"
        only = ["price_sensitive"]
        profiles = { u1 = { level = "high" } }
        events = [{ at = "0s", every = "10s", count = 3, type = "view", viewer = "u1", item = "a", price = 10.0 }]
        actions = [{ at = "20s", rule = "price_sensitive", viewer = "u1" }]
        [[tests.expect]]
        at = "20s"
        viewers = { u1 = { level = "high" } }
        """)
    assert harness(path).ok


def test_failures_show_expected_vs_got(tmp_path, harness):
    path = write(tmp_path, """\
        [[tests]]
        name = "several failures"
        only = ["cart_nudge"]
        events = [
          { at = "0s", type = "enter", viewer = "u1" },
          { at = "30s", every = "30s", until = "6m", type = "heartbeat", viewer = "u1" },
          { at = "1m", type = "cart", viewer = "u1", item = "a", price = 9.0 },
        ]
        actions = [{ at = "5m", rule = "cart_nudge", viewer = "u1", params = { template = "other" } }]

        [[tests.expect]]
        at = "2m"
        segments = { watcher = 2, passerby = 0 }
        tags = { u1 = ["engaged"] }
        viewers = { u1 = { carted = false, dwel = 1, cart_value = 9.0 }, ghost = { present = true } }
        """)
    report = harness(path)
    assert report.failed == 1
    failures = report.results[0].failures
    assert "at 2m (line 12): segment watcher: expected 2, got 1" in failures
    assert "at 2m (line 12): tags of u1: expected ['engaged'], got []" in failures
    assert "at 2m (line 12): u1 carted: expected false, got true" in failures
    assert any("'dwel' is not a feature" in f and "did you mean 'dwell'?" in f for f in failures)
    assert "at 2m (line 12): viewer 'ghost' was never seen" in failures
    diff = failures[-1].splitlines()
    assert diff[0] == "actions differ (rules cart_nudge; - missing, + unexpected):"
    assert diff[1:] == [
        "  expected:",
        '  -        5m  u1  cart_nudge -> nudge  {template = "other"}',
        "  got:",
        '  +        5m  u1  cart_nudge -> nudge  {template = "cart_reminder"}',
    ]
    text = format_report(report)
    assert "FAIL  several failures" in text and "0 passed, 1 failed" in text


def test_only_empty_compares_no_actions_and_default_compares_all(tmp_path, harness):
    path = write(tmp_path, """\
        [[tests]]
        name = "none compared"
        only = []
        events = [{ at = "0s", every = "1s", count = 5, type = "like", viewer = "u1" }]

        [[tests]]
        name = "all compared"
        events = [{ at = "0s", every = "1s", count = 5, type = "like", viewer = "u1" }]
        """)
    report = harness(path)
    assert [r.ok for r in report.results] == [True, False]
    assert "(all rules; - missing, + unexpected)" in report.results[1].failures[0]


def test_rejected_event_is_a_failure_with_its_line(tmp_path, harness):
    path = write(tmp_path, """\
        [[tests]]
        name = "bad"
        only = []
        events = [
          { at = "0s", type = "cart", viewer = "u1", price = -1e400 },
        ]
        """)
    report = harness(path)
    assert not report.ok
    assert report.results[0].failures[0].startswith("line 6: event at 0s rejected:")


def test_until_extends_the_run(tmp_path, harness):
    path = write(tmp_path, """\
        [[tests]]
        name = "late timer"
        only = ["early_exit_risk"]
        until = "10m"
        events = [{ at = "0s", type = "enter", viewer = "u1" }, { at = "30s", every = "30s", until = "3m", type = "heartbeat", viewer = "u1" }]
        actions = [{ at = "2m", rule = "early_exit_risk", viewer = "u1" }]
        """)
    case = load_suite(path).cases[0]
    assert case.until == 600.0
    assert harness(path).ok


# --- test file errors ---------------------------------------------------------------------------------------------
def errors_of(path: Path) -> list[str]:
    with pytest.raises(RulesError) as info:
        load_suite(path)
    return [f"{d.line}:{d.col}: {d.message}" for d in info.value.diagnostics]


def test_file_errors_are_all_reported_with_positions(tmp_path):
    path = write(tmp_path, """\
        [[tests]]
        name = "x"
        evnts = []
        events = [
          { at = "5 min", type = "enter", viewer = "u1" },
          { at = "0s", type = "entre", viewer = "u1" },
          { at = "0s", type = "like" },
          { at = "1m", type = "heartbeat", viewer = "u1", until = "2m" },
          { at = "1m", type = "heartbeat", viewer = "u1", every = "30s", until = "30s" },
        ]
        actions = [{ at = "1m", rule = "cart_nudg" }, { at = "1m", rule = "cart_nudge", action = "nuge" }]

        [[tests.expect]]
        at = "1m"
        segments = { watchers = 1 }
        """)
    assert errors_of(path) == [
        "4:1: unknown key 'evnts' in a test; did you mean 'events'?",
        "6:10: invalid time '5 min': expected numbers with units (ms, s, m, h, d), e.g. \"1h30m\"",
        "7:23: unknown event type 'entre'; did you mean 'enter'?",
        "8:3: an event needs 'viewer': an id (string or integer) or a list of them",
        "9:3: 'until' and 'count' repeat an event: give 'every' too, e.g. every = \"30s\"",
        "10:74: 'until' (30s) is before 'at' (1m)",
        "12:32: no rule named 'cart_nudg' in " + str(tmp_path / "rules.toml") + "; did you mean 'cart_nudge'?",
        "12:90: rule 'cart_nudge' has no action 'nuge' (then = ['nudge']); did you mean 'nudge'?",
        "16:14: unknown segment 'watchers'; did you mean 'watcher'?",
    ]


def test_missing_rules_key_and_missing_rules_file(tmp_path):
    path = tmp_path / "t.test.toml"
    path.write_text('[[tests]]\nname = "x"\n')
    assert errors_of(path)[0].startswith("1:1: the test file needs `rules = \"PATH\"`")
    path.write_text('rules = "nope.toml"\n[[tests]]\nname = "x"\n')
    assert errors_of(path) == [f"1:9: rules file not found: {tmp_path / 'nope.toml'}"]


def test_toml_syntax_error_and_rules_file_errors(tmp_path):
    path = write(tmp_path, "[[tests]]\nname = \n")
    assert errors_of(path)[0].startswith("3:8: TOML syntax error")
    path = write(tmp_path, '[[tests]]\nname = "x"\n', rules='[[rules]]\nname = "r"\nwhen = "dwel > 1m"\nthen = "a"\n')
    with pytest.raises(RulesError) as info:
        load_suite(path)
    assert str(info.value).startswith(f"{tmp_path / 'rules.toml'}:3:9: unknown name 'dwel'")


def test_duplicate_names_unknown_profile_and_only_mismatch(tmp_path):
    path = write(tmp_path, """\
        [[tests]]
        name = "x"
        profiles = { u1 = { levle = "high" } }
        only = ["cart_nudge"]
        actions = [{ at = "1m", rule = "welcome_back" }]

        [[tests]]
        name = "x"
        """)
    errors = errors_of(path)
    assert errors[0].startswith("4:21: unknown profile attribute 'levle'") and errors[0].endswith("did you mean 'level'?")
    assert errors[1] == "6:32: rule 'welcome_back' is not in this test's 'only' list, so its actions are not compared"
    assert errors[2] == "9:8: duplicate test name 'x'"
