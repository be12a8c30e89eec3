"""Backups and backup policies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from recoverly import models
from recoverly.resolvers.global_ids import to_global_id
from recoverly.schema.enums import BackupLocation, BackupStatus, ProductKey, Schedule, StorageMode
from recoverly.schema.node import Node
from recoverly.schema.organizations import ProductInstance, Viewer
from recoverly.services.locations import Availability, availability
from recoverly.services.progress import progress_event


@strawberry.type(description="A backup's state at one moment: items are rows read from the site.")
class BackupProgress:
    backup_id: strawberry.ID
    status: BackupStatus
    items_done: int
    items_total: int
    percent: float
    items_per_second: float | None = strawberry.field(
        description="Items read per second over the last few seconds; null when unknown."
    )
    eta_seconds: float | None = strawberry.field(
        description="Seconds left at that rate; null when unknown."
    )
    message: str | None
    at: datetime

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> BackupProgress:
        """From a progress event (see ``services.progress``)."""
        return cls(
            backup_id=strawberry.ID(to_global_id("Backup", event["backup_id"])),
            status=models.BackupStatus(event["status"]),
            items_done=event["items_done"],
            items_total=event["items_total"],
            percent=event["percent"],
            items_per_second=event.get("items_per_second"),
            eta_seconds=event.get("eta_seconds"),
            message=event.get("message"),
            at=datetime.fromisoformat(event["at"]),
        )


@strawberry.type(description="A customer S3-compatible bucket, without its secret.")
class CustomerBucket:
    bucket: str
    endpoint_url: str | None
    region: str | None
    prefix: str | None


@strawberry.type(description="What to back up from one site, when, and where to keep it.")
class BackupPolicy(Node):
    row: strawberry.Private[models.BackupPolicy]
    name: str
    schedule: Schedule
    include_attachments: bool
    include_users_and_groups: bool
    include_personal_spaces: bool
    storage: StorageMode
    active: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.BackupPolicy) -> BackupPolicy:
        assert row.id is not None
        return cls(
            id=strawberry.ID(to_global_id("BackupPolicy", row.id)),
            row=row,
            name=row.name,
            schedule=row.schedule,
            include_attachments=row.include_attachments,
            include_users_and_groups=row.include_users_and_groups,
            include_personal_spaces=row.include_personal_spaces,
            storage=row.storage,
            active=row.active,
            next_run_at=row.next_run_at,
            last_run_at=row.last_run_at,
            created_at=row.created_at,
        )

    @strawberry.field
    async def instance(self, info: Info[Any, None]) -> ProductInstance | None:
        row = await info.context.loaders.instance.load(self.row.instance_id)
        return ProductInstance.from_row(row) if row else None

    @strawberry.field
    def customer_bucket(self) -> CustomerBucket | None:
        config = self.row.customer_bucket
        if not config:
            return None
        return CustomerBucket(
            bucket=config["bucket"],
            endpoint_url=config.get("endpoint_url"),
            region=config.get("region"),
            prefix=config.get("prefix"),
        )


@strawberry.type(description="One run of a backup policy, or a manual run.")
class Backup(Node):
    row: strawberry.Private[models.Backup]
    product: ProductKey
    status: BackupStatus
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    includes_attachments: bool
    includes_users_and_groups: bool
    size_bytes: int | None
    checksum: str | None
    entity_counts: JSON | None
    failure_reason: str | None
    attempts: int

    @classmethod
    def from_row(cls, row: models.Backup) -> Backup:
        assert row.id is not None
        return cls(
            id=strawberry.ID(to_global_id("Backup", row.id)),
            row=row,
            product=row.product,
            status=row.status,
            created_at=row.created_at,
            started_at=row.started_at,
            completed_at=row.completed_at,
            includes_attachments=row.include_attachments,
            includes_users_and_groups=row.include_users_and_groups,
            size_bytes=row.size_bytes,
            checksum=row.checksum,
            entity_counts=row.entity_counts,
            failure_reason=row.failure_reason,
            attempts=row.attempts,
        )

    @strawberry.field
    def progress(self) -> BackupProgress:
        return BackupProgress.from_event(progress_event(self.row))

    async def _availability(self, info: Info[Any, None]) -> Availability:
        copies = await info.context.loaders.copies_by_backup.load(self.row.id)
        return availability(self.row, copies, info.context.runtime.now())

    @strawberry.field
    async def source(self, info: Info[Any, None]) -> ProductInstance:
        row = await info.context.loaders.instance.load(self.row.instance_id)
        return ProductInstance.from_row(row)

    @strawberry.field
    async def policy(self, info: Info[Any, None]) -> BackupPolicy | None:
        if self.row.policy_id is None:
            return None
        row = await info.context.loaders.policy.load(self.row.policy_id)
        return BackupPolicy.from_row(row) if row else None

    @strawberry.field
    async def created_by(self, info: Info[Any, None]) -> Viewer | None:
        if self.row.created_by_id is None:
            return None
        row = await info.context.loaders.admin.load(self.row.created_by_id)
        return Viewer.from_row(row) if row else None

    @strawberry.field(description="Where a restore reads this backup from; null when no copy.")
    async def location(self, info: Info[Any, None]) -> BackupLocation | None:
        return (await self._availability(info)).location

    @strawberry.field
    async def available_for_restore(self, info: Info[Any, None]) -> bool:
        return (await self._availability(info)).available

    @strawberry.field(description="Why the backup cannot be restored, with what to do about it.")
    async def unavailable_reason(self, info: Info[Any, None]) -> str | None:
        return (await self._availability(info)).reason
