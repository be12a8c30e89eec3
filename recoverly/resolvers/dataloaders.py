"""One DataLoader per relation, created per request: a page of N items costs a constant
number of SQL statements. Loaders of organization-owned rows apply the request's Scope."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from recoverly.models import (
    AccessReview,
    Admin,
    AuditEvent,
    Backup,
    BackupCopy,
    BackupPolicy,
    ConfluenceSpace,
    GroupMembership,
    GroupProductAccess,
    InstanceOperation,
    JiraProject,
    Membership,
    Organization,
    ProductInstance,
    Restore,
    SiteGroup,
    SiteUser,
)
from recoverly.models.base import TableRow, table_of
from recoverly.resolvers.pagination import Page, PaginationError, paginate_each
from recoverly.services.access import billable_member_counts, billable_users_added
from recoverly.services.scoping import Scope

RowT = TypeVar("RowT", bound=TableRow)
LoadFn = Callable[[list[int]], Coroutine[Any, Any, list[Any]]]
SessionProvider = Callable[[], AbstractAsyncContextManager[AsyncSession]]


class Loaders:
    """The request's loaders, each made when first used (a request uses few of them); every
    batch runs on the request's one session (``session``)."""

    def __init__(self, session: SessionProvider, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    @cached_property
    def organization(self) -> DataLoader[int, Organization | None]:
        return self._by_id(Organization)

    @cached_property
    def instance(self) -> DataLoader[int, Any]:
        return self._columns_by_id(ProductInstance)

    @cached_property
    def backup(self) -> DataLoader[int, Backup | None]:
        return self._by_id(Backup)

    @cached_property
    def restore(self) -> DataLoader[int, Restore | None]:
        return self._by_id(Restore)

    @cached_property
    def policy(self) -> DataLoader[int, BackupPolicy | None]:
        return self._by_id(BackupPolicy)

    @cached_property
    def group(self) -> DataLoader[int, SiteGroup | None]:
        return self._by_id(SiteGroup)

    @cached_property
    def user(self) -> DataLoader[int, SiteUser | None]:
        return self._by_id(SiteUser)

    @cached_property
    def access_review(self) -> DataLoader[int, AccessReview | None]:
        return self._by_id(AccessReview)

    @cached_property
    def audit_event(self) -> DataLoader[int, AuditEvent | None]:
        return self._by_id(AuditEvent)

    @cached_property
    def billable_member_count(self) -> DataLoader[int, int]:
        return DataLoader(load_fn=self._load_billable_members)

    @cached_property
    def billable_users_added(self) -> DataLoader[int, int]:
        return DataLoader(load_fn=self._load_billable_added)

    @cached_property
    def group_member_count(self) -> DataLoader[int, int]:
        return DataLoader(load_fn=self._load_member_counts)

    @cached_property
    def group_members(self) -> DataLoader[tuple[int, int, str | None], Page[SiteUser]]:
        # Keyed by (group ID, first, after): one page of members per group.
        return DataLoader(load_fn=self._load_member_pages)

    @cached_property
    def group_products(self) -> DataLoader[int, list[str]]:
        return DataLoader(load_fn=self._load_group_products)

    @cached_property
    def admin(self) -> DataLoader[int, Admin | None]:
        return DataLoader(load_fn=self._load_admins)

    @cached_property
    def organization_ids_by_admin(self) -> DataLoader[int, list[int]]:
        return DataLoader(load_fn=self._load_org_ids_by_admin)

    @cached_property
    def copies_by_backup(self) -> DataLoader[int, list[BackupCopy]]:
        return DataLoader(load_fn=self._load_copies)

    @cached_property
    def instances_by_organization(self) -> DataLoader[int, list[ProductInstance]]:
        return DataLoader(load_fn=self._load_instances_by_org)

    @cached_property
    def instance_busy(self) -> DataLoader[int, bool]:
        return DataLoader(load_fn=self._load_busy)

    @cached_property
    def instance_has_data(self) -> DataLoader[int, bool]:
        return DataLoader(load_fn=self._load_has_data)

    def _by_id(self, model: type[RowT]) -> DataLoader[int, RowT | None]:
        async def load(ids: list[int]) -> list[RowT | None]:
            async with self.session() as session:
                rows = await self.scope.get_many(session, model, ids)
            by_id = {row.id: row for row in rows}
            return [by_id.get(i) for i in ids]

        return DataLoader(load_fn=load)

    def _columns_by_id(self, model: type[TableRow]) -> DataLoader[int, Any]:
        # Core rows, not ORM objects, for rows whose columns are all the schema reads: a
        # page of rows through the ORM costs several times more.
        table = table_of(model)

        async def load(ids: list[int]) -> list[Any]:
            statement = select(*table.columns).where(table.c.id.in_(set(ids)))
            rows = await self._rows(self.scope.restrict(statement, model))
            by_id = {row.id: row for row in rows}
            return [by_id.get(i) for i in ids]

        return DataLoader(load_fn=load)

    async def _rows(self, statement: Any) -> Sequence[Any]:
        async with self.session() as session:
            return (await (await session.connection()).execute(statement)).all()

    async def _load_admins(self, ids: list[int]) -> list[Admin | None]:
        # Admins are people, not organization-owned rows: only name and email are exposed.
        async with self.session() as session:
            rows = (await session.exec(select(Admin).where(col(Admin.id).in_(ids)))).all()
        by_id = {row.id: row for row in rows}
        return [by_id.get(i) for i in ids]

    async def _load_org_ids_by_admin(self, admin_ids: list[int]) -> list[list[int]]:
        statement = select(Membership).where(
            col(Membership.admin_id).in_(admin_ids),
            col(Membership.organization_id).in_(self.scope.organization_ids),
        )
        async with self.session() as session:
            rows = (await session.exec(statement.order_by(col(Membership.organization_id)))).all()
        groups = _grouped(rows, admin_ids, key=lambda m: m.admin_id)
        return [[m.organization_id for m in group] for group in groups]

    async def _load_billable_added(self, review_ids: list[int]) -> list[int]:
        async with self.session() as session:
            reviews = await self.scope.get_many(session, AccessReview, review_ids)
            added = await billable_users_added(session, reviews)
        return [added.get(i, 0) for i in review_ids]

    async def _load_billable_members(self, group_ids: list[int]) -> list[int]:
        async with self.session() as session:
            groups = await self.scope.get_many(session, SiteGroup, group_ids)
            counts = await billable_member_counts(session, groups)
        return [counts.get(i, 0) for i in group_ids]

    async def _load_member_pages(
        self, keys: list[tuple[int, int, str | None]]
    ) -> list[Page[SiteUser] | BaseException]:
        pages: dict[tuple[int, int, str | None], Page[SiteUser] | BaseException] = {}
        statement = self.scope.restrict(
            select(SiteUser).join(GroupMembership, col(GroupMembership.user_id) == SiteUser.id),
            SiteUser,
        )
        async with self.session() as session:
            for first, after in {(first, after) for _, first, after in keys}:
                group_ids = sorted({g for g, f, a in keys if (f, a) == (first, after)})
                found: Mapping[int, Page[SiteUser] | BaseException]
                try:
                    found = await paginate_each(
                        session,
                        statement,
                        model=SiteUser,
                        key=col(GroupMembership.group_id),
                        keys=group_ids,
                        first=first,
                        after=after,
                    )
                except PaginationError as error:  # a bad first or cursor: the field's error
                    found = dict.fromkeys(group_ids, error)
                pages.update({(g, first, after): page for g, page in found.items()})
        return [pages[key] for key in keys]

    async def _load_member_counts(self, group_ids: list[int]) -> list[int]:
        statement = (
            select(GroupMembership.group_id, func.count())
            .where(col(GroupMembership.group_id).in_(group_ids))
            .group_by(col(GroupMembership.group_id))
        )
        async with self.session() as session:
            counts = dict((await session.exec(statement)).all())
        return [counts.get(i, 0) for i in group_ids]

    async def _load_group_products(self, group_ids: list[int]) -> list[list[str]]:
        statement = select(GroupProductAccess).where(
            col(GroupProductAccess.group_id).in_(group_ids)
        )
        async with self.session() as session:
            rows = (await session.exec(statement)).all()
        groups = _grouped(rows, group_ids, key=lambda a: a.group_id)
        return [sorted(a.product for a in group) for group in groups]

    async def _load_copies(self, backup_ids: list[int]) -> list[list[BackupCopy]]:
        table = table_of(BackupCopy)
        statement = select(*table.columns).where(table.c.backup_id.in_(backup_ids))
        rows = await self._rows(statement.order_by(table.c.id))
        return _grouped(rows, backup_ids, key=lambda c: c.backup_id)

    async def _load_instances_by_org(self, org_ids: list[int]) -> list[list[ProductInstance]]:
        statement = self.scope.restrict(
            select(ProductInstance).where(col(ProductInstance.organization_id).in_(org_ids)),
            ProductInstance,
        )
        async with self.session() as session:
            rows = (await session.exec(statement.order_by(col(ProductInstance.id)))).all()
        return _grouped(rows, org_ids, key=lambda i: i.organization_id)

    async def _load_busy(self, instance_ids: list[int]) -> list[bool]:
        statement = select(InstanceOperation.instance_id).where(
            col(InstanceOperation.instance_id).in_(instance_ids)
        )
        async with self.session() as session:
            busy = set((await session.exec(statement)).all())
        return [i in busy for i in instance_ids]

    async def _load_has_data(self, instance_ids: list[int]) -> list[bool]:
        found: set[int] = set()
        async with self.session() as session:
            for model in (JiraProject, ConfluenceSpace):
                statement = (
                    select(model.instance_id)
                    .where(col(model.instance_id).in_(instance_ids))
                    .distinct()
                )
                found.update((await session.exec(statement)).all())
        return [i in found for i in instance_ids]


def _grouped(rows: Sequence[Any], keys: list[int], *, key: Callable[[Any], int]) -> list[list[Any]]:
    groups: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return [groups.get(k, []) for k in keys]
