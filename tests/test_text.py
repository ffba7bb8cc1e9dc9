"""What comments mean (segengine.text): ``event.text matches/contains``, ``[intents]`` with the
built-in lexicon, ``event.intent(NAME)`` and ``comment:NAME`` event types, on every ingest path."""

from __future__ import annotations

import json
import random
from pathlib import Path
from unittest import mock

import msgspec
import pytest

import segengine.engine as engine_module
from segengine import Batch, Engine, Event, RulesError
from segengine.rules.load import load_rules, load_rules_file
from segengine.text import codes as text_codes_module
from segengine.text.lexicon import BUILTIN_INTENTS
from segengine.text.matcher import IntentMatcher, ahocorasick_rs

RULES = Path(__file__).resolve().parent / "rules" / "text.toml"
INTENT_ACTIONS = ("price", "shipping", "praise", "complaint", "greeting", "long_price")


@pytest.fixture(scope="module")
def rules():
    rs = load_rules_file(RULES)
    Engine(rs).warmup()
    return rs


def comment(text, ts=100.0, viewer="u1", type="comment"):
    return {"type": type, "viewer": viewer, "room": "r1", "ts": ts, "text": text}


def fired(engine, event) -> list[str]:
    return [a.action for a in engine.ingest(event)]


def intents_of(engine, text, ts=100.0) -> set[str]:
    return {a for a in fired(engine, comment(text, ts, viewer=f"v{ts}")) if a in INTENT_ACTIONS}


# --- intents ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("这个多少钱？", {"price"}),
    ("HOW MUCH is it", {"price"}),                     # case-insensitive (casefold)
    ("How Much 包邮吗", {"price", "shipping"}),          # two intents in one comment
    ("多少钱包邮吗", {"price", "shipping"}),              # overlapping phrases ("钱包" is no phrase)
    ("主播好美😍", {"praise"}),                           # emoji phrase
    ("👋👋", {"greeting"}),
    ("HELLO 主播 好看", {"greeting", "praise"}),
    ("退款!!! 骗子", {"complaint"}),
    ("价格多少", {"price", "long_price"}),               # "价格" and "价格多少" start at the same place
    ("666", set()),
    ("", set()),
])
def test_intents_of_a_comment(rules, text, expected):
    engine = Engine(rules)
    assert intents_of(engine, text) == expected


def test_a_file_intent_replaces_the_built_in_lexicon(rules):
    """text.toml's price = [...] replaces the built-in price phrases ("怎么卖" is only built in)."""
    assert "怎么卖" in BUILTIN_INTENTS["price"]
    assert rules.intents["price"] == ("多少钱", "价格", "how much", "price")
    assert intents_of(Engine(rules), "怎么卖") == set()
    # the built-in intents the file does not name are kept
    assert rules.intents["shipping"] == BUILTIN_INTENTS["shipping"]


@pytest.mark.parametrize("automaton", [True, False] if ahocorasick_rs is not None else [False])
def test_matcher_finds_every_intent_overlapping_or_nested(automaton):
    m = IntentMatcher([(1, ["价格"]), (2, ["价格多少", "ab"]), (4, ["格多"]), (8, ["bc"]), (16, ["Straße"])],
                      use_automaton=automaton)
    assert m("价格多少") == 1 | 2 | 4
    assert m("abc") == 2 | 8
    assert m("strasse".casefold()) == 16  # phrases are casefolded: ß matches ss
    assert m("nothing") == 0 and m("") == 0


@pytest.mark.skipif(ahocorasick_rs is None, reason="ahocorasick_rs not installed")
def test_automaton_and_regexes_agree_on_the_built_in_lexicon():
    rng = random.Random(7)
    intents = [(1 << i, phrases) for i, phrases in enumerate(BUILTIN_INTENTS.values())]
    a, r = IntentMatcher(intents, use_automaton=True), IntentMatcher(intents, use_automaton=False)
    pool = [p for _, ps in intents for p in ps] + ["哈哈", "主播", " ", "!", "x", "😀"]
    for _ in range(500):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 4))).casefold()
        assert a(text) == r(text), text


def test_built_in_lexicon_covers_the_documented_intents():
    assert set(BUILTIN_INTENTS) == {"price", "buy", "size", "shipping", "discount", "quality_doubt", "complaint", "praise"}
    for name, phrases in BUILTIN_INTENTS.items():
        assert len(phrases) >= 20, name
        assert any(not p.isascii() for p in phrases) and any(p.isascii() for p in phrases), name


