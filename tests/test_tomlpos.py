"""Tests for segengine.rules.tomlpos: expected positions are worked out by hand."""

import re
import tomllib

from hypothesis import given, settings, strategies as st

from segengine.rules.tomlpos import index_toml

from conftest import examples

SAMPLE = """\
[engine]
idle_timeout = "90s"            # optional
categories = ["snacks", "beauty", "digital", "apparel"]   # for interest()
interest_half_life = "10m"      # optional

[profile]                       # attributes set with engine.set_profile()
age = "int"
city_tier = "int"
gender = ["female", "male", "unknown"]     # a list declares a category
level = ["low", "mid", "high"]             # spending power

[segments]                      # named conditions; usable in any expression
passerby = "present and dwell < 1m"
watcher  = "present and dwell >= 1m and not fan"
fan      = "(follows and orders >= 1) or orders >= 3"

[[rules]]
name = "cart_nudge"
when = "carted and not paid and dwell > 5m"
then = "nudge"
params = { template = "cart_reminder" }
once = "session"

[[rules]]
name = "hot_interest_coupon"
on = ["like", "comment", "click"]
when = "count(like|comment|click, 1m) >= 5 and not carted"
then = ["coupon", "tag:engaged"]
params = { pct = 10, item = "{event.item}" }
cooldown = "10m"
budget = "200/1m"
"""


# ---------------------------------------------------------------- the sample


def test_sample_parses_and_lines():
    tomllib.loads(SAMPLE)
    idx = index_toml(SAMPLE)
    assert idx.line_text(1) == "[engine]"
    # [engine] is line 1, so the first rule's `when` is on line 19.
    assert idx.line_text(19) == 'when = "carted and not paid and dwell > 5m"'
    assert idx.line_text(0) == "" and idx.line_text(999) == ""


def test_sample_tables_and_keys():
    idx = index_toml(SAMPLE)
    assert idx.key(("engine",)) == (1, 2)
    assert idx.value(("engine",)) == (1, 1)
    assert idx.key(("engine", "idle_timeout")) == (2, 1)
    assert idx.value(("engine", "idle_timeout")) == (2, 16)
    assert idx.key(("segments", "fan")) == (15, 1)
    assert idx.value(("segments", "fan")) == (15, 12)
    assert idx.value(("segments", "watcher")) == (14, 12)
    assert idx.key(("profile", "gender")) == (9, 1)
    assert idx.value(("profile", "gender", 2)) == (9, 29)


def test_sample_array_of_tables():
    idx = index_toml(SAMPLE)
    assert idx.key(("rules",)) == (17, 3)
    assert idx.value(("rules",)) is None
    assert idx.key(("rules", 0)) == (17, 3)
    assert idx.value(("rules", 0)) == (17, 1)
    assert idx.key(("rules", 1)) == (24, 3)
    assert idx.key(("rules", 2)) is None
    assert idx.key(("rules", 0, "when")) == (19, 1)
    assert idx.value(("rules", 0, "when")) == (19, 8)
    assert idx.string_pos(("rules", 0, "when"), 0) == (19, 9)
    assert idx.string_pos(("rules", 0, "when"), 7) == (19, 16)  # "and"


def test_sample_strings_arrays_inline_tables():
    idx = index_toml(SAMPLE)
    cats = ("engine", "categories")
    assert idx.value(cats) == (3, 14)
    assert idx.value(cats + (0,)) == (3, 15)
    assert idx.value(cats + (2,)) == (3, 35)
    assert idx.key(cats + (2,)) is None
    assert idx.string_pos(cats + (3,), 0) == (3, 47)
    assert idx.string_pos(("engine", "idle_timeout"), 3) == (2, 20)  # closing quote
    assert idx.string_pos(("engine", "idle_timeout"), 4) is None
    assert idx.string_pos(("engine", "idle_timeout"), -1) is None

    assert idx.value(("rules", 0, "params")) == (21, 10)
    assert idx.key(("rules", 0, "params", "template")) == (21, 12)
    assert idx.value(("rules", 0, "params", "template")) == (21, 23)
    assert idx.key(("rules", 1, "params", "pct")) == (29, 12)
    assert idx.value(("rules", 1, "params", "pct")) == (29, 18)
    assert idx.value(("rules", 1, "params", "item")) == (29, 29)
    assert idx.value(("rules", 1, "then", 0)) == (28, 9)
    assert idx.value(("rules", 1, "then", 1)) == (28, 19)
    assert idx.key(("rules", 1, "then", 1)) is None


