"""Backups: manual runs, the backup job, and where each finished archive is stored."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.jobs import JobArgs, JobDefinition, JobInfo
from recoverly.models import (
    FINAL_BACKUP_STATUSES,
    Backup,
    BackupCopy,
    BackupLocation,
    BackupPolicy,
    BackupStatus,
    ProductInstance,
    StorageMode,
)
from recoverly.models.base import saved_id
from recoverly.observability.incidents import cite, report
from recoverly.observability.logs import get_logger, set_phase
from recoverly.products.export import ExportStopped, count_export_rows, export_instance
from recoverly.services import audit, operations
from recoverly.services.archives import customer_store, store_for
from recoverly.services.errors import ErrorCode, ServiceError, not_found
from recoverly.services.progress import ProgressPublisher, progress_event, topic_of
from recoverly.services.runtime import Runtime
from recoverly.services.scoping import Scope
from recoverly.services.secrets import needs_sealing, open_bucket, seal_bucket
from recoverly.storage import StorageError

log = get_logger(__name__)
BACKUP_JOB = "backup.run"
STOP_CHECK_SECONDS = 0.5  # how often a running export asks whether it was canceled


def backup_job(runtime: Runtime) -> JobDefinition:
    async def run(args: JobArgs, info: JobInfo) -> None:
        await perform_backup(runtime, backup_id=int(args["backup_id"]), attempt=info.attempt)

    async def give_up(args: JobArgs, reason: str) -> None:
        backup_id = int(args["backup_id"])
        error_id = report(f"backup {backup_id} gave up: {reason}")
        attempts = runtime.settings.backup_max_attempts
        message = f"the backup could not be completed after {attempts} attempts"
        await fail_backup(runtime, backup_id=backup_id, reason=cite(message, error_id))

    return JobDefinition(
        name=BACKUP_JOB,
        run=run,
        on_give_up=give_up,
        max_attempts=runtime.settings.backup_max_attempts,
    )


async def start_backup(
    runtime: Runtime,
    scope: Scope,
    *,
    instance_id: int,
    include_attachments: bool,
    include_users_and_groups: bool = True,
    include_personal_spaces: bool = False,
    policy: BackupPolicy | None = None,
) -> Backup:
    """Queue a backup of one instance; DESTINATION_BUSY while another operation runs on it."""
    assert runtime.runner is not None
    async with runtime.db.session() as session:
        instance = await scope.get(session, ProductInstance, instance_id)
    if instance is None:
        raise not_found("site", field=["input", "instanceId"])
    items_total = await count_export_rows(
        runtime.db,
        instance=instance,
        include_attachments=include_attachments,
        include_users_and_groups=include_users_and_groups,
    )
    async with runtime.db.transaction() as session:
        backup = new_backup(
            runtime,
            instance,
            policy=policy,
            created_by_id=scope.admin_id if policy is None else policy.created_by_id,
            include_attachments=include_attachments,
            include_users_and_groups=include_users_and_groups,
            include_personal_spaces=include_personal_spaces,
        )
        backup.items_total = items_total
        session.add(backup)
        await session.flush()
        assert backup.id is not None
        await operations.acquire(
            session,
            instance_id=instance_id,
            kind="backup",
            ref_id=backup.id,
            field=["input", "instanceId"],
        )
        await runtime.runner.enqueue(BACKUP_JOB, {"backup_id": backup.id}, session=session)
        audit.record(
            session,
            organization_id=instance.organization_id,
            actor_id=scope.admin_id if policy is None else None,
            action="backup.start",
            target_type="Backup",
            target_ids=[backup.id],
            details={"instance_id": instance_id, "policy_id": backup.policy_id},
        )
    await runtime.bus.publish(topic_of(backup), progress_event(backup))
    return backup


def new_backup(
    runtime: Runtime,
    instance: ProductInstance,
    *,
    policy: BackupPolicy | None,
    created_by_id: int | None,
    include_attachments: bool,
    include_users_and_groups: bool,
    include_personal_spaces: bool,
) -> Backup:
    """A QUEUED backup row of ``instance`` (not yet added to a session)."""
    assert instance.id is not None
    return Backup(
        organization_id=instance.organization_id,
        instance_id=instance.id,
        policy_id=policy.id if policy else None,
        product=instance.product,
        include_attachments=include_attachments,
        include_users_and_groups=include_users_and_groups,
        include_personal_spaces=include_personal_spaces,
        created_by_id=created_by_id,
        created_at=runtime.now(),
        message="queued: waiting for a worker",
    )


async def back_up_now(
    runtime: Runtime,
    *,
    instance_id: int,
    admin_id: int,
    policy: Callable[[ProductInstance], BackupPolicy] | None = None,
) -> int:
    """A backup of the site (attachments, users and groups, no personal spaces) made in this
    process now, outside the job queue, by the same code a job runs; its ID. For the demo,
    benchmarks and tests that need a real archive. ``policy`` makes the policy the backup
    belongs to (its storage decides where the copies go), saved in the same transaction."""
    async with runtime.db.transaction() as session:
        instance = await session.get(ProductInstance, instance_id)
        if instance is None:
            raise ValueError(f"no product instance {instance_id}")
        owner = policy(instance) if policy is not None else None
        if owner is not None:
            session.add(owner)
            await session.flush()
        backup = new_backup(
            runtime,
            instance,
            policy=owner,
            created_by_id=admin_id,
            include_attachments=True,
            include_users_and_groups=True,
            include_personal_spaces=False,
        )
        session.add(backup)
    await perform_backup(runtime, backup_id=saved_id(backup))
    return saved_id(backup)


async def perform_backup(runtime: Runtime, *, backup_id: int, attempt: int = 1) -> Backup:
    """Write the archive, store its copies, and mark the backup COMPLETED.

    Safe to run again after a crash: the archive is rewritten from scratch and copies
    recorded by an interrupted attempt are replaced. A backup canceled meanwhile ends
    CANCELED with no archive kept.
    """
    async with runtime.db.transaction() as session:
        backup = await _locked(session, backup_id)
        if backup is None:
            raise LookupError(f"backup {backup_id} does not exist")
        if backup.status in FINAL_BACKUP_STATUSES:
            return backup  # canceled while queued: nothing to do
        instance = await session.get(ProductInstance, backup.instance_id)
        policy = await session.get(BackupPolicy, backup.policy_id) if backup.policy_id else None
        if backup.status != BackupStatus.CANCELING:
            backup.status = BackupStatus.IN_PROGRESS
            backup.message = "reading the site"
        if backup.started_at is None:
            runtime.metrics.backups.started.inc()
        backup.started_at = backup.started_at or runtime.now()
        backup.attempts = attempt
        await session.exec(delete(BackupCopy).where(col(BackupCopy.backup_id) == backup_id))
    assert instance is not None
    set_phase("exporting")
    log.info("backup started", instance_id=instance.id, policy_id=backup.policy_id)
    if not backup.items_total:  # made without start_backup (the demo's back-dated backups)
        backup.items_total = await _count(runtime, instance, backup)
        await _save_progress(runtime, backup_id, items_total=backup.items_total)
    publisher = ProgressPublisher(runtime.bus, backup)
    if backup.status == BackupStatus.CANCELING:
        return await _finish_cancel(runtime, backup_id, publisher, copies=[])
    await publisher.publish()
    should_stop = _stop_check(runtime, backup_id)
    work_dir = runtime.settings.data_dir / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"backup-{backup_id}.zip"

    saved = {"at": time.monotonic()}

    async def on_progress(done: int) -> None:
        await publisher.publish(items_done=done)
        if time.monotonic() - saved["at"] >= STOP_CHECK_SECONDS:
            saved["at"] = time.monotonic()
            await _save_progress(runtime, backup_id, items_done=publisher.row.items_done)

    copies: list[BackupCopy] = []
    try:
        manifest = await export_instance(
            runtime.db,
            instance=instance,
            path=path,
            include_attachments=backup.include_attachments,
            include_users_and_groups=backup.include_users_and_groups,
            include_personal_spaces=backup.include_personal_spaces,
            on_progress=on_progress,
            should_stop=should_stop,
        )
        if await should_stop(force=True):
            raise ExportStopped("canceled after the export")
        set_phase("storing")
        await publisher.publish(message="storing the archive")
        copies, customer_failure = await _store_copies(
            runtime, backup=backup, policy=policy, path=path
        )
        checksum = _sha256_file(path)
    except ExportStopped:
        return await _finish_cancel(runtime, backup_id, publisher, copies=copies)
    finally:
        path.unlink(missing_ok=True)
    rows_read = publisher.row.items_done
    async with runtime.db.transaction() as session:
        backup = await _locked(session, backup_id)
        assert backup is not None
        if backup.status == BackupStatus.CANCELING:
            canceled = True
        else:
            canceled = False
            backup.status = BackupStatus.INCOMPLETE if customer_failure else BackupStatus.COMPLETED
            backup.completed_at = runtime.now()
            backup.size_bytes = manifest.size_bytes
            backup.checksum = checksum
            backup.entity_counts = dict(manifest.entity_counts)
            backup.failure_reason = customer_failure
            # Rows added or deleted while the export ran change the count it started from.
            backup.items_done = backup.items_total = rows_read
            backup.message = f"backed up {manifest.total_records} records" + (
                f"; {customer_failure}" if customer_failure else ""
            )
            session.add_all(copies)
            await operations.release(
                session, instance_id=backup.instance_id, kind="backup", ref_id=backup_id
            )
    if canceled:
        return await _finish_cancel(runtime, backup_id, publisher, copies=copies)
    await publisher.publish(
        status=backup.status,
        items_total=backup.items_total,
        items_done=backup.items_done,
        message=backup.message,
        completed_at=backup.completed_at,
    )
    _finished(runtime, backup)
    return backup


async def cancel_backup(runtime: Runtime, scope: Scope, *, backup_id: int) -> Backup:
    """Cancel a backup: a queued one at once, a running one when its export next checks
    (then its partial archive is deleted). Either way no archive is kept and the site is
    released."""
    async with runtime.db.transaction() as session:
        backup = await _locked(session, backup_id, scope=scope)
        if backup is None:
            raise not_found("backup", field=["input", "backupId"])
        if backup.status in FINAL_BACKUP_STATUSES or backup.status == BackupStatus.CANCELING:
            raise ServiceError(
                ErrorCode.ALREADY_FINAL,
                f"the backup is already {backup.status.lower().replace('_', ' ')}",
                field=["input", "backupId"],
            )
        if backup.status == BackupStatus.QUEUED:
            backup.status = BackupStatus.CANCELED
            backup.completed_at = runtime.now()
            backup.message = "canceled before it started: no archive was written"
            await operations.release(
                session, instance_id=backup.instance_id, kind="backup", ref_id=backup_id
            )
        else:
            backup.status = BackupStatus.CANCELING
            backup.message = "canceling: stopping the export, then deleting the partial archive"
        audit.record(
            session,
            organization_id=backup.organization_id,
            actor_id=scope.admin_id,
            action="backup.cancel",
            target_type="Backup",
            target_ids=[backup_id],
        )
    await runtime.bus.publish(topic_of(backup), progress_event(backup))
    return backup


async def _locked(
    session: AsyncSession, backup_id: int, *, scope: Scope | None = None
) -> Backup | None:
    """The backup row, locked for this transaction (PostgreSQL; SQLite writes are serial)."""
    statement = select(Backup).where(col(Backup.id) == backup_id).with_for_update()
    if scope is not None:
        statement = scope.restrict(statement, Backup)
    return (await session.exec(statement)).first()


async def _count(runtime: Runtime, instance: ProductInstance, backup: Backup) -> int:
    return await count_export_rows(
        runtime.db,
        instance=instance,
        include_attachments=backup.include_attachments,
        include_users_and_groups=backup.include_users_and_groups,
    )


async def _save_progress(runtime: Runtime, backup_id: int, **values: int) -> None:
    async with runtime.db.transaction() as session:
        await session.exec(update(Backup).where(col(Backup.id) == backup_id).values(**values))


def _stop_check(runtime: Runtime, backup_id: int) -> Callable[..., Awaitable[bool]]:
    """Whether the backup was canceled, read from the database at most every half second."""
    last = {"at": 0.0, "stop": False}

    async def should_stop(*, force: bool = False) -> bool:
        if force or time.monotonic() - last["at"] >= STOP_CHECK_SECONDS:
            async with runtime.db.session() as session:
                status = (
                    await session.exec(select(Backup.status).where(col(Backup.id) == backup_id))
                ).one()
            last["at"], last["stop"] = time.monotonic(), status == BackupStatus.CANCELING
        return bool(last["stop"])

    return should_stop


async def _finish_cancel(
    runtime: Runtime, backup_id: int, publisher: ProgressPublisher, *, copies: list[BackupCopy]
) -> Backup:
    """Delete whatever was stored, then CANCELED with the site released."""
    for copy in copies:
        await store_for(runtime, copy).delete(copy.key)
    async with runtime.db.transaction() as session:
        backup = await _locked(session, backup_id)
        assert backup is not None
        done, total = max(backup.items_done, publisher.row.items_done), backup.items_total
        backup.status = BackupStatus.CANCELED
        backup.completed_at = runtime.now()
        backup.items_done = done
        backup.message = (
            f"canceled after reading {done} of {total} items: its archive was deleted, "
            "no copy is kept"
        )
        await operations.release(
            session, instance_id=backup.instance_id, kind="backup", ref_id=backup_id
        )
    await publisher.publish(
        status=BackupStatus.CANCELED,
        items_done=backup.items_done,
        message=backup.message,
        completed_at=backup.completed_at,
    )
    _finished(runtime, backup)
    return backup


async def fail_backup(runtime: Runtime, *, backup_id: int, reason: str) -> None:
    """The last attempt failed: FAILED with its reason (a cancel asked meanwhile wins)."""
    async with runtime.db.transaction() as session:
        backup = await _locked(session, backup_id)
        if backup is None or backup.status in FINAL_BACKUP_STATUSES:
            return
        canceling = backup.status == BackupStatus.CANCELING
        backup.status = BackupStatus.CANCELED if canceling else BackupStatus.FAILED
        backup.failure_reason = None if canceling else reason
        backup.completed_at = runtime.now()
        backup.message = (
            "canceled: no archive was kept"
            if canceling
            else f"failed after reading {backup.items_done} of {backup.items_total} items: "
            f"{reason}; no archive was kept"
        )
        await operations.release(
            session, instance_id=backup.instance_id, kind="backup", ref_id=backup_id
        )
    await runtime.bus.publish(topic_of(backup), progress_event(backup))
    _finished(runtime, backup)


def _finished(runtime: Runtime, backup: Backup) -> None:
    """A backup reached its final status: its metrics and the last line of its log."""
    started = backup.started_at or backup.created_at
    end = backup.completed_at
    seconds = (end - started).total_seconds() if end and started else 0.0
    entities = sum((backup.entity_counts or {}).values())
    status = str(backup.status)
    runtime.metrics.backups.finish(
        status=status, seconds=seconds, entities=entities, size_bytes=backup.size_bytes or 0
    )
    set_phase("finished")
    log.info(
        "backup finished",
        status=status,
        duration_s=round(seconds, 3),
        entities=entities,
        reason=backup.failure_reason,
    )


async def detach_policy(session: AsyncSession, *, policy_id: int) -> None:
    """The policy is being deleted: its backups stay, without a policy."""
    await session.exec(
        update(Backup).where(col(Backup.policy_id) == policy_id).values(policy_id=None)
    )


async def expire_backup(session: AsyncSession, *, backup_id: int) -> None:
    """The backup's last live copy expired: a restorable backup becomes EXPIRED."""
    backup = await session.get(Backup, backup_id)
    if backup is not None and backup.status in (BackupStatus.COMPLETED, BackupStatus.INCOMPLETE):
        backup.status = BackupStatus.EXPIRED


