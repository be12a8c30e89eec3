"""Backups and backup policies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLObjectType
from strawberry.scalars import JSON
from strawberry.types import Info

from recoverly import models
from recoverly.resolvers import queries
from recoverly.resolvers.global_ids import to_global_id
from recoverly.resolvers.queries import Availability
from recoverly.schema.enums import BackupLocation, BackupStatus, ProductKey, Schedule, StorageMode
from recoverly.schema.node import Node
from recoverly.schema.organizations import ProductInstance, Viewer


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


T = TypeVar("T")


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


@dataclass(frozen=True)
class BackupExtras:
    """What a page of backups fetched up front for each row (one query per relation), so
    the row's fields resolve without awaiting."""

    source: models.ProductInstance
    availability: Availability


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
    extras: strawberry.Private[BackupExtras | None] = None

    @classmethod
    def from_row(cls, row: models.Backup, extras: BackupExtras | None = None) -> Backup:
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
            extras=extras,
        )

    @strawberry.field
    def progress(self) -> BackupProgress:
        return BackupProgress.from_event(queries.progress(self.row))

    async def _availability(self, info: Info[Any, None]) -> Availability:
        return await queries.backup_availability(info.context, self.row)

    def _with_availability(self, info: Info[Any, None], pick: Callable[[Availability], T]) -> T:
        # Synchronous for prefetched rows (no await per field); else it awaits the loader.
        if self.extras is not None:
            return pick(self.extras.availability)

        async def later() -> T:
            return pick(await self._availability(info))

        return later()  # type: ignore[return-value]

    @strawberry.field
    def source(self, info: Info[Any, None]) -> ProductInstance:
        if self.extras is not None:
            return ProductInstance.from_row(self.extras.source)

        async def later() -> ProductInstance:
            return ProductInstance.from_row(
                await info.context.loaders.instance.load(self.row.instance_id)
            )

        return later()  # type: ignore[return-value]

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
    def location(self, info: Info[Any, None]) -> BackupLocation | None:
        return self._with_availability(info, lambda a: a.location)

    @strawberry.field
    def available_for_restore(self, info: Info[Any, None]) -> bool:
        return self._with_availability(info, lambda a: a.available)

    @strawberry.field(description="Why the backup cannot be restored, with what to do about it.")
    def unavailable_reason(self, info: Info[Any, None]) -> str | None:
        return self._with_availability(info, lambda a: a.reason)


# Prefetched fields of a page's rows, read straight from ``extras``.
_PREFETCHED: dict[str, Callable[[Backup], Any]] = {
    "source": lambda b: ProductInstance.from_row(b.extras.source),  # type: ignore[union-attr]
    "location": lambda b: b.extras.availability.location,  # type: ignore[union-attr]
    "availableForRestore": lambda b: b.extras.availability.available,  # type: ignore[union-attr]
    "unavailableReason": lambda b: b.extras.availability.reason,  # type: ignore[union-attr]
}


def resolve_prefetched_directly(schema: strawberry.Schema) -> None:
    """Let the fields a page prefetched skip Strawberry's resolver wrapper (its Info object
    and argument conversion cost more than the field itself, a few hundred times a page);
    a backup fetched on its own still goes through its resolver."""
    backup_type = schema._schema.get_type("Backup")
    assert isinstance(backup_type, GraphQLObjectType)
    for name, pick in _PREFETCHED.items():
        field = backup_type.fields[name]
        field.resolve = _prefetched_first(pick, field.resolve)


def _prefetched_first(pick: Callable[[Backup], Any], resolver: Any) -> Any:
    def resolve(source: Backup, info: Any, **kwargs: Any) -> Any:
        if source.extras is not None:
            return pick(source)
        return resolver(source, info, **kwargs)

    return resolve
