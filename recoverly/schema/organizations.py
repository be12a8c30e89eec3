"""Viewer, organizations, products and their instances."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from recoverly import models
from recoverly.resolvers import queries
from recoverly.resolvers.context import Context
from recoverly.resolvers.global_ids import to_global_id
from recoverly.schema.connections import Connection
from recoverly.schema.enums import PRODUCT_NAMES, ProductKey
from recoverly.schema.node import Node

if TYPE_CHECKING:
    from recoverly.schema.access import Group
    from recoverly.schema.backups import BackupPolicy

LazyGroup = Annotated["Group", strawberry.lazy("recoverly.schema.access")]
LazyBackupPolicy = Annotated["BackupPolicy", strawberry.lazy("recoverly.schema.backups")]


@strawberry.type(description="A Jira or Confluence site of an organization.")
class ProductInstance(Node):
    row: strawberry.Private[models.ProductInstance]
    name: str
    url: str
    product: ProductKey

    @classmethod
    def from_row(cls, row: models.ProductInstance) -> ProductInstance:
        assert row.id is not None
        return cls(
            id=strawberry.ID(to_global_id("ProductInstance", row.id)),
            row=row,
            name=row.name,
            url=row.url,
            product=row.product,
        )

    @strawberry.field(description="True when the site holds no product data.")
    async def is_empty(self, info: Info[Context, None]) -> bool:
        return not await info.context.loaders.instance_has_data.load(models.saved_id(self.row))

    @strawberry.field(description="True while a backup or restore runs on this site.")
    async def operation_in_progress(self, info: Info[Context, None]) -> bool:
        return await info.context.loaders.instance_busy.load(models.saved_id(self.row))

    @strawberry.field
    async def organization(self, info: Info[Context, None]) -> Organization | None:
        row = await info.context.loaders.organization.load(self.row.organization_id)
        return Organization.from_row(row) if row else None

    @strawberry.field(description="This site's backup policies, newest first.")
    async def backup_policies(
        self, info: Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> Connection[LazyBackupPolicy]:
        from recoverly.schema.backups import BackupPolicy

        page = await queries.backup_policies(
            info.context, instance=self.row.id, first=_first(first), after=after
        )
        return Connection.from_page(page, BackupPolicy.from_row, after=after)


@strawberry.type(description="A product (Jira or Confluence) and the organization's sites of it.")
class Product:
    key: ProductKey
    name: str
    instances: list[ProductInstance]


@strawberry.type(description="Billable users of one product, from applied product access.")
class ProductBilling:
    product: ProductKey
    billable_users: int


@strawberry.type
class Organization(Node):
    row: strawberry.Private[models.Organization]
    name: str
    slug: str

    @classmethod
    def from_row(cls, row: models.Organization) -> Organization:
        assert row.id is not None
        return cls(
            id=strawberry.ID(to_global_id("Organization", row.id)),
            row=row,
            name=row.name,
            slug=row.slug,
        )

    @strawberry.field(description="The organization's products with their sites.")
    async def products(self, info: Info[Context, None]) -> list[Product]:
        rows = await info.context.loaders.instances_by_organization.load(models.saved_id(self.row))
        return products_from_instances(rows)

    @strawberry.field(description="Groups of the organization's sites, newest first.")
    async def groups(
        self,
        info: Info[Context, None],
        instance_id: strawberry.ID | None = None,
        search: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[LazyGroup]:
        from recoverly.schema.access import Group

        assert self.row.id is not None
        page = await queries.groups(
            info.context,
            organization_id=self.row.id,
            instance=instance_id,
            search=search,
            first=_first(first),
            after=after,
        )
        return Connection.from_page(page, Group.from_row, after=after)

    @strawberry.field(description="Backup policies of the organization's sites, newest first.")
    async def backup_policies(
        self,
        info: Info[Context, None],
        instance_id: strawberry.ID | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[LazyBackupPolicy]:
        from recoverly.schema.backups import BackupPolicy

        page = await queries.backup_policies(
            info.context,
            organization_id=self.row.id,
            instance=instance_id,
            first=_first(first),
            after=after,
        )
        return Connection.from_page(page, BackupPolicy.from_row, after=after)

    @strawberry.field(description="Billable users per product; pending reviews do not count.")
    async def billing(self, info: Info[Context, None]) -> list[ProductBilling]:
        rows = await queries.organization_billing(info.context, models.saved_id(self.row))
        return [ProductBilling(product=b.product, billable_users=b.billable_users) for b in rows]


def _first(first: int | None) -> int:
    return 20 if first is None else first


def products_from_instances(rows: list[models.ProductInstance]) -> list[Product]:
    return [
        Product(
            key=key,
            name=PRODUCT_NAMES[key],
            instances=[ProductInstance.from_row(r) for r in rows if r.product == key],
        )
        for key in models.ProductKey
    ]


@strawberry.type(description="An admin: the authenticated one, or who started a restore.")
class Viewer:
    row: strawberry.Private[models.Admin]
    id: strawberry.ID
    email: str
    name: str

    @classmethod
    def from_row(cls, row: models.Admin) -> Viewer:
        assert row.id is not None
        return cls(
            id=strawberry.ID(to_global_id("Admin", row.id)), row=row, email=row.email, name=row.name
        )

    @strawberry.field(description="The organizations this admin administers, as far as you see.")
    async def organizations(self, info: Info[Context, None]) -> list[Organization]:
        loaders = info.context.loaders
        org_ids = await loaders.organization_ids_by_admin.load(models.saved_id(self.row))
        rows = await loaders.organization.load_many(org_ids)
        return [Organization.from_row(r) for r in rows if r is not None]
