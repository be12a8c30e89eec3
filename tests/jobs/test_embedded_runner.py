"""The embedded job runner (``recoverly.jobs.embedded``) on both backends: jobs as rows run by
asyncio workers, transactional enqueue, retries with backoff, giving up, shutdown and crash
resumption, and never two runs of one job at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from recoverly.database import Database
from recoverly.jobs import EmbeddedJobRunner, JobArgs, JobDefinition, JobInfo
from recoverly.models import Job, JobStatus, utcnow
from tests.conftest import empty_database
from tests.jobs.recorder import Recorder
from tests.waiting import wait_for

BACKOFF = 0.2


@pytest.fixture
async def db(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    async with empty_database(backend, tmp_path) as database:
        yield database


@asynccontextmanager
async def running(
    db: Database, *definitions: JobDefinition, concurrency: int = 2, poll_seconds: float = 0.05
) -> AsyncIterator[EmbeddedJobRunner]:
    runner = EmbeddedJobRunner(
        db, concurrency=concurrency, poll_seconds=poll_seconds, backoff_seconds=BACKOFF
    )
    for definition in definitions:
        runner.register(definition)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


async def job_row(db: Database, job_id: int) -> Job:
    async with db.session() as session:
        row = await session.get(Job, job_id)
    assert row is not None
    return row


async def test_a_job_runs_once_with_its_arguments_and_is_done(db: Database) -> None:
    recorder = Recorder()
    async with running(db, recorder.definition(max_attempts=3)) as runner:
        job_id = await runner.enqueue("test.record", {"backup_id": 7, "note": "ü"})
        await recorder.until(lambda: recorder.runs)
        await asyncio.wait_for(runner.wait_idle(), 10)
    [(args, info, _)] = recorder.runs
    assert args == {"backup_id": 7, "note": "ü"}
    assert (info.job_id, info.attempt, info.max_attempts) == (job_id, 1, 3)
    row = await job_row(db, job_id)
    assert (row.status, row.attempts, row.locked_by, row.last_error) == (
        JobStatus.DONE,
        1,
        None,
        None,
    )
    assert row.finished_at is not None


async def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs(db: Database) -> None:
    recorder = Recorder()
    async with running(db, recorder.definition()) as runner:
        with pytest.raises(LookupError):
            async with db.transaction() as session:
                await runner.enqueue("test.record", {"n": 1}, session=session)
                raise LookupError("the caller's work failed")
        async with db.transaction() as session:
            await runner.enqueue("test.record", {"n": 2}, session=session)
        await recorder.until(lambda: recorder.runs)
        await asyncio.wait_for(runner.wait_idle(), 10)
    assert [args for args, _, _ in recorder.runs] == [{"n": 2}]
    async with db.session() as session:
        assert len((await session.exec(select(Job))).all()) == 1


async def test_committed_and_retried_jobs_run_without_waiting_for_a_poll(db: Database) -> None:
    # No poll within the test's time: the commit wakes the workers, and the retry's backoff.
    recorder = Recorder(failures=1)
    async with running(db, recorder.definition(max_attempts=2), poll_seconds=3600) as runner:
        async with db.transaction() as session:
            job_id = await runner.enqueue("test.record", {"n": 1}, session=session)
        await recorder.until(lambda: len(recorder.runs) == 2)

        async def done() -> bool:
            return (await job_row(db, job_id)).status == JobStatus.DONE

        await wait_for(done, within=20, what="the job to be done")
    assert [info.attempt for _, info, _ in recorder.runs] == [1, 2]


async def test_an_unknown_job_name_is_refused_on_enqueue(db: Database) -> None:
    async with running(db) as runner:
        with pytest.raises(LookupError, match=r"no job handler registered for 'test\.nothing'"):
            await runner.enqueue("test.nothing", {})


async def test_failures_are_retried_with_growing_backoff_until_one_succeeds(
    db: Database,
) -> None:
    recorder = Recorder(failures=2)
    async with running(db, recorder.definition(max_attempts=3)) as runner:
        job_id = await runner.enqueue("test.record", {"n": 1})
        await recorder.until(lambda: len(recorder.runs) == 3)
        await asyncio.wait_for(runner.wait_idle(), 10)
    assert [(i.job_id, i.attempt, i.max_attempts) for _, i, _ in recorder.runs] == [
        (job_id, 1, 3),
        (job_id, 2, 3),
        (job_id, 3, 3),
    ]
    # A failed attempt is queued again no sooner than backoff * 2**(attempt - 1) (read on
    # the wall clock, measured here on the monotonic one: a tenth of slack).
    starts = [at for _, _, at in recorder.runs]
    assert starts[1] - starts[0] >= BACKOFF * 0.9
    assert starts[2] - starts[1] >= 2 * BACKOFF * 0.9
    row = await job_row(db, job_id)
    assert (row.status, row.attempts) == (JobStatus.DONE, 3)
    assert row.last_error is None
    assert recorder.gave_up == []


async def test_the_last_failure_gives_up_once_with_its_reason(db: Database) -> None:
    recorder = Recorder(failures=99)
    async with running(db, recorder.definition(max_attempts=2)) as runner:
        job_id = await runner.enqueue("test.record", {"n": 7})
        await recorder.until(lambda: recorder.gave_up)
        await asyncio.wait_for(runner.wait_idle(), 10)
    assert len(recorder.runs) == 2
    assert recorder.gave_up == [({"n": 7}, "RuntimeError: boom 2")]
    row = await job_row(db, job_id)
    assert (row.status, row.attempts, row.last_error) == (
        JobStatus.FAILED,
        2,
        "RuntimeError: boom 2",
    )


async def test_a_job_due_later_waits_while_due_jobs_run(db: Database) -> None:
    recorder = Recorder()
    async with running(db, recorder.definition(), concurrency=1) as runner:
        later = await runner.enqueue(
            "test.record", {"n": "later"}, run_after=utcnow() + timedelta(hours=1)
        )
        await runner.enqueue("test.record", {"n": "now"})
        await recorder.until(lambda: recorder.runs)
        stats = await runner.queue_stats()
    assert [args for args, _, _ in recorder.runs] == [{"n": "now"}]
    assert (await job_row(db, later)).status == JobStatus.QUEUED
    assert stats.depth == 1
    assert stats.oldest_age_seconds == 0.0  # nothing due is waiting


async def test_a_job_cut_short_by_stop_runs_again_at_the_next_start(db: Database) -> None:
    started = asyncio.Event()
    canceled = asyncio.Event()
    runs: list[JobInfo] = []

    async def long_job(args: JobArgs, info: JobInfo) -> None:
        runs.append(info)
        if info.attempt == 1:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                canceled.set()
                raise

    definition = JobDefinition("test.long", long_job, max_attempts=1)
    async with running(db, definition) as runner:
        job_id = await runner.enqueue("test.long", {})
        await asyncio.wait_for(started.wait(), 10)
    assert canceled.is_set(), "stop cancels the running handler"
    row = await job_row(db, job_id)
    assert (row.status, row.locked_by) == (JobStatus.QUEUED, None)
    assert await runner.check() == "the embedded job runner is not running"

    async with running(db, definition) as runner:
        assert await runner.check() is None
        await asyncio.wait_for(runner.wait_idle(), 10)
    # Interrupted by a shutdown, not failed: it runs again although max_attempts is 1.
    assert [info.attempt for info in runs] == [1, 2]
    assert (await job_row(db, job_id)).status == JobStatus.DONE


async def test_a_job_left_running_by_a_dead_process_is_resumed_on_start(db: Database) -> None:
    async with db.transaction() as session:
        orphan = Job(
            name="test.record",
            args={"restore_id": 3},
            status=JobStatus.RUNNING,
            attempts=1,
            max_attempts=3,
            locked_by="gone-host:4242",
            heartbeat_at=utcnow() - timedelta(minutes=5),
        )
        session.add(orphan)
    assert orphan.id is not None
    recorder = Recorder()
    async with running(db, recorder.definition(max_attempts=3)) as runner:
        await recorder.until(lambda: recorder.runs)
        await asyncio.wait_for(runner.wait_idle(), 10)
    [(args, info, _)] = recorder.runs
    assert args == {"restore_id": 3}
    assert (info.job_id, info.attempt) == (orphan.id, 2)
    assert (await job_row(db, orphan.id)).status == JobStatus.DONE


async def test_concurrent_workers_run_each_job_exactly_once(db: Database) -> None:
    recorder = Recorder()
    async with running(db, recorder.definition(), concurrency=4) as runner:
        job_ids = [await runner.enqueue("test.record", {"n": n}) for n in range(20)]
        await recorder.until(lambda: len(recorder.runs) >= 20)
        await asyncio.wait_for(runner.wait_idle(), 10)
    assert sorted(info.job_id for _, info, _ in recorder.runs) == job_ids
    async with db.session() as session:
        statuses = (await session.exec(select(Job.status).where(col(Job.id).in_(job_ids)))).all()
    assert set(statuses) == {JobStatus.DONE}
