"""What comments mean (segengine.text): the cost of intents and text predicates.

1. The intent matcher alone, on comments it has not seen, at 8 intents of 50 phrases: the
   Aho-Corasick automaton segengine uses (ahocorasick_rs), pyahocorasick's (when installed),
   one compiled regex per intent (segengine's fallback) and one regex alternation of every phrase (with a phrase -> intents map closed over
   nested phrases, so overlapping intents are all found), in µs per comment.
2. Single ``ingest`` of comments from JSON bytes with 8 intent rules (``on = ["comment:iK"]``)
   against the same rules reading plain ``comment`` events: the extra cost per comment, for new
   texts (every comment distinct: the matcher runs) and repeated ones (a cache lookup).
   Target (issue 17): <= 1.5 µs extra per comment.
3. ``like`` events on both engines: other events unchanged.
"""

from __future__ import annotations

import gc
import random
import re
import time

import msgspec

from segengine import Engine
from segengine.text.lexicon import BUILTIN_INTENTS
from segengine.text.matcher import IntentMatcher

from .common import Result, cli

N_INTENTS, N_PHRASES = 8, 50
FILLER = "哈哈主播今天的衣服好看吗来了姐妹们冲这个那个还有吗么呢吧啊666 ok lol wow the a is it"


def lexicon(seed: int = 1) -> dict[str, list[str]]:
    """8 intents of 50 phrases: the built-in phrases, padded with made-up 2-4 character ones."""
    rng = random.Random(seed)
    out = {}
    for i, phrases in enumerate(list(BUILTIN_INTENTS.values())[:N_INTENTS]):
        ph = list(phrases)
        while len(ph) < N_PHRASES:
            ph.append("".join(rng.choice("价质尺码快递优惠退换款式颜色面料") for _ in range(rng.randint(2, 4))))
        out[f"i{i}"] = ph[:N_PHRASES]
    return out


def comments(n: int, lex: dict[str, list[str]], distinct: bool, seed: int = 2) -> list[str]:
    """Short live-room comments; about half carry a phrase; ``distinct``: every one unique."""
    rng = random.Random(seed)
    phrases = [p for ps in lex.values() for p in ps]
    pool = []
    for k in range(n if distinct else 200):
        words = [rng.choice(FILLER.split()) if rng.random() < 0.3 else
                 "".join(rng.choice(FILLER) for _ in range(rng.randint(1, 5)))]
        if rng.random() < 0.5:
            words.insert(rng.randint(0, 1), rng.choice(phrases))
        if distinct:
            words.append(str(k))
        pool.append(" ".join(words))
    return pool if distinct else [rng.choice(pool) for _ in range(n)]


def alternation(lex: dict[str, list[str]]):
    """One regex of every phrase (longest first) in a lookahead, and each phrase's intents
    closed over the phrases it contains: all intents, overlapping ones included."""
    masks: dict[str, int] = {}
    for i, ps in enumerate(lex.values()):
        for p in ps:
            masks[p.casefold()] = masks.get(p.casefold(), 0) | (1 << i)
    closure = {p: 0 for p in masks}
    for p in masks:
        for q, m in masks.items():
            if q in p:
                closure[p] |= m
    rx = re.compile("(?=(" + "|".join(map(re.escape, sorted(masks, key=len, reverse=True))) + "))")

    def match(folded: str) -> int:
        mask = 0
        for m in rx.finditer(folded):
            mask |= closure[m.group(1)]
        return mask
    return match


def pyahocorasick(lex: dict[str, list[str]]) -> dict:
    """pyahocorasick's automaton over the same phrases, for comparison (when it is installed)."""
    try:
        import ahocorasick
    except ImportError:
        return {}
    masks: dict[str, int] = {}
    for i, ps in enumerate(lex.values()):
        for p in ps:
            masks[p.casefold()] = masks.get(p.casefold(), 0) | (1 << i)
    a = ahocorasick.Automaton()
    for p, m in masks.items():
        a.add_word(p, m)
    a.make_automaton()

    def match(folded: str) -> int:
        mask = 0
        for _, m in a.iter(folded):
            mask |= m
        return mask
    return {"Aho-Corasick (pyahocorasick)": match}


