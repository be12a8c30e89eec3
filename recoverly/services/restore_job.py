"""The restore job: verify the archive, restore it with checkpoints, finish or undo.

Runs in whichever process holds the job; it shares nothing with subscribers but the
database and the event bus. A restore that fails or is canceled is purged, so the
destination is left as it was; a crashed one resumes from its checkpoint.

The job is the ``Restore`` row's writer while it runs: the engine gets a ``RestoreOrder``
and a ``RestoreRowStore``, through which its checkpoints and progress reach the row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import select

from recoverly.database import Database
from recoverly.jobs import JobArgs, JobDefinition, JobInfo
from recoverly.models import (
    FINAL_RESTORE_STATUSES,
    Backup,
    Restore,
    RestorePhase,
    RestoreStatus,
    table_of,
)
from recoverly.observability.incidents import cite, report
from recoverly.observability.logs import get_logger
from recoverly.products.archive import ArchiveError
from recoverly.products.archive_reader import ArchiveReader
from recoverly.products.restore_engine import (
    Checkpoint,
    RestoreOptions,
    RestoreOrder,
    RestoreStopped,
    purge_restore,
    restore_archive,
)
from recoverly.products.selection import Selection
from recoverly.services import operations
from recoverly.services.progress import ProgressPublisher
from recoverly.services.restores import RESTORE_JOB, copy_to_read, open_archive
from recoverly.services.runtime import Runtime
from recoverly.storage import StorageError

log = get_logger(__name__)
_RESTORES = table_of(Restore)


class RestoreRowStore:
    """The engine's ``RestoreStore`` for one restore: checkpoints go on its row, in the
    chunk's transaction; progress and the question whether to stop go to the callables."""

    def __init__(
        self,
        db: Database,
        restore_id: int,
        *,
        on_progress: Callable[[str, int], Awaitable[None]],  # (phase, items written so far)
        should_stop: Callable[[], Awaitable[bool]],
    ) -> None:
        self.db, self.restore_id = db, restore_id
        self._on_progress, self._should_stop = on_progress, should_stop

    async def save_checkpoint(
        self, conn: AsyncConnection, checkpoint: Checkpoint, *, phase: str
    ) -> None:
        statement = (
            update(_RESTORES)
            .where(_RESTORES.c.id == self.restore_id)
            .values(checkpoint=checkpoint.to_json(), items_done=checkpoint.items_done, phase=phase)
        )
        if (await conn.execute(statement)).rowcount != 1:
            raise LookupError(f"restore {self.restore_id} does not exist")

    async def report_progress(self, phase: str, items_done: int) -> None:
        await self._on_progress(phase, items_done)

    async def should_stop(self) -> bool:
        return await self._should_stop()

    async def order(self) -> RestoreOrder:
        """What the engine restores for this row, from its last checkpoint."""
        async with self.db.session() as session:
            row = await session.get(Restore, self.restore_id)
        if row is None:
            raise LookupError(f"restore {self.restore_id} does not exist")
        return order_of(row)


def order_of(row: Restore) -> RestoreOrder:
    """The engine's order for a restore row: its destination, its options, its checkpoint
    (as this version or an older one stored it)."""
    assert row.id is not None
    stored = row.checkpoint
    return RestoreOrder(
        restore_id=row.id,
        organization_id=row.organization_id,
        destination_id=row.destination_id,
        options=RestoreOptions(
            include_attachments=row.include_attachments,
            include_users_and_groups=row.include_users_and_groups,
            selection=Selection.from_json(row.selection) if row.selection else None,
        ),
        checkpoint=Checkpoint.from_json(stored, items_done=row.items_done) if stored else None,
    )


async def purge(db: Database, *, restore_id: int, chunk_size: int = 5000) -> int:
    """Remove every row the restore wrote, then its checkpoint (a restart begins afresh);
    return how many rows were deleted."""
    deleted = await purge_restore(db, restore_id=restore_id, chunk_size=chunk_size)
    async with db.transaction() as session:
        statement = update(_RESTORES).where(_RESTORES.c.id == restore_id).values(checkpoint=None)
        await (await session.connection()).execute(statement)
    return deleted


