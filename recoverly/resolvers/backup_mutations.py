"""Mutations on backups and backup policies: global IDs decoded, the backup and policy
services called, the scheduler woken when a policy changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from recoverly.models import Backup, BackupPolicy, Schedule, StorageMode
from recoverly.resolvers.context import Context
from recoverly.resolvers.mutations import Outcome, attempt, require_id
from recoverly.services import backups, policies


async def create_backup_policy(
    ctx: Context,
    *,
    instance_id: str,
    name: str | None,
    schedule: Schedule,
    include_attachments: bool,
    include_users_and_groups: bool,
    include_personal_spaces: bool,
    storage: StorageMode,
    customer_bucket: dict[str, Any] | None,
    start_at: datetime | None,
) -> Outcome[BackupPolicy]:
    async def create() -> BackupPolicy:
        policy = await policies.create_policy(
            ctx.runtime,
            ctx.authenticated_scope,
            instance_id=require_id(instance_id, "ProductInstance", field=["input", "instanceId"]),
            name=name,
            schedule=schedule,
            include_attachments=include_attachments,
            include_users_and_groups=include_users_and_groups,
            include_personal_spaces=include_personal_spaces,
            storage=storage,
            customer_bucket=customer_bucket,
            start_at=start_at,
        )
        ctx.runtime.kick_scheduler()
        return policy

    return await attempt(create())


async def update_backup_policy(
    ctx: Context,
    *,
    policy_id: str,
    name: str | None,
    schedule: Schedule | None,
    include_attachments: bool | None,
    include_users_and_groups: bool | None,
    include_personal_spaces: bool | None,
    storage: StorageMode | None,
    customer_bucket: dict[str, Any] | None,
    next_run_at: datetime | None,
) -> Outcome[BackupPolicy]:
    async def update() -> BackupPolicy:
        policy = await policies.update_policy(
            ctx.runtime,
            ctx.authenticated_scope,
            policy_id=require_id(policy_id, "BackupPolicy", field=["input", "policyId"]),
            changes=policies.PolicyChanges(
                name=name,
                schedule=schedule,
                include_attachments=include_attachments,
                include_users_and_groups=include_users_and_groups,
                include_personal_spaces=include_personal_spaces,
                storage=storage,
                customer_bucket=customer_bucket,
                next_run_at=next_run_at,
            ),
        )
        ctx.runtime.kick_scheduler()
        return policy

    return await attempt(update())


async def delete_backup_policy(ctx: Context, *, policy_id: str) -> Outcome[int]:
    async def delete() -> int:
        return await policies.delete_policy(
            ctx.runtime,
            ctx.authenticated_scope,
            policy_id=require_id(policy_id, "BackupPolicy", field=["input", "policyId"]),
        )

    return await attempt(delete())


async def set_backup_policy_active(
    ctx: Context, *, policy_id: str, active: bool
) -> Outcome[BackupPolicy]:
    async def toggle() -> BackupPolicy:
        policy = await policies.set_policy_active(
            ctx.runtime,
            ctx.authenticated_scope,
            policy_id=require_id(policy_id, "BackupPolicy", field=["input", "policyId"]),
            active=active,
        )
        ctx.runtime.kick_scheduler()
        return policy

    return await attempt(toggle())


async def cancel_backup(ctx: Context, *, backup_id: str) -> Outcome[Backup]:
    async def cancel() -> Backup:
        return await backups.cancel_backup(
            ctx.runtime,
            ctx.authenticated_scope,
            backup_id=require_id(backup_id, "Backup", field=["input", "backupId"]),
        )

    return await attempt(cancel())


async def run_backup(
    ctx: Context,
    *,
    instance_id: str,
    include_attachments: bool,
    include_users_and_groups: bool,
    include_personal_spaces: bool,
) -> Outcome[Backup]:
    async def run() -> Backup:
        return await backups.start_backup(
            ctx.runtime,
            ctx.authenticated_scope,
            instance_id=require_id(instance_id, "ProductInstance", field=["input", "instanceId"]),
            include_attachments=include_attachments,
            include_users_and_groups=include_users_and_groups,
            include_personal_spaces=include_personal_spaces,
        )

    return await attempt(run())
