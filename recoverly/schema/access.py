"""Groups, product access reviews and billing."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from recoverly import models
from recoverly.resolvers.context import Context
from recoverly.resolvers.global_ids import to_global_id
from recoverly.schema.connections import Connection
from recoverly.schema.enums import AccessReviewKind, AccessReviewStatus, ProductKey
from recoverly.schema.node import Node
from recoverly.schema.organizations import ProductInstance, Viewer
from recoverly.schema.restores import Restore


@strawberry.type(description="A user of one site.")
class User(Node):
    row: strawberry.Private[models.SiteUser]
    account_id: str
    display_name: str
    email: str
    active: bool

    @classmethod
    def from_row(cls, row: models.SiteUser) -> User:
        assert row.id is not None
        return cls(
            id=strawberry.ID(to_global_id("User", row.id)),
            row=row,
            account_id=row.account_id,
            display_name=row.display_name,
            email=row.email,
            active=row.active,
        )


@strawberry.type(description="A group of users on one site.")
class Group(Node):
    row: strawberry.Private[models.SiteGroup]
    name: str

    @classmethod
    def from_row(cls, row: models.SiteGroup) -> Group:
        assert row.id is not None
        return cls(id=strawberry.ID(to_global_id("Group", row.id)), row=row, name=row.name)

    @strawberry.field
    async def instance(self, info: Info[Context, None]) -> ProductInstance | None:
        row = await info.context.loaders.instance.load(self.row.instance_id)
        return ProductInstance.from_row(row) if row else None

    @strawberry.field
    async def member_count(self, info: Info[Context, None]) -> int:
        return await info.context.loaders.group_member_count.load(models.saved_id(self.row))

    @strawberry.field(description="Products this group's members are billable users of.")
    async def product_access(self, info: Info[Context, None]) -> list[ProductKey]:
        products = await info.context.loaders.group_products.load(models.saved_id(self.row))
        return [models.ProductKey(p) for p in products]

    @strawberry.field(
        description="Members who are billable users of a product (through any group), "
        "each person once."
    )
    async def billable_member_count(self, info: Info[Context, None]) -> int:
        return await info.context.loaders.billable_member_count.load(models.saved_id(self.row))

    @strawberry.field(description="The group's members, newest first.")
    async def members(
        self, info: Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> Connection[User]:
        key = (models.saved_id(self.row), 20 if first is None else first, after)
        page = await info.context.loaders.group_members.load(key)
        return Connection.from_page(page, User.from_row, after=after)


@strawberry.type(
    description="A restored group's product access (GROUP_ACCESS), or restored members of a "
    "group that already granted it (MEMBERS: they join the group only if approved), and the "
    "admin's decision."
)
class AccessReview(Node):
    row: strawberry.Private[models.AccessReview]
    product: ProductKey
    kind: AccessReviewKind
    status: AccessReviewStatus
    created_at: datetime
    decided_at: datetime | None

    @classmethod
    def from_row(cls, row: models.AccessReview) -> AccessReview:
        assert row.id is not None
        return cls(
            id=strawberry.ID(to_global_id("AccessReview", row.id)),
            row=row,
            product=row.product,
            kind=row.kind,
            status=row.status,
            created_at=row.created_at,
            decided_at=row.decided_at,
        )

    @strawberry.field
    async def group(self, info: Info[Context, None]) -> Group:
        row = await info.context.loaders.group.load(self.row.group_id)
        assert row is not None
        return Group.from_row(row)

    @strawberry.field
    async def restore(self, info: Info[Context, None]) -> Restore:
        row = await info.context.loaders.restore.load(self.row.restore_id)
        assert row is not None
        return Restore.from_row(row)

    @strawberry.field(description="New billable users if this review were approved now.")
    async def billable_users_added(self, info: Info[Context, None]) -> int:
        return await info.context.loaders.billable_users_added.load(models.saved_id(self.row))

    @strawberry.field
    async def decided_by(self, info: Info[Context, None]) -> Viewer | None:
        if self.row.decided_by_id is None:
            return None
        row = await info.context.loaders.admin.load(self.row.decided_by_id)
        return Viewer.from_row(row) if row else None
