"""The embedded job runner: asyncio workers in this process, jobs as rows in the database.

A job row is claimed with a conditional UPDATE, so two workers never run one job. Jobs
left RUNNING by a process that died are queued again when the runner starts: it is the
only runner on its database, so no running job can belong to anyone else then. A running
job's ``heartbeat_at`` is refreshed every ``stale_seconds / 3``, so an operator reading the
job table can tell a live job from a stuck one; the runner itself does not act on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import traceback
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.database import Database
from recoverly.jobs.runner import JobArgs, JobDefinition, JobInfo, JobRunner, job_scope
from recoverly.models import Job, JobStatus, utcnow
from recoverly.observability import tracing
from recoverly.observability.metrics import QueueStats

log = logging.getLogger(__name__)


class EmbeddedJobRunner(JobRunner):
    def __init__(
        self,
        db: Database,
        *,
        concurrency: int = 2,
        poll_seconds: float = 0.5,
        stale_seconds: float = 30.0,
        backoff_seconds: float = 2.0,
    ) -> None:
        super().__init__()
        self.db = db
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.stale_seconds = stale_seconds
        self.backoff_seconds = backoff_seconds
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def enqueue(
        self,
        name: str,
        args: JobArgs,
        *,
        session: AsyncSession | None = None,
        run_after: datetime | None = None,
    ) -> int:
        definition = self.definition(name)
        job = Job(
            name=name,
            args=tracing.carry(args),
            max_attempts=definition.max_attempts,
            run_after=run_after or utcnow(),
        )
        if session is not None:
            session.add(job)
            await session.flush()
        else:
            async with self.db.transaction() as own:
                own.add(job)
                await own.flush()
        self._wake.set()
        assert job.id is not None
        return job.id

    async def start(self) -> None:
        await self._requeue(stale_before=None)
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._work(), name=f"recoverly-job-worker-{i}")
            for i in range(self.concurrency)
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        # Jobs interrupted by the shutdown run again at the next start.
        await self._requeue(stale_before=None, only_mine=True)

    async def queue_stats(self) -> QueueStats:
        now = utcnow()
        async with self.db.session() as session:
            depth, oldest = (
                await session.exec(
                    select(
                        func.count(),
                        func.min(col(Job.run_after)).filter(col(Job.run_after) <= now),
                    ).where(Job.status == JobStatus.QUEUED)
                )
            ).one()
        age = (now - _aware(oldest)).total_seconds() if oldest is not None else 0.0
        return QueueStats(depth=int(depth), oldest_age_seconds=max(age, 0.0))

    async def check(self) -> str | None:
        if not self._tasks:
            return "the embedded job runner is not running"
        if any(task.done() for task in self._tasks):
            return "an embedded job worker stopped"
        return None

    async def wait_idle(self) -> None:
        """Wait until no job is queued or running (wrap it in ``asyncio.timeout``)."""
        while True:
            async with self.db.session() as session:
                busy = (
                    await session.exec(
                        select(Job.id).where(
                            col(Job.status).in_([JobStatus.QUEUED, JobStatus.RUNNING])
                        )
                    )
                ).first()
            if busy is None:
                return
            await asyncio.sleep(self.poll_seconds)

    async def _work(self) -> None:
        while not self._stopping:
            try:
                job = await self._claim()
            except Exception:
                log.exception("claiming a job failed")
                job = None
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                continue
            await self._run(job)

    async def _claim(self) -> Job | None:
        now = utcnow()
        async with self.db.transaction() as session:
            candidate = (
                await session.exec(
                    select(Job)
                    .where(Job.status == JobStatus.QUEUED, col(Job.run_after) <= now)
                    .order_by(col(Job.run_after), col(Job.id))
                    .limit(1)
                )
            ).first()
            if candidate is None:
                return None
            claimed = await session.exec(
                update(Job)
                .where(col(Job.id) == candidate.id, col(Job.status) == JobStatus.QUEUED)
                .values(
                    status=JobStatus.RUNNING,
                    attempts=Job.attempts + 1,
                    locked_by=self.worker_id,
                    heartbeat_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                return None
            candidate.attempts += 1
            return candidate

    async def _run(self, job: Job) -> None:
        assert job.id is not None
        info = JobInfo(job_id=job.id, attempt=job.attempts, max_attempts=job.max_attempts)
        with job_scope(job.name, job.args, info) as args:
            await self._run_handler(job, args, info)

    async def _run_handler(self, job: Job, args: JobArgs, info: JobInfo) -> None:
        assert job.id is not None
        definition = self.definitions.get(job.name)
        heartbeat = asyncio.create_task(self._heartbeat(job.id), name="recoverly-job-heartbeat")
        try:
            if definition is None:
                raise LookupError(f"no job handler registered for {job.name!r}")
            await definition.run(args, info)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("job %s %s failed (attempt %s)", job.id, job.name, job.attempts)
            await self._failed(job, definition, error, args)
        else:
            await self._finish(job.id, JobStatus.DONE, None)
        finally:
            heartbeat.cancel()

    async def _failed(
        self, job: Job, definition: JobDefinition | None, error: Exception, args: JobArgs
    ) -> None:
        assert job.id is not None
        reason = f"{type(error).__name__}: {error}"
        if definition is not None and job.attempts < job.max_attempts:
            delay = self.backoff_seconds * 2 ** (job.attempts - 1)
            async with self.db.transaction() as session:
                await session.exec(
                    update(Job)
                    .where(col(Job.id) == job.id)
                    .values(
                        status=JobStatus.QUEUED,
                        run_after=utcnow() + timedelta(seconds=delay),
                        locked_by=None,
                        last_error=reason,
                    )
                )
            return
        log.error("job %s %s gave up: %s", job.id, job.name, traceback.format_exc())
        if definition is not None and definition.on_give_up is not None:
            await definition.on_give_up(args, reason)
        await self._finish(job.id, JobStatus.FAILED, reason)

    async def _finish(self, job_id: int, status: JobStatus, error: str | None) -> None:
        async with self.db.transaction() as session:
            await session.exec(
                update(Job)
                .where(col(Job.id) == job_id)
                .values(status=status, finished_at=utcnow(), last_error=error, locked_by=None)
            )

    async def _heartbeat(self, job_id: int) -> None:
        while True:
            await asyncio.sleep(max(1.0, self.stale_seconds / 3))
            async with self.db.transaction() as session:
                await session.exec(
                    update(Job).where(col(Job.id) == job_id).values(heartbeat_at=utcnow())
                )

    async def _requeue(self, *, stale_before: datetime | None, only_mine: bool = False) -> None:
        condition = [col(Job.status) == JobStatus.RUNNING]
        if only_mine:
            condition.append(col(Job.locked_by) == self.worker_id)
        if stale_before is not None:
            condition.append(col(Job.heartbeat_at) < stale_before)
        async with self.db.transaction() as session:
            await session.exec(
                update(Job).where(*condition).values(status=JobStatus.QUEUED, locked_by=None)
            )


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive UTC timestamps."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
