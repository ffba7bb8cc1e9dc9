"""Fuzzing rules files: mutated valid files raise nothing but RulesError, quickly.

The seeds are the repository's own rules files. A mutation deletes, duplicates or swaps
characters, inserts tokens (operators, keywords, brackets, quotes, huge numbers, unicode),
nests deeply, truncates, or adds random keys and values. ``load_rules`` (parse and check, no
compile) must return a RuleSet or raise RulesError, within a bounded time. A smaller part
compiles the survivors of number and duration mutations (the values the compiler turns into
code) and runs a few events through them.

CI runs a fixed, derandomized set of examples (a few seconds). For a long exploration:
``SEGENGINE_FUZZ_EXAMPLES=10000 python -m pytest -q tests/test_fuzz_rules.py -k load`` (random).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from segengine import Engine, RulesError
from segengine.rules.load import RuleSet, load_rules

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [ROOT / "tests" / "rules" / "golden.toml", ROOT / "tests" / "rules" / "live_room_v2.toml",
         *sorted((ROOT / "examples").glob("*.toml"))]
SEED_TEXTS = [p.read_text(encoding="utf-8") for p in SEEDS if not p.name.endswith(".test.toml")]

LONG_RUN = int(os.environ.get("SEGENGINE_FUZZ_EXAMPLES", "0"))


def _settings(n: int):
    if LONG_RUN:
        return settings(max_examples=LONG_RUN, deadline=None, database=None,
                        suppress_health_check=list(HealthCheck))
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


TOKENS = [
    "(", ")", "[", "]", "{", "}", "=", "==", "!=", "<", ">=", "and", "or", "not", "in", "not in", ",", "|", ".", "-",
    "+", "*", "/", '"', "'", '"""', "'''", "\\", "\n", "#", " ", "\t", "[[rules]]", "[segments]", "[engine]",
    "[profile]", "0", "-1", "1.5", "1e400", "1e308", "-1e308", "99999999999999999999", "9" * 400, "0.0000001",
    "1e400m", "1e308d", "99999999999d", "0ms", "1ms", "36500d", "36501d", "inf", "nan", "-inf", "true", "false",
    "present", "dwell", "count(like, 1m)", "count(view|like)", "since(like)", "sum(price, pay, 1m)",
    "avg(amount, pay, 99999999999999999999d)", "interest(snacks)", "tag(x)", "event.price", "event.nope",
    "top_interest", "now", "é", "中", "\u200b", "\x00", "\x7f", "\ud800", "\U0001f600", "{dwell}", "{", "}}",
]
KEYS = ["name", "when", "then", "on", "params", "cooldown", "once", "budget", "priority", "enabled", "idle_timeout",
        "categories", "interest_half_life", "types", "retention", "x", "a.b", '"quoted key"', "rules", "segments"]
VALUES = ['"x"', '"present"', '"90s"', '"99999999999999999999d"', '"50000000/1m"', '"1/1e400s"', '"0/1m"', "1e400",
          "-1", "0", "nan", "inf", "true", "[]", '["like", "nope"]', "[1, 2]", "{}", '{ a = "{dwell}" }',
          '"' + "(" * 100 + "present" + ")" * 100 + '"', '"' + " and ".join(["present"] * 300) + '"',
          '"' + "not " * 100 + 'present"', "9223372036854775808", "-9223372036854775809", "1979-05-27T07:32:00Z"]

_pos = st.floats(0, 1, allow_nan=False)
#: Mutations, weighted towards those that reach the checker and the compiler (most random
#: edits break the TOML syntax, which is checked first).
OPS = ["delete", "duplicate", "swap", "insert", "insert", "nest", "nest", "line", "line", "truncate", "number", "number",
       "value", "value"]


