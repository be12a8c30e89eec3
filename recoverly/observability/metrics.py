"""Prometheus metrics of one process (an API replica or a worker), in a registry of its own.

Hot-path metrics (GraphQL operations) are plain prometheus-client counters and histograms;
the queue and the connection pool are read when ``/metrics`` is scraped, never per request.
"""

from __future__ import annotations

import re
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
from prometheus_client.core import GaugeMetricFamily, Metric
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
        self.operations = Counter(
            "recoverly_graphql_operations",
            "GraphQL operations by name, type and outcome (ok, error, rejected)",
            ["operation_name", "operation_type", "outcome"],
            registry=registry,
        )
        self.operation_seconds = Histogram(
            "recoverly_graphql_operation_duration_seconds",
            "GraphQL operation latency: its HTTP request, or on a websocket the operation (a "
            "subscription: its lifetime)",
            ["operation_name", "operation_type"],
            buckets=OPERATION_SECONDS,
            registry=registry,
        )
        self.errors = Counter(
            "recoverly_graphql_errors",
            "GraphQL errors by code: top-level errors and mutation payload errors",
            ["code"],
            registry=registry,
        )
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
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

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
        key = (name, kind, outcome)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.operations.labels(name, kind, outcome),
                self.operation_seconds.labels(name, kind),
            )
        children[0].inc()
        children[1].observe(seconds)
        for code in codes:
            self.errors.labels(code).inc()

    def watch_pool(self, read: Callable[[], PoolStats | None]) -> None:
        """Report the database connection pool, read at each scrape."""
        self.registry.register(_PoolCollector(read))

    def set_queue(self, stats: QueueStats) -> None:
        self.queue_depth.set(stats.depth)
        self.queue_oldest_age.set(stats.oldest_age_seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


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
