"""Known-bad rules snippets and the exact diagnostics they must produce (lark's grammar-error table)."""

from __future__ import annotations

import pytest

from segengine import RulesError
from segengine.rules.load import load_rules

R = '[[rules]]\nname = "a"\nwhen = "{}"\nthen = "x"\n'

CASES = [
    # (id, rules text, [(line, col, message), ...])
    ("unknown-name", R.format("dwel > 5m"), [(3, 9, "unknown name 'dwel'; did you mean 'dwell'?")]),
    ("unknown-key", R.format("true") + 'cooldwn = "1m"\n', [(5, 1, "unknown key 'cooldwn' in a rule; did you mean 'cooldown'?")]),
    ("unknown-table", '[segmens]\na = "present"\n', [(1, 2, "unknown key 'segmens' in the rules file; did you mean 'segments'?")]),
    ("duplicate-rule", R.format("true") + "\n" + R.replace('"x"', '"y"').format("true"), [(7, 8, "duplicate rule name 'a' (first defined as rule 1)")]),
    ("segment-cycle", '[segments]\na = "b and present"\nb = "a or paid"\n', [(3, 6, "segment 'b' is part of a cycle: a -> b -> a")]),
    ("segment-self", '[segments]\na = "a and present"\n', [(2, 6, "segment 'a' refers to itself: a -> a")]),
    ("toml-syntax", '[[rules]]\nname = "a\nwhen = "true"\n', [(2, 10, "TOML syntax error: Illegal character '\\n'")]),
    ("str-vs-num", R.format("dwell > 'long'"), [(3, 9, "cannot compare a number with a string")]),
    ("count-unknown-type", R.format("count(lke, 1m) > 1"), [(3, 15, "unknown event type 'lke'; did you mean 'like'?")]),
    ("window-too-short", R.format("count(like, 500ms) > 1"), [(3, 21, "a window must be at least 1s")]),
    ("window-sub-ms", R.format("count(like, 1.0005s) > 1"), [(3, 21, "a window must be a whole number of milliseconds")]),
    ("bad-duration", '[engine]\nidle_timeout = "90 secs"\n',
     [(2, 16, "invalid duration '90 secs': expected a number and a unit (ms, s, m, h, d), e.g. \"90s\"")]),
    ("event-field-in-state-rule", R.format("event.price > 1"), [(3, 9, "event.FIELD is only available in event rules (rules with 'on')")]),
    ("category-value", '[profile]\nlevel = ["low", "high"]\n' + R.format("level == 'hgh'"),
     [(5, 18, "'hgh' is not a value of level; did you mean 'high'?")]),
    ("not-a-condition", R.format("dwell + 1"), [(3, 9, "a condition must be true or false, got a number")]),
    ("missing-then", '[[rules]]\nname = "a"\nwhen = "true"\n', [(1, 3, "rule 1 has no 'then'")]),
    ("unknown-function", R.format("cnt(like) > 1"), [(3, 9, "unknown function 'cnt'; did you mean 'count'?")]),
    ("single-equals", R.format("orders = 1"), [(3, 16, "unexpected '='; did you mean '=='?")]),
    ("chained-comparison", R.format("1 < orders < 3"), [(3, 20, "comparisons cannot be chained; join them with 'and'")]),
    ("window-needs-unit", R.format("count(like, 5) > 1"), [(3, 21, "a window needs a unit: write e.g. '5s'")]),
    ("unknown-category", '[engine]\ncategories = ["snacks"]\n' + R.format("interest(snack) > 1"),
     [(5, 18, "unknown category 'snack'; did you mean 'snacks'?")]),
    ("agg-field", R.format("sum(prize, pay, 1m) > 1"), [(3, 13, "sum() sums a number field: price or amount, not 'prize'; did you mean 'price'?")]),
    ("bad-on", '[[rules]]\nname = "a"\non = ["lik"]\nwhen = "true"\nthen = "x"\n', [(3, 7, "unknown event type 'lik'; did you mean 'like'?")]),
    ("bad-budget", R.format("true") + 'budget = "lots"\n', [(5, 10, "'budget' is \"N/DURATION\", e.g. \"200/1m\"")]),
    ("event-type-as-value", R.format("like > 1"), [(3, 9, "'like' is an event type, not a value: use count(like) or since(like)")]),
    ("multiline-string", '[[rules]]\nname = "a"\nwhen = """\npresent and\n  dwel > 5m"""\nthen = "x"\n',
     [(5, 3, "unknown name 'dwel'; did you mean 'dwell'?")]),
    ("every-error-at-once", '[engine]\nidle_timeout = "x"\n[[rules]]\nname = "a"\nwhen = "dwell >"\nthen = "x"\nonce = "sesion"\n', [
        (2, 16, "invalid duration 'x': expected a number and a unit (ms, s, m, h, d), e.g. \"90s\""),
        (5, 16, "expected a value, got end of expression"),
        (7, 8, "'once' is \"session\" or \"lifetime\"; did you mean 'session'?"),
    ]),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_snippet_reports_exact_positions_and_messages(text, expected):
    with pytest.raises(RulesError) as err:
        load_rules(text, "r.toml")
    got = [(d.line, d.col, d.message) for d in err.value.diagnostics]
    assert got == expected
    for d in err.value.diagnostics:
        assert str(d).startswith(f"r.toml:{d.line}:{d.col}: {d.message}")


def test_diagnostic_shows_the_source_line_and_a_caret_under_the_span():
    with pytest.raises(RulesError) as err:
        load_rules(R.format("carted and dwel > 5m"), "rules.toml")
    assert str(err.value) == (
        "rules.toml:3:20: unknown name 'dwel'; did you mean 'dwell'?\n"
        '    when = "carted and dwel > 5m"\n'
        "                       ^^^^"
    )
    assert isinstance(err.value, ValueError)


def test_columns_count_characters_not_bytes():
    text = '[segments]\n"\u76f4\u64ad" = "present"\n' + R.replace('"a"', '"\u89c4\u5219"').format("dwel > 1")
    with pytest.raises(RulesError) as err:
        load_rules(text, "r.toml")
    msgs = [(d.line, d.col, d.message) for d in err.value.diagnostics]
    assert (2, 1, "segment name '\u76f4\u64ad' must be a plain name (letters, digits, _)") in msgs
    assert (5, 9, "unknown name 'dwel'; did you mean 'dwell'?") in msgs


def test_valid_example_file_loads():
    from conftest import EXAMPLE
    from segengine.rules.load import load_rules_file
    rs = load_rules_file(EXAMPLE)
    assert [r.name for r in rs.rules] == ["cart_nudge", "hot_interest_coupon", "price_sensitive",
                                          "early_exit_risk", "welcome_back", "checkout_abandon"]
