"""The queue job runner: procrastinate, a distributed task queue on PostgreSQL.

API processes only enqueue: a job is a row of procrastinate's table, inserted with
procrastinate's own SQL function through the caller's transaction, so it commits or rolls
back with the caller's work. ``recoverly worker`` processes run procrastinate workers that
fetch jobs with ``FOR UPDATE SKIP LOCKED`` and are woken by LISTEN/NOTIFY.

From the engine: retries with exponential backoff (a retry strategy built from each
``JobDefinition``), worker heartbeats, and the recovery of jobs whose worker died: a
periodic task on a maintenance queue of its own puts the ``doing`` jobs of workers without
a recent heartbeat back in the queue (``get_stalled_jobs`` + ``retry_job``). A job also holds
a PostgreSQL advisory lock while it runs, so a worker wrongly taken for dead (a long pause)
never runs a job at the same time as the worker that recovered it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from procrastinate import App, BaseRetryStrategy, JobContext, PsycopgConnector, RetryDecision
from procrastinate.jobs import Job
from procrastinate.worker import Worker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.database import Database
from recoverly.jobs.runner import JobArgs, JobDefinition, JobInfo, JobRunner, job_scope
from recoverly.observability import tracing
from recoverly.observability.metrics import QueueStats

log = logging.getLogger(__name__)

QUEUE = "recoverly"
MAINTENANCE_QUEUE = "recoverly-maintenance"
RETRY_STALLED_TASK = "recoverly.retry_stalled_jobs"

# procrastinate's versioned SQL API, the same call its own ``defer_async`` makes.
_DEFER = text(
    "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW("
    "CAST(:queue AS varchar), CAST(:task AS varchar), 0, NULL, NULL, "
    "CAST(CAST(:args AS text) AS jsonb), CAST(:scheduled_at AS timestamptz)"
    ")]::procrastinate_job_to_defer_v1[])) AS id"
)

_QUEUE_STATS = text(
    "SELECT count(*) AS depth, "
    "EXTRACT(EPOCH FROM now() - min(coalesce(j.scheduled_at, e.at))) "
    "FILTER (WHERE coalesce(j.scheduled_at, e.at) <= now()) AS age "
    "FROM procrastinate_jobs j LEFT JOIN procrastinate_events e "
    "ON e.job_id = j.id AND e.type = 'deferred' "
    "WHERE j.queue_name = :q AND j.status = 'todo'"
)


@dataclass(frozen=True)
class QueueOptions:
    """Worker settings; ``stalled_seconds`` must leave room for a few missed heartbeats."""

    concurrency: int = 2
    poll_seconds: float = 5.0
    heartbeat_seconds: float = 10.0
    stalled_seconds: float = 30.0
    stalled_check_seconds: int = 10
    backoff_seconds: float = 2.0
    shutdown_seconds: float = 20.0

    def __post_init__(self) -> None:
        if self.stalled_seconds < 2 * self.heartbeat_seconds:
            raise ValueError("stalled_seconds must be at least twice heartbeat_seconds")
        if not 1 <= self.stalled_check_seconds <= 59:
            raise ValueError("stalled_check_seconds must be between 1 and 59")


class AttemptsRetry(BaseRetryStrategy):
    """Retry until ``max_attempts`` runs, waiting ``backoff * 2**attempts`` seconds between
    them; a job interrupted by its worker's shutdown runs again at once, whatever its count."""

    def __init__(self, *, max_attempts: int, backoff_seconds: float) -> None:
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, asyncio.CancelledError):
            return RetryDecision(retry_in={"seconds": 0})
        if job.attempts + 1 >= self.max_attempts:
            return None
        return RetryDecision(retry_in={"seconds": self.backoff_seconds * 2**job.attempts})


