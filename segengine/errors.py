"""One exception hierarchy; every error carries structured attributes."""

from __future__ import annotations

__all__ = ["SegengineError", "EventError", "RulesError", "Diagnostic", "SnapshotError", "ConcurrentUseError"]


class SegengineError(Exception):
    """Base of all segengine errors."""


class EventError(SegengineError, ValueError):
    """A malformed event: names the field and the problem.

    Attributes
    ----------
    field : str
        The offending field (``"ts"``, ``"viewer"`` ...), or ``""`` for the whole event.
    index : int or None
        Position in the batch (0-based) when raised by ``ingest_many``.
    """

    def __init__(self, message: str, field: str = "", index: int | None = None):
        self.field = field
        self.index = index
        self.reason = message
        where = f"event {index}: " if index is not None else ""
        at = f" - at `$.{field}`" if field else ""
        super().__init__(f"{where}{message}{at}")

    def at_index(self, index: int) -> "EventError":
        """The same error, located at position ``index`` of a batch."""
        return EventError(self.reason, self.field, index)


class Diagnostic:
    """One problem in a rules file, at a 1-based line and column."""

    __slots__ = ("file", "line", "col", "message", "source_line", "width")

    def __init__(self, file: str, line: int, col: int, message: str, source_line: str = "", width: int = 1):
        self.file = file
        self.line = line
        self.col = col
        self.message = message
        self.source_line = source_line
        self.width = max(1, width)

    def __str__(self) -> str:
        head = f"{self.file}:{self.line}:{self.col}: {self.message}"
        if not self.source_line:
            return head
        pad = "".join("\t" if ch == "\t" else " " for ch in self.source_line[: self.col - 1])
        return f"{head}\n    {self.source_line}\n    {pad}{'^' * self.width}"

    def __repr__(self) -> str:
        return f"Diagnostic({self.file}:{self.line}:{self.col}: {self.message})"


class RulesError(SegengineError, ValueError):
    """A rules file with errors; ``diagnostics`` lists every one of them, in file order."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.line, d.col))
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class SnapshotError(SegengineError, ValueError):
    """A snapshot that cannot be read: truncated, corrupt, foreign or from another format version."""


class ConcurrentUseError(SegengineError, RuntimeError):
    """An engine was called from a second thread while a call from another thread was running.

    Engines are single-threaded: such a call is refused before it reads or changes anything
    (the running call is not disturbed). Use one engine per thread, or serialise the calls
    with a lock.

    Attributes
    ----------
    owner : int
        ``threading.get_ident()`` of the thread whose call was running.
    thread : int
        ``threading.get_ident()`` of the refused caller.
    """

    def __init__(self, owner: int, thread: int):
        self.owner = owner
        self.thread = thread
        super().__init__(f"segengine engines are single-threaded: called from thread {thread} while a call from "
                         f"thread {owner} is running; use one engine per thread, or serialise calls with a lock")
