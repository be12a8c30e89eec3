"""Prometheus metrics of one process (an API replica or a worker), in a registry of its own.

The GraphQL operations (one observation a request) are counted in plain numbers and turned
into Prometheus families when ``/metrics`` is scraped (``_GraphQLOperations``); the queue and
the connection pool are read at the scrape too; the rest are prometheus-client metrics.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "PoolStats", "QueueStats"]

OPERATION_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
JOB_SECONDS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
ENTITIES_PER_SECOND = (10, 100, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000)
# Operation names are chosen by clients: past this many distinct ones, the rest are "other".
MAX_OPERATION_NAMES = 200
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
# The *_created series double the output and no alert uses them.
disable_created_metrics()


@dataclass(frozen=True)
class QueueStats:
    """Jobs waiting to run, and how long the oldest due one has waited."""

    depth: int
    oldest_age_seconds: float


@dataclass(frozen=True)
class PoolStats:
    size: int
    in_use: int
    idle: int
    overflow: int


class _Operations:
    """Started, finished by status, duration, entities per second and bytes of one kind of
    long operation (``restore`` or ``backup``)."""

    def __init__(self, kind: str, registry: CollectorRegistry) -> None:
        plural = f"{kind}s"
        self.started = Counter(
            f"recoverly_{plural}_started", f"{kind.title()}s whose job began", registry=registry
        )
        self.finished = Counter(
            f"recoverly_{plural}_finished",
            f"{kind.title()}s that reached a final status",
            ["status"],
            registry=registry,
        )
        self.seconds = Histogram(
            f"recoverly_{kind}_duration_seconds",
            f"From the start of a {kind} to its final status",
            ["status"],
            buckets=JOB_SECONDS,
            registry=registry,
        )
        self.rate = Histogram(
            f"recoverly_{kind}_entities_per_second",
            f"Entities per second of completed {plural}",
            buckets=ENTITIES_PER_SECOND,
            registry=registry,
        )
        self.entities = Counter(
            f"recoverly_{kind}_entities", f"Entities of completed {plural}", registry=registry
        )
        self.bytes = Counter(
            f"recoverly_{kind}_bytes", f"Archive bytes of completed {plural}", registry=registry
        )

    def finish(self, *, status: str, seconds: float, entities: int, size_bytes: int) -> None:
        self.finished.labels(status).inc()
        self.seconds.labels(status).observe(max(seconds, 0.0))
        if status == "COMPLETED":
            self.entities.inc(entities)
            self.bytes.inc(size_bytes)
            self.rate.observe(entities / max(seconds, 0.001))


class Metrics:
    """This process's metrics; ``enabled`` off keeps the objects but serves nothing."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.graphql = _GraphQLOperations()
        registry.register(self.graphql)
        self.websocket_connections = Gauge(
            "recoverly_websocket_connections", "Open websocket connections", registry=registry
        )
        self.subscriptions = Gauge(
            "recoverly_graphql_subscriptions", "Active GraphQL subscriptions", registry=registry
        )
        self.restores = _Operations("restore", registry)
        self.backups = _Operations("backup", registry)
        self.queue_depth = Gauge(
            "recoverly_job_queue_depth",
            "Jobs waiting to run (at the last scrape)",
            registry=registry,
        )
        self.queue_oldest_age = Gauge(
            "recoverly_job_queue_oldest_age_seconds",
            "How long the oldest due job has waited (at the last scrape)",
            registry=registry,
        )
        self._names: set[str] = set()

    def operation_label(self, name: str | None) -> str:
        """A bounded label for a client-chosen operation name."""
        if not name:
            return "anonymous"
        if name in self._names:
            return name
        if not _NAME.fullmatch(name):
            return "invalid"
        if len(self._names) >= MAX_OPERATION_NAMES:
            return "other"
        self._names.add(name)
        return name

    def observe_operation(
        self, *, name: str, kind: str, seconds: float, outcome: str, codes: Iterable[str]
    ) -> None:
        self.graphql.observe(name, kind, outcome, seconds, codes)

    def watch_pool(self, read: Callable[[], PoolStats | None]) -> None:
        """Report the database connection pool, read at each scrape."""
        self.registry.register(_PoolCollector(read))

    def set_queue(self, stats: QueueStats) -> None:
        self.queue_depth.set(stats.depth)
        self.queue_oldest_age.set(stats.oldest_age_seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class _GraphQLOperations(Collector):
    """GraphQL operations by name, type and outcome, their latency, and errors by code, in
    plain numbers: an observation is a few additions, where a prometheus-client counter and
    histogram take a lock for each value (the largest part of the metrics' cost per request).
    Observed and collected on the event loop's thread only (``/metrics`` is served there)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}
        # Per (name, type): the count of each bucket (the last one past the largest bound),
        # then the sum of the durations.
        self.durations: dict[tuple[str, str], list[float]] = {}
        self.errors: dict[str, int] = {}

    def observe(
        self, name: str, kind: str, outcome: str, seconds: float, codes: Iterable[str]
    ) -> None:
        key = (name, kind, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1
        histogram = self.durations.get((name, kind))
        if histogram is None:
            histogram = self.durations[name, kind] = [0.0] * (len(OPERATION_SECONDS) + 2)
        histogram[bisect_left(OPERATION_SECONDS, seconds)] += 1
        histogram[-1] += seconds
        for code in codes:
            self.errors[code] = self.errors.get(code, 0) + 1

    def collect(self) -> Iterable[Metric]:
        operations = CounterMetricFamily(
            "recoverly_graphql_operations",
            "GraphQL operations by name, type and outcome (ok, error, rejected)",
            labels=["operation_name", "operation_type", "outcome"],
        )
        for key, count in self.counts.items():
            operations.add_metric(list(key), count)
        latency = HistogramMetricFamily(
            "recoverly_graphql_operation_duration_seconds",
            "GraphQL operation latency: its HTTP request, or on a websocket the operation (a "
            "subscription: its lifetime)",
            labels=["operation_name", "operation_type"],
        )
        # As prometheus-client writes them (1 -> "1.0"; these bounds need no exponent).
        bounds = [*(repr(float(bound)) for bound in OPERATION_SECONDS), "+Inf"]
        for pair, histogram in self.durations.items():
            cumulative, buckets = 0.0, []
            for bound, observed in zip(bounds, histogram[:-1], strict=True):
                cumulative += observed
                buckets.append((bound, cumulative))
            latency.add_metric(list(pair), buckets, histogram[-1])
        errors = CounterMetricFamily(
            "recoverly_graphql_errors",
            "GraphQL errors by code: top-level errors and mutation payload errors",
            labels=["code"],
        )
        for code, times in self.errors.items():
            errors.add_metric([code], times)
        return [operations, latency, errors]


class _PoolCollector(Collector):
    def __init__(self, read: Callable[[], PoolStats | None]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        stats = self.read()
        if stats is None:
            return []
        connections = GaugeMetricFamily(
            "recoverly_db_pool_connections",
            "Database connections of this process's pool by state",
            labels=["state"],
        )
        connections.add_metric(["in_use"], stats.in_use)
        connections.add_metric(["idle"], stats.idle)
        connections.add_metric(["overflow"], stats.overflow)
        size = GaugeMetricFamily("recoverly_db_pool_size", "Configured pool size", stats.size)
        return [connections, size]