def internal_key(backup: Backup) -> str:
    return f"backups/org-{backup.organization_id}/backup-{backup.id}.zip"


async def _store_copies(
    runtime: Runtime, *, backup: Backup, policy: BackupPolicy | None, path: Path
) -> tuple[list[BackupCopy], str | None]:
    """The internal copy, and the customer copy when the policy asks for one. A customer
    copy that cannot be written does not lose the backup: the reason comes back instead."""
    assert backup.id is not None
    key = internal_key(backup)
    size = await runtime.internal_store.put_file(key, path)
    retention = timedelta(days=runtime.settings.internal_retention_days)
    copies = [
        BackupCopy(
            backup_id=backup.id,
            location=BackupLocation.INTERNAL_STORAGE,
            key=key,
            bucket=runtime.internal_store.describe(),
            size_bytes=size,
            created_at=backup.created_at,
            expires_at=backup.created_at + retention,
        )
    ]
    if policy is not None and policy.storage == StorageMode.INTERNAL_AND_CUSTOMER:
        try:
            await customer_store(runtime, policy.customer_bucket or {}).put_file(key, path)
        except StorageError as error:
            error_id = report(f"customer copy of backup {backup.id} failed", error)
            return copies, cite(customer_copy_failure(error), error_id)
        copies.append(
            BackupCopy(
                backup_id=backup.id,
                location=BackupLocation.CUSTOMER_STORAGE,
                key=key,
                bucket=dict(policy.customer_bucket or {}),
                size_bytes=size,
                created_at=backup.created_at,
            )
        )
    return copies, None


async def reseal_copy_secrets(runtime: Runtime, *, rotate: bool) -> int:
    """Like ``policies.reseal_policy_secrets``, for the bucket recorded with each copy."""
    box = runtime.secrets
    async with runtime.db.transaction() as session:
        statement = select(BackupCopy).where(
            col(BackupCopy.location) == BackupLocation.CUSTOMER_STORAGE
        )
        rows = (await session.exec(statement)).all()
        changed = [c for c in rows if needs_sealing(box, c.bucket, rotate=rotate)]
        for copy in changed:
            copy.bucket = seal_bucket(box, open_bucket(box, copy.bucket or {}))
    return len(changed)


def customer_copy_failure(error: StorageError) -> str:
    """Why the customer copy is missing, in words for the customer (no paths, no keys)."""
    cause = {
        "missing_bucket": "the bucket no longer exists",
        "denied": "the bucket refused the policy's credentials",
        "refused": "the bucket's endpoint is not allowed",
        "unreachable": "the bucket could not be reached",
    }.get(error.kind, "the bucket did not accept the archive")
    return (
        f"the copy in your bucket could not be written ({cause}); "
        "the copy in internal storage is kept"
    )


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