def restore_job(runtime: Runtime) -> JobDefinition:
    async def run(args: JobArgs, info: JobInfo) -> None:
        await perform_restore(runtime, restore_id=int(args["restore_id"]))

    async def give_up(args: JobArgs, reason: str) -> None:
        restore_id = int(args["restore_id"])
        error_id = report(f"restore {restore_id} gave up: {reason}")
        await _undo(runtime, restore_id, RestoreStatus.FAILED, cite("the restore failed", error_id))

    return JobDefinition(name=RESTORE_JOB, run=run, on_give_up=give_up, max_attempts=1)


async def perform_restore(runtime: Runtime, *, restore_id: int) -> None:
    async with runtime.db.session() as session:
        restore = await session.get(Restore, restore_id)
        if restore is None or restore.status in FINAL_RESTORE_STATUSES:
            return
        backup = await session.get(Backup, restore.backup_id)
        assert backup is not None
        found = await copy_to_read(runtime, session, backup)
    if restore.started_at is None:
        runtime.metrics.restores.started.inc()
        log.info("restore started", backup_id=backup.id, destination_id=restore.destination_id)
    else:
        log.info("restore resumed", status=str(restore.status), phase=str(restore.phase))
    publisher = ProgressPublisher(runtime.bus, restore)
    if restore.status == RestoreStatus.CANCELING:
        await _undo(runtime, restore_id, RestoreStatus.CANCELED, "canceled", publisher)
        return
    if found.copy is None:
        await _undo(
            runtime,
            restore_id,
            RestoreStatus.FAILED,
            f"backup unavailable: {found.reason}",
            publisher,
        )
        return
    try:
        name = f"restore-{restore_id}.zip"
        async with open_archive(runtime, backup, found.copy, name=name) as reader:
            await _verify(runtime, restore, reader, publisher)
            row = await _restore(runtime, restore, reader, publisher)
        _finished(runtime, row, size_bytes=found.copy.size_bytes)
    except RestoreStopped:
        await _undo(runtime, restore_id, RestoreStatus.CANCELED, "canceled", publisher)
    except ArchiveError as error:
        error_id = report(f"restore {restore_id}: invalid archive", error)
        reason = cite("the backup archive is damaged or invalid", error_id)
        await _undo(runtime, restore_id, RestoreStatus.FAILED, reason, publisher)
    except StorageError as error:
        error_id = report(f"restore {restore_id}: archive unreadable", error)
        reason = cite("the backup archive could not be read from its storage", error_id)
        await _undo(runtime, restore_id, RestoreStatus.FAILED, reason, publisher)
    except Exception as error:
        error_id = report(f"restore {restore_id} failed", error)
        reason = cite("the restore failed unexpectedly", error_id)
        await _undo(runtime, restore_id, RestoreStatus.FAILED, reason, publisher)


async def _verify(
    runtime: Runtime, restore: Restore, reader: ArchiveReader, publisher: ProgressPublisher
) -> None:
    """Check every checksum before the first row is written."""
    await _save(
        runtime,
        restore.id,
        status=RestoreStatus.VALIDATING,
        phase=RestorePhase.VALIDATING,
        started_at=restore.started_at or runtime.now(),
        message="checking the destination and the backup",
    )
    await publisher.publish(
        status=RestoreStatus.VALIDATING,
        phase=RestorePhase.VALIDATING,
        message="checking the destination and the backup",
    )
    loop = asyncio.get_running_loop()

    def on_bytes(done: int, total: int) -> None:
        share = 100 * done // max(total, 1)
        message = f"verifying archive checksums: {share}%"
        asyncio.run_coroutine_threadsafe(publisher.publish(message=message), loop)

    await publisher.publish(
        phase=RestorePhase.READING_ARCHIVE, message="verifying archive checksums"
    )
    await asyncio.to_thread(reader.verify, on_bytes)


