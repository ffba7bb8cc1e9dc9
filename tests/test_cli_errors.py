"""What users see when something is wrong: CLI errors as JSON, skipped lines, `check DIR`,
`simulate` on a terminal, the demo's footnote, funnel rounding; and the input edge cases every
ingest path shares (an unknown event type's "did you mean", a UTF-8 byte order mark).

Every test reuses the example rules compiled once per session (conftest.py).
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import msgspec
import pytest

from segengine import Batch, Event, EventError
from segengine.cli import Replay, main, render_funnel
from segengine.schema.events import ROOM_TYPES, decode_ndjson
from segengine.schema.ndjson import scan_ndjson

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "live_room.toml"
BOM = b"\xef\xbb\xbf"
BAD_EVENTS = [
    '{"type":"enter","viewer":"a","room":"r1","ts":1000}',
    '',
    '{"type":"like","viewer":"a","room":"r1","ts":"soon"}',
    '{"type":"like","viewer":"a","room":"r1","ts":1002}',
]
BAD_RULES = textwrap.dedent("""\
    [[rules]]
    name = "r"
    when = "dwel > 5m"
    then = "act"
    once = "sesion"
    """)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _likes(n: int, bad: int | None = None, typo: str = "lik") -> bytes:
    """``n`` like events as NDJSON; line ``bad`` (0-based) has the type ``typo``."""
    lines = [msgspec.json.encode({"type": typo if i == bad else "like", "viewer": i % 7, "room": "r1",
                                  "ts": 1000.0 + i}) for i in range(n)]
    return b"\n".join(lines) + b"\n"


# --- replay --json: failures are JSON too ----------------------------------------------------------
def test_replay_json_stopped_by_a_bad_event_writes_the_error_and_what_was_replayed(tmp_path, capsys):
    path = _write(tmp_path / "bad.jsonl", BAD_EVENTS)
    assert main(["replay", str(EXAMPLE), str(path), "--json"]) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["ok"] is False
    assert out["errors"] == [{"kind": "event", "message": "Expected `float | null`, got `str`", "file": str(path),
                              "line": 3, "col": 41, "field": "ts", "source_line": BAD_EVENTS[2]}]
    assert out["events"] == 1 and out["rejected"] == 1 and out["lines"] == 2   # the part before the stop
    assert f"{path}:3:41: bad event" in captured.err


def test_a_stopped_replay_points_to_skip_errors(tmp_path, capsys):
    path = _write(tmp_path / "bad.jsonl", BAD_EVENTS)
    assert main(["replay", str(EXAMPLE), str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "replay stopped at line 3; with --skip-errors it reports bad events and goes on"


def test_replay_json_with_a_bad_rules_file_writes_every_diagnostic(tmp_path, capsys):
    rules = tmp_path / "bad.toml"
    rules.write_text(BAD_RULES)
    events = _write(tmp_path / "ok.jsonl", BAD_EVENTS[:1])
    assert main(["replay", str(rules), str(events), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False
    assert [(e["kind"], e["file"], e["line"], e["col"]) for e in out["errors"]] == [
        ("rules", str(rules), 3, 9), ("rules", str(rules), 5, 8)]
    assert out["errors"][0]["message"] == "unknown name 'dwel'; did you mean 'dwell'?"
    assert out["errors"][0]["source_line"] == 'when = "dwel > 5m"'


def test_replay_json_usage_errors_are_json(tmp_path, capsys):
    assert main(["replay", str(EXAMPLE), str(tmp_path / "nope.jsonl"), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["errors"][0]["kind"] == "usage"
    assert "cannot read events file" in out["errors"][0]["message"]


def test_replay_json_success_says_ok(tmp_path, capsys):
    path = _write(tmp_path / "ok.jsonl", BAD_EVENTS[:1])
    assert main(["replay", str(EXAMPLE), str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["errors"] == [] and out["skipped"] == {"count": 0, "lines": []}


def test_skip_errors_reports_the_skipped_line_numbers_in_text_and_json(tmp_path, capsys):
    good = '{"type":"like","viewer":"a","room":"r1","ts":%d}'
    lines = [BAD_EVENTS[0]] + [good % (1001 + k) if k % 2 else '{"type":"like"}' for k in range(30)]
    path = _write(tmp_path / "bad.jsonl", lines)     # bad at lines 2, 4, ..., 30: 15 of them
    expected = list(range(2, 31, 2))
    assert main(["replay", str(EXAMPLE), str(path), "--skip-errors", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["rejected"] == 15
    assert out["skipped"] == {"count": 15, "lines": expected}
    assert [e["line"] for e in out["errors"]] == expected[:10]          # the ones printed on stderr
    assert main(["replay", str(EXAMPLE), str(path), "--skip-errors"]) == 1
    text = capsys.readouterr().out
    assert "  skipped bad events at lines 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, ... (the first 10 of 15)" in text


# --- unknown event types: "did you mean", on every path ----------------------------------------------
TYPO = "unknown event type 'lik' (did you mean 'like'?)"


@pytest.mark.parametrize("path", ["dict", "event", "json", "ndjson-small", "ndjson-batch", "batch", "list"])
def test_an_unknown_event_type_gets_a_did_you_mean_on_every_path(live, path):
    one = {"type": "lik", "viewer": 1, "room": "r1", "ts": 1000.0}
    calls = {
        "dict": lambda: live.ingest(one),
        "event": lambda: live.ingest(Event(**one)),
        "json": lambda: live.ingest(msgspec.json.encode(one)),
        "ndjson-small": lambda: live.ingest_many(_likes(10, bad=5)),
        "ndjson-batch": lambda: live.ingest_many(_likes(200, bad=150)),
        "batch": lambda: live.ingest_many(Batch(type=["like", "lik"], viewer=[1, 2], room="r1", ts=[1.0, 2.0])),
        "list": lambda: live.ingest_many([{**one, "type": "like"}] * 70 + [one]),
    }
    with pytest.raises(EventError) as info:
        calls[path]()
    assert info.value.reason == TYPO and info.value.field == "type"
    assert info.value.index == {"ndjson-small": 5, "ndjson-batch": 150, "batch": 1, "list": 70}.get(path)


def test_an_unknown_event_type_far_from_any_gets_no_suggestion(live):
    with pytest.raises(EventError, match=r"^unknown event type 'zzzz' - at `\$\.type`$"):
        live.ingest({"type": "zzzz", "viewer": 1, "room": "r1", "ts": 1.0})


def test_replay_names_the_closest_event_type(tmp_path, capsys):
    path = tmp_path / "typo.jsonl"
    path.write_bytes(_likes(200, bad=120))
    assert main(["replay", str(EXAMPLE), str(path)]) == 1
    assert f"{path}:121:2: bad event: {TYPO} - at `$.type`" in capsys.readouterr().err


# --- a UTF-8 byte order mark opening NDJSON ----------------------------------------------------------
@pytest.mark.parametrize("n", [10, 200])
def test_a_byte_order_mark_is_ignored_on_every_ndjson_path(live, example_rules, n):
    from segengine import Engine

    data = _likes(n)
    assert decode_ndjson(BOM + data) == decode_ndjson(data)
    scanned = scan_ndjson(BOM + data, example_rules.event_types, ROOM_TYPES, example_rules.categories)
    assert scanned is not None and scanned.n == n
    plain = Engine(example_rules)
    assert live.ingest_many(BOM + data) == plain.ingest_many(data)
    assert live.stats()["events"] == n and live.stats()["rejected"] == 0
    # with a bad line further on, the batch falls back line by line: still accepted, index unchanged
    with pytest.raises(EventError) as info:
        Engine(example_rules).ingest_many(BOM + _likes(n, bad=n - 1))
    assert info.value.index == n - 1
    with pytest.raises(EventError):  # only at the very start
        Engine(example_rules).ingest_many(data + BOM + data)


def test_replay_reads_a_file_and_stdin_that_open_with_a_byte_order_mark(tmp_path, monkeypatch, capsys):
    import io

    data = BOM + "\n".join(BAD_EVENTS[:1] + BAD_EVENTS[3:]).encode() + b"\n"
    path = tmp_path / "bom.jsonl"
    path.write_bytes(data)
    assert main(["replay", str(EXAMPLE), str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["events"] == 2 and out["funnel"][0]["viewers"] == 1
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["replay", str(EXAMPLE), "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 2


# --- simulate on a terminal ---------------------------------------------------------------------------
def test_simulate_refuses_to_flood_a_terminal():
    """stdout is a pseudo-terminal, as in an interactive shell (read while it runs: a full pty blocks)."""
    leader, follower = pty.openpty()
    written = b""
    try:
        proc = subprocess.Popen([sys.executable, "-m", "segengine", "simulate", "--viewers", "50", "--hours", "0.1"],
                                stdout=follower, stderr=subprocess.PIPE, cwd=ROOT)
        os.close(follower)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if select.select([leader], [], [], 0.05)[0]:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the writer closed the terminal
                    chunk = b""
                written += chunk
                if chunk:
                    continue
            if proc.poll() is not None:
                break
        else:
            proc.kill()
            proc.wait()
        err = proc.stderr.read().decode()
        proc.stderr.close()
    finally:
        os.close(leader)
    assert proc.returncode == 2
    assert "not writing NDJSON to a terminal" in err and "-o FILE" in err and "pipe" in err
    assert b'"type"' not in written


def test_simulate_to_a_terminal_with_an_explicit_dash_o(monkeypatch, capsysbinary):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert main(["simulate", "--viewers", "5", "--hours", "0.05", "-o", "-"]) == 0
    assert capsysbinary.readouterr().out.startswith(b'{"type":"live_start"')


# --- demo --------------------------------------------------------------------------------------------------
FOOTNOTE = "(passerby and watcher count viewers present at that moment"


def test_demo_footnote_only_under_the_bundled_rules(tmp_path, capsys):
    assert main(["demo", "--viewers", "100", "--hours", "0.5"]) == 0
    assert FOOTNOTE in capsys.readouterr().out
    own = tmp_path / "mine.toml"
    own.write_text(EXAMPLE.read_text())
    assert main(["demo", "--viewers", "100", "--hours", "0.5", "--rules", str(own)]) == 0
    out = capsys.readouterr().out
    assert f"replayed through {own}" in out and FOOTNOTE not in out


# --- check DIR ------------------------------------------------------------------------------------------------
@pytest.fixture
def rules_dir(tmp_path) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "good.toml").write_text(EXAMPLE.read_text())
    (d / "bad.toml").write_text(BAD_RULES)
    (d / "good.test.toml").write_text('rules = "good.toml"\n[[tests]]\nname = "t"\nevents = []\n')
    (d / "typo.test.toml").write_text('rules = "good.toml"\n[[tests]]\nname = "t"\nevnts = []\n')
    (d / "notes.txt").write_text("not a rules file")
    (d / "sub").mkdir()
    (d / "sub" / "nested.toml").write_text(BAD_RULES)     # not recursed into
    return d


def test_check_dir_checks_every_toml_and_reports_all_errors(rules_dir, capsys):
    assert main(["check", str(rules_dir)]) == 1
    captured = capsys.readouterr()
    assert f"{rules_dir / 'good.toml'}: ok: 6 rules" in captured.out
    assert f"{rules_dir / 'good.test.toml'}: ok: 1 rule test of" in captured.out
    assert captured.out.splitlines()[-1] == f"checked 4 files in {rules_dir}: 2 ok, 2 with errors"
    err = captured.err
    assert f"{rules_dir / 'bad.toml'}:3:9: unknown name 'dwel'" in err and f"{rules_dir / 'bad.toml'}:5:8:" in err
    assert f"2 errors in {rules_dir / 'bad.toml'}" in err
    assert f"{rules_dir / 'typo.test.toml'}:4:1: unknown key 'evnts'" in err
    assert "nested" not in err + captured.out


def test_check_dir_json_lists_every_file(rules_dir, capsys):
    assert main(["check", str(rules_dir), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [(Path(r["file"]).name, r["ok"]) for r in out] == [
        ("bad.toml", False), ("good.toml", True), ("good.test.toml", True), ("typo.test.toml", False)]
    assert [(e["line"], e["col"]) for e in out[0]["errors"]] == [(3, 9), (5, 8)]


def test_check_dir_all_ok_exits_0_and_empty_dir_is_a_usage_error(tmp_path, capsys):
    assert main(["check", str(ROOT / "examples")]) == 0
    assert "4 ok, 0 with errors" in capsys.readouterr().out
    assert main(["check", str(tmp_path)]) == 2
    assert "no *.toml files" in capsys.readouterr().err


def test_check_a_rule_test_file_checks_it_as_one(rules_dir, capsys):
    assert main(["check", str(rules_dir / "good.test.toml")]) == 0
    assert "ok: 1 rule test of" in capsys.readouterr().out
    assert main(["check", str(rules_dir / "typo.test.toml")]) == 1


# --- funnel percentages -------------------------------------------------------------------------------------
def test_funnel_percentages_are_rounded_once_and_agree(live):
    """939 of 2,000 viewers view: 46.95 % exactly, shown as 47.0 % of previous and of entered, 53.0 % drop-off."""
    lines = [msgspec.json.encode({"type": "enter", "viewer": v, "room": "r1", "ts": 1000.0 + v}) + b"\n"
             for v in range(2000)]
    lines += [msgspec.json.encode({"type": "view", "viewer": v, "room": "r1", "ts": 3000.0 + v, "item": "i1"}) + b"\n"
              for v in range(939)]
    replay = Replay(live, timeline_every=0)
    replay.feed(lines, list(range(1, len(lines) + 1)))
    replay.finish()
    summary = replay.summary()
    row = next(line for line in render_funnel(summary) if line.lstrip().startswith("view"))
    assert row.split()[3:] == ["47.0", "%", "53.0", "%", "47.0", "%"]
    view = summary["funnel"][1]
    assert (view["viewers"], view["of_previous"], view["drop_off"], view["of_entered"]) == (939, 939 / 2000, 1061 / 2000, 939 / 2000)
    for line in render_funnel(summary)[3:]:     # every later step: of previous + drop-off = 100.0 %
        cells = line.split()
        if len(cells) == 9:
            assert float(cells[3]) + float(cells[5]) == pytest.approx(100.0)