def test_sample_keys_under():
    idx = index_toml(SAMPLE)
    assert idx.keys_under(()) == ["engine", "profile", "segments", "rules"]
    assert idx.keys_under(("rules", 0)) == ["name", "when", "then", "params", "once"]
    assert idx.keys_under(("rules", 1)) == [
        "name", "on", "when", "then", "params", "cooldown", "budget"]
    assert idx.keys_under(("rules", 1, "params")) == ["pct", "item"]
    assert idx.keys_under(("engine",)) == [
        "idle_timeout", "categories", "interest_half_life"]
    assert idx.keys_under(("rules",)) == []  # an array, not a table
    assert idx.keys_under(("nope",)) == []


def test_unknown_paths_return_none():
    idx = index_toml(SAMPLE)
    assert idx.key(("nope",)) is None
    assert idx.value(("engine", "nope")) is None
    assert idx.value(("engine", "categories", 9)) is None
    assert idx.string_pos(("engine", "categories"), 0) is None  # not a string
    assert idx.string_pos(("rules", 1, "params", "pct"), 0) is None
    assert idx.string_pos(("x", 0, "y"), 0) is None


# ------------------------------------------------------- every TOML construct

CONSTRUCTS = """\
# leading comment
title = 'literal \\n no escape'     # literal string
"my key" = 1
'x' = 2
a.b = true
a . "c d" . e = 1979-05-27T07:32:00Z
esc = "tab\\there \\"q\\" \\u00e9\\U0001F600!"
ml = \"\"\"
first\\tline
  second \\
     third\"\"\"
mll = '''
raw \\n ''line'''''
nums = [ 1, 2.5e3, -inf, 0x1F, 1979-05-27 07:32:00 ]
when = 07:32:00

[server.http]
host = "h"
nested = { inner = { deep = [1, { z = "zz" }] }, k = 'v' }
multi = [
    "one",   # comment, with comma
    [ "two", 'three' ],
    { name = "four" },
]

[[fruit]]
name = "apple"
[fruit.physical]
color = "red"
[[fruit.variety]]
name = "red delicious"
[[fruit.variety]]
name = "granny"

[[fruit]]
name = "banana"
[[fruit.variety]]
name = "plantain"
"""


def test_constructs_decode_as_expected():
    data = tomllib.loads(CONSTRUCTS)
    assert data["title"] == "literal \\n no escape"
    assert data["esc"] == 'tab\there "q" \u00e9\U0001F600!'
    assert data["ml"] == "first\tline\n  second third"
    assert data["mll"] == "raw \\n ''line''"
    assert len(data["nums"]) == 5


def test_quoted_and_dotted_keys():
    idx = index_toml(CONSTRUCTS)
    assert idx.key(("my key",)) == (3, 1)
    assert idx.value(("my key",)) == (3, 12)
    assert idx.key(("x",)) == (4, 1)
    assert idx.value(("x",)) == (4, 7)
    assert idx.key(("a",)) == (5, 1)  # first mention
    assert idx.value(("a",)) is None  # implicit table
    assert idx.key(("a", "b")) == (5, 3)
    assert idx.value(("a", "b")) == (5, 7)
    assert idx.key(("a", "c d")) == (6, 5)
    assert idx.key(("a", "c d", "e")) == (6, 13)
    assert idx.value(("a", "c d", "e")) == (6, 17)
    assert idx.keys_under(("a",)) == ["b", "c d"]
    assert idx.keys_under(()) == [
        "title", "my key", "x", "a", "esc", "ml", "mll", "nums", "when",
        "server", "fruit"]


def test_literal_string():
    idx = index_toml(CONSTRUCTS)
    assert idx.value(("title",)) == (2, 9)
    assert idx.string_pos(("title",), 0) == (2, 10)
    assert idx.string_pos(("title",), 8) == (2, 18)  # the backslash, not an escape
    assert idx.string_pos(("title",), 9) == (2, 19)
    assert idx.string_pos(("title",), 20) == (2, 30)  # closing quote


def test_escapes_shift_columns():
    idx = index_toml(CONSTRUCTS)
    path = ("esc",)
    assert idx.value(path) == (7, 7)
    expected = {0: 8, 2: 10, 3: 11, 4: 13, 8: 17, 9: 18, 10: 20, 11: 21,
                12: 23, 13: 24, 14: 30, 15: 40, 16: 41}
    for offset, col in expected.items():
        assert idx.string_pos(path, offset) == (7, col), offset
    assert idx.string_pos(path, 17) is None


