"""Product access and billing: restored groups wait for review; decisions apply access.

Restored members of a group that already granted product access wait too (``MEMBERS``
reviews, their members in ``HeldMembership``): approving adds them to the group, denying
leaves them out (or takes out again those an approval added).

A user is billable for a product when they belong to a group with applied access to it on
one of the organization's sites; the same person (account ID) counts once per product.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, tuple_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.models import (
    FINAL_RESTORE_STATUSES,
    AccessReview,
    AccessReviewKind,
    AccessReviewStatus,
    GroupMembership,
    GroupProductAccess,
    HeldMembership,
    ProductInstance,
    ProductKey,
    Restore,
    SiteGroup,
    SiteUser,
)
from recoverly.services import audit
from recoverly.services.errors import ErrorCode, ServiceError, not_found
from recoverly.services.runtime import Runtime
from recoverly.services.scoping import Scope


@dataclass(frozen=True)
class BillableUsers:
    product: ProductKey
    billable_users: int


async def billable_accounts(
    session: AsyncSession, *, organization_id: int, product: ProductKey
) -> set[str]:
    """Account IDs billable for ``product`` in the organization, from applied access."""
    statement = (
        select(SiteUser.account_id)
        .join(GroupMembership, col(GroupMembership.user_id) == SiteUser.id)
        .join(GroupProductAccess, col(GroupProductAccess.group_id) == GroupMembership.group_id)
        .join(ProductInstance, col(ProductInstance.id) == GroupProductAccess.instance_id)
        .where(
            col(ProductInstance.organization_id) == organization_id,
            col(GroupProductAccess.product) == product,
        )
        .distinct()
    )
    return set((await session.exec(statement)).all())


async def group_accounts(session: AsyncSession, group_ids: Iterable[int]) -> dict[int, set[str]]:
    statement = (
        select(GroupMembership.group_id, SiteUser.account_id)
        .join(SiteUser, col(SiteUser.id) == GroupMembership.user_id)
        .where(col(GroupMembership.group_id).in_(list(group_ids)))
    )
    members: dict[int, set[str]] = defaultdict(set)
    for group_id, account_id in (await session.exec(statement)).all():
        members[group_id].add(account_id)
    return members


async def held_accounts(
    session: AsyncSession, reviews: Sequence[AccessReview]
) -> dict[tuple[int, int], set[str]]:
    """Account IDs held by ``MEMBERS`` reviews, by (restore id, group id)."""
    keys = {(r.restore_id, r.group_id) for r in reviews if r.kind == AccessReviewKind.MEMBERS}
    if not keys:
        return {}
    statement = (
        select(HeldMembership.restore_id, HeldMembership.group_id, SiteUser.account_id)
        .join(SiteUser, col(SiteUser.id) == HeldMembership.user_id)
        .where(tuple_(col(HeldMembership.restore_id), col(HeldMembership.group_id)).in_(keys))
    )
    held: dict[tuple[int, int], set[str]] = defaultdict(set)
    for restore_id, group_id, account_id in (await session.exec(statement)).all():
        held[restore_id, group_id].add(account_id)
    return held


async def billable_users_added(
    session: AsyncSession, reviews: Sequence[AccessReview]
) -> dict[int, int]:
    """For each review: users who would become billable if it alone were approved now (the
    group's members for its access, the held members for a ``MEMBERS`` review)."""
    members = await group_accounts(
        session, {r.group_id for r in reviews if r.kind != AccessReviewKind.MEMBERS}
    )
    held = await held_accounts(session, reviews)
    billable: dict[tuple[int, ProductKey], set[str]] = {}
    added = {}
    for review in reviews:
        key = (review.organization_id, review.product)
        if key not in billable:
            billable[key] = await billable_accounts(session, organization_id=key[0], product=key[1])
        assert review.id is not None
        if review.kind == AccessReviewKind.MEMBERS:
            accounts = held.get((review.restore_id, review.group_id), set())
        else:
            accounts = members.get(review.group_id, set())
        added[review.id] = len(accounts - billable[key])
    return added


async def billable_member_counts(
    session: AsyncSession, groups: Sequence[SiteGroup]
) -> dict[int, int]:
    """For each group: its members who are billable users of any product of the organization
    (through this group or another), each person counted once."""
    instance_ids = {g.instance_id for g in groups}
    orgs = dict(
        (
            await session.exec(
                select(ProductInstance.id, ProductInstance.organization_id).where(
                    col(ProductInstance.id).in_(instance_ids)
                )
            )
        ).all()
    )
    billable: dict[int, set[str]] = {}
    for org_id in set(orgs.values()):
        billable[org_id] = set()
        for product in ProductKey:
            billable[org_id] |= await billable_accounts(
                session, organization_id=org_id, product=product
            )
    members = await group_accounts(session, [g.id for g in groups if g.id is not None])
    return {
        g.id: len(members.get(g.id, set()) & billable[orgs[g.instance_id]])
        for g in groups
        if g.id is not None
    }


async def organization_billing(session: AsyncSession, organization_id: int) -> list[BillableUsers]:
    return [
        BillableUsers(
            product=product,
            billable_users=len(
                await billable_accounts(session, organization_id=organization_id, product=product)
            ),
        )
        for product in ProductKey
    ]


async def pending_reviews(
    runtime: Runtime, scope: Scope, *, organization_id: int
) -> Sequence[AccessReview]:
    if not scope.allows(organization_id):
        return []
    async with runtime.db.session() as session:
        statement = select(AccessReview).where(
            col(AccessReview.organization_id) == organization_id,
            col(AccessReview.status) == AccessReviewStatus.PENDING,
        )
        return (await session.exec(statement.order_by(col(AccessReview.id)))).all()


async def decide_reviews(
    runtime: Runtime, scope: Scope, *, review_ids: list[int], approve: bool
) -> list[AccessReview]:
    """Approve or deny reviews, all or none; deciding again the same way is a no-op."""
    if not review_ids:
        raise ServiceError(
            ErrorCode.INVALID_INPUT, "give at least one review", field=["input", "reviewIds"]
        )
    wanted = AccessReviewStatus.APPROVED if approve else AccessReviewStatus.DENIED
    async with runtime.db.transaction() as session:
        statement = scope.restrict(
            select(AccessReview)
            .where(col(AccessReview.id).in_(set(review_ids)))
            .order_by(col(AccessReview.id))
            .with_for_update(),
            AccessReview,
        )
        reviews = list((await session.exec(statement)).all())
        if len(reviews) != len(set(review_ids)):
            raise not_found("access review", field=["input", "reviewIds"])
        if approve:
            await _check_restores_finished(session, reviews)
        before = await _billing_counts(session, reviews)
        changed = [r for r in reviews if r.status != wanted]
        for review in changed:
            await _apply(session, review, wanted=wanted, scope=scope, runtime=runtime)
        after = await _billing_counts(session, reviews)
        _audit_decision(session, scope, reviews, changed, wanted, before, after)
    return reviews


async def _check_restores_finished(session: AsyncSession, reviews: Sequence[AccessReview]) -> None:
    """A ``MEMBERS`` review is approved once its restore has finished: until then the restore
    may still hold members of the group behind it (denying needs no wait)."""
    restore_ids = {r.restore_id for r in reviews if r.kind == AccessReviewKind.MEMBERS}
    if not restore_ids:
        return
    statement = select(Restore.id).where(
        col(Restore.id).in_(restore_ids), col(Restore.status).not_in(FINAL_RESTORE_STATUSES)
    )
    if (await session.exec(statement)).first() is not None:
        raise ServiceError(
            ErrorCode.INVALID_INPUT,
            "restored members can be approved once their restore has finished",
            field=["input", "reviewIds"],
        )


async def _apply(
    session: AsyncSession,
    review: AccessReview,
    *,
    wanted: AccessReviewStatus,
    scope: Scope,
    runtime: Runtime,
) -> None:
    review.status = wanted
    review.decided_by_id = scope.admin_id
    review.decided_at = runtime.now()
    if review.kind == AccessReviewKind.MEMBERS:
        await _apply_members(session, review, approved=wanted == AccessReviewStatus.APPROVED)
    elif wanted == AccessReviewStatus.APPROVED:
        await _grant(
            session,
            group_id=review.group_id,
            instance_id=review.instance_id,
            product=review.product,
        )
    else:
        await _revoke(session, group_id=review.group_id, product=review.product)


async def _apply_members(session: AsyncSession, review: AccessReview, *, approved: bool) -> None:
    """Add the review's held members to the group (those not in it already), or take out
    again the ones an approval added."""
    held = list(
        (
            await session.exec(
                select(HeldMembership).where(
                    col(HeldMembership.restore_id) == review.restore_id,
                    col(HeldMembership.group_id) == review.group_id,
                    col(HeldMembership.applied) == (not approved),
                )
            )
        ).all()
    )
    if not held:
        return
    users = [h.user_id for h in held]
    if not approved:
        await session.exec(
            delete(GroupMembership).where(
                col(GroupMembership.group_id) == review.group_id,
                col(GroupMembership.user_id).in_(users),
                col(GroupMembership.restore_id).is_(None),
            )
        )
    else:
        present = set(
            (
                await session.exec(
                    select(GroupMembership.user_id).where(
                        col(GroupMembership.group_id) == review.group_id,
                        col(GroupMembership.user_id).in_(users),
                    )
                )
            ).all()
        )
        held = [h for h in held if h.user_id not in present]
        session.add_all(
            GroupMembership(instance_id=h.instance_id, group_id=h.group_id, user_id=h.user_id)
            for h in held
        )
    for row in held:
        row.applied = approved
    await session.flush()


async def _grant(
    session: AsyncSession, *, group_id: int, instance_id: int, product: ProductKey
) -> bool:
    existing = (
        await session.exec(
            select(GroupProductAccess).where(
                col(GroupProductAccess.group_id) == group_id,
                col(GroupProductAccess.product) == product,
            )
        )
    ).first()
    if existing is not None:
        return False
    session.add(GroupProductAccess(group_id=group_id, instance_id=instance_id, product=product))
    await session.flush()
    return True


async def _revoke(session: AsyncSession, *, group_id: int, product: ProductKey) -> bool:
    result = await session.exec(
        delete(GroupProductAccess).where(
            col(GroupProductAccess.group_id) == group_id,
            col(GroupProductAccess.product) == product,
        )
    )
    return bool(result.rowcount)


async def _billing_counts(session: AsyncSession, reviews: Sequence[AccessReview]) -> dict[str, int]:
    counts = {}
    for org_id, product in {(r.organization_id, r.product) for r in reviews}:
        accounts = await billable_accounts(session, organization_id=org_id, product=product)
        counts[str(product)] = len(accounts)
    return counts


def _audit_decision(
    session: AsyncSession,
    scope: Scope,
    reviews: Sequence[AccessReview],
    changed: Sequence[AccessReview],
    wanted: AccessReviewStatus,
    before: dict[str, int],
    after: dict[str, int],
) -> None:
    for org_id in {r.organization_id for r in reviews}:
        mine = [r for r in reviews if r.organization_id == org_id]
        audit.record(
            session,
            organization_id=org_id,
            actor_id=scope.admin_id,
            action="access_review.approve"
            if wanted == AccessReviewStatus.APPROVED
            else "access_review.deny",
            target_type="AccessReview",
            target_ids=[r.id for r in mine if r.id is not None],
            details={
                "group_ids": sorted({r.group_id for r in mine}),
                "changed_review_ids": [r.id for r in changed if r.organization_id == org_id],
                "billable_users_before": before,
                "billable_users_after": after,
            },
        )


async def set_group_access(
    runtime: Runtime, scope: Scope, *, group_id: int, product: ProductKey, granted: bool
) -> SiteGroup:
    """Grant or revoke a product's access for a group of an organization's site; only the
    product that site serves can be granted (groups belong to a site, as in Jira)."""
    async with runtime.db.transaction() as session:
        group = await scope.get(session, SiteGroup, group_id)
        if group is None:
            raise not_found("group", field=["input", "groupId"])
        instance = await session.get(ProductInstance, group.instance_id)
        assert instance is not None and group.id is not None
        if granted and product != instance.product:
            raise ServiceError(
                ErrorCode.INVALID_INPUT,
                f"{group.name} is a group of the {instance.product.title()} site "
                f"{instance.name}: it can only be given {instance.product.title()} access",
                field=["input", "product"],
            )
        before = await billable_accounts(
            session, organization_id=instance.organization_id, product=product
        )
        if granted:
            changed = await _grant(
                session, group_id=group.id, instance_id=instance.id or 0, product=product
            )
        else:
            changed = await _revoke(session, group_id=group.id, product=product)
        await _close_reviews(
            session,
            group_id=group.id,
            product=product,
            granted=granted,
            scope=scope,
            runtime=runtime,
        )
        after = await billable_accounts(
            session, organization_id=instance.organization_id, product=product
        )
        audit.record(
            session,
            organization_id=instance.organization_id,
            actor_id=scope.admin_id,
            action="product_access.grant" if granted else "product_access.revoke",
            target_type="Group",
            target_ids=[group.id],
            details={
                "product": str(product),
                "changed": changed,
                "billable_users_before": len(before),
                "billable_users_after": len(after),
            },
        )
    return group


async def _close_reviews(
    session: AsyncSession,
    *,
    group_id: int,
    product: ProductKey,
    granted: bool,
    scope: Scope,
    runtime: Runtime,
) -> None:
    """A direct grant or revoke also decides a pending review of the same group and product."""
    reviews = (
        await session.exec(
            select(AccessReview).where(
                col(AccessReview.group_id) == group_id,
                col(AccessReview.product) == product,
                col(AccessReview.status) == AccessReviewStatus.PENDING,
                col(AccessReview.kind) == AccessReviewKind.GROUP_ACCESS,
            )
        )
    ).all()
    for review in reviews:
        review.status = AccessReviewStatus.APPROVED if granted else AccessReviewStatus.DENIED
        review.decided_by_id = scope.admin_id
        review.decided_at = runtime.now()
