"""``event.FIELD`` compares as the field's own value, on every ingest path and with every
operator: ``event.category == 'beauty'`` holds for a category the rules never declared
(``[engine] categories`` only says which categories feed ``interest()``), and every other
field compares with a literal the engine has never seen in an event.

Each path (dict, Event, JSON bytes, the C fast path and its pure-Python twin, lists, NDJSON
through the scanner and through msgspec, columnar batches of str, object, coded and int
columns) must give, per event, exactly the rules a plain Python reading of the condition
gives, and ``{event.category}`` must render the event's own category.
"""

from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pytest

import segengine.engine as engine_module
from segengine import Batch, Coded, Engine, Event, RulesError
from segengine.rules.load import load_rules

# Rules on every field but text (a rule reading event.text turns the C fast path off, so
# text has a file of its own below). Declared categories: snacks, digital; "beauty" and
# "toys" are literals only.
FIELDS = """
[engine]
categories = ["snacks", "digital"]

[profile]
fav = ["beauty", "snacks"]
"""
FIELD_RULES = {
    "cat_eq": "event.category == 'beauty'",
    "cat_ne": "event.category != 'beauty'",
    "cat_in": "event.category in ['beauty', 'snacks']",
    "cat_not_in": "event.category not in ['beauty', 'toys']",
    "cat_declared": "event.category == 'snacks'",
    "cat_blank": "event.category == ''",
    "cat_profile": "event.category == fav",
    "item_eq": "event.item == 'sku_new'",
    "item_ne": "event.item != 'sku_new'",
    "item_in": "event.item in ['sku_new', 'x']",
    "item_blank": "event.item == ''",
    "room_eq": "event.room == 'room_new'",
    "room_ne": "event.room != 'room_new'",
    "viewer_eq": "event.viewer == 'vnew'",
    "type_eq": "event.type == 'view'",
    "type_ne": "event.type != 'view'",
    "price_eq": "event.price == 12.5",
    "amount_eq": "event.amount == 3",
    "ts_eq": "event.ts == 103",
}
for _name, _when in FIELD_RULES.items():
    FIELDS += f'\n[[rules]]\nname = "{_name}"\non = ["view", "comment"]\nwhen = "{_when}"\nthen = "x"\n'
    FIELDS += 'params = { c = "{event.category}" }\n'
FIELDS += """
[[rules]]
name = "cat_top"
on = ["view"]
when = "event.category == top_interest"
then = "x"

[[rules]]
name = "top_fav"
when = "top_interest == fav and fav != ''"
then = "x"
"""

# The issue's minimal case (no categories declared at all), the other operators, and text;
# no {event.category} placeholder, so NDJSON goes straight from the scanner to the kernel.
CATEGORY_ONLY = """
[[rules]]
name = "b"
on = ["view"]
when = "event.category == 'beauty'"
then = "pick"
"""
CATEGORY_RULES = {
    "b": "event.category == 'beauty'",
    "nb": "event.category != 'beauty'",
    "in_b": "event.category in ['beauty', 'toys']",
    "not_in_b": "event.category not in ['beauty', 'toys']",
    "text_eq": "event.text == 'hello there'",
    "text_ne": "event.text != 'hello there'",
    "text_blank": "event.text == ''",
}
for _name, _when in list(CATEGORY_RULES.items())[1:]:
    CATEGORY_ONLY += f'\n[[rules]]\nname = "{_name}"\non = ["view", "comment"]\nwhen = "{_when}"\nthen = "x"\n'


def expected(e: dict, rules: dict[str, str]) -> list[str]:
    """The rules whose condition holds for event ``e``, read in plain Python (fav unset: "")."""
    cat, item, text = e.get("category") or "", e.get("item") or "", e.get("text") or ""
    truth = {
        "cat_eq": cat == "beauty", "cat_ne": cat != "beauty", "cat_in": cat in ("beauty", "snacks"),
        "cat_not_in": cat not in ("beauty", "toys"), "cat_declared": cat == "snacks", "cat_blank": cat == "",
        "cat_profile": cat == "", "item_eq": item == "sku_new", "item_ne": item != "sku_new",
        "item_in": item in ("sku_new", "x"), "item_blank": item == "", "room_eq": e["room"] == "room_new",
        "room_ne": e["room"] != "room_new", "viewer_eq": e["viewer"] == "vnew", "type_eq": e["type"] == "view",
        "type_ne": e["type"] != "view", "price_eq": e.get("price", 0.0) == 12.5,
        "amount_eq": e.get("amount", 0.0) == 3, "ts_eq": e["ts"] == 103,
        "b": cat == "beauty" and e["type"] == "view", "nb": cat != "beauty", "in_b": cat in ("beauty", "toys"),
        "not_in_b": cat not in ("beauty", "toys"), "text_eq": text == "hello there",
        "text_ne": text != "hello there", "text_blank": text == "",
    }
    return sorted(name for name in rules if truth[name])