def per_call_us(fn, items, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for x in items:
            fn(x)
        best = min(best, (time.perf_counter() - started) / len(items) * 1e6)
    return best


def rules_toml(lex: dict[str, list[str]], with_intents: bool) -> str:
    out = []
    if with_intents:
        out.append("[intents]")
        out += [f"{name} = {msgspec.json.encode(ps).decode()}" for name, ps in lex.items()]
    for i, name in enumerate(lex):
        on = f"comment:{name}" if with_intents else "comment"
        out += ["[[rules]]", f'name = "r{i}"', f'on = ["{on}"]', f'when = "count({on}, 5m) > 100000"', f'then = "a{i}"']
    out += ["[[rules]]", 'name = "likes"', 'on = ["like"]', 'when = "count(like, 1m) > 100000"', 'then = "l"']
    return "\n".join(out)


def ingest_us(engine: Engine, events: list[bytes], repeat: int) -> float:
    """Median over ``repeat`` passes of the mean µs per ingest (times move forward: one stream,
    split into ``repeat`` parts)."""
    part = len(events) // repeat
    figures = []
    gc.collect()
    gc.disable()
    try:
        for r in range(repeat):
            chunk = events[r * part:(r + 1) * part]
            started = time.perf_counter()
            for e in chunk:
                engine.ingest(e)
            figures.append((time.perf_counter() - started) / len(chunk) * 1e6)
    finally:
        gc.enable()
    return sorted(figures)[len(figures) // 2]


def stream(kind: str, texts: list[str] | None, n: int, viewers: int = 1000) -> list[bytes]:
    enc = msgspec.json.encode
    return [enc({"type": kind, "viewer": i % viewers, "room": "r1", "ts": 1_700_000_000.0 + i * 0.001,
                 **({"text": texts[i]} if texts else {})}) for i in range(n)]


def run(quick: bool) -> list[Result]:
    lex = lexicon()
    n = 20_000 if quick else 100_000
    repeat = 3 if quick else 5
    params = {"intents": N_INTENTS, "phrases_per_intent": N_PHRASES}
    results = []
    # 1. the matcher alone
    new = [c.casefold() for c in comments(n // 4, lex, distinct=True)]
    intents = [(1 << i, ps) for i, ps in enumerate(lex.values())]
    matchers = {"Aho-Corasick (ahocorasick_rs)": IntentMatcher(intents, use_automaton=True),
                **pyahocorasick(lex),
                "one regex per intent": IntentMatcher(intents, use_automaton=False),
                "one regex alternation": alternation(lex)}
    for label, fn in matchers.items():
        results.append(Result("bench_text", f"intent matcher: {label}", per_call_us(fn, new, repeat), "us/comment",
                              params=params))
    # 2. and 3. through the engine
    engines = {}
    for with_intents in (False, True):
        engine = Engine.from_toml(rules_toml(lex, with_intents))
        engine.ingest_many([{"type": "enter", "viewer": i, "room": "r1", "ts": 1_699_999_999.0} for i in range(1000)])
        engines[with_intents] = engine
    for label, texts in (("new texts", comments(n, lex, distinct=True)), ("repeated texts", comments(n, lex, False))):
        events = stream("comment", texts, n)
        plain, intent = (ingest_us(engines[w], events, repeat) for w in (False, True))
        extra = max(0.0, intent - plain)  # within noise, the difference can come out below 0
        results.append(Result("bench_text", f"comment ingest, 8 intent rules, {label}", intent, "us",
                              params={**params, "plain_comment_us": round(plain, 3)}))
        results.append(Result("bench_text", f"extra per comment, {label}", extra, "us", "<= 1.5 us", extra <= 1.5,
                              params=params))
    # likes: after the comments (time moves forward)
    likes = [msgspec.json.encode({"type": "like", "viewer": i % 1000, "room": "r1", "ts": 1_700_100_000.0 + i * 0.001})
             for i in range(n)]
    plain, intent = (ingest_us(engines[w], likes, repeat) for w in (False, True))
    results.append(Result("bench_text", "like ingest with intent rules / without", intent / plain, "x",
                          "about 1 (other events unchanged)", intent / plain <= 1.1,
                          params={"with_us": round(intent, 3), "without_us": round(plain, 3)}))
    return results


if __name__ == "__main__":
    raise SystemExit(cli("bench_text", run))
