"""The audit log: who did what, when, on which objects."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from recoverly import models
from recoverly.resolvers.context import Context
from recoverly.resolvers.global_ids import to_global_id
from recoverly.resolvers.queries import AuditFilter
from recoverly.schema.node import Node
from recoverly.schema.organizations import Viewer


@strawberry.input(description="Audit events matching all the given conditions.")
class AuditEventFilter:
    action: list[str] | None = strawberry.field(
        default=None, description="Any of these actions, e.g. restore.start, backup.cancel."
    )
    actor_id: strawberry.ID | None = strawberry.field(
        default=None, description="Done by this admin (a Viewer id)."
    )
    target_id: strawberry.ID | None = strawberry.field(
        default=None, description="About this object (any global ID)."
    )
    since: datetime | None = strawberry.field(default=None, description="At or after.")
    until: datetime | None = strawberry.field(default=None, description="Before.")

    def to_filter(self) -> AuditFilter:
        return AuditFilter(
            action=self.action,
            actor_id=self.actor_id,
            target_id=self.target_id,
            since=self.since,
            until=self.until,
        )


@strawberry.type(description="One recorded change: who did what, when, on which objects.")
class AuditEvent(Node):
    row: strawberry.Private[models.AuditEvent]
    action: str
    at: datetime
    target_type: str
    target_ids: list[strawberry.ID]
    details: JSON | None

    @classmethod
    def from_row(cls, row: models.AuditEvent) -> AuditEvent:
        assert row.id is not None
        return cls(
            id=strawberry.ID(to_global_id("AuditEvent", row.id)),
            row=row,
            action=row.action,
            at=row.created_at,
            target_type=row.target_type,
            target_ids=[
                strawberry.ID(to_global_id(row.target_type, i)) for i in row.target_ids or []
            ],
            details=JSON(row.details),
        )

    @strawberry.field(description="Who did it; null for the scheduler and other system work.")
    async def actor(self, info: Info[Context, None]) -> Viewer | None:
        if self.row.actor_id is None:
            return None
        row = await info.context.loaders.admin.load(self.row.actor_id)
        return Viewer.from_row(row) if row else None