def make_events() -> list[dict]:
    """Every category form (absent, declared, undeclared named by the rules, unnamed, "") with
    and without the other fields, on a view and a comment; one timestamp each."""
    events, ts = [], 100.0
    for category in (None, "beauty", "snacks", "digital", "toys", "garden", ""):
        for extra in ({}, {"item": "sku_new", "room": "room_new", "viewer": "vnew", "text": "hello there",
                           "price": 12.5, "amount": 3.0}, {"item": "", "text": "", "price": 1.0}):
            for type_ in ("view", "comment"):
                e = {"type": type_, "viewer": "v1", "room": "r1", "ts": ts, **extra}
                if category is not None:
                    e["category"] = category
                events.append(e)
                ts += 1.0
    return events


EVENTS = make_events()
PAD = [{"type": "like", "viewer": "pad", "room": "r1", "ts": EVENTS[-1]["ts"] + 1 + i} for i in range(64)]
BY_TS = {e["ts"]: e for e in EVENTS}


@pytest.fixture(scope="module")
def field_rules():
    rules = load_rules(FIELDS)
    Engine(rules).warmup()
    return rules


@pytest.fixture(scope="module")
def category_rules():
    rules = load_rules(CATEGORY_ONLY)
    Engine(rules).warmup()
    return rules


def check(actions, rules: dict[str, str], shows_category: bool) -> None:
    """Per event: exactly the expected rules fired, and {event.category} showed its category."""
    fired: dict[float, list[str]] = {}
    for a in actions:
        if a.rule in ("cat_top", "top_fav"):
            continue
        fired.setdefault(a.ts, []).append(a.rule)
        if shows_category:
            assert a.params["c"] == (BY_TS[a.ts].get("category") or ""), a
    wrong = []
    for e in EVENTS:
        got, want = sorted(fired.get(e["ts"], [])), expected(e, rules)
        if got != want:
            wrong.append(f"{e}: missing {sorted(set(want) - set(got))}, extra {sorted(set(got) - set(want))}")
    assert not wrong, "\n".join(wrong)


def one_by_one(engine: Engine, convert, known: bool) -> list:
    """Each event in turn; ``known``: after a like with the same ids (so the fast path takes it)."""
    out = []
    for e in EVENTS:
        if known:
            engine.ingest(dict(e, type="like"))
        out += engine.ingest(convert(e))
    return out


def pure_python(rules) -> Engine:
    with mock.patch.object(engine_module, "_fastpath", None):
        return Engine(rules)


def _columns(events: list[dict], category) -> Batch:
    def col(name, absent=None):
        return [e.get(name, absent) for e in events]
    return Batch(type=np.array(col("type")), viewer=np.array(col("viewer"), dtype=object), room=np.array(col("room")),
                 ts=np.array(col("ts"), float), item=np.array(col("item", "")), category=category,
                 price=np.array(col("price", np.nan), float), amount=np.array(col("amount", np.nan), float),
                 text=np.array(col("text", "")))


def _coded(events: list[dict]) -> Coded:
    values = [e.get("category") for e in events]
    uniques = list(dict.fromkeys(v for v in values if v is not None))
    return Coded([-1 if v is None else uniques.index(v) for v in values], uniques)


def _ndjson(events: list[dict], escape: bool = False) -> bytes:
    data = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    return data.replace(b'"beauty"', b'"beaut\\u0079"') if escape else data


