"""The command line (SPEC §6, docs/cli.md): exit codes, error format, JSON output, replay and demo.

Most cases call ``main([...])`` in-process (the compiled rules are cached in the process);
a few run ``python -m segengine`` as a subprocess end to end.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest

from segengine import Action
from segengine.cli import FUNNEL, Progress, Replay, bundled_rules, clock, iter_chunks, main
from segengine.testing.simulate import generate_ndjson, write_ndjson

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "live_room.toml"
BAD_RULES = textwrap.dedent("""\
    [profile]
    level = ["low", "mid", "high"]

    [[rules]]
    name = "r"
    when = "level = 'high' and count(lik, 60) > 3"
    then = "act"
    once = "sesion"
    """)


@pytest.fixture(scope="module")
def events_file(tmp_path_factory) -> Path:
    """A small simulated room (with true viewer kinds), written once for the module."""
    path = tmp_path_factory.mktemp("cli") / "events.jsonl"
    with path.open("wb") as f:
        write_ndjson(f, viewers=300, hours=1.0, seed=3, with_kind=True)
    return path


@pytest.fixture
def bad_rules(tmp_path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(BAD_RULES)
    return path


def run_module(*args: str, input: bytes | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "segengine", *args], input=input, capture_output=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONIOENCODING": "utf-8"})


# --- usage -------------------------------------------------------------------------------------------
def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "usage: segengine" in capsys.readouterr().err


def test_unknown_command_and_option_are_usage_errors(capsys):
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["check", str(EXAMPLE), "--nope"]) == 2


def test_help_and_version_exit_zero(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("check", "replay", "simulate", "demo", "bench", "test"):
        assert command in out
    assert main(["--version"]) == 0
    assert "segengine" in capsys.readouterr().out


def test_missing_input_files_are_usage_errors(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read rules file" in capsys.readouterr().err
    assert main(["replay", str(EXAMPLE), str(tmp_path / "nope.jsonl")]) == 2
    assert "cannot read events file" in capsys.readouterr().err
    assert main(["test", str(tmp_path / "nope.test.toml")]) == 2


# --- check -------------------------------------------------------------------------------------------
def test_check_ok(capsys):
    assert main(["check", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "ok: 6 rules (3 state, 3 event), 3 segments" in out


def test_check_reports_every_error_with_position_and_caret(bad_rules, capsys):
    assert main(["check", str(bad_rules)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0] == f"{bad_rules}:6:15: unexpected '='; did you mean '=='?"
    assert lines[1] == "    when = \"level = 'high' and count(lik, 60) > 3\""
    assert lines[2] == "                  ^"
    assert lines[3] == f"{bad_rules}:8:8: 'once' is \"session\" or \"lifetime\"; did you mean 'session'?"
    assert lines[-1] == f"2 errors in {bad_rules}"


def test_check_json(bad_rules, capsys):
    assert main(["check", "--json", str(EXAMPLE)]) == 0
    ok = json.loads(capsys.readouterr().out)
    assert ok["ok"] is True and ok["errors"] == []
    assert ok["rules"][0] == "cart_nudge" and ok["segments"] == ["passerby", "watcher", "fan"]
    assert main(["check", "--json", str(bad_rules)]) == 1
    bad = json.loads(capsys.readouterr().out)
    assert bad["ok"] is False
    assert [(e["line"], e["col"]) for e in bad["errors"]] == [(6, 15), (8, 8)]
    assert bad["errors"][0]["message"] == "unexpected '='; did you mean '=='?"


# --- simulate ------------------------------------------------------------------------------------------
def test_simulate_to_stdout_is_the_standard_workload(capsysbinary):
    assert main(["simulate", "--viewers", "40", "--hours", "0.2", "--seed", "5"]) == 0
    out = capsysbinary.readouterr().out
    assert out == generate_ndjson(viewers=40, hours=0.2, seed=5)


def test_simulate_to_file_with_options(tmp_path, capsys):
    path = tmp_path / "ev.jsonl"
    assert main(["simulate", "--viewers", "30", "--hours", "0.2", "--rooms", "2", "--with-kind",
                 "--string-ids", "-o", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    lines = path.read_bytes().splitlines()
    assert info["events"] == len(lines) and info["rooms"] == 2
    events = [json.loads(line) for line in lines]
    enters = [e for e in events if e["type"] == "enter"]
    assert all(isinstance(e["viewer"], str) and e["kind"] in ("passerby", "watcher", "fan") for e in enters)
    assert {e["room"] for e in events} == {"r1", "r2"}


def test_simulate_rejects_bad_arguments(capsys):
    assert main(["simulate", "--viewers", "-1"]) == 2
    assert main(["simulate", "--hours", "0"]) == 2
    assert main(["simulate", "--viewers", "ten"]) == 2
    assert "--hours must be a positive number" in capsys.readouterr().err


def test_simulate_progress_bar_only_when_asked(tmp_path, capsys):
    path = tmp_path / "ev.jsonl"
    assert main(["simulate", "--viewers", "20", "--hours", "0.1", "-o", str(path)]) == 0
    assert capsys.readouterr().err == ""              # stderr is not a terminal under pytest
    assert main(["simulate", "--viewers", "20", "--hours", "0.1", "-o", str(path), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "simulate [" in err and "100%" in err and err.endswith("\n")


def test_progress_bar_renders_and_throttles(monkeypatch):
    import segengine.cli.progress as progress

    now = [1000.0]  # a fake clock: a busy machine must not decide what counts as "within 0.1 s"
    monkeypatch.setattr(progress, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    buf = io.StringIO()
    bar = Progress("replay", 200.0, True, buf)
    now[0] += 1.0
    bar.update(50.0, 10)
    now[0] += 0.05
    bar.update(60.0, 12)                               # within 0.1 s: not redrawn
    now[0] += 0.2
    bar.update(70.0, 14)                               # 0.25 s after the last drawing: redrawn
    bar.close(200.0, 40)
    text = buf.getvalue()
    assert text.count("\r") == 3 and "25%" in text and "30%" not in text and "35%" in text
    assert "100%" in text and "40 events" in text
    off = io.StringIO()
    quiet = Progress("replay", None, False, off)
    quiet.update(1, 1)
    quiet.close(1, 1)
    assert off.getvalue() == ""


# --- replay ----------------------------------------------------------------------------------------------
def test_replay_writes_actions_and_summary(events_file, tmp_path, live, capsys):
    out = tmp_path / "actions.jsonl"
    assert main(["replay", str(EXAMPLE), str(events_file), "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    actions = [msgspec.json.decode(line, type=Action) for line in out.read_bytes().splitlines()]
    # Same actions as one ingest_many call over the whole file, then advance to the last event.
    data = events_file.read_bytes()
    expected = live.ingest_many(data)
    expected += live.advance(json.loads(data.splitlines()[-1])["ts"])
    assert actions == expected
    assert summary["actions"] == len(actions) > 0
    assert summary["events"] == len(data.splitlines()) and summary["rejected"] == 0
    assert [r["rule"] for r in summary["rules"]] == [r.name for r in live.rules.rules]
    assert sum(r["actions"] for r in summary["rules"]) == len(actions)
    assert summary["rules"][1]["suppressed"]["cooldown"] > 0
    assert set(summary["segments"]) == {"passerby", "watcher", "fan"}
    assert [row["at"] for row in summary["timeline"]] == [1800.0, 3600.0]
    funnel = summary["funnel"]
    assert [row["step"] for row in funnel] == list(FUNNEL)
    assert funnel[0]["viewers"] == 300
    for prev, row in zip(funnel, funnel[1:]):
        assert row["of_previous"] == pytest.approx(row["viewers"] / prev["viewers"], abs=1e-4)
        assert row["drop_off"] == pytest.approx(1 - row["of_previous"], abs=1e-4)
    assert set(summary["kinds"]) == {"passerby", "watcher", "fan"}
    assert sum(k["viewers"] for k in summary["kinds"].values()) == 300


def test_replay_results_do_not_depend_on_the_chunk_size(events_file, tmp_path, capsys):
    outs = []
    for chunk in ("7", "100000"):
        out = tmp_path / f"actions-{chunk}.jsonl"
        assert main(["replay", str(EXAMPLE), str(events_file), "-o", str(out), "--chunk", chunk, "--json"]) == 0
        outs.append(out.read_bytes())
        capsys.readouterr()
    assert outs[0] == outs[1] and outs[0]


def test_replay_text_summary(events_file, capsys):
    assert main(["replay", str(EXAMPLE), str(events_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Replayed ")
    for heading in ("Actions per rule", "suppressed (once / cooldown / budget / quiet / cap / holdout)", "Segment sizes over the stream",
                    "Purchase funnel", "drop-off", "Viewer kinds"):
        assert heading in out
    assert "hot_interest_coupon" in out and "checkout" in out


def test_replay_actions_to_stdout_and_summary_to_stderr(events_file, capsys):
    assert main(["replay", str(EXAMPLE), str(events_file), "-o", "-", "--timeline", "0"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines and all(json.loads(line)["rule"] for line in lines)
    assert "Purchase funnel" in captured.err and "Segment sizes at the end" in captured.err
    assert main(["replay", str(EXAMPLE), str(events_file), "-o", "-", "--json"]) == 2


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


BAD_EVENTS = [
    '{"type":"enter","viewer":"a","room":"r1","ts":1000}',
    '',
    '{"type":"like","viewer":"a","room":"r1","ts":"soon"}',
    '{"type":"like","viewer":"a","room":"r1","ts":1002}',
]


def test_replay_stops_at_a_bad_event_with_its_line_and_column(tmp_path, capsys):
    path = _write(tmp_path / "bad.jsonl", BAD_EVENTS)
    assert main(["replay", str(EXAMPLE), str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{path}:3:41: bad event: ") and err[0].endswith("- at `$.ts`")
    assert err[1] == "    " + BAD_EVENTS[2]
    assert err[2] == "    " + " " * 40 + "^"


def test_replay_skip_errors_goes_on_and_exits_1(tmp_path, capsys):
    path = _write(tmp_path / "bad.jsonl", BAD_EVENTS + ["not json"])
    assert main(["replay", str(EXAMPLE), str(path), "--skip-errors", "--json"]) == 1
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["rejected"] == 2 and summary["events"] == 2
    assert f"{path}:3:41:" in captured.err and f"{path}:5:1: bad event: invalid JSON" in captured.err
    assert summary["funnel"][0]["viewers"] == 1


def test_replay_reads_stdin(events_file, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(events_file.read_bytes())))
    assert main(["replay", str(EXAMPLE), "-", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events_file"] == "<stdin>" and summary["actions"] > 0


def test_replay_rules_errors_exit_1(bad_rules, events_file, capsys):
    assert main(["replay", str(bad_rules), str(events_file)]) == 1
    assert f"{bad_rules}:6:15:" in capsys.readouterr().err


def test_replay_progress_bar(events_file, capsys):
    assert main(["replay", str(EXAMPLE), str(events_file), "--progress", "--chunk", "1000"]) == 0
    err = capsys.readouterr().err
    assert "replay [" in err and "100%" in err


def test_iter_chunks_numbers_lines_and_skips_blanks():
    data = io.BytesIO(b'{"a":1}\n\n  \n{"b":2}\n{"c":3}')
    chunks = list(iter_chunks(data, 2))
    assert chunks == [([b'{"a":1}\n', b'{"b":2}\n'], [1, 4]), ([b'{"c":3}\n'], [5])]


def test_replay_class_samples_the_timeline_at_exact_boundaries(live):
    replay = Replay(live, timeline_every=60.0)
    lines = [msgspec.json.encode({"type": "heartbeat", "viewer": "u1", "room": "r1", "ts": 1000.0 + 20 * k}) + b"\n"
             for k in range(10)]
    replay.feed(lines, list(range(1, 11)))
    replay.finish()
    assert [row["at"] for row in replay.timeline] == [60.0, 120.0, 180.0]
    assert replay.timeline[0]["segments"] == {"passerby": 1, "watcher": 0, "fan": 0}
    assert replay.timeline[1]["segments"] == {"passerby": 0, "watcher": 1, "fan": 0}


def test_clock():
    assert clock(0) == "0:00:00" and clock(3725.4) == "1:02:05"


# --- demo --------------------------------------------------------------------------------------------------
def test_demo_small_in_process(capsys):
    assert main(["demo", "--viewers", "300", "--hours", "1"]) == 0
    out = capsys.readouterr().out
    for text in ("passers-by", "watchers", "fans", "What was sent to whom", "Actions per rule",
                 "Purchase funnel", "checkout", "pay", "drop-off", "One fan's stream"):
        assert text in out
    assert main(["demo", "--viewers", "300", "--hours", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["simulation"]["viewers"] == 300
    assert sum(k["viewers"] for k in summary["kinds"].values()) == 300
    assert summary["first_actions"] and summary["stories"]
    assert all(0 <= a["at"] <= 3600 for a in summary["first_actions"])


def test_demo_uses_the_bundled_rules_which_match_the_example():
    assert bundled_rules().read_text() == EXAMPLE.read_text()


# --- bench ---------------------------------------------------------------------------------------------------
def test_bench_calls_benchmarks_run_main(tmp_path, monkeypatch, capsys):
    import segengine.cli.commands as cli

    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "__init__.py").write_text("")
    (bench / "run.py").write_text("CALLS = []\ndef main(argv):\n    CALLS.append(argv)\n    return 0\n")
    monkeypatch.setattr(cli, "repo_root", lambda: tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("benchmarks", "benchmarks.run"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert main(["bench", "--quick", "--json", "out.json"]) == 0
    assert sys.modules["benchmarks.run"].CALLS == [["--quick", "--json", "out.json"]]


def test_bench_finds_the_source_tree_it_runs_from():
    import segengine.cli as cli

    assert cli.repo_root() == ROOT  # the package's parent, wherever the CLI module sits inside it
    assert (cli.repo_root() / "benchmarks" / "run.py").is_file()


def test_bench_without_the_source_tree_exits_2(tmp_path, monkeypatch, capsys):
    import segengine.cli.commands as cli

    monkeypatch.setattr(cli, "repo_root", lambda: tmp_path)
    assert main(["bench"]) == 2
    assert "benchmarks/run.py" in capsys.readouterr().err


# --- test --------------------------------------------------------------------------------------------------------
def test_test_command_runs_the_bundled_rule_tests(capsys):
    assert main(["test", str(ROOT / "examples" / "live_room.test.toml")]) == 0
    out = capsys.readouterr().out
    assert "8 passed, 0 failed" in out


def test_test_command_failure_exits_1_and_shows_expected_vs_got(tmp_path, capsys):
    (tmp_path / "rules.toml").write_text(EXAMPLE.read_text())
    path = tmp_path / "t.test.toml"
    path.write_text(textwrap.dedent("""\
        rules = "rules.toml"
        [[tests]]
        name = "wrong time"
        only = ["cart_nudge"]
        events = [
          { at = "0s", type = "enter", viewer = "u1" },
          { at = "30s", every = "30s", until = "6m", type = "heartbeat", viewer = "u1" },
          { at = "1m", type = "cart", viewer = "u1", item = "i1", price = 9.0 },
        ]
        actions = [{ at = "4m", rule = "cart_nudge", viewer = "u1" }]
        """))
    assert main(["test", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  wrong time  ({path}:2)" in out
    assert "-        4m  u1  cart_nudge -> nudge" in out
    assert "+        5m  u1  cart_nudge -> nudge" in out
    assert main(["test", "--json", str(path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["failed"] == 1 and report["tests"][0]["ok"] is False


def test_test_command_reports_test_file_errors_with_position(tmp_path, capsys):
    (tmp_path / "rules.toml").write_text(EXAMPLE.read_text())
    path = tmp_path / "t.test.toml"
    path.write_text('rules = "rules.toml"\n[[tests]]\nname = "x"\nactions = [{ at = "1m", rule = "cart_nudg" }]\n')
    assert main(["test", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:4:" in err and "no rule named 'cart_nudg'" in err and "did you mean 'cart_nudge'?" in err


# --- end to end, as a user runs it ----------------------------------------------------------------------------------
def test_subprocess_check():
    ok = run_module("check", "examples/live_room.toml")
    assert ok.returncode == 0 and b"ok: 6 rules" in ok.stdout
    bad = run_module("check", "-")
    assert bad.returncode == 2


def test_subprocess_check_errors(bad_rules):
    bad = run_module("check", str(bad_rules))
    assert bad.returncode == 1
    assert f"{bad_rules}:6:15: unexpected '='".encode() in bad.stderr and bad.stdout == b""


def test_subprocess_simulate_piped_into_replay(tmp_path):
    sim = run_module("simulate", "--viewers", "100", "--hours", "0.5", "--seed", "1")
    assert sim.returncode == 0 and sim.stdout.count(b"\n") > 1000
    out = tmp_path / "actions.jsonl"
    rep = run_module("replay", "examples/live_room.toml", "-", "-o", str(out), input=sim.stdout)
    assert rep.returncode == 0, rep.stderr.decode()
    assert b"Purchase funnel" in rep.stdout and b"Actions per rule" in rep.stdout
    assert rep.stderr == b""                            # no progress bar: stderr is not a terminal
    assert out.read_bytes().count(b"\n") > 0


def test_subprocess_test_command():
    done = run_module("test", "examples/live_room.test.toml", "examples/cookbook.test.toml")
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert b"8 passed, 0 failed" in done.stdout and b"19 passed, 0 failed" in done.stdout


def test_subprocess_demo_with_no_arguments():
    done = run_module("demo")
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert "3-hour live room with 5,000 viewers" in out
    for text in ("passers-by", "watchers", "fans", "What was sent to whom", "Purchase funnel"):
        assert text in out
