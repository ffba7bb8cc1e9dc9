"""What a built-in feature declares: :class:`Feature`, and the vocabulary its code uses.

A feature is one value (or a family of values sharing state) that rule conditions read:
``dwell``, ``paid``, ``count(like, 1m)``, ``interest(beauty)``. Its module declares, once:

* its names and types for the checker (``names``), or the syntax nodes it evaluates (``nodes``:
  ``count(...)``, ``since(...)``, ``interest(...)``);
* the event types that can change it (``inputs``: state rules that read only such features are
  skipped while no such event comes), and the flag bits a new session clears;
* the columns it needs (:meth:`Feature.columns`, a function of the rules and the layout);
* how an event updates it (:meth:`Feature.update`: statements of the event kernel);
* its value (:meth:`Feature.number`, :meth:`Feature.truth`, :meth:`Feature.string`): an expression,
  with its slope and next-change time where time alone changes it;
* what ``viewer()`` reports (:meth:`Feature.readouts`) and the unit ``explain`` shows (:meth:`Feature.unit`).

The generators pass themselves as ``k`` (module level: columns and event codes as named
constants, ``k.col("vi", "flags")`` is ``"VI_FLAGS"``) or ``gen`` (one generated function's
expressions: ``gen.emit``, ``gen.tmp``, ``gen.vi``, ``gen.cache``). No feature imports the compiler.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..rules import ast

__all__ = ["Feature", "CONST", "LINEAR", "DECAY", "MIXED", "NEVER", "us",
           "FLAG_PRESENT", "FLAG_PAID", "FLAG_FOLLOWS", "FLAG_SEEN"]

#: How a numeric value evolves with time alone (see :mod:`segengine.compiler.exprgen`).
CONST, LINEAR, DECAY, MIXED = 0, 1, 2, 3
#: A next-change time that never comes (the kernel's ``NEVER``).
NEVER = "NEVER"

#: Bits of a viewer's ``flags`` column.
FLAG_PRESENT = 1
FLAG_PAID = 2
FLAG_FOLLOWS = 4
FLAG_SEEN = 8  # has sent an accepted event (segment_size counts these)


def us(seconds: float) -> int:
    """Seconds -> integer microseconds, as the kernels keep time."""
    return int(round(seconds * 1_000_000))


class Feature:
    """One family of built-in values. Subclasses override what they need; the defaults do nothing."""

    #: Registry key (unique), and where its columns, update code and readouts come among the features.
    key: ClassVar[str] = ""
    rank: ClassVar[int] = 100
    #: Bare names and their types ("num", "bool", "str") for the checker.
    names: ClassVar[dict[str, str]] = {}
    #: Syntax nodes it evaluates (``ast.Count``, ``ast.Since``, ``ast.Agg``, ``ast.Interest``).
    nodes: ClassVar[tuple[type, ...]] = ()
    #: Per name: the event types whose events can change its value (besides a session starting or
    #: ending, and time passing); None when something else can (the room, other viewers).
    inputs: ClassVar[dict[str, tuple[str, ...] | None]] = {}
    #: Names whose values ``explain`` shows in seconds.
    seconds: ClassVar[frozenset[str]] = frozenset()
    #: String names whose values are category names (compared in the category code space).
    categories: ClassVar[frozenset[str]] = frozenset()
    #: Bits of ``flags`` that a new session clears.
    session_flags: ClassVar[int] = 0

    def owns(self, node: ast.Node) -> bool:
        """Is ``node`` one of this feature's values?"""
        if isinstance(node, ast.Name):
            return node.kind == "builtin" and node.name in self.names
        return isinstance(node, self.nodes) if self.nodes else False

    def used(self, names: set[str], nodes: list[ast.Node]) -> bool:
        """Do the rules read this feature (``names``: every bare name; ``nodes``: every node)?"""
        return bool(names & self.names.keys()) or (bool(self.nodes) and any(self.owns(n) for n in nodes
                                                                            if not isinstance(n, ast.Name)))

    def node_inputs(self, node: ast.Node) -> tuple[str, ...] | None:
        """The event types that can change ``node`` (one of this feature's values)."""
        if isinstance(node, ast.Name):
            return self.inputs.get(node.name)
        return None

    def unit(self, node: ast.Node) -> str:
        """"s" when ``explain`` shows ``node``'s value in seconds."""
        return "s" if isinstance(node, ast.Name) and node.name in self.seconds else ""

    # layout ---------------------------------------------------------------------------
    def columns(self, rs: Any, lay: Any, nodes: list[ast.Node], names: set[str]) -> None:
        """Add the columns this feature needs for rules ``rs`` to ``lay`` (``lay.add(matrix, name)``)."""

    # the event kernel -----------------------------------------------------------------
    def tail_columns(self, rs: Any, lay: Any, nodes: list[ast.Node]) -> set[str] | None:
        """Add the columns of which an event reads a small part, or only events of a few types
        (one key's block of a keyed counter), after every other feature's, so that they end the
        rows; return the event types that read them (None: none added). The C fast path starts
        loading only the rows' other lines for the other types (runtime/_fastpath.c)."""
        return None

    def update(self, k: Any) -> list[str]:
        """Statements applied to every event of a viewer (``code``: its type, ``now``: its time)."""
        return []

    def on(self, k: Any) -> dict[str, list[str]]:
        """Statements per event type: the generator joins every feature's into one if/elif chain."""
        return {}

    def session_start(self, k: Any) -> list[str]:
        """Statements run when a viewer's session starts (``slot``, ``now``), after its room's
        audience (``RI[room, audience]``) counted it."""
        return []

    def session_end(self, k: Any, slot: str, end: str) -> list[str]:
        """Statements run when viewer ``slot``'s session in room ``sroom`` ends at ``end``, after
        its audience count went down (``VI[slot, sess_start]`` still holds the session's start)."""
        return []

    def pass_start(self, mg: Any, gen: Any) -> None:
        """Emit statements at the start of a viewer's evaluation pass (after the event is applied,
        before the rules: ``timer`` is false for an event, ``ev_code`` its type)."""

    # values ---------------------------------------------------------------------------
    def number(self, gen: Any, node: ast.Node, v: str) -> tuple[str, str, int, str]:
        """Emit ``v = value``; return (value, slope per second, kind, horizon)."""
        raise TypeError(f"{self.key} has no numeric value {ast.to_source(node)}")

    def truth(self, gen: Any, node: ast.Node) -> str:
        """An expression of the boolean value of ``node``."""
        raise TypeError(f"{self.key} has no boolean value {ast.to_source(node)}")

    def string(self, gen: Any, node: ast.Node) -> str:
        """An expression of the integer code of string ``node`` (in the category space)."""
        raise TypeError(f"{self.key} has no string value {ast.to_source(node)}")

    def compare(self, gen: Any, node: ast.Binary, b: str) -> str | None:
        """Emit comparison ``node`` into ``b`` when this feature knows better than the generic
        code (return its next change), else None."""
        return None

    # viewer() -------------------------------------------------------------------------
    def readouts(self, rs: Any, lay: Any) -> list[tuple[str, ast.Node]]:
        """The (label, node) pairs ``viewer()`` reports under "features", in order."""
        return [(name, ast.Name(name, kind="builtin", type=t)) for name, t in self.names.items()]