PATHS = {
    # one event at a time
    "dict": lambda rules: one_by_one(Engine(rules), dict, known=False),
    "dict-known": lambda rules: one_by_one(Engine(rules), dict, known=True),
    "Event-known": lambda rules: one_by_one(Engine(rules), lambda e: Event(**e), known=True),
    "json-known": lambda rules: one_by_one(Engine(rules), lambda e: json.dumps(e).encode(), known=True),
    "pure-python-known": lambda rules: one_by_one(pure_python(rules), dict, known=True),
    "pure-python-json": lambda rules: one_by_one(pure_python(rules), lambda e: json.dumps(e).encode(), known=False),
    # ingest_many
    "list-small": lambda rules: Engine(rules).ingest_many([dict(e) for e in EVENTS]),
    "list": lambda rules: Engine(rules).ingest_many([dict(e) for e in EVENTS + PAD]),
    "list-Event": lambda rules: Engine(rules).ingest_many([Event(**e) for e in EVENTS + PAD]),
    "ndjson": lambda rules: Engine(rules).ingest_many(_ndjson(EVENTS + PAD)),
    "ndjson-escaped": lambda rules: Engine(rules).ingest_many(_ndjson(EVENTS + PAD, escape=True)),
    "ndjson-msgspec": lambda rules: _without_scanner(lambda: Engine(rules).ingest_many(_ndjson(EVENTS + PAD))),
    "batch-str": lambda rules: Engine(rules).ingest_many(
        _columns(EVENTS + PAD, np.array([e.get("category", "") for e in EVENTS + PAD]))),
    "batch-object": lambda rules: Engine(rules).ingest_many(
        _columns(EVENTS + PAD, np.array([e.get("category") for e in EVENTS + PAD], dtype=object))),
    "batch-coded": lambda rules: Engine(rules).ingest_many(_columns(EVENTS + PAD, _coded(EVENTS + PAD))),
}


def _without_scanner(run):
    with mock.patch.object(engine_module, "scan_ndjson", return_value=None):
        return run()


@pytest.mark.parametrize("path", PATHS)
def test_every_field_and_operator_on_every_path(field_rules, path):
    check(PATHS[path](field_rules), FIELD_RULES, shows_category=True)


@pytest.mark.parametrize("path", PATHS)
def test_undeclared_categories_and_text_on_every_path(category_rules, path):
    check(PATHS[path](category_rules), CATEGORY_RULES, shows_category=False)


def test_the_paths_are_the_ones_named(field_rules, category_rules):
    """The fast forms really are taken: C fast path for dicts, the scanner for NDJSON (also
    with categories the rules never name, when no rule shows the category)."""
    if engine_module._fastpath is not None and engine_module.config.c_fast_path_enabled():
        engine = Engine(field_rules)
        assert engine._fast is not None and engine.ingest == engine._fast.ingest
        python_ingest = Engine.ingest
        with mock.patch.object(Engine, "ingest", autospec=True, side_effect=python_ingest) as full_path:
            engine = Engine(field_rules)
        e = {"type": "view", "viewer": "v1", "room": "r1", "ts": 1.0, "category": "beauty"}
        engine.ingest(e)
        calls = full_path.call_count
        assert [a.rule for a in engine.ingest(dict(e, ts=2.0))].count("cat_eq") == 1
        assert full_path.call_count == calls  # the known viewer's event stayed in C
    with mock.patch.object(Batch, "from_scanned", autospec=True, side_effect=Batch.from_scanned) as scanned:
        check(Engine(category_rules).ingest_many(_ndjson(EVENTS + PAD)), CATEGORY_RULES, shows_category=False)
    assert scanned.call_count == 1


def test_the_issue_minimal_case():
    engine = Engine.from_toml(CATEGORY_ONLY.split("\n[[rules]]\nname = \"nb\"")[0])
    e = {"type": "view", "viewer": "u1", "room": "r1", "ts": 10.0, "category": "beauty"}
    assert [a.action for a in engine.ingest(e)] == ["pick"]
    assert engine.ingest(dict(e, ts=11.0, category="beautyx")) == []


def test_int_category_codes_index_the_declared_categories(field_rules):
    """Int codes name declared categories; a code past them is some other category: it equals
    no literal (and shows as "")."""
    events = [{"type": "view", "viewer": "v1", "room": "r1", "ts": 100.0 + i} for i in range(4)]
    batch = _columns(events, np.array([0, 1, -1, 2]))
    fired: dict[float, set[str]] = {}
    for a in Engine(field_rules).ingest_many(batch):
        fired.setdefault(a.ts, set()).add(a.rule)
    assert {"cat_declared", "cat_in"} <= fired[100.0] and "cat_ne" in fired[100.0]
    assert not {"cat_declared", "cat_in", "cat_eq", "cat_blank"} & fired[101.0]
    assert {"cat_blank", "cat_profile", "cat_ne"} <= fired[102.0]
    assert not {"cat_eq", "cat_in", "cat_blank", "cat_declared"} & fired[103.0] and "cat_ne" in fired[103.0]


