"""One shard: an Engine inside a Ray actor, with its own recovery checkpoints.

The actor applies numbered operations (``apply(seq, ops)``); every ``every_batches`` operations or
``every_seconds`` seconds it saves its engine to ``<checkpoints>/shard-<i>.<seq>.snap`` and then
points ``shard-<i>.json`` at it (an atomic rename), so a restarted actor finds a snapshot and the
sequence number of the last operation in it. The driver re-sends what followed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..engine import Engine
from ..rules.load import load_rules


class Shard:
    """The actor's class (wrapped by ``ray.remote`` in sharded.py: Ray stays an optional import)."""

    def __init__(self, index: int, rules_text: str, filename: str, checkpoints: str,
                 every_batches: int, every_seconds: float, restore_from: str | None = None) -> None:
        self.index = index
        self.dir = Path(checkpoints)
        self.every_batches = every_batches
        self.every_seconds = every_seconds
        pointer = self.dir / f"shard-{index}.json"
        if pointer.exists():  # a restart: the last checkpoint
            meta = json.loads(pointer.read_text())
            self.engine = Engine.restore(self.dir / meta["file"])
            self.seq = int(meta["seq"])
        elif restore_from is not None:  # ShardedEngine.restore: the saved file
            self.engine = Engine.restore(restore_from)
            self.seq = 0
        else:
            self.engine = Engine(load_rules(rules_text, filename)).warmup()
            self.seq = 0
        self.saved_seq = self.seq
        self.since = 0
        self.saved_at = time.monotonic()
        self.restarts = int(os.environ.get("RAY_ACTOR_RESTARTS", "0") or 0)

    def pid(self) -> int:
        return os.getpid()

    def applied(self) -> int:
        """The sequence number of the last operation applied (after a restart: the checkpoint's)."""
        return self.seq

    def apply(self, seq: int, ops: list[tuple[str, tuple]]) -> tuple[list, int | None]:
        """Apply operation ``seq`` (a list of engine calls); return its actions and, when this call
        saved a checkpoint, its sequence number. A ``seq`` already applied does nothing."""
        if seq <= self.seq:
            return [], None
        actions: list = []
        for name, args in ops:
            out = getattr(self, "_op_" + name)(*args)
            if out:
                actions.extend(out)
        self.seq = seq
        self.since += 1
        if self.since >= self.every_batches or time.monotonic() - self.saved_at >= self.every_seconds:
            return actions, self.checkpoint()
        return actions, None

    def checkpoint(self) -> int:
        """Save the engine with the current sequence number; drop the previous checkpoint."""
        name = f"shard-{self.index}.{self.seq}.snap"
        self.engine.snapshot(self.dir / name)
        pointer = self.dir / f"shard-{self.index}.json"
        old = json.loads(pointer.read_text())["file"] if pointer.exists() else None
        tmp = pointer.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seq": self.seq, "file": name}))
        os.replace(tmp, pointer)
        if old and old != name:
            (self.dir / old).unlink(missing_ok=True)
        self.saved_seq, self.since, self.saved_at = self.seq, 0, time.monotonic()
        return self.seq

    # operations (logged by the driver, replayed after a restart) --------------------------------
    def _now(self) -> float:
        return self.engine._now_us() / 1e6  # noqa: SLF001 - the engine's time, read-only, same package

    def _op_advance(self, now: float) -> list:
        return self.engine.advance(now) if now > self._now() else []

    def _op_ingest(self, event: Any) -> list:
        return self.engine.ingest(event)

    def _op_ingest_many(self, batch: Any, errors: str) -> list:
        return self.engine.ingest_many(batch, errors=errors)

    def _op_set_profile(self, viewer: str | int, attrs: dict) -> list:
        self.engine.set_profile(viewer, **attrs)
        return []

    def _op_reload(self, text: str, filename: str) -> list:
        self.engine.reload(text)
        return []

    def _op_reset(self) -> list:
        self.engine = Engine(self.engine.rules)
        return []

    # queries (change nothing) --------------------------------------------------------------------
    def query(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.engine, name)(*args, **kwargs)

    def save(self, path: str) -> int:
        return self.engine.snapshot(path)

    def check_rules(self, text: str, filename: str) -> None:
        """Load and compile ``text`` (raises RulesError) without changing the engine."""
        Engine(load_rules(text, filename), capacity=4).warmup()
