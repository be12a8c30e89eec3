"""Deciding access reviews, and granting or revoking product access later."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from recoverly.resolvers import access_mutations
from recoverly.schema.access import AccessReview, Group
from recoverly.schema.enums import ProductKey
from recoverly.schema.errors import UserError, user_errors


@strawberry.input
class GroupAccessDecisionInput:
    review_ids: list[strawberry.ID]


@strawberry.type
class GroupAccessPayload:
    reviews: list[AccessReview] | None
    errors: list[UserError]


@strawberry.input
class ProductAccessInput:
    group_id: strawberry.ID
    product: ProductKey


@strawberry.type
class ProductAccessPayload:
    group: Group | None
    errors: list[UserError]


async def _decide(
    info: Info[Any, None], input: GroupAccessDecisionInput, *, approve: bool
) -> GroupAccessPayload:
    outcome = await access_mutations.decide_reviews(
        info.context, review_ids=input.review_ids, approve=approve
    )
    return GroupAccessPayload(
        reviews=[AccessReview.from_row(r) for r in outcome.value]
        if outcome.value is not None
        else None,
        errors=user_errors(outcome.errors),
    )


async def _set_access(
    info: Info[Any, None], input: ProductAccessInput, *, granted: bool
) -> ProductAccessPayload:
    outcome = await access_mutations.set_group_access(
        info.context, group_id=input.group_id, product=input.product, granted=granted
    )
    return ProductAccessPayload(
        group=Group.from_row(outcome.value) if outcome.value else None,
        errors=user_errors(outcome.errors),
    )


@strawberry.type
class AccessMutations:
    @strawberry.mutation(description="Apply restored product access: members become billable.")
    async def approve_group_access(
        self, info: Info[Any, None], input: GroupAccessDecisionInput
    ) -> GroupAccessPayload:
        return await _decide(info, input, approve=True)

    @strawberry.mutation(description="Refuse restored product access (can be approved later).")
    async def deny_group_access(
        self, info: Info[Any, None], input: GroupAccessDecisionInput
    ) -> GroupAccessPayload:
        return await _decide(info, input, approve=False)

    @strawberry.mutation(description="Give a group's members access to a product (billable).")
    async def grant_product_access(
        self, info: Info[Any, None], input: ProductAccessInput
    ) -> ProductAccessPayload:
        return await _set_access(info, input, granted=True)

    @strawberry.mutation(description="Take a product's access away from a group.")
    async def revoke_product_access(
        self, info: Info[Any, None], input: ProductAccessInput
    ) -> ProductAccessPayload:
        return await _set_access(info, input, granted=False)
