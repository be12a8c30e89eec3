"""Read queries: GraphQL arguments in, scoped rows out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import SQLModel, col, select

from recoverly.models import (
    AccessReview,
    Backup,
    Organization,
    ProductInstance,
    ProductKey,
    Restore,
)
from recoverly.models.base import RestoreStatus
from recoverly.resolvers.context import Context
from recoverly.resolvers.global_ids import decode_id, from_global_id
from recoverly.resolvers.pagination import Page, paginate
from recoverly.services import access
from recoverly.services.rate_limits import Budget

NODE_LOADERS = {
    "Organization": "organization",
    "ProductInstance": "instance",
    "Backup": "backup",
    "Restore": "restore",
    "BackupPolicy": "policy",
    "Group": "group",
    "AccessReview": "access_review",
}


async def node(ctx: Context, global_id: str) -> tuple[str, Any] | None:
    """The row behind a global ID with its type name, or None when unknown or out of scope."""
    decoded = from_global_id(global_id)
    if decoded is None or decoded[0] not in NODE_LOADERS:
        return None
    type_name, row_id = decoded
    row = await getattr(ctx.loaders, NODE_LOADERS[type_name]).load(row_id)
    return (type_name, row) if row is not None else None


async def organization(ctx: Context, global_id: str) -> Organization | None:
    org_id = decode_id(global_id, "Organization")
    return None if org_id is None else await ctx.loaders.organization.load(org_id)


async def instances(ctx: Context, organization_id: str) -> list[ProductInstance]:
    org = await organization(ctx, organization_id)
    return [] if org is None else await ctx.loaders.instances_by_organization.load(org.id)


async def backups(
    ctx: Context, *, organization_id: str, product: ProductKey | None, first: int, after: str | None
) -> Page[Backup]:
    statement = select(Backup).where(col(Backup.organization_id) == _org_id(ctx, organization_id))
    if product is not None:
        statement = statement.where(col(Backup.product) == product)
    return await _page(ctx, statement, Backup, first=first, after=after)


async def restores(
    ctx: Context,
    *,
    organization_id: str,
    status: list[RestoreStatus] | None,
    first: int,
    after: str | None,
) -> Page[Restore]:
    statement = select(Restore).where(col(Restore.organization_id) == _org_id(ctx, organization_id))
    if status:
        statement = statement.where(col(Restore.status).in_(set(status)))
    return await _page(ctx, statement, Restore, first=first, after=after)


def _org_id(ctx: Context, global_id: str) -> int:
    # An unknown or foreign organization yields an empty page, exactly like one without rows.
    return decode_id(global_id, "Organization") or -1


async def _page(
    ctx: Context, statement: Any, model: type[SQLModel], *, first: int, after: str | None
) -> Page[Any]:
    scoped = ctx.authenticated_scope.restrict(statement, model)
    async with ctx.runtime.db.session() as session:
        return await paginate(session, scoped, model=model, first=first, after=after)


async def pending_access_reviews(ctx: Context, organization_id: str) -> Sequence[AccessReview]:
    return await access.pending_reviews(
        ctx.runtime, ctx.authenticated_scope, organization_id=_org_id(ctx, organization_id)
    )


async def organization_billing(ctx: Context, organization_id: int) -> list[access.ProductBilling]:
    async with ctx.runtime.db.session() as session:
        return await access.organization_billing(session, organization_id)


def rate_limit(ctx: Context) -> Budget:
    """The caller's query budget in the current window."""
    settings = ctx.runtime.settings
    return ctx.runtime.rate_limiter.peek(
        f"admin:{ctx.admin_id}",
        limit=settings.rate_limit_points,
        seconds=settings.rate_limit_window_seconds,
        now=ctx.runtime.now(),
    )
