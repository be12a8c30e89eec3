"""Building, starting and stopping the running system: database, storage, event bus, job
runner with its job definitions, and the scheduler.

Embedded (the default): one process serves the API, runs the jobs and the scheduler, with an
in-memory event bus. Queue (``RECOVERLY_JOB_RUNNER=queue`` on PostgreSQL): API processes
enqueue jobs, serve subscriptions and run the scheduler (its claims are compare-and-set, safe
across replicas); ``recoverly worker`` processes run the jobs; events cross processes by
PostgreSQL LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recoverly.database import Database
from recoverly.events import EventBus, InMemoryEventBus
from recoverly.jobs import EmbeddedJobRunner, JobRunner
from recoverly.observability.metrics import Metrics
from recoverly.services.auth import AuthCache
from recoverly.services.backups import backup_job, reseal_copy_secrets
from recoverly.services.policies import reseal_policy_secrets
from recoverly.services.restore_job import restore_job
from recoverly.services.runtime import Runtime
from recoverly.services.scheduler import Scheduler
from recoverly.settings import Settings
from recoverly.storage import LocalBlobStore

if TYPE_CHECKING:
    from recoverly.jobs.queue import QueueJobRunner

log = logging.getLogger(__name__)

WORKER_BEAT_SECONDS = 2.0


def build_runtime(
    settings: Settings, *, with_scheduler: bool = True, worker: bool = False
) -> Runtime:
    """The system of an API process, or with ``worker`` of a queue worker (no scheduler)."""
    _check(settings, worker=worker)
    db = Database(settings.resolved_database_url())
    runtime = Runtime(
        settings=settings,
        db=db,
        internal_store=LocalBlobStore(settings.resolved_storage_dir()),
        bus=_event_bus(settings),
        metrics=Metrics(enabled=settings.metrics_enabled),
        auth_cache=AuthCache(ttl=settings.auth_cache_seconds),
    )
    runtime.metrics.watch_pool(db.pool_stats)
    runner = _job_runner(settings, db, worker=worker)
    for definition in (backup_job(runtime), restore_job(runtime)):
        runner.register(definition)
    runtime.runner = runner
    if with_scheduler and not worker:
        runtime.scheduler = Scheduler(runtime)
    return runtime


async def migrate_database(db: Database) -> None:
    """Apply the migrations; replicas starting together on PostgreSQL take turns."""
    async with _startup_lock(db):
        await db.migrate()


async def start_runtime(runtime: Runtime, *, migrate: bool = True) -> None:
    if migrate:
        await migrate_database(runtime.db)
        sealed = await reseal_secrets(runtime, rotate=False)
        if sealed:
            log.info("sealed %s customer credentials left in plain text", sealed)
    await runtime.bus.start()
    await runtime.auth_cache.start(runtime.bus)
    if runtime.runner is not None:
        await runtime.runner.start()
    if runtime.scheduler is not None:
        runtime.scheduler.start()


async def reseal_secrets(runtime: Runtime, *, rotate: bool) -> int:
    """Seal plain customer credentials; with ``rotate``, re-seal all with the active key."""
    changed = await reseal_policy_secrets(runtime, rotate=rotate)
    changed += await reseal_copy_secrets(runtime, rotate=rotate)
    if changed:
        await runtime.db.scrub(["backup_policy", "backup_copy"])
    return changed


async def stop_runtime(runtime: Runtime) -> None:
    if runtime.scheduler is not None:
        await runtime.scheduler.stop()
    if runtime.runner is not None:
        await runtime.runner.stop()
    await runtime.auth_cache.stop()
    await runtime.bus.close()
    await runtime.db.dispose()


async def run_worker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    probes: Callable[[Runtime], contextlib.AbstractAsyncContextManager[Any]] | None = None,
) -> int:
    """``recoverly worker``: run queue jobs until ``stop`` is set; 1 if a worker loop died.
    ``probes`` serves the worker's ``/metrics`` and ``/readyz`` meanwhile."""
    from recoverly.jobs.queue import QueueJobRunner

    runtime = build_runtime(settings, worker=True)
    runner = runtime.runner
    assert isinstance(runner, QueueJobRunner)
    await start_runtime(runtime)
    log.info("recoverly worker ready (concurrency %s)", settings.job_concurrency)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if probes is not None:
                await stack.enter_async_context(probes(runtime))
            return await _work(settings, runner, stop)
    finally:
        await stop_runtime(runtime)


async def _work(settings: Settings, runner: QueueJobRunner, stop: asyncio.Event) -> int:
    while not stop.is_set():
        if not runner.running:
            log.error("a procrastinate worker loop stopped; exiting")
            return 1
        _beat(settings.worker_heartbeat_file, runner.worker_ids())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WORKER_BEAT_SECONDS)
    return 0


def postgres_dsn(settings: Settings) -> str:
    """The database URL as a plain ``postgresql://`` DSN (asyncpg and psycopg alike)."""
    scheme, _, rest = settings.resolved_database_url().partition("://")
    if scheme != "postgresql+asyncpg":
        raise ValueError(
            "the queue runner and the postgres event bus need PostgreSQL: "
            "set RECOVERLY_DATABASE_URL=postgresql://user@host:port/db"
        )
    return f"postgresql://{rest}"


def _check(settings: Settings, *, worker: bool) -> None:
    settings.check()
    if worker and settings.job_runner != "queue":
        raise ValueError(
            "workers run queue jobs: set RECOVERLY_JOB_RUNNER=queue and a PostgreSQL "
            "RECOVERLY_DATABASE_URL (the embedded runner runs jobs inside `recoverly serve`)"
        )


def _event_bus(settings: Settings) -> EventBus:
    kind = settings.event_bus
    if kind == "auto":
        kind = "postgres" if settings.job_runner == "queue" else "memory"
    if kind == "memory":
        return InMemoryEventBus()
    from recoverly.events.postgres import PostgresEventBus

    return PostgresEventBus(postgres_dsn(settings))


def _job_runner(settings: Settings, db: Database, *, worker: bool) -> JobRunner:
    if settings.job_runner == "embedded":
        return EmbeddedJobRunner(
            db,
            concurrency=settings.job_concurrency,
            poll_seconds=settings.job_poll_seconds,
            stale_seconds=settings.job_stale_seconds,
            backoff_seconds=settings.retry_backoff_seconds,
        )
    from recoverly.jobs.queue import QueueJobRunner, QueueOptions

    options = QueueOptions(
        concurrency=settings.job_concurrency,
        poll_seconds=settings.job_poll_seconds,
        heartbeat_seconds=settings.queue_heartbeat_seconds,
        stalled_seconds=settings.job_stale_seconds,
        stalled_check_seconds=settings.queue_stalled_check_seconds,
        backoff_seconds=settings.retry_backoff_seconds,
        shutdown_seconds=settings.worker_shutdown_seconds,
    )
    return QueueJobRunner(db, dsn=postgres_dsn(settings), work=worker, options=options)


@contextlib.asynccontextmanager
async def _startup_lock(db: Database) -> AsyncIterator[None]:
    """Replicas starting together migrate one after the other (PostgreSQL only)."""
    if db.is_sqlite:
        yield
        return
    from recoverly.jobs.queue import advisory_lock

    async with advisory_lock(db, "recoverly-migrations"):
        yield


def _beat(path: Path | None, worker_ids: list[int]) -> None:
    """Write the worker's liveness file (for container health checks and tests)."""
    if path is None:
        return
    beat = {"pid": os.getpid(), "worker_ids": worker_ids, "at": time.time()}
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(beat))
    partial.replace(path)
