"""Read queries: GraphQL arguments in, scoped rows out.

An ``organizationId`` that is unknown or not the caller's is a NOT_FOUND error, never an
empty list that looks like an organization without rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import SQLModel, col, select

from recoverly.models import (
    AccessReview,
    AccessReviewStatus,
    AuditEvent,
    Backup,
    BackupPolicy,
    Organization,
    ProductInstance,
    ProductKey,
    Restore,
    SiteGroup,
)
from recoverly.models.base import RestoreStatus
from recoverly.resolvers.context import Context
from recoverly.resolvers.errors import BadUserInputError, NotFoundError
from recoverly.resolvers.global_ids import decode_id, from_global_id
from recoverly.resolvers.pagination import Page, paginate
from recoverly.services import access, audit
from recoverly.services.locations import Availability as Availability
from recoverly.services.locations import availability
from recoverly.services.progress import progress_event
from recoverly.services.rate_limits import Budget

NODE_LOADERS = {
    "Organization": "organization",
    "ProductInstance": "instance",
    "Backup": "backup",
    "Restore": "restore",
    "BackupPolicy": "policy",
    "Group": "group",
    "User": "user",
    "AccessReview": "access_review",
    "AuditEvent": "audit_event",
}


@dataclass(frozen=True)
class AuditFilter:
    """``AuditEventFilter`` with its IDs still global."""

    action: list[str] | None = None
    actor_id: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


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


async def require_organization(ctx: Context, global_id: str) -> int:
    """The row ID of an organization the caller administers; NOT_FOUND otherwise."""
    org = await organization(ctx, global_id)
    if org is None or org.id is None:
        raise NotFoundError("organization")
    return org.id


async def require_instance(
    ctx: Context, global_id: str, *, organization_id: int | None = None
) -> int:
    """The row ID of a site the caller may see (in ``organization_id`` if given)."""
    row_id = decode_id(global_id, "ProductInstance")
    row = None if row_id is None else await ctx.loaders.instance.load(row_id)
    if row is None or row.id is None or organization_id not in (None, row.organization_id):
        raise NotFoundError("site")
    return row.id


async def instances(ctx: Context, organization_id: str) -> list[ProductInstance]:
    org_id = await require_organization(ctx, organization_id)
    return await ctx.loaders.instances_by_organization.load(org_id)  # type: ignore[no-any-return]


async def backups(
    ctx: Context, *, organization_id: str, product: ProductKey | None, first: int, after: str | None
) -> Page[Backup]:
    org_id = await require_organization(ctx, organization_id)
    statement = select(Backup).where(col(Backup.organization_id) == org_id)
    if product is not None:
        statement = statement.where(col(Backup.product) == product)
    return await _page(ctx, statement, Backup, first=first, after=after, columns_only=True)


async def restores(
    ctx: Context,
    *,
    organization_id: str,
    status: list[RestoreStatus] | None,
    first: int,
    after: str | None,
) -> Page[Restore]:
    org_id = await require_organization(ctx, organization_id)
    statement = select(Restore).where(col(Restore.organization_id) == org_id)
    if status:
        statement = statement.where(col(Restore.status).in_(set(status)))
    return await _page(ctx, statement, Restore, first=first, after=after)


async def backup_relations(
    ctx: Context, rows: Sequence[Backup]
) -> dict[int, tuple[ProductInstance, Availability]]:
    """Each backup's source site and availability, for a page at once: two queries."""
    loaders = ctx.loaders
    copies, sources = await asyncio.gather(
        loaders.copies_by_backup.load_many([row.id for row in rows]),
        loaders.instance.load_many([row.instance_id for row in rows]),
    )
    now = ctx.runtime.now()
    return {
        row.id: (source, availability(row, row_copies, now))  # type: ignore[misc]
        for row, row_copies, source in zip(rows, copies, sources, strict=True)
    }


async def backup_availability(ctx: Context, row: Backup) -> Availability:
    """Where a restore would read one backup from, or why it cannot (``backup_relations``
    does it for a page)."""
    assert row.id is not None
    copies = await ctx.loaders.copies_by_backup.load(row.id)
    return availability(row, copies, ctx.runtime.now())


