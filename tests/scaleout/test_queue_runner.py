"""The queue runner in-process on a real PostgreSQL: transactional enqueue, retries with
backoff, giving up, and the engine's recovery of the jobs of a dead worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text

from recoverly.database import Database
from recoverly.jobs import JobArgs, JobDefinition, JobInfo
from recoverly.jobs.queue import QUEUE, QueueJobRunner, QueueOptions
from recoverly.settings import async_database_url
from tests.jobs.recorder import Recorder
from tests.scaleout.conftest import needs_postgres

pytestmark = needs_postgres

FAST = QueueOptions(
    concurrency=2,
    poll_seconds=0.05,
    heartbeat_seconds=0.2,
    stalled_seconds=1.0,
    stalled_check_seconds=1,
    backoff_seconds=0.2,
    shutdown_seconds=2.0,
)


@asynccontextmanager
async def running(
    url: str, recorder: Recorder, *, max_attempts: int = 1, work: bool = True
) -> AsyncIterator[QueueJobRunner]:
    db = Database(async_database_url(url))
    runner = QueueJobRunner(db, dsn=url, work=work, options=FAST)
    runner.register(recorder.definition(max_attempts))
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()
        await db.dispose()


async def registered_workers(runner: QueueJobRunner) -> int:
    async with runner.db.session() as session:
        rows = await (await session.connection()).execute(
            text("SELECT count(*) FROM procrastinate_workers")
        )
        return int(rows.scalar_one())


async def job_statuses(runner: QueueJobRunner) -> list[str]:
    async with runner.db.session() as session:
        rows = await (await session.connection()).execute(
            text("SELECT status FROM procrastinate_jobs WHERE queue_name = :q ORDER BY id"),
            {"q": QUEUE},
        )
        return [str(row[0]) for row in rows]


async def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs(postgres_url: str) -> None:
    recorder = Recorder()
    async with running(postgres_url, recorder) as runner:
        with pytest.raises(LookupError):
            async with runner.db.transaction() as session:
                await runner.enqueue("test.record", {"n": 1}, session=session)
                raise LookupError("the caller's work failed")
        async with runner.db.transaction() as session:
            await runner.enqueue("test.record", {"n": 2}, session=session)
        await recorder.until(lambda: recorder.runs)
        await asyncio.wait_for(runner.wait_idle(), 10)
    assert [args for args, _, _ in recorder.runs] == [{"n": 2}]


async def test_api_processes_enqueue_without_running_jobs(postgres_url: str) -> None:
    recorder = Recorder()
    async with running(postgres_url, recorder, work=False) as api:
        await api.enqueue("test.record", {"n": 1})
        # No worker loop in this process, none registered anywhere: nothing can take it.
        assert (api.workers, api.running) == ([], False)
        assert await registered_workers(api) == 0
        assert recorder.runs == []
        assert await job_statuses(api) == ["todo"]
    async with running(postgres_url, recorder) as worker:
        await recorder.until(lambda: recorder.runs)
        await asyncio.wait_for(worker.wait_idle(), 10)
    assert recorder.runs[0][1].attempt == 1


async def test_failures_are_retried_with_backoff_until_one_succeeds(postgres_url: str) -> None:
    recorder = Recorder(failures=2)
    async with running(postgres_url, recorder, max_attempts=3) as runner:
        job_id = await runner.enqueue("test.record", {"n": 1})
        await recorder.until(lambda: len(recorder.runs) == 3)
        await asyncio.wait_for(runner.wait_idle(), 10)
    infos = [info for _, info, _ in recorder.runs]
    assert [(i.job_id, i.attempt, i.max_attempts) for i in infos] == [
        (job_id, 1, 3),
        (job_id, 2, 3),
        (job_id, 3, 3),
    ]
    times = [at for _, _, at in recorder.runs]
    assert times[1] - times[0] >= FAST.backoff_seconds * 0.9
    assert times[2] - times[1] >= 2 * FAST.backoff_seconds * 0.9
    assert recorder.gave_up == []


async def test_the_last_failure_gives_up_once_with_its_reason(postgres_url: str) -> None:
    recorder = Recorder(failures=99)
    async with running(postgres_url, recorder, max_attempts=2) as runner:
        await runner.enqueue("test.record", {"n": 7})
        await recorder.until(lambda: recorder.gave_up)
        await asyncio.wait_for(runner.wait_idle(), 10)
        assert await job_statuses(runner) == ["failed"]
    assert len(recorder.runs) == 2
    assert recorder.gave_up == [({"n": 7}, "RuntimeError: boom 2")]


async def test_the_jobs_of_a_dead_worker_are_queued_again_by_the_engine(
    postgres_url: str,
) -> None:
    recorder = Recorder()
    async with running(postgres_url, recorder, work=False) as api:
        job_id = await api.enqueue("test.record", {"n": 1})
        # A worker that took the job, then died: its last heartbeat is an hour old.
        async with api.db.transaction() as session:
            conn = await session.connection()
            dead = (
                await conn.execute(
                    text(
                        "INSERT INTO procrastinate_workers (last_heartbeat) "
                        "VALUES (now() - interval '1 hour') RETURNING id"
                    )
                )
            ).scalar_one()
            taken = await conn.execute(
                text("SELECT id FROM procrastinate_fetch_job_v2(ARRAY[:q]::varchar[], :w)"),
                {"q": QUEUE, "w": dead},
            )
            assert taken.scalar_one() == job_id
        assert await job_statuses(api) == ["doing"]
    async with running(postgres_url, recorder) as worker:
        await recorder.until(lambda: recorder.runs)
        await asyncio.wait_for(worker.wait_idle(), 10)
    assert [(info.job_id, info.attempt) for _, info, _ in recorder.runs] == [(job_id, 2)]


async def test_a_job_cut_short_by_its_worker_shutting_down_is_queued_again(
    postgres_url: str,
) -> None:
    started = asyncio.Event()

    async def forever(args: JobArgs, info: JobInfo) -> None:
        started.set()
        await asyncio.Event().wait()

    db = Database(async_database_url(postgres_url))
    options = QueueOptions(**{**FAST.__dict__, "shutdown_seconds": 0.2})
    runner = QueueJobRunner(db, dsn=postgres_url, work=True, options=options)
    runner.register(JobDefinition("test.forever", forever, max_attempts=1))
    try:
        await runner.start()
        await runner.enqueue("test.forever", {})
        await asyncio.wait_for(started.wait(), 10)
        await runner.stop()
        async with db.session() as session:
            conn = await session.connection()
            # Only this job: the periodic stalled-jobs check may have deferred a row too.
            statement = text(
                "SELECT status, attempts FROM procrastinate_jobs WHERE task_name = 'test.forever'"
            )
            row = (await conn.execute(statement)).one()
        assert (str(row[0]), row[1]) == ("todo", 1)
    finally:
        await db.dispose()
