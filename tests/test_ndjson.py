"""The Numba NDJSON scanner (segengine.schema.ndjson) against msgspec, the reference it must mirror.

Contract under test: ``scan_ndjson`` returns columns only when ``decode_ndjson(data,
fallback=False)`` succeeds and ``check_decoded`` accepts every event, and then the columns
hold exactly what the decoded events hold; otherwise it returns ``None``. It may also
return ``None`` for valid but unusual input, never for the common forms.
"""

from __future__ import annotations

import json
import math
import random

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from segengine.schema.events import BUILTIN_TYPES, ROOM_TYPES, decode_ndjson, check_decoded
from segengine.schema.ndjson import Scanned, scan_ndjson
from segengine.testing.simulate import CATEGORIES, generate_ndjson

from conftest import examples

TYPES = list(BUILTIN_TYPES)
CATS = list(CATEGORIES)
KNOWN = frozenset(TYPES)
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- the oracle ------------------------------------------------------------------------------------
def decoded(data: bytes, types=TYPES):
    """The events msgspec + check_decoded accept, or None if any line is rejected."""
    try:
        events = decode_ndjson(data, fallback=False)
        for ev in events:
            check_decoded(ev, frozenset(types))
    except Exception:  # EventError, and UnicodeDecodeError for invalid UTF-8 in a string field
        return None
    return events


def bits(x) -> int:
    return int(np.float64(x).view(np.int64))


def assert_matches(sc: Scanned, events, types=TYPES, cats=CATS) -> None:
    n = len(events)
    assert sc.n == n
    for name in ("type", "ts", "viewer", "viewer_absent", "room", "item", "text", "category", "price", "amount"):
        assert getattr(sc, name).shape == (n,), name
    str_viewers = sc.viewer_uniques is not None
    for r, ev in enumerate(events):
        where = (r, ev)
        assert types[sc.type[r]] == ev.type, where
        assert type(ev.ts) is float and bits(sc.ts[r]) == bits(ev.ts), where
        if ev.viewer is None:
            assert sc.viewer_absent[r] and sc.viewer[r] == -1, where
        else:
            assert not sc.viewer_absent[r], where
            if str_viewers:
                assert type(ev.viewer) is str and sc.viewer_uniques[sc.viewer[r]] == ev.viewer, where
            else:
                assert type(ev.viewer) is int and sc.viewer[r] == ev.viewer, where
        assert sc.room_uniques[sc.room[r]] == ev.room, where
        for name in ("item", "text"):
            value, code = getattr(ev, name), getattr(sc, name)[r]
            if value is None:
                assert code == -1, where
            else:
                assert getattr(sc, name + "_uniques")[code] == value, where
        want = 0 if ev.category is None else (cats.index(ev.category) + 1 if ev.category in cats else -1)
        assert sc.category[r] == want, where
        for name in ("price", "amount"):
            value, got = getattr(ev, name), getattr(sc, name)[r]
            if value is None:
                assert math.isnan(got), where
            else:
                assert type(value) is float and bits(got) == bits(value), where
    for name in ("viewer", "room", "item", "text"):  # codes point into the uniques, all used
        uniques = getattr(sc, name + "_uniques")
        if uniques is None:
            continue
        codes = getattr(sc, name)
        used = codes[codes >= 0] if name != "viewer" else codes[~sc.viewer_absent]
        assert sorted(set(used.tolist())) == list(range(len(uniques))), name


def check(data: bytes, types=TYPES, rooms=ROOM_TYPES, cats=CATS, must_scan: bool = False) -> Scanned | None:
    """Scan ``data`` and hold the result to the contract; returns the Scanned (or None)."""
    events = decoded(data, types)
    sc = scan_ndjson(data, types, rooms, cats)
    if events is None:
        assert sc is None, "scanned input that msgspec or check_decoded rejects"
        return None
    if must_scan:
        assert sc is not None, "gave up on a common valid form"
    if sc is not None:
        assert_matches(sc, events, list(types), list(cats))
    return sc


def line(**fields) -> bytes:
    return msgspec.json.encode(fields)


VIEW = {"type": "view", "viewer": 6, "room": "r1", "ts": 1700000007.851, "item": "i196", "category": "beauty",
        "price": 114.1}
START = {"type": "live_start", "room": "r1", "ts": 1700000000.0}


