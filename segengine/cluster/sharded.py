"""ShardedEngine: the Engine's API over N shards (Ray actors), exact merges and exact recovery."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import msgspec

from ..engine import Engine
from ..schema.batch import Batch
from ..rules.load import RuleSet, load_rules, load_rules_file
from ..schema.events import ROOM_TYPES, Action, Event
from ..schema.results import RoomMetrics
from .route import shard_of
from .shard import Shard

MANIFEST = "manifest.json"
FORMAT = "segengine-sharded/1"


class _Key(msgspec.Struct):
    """What routing reads of an NDJSON line."""
    type: str = ""
    viewer: str | int | None = None
    ts: float = 0.0


_decode_key = msgspec.json.Decoder(_Key).decode


def _ray():
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - exercised by the no-ray test
        raise ImportError("segengine.cluster needs Ray: pip install 'segengine[ray]'") from exc
    return ray


class ShardedEngine:
    """N engines as Ray actors behind the Engine's API; viewers by a stable hash of their id.

    ``rules`` is a RuleSet, a path or TOML text. ``address=None`` starts a local Ray instance
    pinned to 127.0.0.1 (unless Ray is already initialised); an address joins that cluster.
    ``checkpoint_every`` (operations) and ``checkpoint_seconds`` bound how much a restarted shard
    re-applies; checkpoints go to ``checkpoint_dir`` (a temporary directory by default; on a
    multi-machine cluster a shared path). See docs/scaling.md.
    """

    def __init__(self, rules: RuleSet | str | Path, shards: int = 2, address: str | None = None, *,
                 checkpoint_every: int = 100, checkpoint_seconds: float = 30.0,
                 checkpoint_dir: str | Path | None = None, num_cpus: int | None = None,
                 _restore: Path | None = None) -> None:
        if isinstance(rules, RuleSet):
            rs = rules
        elif isinstance(rules, Path) or (isinstance(rules, str) and "\n" not in rules and Path(rules).exists()):
            rs = load_rules_file(rules)
        else:
            rs = load_rules(rules)
        if getattr(rs, "room_rules", None):
            raise ValueError("ShardedEngine does not run [[room_rules]] yet: a room rule reads the whole "
                             "room, which no one shard holds (docs/scaling.md)")
        if shards < 1:
            raise ValueError(f"shards must be >= 1, got {shards}")
        ray = _ray()
        self._ray = ray
        self._started_ray = False
        if not ray.is_initialized():
            if address is None:
                ray.init(_node_ip_address="127.0.0.1", include_dashboard=False,
                         num_cpus=num_cpus or max(1, shards), log_to_driver=False,
                         configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False)
            self._started_ray = True
        self.shards = shards
        self._rules = rs
        self._filename = getattr(rs, "filename", None) or "<rules>"
        self._own_dir = checkpoint_dir is None
        self._dir = Path(tempfile.mkdtemp(prefix="segengine-shards-") if checkpoint_dir is None else checkpoint_dir)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._room_types = ROOM_TYPES | frozenset(rs.room_types)
        actor = ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)(Shard)
        self._actors = [actor.remote(i, rs.text, self._filename, str(self._dir), checkpoint_every,
                                     checkpoint_seconds, None if _restore is None else str(_restore / f"shard-{i}.snap"))
                        for i in range(shards)]
        self._seq = 0
        self._log: list[list[tuple[int, list]]] = [[] for _ in range(shards)]
        self._now = 0.0  # the latest event time sent to any shard
        self._broadcast = 0  # room events sent to every shard (counted once in stats)
        self.recoveries = 0
        self._lagging = False  # a single ingest moved one shard's time only
        self._pending: list[Action] = []  # timer actions of a query's catch-up, returned by the next call
        ray.get([a.applied.remote() for a in self._actors])  # wait for the engines (compiled, warmed up)

    # routing ----------------------------------------------------------------------------------------
    def shard_of(self, viewer: str | int) -> int:
        return shard_of(viewer, self.shards)

    def _is_room(self, etype: str) -> bool:
        return etype in self._room_types

    # the logged, recoverable call --------------------------------------------------------------------
    def _run(self, per_shard: dict[int, list[tuple[str, tuple]]]) -> list[Action]:
        """Send operation number ``seq`` to its shards in parallel; recover any that died."""
        ray = self._ray
        self._seq += 1
        seq = self._seq
        refs = {}
        actions: list[Action] = self._pending
        self._pending = []
        for i, ops in per_shard.items():
            self._log[i].append((seq, ops))
            refs[i] = self._actors[i].apply.remote(seq, ops)
        errors: list[BaseException] = []
        for i, ref in refs.items():
            try:
                out, saved = ray.get(ref)
            except ray.exceptions.RayActorError:
                out, saved = self._recover(i, seq)
            except ray.exceptions.RayTaskError as exc:  # the engine raised (EventError, ...)
                errors.append(exc.as_instanceof_cause() if hasattr(exc, "as_instanceof_cause") else exc)
                continue
            if saved is not None:
                self._log[i] = [entry for entry in self._log[i] if entry[0] > saved]
            actions.extend(out)
        if errors:
            err = errors[0]
            try:  # as Engine.ingest_many: the applied part's actions on err.actions
                err.actions = actions + list(getattr(err, "actions", None) or [])
            except AttributeError:
                pass
            raise err
        return actions

    def _recover(self, i: int, seq: int) -> tuple[list, int | None]:
        """Shard ``i`` died: wait for Ray's restart (it restores its checkpoint), re-send the logged
        operations after it; the actions of operations before ``seq`` were returned already."""
        ray = self._ray
        self.recoveries += 1
        while True:
            try:
                done = ray.get(self._actors[i].applied.remote())
                out, saved = [], None
                for s, ops in self._log[i]:
                    if s <= done:
                        continue
                    try:
                        got, ck = ray.get(self._actors[i].apply.remote(s, ops))
                    except ray.exceptions.RayTaskError:  # it raised the first time too (a bad event)
                        continue
                    if s == seq:
                        out = got
                    if ck is not None:
                        saved = ck
                return out, saved
            except ray.exceptions.RayActorError:
                time.sleep(0.05)  # killed again while recovering: start over

    def _query(self, i: int, name: str, *args: Any, **kwargs: Any) -> Any:
        ray = self._ray
        while True:
            try:
                return ray.get(self._actors[i].query.remote(name, *args, **kwargs))
            except ray.exceptions.RayActorError:
                self._recover(i, self._seq + 1)  # bring it back up to date; nothing to return

    def _query_all(self, name: str, *args: Any, **kwargs: Any) -> list:
        self._sync()
        ray = self._ray
        refs = [a.query.remote(name, *args, **kwargs) for a in self._actors]
        out = []
        for i, ref in enumerate(refs):
            try:
                out.append(ray.get(ref))
            except ray.exceptions.RayActorError:
                out.append(self._query(i, name, *args, **kwargs))
        return out

    # ingestion ----------------------------------------------------------------------------------------
    def ingest(self, event: Event | dict | bytes | str) -> list[Action]:
        """Apply one event on its viewer's shard (a room event: on every shard). One round trip
        to an actor (~0.3-1 ms): use :meth:`ingest_many` for throughput."""
        if isinstance(event, (bytes, str)):
            key = _decode_key(event)
            etype, viewer, ts = key.type, key.viewer, key.ts
        elif isinstance(event, dict):
            etype, viewer, ts = event.get("type", ""), event.get("viewer"), event.get("ts", 0.0)
        else:
            etype, viewer, ts = event.type, event.viewer, event.ts
        now = self._now
        if self._is_room(etype) or viewer is None:
            targets = range(self.shards) if self._is_room(etype) else [0]
            self._broadcast += 1 if self._is_room(etype) else 0
        else:
            targets = [self.shard_of(viewer)]
        out = self._run({i: [("advance", (now,)), ("ingest", (event,))] for i in targets})
        self._lagging = self._lagging or len(targets) < self.shards
        if isinstance(ts, (int, float)) and not isinstance(ts, bool):
            self._now = max(self._now, float(ts))
        return out

    def ingest_many(self, batch: Iterable[Event | dict] | bytes | str, errors: str = "raise") -> list[Action]:
        """Split the batch by shard (room events to all, in order) and apply the parts in parallel;
        then every shard advances to the batch's latest time, as one engine would have."""
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
        if isinstance(batch, Batch):
            raise TypeError("ShardedEngine.ingest_many takes events or NDJSON bytes, not a columnar Batch "
                            "(split a Batch by segengine.cluster.shard_of upstream and feed one Engine per part)")
        n = self.shards
        parts: list[list] = [[] for _ in range(n)]
        latest = self._now
        if isinstance(batch, (bytes, bytearray, memoryview, str)):
            data = batch.encode() if isinstance(batch, str) else bytes(batch)
            for line in data.splitlines():
                if not line.strip():
                    continue
                try:
                    key = _decode_key(line)
                except msgspec.DecodeError:
                    parts[0].append(line)  # shard 0 rejects it as the engine would
                    continue
                latest = max(latest, key.ts)
                if self._is_room(key.type):
                    self._broadcast += 1
                    for p in parts:
                        p.append(line)
                else:
                    parts[0 if key.viewer is None else shard_of(key.viewer, n)].append(line)
            payloads = [b"\n".join(p) + b"\n" if p else None for p in parts]
        else:
            for event in batch:
                if isinstance(event, dict):
                    etype, viewer, ts = event.get("type", ""), event.get("viewer"), event.get("ts", 0.0)
                else:
                    etype, viewer, ts = event.type, event.viewer, event.ts
                if isinstance(ts, (int, float)) and not isinstance(ts, bool):
                    latest = max(latest, float(ts))
                if self._is_room(etype):
                    self._broadcast += 1
                    for p in parts:
                        p.append(event)
                else:
                    parts[0 if viewer is None else shard_of(viewer, n)].append(event)
            payloads = [p or None for p in parts]
        now = self._now
        per_shard = {}
        for i, payload in enumerate(payloads):
            ops = [("advance", (now,))]
            if payload is not None:
                ops.append(("ingest_many", (payload, errors)))
            ops.append(("advance", (latest,)))
            per_shard[i] = ops
        out = self._run(per_shard)
        self._now, self._lagging = latest, False
        return out

    def advance(self, now: float) -> list[Action]:
        """Fire every timer due at or before ``now`` on every shard."""
        if isinstance(now, bool) or not isinstance(now, (int, float)) or not 0 <= now < 1e11:
            raise ValueError(f"advance() needs a time in seconds in [0, 1e11), got {now!r}")
        out = self._run({i: [("advance", (max(float(now), self._now),))] for i in range(self.shards)})
        self._now, self._lagging = max(self._now, float(now)), False
        return out

    def set_profile(self, viewer: str | int, **attrs: Any) -> None:
        self._run({self.shard_of(viewer): [("set_profile", (viewer, attrs))]})

    def _sync(self) -> None:
        """Bring every shard to the latest time (after single ingests only some moved); the timer
        actions this fires are returned by the next ingest/advance call."""
        if self._lagging:
            self._pending = self._run({i: [("advance", (self._now,))] for i in range(self.shards)})
            self._lagging = False

    def _reset(self) -> None:
        """Every shard back to an empty engine on the same rules (tests: one actor set, many scenarios)."""
        self._run({i: [("reset", ())] for i in range(self.shards)})
        self._now, self._broadcast, self._lagging, self._pending = 0.0, 0, False, []

    # queries ----------------------------------------------------------------------------------------
    def segment_size(self, name: str, room: str | None = None) -> int:
        return sum(self._query_all("segment_size", name, room))

    def segment_members(self, name: str, room: str | None = None) -> list[str | int]:
        return [v for part in self._query_all("segment_members", name, room) for v in part]

    def viewer(self, viewer: str | int) -> dict[str, Any]:
        return self._query(self.shard_of(viewer), "viewer", viewer)

    def explain(self, viewer: str | int, rule: str):
        return self._query(self.shard_of(viewer), "explain", viewer, rule)

    def stats(self) -> dict[str, Any]:
        """Every shard's counters summed; a room event (sent to every shard) counts once."""
        parts = self._query_all("stats")
        merged = _merge_stats(parts)
        extra = (self.shards - 1) * self._broadcast
        merged["events"] = max(0, merged.get("events", 0) - extra)
        for key in ("rooms", "bytes_per_viewer"):  # every shard holds every room; the same layout
            if key in merged:
                merged[key] = max(p[key] for p in parts)
        merged["shards"] = self.shards
        merged["recoveries"] = self.recoveries
        return merged

    if hasattr(Engine, "room"):
        def room(self, room: str, *args: Any, **kwargs: Any) -> RoomMetrics:
            """The room's metrics over every shard: counts summed, ratios recomputed (merge_room)."""
            parts = self._query_all("room", room, *args, **kwargs)
            slots = None
            if hasattr(Engine, "room_slots"):
                try:
                    slots = self._query_all("room_slots", room)
                except Exception:  # noqa: BLE001 - a signature this version does not know
                    slots = None
            return merge_room(parts, slots)

    if hasattr(Engine, "room_slots"):
        def room_slots(self, room: str, *args: Any, **kwargs: Any) -> list[RoomMetrics]:
            parts = self._query_all("room_slots", room, *args, **kwargs)
            return [merge_room([p[k] for p in parts]) for k in range(min(len(p) for p in parts))]

    # snapshot, restore, reload -------------------------------------------------------------------------
    def snapshot(self, path: str | Path) -> int:
        """Save every shard to ``path/shard-<i>.snap`` plus ``path/manifest.json``; returns the bytes."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        ray = self._ray
        sizes = ray.get([a.save.remote(str(path / f"shard-{i}.snap")) for i, a in enumerate(self._actors)])
        manifest = {"format": FORMAT, "shards": self.shards, "hash": "blake2b-8 of the UTF-8 id mod shards",
                    "now": self._now, "broadcast": self._broadcast,
                    "files": [f"shard-{i}.snap" for i in range(self.shards)]}
        tmp = path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, path / MANIFEST)
        return int(sum(sizes))

    @classmethod
    def restore(cls, path: str | Path, address: str | None = None, **kwargs: Any) -> "ShardedEngine":
        """A sharded engine continuing from :meth:`snapshot`'s directory (same shard count)."""
        path = Path(path)
        manifest = json.loads((path / MANIFEST).read_text())
        if manifest.get("format") != FORMAT:
            raise ValueError(f"{path}: not a sharded snapshot ({manifest.get('format')!r})")
        rules = Engine.restore(path / manifest["files"][0]).rules
        engine = cls(rules, shards=manifest["shards"], address=address, _restore=path, **kwargs)
        engine._now, engine._broadcast = manifest["now"], manifest["broadcast"]
        return engine

    def reload(self, rules: str | Path) -> bool:
        """New rules on every shard or on none: checked and compiled on one shard first."""
        text = Path(rules).read_text() if isinstance(rules, Path) or "\n" not in str(rules) and Path(str(rules)).exists() else str(rules)
        rs = load_rules(text)  # raises RulesError: no shard changed
        if text == self._rules.text:
            return False
        self._ray.get(self._actors[0].check_rules.remote(text, self._filename))
        self._run({i: [("reload", (text, self._filename))] for i in range(self.shards)})
        self._rules = rs
        self._room_types = ROOM_TYPES | frozenset(rs.room_types)
        return True

    @property
    def rules(self) -> RuleSet:
        return self._rules

    def shard_pids(self) -> list[int]:
        return self._ray.get([a.pid.remote() for a in self._actors])

    def close(self) -> None:
        """Stop the shards (and the local Ray instance this engine started)."""
        for a in getattr(self, "_actors", []):
            try:
                self._ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        self._actors = []
        if self._own_dir:
            shutil.rmtree(self._dir, ignore_errors=True)
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False

    def __enter__(self) -> "ShardedEngine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _merge_stats(parts: list[dict]) -> dict:
    """Numbers summed, dicts merged key by key (recursively)."""
    out: dict = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict):
                out[key] = _merge_stats([out.get(key, {}), value])
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = out.get(key, 0) + value
            else:
                out.setdefault(key, value)
    return out


