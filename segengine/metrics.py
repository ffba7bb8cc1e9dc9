"""Prometheus metrics of an Engine or a ShardedEngine (optional extra ``segengine[metrics]``).

    from segengine.metrics import Metrics
    metrics = Metrics(engine)
    metrics.serve(9108)                  # HTTP exporter on 127.0.0.1:9108 (a daemon thread)
    engine = metrics.timed(engine)       # ingest/ingest_many: 1 call in `sample_every` timed
    ...
    metrics.refresh()                    # in the thread that owns the engine: new counter values

An engine is single-threaded (a second thread inside it raises ConcurrentUseError), so the exporter
never calls the engine: it serves the values of the last :meth:`Metrics.refresh`, which the owning
thread calls (``timed`` does it at most every ``refresh_seconds``). See docs/operations.md (Metrics).
"""

from __future__ import annotations

import time
from typing import Any

try:
    from prometheus_client import CollectorRegistry, Histogram, start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
except ImportError as exc:  # pragma: no cover - exercised by tests/test_cluster.py (core without extras)
    raise ImportError("segengine.metrics needs the Prometheus client: pip install 'segengine[metrics]'") from exc

PREFIX = "segengine"
LATENCY_BUCKETS = (1e-6, 5e-6, 2e-5, 1e-4, 5e-4, 1e-3, 5e-3, 2e-2, 0.1, 0.5, 2.0)


class Metrics:
    """An engine's counters as Prometheus metrics, read at :meth:`refresh` and served by :meth:`serve`."""

    def __init__(self, engine: Any, registry: CollectorRegistry | None = None, *,
                 sample_every: int = 64, refresh_seconds: float = 5.0) -> None:
        self.engine = engine
        self.registry = registry if registry is not None else CollectorRegistry()
        self.sample_every = max(1, sample_every)
        self.refresh_seconds = refresh_seconds
        self.stats: dict[str, Any] = {}
        self.audience: dict[str, int] = {}
        self.refreshed_at = 0.0
        self.latency = Histogram(f"{PREFIX}_ingest_latency_seconds",
                                 "Latency of sampled ingest/ingest_many calls", ["call"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_Collector(self))
        self.refresh()

    def refresh(self) -> None:
        """Read the engine's counters now (call from the thread that owns the engine)."""
        self.stats = self.engine.stats()
        audience: dict[str, int] = {}
        rooms = getattr(getattr(self.engine, "_rooms", None), "keys", None)
        if hasattr(self.engine, "room") and rooms is not None:
            for name in list(rooms):
                if isinstance(name, str):
                    try:
                        audience[name] = int(self.engine.room(name, segments=False).audience)
                    except Exception:  # noqa: BLE001 - a room retention forgot meanwhile
                        continue
        self.audience = audience
        self.refreshed_at = time.monotonic()

    def serve(self, port: int, addr: str = "127.0.0.1"):
        """Start the HTTP exporter (a daemon thread); returns (server, thread)."""
        return start_http_server(port, addr=addr, registry=self.registry)

    def timed(self, engine: Any | None = None) -> "_Timed":
        """A proxy of ``engine`` whose ``ingest``/``ingest_many`` time one call in ``sample_every``
        into the latency histogram and refresh the counters every ``refresh_seconds``."""
        return _Timed(self, engine if engine is not None else self.engine)


class _Timed:
    def __init__(self, metrics: Metrics, engine: Any) -> None:
        self._metrics = metrics
        self._engine = engine
        self._calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        m = self._metrics
        self._calls += 1
        if self._calls % m.sample_every:
            out = getattr(self._engine, name)(*args, **kwargs)
        else:
            start = time.perf_counter()
            out = getattr(self._engine, name)(*args, **kwargs)
            m.latency.labels(name).observe(time.perf_counter() - start)
            if time.monotonic() - m.refreshed_at >= m.refresh_seconds:
                m.refresh()
        return out

    def ingest(self, event: Any) -> Any:
        return self._call("ingest", event)

    def ingest_many(self, batch: Any, *args: Any, **kwargs: Any) -> Any:
        return self._call("ingest_many", batch, *args, **kwargs)


class _Collector:
    """Turns the last refreshed stats into metric families at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self):
        s = self.metrics.stats
        for key, help_text in (("events", "Events applied"), ("rejected", "Events rejected as malformed"),
                               ("late", "Events older than the engine's time"),
                               ("expired_viewers", "Viewers forgotten by retention")):
            c = CounterMetricFamily(f"{PREFIX}_{key}", help_text)
            c.add_metric([], float(s.get(key, 0)))
            yield c
        fired = CounterMetricFamily(f"{PREFIX}_fired", "Rule firings", labels=["rule"])
        for rule, n in sorted(s.get("fired", {}).items()):
            fired.add_metric([rule], float(n))
        yield fired
        suppressed = CounterMetricFamily(f"{PREFIX}_suppressed", "Firings suppressed, by rule and reason",
                                         labels=["rule", "reason"])
        for rule, reasons in sorted(s.get("suppressed", {}).items()):
            for reason, n in sorted(reasons.items()) if isinstance(reasons, dict) else [("all", reasons)]:
                suppressed.add_metric([rule, str(reason)], float(n))
        yield suppressed
        for key, help_text in (("viewers", "Viewers held"), ("rooms", "Rooms held"), ("timers", "Pending timers"),
                               ("memory", "Bytes of engine state")):
            g = GaugeMetricFamily(f"{PREFIX}_{key if key != 'memory' else 'memory_bytes'}", help_text)
            g.add_metric([], float(s.get(key, 0)))
            yield g
        audience = GaugeMetricFamily(f"{PREFIX}_room_audience", "Present audience per room", labels=["room"])
        for room, n in sorted(self.metrics.audience.items()):
            audience.add_metric([room], float(n))
        yield audience
