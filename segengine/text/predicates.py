"""Which text predicates a rules file uses, and the bit each one has in the kernel's text column.

The kernel's text column (``ev_text``) holds, when the rules use text predicates, the text's
string id + 2 in its low :data:`ID_BITS` bits (0: a text equal to no string the rules name)
and one bit per predicate above them. Without text predicates it is the string id itself
(or -1 when the rules never read text), as before.
"""

from __future__ import annotations

from ..compiler.layout import const_name
from ..rules import ast

__all__ = ["ID_BITS", "ID_MASK", "MAX_PREDICATES", "Key", "bit", "bit_name", "constants", "intent_of", "node_key", "predicates"]

#: low bits: the text's string id + 2 (for ``event.text == '...'``); predicate bits above
ID_BITS = 32
ID_MASK = (1 << ID_BITS) - 1
#: predicate bits 32..62: int64 stays positive
MAX_PREDICATES = 31

#: ("intent", NAME), ("matches", PATTERN) or ("contains", WORD casefolded)
Key = tuple[str, str]


def intent_of(event_type: str) -> str | None:
    """``"comment:price"`` -> ``"price"``; any other type -> None."""
    return event_type[8:] if event_type.startswith("comment:") else None


def _keys_of(node: ast.Node):
    for n in ast.walk(node):
        if isinstance(n, (ast.Intent, ast.TextMatch)):
            yield node_key(n)
        elif isinstance(n, (ast.Count, ast.Since, ast.Agg)):
            for t in n.types:
                if intent_of(t) is not None:
                    yield ("intent", intent_of(t))


def predicates(rs) -> dict[Key, int]:
    """Every text predicate of the rules -> its bit (a power of two above the id bits), in order
    of first use (segments, then rules in file order): deterministic for a given rules text."""
    keys: dict[Key, None] = {}
    for node in rs.segments.values():
        keys.update((k, None) for k in _keys_of(node))
    for rule in rs.rules:
        for t in rule.on or ():
            if intent_of(t) is not None:
                keys[("intent", intent_of(t))] = None
        keys.update((k, None) for k in _keys_of(rule.when))
    return {k: 1 << (ID_BITS + i) for i, k in enumerate(keys)}


def node_key(node: ast.TextMatch | ast.Intent) -> Key:
    """The predicate key of a text node."""
    if isinstance(node, ast.Intent):
        return ("intent", node.name)
    return (node.op, node.pattern if node.op == "matches" else node.pattern.casefold())


def bit(rs, node_or_key) -> int:
    """The bit of one predicate of ``rs`` (a text node or a key)."""
    key = node_or_key if isinstance(node_or_key, tuple) else node_key(node_or_key)
    return predicates(rs)[key]


def constants(rs) -> dict[str, int]:
    """The generated kernel's names of the bits: ``INTENT_PRICE``, and ``TEXT_0``, ``TEXT_1``...
    for ``matches``/``contains`` (their patterns are in the rule comments above their use)."""
    out = {}
    for i, (key, b) in enumerate(predicates(rs).items()):
        name = const_name("INTENT", key[1]) if key[0] == "intent" else f"TEXT_{i}"
        out[name if name not in out else f"{name}_{i}"] = b
    return out


def bit_name(rs, node_or_key) -> str:
    """The generated kernel's name of a predicate's bit (see :func:`constants`)."""
    b = bit(rs, node_or_key)
    return next(name for name, value in constants(rs).items() if value == b)
