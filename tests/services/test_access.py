"""Product access review after a restore: pending reviews, billing impact, decisions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import col, select

from recoverly.models import (
    AccessReview,
    AccessReviewStatus,
    AuditEvent,
    GroupMembership,
    GroupProductAccess,
    ProductInstance,
    ProductKey,
    SiteGroup,
    SiteUser,
)
from recoverly.resolvers.global_ids import decode_id, to_global_id
from tests.conftest import OTHER_TOKEN, Deployment
from tests.services.test_restores import follow, latest_backup, start

PENDING = """query($org: ID!) { pendingAccessReviews(organizationId: $org) {
  id status product billableUsersAdded group { id name instance { name } }
  restore { id status } } }"""
BILLING = "query($org: ID!) { organization(id: $org) { billing { product billableUsers } } }"
DECIDE = """mutation($ids: [ID!]!) {
  approve: approveGroupAccess(input: {reviewIds: $ids}) { reviews { id status } errors { code } }
}"""
DENY = """mutation($ids: [ID!]!) {
  deny: denyGroupAccess(input: {reviewIds: $ids}) { reviews { id status } errors { code } }
}"""
REVOKE = """mutation($g: ID!) { revokeProductAccess(input: {groupId: $g, product: JIRA}) {
  group { productAccess } errors { code } } }"""


@pytest.fixture(scope="module")
async def restored(own_deployment: Deployment) -> Deployment:
    """Acme's Jira backup restored into the sandbox: its groups come back with reviews."""
    backup = await latest_backup(own_deployment, "acme_jira")
    started = await start(own_deployment, backup, "acme_jira_sandbox")
    events = await follow(own_deployment, started["restore"]["id"])
    assert events[-1]["status"] == "COMPLETED"
    return own_deployment


def acme(deployment: Deployment) -> str:
    return to_global_id("Organization", deployment.demo.organizations["acme"])


async def billable(deployment: Deployment) -> int:
    data = await deployment.gql(BILLING, {"org": acme(deployment)})
    return {b["product"]: b["billableUsers"] for b in data["organization"]["billing"]}["JIRA"]


async def billable_accounts(deployment: Deployment) -> set[str]:
    """Straight from the rows: members of groups with applied Jira access in Acme."""
    async with deployment.runtime.db.session() as session:
        statement = (
            select(SiteUser.account_id)
            .join(GroupMembership, col(GroupMembership.user_id) == SiteUser.id)
            .join(GroupProductAccess, col(GroupProductAccess.group_id) == GroupMembership.group_id)
            .join(ProductInstance, col(ProductInstance.id) == GroupProductAccess.instance_id)
            .where(
                col(ProductInstance.organization_id) == deployment.demo.organizations["acme"],
                col(GroupProductAccess.product) == ProductKey.JIRA,
            )
        )
        return set((await session.exec(statement)).all())


async def members(deployment: Deployment, group_global_id: str) -> set[str]:
    async with deployment.runtime.db.session() as session:
        statement = (
            select(SiteUser.account_id)
            .join(GroupMembership, col(GroupMembership.user_id) == SiteUser.id)
            .where(col(GroupMembership.group_id) == decode_id(group_global_id, "Group"))
        )
        return set((await session.exec(statement)).all())


async def pending(deployment: Deployment) -> list[dict[str, Any]]:
    data = await deployment.gql(PENDING, {"org": acme(deployment)})
    return data["pendingAccessReviews"]  # type: ignore[no-any-return]


async def test_restore_leaves_one_pending_review_per_group_with_access(
    restored: Deployment,
) -> None:
    reviews = await pending(restored)
    async with restored.runtime.db.session() as session:
        source_groups = (
            await session.exec(
                select(SiteGroup.name)
                .join(GroupProductAccess, col(GroupProductAccess.group_id) == SiteGroup.id)
                .where(col(SiteGroup.instance_id) == restored.demo.instances["acme_jira"])
            )
        ).all()
        sandbox_access = (
            await session.exec(
                select(GroupProductAccess).where(
                    col(GroupProductAccess.instance_id)
                    == restored.demo.instances["acme_jira_sandbox"]
                )
            )
        ).all()
    assert len(source_groups) >= 3
    # The demo's contractors lost their access after the backup: the restore brings it back.
    assert sorted(r["group"]["name"] for r in reviews) == sorted([*source_groups, "contractors"])
    assert all(r["status"] == "PENDING" and r["product"] == "JIRA" for r in reviews)
    assert {r["group"]["instance"]["name"] for r in reviews} == {"Acme Jira Sandbox"}
    assert sandbox_access == [], "no access applied before an admin decides"


async def test_the_demo_contractors_review_adds_billable_users(restored: Deployment) -> None:
    """The demo's contractors lost their access after the backup: their review has a cost."""
    [review] = [r for r in await pending(restored) if r["group"]["name"] == "contractors"]
    expected = len(
        await members(restored, review["group"]["id"]) - await billable_accounts(restored)
    )
    assert review["billableUsersAdded"] == expected > 0


async def test_access_only_for_the_product_the_groups_site_serves(restored: Deployment) -> None:
    [review] = [r for r in await pending(restored) if r["group"]["name"] == "developers"]
    grant = """mutation($g: ID!, $p: ProductKey!) { grantProductAccess(input:
      {groupId: $g, product: $p}) { group { productAccess } errors { code message field } } }"""
    refused = await restored.gql(grant, {"g": review["group"]["id"], "p": "CONFLUENCE"})
    assert refused["grantProductAccess"]["group"] is None
    [error] = refused["grantProductAccess"]["errors"]
    assert (error["code"], error["field"]) == ("INVALID_INPUT", ["input", "product"])
    assert "Jira site" in error["message"]
    node = await restored.gql(
        "query($id: ID!) { node(id: $id) { ... on Group { productAccess } } }",
        {"id": review["group"]["id"]},
    )
    assert node["node"]["productAccess"] == []