# --- the simulator's workload ----------------------------------------------------------------------
@pytest.fixture(scope="module", params=[(0, "int"), (1, "int"), (0, "str"), (2, "str")], ids=str)
def workload(request) -> bytes:
    seed, ids = request.param
    return generate_ndjson(viewers=300, hours=0.3, rooms=2, seed=seed, viewer_ids=ids)


def test_workload_matches_msgspec(workload):
    sc = check(workload, must_scan=True)
    assert sc.n == workload.count(b"\n") > 1000
    assert (sc.viewer_uniques is None) == (b'"viewer":"' not in workload)
    assert sc.text_uniques and sc.item_uniques and len(sc.room_uniques) == 2


def test_workload_reformatted(workload):
    """CRLF, JSON whitespace everywhere, keys in another order, unknown keys: same columns."""
    rng = random.Random(7)
    out = []
    for raw in workload.splitlines():
        obj = json.loads(raw)
        items = list(obj.items())
        rng.shuffle(items)
        if rng.random() < 0.2:
            items.insert(rng.randrange(len(items) + 1), ("extra", rng.choice([1, "x", [1, {"a": None}], {}, True])))
        text = json.dumps(dict(items), separators=rng.choice([(",", ":"), (", ", ": "), (" ,\t", " :\t")]),
                          ensure_ascii=rng.random() < 0.5)
        out.append(" " * rng.randrange(3) + text + " \t"[rng.randrange(2)] * rng.randrange(2))
    data = "\r\n".join(out).encode() + b"\r\n"
    sc = check(data, must_scan=True)
    ref = scan_ndjson(workload, TYPES, ROOM_TYPES, CATS)
    for name in ("type", "ts", "viewer", "viewer_absent", "category", "price", "amount"):
        assert np.array_equal(getattr(sc, name), getattr(ref, name), equal_nan=name in ("price", "amount")), name


def test_mixed_int_and_str_viewers_give_up():
    data = generate_ndjson(viewers=50, hours=0.05, seed=3)
    lines = data.splitlines()
    k = next(i for i, raw in enumerate(lines) if b'"viewer":' in raw)
    obj = json.loads(lines[k])
    obj["viewer"] = f"u{obj['viewer']}"
    lines[k] = json.dumps(obj).encode()
    mixed = b"\n".join(lines)
    assert decoded(mixed) is not None  # msgspec accepts the mix ...
    assert scan_ndjson(mixed, TYPES, ROOM_TYPES, CATS) is None  # ... the scanner leaves it to msgspec


# --- edge cases, one by one --------------------------------------------------------------------------
def test_empty_input_is_zero_events():
    for data in (b"", b"\n", b" \r\n\t\x0b\x0c\n"):
        sc = check(data, must_scan=True)
        assert sc.n == 0 and sc.type.shape == (0,) and sc.viewer_uniques is None


def test_outer_whitespace_skipped_inner_blank_lines_give_up():
    one, two = line(**VIEW), line(**START)
    check(b"\n\n \x0c" + one + b"\n" + two + b"\r\n \n\x0b", must_scan=True)
    for sep in (b"\n\n", b"\n \n", b"\r\n\r\n", b"\n\t\r\n"):
        data = one + sep + two
        assert decoded(data) is None  # decode_ndjson(fallback=False) fails on a blank line inside
        assert scan_ndjson(data, TYPES, ROOM_TYPES, CATS) is None


