"""Deciding access reviews and granting or revoking product access: global IDs decoded,
the access service called."""

from __future__ import annotations

from collections.abc import Sequence

from recoverly.models import AccessReview, ProductKey, SiteGroup
from recoverly.resolvers.context import Context
from recoverly.resolvers.mutations import Outcome, attempt, require_id, require_ids
from recoverly.services import access


async def decide_reviews(
    ctx: Context, *, review_ids: Sequence[str], approve: bool
) -> Outcome[list[AccessReview]]:
    async def decide() -> list[AccessReview]:
        ids = require_ids(review_ids, "AccessReview", field=["input", "reviewIds"])
        return await access.decide_reviews(
            ctx.runtime, ctx.authenticated_scope, review_ids=ids, approve=approve
        )

    return await attempt(decide())


async def set_group_access(
    ctx: Context, *, group_id: str, product: ProductKey, granted: bool
) -> Outcome[SiteGroup]:
    async def change() -> SiteGroup:
        return await access.set_group_access(
            ctx.runtime,
            ctx.authenticated_scope,
            group_id=require_id(group_id, "Group", field=["input", "groupId"]),
            product=product,
            granted=granted,
        )

    return await attempt(change())