def test_multiline_basic_string():
    idx = index_toml(CONSTRUCTS)
    path = ("ml",)
    assert idx.value(path) == (8, 6)
    assert idx.string_pos(path, 0) == (9, 1)  # newline after """ is trimmed
    assert idx.string_pos(path, 5) == (9, 6)  # \t
    assert idx.string_pos(path, 6) == (9, 8)
    assert idx.string_pos(path, 9) == (9, 11)
    assert idx.string_pos(path, 10) == (9, 12)  # the newline itself
    assert idx.string_pos(path, 11) == (10, 1)
    assert idx.string_pos(path, 19) == (10, 9)
    assert idx.string_pos(path, 20) == (11, 6)  # after the line-ending backslash
    assert idx.string_pos(path, 24) == (11, 10)
    assert idx.string_pos(path, 25) == (11, 11)  # closing delimiter


def test_multiline_literal_string_with_extra_quotes():
    idx = index_toml(CONSTRUCTS)
    path = ("mll",)
    assert idx.value(path) == (12, 7)
    assert idx.string_pos(path, 0) == (13, 1)
    assert idx.string_pos(path, 4) == (13, 5)
    assert idx.string_pos(path, 13) == (13, 14)  # content quotes come first
    assert idx.string_pos(path, 14) == (13, 15)
    assert idx.string_pos(path, 15) == (13, 16)  # the last three close it


def test_numbers_booleans_dates():
    idx = index_toml(CONSTRUCTS)
    assert [idx.value(("nums", i)) for i in range(5)] == [
        (14, 10), (14, 13), (14, 20), (14, 26), (14, 32)]
    assert idx.value(("nums", 5)) is None
    assert idx.value(("when",)) == (15, 8)
    assert idx.string_pos(("nums", 0), 0) is None


def test_dotted_header_and_nested_inline_tables():
    idx = index_toml(CONSTRUCTS)
    assert idx.key(("server",)) == (17, 2)
    assert idx.value(("server",)) is None
    assert idx.key(("server", "http")) == (17, 9)
    assert idx.value(("server", "http")) == (17, 1)
    nested = ("server", "http", "nested")
    assert idx.value(nested) == (19, 10)
    assert idx.key(nested + ("inner",)) == (19, 12)
    assert idx.value(nested + ("inner",)) == (19, 20)
    assert idx.key(nested + ("inner", "deep")) == (19, 22)
    assert idx.value(nested + ("inner", "deep")) == (19, 29)
    assert idx.value(nested + ("inner", "deep", 0)) == (19, 30)
    assert idx.value(nested + ("inner", "deep", 1)) == (19, 33)
    assert idx.key(nested + ("inner", "deep", 1, "z")) == (19, 35)
    assert idx.value(nested + ("inner", "deep", 1, "z")) == (19, 39)
    assert idx.string_pos(nested + ("inner", "deep", 1, "z"), 1) == (19, 41)
    assert idx.key(nested + ("k",)) == (19, 50)
    assert idx.value(nested + ("k",)) == (19, 54)
    assert idx.keys_under(nested) == ["inner", "k"]
    assert idx.keys_under(("server", "http")) == ["host", "nested", "multi"]


def test_multiline_array_with_comments_and_trailing_comma():
    idx = index_toml(CONSTRUCTS)
    multi = ("server", "http", "multi")
    assert idx.value(multi) == (20, 9)
    assert idx.value(multi + (0,)) == (21, 5)
    assert idx.string_pos(multi + (0,), 3) == (21, 9)
    assert idx.value(multi + (1,)) == (22, 5)
    assert idx.value(multi + (1, 0)) == (22, 7)
    assert idx.value(multi + (1, 1)) == (22, 14)
    assert idx.value(multi + (2,)) == (23, 5)
    assert idx.key(multi + (2, "name")) == (23, 7)
    assert idx.value(multi + (2, "name")) == (23, 14)
    assert idx.value(multi + (3,)) is None


def test_nested_array_of_tables():
    idx = index_toml(CONSTRUCTS)
    assert idx.key(("fruit",)) == (26, 3)
    assert idx.key(("fruit", 0)) == (26, 3)
    assert idx.value(("fruit", 0)) == (26, 1)
    assert idx.key(("fruit", 0, "physical")) == (28, 8)
    assert idx.value(("fruit", 0, "physical", "color")) == (29, 9)
    assert idx.key(("fruit", 0, "variety", 0)) == (30, 9)
    assert idx.value(("fruit", 0, "variety", 0, "name")) == (31, 8)
    assert idx.key(("fruit", 0, "variety", 1)) == (32, 9)
    assert idx.value(("fruit", 0, "variety", 1, "name")) == (33, 8)
    assert idx.key(("fruit", 1)) == (35, 3)
    assert idx.value(("fruit", 1, "name")) == (36, 8)
    assert idx.key(("fruit", 1, "variety", 0)) == (37, 9)
    assert idx.value(("fruit", 1, "variety", 0, "name")) == (38, 8)
    assert idx.keys_under(("fruit", 0)) == ["name", "physical", "variety"]
    assert idx.keys_under(("fruit", 1)) == ["name", "variety"]