def test_profile_values_and_top_interest_compare_by_value(field_rules):
    engine = Engine(field_rules)
    engine.set_profile("v1", fav="beauty")

    def rules_on(ts, category):
        return {a.rule for a in engine.ingest({"type": "view", "viewer": "v1", "room": "r1", "ts": ts,
                                               "category": category})}

    assert "cat_profile" in rules_on(1.0, "beauty")
    assert "cat_top" not in rules_on(2.0, "beauty")  # no interest yet: top_interest is ""
    assert "cat_profile" not in rules_on(3.0, "snacks")
    assert "cat_top" in rules_on(4.0, "snacks")  # snacks now leads
    assert "cat_top" not in rules_on(5.0, "toys")
    engine.set_profile("v1", fav="snacks")
    assert {"cat_profile", "cat_top", "top_fav"} <= rules_on(6.0, "snacks")  # a state rule: fav vs top_interest
    report = engine.explain("v1", "top_fav")
    assert report.holds is True and report.last_fired == 6.0
    engine.set_profile("v1", fav="beauty")
    assert engine.explain("v1", "top_fav").holds is False


def test_undeclared_categories_feed_no_interest(field_rules):
    """A category the rules name but do not declare has a code past the declared ones: it must
    not touch interest() (nor any other column)."""
    engine = Engine(field_rules)
    for viewer in ("v1", "v2"):
        engine.ingest({"type": "enter", "viewer": viewer, "room": "r1", "ts": 0.5})
    before = engine._store.VF.copy()
    for i, category in enumerate(["beauty", "toys", "garden", "beauty"]):
        engine.ingest({"type": "view", "viewer": "v1", "room": "r1", "ts": 1.0 + i, "category": category})
    assert np.array_equal(engine._store.VF, before, equal_nan=True)  # no float state changed, any viewer's
    features = engine.viewer("v1")["features"]
    assert features["top_interest"] == ""
    assert all(v == 0.0 for k, v in features.items() if k.startswith("interest("))
    engine.ingest({"type": "cart", "viewer": "v1", "room": "r1", "ts": 9.0, "category": "digital"})
    assert engine.viewer("v1")["features"]["top_interest"] == "digital"


def test_snapshot_restore_and_reload_keep_comparing_by_value(field_rules, category_rules, tmp_path):
    engine = Engine(field_rules)
    e = {"type": "view", "viewer": "v1", "room": "r1", "ts": 10.0, "category": "beauty"}
    assert "cat_eq" in {a.rule for a in engine.ingest(e)}
    engine.snapshot(tmp_path / "s.seg")
    restored = Engine.restore(tmp_path / "s.seg")
    for eng in (engine, restored):
        rules = {a.rule for a in eng.ingest(dict(e, ts=11.0))}
        assert "cat_eq" in rules and "cat_ne" not in rules
        assert "cat_eq" not in {a.rule for a in eng.ingest(dict(e, ts=12.0, category="toys"))}
    assert engine.reload(CATEGORY_ONLY) is True
    assert {a.rule for a in engine.ingest(dict(e, ts=13.0))} == {"b", "in_b", "text_ne", "text_blank"}
    assert {a.rule for a in engine.ingest(dict(e, ts=14.0, category="toys"))} == {"nb", "in_b", "text_ne", "text_blank"}
    assert engine.reload(FIELDS) is True
    assert "cat_eq" in {a.rule for a in engine.ingest(dict(e, ts=15.0))}


def test_explain_reads_the_category_rule(field_rules):
    engine = Engine(field_rules)
    engine.ingest({"type": "view", "viewer": "v1", "room": "r1", "ts": 10.0, "category": "beauty"})
    report = engine.explain("v1", "cat_eq")
    assert report.last_fired is not None
    assert "event.category" in str(report)


@pytest.mark.parametrize("when, message", [
    ("event.item == event.category", "cannot compare event.item with event.category"),
    ("event.category != event.text", "cannot compare event.category with event.text"),
    ("event.category in ['x', event.room]", "cannot compare event.category with event.room"),
    ("top_interest == event.item", "cannot compare top_interest with event.item"),
    ("event.viewer == event.room", "cannot compare event.viewer with event.room"),
    ("event.type != event.item", "cannot compare event.type with event.item"),
])
def test_strings_that_cannot_compare_by_value_are_load_errors(when, message):
    """Rather than a comparison that is silently never true: a RulesError at the right operand."""
    text = FIELDS.split("\n[[rules]]")[0] + f'\n[[rules]]\nname = "r"\non = ["view"]\nwhen = "{when}"\nthen = "x"\n'
    with pytest.raises(RulesError, match=message):
        load_rules(text)


@pytest.mark.parametrize("when", ["event.category == fav", "fav == top_interest", "event.item == event.text",
                                  "event.room == event.room"])
def test_strings_that_compare_by_value_load(when):
    text = FIELDS.split("\n[[rules]]")[0] + f'\n[[rules]]\nname = "r"\non = ["view"]\nwhen = "{when}"\nthen = "x"\n'
    assert load_rules(text).rules[0].name == "r"