async def _restore(
    runtime: Runtime,
    restore: Restore,
    reader: ArchiveReader,
    publisher: ProgressPublisher,
) -> Restore:
    assert restore.id is not None
    await _save(runtime, restore.id, status=RestoreStatus.IN_PROGRESS, message="restoring")
    await publisher.publish(status=RestoreStatus.IN_PROGRESS, message="restoring")

    async def on_progress(phase: str, done: int) -> None:
        await publisher.publish(phase=RestorePhase(phase), items_done=done)

    async def should_stop() -> bool:
        async with runtime.db.session() as session:
            status = (
                await session.exec(select(Restore.status).where(Restore.id == restore.id))
            ).one()
        return status == RestoreStatus.CANCELING

    store = RestoreRowStore(
        runtime.db, restore.id, on_progress=on_progress, should_stop=should_stop
    )
    result = await restore_archive(
        runtime.db,
        reader,
        await store.order(),
        store,
        chunk_size=runtime.settings.restore_chunk_size,
    )
    await publisher.publish(phase=RestorePhase.FINALIZING, message="finalizing")
    if await should_stop():
        raise RestoreStopped()
    written = sum(result.entity_counts.values())
    async with runtime.db.transaction() as session:
        row = await session.get(Restore, restore.id)
        assert row is not None
        row.status = RestoreStatus.COMPLETED
        row.phase = None
        # The plan's total, unless the destination changed since it was planned: a finished
        # restore says exactly what it wrote.
        row.items_done = row.items_total = written
        row.entity_counts = result.entity_counts
        row.skipped_spaces = result.skipped_spaces
        row.finished_at = runtime.now()
        row.message = _summary(result.entity_counts, result.skipped_spaces)
        await operations.release(
            session, instance_id=row.destination_id, kind="restore", ref_id=restore.id
        )
    await publisher.publish(
        status=RestoreStatus.COMPLETED,
        phase=None,
        items_total=row.items_total,
        items_done=row.items_done,
        message=row.message,
        finished_at=row.finished_at,
    )
    return row


def _finished(runtime: Runtime, row: Restore, *, size_bytes: int = 0) -> None:
    """A restore reached its final status: its metrics and the last line of its log."""
    started = row.started_at or row.created_at
    seconds = (row.finished_at - started).total_seconds() if row.finished_at and started else 0.0
    entities = sum((row.entity_counts or {}).values())
    status = str(row.status)
    runtime.metrics.restores.finish(
        status=status, seconds=seconds, entities=entities, size_bytes=size_bytes
    )
    log.info(
        "restore finished",
        status=status,
        duration_s=round(seconds, 3),
        entities=entities,
        reason=row.failure_reason,
    )


def _summary(counts: dict[str, int], skipped: list[str]) -> str:
    restored = sum(counts.values())
    text = f"restored {restored} items"
    return text + (f"; skipped existing spaces {', '.join(skipped)}" if skipped else "")


async def _undo(
    runtime: Runtime,
    restore_id: int,
    status: RestoreStatus,
    reason: str,
    publisher: ProgressPublisher | None = None,
) -> None:
    """Remove everything the restore wrote, then record its final status."""
    await purge(runtime.db, restore_id=restore_id)
    async with runtime.db.transaction() as session:
        row = await session.get(Restore, restore_id)
        if row is None:
            return
        row.status = status
        row.phase = None
        row.finished_at = runtime.now()
        row.checkpoint = None
        row.failure_reason = None if status == RestoreStatus.CANCELED else reason
        if publisher is not None:
            row.items_done = max(row.items_done, publisher.row.items_done)
        row.message = _undone(status, reason, row.items_done, row.items_total)
        await operations.release(
            session, instance_id=row.destination_id, kind="restore", ref_id=restore_id
        )
    _finished(runtime, row)
    publisher = publisher or ProgressPublisher(runtime.bus, row)
    await publisher.publish(
        status=status,
        phase=None,
        items_done=row.items_done,
        message=row.message,
        failure_reason=row.failure_reason,
        finished_at=row.finished_at,
    )


def _undone(status: RestoreStatus, reason: str, done: int, total: int) -> str:
    """What a canceled or failed restore undid, in words: its progress stays where it was."""
    what = "canceled" if status == RestoreStatus.CANCELED else reason
    if done == 0:
        return f"{what} before any item was written: the destination is unchanged"
    return (
        f"{what} after {done} of {total} items: the {done} items written were removed, "
        "the destination is as it was before the restore"
    )


async def _save(runtime: Runtime, restore_id: int | None, **values: Any) -> None:
    async with runtime.db.transaction() as session:
        row = await session.get(Restore, restore_id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