async def test_billable_users_added_is_exact_with_shared_and_billable_members(
    restored: Deployment,
) -> None:
    # Make part of the people non-billable: revoke the source site's access for one group.
    async with restored.runtime.db.session() as session:
        source_group = (
            await session.exec(
                select(SiteGroup.id)
                .join(GroupProductAccess, col(GroupProductAccess.group_id) == SiteGroup.id)
                .where(col(SiteGroup.instance_id) == restored.demo.instances["acme_jira"])
                .order_by(col(SiteGroup.id))
            )
        ).first()
    revoked = await restored.gql(REVOKE, {"g": to_global_id("Group", source_group)})
    assert revoked["revokeProductAccess"]["errors"] == []
    billable_now = await billable_accounts(restored)
    reviews = await pending(restored)
    for review in reviews:
        expected = len(await members(restored, review["group"]["id"]) - billable_now)
        assert review["billableUsersAdded"] == expected, review["group"]["name"]
    assert any(r["billableUsersAdded"] > 0 for r in reviews)
    assert await billable(restored) == len(billable_now)


async def test_approving_three_reviews_adds_exactly_the_distinct_new_users(
    restored: Deployment,
) -> None:
    reviews = (await pending(restored))[:3]
    assert len(reviews) == 3
    before = await billable_accounts(restored)
    union: set[str] = set()
    for review in reviews:
        union |= await members(restored, review["group"]["id"])
    count_before = await billable(restored)
    ids = [r["id"] for r in reviews]
    data = await restored.gql(DECIDE, {"ids": ids})
    assert data["approve"]["errors"] == []
    assert {r["status"] for r in data["approve"]["reviews"]} == {"APPROVED"}
    assert await billable(restored) - count_before == len(union - before)
    again = await restored.gql(DECIDE, {"ids": ids})
    assert again["approve"]["errors"] == [], "approving again is a no-op"
    assert await billable(restored) - count_before == len(union - before)
    assert {r["id"] for r in await pending(restored)}.isdisjoint(ids)


async def test_decisions_are_all_or_nothing(restored: Deployment) -> None:
    reviews = await pending(restored)
    assert reviews
    data = await restored.gql(
        DENY, {"ids": [reviews[0]["id"], to_global_id("AccessReview", 999999)]}
    )
    assert data["deny"]["errors"][0]["code"] == "NOT_FOUND"
    assert data["deny"]["reviews"] is None
    assert reviews[0]["id"] in {r["id"] for r in await pending(restored)}


async def test_another_organizations_admin_can_neither_see_nor_decide(
    restored: Deployment,
) -> None:
    reviews = await pending(restored)
    assert reviews
    errors = await restored.errors(PENDING, {"org": acme(restored)}, token=OTHER_TOKEN)
    assert [e["extensions"]["code"] for e in errors] == ["NOT_FOUND"]
    node = await restored.gql(
        "query($id: ID!) { node(id: $id) { id } }", {"id": reviews[0]["id"]}, token=OTHER_TOKEN
    )
    assert node["node"] is None
    for mutation, name in ((DECIDE, "approve"), (DENY, "deny")):
        data = await restored.gql(mutation, {"ids": [reviews[0]["id"]]}, token=OTHER_TOKEN)
        assert data[name]["errors"][0]["code"] == "NOT_FOUND"
    assert reviews[0]["id"] in {r["id"] for r in await pending(restored)}


async def test_concurrent_approve_and_deny_end_in_one_consistent_decision(
    restored: Deployment,
) -> None:
    review = (await pending(restored))[0]
    review_id = review["id"]
    approve, deny = await asyncio.gather(
        restored.gql(DECIDE, {"ids": [review_id]}), restored.gql(DENY, {"ids": [review_id]})
    )
    assert approve["approve"]["errors"] == deny["deny"]["errors"] == []
    final = await restored.gql(
        "query($id: ID!) { node(id: $id) "
        "{ ... on AccessReview { status group { productAccess } } } }",
        {"id": review_id},
    )
    status = final["node"]["status"]
    assert status in ("APPROVED", "DENIED")
    assert final["node"]["group"]["productAccess"] == (["JIRA"] if status == "APPROVED" else [])
    async with restored.runtime.db.session() as session:
        events = (
            await session.exec(
                select(AuditEvent).where(col(AuditEvent.target_type) == "AccessReview")
            )
        ).all()
    mine = [e for e in events if decode_id(review_id, "AccessReview") in e.target_ids]
    assert sorted(e.action for e in mine) == ["access_review.approve", "access_review.deny"]
    last = max(mine, key=lambda e: e.id or 0)
    assert last.action.endswith("approve" if status == "APPROVED" else "deny")
    assert {"billable_users_before", "billable_users_after", "group_ids"} <= set(last.details)


async def test_a_decision_can_be_changed_later(restored: Deployment) -> None:
    async with restored.runtime.db.session() as session:
        review_id = (
            await session.exec(
                select(AccessReview.id).where(
                    col(AccessReview.status) == AccessReviewStatus.APPROVED
                )
            )
        ).first()
    review = to_global_id("AccessReview", review_id)
    count_approved = await billable(restored)
    denied = await restored.gql(DENY, {"ids": [review]})
    assert denied["deny"]["reviews"][0]["status"] == "DENIED"
    assert await billable(restored) <= count_approved
    approved = await restored.gql(DECIDE, {"ids": [review]})
    assert approved["approve"]["reviews"][0]["status"] == "APPROVED"
    assert await billable(restored) == count_approved
