"""One multi-pattern matcher for all the intents a rules file uses, built at load.

A comment has intent NAME when its casefolded text contains one of NAME's casefolded phrases.
The matcher reports every intent present, overlapping ones included ("多少钱包邮吗" is price
and shipping). It is an Aho-Corasick automaton from ``ahocorasick_rs`` (one pass over the text
whatever the number of phrases, every match, overlaps included). Measured by
``benchmarks/bench_text.py`` on 8 intents of 50 phrases, on comments not seen before (a shared
2-core x86 server, CPython 3.11): ``ahocorasick_rs`` 0.43 us a comment, ``pyahocorasick`` 0.61 us,
one compiled regex per intent 1.75 us, one alternation of every phrase 6.5 us. Without the
library the per-intent regexes are used (same answers, the slower figure).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

try:
    import ahocorasick_rs
except ImportError:  # pragma: no cover - a declared dependency; the fallback gives the same answers
    ahocorasick_rs = None

__all__ = ["IntentMatcher"]


class IntentMatcher:
    """``matcher(folded_text) -> mask``: the OR of the bits of the intents whose phrases occur.

    Parameters
    ----------
    intents : iterable of (bit, phrases)
        Each intent's bit (any int) and its phrases.
    use_automaton : bool
        Use the Aho-Corasick automaton (default: when ``ahocorasick_rs`` is installed).
    """

    def __init__(self, intents: Iterable[tuple[int, Iterable[str]]], use_automaton: bool | None = None):
        masks: dict[str, int] = {}
        by_bit: dict[int, list[str]] = {}
        for b, phrases in intents:
            for p in phrases:
                folded = p.casefold()
                if folded:
                    masks[folded] = masks.get(folded, 0) | b
                    by_bit.setdefault(b, []).append(folded)
        self.empty = not masks
        if use_automaton is None:
            use_automaton = ahocorasick_rs is not None
        self.match = _nothing
        if self.empty:
            return
        if use_automaton:
            phrases = list(masks)
            bits = [masks[p] for p in phrases]
            find = ahocorasick_rs.AhoCorasick(phrases).find_matches_as_indexes

            def match(folded: str) -> int:
                mask = 0
                for i, _, _ in find(folded, overlapping=True):
                    mask |= bits[i]
                return mask
        else:
            regexes = [(b, re.compile("|".join(map(re.escape, sorted(ps, key=len, reverse=True)))).search)
                       for b, ps in by_bit.items()]

            def match(folded: str) -> int:
                mask = 0
                for b, search in regexes:
                    if search(folded):
                        mask |= b
                return mask
        self.match = match

    def __call__(self, folded: str) -> int:
        """The mask of the intents in ``folded`` (a casefolded text)."""
        return self.match(folded)


def _nothing(folded: str) -> int:
    return 0
