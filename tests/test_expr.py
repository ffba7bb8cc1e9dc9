"""Parser, checker and folding of the expression language (SPEC §4)."""

from __future__ import annotations

import pytest

from segengine.rules import ast
from segengine.rules.check import CheckContext, check_expr, fold
from segengine.rules.expr import ExprError, parse_duration, parse_expr
from segengine.schema.events import BUILTIN_TYPES, EVENT_FIELDS


def src(text: str) -> str:
    return ast.to_source(parse_expr(text))


@pytest.mark.parametrize("text,expected", [
    ("a or b and c", "a or b and c"),
    ("(a or b) and c", "(a or b) and c"),
    ("not a and b", "not a and b"),
    ("1 + 2 * 3 > 4", "1 + 2 * 3 > 4"),
    ("(1 + 2) * 3 > 4", "(1 + 2) * 3 > 4"),
    ("-dwell < -1", "-dwell < -1"),
    ("x in [1, 2]", "x in [1, 2]"),
    ("x not in ['a']", "x not in ['a']"),
    ("count(like|comment, 1m) >= 5", "count(like|comment, 1m) >= 5"),
    ("count(like)", "count(like)"),
    ("avg(price, view, 10m)", "avg(price, view, 10m)"),
    ("since(like|click)", "since(like|click)"),
    ("interest(digital) > 0.5", "interest(digital) > 0.5"),
    ("tag(vip)", "tag(vip)"),
    ("event.item == \"x\"", "event.item == 'x'"),
])
def test_precedence_and_round_trip(text, expected):
    assert src(text) == expected


@pytest.mark.parametrize("text,seconds", [("500ms", 0.5), ("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1.5m", 90)])
def test_duration_literals_are_seconds(text, seconds):
    node = parse_expr(text)
    assert isinstance(node, ast.Num) and node.value == seconds and node.is_duration
    assert parse_duration(text) == seconds


def test_spans_point_inside_the_expression():
    node = parse_expr("carted and dwell > 5m")
    assert node.span == (0, 21)
    cmp = node.right
    assert cmp.span == (11, 21) and cmp.left.span == (11, 16) and cmp.right.span == (19, 21)


@pytest.mark.parametrize("text,message,span", [
    ("", "empty expression", (0, 1)),
    ("dwell >", "expected a value, got end of expression", (7, 8)),
    ("dwell > 5 5", "expected an operator or the end of the expression, got '5'", (10, 11)),
    ("dwell paid", "unexpected name 'paid': missing 'and' or 'or'?", (6, 10)),
    ("(dwell > 1", "expected ')' to close '(', got end of expression", (10, 11)),
    ("'abc", "unterminated string", (0, 4)),
    ("a & b", "unexpected '&'; use 'and'", (2, 3)),
    ("5x > 1", "unknown duration unit 'x' (units: ms, s, m, h, d)", (1, 2)),
])
def test_parse_errors_have_messages_and_spans(text, message, span):
    with pytest.raises(ExprError) as err:
        parse_expr(text)
    assert (err.value.message, err.value.span) == (message, span)


def _ctx(**kw) -> CheckContext:
    return CheckContext(frozenset(BUILTIN_TYPES), ("snacks", "digital"), {"age": "num", "level": ("low", "high")},
                        event_fields=EVENT_FIELDS, **kw)


@pytest.mark.parametrize("text,typ", [
    ("dwell", "num"), ("present", "bool"), ("top_interest", "str"), ("level", "str"), ("age + 1", "num"),
    ("count(like, 1m) >= 5", "bool"), ("interest(snacks) * 2", "num"), ("level in ['low', 'high']", "bool"),
])
def test_checker_infers_types(text, typ):
    errors: list = []
    node = parse_expr(text)
    assert check_expr(node, _ctx(), errors, want=None) == typ
    assert errors == []


@pytest.mark.parametrize("text,message", [
    ("dwell and paid", "'and' needs a condition (true/false), got a number"),
    ("not dwell", "'not' needs a condition (true/false), got a number"),
    ("paid + 1 > 0", "'+' needs a number, got a condition (true/false)"),
    ("level > 'low'", "'>' needs a number, got a string"),
    ("level in ['low', 3]", "list item is a number but the value tested is a string"),
    ("top_interest == 'toys'", "'toys' is not a value of top_interest"),
    ("count", "count is a function: call it, e.g. count(...)"),
])
def test_checker_type_errors(text, message):
    errors: list = []
    check_expr(parse_expr(text), _ctx(), errors, want=None)
    assert message in [e.message for e in errors]


@pytest.mark.parametrize("text,folded", [
    ("1 + 2 * 3 > 6", "true"), ("5m > 2m and present", "present"), ("false or paid", "paid"),
    ("not true or paid", "paid"), ("true and false", "false"), ("dwell > 60 * 5", "dwell > 300"),
    ("'a' == 'a'", "true"),
])
def test_constant_folding(text, folded):
    node = parse_expr(text)
    check_expr(node, _ctx(), [], want=None)
    assert ast.to_source(fold(node)) == folded
