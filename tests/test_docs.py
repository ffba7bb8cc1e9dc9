"""Every rules example in the docs loads, and so does every example rules file.

A ```toml block in ``docs/*.md`` or ``README.md`` is a complete rules file; snippets
that are partial or deliberately wrong belong in ```text blocks. Loading is pure
Python (no Engine, no Numba), so this stays fast.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from segengine.errors import RulesError
from segengine.rules.load import load_rules, load_rules_file

ROOT = Path(__file__).resolve().parent.parent

# An opening fence ``` or ~~~ (3 or more) with info string "toml"; it closes at a
# fence of the same character that is at least as long (CommonMark).
_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*toml\s*$")


def doc_files() -> list[Path]:
    files = sorted((ROOT / "docs").glob("*.md"))
    readme = ROOT / "README.md"
    if readme.is_file():
        files.append(readme)
    return files


def toml_blocks(text: str) -> list[tuple[int, str]]:
    """(1-based line of the opening fence, block text) of each ```toml block."""
    blocks: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent = m.group("fence"), len(m.group("indent"))
        start = i + 1
        body: list[str] = []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped and stripped == fence[0] * len(stripped) and len(stripped) >= len(fence):
                break
            line = lines[i]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))):])
            i += 1
        else:
            raise AssertionError(f"unclosed ```toml block opened at line {start}")
        blocks.append((start, "\n".join(body) + "\n"))
        i += 1
    return blocks


def _doc_cases() -> list:
    cases = []
    for path in doc_files():
        rel = path.relative_to(ROOT).as_posix()
        for n, (line, block) in enumerate(toml_blocks(path.read_text(encoding="utf-8")), start=1):
            cases.append(pytest.param(rel, n, line, block, id=f"{rel}-block{n}"))
    return cases


DOC_CASES = _doc_cases()
# rules files only: *.test.toml files are rule tests (tests/test_ruletest.py runs them)
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.toml") if not p.name.endswith(".test.toml")) + sorted(
    (ROOT / "segengine" / "data").glob("*.toml"))


@pytest.mark.parametrize(("file", "n", "line", "block"), DOC_CASES)
def test_doc_toml_block_loads(file: str, n: int, line: int, block: str) -> None:
    try:
        load_rules(block, f"{file}:block{n}")
    except RulesError as err:
        problem = str(err)
    else:
        return
    pytest.fail(f"```toml block {n} of {file} (fence at line {line}) does not load:\n{problem}", pytrace=False)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_example_file_loads(path: Path) -> None:
    try:
        rs = load_rules_file(path)
    except RulesError as err:
        problem = str(err)
    else:
        assert rs.rules, f"{path.name} defines no rules"
        return
    pytest.fail(f"{path.relative_to(ROOT)} does not load:\n{problem}", pytrace=False)


def test_rules_reference_has_examples() -> None:
    """Guards the block finder itself: the reference must yield checked examples."""
    ref = ROOT / "docs" / "rules.md"
    assert ref.is_file()
    assert len(toml_blocks(ref.read_text(encoding="utf-8"))) >= 5
    assert EXAMPLES, "no examples/*.toml found"


def test_block_finder() -> None:
    text = "\n".join([
        "intro",
        "```toml",
        "[engine]",
        "```",
        "```text",
        "not = [toml",
        "```",
        "  ~~~~ toml",
        "  [[rules]]",
        "  ```",
        "  ~~~~",
        "````toml",
        "```",
        "````",
    ])
    assert toml_blocks(text) == [(2, "[engine]\n"), (8, "[[rules]]\n```\n"), (12, "```\n")]
