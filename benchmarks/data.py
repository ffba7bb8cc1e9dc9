"""The one data generator every benchmark shares: the standard workload (SPEC §7) and
populated engines, built once and cached on disk between runs."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from segengine import Batch, Engine
from segengine.testing.simulate import write_ndjson

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "examples" / "live_room.toml"
T0 = 1_700_000_000.0


def data_dir() -> Path:
    path = Path(os.environ.get("SEGENGINE_BENCH_DATA", Path(tempfile.gettempdir()) / "segengine-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def workload(viewers: int, hours: float = 3.0, seed: int = 0) -> bytes:
    """The standard workload as NDJSON bytes (generated once, then read from disk)."""
    key = hashlib.sha1(f"{viewers}-{hours}-{seed}-v1".encode()).hexdigest()[:12]
    path = data_dir() / f"workload-{viewers}-{hours}-{seed}-{key}.ndjson"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            write_ndjson(f, viewers=viewers, hours=hours, seed=seed)
        tmp.replace(path)
    return path.read_bytes()


def populated(viewers: int, rules=RULES, str_ids: bool = False, pages: bool = True) -> Engine:
    """An engine holding ``viewers`` present viewers (one ``enter`` each, as one Batch), its state
    arrays resident (:func:`resident`) unless ``pages`` is false."""
    engine = Engine.from_file(rules, capacity=max(1024, viewers))
    chunk = 1_000_000
    for start in range(0, viewers, chunk):
        ids = np.arange(start, min(viewers, start + chunk), dtype=np.int64)
        viewer = np.array([f"u{i}" for i in ids], dtype=object) if str_ids else ids
        ts = T0 + ids * (60.0 / max(1, viewers))  # all enter within the first minute
        engine.ingest_many(Batch(type=np.full(len(ids), "enter", dtype=object), viewer=viewer, room="r1", ts=ts))
    return resident(engine) if pages else engine


def resident(engine: Engine) -> Engine:
    """Write to every page of ``engine``'s per-viewer state arrays, as an engine that has run a
    while has: rows no event wrote yet (VF and VN of a fresh engine are zeroed lazily) otherwise
    read the kernel's shared zero page, always in cache, and their first write costs a page
    fault inside a timed call. Without this a lean engine (fewer columns written at ``enter``)
    reads from the zero page more often than a full one, and a ratio between the two is off."""
    store = engine._core.store
    for name in ("VI", "VF", "VN"):
        cells = getattr(store, name).reshape(-1).view(np.uint8)
        cells[::4096] += 0  # one byte per page, unchanged
    return engine


def single_events(viewers: int, n: int, seed: int = 1, start: float = T0 + 61.0, gap: float = 1e-4) -> list[dict]:
    """``n`` interaction events of random present viewers, ``gap`` seconds apart. :func:`populated`
    viewers entered in ``[T0, T0 + 60)`` and time out 90 s later: events before ``T0 + 90`` find
    every viewer present and no session ending (later ones also run the expiries due)."""
    rng = np.random.default_rng(seed)
    types = np.array(["heartbeat", "like", "view", "comment", "click"])
    kinds = rng.integers(0, len(types), n)
    who = rng.integers(0, viewers, n)
    out = []
    for i in range(n):
        e = {"type": str(types[kinds[i]]), "viewer": int(who[i]), "room": "r1", "ts": start + i * gap}
        if kinds[i] in (2, 4):
            e.update(item=f"i{who[i] % 200}", category="digital", price=float(20 + who[i] % 300))
        out.append(e)
    return out