class QueueJobRunner(JobRunner):
    """Enqueues everywhere; with ``work=True`` (``recoverly worker``) also runs jobs."""

    def __init__(
        self, db: Database, *, dsn: str, work: bool, options: QueueOptions | None = None
    ) -> None:
        super().__init__()
        if db.is_sqlite:
            raise ValueError("the queue job runner needs PostgreSQL (RECOVERLY_DATABASE_URL)")
        self.db = db
        self.work = work
        self.options = options or QueueOptions()
        pool_size = self.options.concurrency + 4 if work else 2
        self.app = App(connector=PsycopgConnector(conninfo=dsn, min_size=1, max_size=pool_size))
        self.workers: list[Worker] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._register_maintenance()

    def register(self, definition: JobDefinition) -> None:
        super().register(definition)
        retry = AttemptsRetry(
            max_attempts=definition.max_attempts, backoff_seconds=self.options.backoff_seconds
        )
        self.app.task(name=definition.name, queue=QUEUE, pass_context=True, retry=retry)(
            self._task_function(definition)
        )

    async def enqueue(
        self,
        name: str,
        args: JobArgs,
        *,
        session: AsyncSession | None = None,
        run_after: datetime | None = None,
    ) -> int:
        self.definition(name)
        params = {
            "queue": QUEUE,
            "task": name,
            "args": json.dumps(tracing.carry(args)),
            "scheduled_at": run_after,
        }
        if session is not None:
            return await _defer(await session.connection(), params)
        async with self.db.transaction() as own:
            return await _defer(await own.connection(), params)

    async def start(self) -> None:
        await self.app.open_async()
        await self._ensure_schema()
        if self.work:
            self._start_workers()

    async def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.workers, self._tasks = [], []
        await self.app.close_async()

    @property
    def running(self) -> bool:
        """Whether every worker loop is alive (a worker stops itself when it loses the DB)."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    def worker_ids(self) -> list[int]:
        """procrastinate's IDs of this process's workers (``procrastinate_workers.id``)."""
        return [w.worker_id for w in self.workers if w.worker_id is not None]

    async def queue_stats(self) -> QueueStats:
        """From procrastinate's table: a job's wait starts when it is due, or when it was
        deferred (its ``deferred`` event) when it had no schedule."""
        async with self.db.session() as session:
            row = (await (await session.connection()).execute(_QUEUE_STATS, {"q": QUEUE})).one()
        return QueueStats(depth=int(row.depth), oldest_age_seconds=float(row.age or 0.0))

    async def check(self) -> str | None:
        try:
            reachable = await self.app.job_manager.check_connection_async()
        except Exception as error:
            return f"the job queue is unreachable ({type(error).__name__})"
        if not reachable:
            return "the job queue's tables are missing"
        if self.work and not self.running:
            return "a procrastinate worker loop stopped"
        return None

    async def wait_idle(self) -> None:
        """Wait until no job of ours is queued or running (wrap it in ``asyncio.timeout``)."""
        statement = text(
            "SELECT 1 FROM procrastinate_jobs WHERE queue_name = :q "
            "AND status IN ('todo', 'doing') LIMIT 1"
        )
        while True:
            async with self.db.session() as session:
                busy = (await (await session.connection()).execute(statement, {"q": QUEUE})).first()
            if busy is None:
                return
            await asyncio.sleep(self.options.poll_seconds)

    # --- Running jobs ------------------------------------------------------------------

    def _task_function(self, definition: JobDefinition) -> Callable[..., Awaitable[None]]:
        async def run(context: JobContext, **args: Any) -> None:
            job = context.job
            assert job.id is not None
            info = JobInfo(
                job_id=job.id, attempt=job.attempts + 1, max_attempts=definition.max_attempts
            )
            with job_scope(definition.name, args, info) as plain:
                async with advisory_lock(self.db, f"recoverly-job:{job.id}"):
                    await _run(definition, plain, info)

        return run

    def _start_workers(self) -> None:
        options = self.options
        common: dict[str, Any] = {
            "install_signal_handlers": False,
            "fetch_job_polling_interval": options.poll_seconds,
            "update_heartbeat_interval": options.heartbeat_seconds,
            "stalled_worker_timeout": options.stalled_seconds,
            "shutdown_graceful_timeout": options.shutdown_seconds,
            "delete_jobs": "successful",
        }
        # Maintenance has a worker of its own, so busy job slots never delay a recovery.
        self.workers = [
            Worker(self.app, queues=[QUEUE], name="recoverly-jobs",
                   concurrency=options.concurrency, **common),
            Worker(self.app, queues=[MAINTENANCE_QUEUE], name="recoverly-maintenance",
                   concurrency=1, **common),
        ]  # fmt: skip
        self._tasks = [
            asyncio.create_task(worker.run(), name=f"procrastinate-{worker.worker_name}")
            for worker in self.workers
        ]

    # --- Stalled jobs and schema -------------------------------------------------------

    def _register_maintenance(self) -> None:
        async def retry_stalled_jobs(context: JobContext, timestamp: int) -> None:
            await self.retry_stalled_jobs()

        task = self.app.task(
            name=RETRY_STALLED_TASK,
            queue=MAINTENANCE_QUEUE,
            pass_context=True,
            lock=RETRY_STALLED_TASK,
            queueing_lock=RETRY_STALLED_TASK,
        )(retry_stalled_jobs)
        self.app.periodic(cron=f"* * * * * */{self.options.stalled_check_seconds}")(task)

    async def retry_stalled_jobs(self) -> list[int]:
        """Queue again the jobs of workers whose heartbeat is older than ``stalled_seconds``."""
        manager = self.app.job_manager
        stalled = await manager.get_stalled_jobs(
            queue=QUEUE, seconds_since_heartbeat=self.options.stalled_seconds
        )
        retried = []
        for job in stalled:
            log.warning("job %s %s: its worker stopped; queued again", job.id, job.task_name)
            await manager.retry_job(job)
            assert job.id is not None
            retried.append(job.id)
        return retried

    async def _ensure_schema(self) -> None:
        """Apply procrastinate's schema once, when its tables are missing."""
        async with advisory_lock(self.db, "recoverly-procrastinate-schema"):
            if not await self.app.job_manager.check_connection_async():
                log.info("applying the procrastinate schema")
                await self.app.schema_manager.apply_schema_async()


async def _run(definition: JobDefinition, args: JobArgs, info: JobInfo) -> None:
    """The handler; on its last attempt a failure calls ``on_give_up`` before it is final."""
    try:
        await definition.run(args, info)
    except Exception as error:
        if info.attempt < definition.max_attempts:
            log.warning("job %s %s failed (attempt %s)", info.job_id, definition.name, info.attempt)
            raise
        log.exception("job %s %s gave up", info.job_id, definition.name)
        if definition.on_give_up is not None:
            await definition.on_give_up(args, f"{type(error).__name__}: {error}")
        raise


async def _defer(connection: AsyncConnection, params: dict[str, Any]) -> int:
    return int((await connection.execute(_DEFER, params)).scalar_one())


@contextlib.asynccontextmanager
async def advisory_lock(db: Database, name: str) -> AsyncIterator[None]:
    """A PostgreSQL session advisory lock named ``name``, held on a connection of its own
    (released by the server if this process dies)."""
    key = {"name": name}
    async with db.engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("SELECT pg_advisory_lock(hashtextextended(:name, 0))"), key)
        try:
            yield
        finally:
            await connection.execute(
                text("SELECT pg_advisory_unlock(hashtextextended(:name, 0))"), key
            )