def progress(row: Backup | Restore) -> dict[str, Any]:
    """A backup's or a restore's progress now, as its progress events carry it."""
    return progress_event(row)


async def groups(
    ctx: Context,
    *,
    organization_id: int,
    instance: str | None,
    search: str | None,
    first: int,
    after: str | None,
) -> Page[SiteGroup]:
    """An organization's groups, on one of its sites if ``instance``; ``search`` matches
    names, case-insensitively."""
    org_column = col(ProductInstance.organization_id)
    sites = select(ProductInstance.id).where(org_column == organization_id)
    statement = select(SiteGroup).where(col(SiteGroup.instance_id).in_(sites))
    if instance is not None:
        site = await require_instance(ctx, instance, organization_id=organization_id)
        statement = statement.where(col(SiteGroup.instance_id) == site)
    if search:
        statement = statement.where(col(SiteGroup.name).ilike(f"%{_escape_like(search)}%", "\\"))
    return await _page(ctx, statement, SiteGroup, first=first, after=after)


async def backup_policies(
    ctx: Context,
    *,
    organization_id: int | None = None,
    instance: str | int | None,
    first: int,
    after: str | None,
) -> Page[BackupPolicy]:
    """Policies of an organization, or of one site (a global ID, or a row ID already seen)."""
    statement = select(BackupPolicy)
    if organization_id is not None:
        statement = statement.where(col(BackupPolicy.organization_id) == organization_id)
    if isinstance(instance, str):
        instance = await require_instance(ctx, instance, organization_id=organization_id)
    if instance is not None:
        statement = statement.where(col(BackupPolicy.instance_id) == instance)
    return await _page(ctx, statement, BackupPolicy, first=first, after=after)


async def access_reviews(
    ctx: Context,
    *,
    organization_id: str,
    status: list[AccessReviewStatus] | None,
    first: int,
    after: str | None,
) -> Page[AccessReview]:
    org_id = await require_organization(ctx, organization_id)
    statement = select(AccessReview).where(col(AccessReview.organization_id) == org_id)
    if status:
        statement = statement.where(col(AccessReview.status).in_(status))
    return await _page(ctx, statement, AccessReview, first=first, after=after)


async def audit_events(
    ctx: Context, *, organization_id: str, filter: AuditFilter, first: int, after: str | None
) -> Page[AuditEvent]:
    org_id = await require_organization(ctx, organization_id)
    statement = select(AuditEvent).where(col(AuditEvent.organization_id) == org_id)
    if filter.action:
        statement = statement.where(col(AuditEvent.action).in_(filter.action))
    if filter.actor_id is not None:
        actor = decode_id(filter.actor_id, "Admin")
        if actor is None:
            raise BadUserInputError("filter.actorId is not an admin's ID")
        statement = statement.where(col(AuditEvent.actor_id) == actor)
    if filter.target_id is not None:
        target = from_global_id(filter.target_id)
        if target is None:
            raise BadUserInputError("filter.targetId is not an object ID")
        dialect = ctx.runtime.db.engine.dialect.name
        statement = statement.where(audit.targets(dialect, *target))
    if filter.since is not None:
        statement = statement.where(col(AuditEvent.created_at) >= filter.since)
    if filter.until is not None:
        statement = statement.where(col(AuditEvent.created_at) < filter.until)
    return await _page(ctx, statement, AuditEvent, first=first, after=after)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def _page(
    ctx: Context,
    statement: Any,
    model: type[SQLModel],
    *,
    first: int,
    after: str | None,
    columns_only: bool = False,
) -> Page[Any]:
    scoped = ctx.authenticated_scope.restrict(statement, model)
    async with ctx.db.use() as session:
        return await paginate(
            session, scoped, model=model, first=first, after=after, columns_only=columns_only
        )


async def pending_access_reviews(ctx: Context, organization_id: str) -> Sequence[AccessReview]:
    org_id = await require_organization(ctx, organization_id)
    scope = ctx.authenticated_scope
    return await access.pending_reviews(ctx.runtime, scope, organization_id=org_id)


async def organization_billing(ctx: Context, organization_id: int) -> list[access.ProductBilling]:
    async with ctx.db.use() as session:
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
