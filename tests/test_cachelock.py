"""Numba's disk cache under concurrent saves (segengine/kernels/cachelock.py): every overload
saved at the same time as others loads back its own data, never another's."""

from __future__ import annotations

import threading
import time

from numba.core import caching

import segengine.kernels  # noqa: F401  (installs the lock)


def test_concurrent_saves_of_one_function_keep_each_overload_its_own_data(tmp_path, monkeypatch):
    assert getattr(caching.IndexDataCacheFile.save, "segengine_locked", False)
    load_index = caching.IndexDataCacheFile._load_index

    def slow_load_index(self):  # widen the window between reading the index and writing it
        out = load_index(self)
        time.sleep(0.02)
        return out

    monkeypatch.setattr(caching.IndexDataCacheFile, "_load_index", slow_load_index)
    files = [caching.IndexDataCacheFile(str(tmp_path), "f-1.py311", "stamp") for _ in range(6)]
    start = threading.Barrier(len(files))

    def save(i):
        start.wait()
        files[i].save(("sig", i), f"code of overload {i}")

    threads = [threading.Thread(target=save, args=(i,)) for i in range(len(files))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reader = caching.IndexDataCacheFile(str(tmp_path), "f-1.py311", "stamp")
    assert [reader.load(("sig", i)) for i in range(len(files))] == [f"code of overload {i}" for i in range(len(files))]
