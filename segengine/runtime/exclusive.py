"""One thread at a time: the guard every public call of an engine enters.

Why: an engine is single-threaded by design (no locks on its hot path), but nothing stopped
two threads from calling one engine, and the batch kernels release the GIL: a second
thread then grew or replaced the state arrays a kernel was writing into, and the process
crashed (``malloc(): unsorted double linked list corrupted``). Now a call from a second
thread while a call is running raises :class:`~segengine.ConcurrentUseError` before it
reads or changes anything; the running call is not disturbed.

How: the outermost entry records the calling thread; entries from that same thread nest
(``ingest_many`` calls ``ingest``, ``ingest`` calls back into Python), entries from any other
thread are refused. Where ``segengine.runtime._fastpath`` is built, the guard is its C ``Guard``,
which ``FastPath.ingest`` checks and sets in C (~2 ns a call); :class:`Guard` here is the
same thing in Python for a build without a C compiler.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Literal, TypeVar

__all__ = ["Guard", "exclusive"]

F = TypeVar("F", bound=Callable[..., Any])


class Guard:
    """A context manager that nests within one thread and refuses every other thread.

    ``error(owner, caller)`` builds the exception for a refused entry (thread idents).
    """

    __slots__ = ("owner", "depth", "_error", "_lock")

    def __init__(self, error: Callable[[int, int], BaseException]):
        self.owner = 0  # thread ident of the thread inside a call; 0: none
        self.depth = 0
        self._error = error
        self._lock = threading.Lock()  # its non-blocking acquire is the atomic test-and-set

    def __enter__(self) -> None:
        me = threading.get_ident()
        if self.owner != me:  # only this thread ever sets owner to its own ident
            if not self._lock.acquire(False):
                raise self._error(self.owner, me)
            self.owner = me
        self.depth += 1

    def __exit__(self, *exc_info: object) -> Literal[False]:
        self.depth -= 1
        if not self.depth:
            self.owner = 0
            self._lock.release()
        return False


def exclusive(method: F) -> F:
    """Run an ``Engine`` method inside the engine's guard (``self._guard``)."""

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._guard:
            return method(self, *args, **kwargs)

    return call  # type: ignore[return-value]