# ------------------------------------------------ line endings, tabs, unicode


def test_crlf_gives_same_positions_as_lf():
    crlf = SAMPLE.replace("\n", "\r\n")
    assert tomllib.loads(crlf) == tomllib.loads(SAMPLE)
    idx = index_toml(crlf)
    assert idx.line_text(19) == 'when = "carted and not paid and dwell > 5m"'
    assert idx.string_pos(("rules", 0, "when"), 0) == (19, 9)
    assert idx.value(("rules", 1, "params", "item")) == (29, 29)
    assert idx.keys_under(("rules", 0)) == ["name", "when", "then", "params", "once"]


def test_crlf_inside_multiline_string():
    text = 's = """\r\nab\r\ncd"""\r\nt = 1\r\n'
    assert tomllib.loads(text)["s"] == "ab\ncd"
    idx = index_toml(text)
    assert idx.string_pos(("s",), 0) == (2, 1)
    assert idx.string_pos(("s",), 2) == (2, 3)  # the newline
    assert idx.string_pos(("s",), 3) == (3, 1)
    assert idx.string_pos(("s",), 5) == (3, 3)
    assert idx.value(("t",)) == (4, 5)
    assert idx.line_text(2) == "ab"


def test_tab_is_one_column():
    text = '\tname\t=\t"x\ty"  # c\n'
    assert tomllib.loads(text) == {"name": "x\ty"}
    idx = index_toml(text)
    assert idx.key(("name",)) == (1, 2)
    assert idx.value(("name",)) == (1, 9)
    assert idx.string_pos(("name",), 1) == (1, 11)
    assert idx.string_pos(("name",), 2) == (1, 12)
    assert idx.string_pos(("name",), 3) == (1, 13)


def test_non_ascii_columns_count_characters():
    # Bare keys are ASCII-only in TOML 1.0, so the non-ASCII keys are quoted.
    text = ('"名前" = "héllo 😀 wörld"  # 注释\n'
            "\"ключ\" = 'значение'\n"
            '"\\u00e9t\\u00e9" = 0\n')
    assert tomllib.loads(text) == {
        "名前": "héllo 😀 wörld", "ключ": "значение", "été": 0}
    idx = index_toml(text)
    assert idx.key(("名前",)) == (1, 1)
    assert idx.value(("名前",)) == (1, 8)
    assert idx.string_pos(("名前",), 6) == (1, 15)
    assert idx.line_text(1)[15 - 1] == "😀"
    assert idx.string_pos(("名前",), 9) == (1, 18)
    assert idx.string_pos(("名前",), 13) == (1, 22)
    assert idx.key(("ключ",)) == (2, 1)
    assert idx.value(("ключ",)) == (2, 10)
    assert idx.string_pos(("ключ",), 0) == (2, 11)
    assert idx.key(("été",)) == (3, 1)
    assert idx.value(("été",)) == (3, 19)


# ---------------------------------------------------------- property test

SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
                 "\r": "\\r", '"': '\\"', "\\": "\\\\"}
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

chars = st.one_of(
    st.characters(exclude_categories=("Cs",)),
    st.sampled_from(list("\"'\\\n\t\r é中😀\x7f\x00 ")),
)
texts = st.text(chars, max_size=12)


def is_control(ch):
    return ch == "\x7f" or (ord(ch) < 0x20 and ch != "\t")


def escape(draw, ch):
    form = draw(st.sampled_from(["short", "u", "U"]))
    if form == "short" and ch in SHORT_ESCAPES:
        return SHORT_ESCAPES[ch]
    if form == "U" or ord(ch) > 0xFFFF:
        return "\\U%08X" % ord(ch)
    return draw(st.sampled_from(["\\u%04X", "\\u%04x"])) % ord(ch)


def dump_basic(draw, s):
    pieces = [escape(draw, c) if c in '"\\' or is_control(c) or draw(st.booleans())
              else c for c in s]
    return '"' + "".join(pieces) + '"', pieces


