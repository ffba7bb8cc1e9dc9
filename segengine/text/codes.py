"""The kernel's text column, computed per distinct text before the kernel runs."""

from __future__ import annotations

import re

import numpy as np

from ..rules import ast
from ..schema.batch import Coded, codes_of, lookup_all
from .matcher import IntentMatcher
from .predicates import predicates

__all__ = ["CACHE_SIZE", "TextCodes", "text_codes"]

#: distinct texts remembered (text -> column value); full, the cache starts again empty. A plain
#: dict, not an LRU: the C fast path reads it directly (a dict lookup, no Python call).
CACHE_SIZE = 1 << 16


class TextCodes:
    """Text -> the kernel's ``text`` value for one rules file, with text predicates.

    The value is ``bits | (string id + 2)``: the bits of the predicates that hold (see
    :func:`segengine.text.predicates.predicates`) and, when the rules compare ``event.text``
    by value, the text's id in the engine's string table (-2 when it has none: equal to no
    literal). Cost: a dict lookup for a text seen before; a new text costs its casefold, one
    pass of the intent matcher and each ``matches``/``contains`` test once.

    Parameters
    ----------
    rs : RuleSet
    string_ids : dict
        The engine's string table (str -> id), read, never written.
    by_value : bool
        The rules compare ``event.text`` with ``==``/``in``.
    cache_unseen : bool
        Whether a text with no string id may be cached (false when the rules compare
        ``event.text`` with ``event.item``, whose strings are interned as they come).
    """

    def __init__(self, rs, string_ids: dict, by_value: bool, cache_unseen: bool = True):
        self.bits = predicates(rs)
        self.string_ids = string_ids
        self.by_value = by_value
        self.cache_unseen = cache_unseen or not by_value
        self.intents = IntentMatcher((b, rs.intents[name]) for (kind, name), b in self.bits.items() if kind == "intent")
        self.regexes = [(b, re.compile(arg)) for (kind, arg), b in self.bits.items() if kind == "matches"]
        self.words = [(b, arg) for (kind, arg), b in self.bits.items() if kind == "contains"]
        self.cache: dict[str, int] = {}
        self.compute = self._computer()
        self.value = self._valuer()
        self.empty = self.compute("")  # events without a text read it from the cache: kept there
        self.cache[""] = self.empty

    def _computer(self):
        """``compute(text) -> value``, not cached: one closure over what this file uses (a new
        comment's cost is what it needs, no attribute lookups)."""
        match, regexes, words = self.intents.match, [(b, rx.search) for b, rx in self.regexes], self.words
        ids = self.string_ids if self.by_value else None
        if not regexes and not words and ids is None:
            def compute(text: str) -> int:  # intents only: the common case
                return match(text.casefold())
            return compute

        def compute(text: str) -> int:
            folded = text.casefold()
            mask = match(folded)
            for b, search in regexes:
                if search(text):
                    mask |= b
            for b, word in words:
                if word in folded:
                    mask |= b
            return mask | ((ids.get(text, -2) + 2) if ids is not None else 0)
        return compute

    def _valuer(self):
        """``value(text) -> value``: from the cache, else computed and cached (None reads as "")."""
        cache, compute, unseen = self.cache, self.compute, self.cache_unseen
        get = cache.get

        def value(text: str | None) -> int:
            if text is None:
                text = ""
            v = get(text)
            if v is None:
                v = compute(text)
                if unseen or (v & 0xFFFFFFFF):
                    if len(cache) >= CACHE_SIZE:
                        cache.clear()
                        cache[""] = self.empty
                    cache[text] = v
            return v
        return value

    def get(self, text: str, missing: int = 0) -> int:
        """``dict.get``'s form of :meth:`value` (batch columns map their distinct texts through it)."""
        return self.value(text)

    def column(self, col, n: int, blank) -> np.ndarray:
        """The values of a batch's text column: each distinct text once."""
        if col is None:
            return np.full(n, self.value(""), np.int64)
        if isinstance(col, Coded):
            table = lookup_all(self, col.uniques, 0)
            return np.append(table, self.value(""))[np.where(col.codes >= 0, col.codes, -1)]
        return codes_of(blank(col), self, 0)[0]


def text_codes(rs, string_ids: dict) -> TextCodes:
    """The :class:`TextCodes` of a rules file that uses text predicates."""
    nodes = [n for r in rs.rules for n in ast.walk(r.when)]
    operands = {id(n.operand) for n in nodes if isinstance(n, ast.TextMatch)}
    by_value = any(isinstance(n, ast.EventField) and n.field_name == "text" and id(n) not in operands for n in nodes)

    def field_vs_field(a, b) -> bool:
        return isinstance(a, ast.EventField) and isinstance(b, ast.EventField) and "text" in (a.field_name, b.field_name)

    mixed = any((isinstance(n, ast.Binary) and field_vs_field(n.left, n.right))
                or (isinstance(n, ast.In) and any(field_vs_field(n.operand, i) for i in n.items)) for n in nodes)
    return TextCodes(rs, string_ids, by_value, cache_unseen=not mixed)
