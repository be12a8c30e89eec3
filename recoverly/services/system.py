"""Building, starting and stopping the running system: database, storage, event bus, job
runner with its job definitions, and the scheduler."""

from __future__ import annotations

from recoverly.database import Database
from recoverly.events import InMemoryEventBus
from recoverly.jobs import EmbeddedJobRunner
from recoverly.services.backups import backup_job
from recoverly.services.restore_job import restore_job
from recoverly.services.runtime import Runtime
from recoverly.services.scheduler import Scheduler
from recoverly.settings import Settings
from recoverly.storage import LocalBlobStore


def build_runtime(settings: Settings, *, with_scheduler: bool = True) -> Runtime:
    db = Database(settings.resolved_database_url())
    runtime = Runtime(
        settings=settings,
        db=db,
        internal_store=LocalBlobStore(settings.resolved_storage_dir()),
        bus=InMemoryEventBus(),
    )
    runner = EmbeddedJobRunner(
        db,
        concurrency=settings.job_concurrency,
        poll_seconds=settings.job_poll_seconds,
        stale_seconds=settings.job_stale_seconds,
        backoff_seconds=settings.retry_backoff_seconds,
    )
    for definition in (backup_job(runtime), restore_job(runtime)):
        runner.register(definition)
    runtime.runner = runner
    if with_scheduler:
        runtime.scheduler = Scheduler(runtime)
    return runtime


async def start_runtime(runtime: Runtime, *, migrate: bool = True) -> None:
    if migrate:
        await runtime.db.migrate()
    await runtime.bus.start()
    if runtime.runner is not None:
        await runtime.runner.start()
    if runtime.scheduler is not None:
        runtime.scheduler.start()


async def stop_runtime(runtime: Runtime) -> None:
    if runtime.scheduler is not None:
        await runtime.scheduler.stop()
    if runtime.runner is not None:
        await runtime.runner.stop()
    await runtime.bus.close()
    await runtime.db.dispose()