def dump_string(draw, s, newline):
    """Encode `s` in a random TOML string style: (source, encoding of each char)."""
    literal_ok = not any(is_control(c) or c == "'" for c in s)
    ml_literal_ok = "'''" not in s and not any(is_control(c) and c != "\n" for c in s)
    styles = ["basic", "ml_basic"] + ["literal"] * literal_ok + ["ml_literal"] * ml_literal_ok
    style = draw(st.sampled_from(styles))
    if style == "basic":
        return dump_basic(draw, s)
    if style == "literal":
        return "'" + s + "'", list(s)
    if style == "ml_literal":
        pieces = [newline if c == "\n" else c for c in s]
        lead = newline if s.startswith("\n") or draw(st.booleans()) else ""
        return "'''" + lead + "".join(pieces) + "'''", pieces
    # Multi-line basic: raw newlines allowed; quotes escaped except up to two at
    # the very end (which TOML reads as content before the closing delimiter).
    raw_tail = len(s) - len(s.rstrip('"'))
    raw_tail = min(raw_tail, 2) if draw(st.booleans()) else 0
    pieces = []
    for i, c in enumerate(s):
        if i >= len(s) - raw_tail:
            pieces.append(c)
        elif c == "\n" and draw(st.booleans()):
            pieces.append(newline)
        elif c in '"\\' or (is_control(c) and c != "\n") or draw(st.booleans()):
            pieces.append(escape(draw, c))
        else:
            pieces.append(c)
    body = ""
    for i, piece in enumerate(pieces):
        # A line-ending backslash also eats the blanks after it, so only put
        # one where the next piece does not start with a blank.
        if piece[0] not in " \t\r\n" and draw(st.booleans()):
            body += "\\" + draw(st.sampled_from(["", " ", "\t "])) + newline + "   "
        body += piece
    lead = newline if body.startswith(("\n", "\r\n")) or draw(st.booleans()) else ""
    return '"""' + lead + body + '"""', pieces


def dump_key(draw, key):
    if BARE_KEY.fullmatch(key) and draw(st.booleans()):
        return key
    if not any(is_control(c) or c == "'" for c in key) and draw(st.booleans()):
        return "'" + key + "'"
    return dump_basic(draw, key)[0]


def offset_of(text, line_col):
    line, col = line_col
    starts = [0]
    for line_text in text.split("\n"):
        starts.append(starts[-1] + len(line_text) + 1)
    return starts[line - 1] + col - 1


keys = st.text(chars, max_size=6)
values = st.one_of(texts, st.lists(texts, max_size=3))
documents = st.dictionaries(
    keys, st.one_of(values, st.dictionaries(keys, values, max_size=4)), max_size=4)


@settings(max_examples=examples(150), deadline=None)
@given(documents, st.sampled_from(["\n", "\r\n"]), st.data())
def test_string_positions_property(doc, newline, data):
    draw = data.draw
    lines = []
    strings = {}  # path -> encoding of each decoded char
    key_tokens = {}  # path -> encoded key as written

    def emit_value(path, value):
        if isinstance(value, str):
            source, strings[path] = dump_string(draw, value, newline)
            return source
        items = [emit_value(path + (i,), item) for i, item in enumerate(value)]
        sep = draw(st.sampled_from([", ", "," + newline + "  ", " ,\t"]))
        return "[" + sep.join(items) + (",]" if items and draw(st.booleans()) else "]")

    def emit_pairs(table, pairs):
        for key, value in pairs:
            key_tokens[table + (key,)] = token = dump_key(draw, key)
            eq = draw(st.sampled_from([" = ", "=", "\t=\t"]))
            comment = draw(st.sampled_from(["", "  # é, ]", "\t#"]))
            lines.append(token + eq + emit_value(table + (key,), value) + comment)

    emit_pairs((), [(k, v) for k, v in doc.items() if not isinstance(v, dict)])
    for name, table in doc.items():
        if isinstance(table, dict):
            key_tokens[(name,)] = token = dump_key(draw, name)
            lines.append("[" + token + "]")
            emit_pairs((name,), table.items())
    text = newline.join(lines) + newline

    parsed = tomllib.loads(text)
    assert parsed == doc
    idx = index_toml(text)

    for path, token in key_tokens.items():
        assert text.startswith(token, offset_of(text, idx.key(path))), path
    assert idx.keys_under(()) == list(parsed)
    for name, table in parsed.items():
        if isinstance(table, dict):
            assert idx.keys_under((name,)) == list(table)

    for path, pieces in strings.items():
        for offset, piece in enumerate(pieces):
            pos = idx.string_pos(path, offset)
            assert pos is not None, (path, offset)
            assert text.startswith(piece, offset_of(text, pos)), (path, offset, piece)
        closing = text[offset_of(text, idx.string_pos(path, len(pieces)))]
        assert closing in "\"'", path
        assert idx.string_pos(path, len(pieces) + 1) is None
        assert text[offset_of(text, idx.value(path))] in "\"'"