# --- matches, contains, == ----------------------------------------------------------------------
def test_matches_is_a_regex_search_and_contains_a_casefolded_substring(rules):
    engine = Engine(rules)
    assert "digits" in fired(engine, comment("12345", 100.0))
    assert "digits" not in fired(engine, comment("12345a", 101.0))
    assert "link" in fired(engine, comment("send the Link pls", 102.0))     # contains: any case
    assert "link" not in fired(engine, comment("no link please", 103.0))    # matches: as written
    assert "link" in fired(engine, comment("NO LINK please", 104.0))        # ...case-sensitive
    assert "digits" in fired(engine, comment("42", 105.0, type="danmaku"))  # any event with a text
    assert fired(engine, comment(None, 106.0, viewer="u9")) == []            # no text: reads ""


def test_equality_still_compares_the_text(rules):
    engine = Engine(rules)
    assert fired(engine, comment("666", 100.0)) == ["digits", "exact"]
    assert fired(engine, comment("好", 101.0)) == ["exact"]
    assert "exact" not in fired(engine, comment("6666", 102.0))


# --- comment:NAME in count, since and on ------------------------------------------------------------
def test_counts_and_since_of_an_intent(rules):
    engine = Engine(rules)
    assert "coupon" not in fired(engine, comment("价格?", 100.0))
    assert "coupon" not in fired(engine, comment("hello", 110.0))
    assert "coupon" in fired(engine, comment("how much", 120.0))
    # chatty: count(comment|comment:price, 1m) counts a price comment once
    assert "chatty" in fired(engine, comment("ok", 121.0))
    # since(comment:price) > 10m: the state rule fires 600 s after the last price comment
    assert [a.ts for a in engine.advance(800.0)] == [720.0]


def test_comment_intents_are_counted_only_for_comments(rules):
    engine = Engine(rules)
    fired(engine, comment("价格", 100.0, type="danmaku"))
    fired(engine, comment("价格", 101.0, type="danmaku"))
    assert engine.viewer("u1")["features"]["count(comment:price, 5m)"] == 0


# --- errors -------------------------------------------------------------------------------------
def test_a_bad_regex_is_an_error_at_its_literal():
    src = '[[rules]]\nname = "a"\non = ["comment"]\nwhen = "event.text matches \'(abc\'"\nthen = "x"\n'
    with pytest.raises(RulesError) as err:
        load_rules(src, "bad.toml")
    text = str(err.value)
    assert "bad.toml:4:28: bad regular expression: missing ), unterminated subpattern" in text
    assert text.splitlines()[-1].strip() == "^^^^^^"


@pytest.mark.parametrize("when, on, where, hint", [
    ("event.intent(prise)", '["comment"]', "4:22", "did you mean 'praise'?"),
    ("count(comment:complain, 5m) >= 1", '["comment"]', "4:23", "did you mean 'complaint'?"),
    ("since(comment:shiping) < 1m", '["comment"]', "4:23", "did you mean 'shipping'?"),
    ("true", '["comment:prce"]', "3:7", "did you mean 'price'?"),
])
def test_an_unknown_intent_is_an_error_with_did_you_mean(when, on, where, hint):
    src = f'[[rules]]\nname = "a"\non = {on}\nwhen = "{when}"\nthen = "x"\n'
    with pytest.raises(RulesError) as err:
        load_rules(src, "bad.toml")
    assert f"bad.toml:{where}: unknown intent" in str(err.value)
    assert hint in str(err.value)


@pytest.mark.parametrize("src, message", [
    ('[intents]\nprice = "多少钱"\n', "non-empty list of non-empty phrases"),
    ('[intents]\nprice = []\n', "non-empty list of non-empty phrases"),
    ('[[rules]]\nname = "a"\nwhen = "event.intent(price)"\nthen = "x"\n', "only available in event rules"),
    ('[[rules]]\nname = "a"\non = "view"\nwhen = "event.item contains \'x\'"\nthen = "x"\n', "applies to event.text"),
    ('[[rules]]\nname = "a"\non = "view"\nwhen = "event.text contains \'\'"\nthen = "x"\n', "non-empty string"),
    ('[[rules]]\nname = "a"\non = "view"\nwhen = "event.text matches x"\nthen = "x"\n', "expected a string literal"),
])
def test_other_text_errors(src, message):
    with pytest.raises(RulesError) as err:
        load_rules(src, "bad.toml")
    assert message in str(err.value)


