"""Backup policies and the scheduler that starts their due runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.models import BackupPolicy, ProductInstance, Schedule, StorageMode
from recoverly.observability.incidents import cite, report
from recoverly.services import audit
from recoverly.services.archives import customer_store
from recoverly.services.backups import detach_policy, start_backup
from recoverly.services.errors import ErrorCode, ServiceError, not_found
from recoverly.services.runtime import Runtime
from recoverly.services.scoping import Scope
from recoverly.services.secrets import needs_sealing, open_bucket, seal_bucket
from recoverly.services.validation import check_customer_bucket, check_datetime, check_name
from recoverly.storage import S3BlobStore, StorageError

log = logging.getLogger(__name__)
BUSY_RETRY = timedelta(minutes=1)
MAX_POLICIES_PER_SITE = 50
INTERVALS = {Schedule.DAILY: timedelta(days=1), Schedule.WEEKLY: timedelta(weeks=1)}


@dataclass(frozen=True)
class PolicySettings:
    """A new policy's settings (``createBackupPolicy``'s input, IDs decoded); ``start_at``
    is when its first run is due (default: now)."""

    schedule: Schedule
    name: str | None = None
    include_attachments: bool = True
    include_users_and_groups: bool = True
    include_personal_spaces: bool = False
    storage: StorageMode = StorageMode.INTERNAL
    customer_bucket: dict[str, Any] | None = None
    start_at: datetime | None = None


async def create_policy(
    runtime: Runtime, scope: Scope, *, instance_id: int, settings: PolicySettings
) -> BackupPolicy:
    """Create an active policy; its first run is due at ``settings.start_at`` (default: now).

    Every input is checked first, then the customer bucket is probed (it must exist and
    take writes), so a bad bucket is refused now rather than discovered by a backup."""
    name, schedule, storage = settings.name, settings.schedule, settings.storage
    start_at, customer_bucket = settings.start_at, settings.customer_bucket
    if name is not None:
        name = check_name(name, field=["input", "name"])
    if start_at is not None:
        check_datetime(start_at, now=runtime.now(), field=["input", "startAt"])
    check_storage(storage, customer_bucket)
    async with runtime.db.session() as session:
        await _check_site(session, scope, instance_id)
    if customer_bucket is not None:
        customer_bucket = await checked_bucket(runtime, customer_bucket)
    async with runtime.db.transaction() as session:
        instance = await _check_site(session, scope, instance_id)
        policy = BackupPolicy(
            organization_id=instance.organization_id,
            instance_id=instance_id,
            name=name or f"{schedule.title()} backup of {instance.name}",
            schedule=schedule,
            include_attachments=settings.include_attachments,
            include_users_and_groups=settings.include_users_and_groups,
            include_personal_spaces=settings.include_personal_spaces,
            storage=storage,
            customer_bucket=seal_bucket(runtime.secrets, customer_bucket)
            if customer_bucket
            else None,
            next_run_at=start_at or runtime.now(),
            created_by_id=scope.admin_id,
            created_at=runtime.now(),
        )
        session.add(policy)
        await session.flush()
        assert policy.id is not None
        audit.record(
            session,
            organization_id=instance.organization_id,
            actor_id=scope.admin_id,
            action="backup_policy.create",
            target_type="BackupPolicy",
            target_ids=[policy.id],
            details={"schedule": str(schedule), "storage": str(storage)},
        )
    return policy


async def _check_site(session: AsyncSession, scope: Scope, instance_id: int) -> ProductInstance:
    """The site in scope, with room for one more policy."""
    instance = await scope.get(session, ProductInstance, instance_id)
    if instance is None:
        raise not_found("site", field=["input", "instanceId"])
    count = (
        await session.exec(select(func.count()).where(col(BackupPolicy.instance_id) == instance_id))
    ).one()
    if count >= MAX_POLICIES_PER_SITE:
        raise ServiceError(
            ErrorCode.LIMIT_EXCEEDED,
            f"a site has at most {MAX_POLICIES_PER_SITE} backup policies",
            field=["input", "instanceId"],
        )
    return instance


async def checked_bucket(runtime: Runtime, bucket: dict[str, Any]) -> dict[str, Any]:
    """A customer bucket as entered, checked part by part and then probed."""
    field = ["input", "customerBucket"]
    checked = check_customer_bucket(
        bucket, allow_private=runtime.settings.allow_private_endpoints, field=field
    )
    await probe_bucket(runtime, checked, field=field)
    return checked


async def probe_bucket(runtime: Runtime, bucket: dict[str, Any], *, field: list[str]) -> None:
    """Write and delete a tiny object in the customer bucket; a clear error if it fails."""
    store = customer_store(runtime, bucket)
    if not isinstance(store, S3BlobStore):
        return
    try:
        await store.probe()
    except StorageError as error:
        raise _probe_error(error, field) from None


def _probe_error(error: StorageError, field: list[str]) -> ServiceError:
    if error.kind == "missing_bucket":
        return ServiceError(
            ErrorCode.INVALID_INPUT, "no such bucket at this endpoint", field=[*field, "bucket"]
        )
    if error.kind == "denied":
        return ServiceError(
            ErrorCode.INVALID_INPUT,
            "the bucket refused these credentials: check the key pair and that it may write",
            field=[*field, "accessKeyId"],
        )
    if error.kind == "refused":
        return ServiceError(ErrorCode.INVALID_INPUT, str(error), field=[*field, "endpointUrl"])
    error_id = report("customer bucket probe failed", error)
    what = (
        "the bucket could not be reached at its endpoint"
        if error.kind == "unreachable"
        else "the bucket did not accept a test object"
    )
    return ServiceError(ErrorCode.STORAGE_UNREACHABLE, cite(what, error_id), field=field)


async def reseal_policy_secrets(runtime: Runtime, *, rotate: bool) -> int:
    """Seal plain credentials left by older versions (and, with ``rotate``, re-seal every
    credential with the active key); returns the policies changed."""
    box = runtime.secrets
    async with runtime.db.transaction() as session:
        rows = (
            await session.exec(
                select(BackupPolicy).where(col(BackupPolicy.customer_bucket).is_not(None))
            )
        ).all()
        changed = [p for p in rows if needs_sealing(box, p.customer_bucket, rotate=rotate)]
        for policy in changed:
            policy.customer_bucket = seal_bucket(
                box, open_bucket(box, policy.customer_bucket or {})
            )
    return len(changed)


async def set_policy_active(
    runtime: Runtime, scope: Scope, *, policy_id: int, active: bool
) -> BackupPolicy:
    async with runtime.db.transaction() as session:
        policy = await scope.get(session, BackupPolicy, policy_id)
        if policy is None:
            raise not_found("backup policy", field=["input", "policyId"])
        if active and not policy.active and policy.next_run_at is None:
            policy.next_run_at = _next_after(policy, runtime.now())
        policy.active = active
        assert policy.id is not None
        audit.record(
            session,
            organization_id=policy.organization_id,
            actor_id=scope.admin_id,
            action="backup_policy.activate" if active else "backup_policy.deactivate",
            target_type="BackupPolicy",
            target_ids=[policy.id],
        )
    return policy


def check_storage(storage: StorageMode, customer_bucket: dict[str, Any] | None) -> None:
    """A customer bucket goes with storage INTERNAL_AND_CUSTOMER, and only with it."""
    if (storage == StorageMode.INTERNAL_AND_CUSTOMER) != (customer_bucket is not None):
        raise ServiceError(
            ErrorCode.INVALID_INPUT,
            "a customer bucket is required with storage INTERNAL_AND_CUSTOMER, and only then",
            field=["input", "customerBucket"],
        )
    if customer_bucket is not None and not customer_bucket.get("bucket"):
        raise ServiceError(
            ErrorCode.INVALID_INPUT,
            "the customer bucket needs a name",
            field=["input", "customerBucket", "bucket"],
        )


@dataclass(frozen=True)
class PolicyChanges:
    """What ``update_policy`` changes; None leaves a setting as it is. Storage INTERNAL
    drops the customer bucket; a bucket given alone replaces the current one."""

    name: str | None = None
    schedule: Schedule | None = None
    include_attachments: bool | None = None
    include_users_and_groups: bool | None = None
    include_personal_spaces: bool | None = None
    storage: StorageMode | None = None
    customer_bucket: dict[str, Any] | None = None
    next_run_at: datetime | None = None


async def update_policy(
    runtime: Runtime, scope: Scope, *, policy_id: int, changes: PolicyChanges
) -> BackupPolicy:
    """Change a policy's settings; a new schedule moves the next run accordingly. Inputs
    are checked as on creation, and a new customer bucket is probed before anything changes."""
    if changes.name is not None:
        changes = replace(changes, name=check_name(changes.name, field=["input", "name"]))
    if changes.next_run_at is not None:
        check_datetime(changes.next_run_at, now=runtime.now(), field=["input", "nextRunAt"])
    new_bucket = None
    if changes.customer_bucket is not None:
        async with runtime.db.session() as session:
            if await scope.get(session, BackupPolicy, policy_id) is None:
                raise not_found("backup policy", field=["input", "policyId"])
        new_bucket = await checked_bucket(runtime, changes.customer_bucket)
        changes = replace(changes, customer_bucket=None)  # stored sealed below, never as entered
    async with runtime.db.transaction() as session:
        policy = await scope.get(session, BackupPolicy, policy_id)
        if policy is None:
            raise not_found("backup policy", field=["input", "policyId"])
        storage = changes.storage or policy.storage
        bucket = seal_bucket(runtime.secrets, new_bucket) if new_bucket else None
        if bucket is None and storage == StorageMode.INTERNAL_AND_CUSTOMER:
            bucket = policy.customer_bucket
        check_storage(storage, bucket)
        changed = [
            f.name
            for f in fields(changes)
            if getattr(changes, f.name) is not None
            and getattr(changes, f.name) != getattr(policy, f.name)
        ]
        if new_bucket is not None:
            changed.append("customer_bucket")
        for name in changed:
            if name != "customer_bucket":
                setattr(policy, name, getattr(changes, name))
        policy.customer_bucket = bucket
        if "schedule" in changed and changes.next_run_at is None and policy.active:
            policy.next_run_at = _rescheduled(policy, runtime.now())
        assert policy.id is not None
        audit.record(
            session,
            organization_id=policy.organization_id,
            actor_id=scope.admin_id,
            action="backup_policy.update",
            target_type="BackupPolicy",
            target_ids=[policy.id],
            details={"changed": changed},
        )
    return policy


async def delete_policy(runtime: Runtime, scope: Scope, *, policy_id: int) -> int:
    """Delete a policy; its backups stay (without a policy) until their copies expire."""
    async with runtime.db.transaction() as session:
        policy = await scope.get(session, BackupPolicy, policy_id)
        if policy is None:
            raise not_found("backup policy", field=["input", "policyId"])
        await detach_policy(session, policy_id=policy_id)
        await session.delete(policy)
        audit.record(
            session,
            organization_id=policy.organization_id,
            actor_id=scope.admin_id,
            action="backup_policy.delete",
            target_type="BackupPolicy",
            target_ids=[policy_id],
            details={"name": policy.name, "instance_id": policy.instance_id},
        )
    return policy_id


def _rescheduled(policy: BackupPolicy, now: datetime) -> datetime | None:
    """The next run under a new schedule: one interval after the last run, not before now."""
    interval = INTERVALS.get(policy.schedule)
    if policy.last_run_at is None:
        return policy.next_run_at or now
    return None if interval is None else max(policy.last_run_at + interval, now)


def _next_after(policy: BackupPolicy, moment: datetime) -> datetime | None:
    interval = INTERVALS.get(policy.schedule)
    if policy.last_run_at is None:
        return moment
    return None if interval is None else moment + interval


async def run_due_policies(runtime: Runtime) -> list[int]:
    """Start every active policy whose run is due; returns the backups started.

    Each due run is claimed by moving ``next_run_at`` with a compare-and-set, so two
    schedulers (two API replicas) never start the same run twice.
    """
    now = runtime.now()
    async with runtime.db.session() as session:
        due = (
            await session.exec(
                select(BackupPolicy).where(
                    col(BackupPolicy.active).is_(True), col(BackupPolicy.next_run_at) <= now
                )
            )
        ).all()
    started = []
    for policy in due:
        if not await _claim_run(runtime, policy, now):
            continue
        scope = Scope(
            admin_id=policy.created_by_id or 0,
            organization_ids=frozenset({policy.organization_id}),
        )
        try:
            backup = await start_backup(
                runtime,
                scope,
                instance_id=policy.instance_id,
                include_attachments=policy.include_attachments,
                include_users_and_groups=policy.include_users_and_groups,
                include_personal_spaces=policy.include_personal_spaces,
                policy=policy,
            )
        except ServiceError as error:
            # Busy site: try again shortly rather than lose the run.
            log.warning("policy %s postponed its run: %s", policy.id, error.message)
            await _postpone(runtime, policy, now + BUSY_RETRY)
            continue
        assert backup.id is not None
        started.append(backup.id)
    return started


async def _claim_run(runtime: Runtime, policy: BackupPolicy, now: datetime) -> bool:
    interval = INTERVALS.get(policy.schedule)
    next_run = None if interval is None else max(policy.next_run_at or now, now) + interval
    async with runtime.db.transaction() as session:
        result = await session.exec(
            update(BackupPolicy)
            .where(
                col(BackupPolicy.id) == policy.id,
                col(BackupPolicy.next_run_at) == policy.next_run_at,
            )
            .values(next_run_at=next_run, last_run_at=now)
        )
    return bool(result.rowcount == 1)


async def _postpone(runtime: Runtime, policy: BackupPolicy, when: datetime) -> None:
    async with runtime.db.transaction() as session:
        await session.exec(
            update(BackupPolicy).where(col(BackupPolicy.id) == policy.id).values(next_run_at=when)
        )