def merge_room(parts: list[RoomMetrics], slots: list[list[RoomMetrics]] | None = None) -> RoomMetrics:
    """One room's metrics from its shards' (each holds a disjoint set of viewers).

    Counts add up (audience, uv, entries, sessions, funnel and segment counts, ...); averages are
    recomputed (``avg_dwell`` weighted by ``sessions_ended``). ``peak_audience`` is not the sum of
    the shards' peaks (they peak at different moments): with ``slots`` (each shard's per-slot
    metrics) it is the largest per-slot sum of audiences, otherwise the sum of the peaks, an upper bound.
    """
    first = parts[0]
    values: dict[str, Any] = {}
    for field in first.__struct_fields__:
        vals = [getattr(p, field) for p in parts]
        v0 = vals[0]
        if field == "room":
            values[field] = v0
        elif field == "start":
            values[field] = min(vals)
        elif field == "end":
            values[field] = max(vals)
        elif isinstance(v0, dict):
            values[field] = _merge_stats(vals)
        elif isinstance(v0, bool):
            values[field] = any(vals)
        elif isinstance(v0, int):
            values[field] = sum(vals)
        else:
            values[field] = v0
    if "avg_dwell" in values:
        ended = sum(p.sessions_ended for p in parts)
        values["avg_dwell"] = sum(p.avg_dwell * p.sessions_ended for p in parts) / ended if ended else 0.0
    if slots is not None and "peak_audience" in values:
        per_slot = [sum(s[k].audience for s in slots) for k in range(min(len(s) for s in slots))] if slots else []
        values["peak_audience"] = max([*per_slot, sum(p.audience for p in parts)]) if per_slot else values["peak_audience"]
    for field in first.__struct_fields__:  # other float fields: ratios of counts cannot be added
        if field not in ("start", "end", "avg_dwell") and isinstance(getattr(first, field), float):
            values[field] = max(getattr(p, field) for p in parts)
    return type(first)(**values)
