"""Restores and their progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from recoverly import models
from recoverly.products.selection import Selection
from recoverly.resolvers import queries
from recoverly.resolvers.context import Context
from recoverly.resolvers.global_ids import to_global_id
from recoverly.schema.backups import Backup
from recoverly.schema.enums import ConflictPolicy, RestorePhase, RestoreStatus
from recoverly.schema.node import Node
from recoverly.schema.organizations import ProductInstance, Viewer


@strawberry.type(
    description="A restore's state at one moment: itemsTotal is what the restore writes "
    "(restorePreview.itemsTotal), skipped items are not counted."
)
class RestoreProgress:
    restore_id: strawberry.ID
    status: RestoreStatus
    phase: RestorePhase | None
    items_done: int
    items_total: int
    percent: float
    items_per_second: float | None = strawberry.field(
        description="Items written per second over the last few seconds; null when unknown."
    )
    eta_seconds: float | None = strawberry.field(
        description="Seconds left at that rate; null when unknown."
    )
    message: str | None
    at: datetime

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> RestoreProgress:
        """From a progress event (see ``services.progress``)."""
        return cls(
            restore_id=strawberry.ID(to_global_id("Restore", event["restore_id"])),
            status=models.RestoreStatus(event["status"]),
            phase=models.RestorePhase(event["phase"]) if event.get("phase") else None,
            items_done=event["items_done"],
            items_total=event["items_total"],
            percent=event["percent"],
            items_per_second=event.get("items_per_second"),
            eta_seconds=event.get("eta_seconds"),
            message=event.get("message"),
            at=datetime.fromisoformat(event["at"]),
        )


@strawberry.type(description="A project or space restored under another key.")
class KeyRename:
    from_: str = strawberry.field(name="from")
    to: str


@strawberry.type(description="What a selective restore restores.")
class RestoreSelection:
    project_keys: list[str] | None
    space_keys: list[str] | None
    key_renames: list[KeyRename]

    @classmethod
    def from_selection(
        cls, selection: Selection, *, product: models.ProductKey
    ) -> RestoreSelection:
        keys = sorted(selection.keys)
        jira = product == models.ProductKey.JIRA
        return cls(
            project_keys=keys if jira else None,
            space_keys=None if jira else keys,
            key_renames=[KeyRename(from_=k, to=v) for k, v in sorted(selection.renames.items())],
        )


@strawberry.type(description="A restore of a backup into a destination site.")
class Restore(Node):
    row: strawberry.Private[models.Restore]
    status: RestoreStatus
    phase: RestorePhase | None
    include_attachments: bool
    include_users_and_groups: bool
    conflict_policy: ConflictPolicy
    skipped_spaces: list[str] = strawberry.field(
        description="Keys left untouched because the destination holds them: spaces of a "
        "full-site restore, selected projects or spaces under SKIP."
    )
    entity_counts: JSON | None
    failure_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: models.Restore) -> Restore:
        assert row.id is not None
        return cls(
            id=strawberry.ID(to_global_id("Restore", row.id)),
            row=row,
            status=row.status,
            phase=row.phase,
            include_attachments=row.include_attachments,
            include_users_and_groups=row.include_users_and_groups,
            conflict_policy=row.conflict_policy,
            skipped_spaces=list(row.skipped_spaces or []),
            entity_counts=JSON(row.entity_counts),
            failure_reason=row.failure_reason,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )

    @strawberry.field
    def progress(self) -> RestoreProgress:
        return RestoreProgress.from_event(queries.progress(self.row))

    @strawberry.field(description="Seconds from start to finish, or until now while running.")
    def duration_seconds(self, info: Info[Context, None]) -> float | None:
        if self.row.started_at is None:
            return None
        end = self.row.finished_at or info.context.runtime.now()
        return (end - self.row.started_at).total_seconds()

    @strawberry.field(description="The projects or spaces restored; null: the whole site.")
    async def selection(self, info: Info[Context, None]) -> RestoreSelection | None:
        if self.row.selection is None:
            return None
        destination = await info.context.loaders.instance.load(self.row.destination_id)
        selection = Selection.from_json(self.row.selection)
        return RestoreSelection.from_selection(selection, product=destination.product)

    @strawberry.field
    async def backup(self, info: Info[Context, None]) -> Backup:
        row = await info.context.loaders.backup.load(self.row.backup_id)
        assert row is not None
        return Backup.from_row(row)

    @strawberry.field
    async def destination(self, info: Info[Context, None]) -> ProductInstance:
        row = await info.context.loaders.instance.load(self.row.destination_id)
        return ProductInstance.from_row(row)

    @strawberry.field
    async def started_by(self, info: Info[Context, None]) -> Viewer | None:
        if self.row.started_by_id is None:
            return None
        row = await info.context.loaders.admin.load(self.row.started_by_id)
        return Viewer.from_row(row) if row else None