def test_numbers():
    cases = {
        b"1700000000": 1700000000.0, b"-0": 0.0, b"-0.0": -0.0, b"0e5": 0.0, b"-0e-5": -0.0, b"1E+2": 100.0,
        b"0.1": 0.1, b"1700000000.1234567": 1700000000.1234567, b"0.30000000000000004": 0.30000000000000004,
        b"1e22": 1e22, b"1e23": 1e23, b"9007199254740993": 9007199254740992.0, b"123456789012345678901": 1.2345678901234568e20,
        b"1e-400": 0.0, b"4.9e-324": 5e-324, b"2.2250738585072011e-308": 2.2250738585072011e-308,
        b"1.7976931348623157e308": 1.7976931348623157e308,
    }
    for raw, want in cases.items():
        neg = raw[1:] if raw.startswith(b"-") else b"-" + raw
        data = b'{"type":"view","viewer":1,"room":"r","ts":%s,"price":%s,"amount":%s}' % (raw, raw, neg)
        in_range = 0 <= want < 1e11 and abs(want) < 1e15
        assert (check(data) is not None) == in_range, raw  # out of the accepted ranges: the msgspec path
        sc = scan_ndjson(data, TYPES, ROOM_TYPES, CATS, check_ranges=False)  # the parser alone
        assert bits(sc.ts[0]) == bits(want) and bits(sc.price[0]) == bits(want), raw
        assert bits(sc.amount[0]) == bits(float(neg.decode()) if b"." in neg or b"e" in neg.lower() else float(int(neg))), raw
    for raw in (b"1e400", b"-1e309", b"1.8e308", b"01", b"1.", b".5", b"1e", b"-", b"+1", b"NaN", b"Infinity", b"0x10",
                b"1_000", b'"1"', b"true"):
        check(b'{"type":"view","viewer":1,"room":"r","ts":%s}' % raw)
        assert scan_ndjson(b'{"type":"view","viewer":1,"room":"r","ts":%s}' % raw, TYPES, ROOM_TYPES, CATS) is None, raw


def test_many_slow_floats_are_fixed_up():
    rng = random.Random(1)
    values = [rng.uniform(-1e6, 1e6) for _ in range(3000)]  # repr: 16-17 digits, outside the exact path
    data = b"\n".join(line(type="pay", viewer=k, room="r", ts=1700000000 + v, amount=v) for k, v in enumerate(values))
    sc = check(data, must_scan=True)
    assert [bits(x) for x in sc.amount] == [bits(v) for v in values]


def test_viewer_ids():
    for v in (0, -1, 2**63 - 1, -(2**63), 10**18, 1234567890123456789):
        sc = check(line(type="like", viewer=v, room="r", ts=1.0), must_scan=True)
        assert sc.viewer[0] == v and sc.viewer_uniques is None
    for raw in (b"9223372036854775808", b"-9223372036854775809", b"99999999999999999999999"):
        data = b'{"type":"like","viewer":%s,"room":"r","ts":1}' % raw
        assert decoded(data) is not None and scan_ndjson(data, TYPES, ROOM_TYPES, CATS) is None  # int64 only
    for raw in (b"1.0", b"1e3", b"true", b"[1]", b"{}"):
        check(b'{"type":"like","viewer":%s,"room":"r","ts":1}' % raw)
    sc = check(line(type="like", viewer="u\u00e9\u597d", room="r", ts=1.0), must_scan=True)
    assert sc.viewer_uniques == ["u\u00e9\u597d"]
    # absent, null, and room events that carry a viewer anyway
    sc = check(b"\n".join([line(**START), b'{"type":"live_end","room":"r1","ts":2,"viewer":null}',
                           line(type="live_end", room="r1", ts=3.0, viewer=5)]), must_scan=True)
    assert sc.viewer_absent.tolist() == [True, True, False] and sc.viewer.tolist() == [-1, -1, 5]
    for data in (b'{"type":"like","room":"r","ts":1}', b'{"type":"like","viewer":null,"room":"r","ts":1}'):
        check(data)
        assert decoded(data) is None


def test_required_fields_types_and_nulls():
    for data in (b'{"type":null,"viewer":1,"room":"r","ts":1}', b'{"viewer":1,"room":"r","ts":1}',
                 b'{"type":"like","viewer":1,"room":"r","ts":null}', b'{"type":"like","viewer":1,"room":null,"ts":1}',
                 b'{"type":"like","viewer":1,"ts":1}', b'{"type":"nope","viewer":1,"room":"r","ts":1}',
                 b'{"type":"like","viewer":1,"room":5,"ts":1}', b'{"type":3,"viewer":1,"room":"r","ts":1}',
                 b'{"type":"like","viewer":1,"room":"r","ts":1,"item":7}', b'{"type":"like","viewer":1,"room":"r","ts":1,"price":"9"}',
                 b'{"type":"like","viewer":1,"room":"r","ts":1,"price":true}', b'{}', b'[]', b'1', b'"x"', b'null'):
        assert decoded(data) is None, data
        assert scan_ndjson(data, TYPES, ROOM_TYPES, CATS) is None, data
    sc = check(b'{"type":"like","viewer":1,"room":"r","ts":1,"item":null,"category":null,"price":null,"amount":null,'
               b'"text":null}', must_scan=True)
    assert (sc.item[0], sc.category[0], sc.text[0]) == (-1, 0, -1) and math.isnan(sc.price[0])


