"""The built-in features: every name and function a condition can read, declared once.

Each module of this package declares one family (``FEATURES``, a list of
:class:`~.base.Feature`): :mod:`.session`, :mod:`.money`, :mod:`.room`, :mod:`.cart`,
:mod:`.interest`, :mod:`.windows`. The checker, the layout, the expression and kernel
generators, ``viewer()`` and ``explain`` iterate :data:`REGISTRY` (ordered by ``rank``): adding
a built-in is adding a module here. See docs/architecture.md, "Adding a built-in feature".
"""

from __future__ import annotations

import importlib
import pkgutil

from ..rules import ast
from .base import Feature

__all__ = ["REGISTRY", "Feature", "builtin_types", "feature_of", "category_names", "unit"]


def _discover() -> list[Feature]:
    found: list[Feature] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name != "base" and not info.name.startswith("_"):
            found.extend(getattr(importlib.import_module(f"{__name__}.{info.name}"), "FEATURES", []))
    found.sort(key=lambda f: (f.rank, f.key))
    keys = [f.key for f in found]
    assert len(set(keys)) == len(keys), f"two features share a key: {keys}"
    return found


#: Every built-in feature, by rank.
REGISTRY: list[Feature] = _discover()
_BY_NAME: dict[str, Feature] = {name: f for f in REGISTRY for name in f.names}
assert len(_BY_NAME) == sum(len(f.names) for f in REGISTRY), "two features declare the same name"


def builtin_types() -> dict[str, str]:
    """Every built-in name and its type ("num", "bool", "str"), for the checker."""
    return {name: t for f in REGISTRY for name, t in f.names.items()}


def category_names() -> frozenset[str]:
    """Built-in string names whose values are category names."""
    return frozenset().union(*(f.categories for f in REGISTRY))


def feature_of(node: ast.Node) -> Feature | None:
    """The feature that evaluates ``node`` (a built-in name or a feature function), if any."""
    if isinstance(node, ast.Name):
        return _BY_NAME.get(node.name) if node.kind == "builtin" else None
    for f in REGISTRY:
        if f.nodes and f.owns(node):
            return f
    return None


def unit(node: ast.Node) -> str:
    """"s" when ``explain`` shows ``node``'s value in seconds."""
    f = feature_of(node)
    return f.unit(node) if f else ""
