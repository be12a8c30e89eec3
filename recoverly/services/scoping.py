"""Organization scoping, in one place: every lookup by ID of an organization-owned row
passes through a ``Scope``, so an admin never sees what they do not administer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.models import Admin, Membership, Organization, ProductInstance, SiteGroup, SiteUser
from recoverly.models.base import TableRow, table_of

RowT = TypeVar("RowT", bound=TableRow)
StatementT = TypeVar("StatementT", bound=Select[Any])


@dataclass(frozen=True)
class Scope:
    """What one admin may see: the organizations they administer."""

    admin_id: int
    organization_ids: frozenset[int]

    def condition(self, model: type[TableRow]) -> ColumnElement[bool]:
        """The WHERE clause that restricts ``model`` to this scope."""
        if model is SiteGroup or model is SiteUser:
            owned = select(ProductInstance.id).where(
                col(ProductInstance.organization_id).in_(self.organization_ids)
            )
            return col(model.instance_id).in_(owned)
        if model is Organization:
            return col(Organization.id).in_(self.organization_ids)
        return table_of(model).c.organization_id.in_(self.organization_ids)

    def restrict(self, statement: StatementT, model: type[TableRow]) -> StatementT:
        return statement.where(self.condition(model))

    def allows(self, organization_id: int | None) -> bool:
        return organization_id is not None and organization_id in self.organization_ids

    async def get(self, session: AsyncSession, model: type[RowT], row_id: int) -> RowT | None:
        """The row with ``row_id`` if it exists within scope, else None."""
        statement = select(model).where(col(model.id) == row_id)
        return (await session.exec(self.restrict(statement, model))).first()

    async def get_many(
        self, session: AsyncSession, model: type[RowT], row_ids: Iterable[int]
    ) -> Sequence[RowT]:
        ids = list(set(row_ids))
        statement = select(model).where(col(model.id).in_(ids))
        return (await session.exec(self.restrict(statement, model))).all()


async def scope_for_admin(session: AsyncSession, admin: Admin) -> Scope:
    assert admin.id is not None
    statement = select(Membership.organization_id).where(Membership.admin_id == admin.id)
    org_ids = frozenset((await session.exec(statement)).all())
    return Scope(admin_id=admin.id, organization_ids=org_ids)