def test_strings_escapes_and_unicode():
    texts = ["", "wow", "\u597d\u770b", 'say "hi"', "back\\slash", "tab\there", "\u00e9", "\U0001F600", "a/b", "\x7f"]
    data = b"\n".join(line(type="comment", viewer=1, room="r", ts=1.0, text=t) for t in texts)
    sc = check(data, must_scan=True)
    assert [sc.text_uniques[c] for c in sc.text] == texts
    # escaped forms of the same strings (json.dumps escapes non-ASCII) decode to the same values
    data = b"\n".join(json.dumps({"type": "comment", "viewer": 1, "room": "r", "ts": 1, "text": t}).encode() for t in texts)
    sc = check(data, must_scan=True)
    assert [sc.text_uniques[c] for c in sc.text] == texts
    for raw in (b'"\\x"', b'"\\ud800"', b'"\\udc00"', b'"\\u12"', b'"a\tb"', b'"a\x01"', b'"\xff"', b'"\xed\xa0\x80"',
                b'"\xc3"', b'"abc', b"'abc'"):
        data = b'{"type":"comment","viewer":1,"room":"r","ts":1,"text":%s}' % raw
        assert scan_ndjson(data, TYPES, ROOM_TYPES, CATS) is None, raw
        check(data)


def test_type_and_category_names():
    sc = check(b'{"type":"view","viewer":1,"room":"r","ts":1,"category":"be\\u0061uty"}\n'
               b'{"type":"view","viewer":1,"room":"r","ts":1,"category":"nope"}\n'
               b'{"type":"view","viewer":1,"room":"r","ts":1,"category":"sports"}\n'
               b'{"type":"view","viewer":1,"room":"r","ts":1,"category":""}', must_scan=True)
    assert sc.category.tolist() == [CATS.index("beauty") + 1, -1, CATS.index("sports") + 1, -1]
    # an escaped type is valid for msgspec; the scanner may leave it to msgspec
    check(b'{"type":"vi\\u0065w","viewer":1,"room":"r","ts":1}')
    # caller-defined names, including ones a raw JSON string cannot spell byte for byte
    types = ["custom", 'q"uote', "back\\slash", "\u597d", "live_start"]
    cats = ["x", "\u597d", 'a"b']
    lines = [json.dumps({"type": t, "viewer": 1, "room": "r", "ts": 1, "category": c}, ensure_ascii=False).encode()
             for t in ("custom", "\u597d") for c in cats + ["y"]]
    sc = check(b"\n".join(lines), types=types, cats=cats, must_scan=True)
    assert sc.type.tolist() == [0] * 4 + [3] * 4 and sc.category.tolist() == [1, 2, 3, -1] * 2
    check(json.dumps({"type": 'q"uote', "viewer": 1, "room": "r", "ts": 1}).encode(), types=types, cats=cats)
    assert check(line(type="live_start", room="r", ts=1.0), types=types, rooms={"live_start"}, cats=cats).viewer_absent[0]


