"""The Query root: thin, every field delegates to ``recoverly.resolvers.queries``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from recoverly import models
from recoverly.resolvers import queries
from recoverly.resolvers.context import Context
from recoverly.schema.access import AccessReview, Group, User
from recoverly.schema.audit import AuditEvent, AuditEventFilter
from recoverly.schema.backups import Backup, BackupExtras, BackupPolicy
from recoverly.schema.connections import Connection
from recoverly.schema.enums import AccessReviewStatus, ProductKey, RestoreStatus
from recoverly.schema.node import Node
from recoverly.schema.organizations import (
    Organization,
    Product,
    ProductInstance,
    Viewer,
    products_from_instances,
)
from recoverly.schema.restore_mutations import (
    RestorePreviewPayload,
    StartRestoreInput,
    restore_preview,
)
from recoverly.schema.restores import Restore

NODE_FROM_ROW: dict[str, Callable[[Any], Node]] = {
    "Organization": Organization.from_row,
    "ProductInstance": ProductInstance.from_row,
    "Backup": Backup.from_row,
    "Restore": Restore.from_row,
    "BackupPolicy": BackupPolicy.from_row,
    "Group": Group.from_row,
    "User": User.from_row,
    "AccessReview": AccessReview.from_row,
    "AuditEvent": AuditEvent.from_row,
}


@strawberry.type(description="The caller's query budget: cost points per time window.")
class RateLimit:
    limit: int = strawberry.field(description="Points per window.")
    remaining: int
    used: int
    reset_at: datetime = strawberry.field(description="When the window ends and the budget resets.")


@strawberry.type
class Query:
    @strawberry.field(description="Your query budget; each operation's cost is charged to it.")
    def rate_limit(self, info: Info[Context, None]) -> RateLimit:
        budget = queries.rate_limit(info.context)
        return RateLimit(
            limit=budget.limit,
            remaining=budget.remaining,
            used=budget.used,
            reset_at=budget.reset_at,
        )

    @strawberry.field(description="The authenticated admin.")
    def viewer(self, info: Info[Context, None]) -> Viewer:
        return Viewer.from_row(info.context.authenticated_admin)

    @strawberry.field(description="Any object by its global ID; null when unknown or not yours.")
    async def node(self, info: Info[Context, None], id: strawberry.ID) -> Node | None:
        found = await queries.node(info.context, id)
        if found is None or found[0] not in NODE_FROM_ROW:
            return None
        type_name, row = found
        return NODE_FROM_ROW[type_name](row)

    @strawberry.field
    async def organization(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> Organization | None:
        row = await queries.organization(info.context, id)
        return Organization.from_row(row) if row else None

    @strawberry.field(description="The organization's products, each with its sites.")
    async def products(
        self, info: Info[Context, None], organization_id: strawberry.ID
    ) -> list[Product]:
        return products_from_instances(await queries.instances(info.context, organization_id))

    @strawberry.field(description="Backups, newest first.")
    async def backups(
        self,
        info: Info[Context, None],
        organization_id: strawberry.ID,
        product: ProductKey | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Backup]:
        page = await queries.backups(
            info.context,
            organization_id=organization_id,
            product=product,
            first=20 if first is None else first,
            after=after,
        )
        relations = await queries.backup_relations(info.context, page.rows)

        def convert(row: models.Backup) -> Backup:
            source, availability = relations[models.saved_id(row)]
            return Backup.from_row(row, BackupExtras(source=source, availability=availability))

        return Connection.from_page(page, convert, after=after)

    @strawberry.field(description="The Restore table: restores, newest first.")
    async def restores(
        self,
        info: Info[Context, None],
        organization_id: strawberry.ID,
        status: list[RestoreStatus] | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[Restore]:
        page = await queries.restores(
            info.context,
            organization_id=organization_id,
            status=status,
            first=20 if first is None else first,
            after=after,
        )
        return Connection.from_page(page, Restore.from_row, after=after)

    @strawberry.field(description="What startRestore would do with this input, without doing it.")
    async def restore_preview(
        self, info: Info[Context, None], input: StartRestoreInput
    ) -> RestorePreviewPayload:
        return await restore_preview(info, input)

    @strawberry.field(description="Restored product access waiting for a decision.")
    async def pending_access_reviews(
        self, info: Info[Context, None], organization_id: strawberry.ID
    ) -> list[AccessReview]:
        rows = await queries.pending_access_reviews(info.context, organization_id)
        return [AccessReview.from_row(r) for r in rows]

    @strawberry.field(description="Access reviews, decided or not, newest first.")
    async def access_reviews(
        self,
        info: Info[Context, None],
        organization_id: strawberry.ID,
        status: list[AccessReviewStatus] | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[AccessReview]:
        page = await queries.access_reviews(
            info.context,
            organization_id=organization_id,
            status=status,
            first=20 if first is None else first,
            after=after,
        )
        return Connection.from_page(page, AccessReview.from_row, after=after)

    @strawberry.field(description="The organization's audit log, newest first.")
    async def audit_events(
        self,
        info: Info[Context, None],
        organization_id: strawberry.ID,
        filter: AuditEventFilter | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[AuditEvent]:
        page = await queries.audit_events(
            info.context,
            organization_id=organization_id,
            filter=filter.to_filter() if filter else queries.AuditFilter(),
            first=20 if first is None else first,
            after=after,
        )
        return Connection.from_page(page, AuditEvent.from_row, after=after)
