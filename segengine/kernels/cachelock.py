"""Numba's disk cache, safe when several processes compile the same function at once.

Numba saves a compiled overload by reading the function's index, picking the first unused data
file name, writing the index, then the data, with no lock (numba/numba#10128, where the
maintainers suggest one). Two processes compiling two overloads of one function at once (pytest
workers, the shards of a ``ShardedEngine`` starting on a fresh cache) can both pick the same
data file: the index then maps an overload to another's machine code, and every later process
fails to type the kernels until the cache is deleted. Here each save holds an exclusive
``flock`` on ``INDEX.lock`` beside the index, so it reads the index as the last save left it.
Loading takes no lock: a reader that sees an index entry before its data file exists finds no
file and compiles, as Numba already handles.
"""

from __future__ import annotations

import functools

from numba.core import caching

try:
    import fcntl
except ImportError:  # not POSIX: Numba's own behaviour
    fcntl = None  # type: ignore[assignment]

__all__ = ["install"]


def _locked(save):
    @functools.wraps(save)
    def locked_save(self, key, data):
        with open(self._index_path + ".lock", "ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            return save(self, key, data)

    locked_save.segengine_locked = True
    return locked_save


def install() -> None:
    """Wrap ``IndexDataCacheFile.save`` in the lock (once per process)."""
    save = caching.IndexDataCacheFile.save
    if fcntl is not None and not getattr(save, "segengine_locked", False):
        caching.IndexDataCacheFile.save = _locked(save)