def test_keys():
    base = b'"type":"like","viewer":1,"room":"r","ts":1'
    for extra in (b'"x":1', b'"extra":[1,{"a":[null,true,false,"s",-1.5e3]}]', b'"":{}', b'"n":null',
                  b'"deep":' + b"[" * 20 + b"]" * 20, b'"esc":"a\\"b\\\\c\\u00e9\\ud83d\\ude00"', b'"k":{"a":1,"b":{"c":[]}}',
                  b'"\xc3\xa9":"\xe5\xa5\xbd\xf0\x9f\x98\x80"', b'"x":{"\xe5\xa5\xbd":["\xc3\xa9"]}'):
        check(b"{" + base + b"," + extra + b"}", must_scan=True)
        check(b"{" + extra + b"," + base + b"}", must_scan=True)
    for extra in (b'"x":[1,]', b'"x":{"a"}', b'"x":{1:2}', b'"x":tru', b'"x":"\\q"', b'"x":"\x01"', b'"x":01',
                  b'"x":[', b'"x":{"a":1,}', b'"x":"\\ud800"', b'"x":"\\udc00"'):
        data = b"{" + base + b"," + extra + b"}"
        assert decoded(data) is None, extra
        assert scan_ndjson(data, TYPES, ROOM_TYPES, CATS) is None, extra
    # valid for msgspec but left to it: duplicate keys (last wins), escaped keys, invalid UTF-8 in
    # ignored strings (msgspec does not check it there), deep nesting
    for data in (b"{" + base + b',"ts":2}', b'{"typ\\u0065":"like","viewer":1,"room":"r","ts":1}',
                 b'{"\\u0078":1,' + base + b"}", b"{" + base + b',"x":"\xff"}', b"{" + base + b',"\xed\xa0\x80":1}',
                 b"{" + base + b',"x":["\xc3"]}', b"{" + base + b',"deep":' + b"[" * 40 + b"]" * 40 + b"}"):
        assert decoded(data) is not None
        assert scan_ndjson(data, TYPES, ROOM_TYPES, CATS) is None
    for data in (b"{" + base + b",}", b"{," + base + b"}", b"{" + base + b"}}", b"{" + base, base,
                 b"{" + base + b"} x", b"{" + base.replace(b":", b"=", 1) + b"}"):
        assert scan_ndjson(data, TYPES, ROOM_TYPES, CATS) is None
        check(data)


def test_lines_holding_other_than_one_object_are_rejected_by_both():
    """Two objects on a line, or a raw newline inside a string, are not NDJSON: decode_ndjson
    (which joins lines with commas) checks it got one event per line; the scanner reads lines."""
    one = line(**VIEW)
    for data in (one + b"," + one, one + b", " + one, b'{"type":"comment","viewer":1,"room":"r","ts":1,"text":"a\nb"}'):
        assert decoded(data) is None
        assert scan_ndjson(data, TYPES, ROOM_TYPES, CATS) is None


def test_tables_grow():
    n = 30000
    data = b"\n".join(line(type="comment", viewer=f"v{k}", room=f"r{k % 7}", ts=float(k), text=f"t{k}",
                           item=f"i{k % 5000}") for k in range(n))
    sc = check(data, must_scan=True)
    assert len(sc.viewer_uniques) == n and len(sc.text_uniques) == n and len(sc.item_uniques) == 5000
    assert sc.viewer_uniques[:3] == ["v0", "v1", "v2"]  # first-appearance order


def test_buffer_types_and_end_of_buffer():
    one = line(**VIEW)
    for data in (bytearray(one), memoryview(one), one[:-1] + b"}", b"  " + one):
        assert scan_ndjson(data, TYPES, ROOM_TYPES, CATS) is not None
    for cut in range(len(one)):  # every truncation of a line, at the very end of the buffer
        check(one[:cut])


# --- hypothesis: random lines ----------------------------------------------------------------------
_SHORT_FLOATS = st.integers(-10**6, 10**6).map(lambda k: k / 100)
_TS = st.one_of(st.integers(1_600_000_000_000, 1_800_000_000_000).map(lambda ms: ms / 1000),
                st.integers(0, 2_000_000_000))
_PLAIN = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


@st.composite
def valid_lines(draw, str_viewers: bool) -> bytes:
    """Common valid forms: plain strings, int (or str) viewers, short floats, any key order."""
    t = draw(st.sampled_from(TYPES))
    obj = {"type": t, "room": draw(st.sampled_from(["r1", "r2", "\u76f4\u64ad\u95f4"])), "ts": draw(_TS)}
    if t not in ROOM_TYPES or draw(st.booleans()):
        obj["viewer"] = draw(_PLAIN) if str_viewers else draw(st.integers(-(2**63), 2**63 - 1))
    for name, strat in (("item", _PLAIN), ("category", st.sampled_from(CATS + ["other", ""])), ("text", _PLAIN),
                        ("price", _SHORT_FLOATS), ("amount", _SHORT_FLOATS)):
        if draw(st.booleans()):
            obj[name] = draw(st.one_of(strat, st.none())) if draw(st.booleans()) else draw(strat)
    items = draw(st.permutations(list(obj.items())))
    return json.dumps(dict(items), ensure_ascii=False, separators=draw(st.sampled_from([(",", ":"), (", ", ": ")]))).encode()


