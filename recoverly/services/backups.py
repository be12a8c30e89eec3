"""Backups: manual runs, the backup job, and where each finished archive is stored."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete
from sqlmodel import col, select

from recoverly.jobs import JobArgs, JobDefinition, JobInfo
from recoverly.models import (
    Backup,
    BackupCopy,
    BackupLocation,
    BackupPolicy,
    BackupStatus,
    ProductInstance,
    StorageMode,
)
from recoverly.products.export import export_instance
from recoverly.services import audit, operations
from recoverly.services.archives import customer_store
from recoverly.services.errors import not_found
from recoverly.services.incidents import cite, report
from recoverly.services.runtime import Runtime
from recoverly.services.scoping import Scope
from recoverly.services.secrets import needs_sealing, open_bucket, seal_bucket
from recoverly.storage import StorageError

log = logging.getLogger(__name__)
BACKUP_JOB = "backup.run"


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
    async with runtime.db.transaction() as session:
        instance = await scope.get(session, ProductInstance, instance_id)
        if instance is None:
            raise not_found("site", field=["input", "instanceId"])
        backup = new_backup(
            runtime,
            instance,
            policy=policy,
            created_by_id=scope.admin_id if policy is None else policy.created_by_id,
            include_attachments=include_attachments,
            include_users_and_groups=include_users_and_groups,
            include_personal_spaces=include_personal_spaces,
        )
        session.add(backup)
        await session.flush()
        assert backup.id is not None
        await operations.acquire(session, instance_id=instance_id, kind="backup", ref_id=backup.id)
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
    )


async def perform_backup(runtime: Runtime, *, backup_id: int, attempt: int = 1) -> Backup:
    """Write the archive, store its copies, and mark the backup COMPLETED.

    Safe to run again after a crash: the archive is rewritten from scratch and copies
    recorded by an interrupted attempt are replaced.
    """
    async with runtime.db.transaction() as session:
        backup = await session.get(Backup, backup_id)
        if backup is None or backup.status not in (BackupStatus.QUEUED, BackupStatus.IN_PROGRESS):
            raise LookupError(f"backup {backup_id} is not waiting to run")
        instance = await session.get(ProductInstance, backup.instance_id)
        policy = await session.get(BackupPolicy, backup.policy_id) if backup.policy_id else None
        backup.status = BackupStatus.IN_PROGRESS
        backup.started_at = backup.started_at or runtime.now()
        backup.attempts = attempt
        await session.exec(  # type: ignore[call-overload]
            delete(BackupCopy).where(col(BackupCopy.backup_id) == backup_id)
        )
    assert instance is not None
    work_dir = runtime.settings.data_dir / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"backup-{backup_id}.zip"
    try:
        manifest = await export_instance(
            runtime.db,
            instance=instance,
            path=path,
            include_attachments=backup.include_attachments,
            include_users_and_groups=backup.include_users_and_groups,
            include_personal_spaces=backup.include_personal_spaces,
        )
        copies, customer_failure = await _store_copies(
            runtime, backup=backup, policy=policy, path=path
        )
        checksum = _sha256_file(path)
    finally:
        path.unlink(missing_ok=True)
    async with runtime.db.transaction() as session:
        backup = await session.get(Backup, backup_id)
        assert backup is not None
        backup.status = BackupStatus.INCOMPLETE if customer_failure else BackupStatus.COMPLETED
        backup.completed_at = runtime.now()
        backup.size_bytes = manifest.size_bytes
        backup.checksum = checksum
        backup.entity_counts = dict(manifest.entity_counts)
        backup.failure_reason = customer_failure
        session.add_all(copies)
        await operations.release(
            session, instance_id=backup.instance_id, kind="backup", ref_id=backup_id
        )
    return backup


async def fail_backup(runtime: Runtime, *, backup_id: int, reason: str) -> None:
    async with runtime.db.transaction() as session:
        backup = await session.get(Backup, backup_id)
        if backup is None:
            return
        backup.status = BackupStatus.FAILED
        backup.failure_reason = reason
        backup.completed_at = runtime.now()
        await operations.release(
            session, instance_id=backup.instance_id, kind="backup", ref_id=backup_id
        )


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
