"""Mutations on backups and backup policies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from recoverly import models
from recoverly.resolvers import backup_mutations
from recoverly.resolvers.context import Context
from recoverly.resolvers.mutations import MutationResult
from recoverly.schema.backups import Backup, BackupPolicy
from recoverly.schema.enums import Schedule, StorageMode
from recoverly.schema.errors import UserError, user_errors


@strawberry.input(description="A customer's S3-compatible bucket for a second copy.")
class CustomerBucketInput:
    bucket: str
    endpoint_url: str | None = None
    region: str | None = "us-east-1"
    prefix: str | None = ""
    access_key_id: str | None = None
    secret_access_key: str | None = None


@strawberry.input
class CreateBackupPolicyInput:
    instance_id: strawberry.ID
    name: str | None = strawberry.field(
        default=None, description="1 to 200 characters; default: named after the schedule and site."
    )
    schedule: Schedule = models.Schedule.ONCE
    include_attachments: bool = True
    include_users_and_groups: bool = True
    include_personal_spaces: bool = False
    storage: StorageMode = models.StorageMode.INTERNAL
    customer_bucket: CustomerBucketInput | None = None
    start_at: datetime | None = strawberry.field(
        default=None,
        description="When the first run is due, with a time zone, within a year; default now.",
    )


@strawberry.type
class BackupPolicyPayload:
    policy: BackupPolicy | None
    errors: list[UserError]

    @classmethod
    def of(cls, outcome: MutationResult[models.BackupPolicy]) -> BackupPolicyPayload:
        """The payload of a policy mutation: the policy, or why there is none."""
        policy = BackupPolicy.from_row(outcome.value) if outcome.value else None
        return cls(policy=policy, errors=user_errors(outcome.errors))


@strawberry.input(description="The policy and the settings to change; omitted ones stay.")
class UpdateBackupPolicyInput:
    policy_id: strawberry.ID
    name: str | None = None
    schedule: Schedule | None = None
    include_attachments: bool | None = None
    include_users_and_groups: bool | None = None
    include_personal_spaces: bool | None = None
    storage: StorageMode | None = strawberry.field(
        default=None, description="INTERNAL drops the customer bucket."
    )
    customer_bucket: CustomerBucketInput | None = strawberry.field(
        default=None, description="Replaces the bucket (storage INTERNAL_AND_CUSTOMER)."
    )
    next_run_at: datetime | None = strawberry.field(
        default=None, description="When the next run is due; default: from the schedule."
    )


@strawberry.input
class DeleteBackupPolicyInput:
    policy_id: strawberry.ID


@strawberry.type
class DeleteBackupPolicyPayload:
    deleted_policy_id: strawberry.ID | None
    errors: list[UserError]


@strawberry.input
class CancelBackupInput:
    backup_id: strawberry.ID


@strawberry.type
class CancelBackupPayload:
    backup: Backup | None
    errors: list[UserError]


@strawberry.input
class SetBackupPolicyActiveInput:
    policy_id: strawberry.ID
    active: bool


@strawberry.input
class RunBackupInput:
    instance_id: strawberry.ID
    include_attachments: bool = True
    include_users_and_groups: bool = True
    include_personal_spaces: bool = False


@strawberry.type
class RunBackupPayload:
    backup: Backup | None
    errors: list[UserError]


def _bucket_dict(bucket: CustomerBucketInput | None) -> dict[str, Any] | None:
    if bucket is None:
        return None
    return {
        "bucket": bucket.bucket,
        "endpoint_url": bucket.endpoint_url,
        "region": bucket.region or "us-east-1",
        "prefix": bucket.prefix or "",
        "access_key_id": bucket.access_key_id,
        "secret_access_key": bucket.secret_access_key,
    }


@strawberry.type
class BackupMutations:
    @strawberry.mutation(description="Create an active backup policy for one site.")
    async def create_backup_policy(
        self, info: Info[Context, None], input: CreateBackupPolicyInput
    ) -> BackupPolicyPayload:
        settings = backup_mutations.PolicySettings(
            name=input.name,
            schedule=input.schedule,
            include_attachments=input.include_attachments,
            include_users_and_groups=input.include_users_and_groups,
            include_personal_spaces=input.include_personal_spaces,
            storage=input.storage,
            customer_bucket=_bucket_dict(input.customer_bucket),
            start_at=input.start_at,
        )
        outcome = await backup_mutations.create_backup_policy(
            info.context, instance_id=input.instance_id, settings=settings
        )
        return BackupPolicyPayload.of(outcome)

    @strawberry.mutation(description="Change a backup policy's settings.")
    async def update_backup_policy(
        self, info: Info[Context, None], input: UpdateBackupPolicyInput
    ) -> BackupPolicyPayload:
        changes = backup_mutations.PolicyChanges(
            name=input.name,
            schedule=input.schedule,
            include_attachments=input.include_attachments,
            include_users_and_groups=input.include_users_and_groups,
            include_personal_spaces=input.include_personal_spaces,
            storage=input.storage,
            customer_bucket=_bucket_dict(input.customer_bucket),
            next_run_at=input.next_run_at,
        )
        outcome = await backup_mutations.update_backup_policy(
            info.context, policy_id=input.policy_id, changes=changes
        )
        return BackupPolicyPayload.of(outcome)

    @strawberry.mutation(description="Delete a backup policy; its backups are kept.")
    async def delete_backup_policy(
        self, info: Info[Context, None], input: DeleteBackupPolicyInput
    ) -> DeleteBackupPolicyPayload:
        outcome = await backup_mutations.delete_backup_policy(
            info.context, policy_id=input.policy_id
        )
        return DeleteBackupPolicyPayload(
            deleted_policy_id=input.policy_id if outcome.value is not None else None,
            errors=user_errors(outcome.errors),
        )

    @strawberry.mutation(description="Cancel a queued or running backup; no archive is kept.")
    async def cancel_backup(
        self, info: Info[Context, None], input: CancelBackupInput
    ) -> CancelBackupPayload:
        outcome = await backup_mutations.cancel_backup(info.context, backup_id=input.backup_id)
        return CancelBackupPayload(
            backup=Backup.from_row(outcome.value) if outcome.value else None,
            errors=user_errors(outcome.errors),
        )

    @strawberry.mutation(description="Activate or deactivate a backup policy.")
    async def set_backup_policy_active(
        self, info: Info[Context, None], input: SetBackupPolicyActiveInput
    ) -> BackupPolicyPayload:
        outcome = await backup_mutations.set_backup_policy_active(
            info.context, policy_id=input.policy_id, active=input.active
        )
        return BackupPolicyPayload.of(outcome)

    @strawberry.mutation(description="Back up one site now.")
    async def run_backup(
        self, info: Info[Context, None], input: RunBackupInput
    ) -> RunBackupPayload:
        outcome = await backup_mutations.run_backup(
            info.context,
            instance_id=input.instance_id,
            include_attachments=input.include_attachments,
            include_users_and_groups=input.include_users_and_groups,
            include_personal_spaces=input.include_personal_spaces,
        )
        return RunBackupPayload(
            backup=Backup.from_row(outcome.value) if outcome.value else None,
            errors=user_errors(outcome.errors),
        )