# --- every ingest path ----------------------------------------------------------------------------
TEXTS = ["多少钱", "HOW MUCH", "包邮吗", "好看👍", "666", "好", "ok", "12345", "link?", "no link", "价格多少", "hello",
         "退款", None, "", "哈哈哈", "How much 包邮", "NO LINK", "Ünïcödé price"]


def stream(n=400, seed=3):
    rng = random.Random(seed)
    ts, out = 1000.0, []
    for _ in range(n):
        ts += rng.choice([0.0, 0.5, 3.0, 20.0, 200.0])
        kind = rng.choice(["comment"] * 6 + ["danmaku", "like", "pay", "enter", "heartbeat"])
        ev = {"type": kind, "viewer": f"u{rng.randint(0, 12)}", "room": "r1", "ts": ts}
        if kind in ("comment", "danmaku"):
            text = rng.choice(TEXTS)
            if text is not None:
                ev["text"] = text
        if kind == "pay":
            ev["amount"] = 10.0
        out.append(ev)
    return out


def as_tuples(actions):
    return [(a.rule, a.action, a.viewer, a.ts, a.params) for a in actions]


def one_by_one(engine, events, form):
    out = []
    for ev in events:
        if form == "event":
            ev = Event(**ev)
        elif form == "json":
            ev = json.dumps(ev).encode()
        out += engine.ingest(ev)
    return as_tuples(out + engine.advance(events[-1]["ts"] + 3600))


@pytest.fixture(scope="module")
def expected(rules):
    return one_by_one(Engine(rules), stream(), "dict")


def test_the_stream_fires_text_rules(expected):
    actions = {a[1] for a in expected}
    assert {"price", "shipping", "praise", "complaint", "greeting", "long_price", "digits", "link", "exact", "coupon",
            "chatty", "followup"} <= actions


@pytest.mark.parametrize("form", ["event", "json"])
def test_every_single_event_form_agrees(rules, expected, form):
    assert one_by_one(Engine(rules), stream(), form) == expected


def test_the_python_path_agrees(rules, expected):
    with mock.patch.object(engine_module, "_fastpath", None):
        engine = Engine(rules)
    assert one_by_one(engine, stream(), "dict") == expected


def test_a_small_cache_gives_the_same_actions(rules, expected, monkeypatch):
    monkeypatch.setattr(text_codes_module, "CACHE_SIZE", 3)
    engine = Engine(rules)
    assert one_by_one(engine, stream(), "dict") == expected
    assert len(engine._text.cache) <= 3


@pytest.mark.parametrize("form", ["list", "batch", "ndjson", "coded"])
def test_batches_equal_one_by_one(rules, expected, form):
    events = stream()
    engine = Engine(rules)
    if form == "list":
        actions = engine.ingest_many(events)
    elif form == "ndjson":
        actions = engine.ingest_many(b"".join(json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in events))
    else:
        batch = Batch.from_events([Event(**e) for e in events])
        if form == "coded":
            texts = [e.get("text") for e in events]
            uniques = list(dict.fromkeys(t for t in texts if t is not None))
            import numpy as np
            from segengine.schema.batch import Coded
            codes = np.array([uniques.index(t) if t is not None else -1 for t in texts], np.int64)
            batch.text = Coded(codes, uniques)
        actions = engine.ingest_many(batch)
    assert as_tuples(actions + engine.advance(events[-1]["ts"] + 3600)) == expected


def test_snapshot_and_reload_keep_intent_windows(rules, tmp_path):
    events = stream()
    half = len(events) // 2
    engine = Engine(rules)
    first = as_tuples(engine.ingest_many(events[:half]))
    path = tmp_path / "s.seg"
    engine.snapshot(path)
    restored = Engine.restore(path)
    reloaded = Engine(rules)
    reloaded.ingest_many(events[:half])
    reloaded.reload(RULES.read_text(encoding="utf-8") + "\n# touched\n")
    rest = [as_tuples(e.ingest_many(events[half:]) + e.advance(events[-1]["ts"] + 3600))
            for e in (engine, restored, reloaded)]
    assert rest[0] == rest[1] == rest[2]
    assert first + rest[0] == one_by_one(Engine(rules), events, "dict")