@st.composite
def mutated(draw) -> str:
    text = draw(st.sampled_from(SEED_TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        n = len(text)
        at = min(n, int(draw(_pos) * n))
        op = draw(st.sampled_from(OPS))
        if op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)):]
        elif op == "duplicate":
            k = draw(st.integers(1, 200))
            text = text[:at + k] + text[at:at + k] + text[at + k:]
        elif op == "swap" and n > 1:
            other = min(n - 1, int(draw(_pos) * n))
            a, b = sorted((min(at, n - 1), other))
            text = text[:a] + text[b] + text[a + 1:b] + text[a] + text[b + 1:]
        elif op == "insert":
            text = text[:at] + draw(st.sampled_from(TOKENS)) + text[at:]
        elif op == "nest":  # deep nesting inside some expression string
            k = draw(st.sampled_from([300, 10, 31, 32, 33, 100, 1000]))
            opener = draw(st.sampled_from(["(", "not ", "-", "not ("]))
            closer = ")" if "(" in opener else ""
            m = list(re.finditer(r'(when|[a-z_]+) = "([^"\n]+)"', text))
            if m:
                hit = m[draw(st.integers(0, len(m) - 1))]
                inner = hit.group(2)
                text = text[:hit.start(2)] + opener * k + inner + closer * k + text[hit.end(2):]
        elif op == "line":  # a random key = value line
            line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
            start = line_starts[min(len(line_starts) - 1, int(draw(_pos) * len(line_starts)))]
            text = text[:start] + f"{draw(st.sampled_from(KEYS))} = {draw(st.sampled_from(VALUES))}\n" + text[start:]
        elif op == "truncate":
            text = text[:at]
        elif op == "number":  # replace a number with an extreme one
            m = list(re.finditer(r"\d+(\.\d+)?", text))
            if m:
                hit = m[draw(st.integers(0, len(m) - 1))]
                text = text[:hit.start()] + draw(st.sampled_from(TOKENS[37:57])) + text[hit.end():]
        else:  # replace a string value with a random one
            m = list(re.finditer(r'= ("[^"\n]*")', text))
            if m:
                hit = m[draw(st.integers(0, len(m) - 1))]
                text = text[:hit.start(1)] + draw(st.sampled_from(VALUES)) + text[hit.end(1):]
    return text


def _load(text: str) -> RuleSet | None:
    started = time.perf_counter()
    try:
        rs = load_rules(text, "fuzz.toml")
        rs.fingerprint  # what engines, reload and snapshots key the rules by
    except RulesError as err:
        for d in err.diagnostics:  # every error is placed and printable
            assert d.line >= 1 and d.col >= 1 and str(d).startswith(f"fuzz.toml:{d.line}:{d.col}: ")
        rs = None
    assert time.perf_counter() - started < 2.0, "loading a rules file must take bounded time"
    return rs


@_settings(300)
@given(mutated())
def test_load_mutated_rules_raises_only_rules_error(text):
    _load(text)


# --- compiling survivors ------------------------------------------------------------------

EXTREME = ["0", "1", "1e308", "1e-308", "99999999999999", "36500d", "1ms", "0.001s", "100000", "1e300"]
#: Small (a quick compile), with a number in every place the code generator turns into code.
NUMBERS = """
[engine]
idle_timeout = "90s"
interest_half_life = "10m"
retention = "7d"
categories = ["snacks"]

[[rules]]
name = "w"
on = ["like"]
when = "count(like, 1m) >= 3 and sum(price, view, 10m) > 5.5 and dwell > 2m and count(like) < 7"
then = "a"
params = { d = "{dwell * 2}" }
cooldown = "2m"
budget = "200/1m"

[[rules]]
name = "s"
when = "present and interest(snacks) > 0.5 and since(like) < 30s and total_dwell / 3 >= 1h"
then = "b"
"""
_NUM = r"(?<![\w.])\d+(\.\d+)?(?=[smhd]?\b)"


@st.composite
def number_mutated(draw) -> str:
    """``NUMBERS`` with some numbers (thresholds, windows, durations, budgets) made extreme."""
    text = NUMBERS
    for _ in range(draw(st.integers(1, 3))):
        spots = list(re.finditer(_NUM, text))
        hit = spots[draw(st.integers(0, len(spots) - 1))]
        text = text[:hit.start()] + draw(st.sampled_from(EXTREME)).rstrip("dms").rstrip(".") + text[hit.end():]
    return text


@_settings(2)
@given(number_mutated())
def test_compile_survivors_of_extreme_numbers(text):
    rs = _load(text)
    assume(rs is not None)
    engine = Engine(rs)
    for i, (typ, extra) in enumerate([("enter", {}), ("like", {}), ("view", {"price": 9.9e14, "category": "snacks"}),
                                      ("cart", {"item": "a", "price": 3.0}), ("pay", {"amount": 9.9e14}),
                                      ("comment", {"text": "hi"}), ("leave", {})]):
        engine.ingest({"type": typ, "viewer": "u1", "room": "r1", "ts": 1000.0 + 30 * i, **extra})
    engine.advance(1e6)
    engine.stats()
