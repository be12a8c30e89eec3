"""Mutations on backups and backup policies: global IDs decoded, the backup and policy
services called, the scheduler woken when a policy changed."""

from __future__ import annotations

from collections.abc import Awaitable

from recoverly.models import Backup, BackupPolicy
from recoverly.resolvers.context import Context
from recoverly.resolvers.mutations import MutationResult, attempt, require_id
from recoverly.services import backups, policies

PolicySettings = policies.PolicySettings
PolicyChanges = policies.PolicyChanges


async def create_backup_policy(
    ctx: Context, *, instance_id: str, settings: PolicySettings
) -> MutationResult[BackupPolicy]:
    async def create() -> BackupPolicy:
        return await policies.create_policy(
            ctx.runtime,
            ctx.authenticated_scope,
            instance_id=require_id(instance_id, "ProductInstance", field=["input", "instanceId"]),
            settings=settings,
        )

    return await _kicking_scheduler(ctx, create())


async def update_backup_policy(
    ctx: Context, *, policy_id: str, changes: PolicyChanges
) -> MutationResult[BackupPolicy]:
    async def update() -> BackupPolicy:
        return await policies.update_policy(
            ctx.runtime,
            ctx.authenticated_scope,
            policy_id=require_id(policy_id, "BackupPolicy", field=["input", "policyId"]),
            changes=changes,
        )

    return await _kicking_scheduler(ctx, update())


async def delete_backup_policy(ctx: Context, *, policy_id: str) -> MutationResult[int]:
    async def delete() -> int:
        return await policies.delete_policy(
            ctx.runtime,
            ctx.authenticated_scope,
            policy_id=require_id(policy_id, "BackupPolicy", field=["input", "policyId"]),
        )

    return await attempt(delete())


async def set_backup_policy_active(
    ctx: Context, *, policy_id: str, active: bool
) -> MutationResult[BackupPolicy]:
    async def toggle() -> BackupPolicy:
        return await policies.set_policy_active(
            ctx.runtime,
            ctx.authenticated_scope,
            policy_id=require_id(policy_id, "BackupPolicy", field=["input", "policyId"]),
            active=active,
        )

    return await _kicking_scheduler(ctx, toggle())


async def cancel_backup(ctx: Context, *, backup_id: str) -> MutationResult[Backup]:
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
) -> MutationResult[Backup]:
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


async def _kicking_scheduler(
    ctx: Context, change: Awaitable[BackupPolicy]
) -> MutationResult[BackupPolicy]:
    """A policy change, then the scheduler woken to look at the new schedule at once."""
    result = await attempt(change)
    if result.value is not None:
        ctx.runtime.kick_scheduler()
    return result
