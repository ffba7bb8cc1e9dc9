"""The generated kernel as readable source: ``Engine.kernel_source`` and ``segengine compile``.

Uses the session's compiled rules (tests/conftest.py): nothing here compiles a new rules file
except the reload test, which reuses tests/rules/live_room_v2.toml (as tests/test_reload.py does).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from segengine import Engine
from segengine.cli import main
from segengine.compiler import compile_rules, module_source
from segengine.config import cache_dir

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "live_room.toml"
V2 = Path(__file__).resolve().parent / "rules" / "live_room_v2.toml"


def test_kernel_source_is_the_module_the_engine_runs(live, example_rules):
    source = live.kernel_source
    compiled = compile_rules(example_rules)
    assert compiled.path.read_text(encoding="utf-8") == source  # the file Numba compiles (or Python runs)
    assert compiled.path.parent == cache_dir()
    assert Path(compiled.module.__file__) == compiled.path
    tree = ast.parse(source)
    names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert {"ingest_event", "ingest_batch", "advance", "rescan", "segment_count", "readout", "explain_values"} <= names
    assert module_source(example_rules) == source
    assert module_source(Engine.from_file(EXAMPLE).rules) == source  # the same text from a fresh load


def test_kernel_source_follows_reload(live):
    before = live.kernel_source
    assert live.reload(V2)
    after = live.kernel_source
    assert after != before and after == compile_rules(live.rules).generated.source


def test_compile_emit_writes_the_kernel_source(live, tmp_path, capsys):
    assert main(["compile", str(EXAMPLE), "--emit", "-"]) == 0
    assert capsys.readouterr().out == live.kernel_source
    target = tmp_path / "kernel.py"
    assert main(["compile", str(EXAMPLE), "--emit", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == live.kernel_source
    lines = live.kernel_source.count("\n")
    assert f"wrote the generated kernel module ({lines:,} lines) to {target}" in capsys.readouterr().out
    assert main(["compile", str(EXAMPLE), "--emit", str(target), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"file": str(EXAMPLE), "ok": True, "emit": str(target),
                                                   "lines": lines}


def test_compile_reports_time_and_cache_path(example_rules, capsys):
    path = compile_rules(example_rules).path
    assert main(["compile", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{EXAMPLE}: ")
    assert " in " in out.splitlines()[0] and out.splitlines()[0].endswith(" s")
    assert f"kernel module: {path} (" in out
    assert f"cache directory: {cache_dir()}" in out
    assert main(["compile", str(EXAMPLE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["module"] == str(path) and report["cache_dir"] == str(cache_dir())
    assert report["seconds"] >= 0 and report["lines"] == path.read_text(encoding="utf-8").count("\n")


@pytest.mark.parametrize("args, code, message", [
    (["nope.toml"], 2, "cannot read rules file"),
    (["{EXAMPLE}", "--emit", "-", "--json"], 2, "both want stdout"),
    (["{EXAMPLE}", "--emit", "{tmp}/missing/dir/k.py"], 2, "cannot write"),
    (["{bad}"], 1, "1 error"),
])
def test_compile_errors(tmp_path, capsys, args, code, message):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nname = "r"\nwhen = "dwel > 5"\nthen = "x"\n')
    argv = [a.format(EXAMPLE=EXAMPLE, tmp=tmp_path, bad=bad) for a in args]
    assert main(["compile", *argv]) == code
    assert message in capsys.readouterr().err