def test_other_events_skip_text_work(rules):
    """Events without a text read the value of "" from the cache, computed when the engine was
    built: nothing new is computed or cached for them."""
    engine = Engine(rules)
    assert engine._text.cache == {"": 0}
    for i in range(5):
        engine.ingest({"type": "like", "viewer": "u1", "room": "r1", "ts": 100.0 + i})
        engine.ingest_many([{"type": "like", "viewer": "u2", "room": "r1", "ts": 100.0 + i}] * 70)
    assert engine._text.cache == {"": 0}
    engine.ingest(comment("多少钱", 200.0))
    assert set(engine._text.cache) == {"", "多少钱"}


def test_rules_without_text_keep_no_text_codes(example_rules):
    assert Engine(example_rules)._text is None


def test_too_many_text_predicates_is_an_error():
    words = " or ".join(f"event.text contains 'w{i}'" for i in range(32))
    with pytest.raises(RulesError) as err:
        load_rules(f'[[rules]]\nname = "a"\non = "comment"\nwhen = "{words}"\nthen = "x"\n', "big.toml")
    assert "at most 31" in str(err.value)


def test_reload_that_renumbers_the_bits_keeps_intent_counts(rules):
    """A rule added first takes bit 0: the bits move, the comment:price windows (state) stay."""
    engine = Engine(rules)
    fired(engine, comment("多少钱", 100.0))
    added = ('[[rules]]\nname = "first"\non = ["comment"]\nwhen = "event.text contains \'zzz\' or event.intent(buy)"\n'
             'then = "z"\n\n')
    text = RULES.read_text(encoding="utf-8")
    at = text.index("[[rules]]")
    engine.reload(text[:at] + added + text[at:])
    assert engine.viewer("u1")["features"]["count(comment:price, 5m)"] == 1
    assert fired(engine, comment("价格 zzz", 110.0)) == ["z", "price", "coupon"]
    assert fired(engine, comment("我要下单", 111.0)) == ["z", "chatty"]


# --- properties -------------------------------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import examples  # noqa: E402

_ALPHABET = st.sampled_from(list("aAsSbBß价格多少钱👍 "))
_PHRASE = st.text(_ALPHABET, min_size=1, max_size=4)


@settings(max_examples=examples(100))
@given(st.lists(st.lists(_PHRASE, min_size=1, max_size=4), min_size=1, max_size=5), st.text(_ALPHABET, max_size=12))
def test_intents_are_casefolded_substrings(lexicon, text):
    """The matcher (either form) finds exactly the intents one of whose phrases is a casefolded substring."""
    folded = text.casefold()
    expected = sum(1 << i for i, phrases in enumerate(lexicon) if any(p.casefold() in folded for p in phrases))
    intents = [(1 << i, phrases) for i, phrases in enumerate(lexicon)]
    for automaton in ([True, False] if ahocorasick_rs is not None else [False]):
        assert IntentMatcher(intents, use_automaton=automaton)(folded) == expected


def test_ndjson_with_escaped_texts_equals_one_by_one(rules, expected):
    events = stream()
    engine = Engine(rules)
    actions = engine.ingest_many(b"".join(json.dumps(e, ensure_ascii=True).encode() + b"\n" for e in events))
    assert as_tuples(actions + engine.advance(events[-1]["ts"] + 3600)) == expected


def test_text_compared_with_item_sees_items_interned_after_the_text():
    """A text with no string id is not cached when the rules compare it with event.item: an
    item of the same string interned later must compare equal."""
    engine = Engine.from_toml('[[rules]]\nname = "same"\non = ["comment"]\n'
                              'when = "event.text == event.item and event.text contains \'a\'"\nthen = "same"\n')
    assert fired(engine, {**comment("abc", 100.0), "item": "zzz"}) == []
    engine.ingest({"type": "view", "viewer": "u2", "room": "r1", "ts": 101.0, "item": "abc"})
    assert fired(engine, {**comment("abc", 102.0), "item": "abc"}) == ["same"]


@pytest.mark.skipif(engine_module._fastpath is None or not engine_module.config.c_fast_path_enabled(),
                    reason="the C fast path is not built or is turned off")
def test_the_c_path_computes_new_texts_without_the_python_path(rules):
    engine = Engine(rules)
    assert engine.ingest == engine._fast.ingest
    fired(engine, comment("hello", 100.0))  # the viewer and room exist from here on
    with mock.patch.object(engine, "_ingest_one", side_effect=AssertionError("the Python path")):
        assert fired(engine, comment("how much is it", 101.0)) == ["price"]
        assert "price" in fired(engine, comment("how much is it", 102.0))  # from the cache
        assert fired(engine, {"type": "like", "viewer": "u1", "room": "r1", "ts": 103.0}) == []
    assert "how much is it" in engine._text.cache