@settings(max_examples=examples(150), **SETTINGS)
@given(st.booleans().flatmap(lambda s: st.lists(valid_lines(s), min_size=1, max_size=12)),
       st.sampled_from([b"\n", b"\r\n"]), st.booleans())
def test_common_valid_forms_always_scan(lines, sep, trailing):
    check(sep.join(lines) + (sep if trailing else b""), must_scan=True)


_ODD_NUMBERS = [b"0", b"-0", b"-0.0", b"1e22", b"1e23", b"1E-5", b"0.1", b"1700000000.1234567", b"0.30000000000000004",
                b"123456789012345678901234567890", b"9223372036854775808", b"-9223372036854775809", b"1e400", b"1e-400",
                b"4.9e-324", b"01", b"1.", b".5", b"-", b"2.5e+3", b"1.0"]
_ODD_STRINGS = [b'""', b'"\\u0041"', b'"\\ud83d\\ude00"', b'"\\ud800"', b'"\\n\\t\\"\\\\\\/"', b'"\\x"', b'"\xe5\xa5\xbd"',
                b'"\xff"', b'"a\tb"', b'"beauty"', b'"be\\u0061uty"', b'"view"', b'"live_start"', b'"vi\\u0065w"',
                b'"nope"', b'"abc']
_ODD_OTHER = [b"null", b"true", b"false", b"[]", b"[1,2]", b"{}", b'{"a":[1,{"b":null}]}', b"[1,]", b"nul", b"{"]


def _json_number(draw) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return str(draw(st.integers(-(2**70), 2**70))).encode()
    if kind == 1:
        return repr(draw(st.floats(allow_nan=False, allow_infinity=False))).encode()
    if kind == 2:
        return b"%de%d" % (draw(st.integers(-10**6, 10**6)), draw(st.integers(-330, 330)))
    return draw(st.sampled_from(_ODD_NUMBERS))


@st.composite
def any_value(draw) -> bytes:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return _json_number(draw)
    if kind == 1:
        return json.dumps(draw(st.text(max_size=8)), ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if kind == 2:
        return draw(st.sampled_from(_ODD_STRINGS))
    if kind == 3:
        return draw(st.sampled_from(_ODD_OTHER))
    return json.dumps(draw(st.sampled_from(TYPES + CATS + ["r1", "i1"]))).encode()


_KEYS = ["type", "ts", "viewer", "room", "item", "category", "price", "amount", "text"]
_WS = st.sampled_from([b"", b"", b"", b" ", b"\t", b"\r", b"  "])


@st.composite
def any_line(draw, str_viewers: bool) -> bytes:
    """A line that is often valid and often not: each field a good value or an odd one."""
    good = json.loads(draw(valid_lines(str_viewers)))
    odd = draw(st.sampled_from([0, 0, 3, 8]))  # how often a field is dropped or gets an odd value
    members = []
    for key, value in good.items():
        if odd and draw(st.integers(0, 3 * odd)) == 0:
            continue  # drop a field
        raw = json.dumps(value, ensure_ascii=draw(st.booleans())).encode()
        members.append((json.dumps(key).encode(), draw(any_value()) if odd and draw(st.integers(0, odd)) == 0 else raw))
    if draw(st.integers(0, 4)) == 0:
        key = draw(st.sampled_from(_KEYS + ["x", "extra", "typ\\u0065", "\u00e9"]))
        members.insert(draw(st.integers(0, len(members))), (b'"' + key.encode() + b'"', draw(any_value())))
    ws = lambda: draw(_WS)  # noqa: E731
    body = b",".join(ws() + k + ws() + b":" + ws() + v + ws() for k, v in members)
    text = ws() + b"{" + body + (ws() if not members else b"") + b"}" + ws()
    if odd and draw(st.integers(0, 19)) == 0:  # raw damage
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from([b"", b",", b"}", b"\x00", b'"', b"\\"])) + text[cut + 1:]
    return text


@settings(max_examples=examples(400), **SETTINGS)
@given(st.booleans().flatmap(lambda s: st.lists(any_line(s), min_size=1, max_size=5)), st.sampled_from([b"\n"] * 4 + [b"\r\n"] * 2 + [b"\n\n", b"\n \n"]),
       _WS, st.sampled_from([b"", b"\n", b"\r\n", b" \n\t"]))
def test_random_lines_follow_the_contract(lines, sep, head, tail):
    check(head + sep.join(lines) + tail)
