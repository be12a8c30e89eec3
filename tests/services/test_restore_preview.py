"""restorePreview's items (per project or space: action, counts, diff against the live site)
and the access review of restored members joining a group that already grants access."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, func, update
from sqlmodel import col, select

from recoverly.models import (
    AccessReview,
    AccessReviewKind,
    ConfluenceAttachment,
    ConfluenceComment,
    ConfluencePage,
    ConfluenceSpace,
    GroupMembership,
    GroupProductAccess,
    HeldMembership,
    JiraAttachment,
    JiraComment,
    JiraIssue,
    JiraProject,
    Restore,
    RestoreStatus,
    SiteGroup,
    SiteUser,
)
from recoverly.products.restore_engine import purge_restore
from recoverly.resolvers.global_ids import decode_id, to_global_id
from tests.conftest import Deployment
from tests.services.test_restores import (
    follow,
    latest_backup,
    restore_input,
    start,
    wait_restore,
)

PREVIEW = """query($input: StartRestoreInput!) { restorePreview(input: $input) {
  entityCounts itemsTotal skippedSpaces errors { code message field }
  users { created reused } groups { created reused }
  accessReviews { groupName product kind heldMembers billableUsersAdded }
  items { kind key name action targetKey entityCounts
          diff { onlyInBackup identical different onlyInDestination } } } }"""
REVIEWS = """query($org: ID!) { pendingAccessReviews(organizationId: $org) {
  id kind status product billableUsersAdded group { id name } restore { id } } }"""
BILLING = "query($org: ID!) { organization(id: $org) { billing { product billableUsers } } }"
APPROVE = """mutation($ids: [ID!]!) { approveGroupAccess(input: {reviewIds: $ids})
  { reviews { id status } errors { code } } }"""
DENY = """mutation($ids: [ID!]!) { denyGroupAccess(input: {reviewIds: $ids})
  { reviews { id status } errors { code } } }"""
CONTENT = {"projects", "issues", "comments", "attachments", "spaces", "pages"}


@pytest.fixture(scope="module")
def site(own_deployment: Deployment) -> Deployment:
    """These tests change the live demo sites: a deployment of their own."""
    return own_deployment


async def preview(site: Deployment, backup: str, destination: str, **extra: Any) -> Any:
    data = await site.gql(PREVIEW, {"input": restore_input(site, backup, destination, **extra)})
    result = data["restorePreview"]
    assert result["errors"] == [], result["errors"]
    return result


def assert_items_add_up(result: dict[str, Any]) -> None:
    """The items' counts add up to the preview's for every content entity."""
    for entity, count in result["entityCounts"].items():
        if entity in CONTENT:
            assert sum(i["entityCounts"].get(entity, 0) for i in result["items"]) == count, entity


def acme(site: Deployment) -> str:
    return to_global_id("Organization", site.demo.organizations["acme"])


async def billable(site: Deployment, product: str) -> int:
    data = await site.gql(BILLING, {"org": acme(site)})
    return {b["product"]: b["billableUsers"] for b in data["organization"]["billing"]}[product]


async def members(site: Deployment, group_id: int) -> set[str]:
    async with site.runtime.db.session() as session:
        statement = (
            select(SiteUser.account_id)
            .join(GroupMembership, col(GroupMembership.user_id) == SiteUser.id)
            .where(col(GroupMembership.group_id) == group_id)
        )
        return set((await session.exec(statement)).all())


# --- Full-site previews --------------------------------------------------------------


async def test_full_site_jira_preview_creates_every_project(site: Deployment) -> None:
    backup = await latest_backup(site, "acme_jira")
    result = await preview(site, backup, "acme_jira_sandbox")
    async with site.runtime.db.session() as session:
        keys = (
            await session.exec(
                select(JiraProject.key)
                .where(col(JiraProject.instance_id) == site.demo.instances["acme_jira"])
                .order_by(col(JiraProject.id))
            )
        ).all()
    assert [i["key"] for i in result["items"]] == list(keys)
    assert {(i["kind"], i["action"], i["diff"]) for i in result["items"]} == {
        ("PROJECT", "CREATE", None)
    }
    assert all(i["targetKey"] == i["key"] for i in result["items"])
    assert_items_add_up(result)
    assert result["users"]["reused"] == 0 and result["users"]["created"] > 0
    assert result["groups"] == {"created": result["entityCounts"]["groups"], "reused": 0}
    assert {r["kind"] for r in result["accessReviews"]} == {"GROUP_ACCESS"}


async def test_full_site_confluence_preview_skips_existing_spaces_with_their_diff(
    site: Deployment,
) -> None:
    backup = await latest_backup(site, "acme_confluence")
    result = await preview(site, backup, "acme_confluence_target")
    items = {i["key"]: i for i in result["items"]}
    assert sorted(k for k, i in items.items() if i["action"] == "SKIP") == sorted(
        result["skippedSpaces"]
    )
    assert result["skippedSpaces"] == ["HR", "MKT"]
    for key in ("HR", "MKT"):
        diff = items[key]["diff"]
        assert set(items[key]["entityCounts"].values()) == {0}, "nothing written for a skip"
        # The target's own pages (3 of them per space in the demo) are not in the backup.
        assert diff["onlyInDestination"] + diff["identical"] + diff["different"] > 0
        assert diff["onlyInBackup"] > 0
    created = [i for i in items.values() if i["action"] == "CREATE"]
    assert created and all(i["diff"] is None and i["kind"] == "SPACE" for i in created)
    assert_items_add_up(result)


# --- MERGE into the live site --------------------------------------------------------


async def project_issues(site: Deployment, key: str) -> list[int]:
    async with site.runtime.db.session() as session:
        return list(
            (
                await session.exec(
                    select(JiraIssue.id)
                    .join(JiraProject, col(JiraProject.id) == JiraIssue.project_id)
                    .where(
                        col(JiraProject.instance_id) == site.demo.instances["acme_jira"],
                        col(JiraProject.key) == key,
                    )
                    .order_by(col(JiraIssue.id))
                )
            ).all()
        )


async def delete_issues(site: Deployment, issue_ids: list[int]) -> None:
    async with site.runtime.db.transaction() as session:
        for model in (JiraComment, JiraAttachment):
            await session.exec(delete(model).where(col(model.issue_id).in_(issue_ids)))
        await session.exec(delete(JiraIssue).where(col(JiraIssue.id).in_(issue_ids)))


async def test_merge_preview_of_50_deleted_issues_says_what_the_restore_writes(
    site: Deployment,
) -> None:
    backup = await latest_backup(site, "acme_jira")
    key = "OPS"
    issues = await project_issues(site, key)
    assert len(issues) > 100
    await delete_issues(site, issues[10:60])
    selection = {"selection": {"projectKeys": [key]}, "conflictPolicy": "MERGE"}
    result = await preview(site, backup, "acme_jira", **selection)
    [item] = result["items"]
    assert (item["key"], item["action"], item["targetKey"]) == (key, "MERGE", key)
    assert item["diff"] == {
        "onlyInBackup": 50,
        "identical": len(issues) - 50,
        "different": 0,
        "onlyInDestination": 0,
    }
    assert item["entityCounts"]["issues"] == 50 and item["entityCounts"]["projects"] == 0
    assert_items_add_up(result)

    started = await start(site, backup, "acme_jira", **selection)
    assert started["errors"] == []
    events = await follow(site, started["restore"]["id"])
    assert events[-1]["status"] == "COMPLETED"
    assert events[0]["itemsTotal"] == events[-1]["itemsDone"] == result["itemsTotal"]
    node = await wait_restore(site, started["restore"]["id"])
    written = {k: v for k, v in node["entityCounts"].items() if k in CONTENT}
    assert written == item["entityCounts"]
    again = await preview(site, backup, "acme_jira", **selection)
    assert again["items"][0]["diff"] == {
        "onlyInBackup": 0,
        "identical": len(issues),
        "different": 0,
        "onlyInDestination": 0,
    }


async def test_changed_and_destination_only_issues_show_in_a_skip_preview(
    site: Deployment,
) -> None:
    backup = await latest_backup(site, "acme_jira")
    key = "WEB"
    issues = await project_issues(site, key)
    async with site.runtime.db.transaction() as session:
        await session.exec(
            update(JiraIssue).where(col(JiraIssue.id) == issues[0]).values(summary="Changed")
        )
        project = await session.get(JiraIssue, issues[1])
        assert project is not None
        session.add(
            JiraIssue(
                instance_id=project.instance_id,
                project_id=project.project_id,
                key=f"{key}-99999",
                summary="Only here",
            )
        )
    # A comment added to an issue makes it differ too (comments are part of its hash).
    async with site.runtime.db.transaction() as session:
        session.add(
            JiraComment(
                instance_id=site.demo.instances["acme_jira"], issue_id=issues[2], body="new"
            )
        )
    result = await preview(site, backup, "acme_jira", selection={"projectKeys": [key]})
    [item] = result["items"]
    assert item["action"] == "SKIP"
    assert set(item["entityCounts"].values()) == {0}
    assert item["diff"] == {
        "onlyInBackup": 0,
        "identical": len(issues) - 2,
        "different": 2,
        "onlyInDestination": 1,
    }
    renamed = await preview(
        site,
        backup,
        "acme_jira",
        selection={"projectKeys": [key]},
        conflictPolicy="RENAME",
        keyRenames=[{"from": key, "to": "WEB2"}],
    )
    [item] = renamed["items"]
    assert (item["action"], item["targetKey"], item["diff"]) == ("RENAME", "WEB2", None)
    assert item["entityCounts"]["issues"] == len(issues)


# --- Restored members of a group that already grants access --------------------------


async def test_restored_members_of_a_billable_group_wait_for_review(site: Deployment) -> None:
    """Three people left every Confluence group with access after the backup; restoring the
    backup into the live site holds them for review: no access before approval."""
    instance = site.demo.instances["acme_confluence"]
    async with site.runtime.db.session() as session:
        granting = dict(
            (
                await session.exec(
                    select(SiteGroup.name, SiteGroup.id)
                    .join(GroupProductAccess, col(GroupProductAccess.group_id) == SiteGroup.id)
                    .where(col(SiteGroup.instance_id) == instance)
                )
            ).all()
        )
        writers = (
            await session.exec(
                select(GroupMembership.user_id)
                .where(col(GroupMembership.group_id) == granting["writers"])
                .order_by(col(GroupMembership.user_id))
            )
        ).all()
    leavers = list(writers[:3])
    async with site.runtime.db.transaction() as session:
        await session.exec(
            delete(GroupMembership).where(
                col(GroupMembership.user_id).in_(leavers),
                col(GroupMembership.group_id).in_(list(granting.values())),
            )
        )
    before = await billable(site, "CONFLUENCE")
    writers_before = await members(site, granting["writers"])
    backup = await latest_backup(site, "acme_confluence")
    result = await preview(site, backup, "acme_confluence")
    held = {r["groupName"]: r for r in result["accessReviews"] if r["kind"] == "MEMBERS"}
    assert held["writers"]["heldMembers"] == 3
    assert held["writers"]["billableUsersAdded"] == 3, "they are billable through no group now"
    assert result["entityCounts"]["held_memberships"] == sum(
        r["heldMembers"] for r in held.values()
    )
    assert result["users"] == {"created": 0, "reused": result["users"]["reused"]}
    assert {i["action"] for i in result["items"]} == {"SKIP"}

    started = await start(site, backup, "acme_confluence")
    assert started["errors"] == []
    restore_id = started["restore"]["id"]
    events = await follow(site, restore_id)
    assert events[-1]["status"] == "COMPLETED"
    assert events[-1]["itemsDone"] == result["itemsTotal"]
    reviews = {
        r["group"]["name"]: r
        for r in (await site.gql(REVIEWS, {"org": acme(site)}))["pendingAccessReviews"]
        if r["restore"]["id"] == restore_id
    }
    assert set(reviews) == set(held)
    assert {r["kind"] for r in reviews.values()} == {"MEMBERS"}
    assert reviews["writers"]["billableUsersAdded"] == 3
    # No access before approval: neither membership nor billing changed.
    assert await billable(site, "CONFLUENCE") == before
    assert await members(site, granting["writers"]) == writers_before

    # Held members are approved once their restore has finished (it may still hold more).
    row = decode_id(restore_id, "Restore")
    for status in (RestoreStatus.IN_PROGRESS, RestoreStatus.COMPLETED):
        async with site.runtime.db.transaction() as session:
            await session.exec(update(Restore).where(col(Restore.id) == row).values(status=status))
        if status == RestoreStatus.IN_PROGRESS:
            early = await site.gql(APPROVE, {"ids": [reviews["writers"]["id"]]})
            assert [e["code"] for e in early["approveGroupAccess"]["errors"]] == ["INVALID_INPUT"]
    approved = await site.gql(APPROVE, {"ids": [reviews["writers"]["id"]]})
    assert approved["approveGroupAccess"]["errors"] == []
    assert len(await members(site, granting["writers"]) - writers_before) == 3
    assert await billable(site, "CONFLUENCE") == before + 3
    others = [r["id"] for name, r in reviews.items() if name != "writers"]
    if others:
        denied = await site.gql(DENY, {"ids": others})
        assert denied["denyGroupAccess"]["errors"] == []
    joined = await members(site, granting["writers"]) - writers_before
    for name, group_id in granting.items():
        if name != "writers":
            assert not await members(site, group_id) & joined, f"denied, yet in {name}"
    assert await billable(site, "CONFLUENCE") == before + 3
    # Denying the approved one takes the members out again.
    await site.gql(DENY, {"ids": [reviews["writers"]["id"]]})
    assert await members(site, granting["writers"]) == writers_before
    assert await billable(site, "CONFLUENCE") == before

    # Purging the restore (what cancel and failure do) removes its reviews and held rows.
    await site.gql(APPROVE, {"ids": [reviews["writers"]["id"]]})
    await purge_restore(site.runtime.db, restore_id=decode_id(restore_id, "Restore"))
    async with site.runtime.db.session() as session:
        mine = decode_id(restore_id, "Restore")
        for model in (AccessReview, HeldMembership):
            left = await session.exec(
                select(func.count()).select_from(model).where(col(model.restore_id) == mine)
            )
            assert left.one() == 0, model.__name__
        kinds = (await session.exec(select(AccessReview.kind))).all()
    assert await members(site, granting["writers"]) == writers_before
    assert await billable(site, "CONFLUENCE") == before
    assert AccessReviewKind.MEMBERS not in kinds


async def test_confluence_merge_preview_compares_pages_by_title_and_place(
    site: Deployment,
) -> None:
    """Pages deleted from a live space are only in the backup; a page moved under another
    parent differs; the restore then writes what the preview counted."""
    instance = site.demo.instances["acme_confluence"]
    async with site.runtime.db.session() as session:
        space = (
            await session.exec(
                select(ConfluenceSpace.id).where(
                    col(ConfluenceSpace.instance_id) == instance, col(ConfluenceSpace.key) == "ENG"
                )
            )
        ).one()
        pages = (
            await session.exec(
                select(ConfluencePage.id, ConfluencePage.parent_id)
                .where(col(ConfluencePage.space_id) == space)
                .order_by(col(ConfluencePage.id))
            )
        ).all()
    parents = {parent for _, parent in pages if parent is not None}
    leaves = [page for page, parent in pages if page not in parents and parent is not None]
    gone, moved = leaves[:5], leaves[5]
    async with site.runtime.db.transaction() as session:
        for model in (ConfluenceComment, ConfluenceAttachment):
            await session.exec(delete(model).where(col(model.page_id).in_(gone)))
        await session.exec(delete(ConfluencePage).where(col(ConfluencePage.id).in_(gone)))
        await session.exec(
            update(ConfluencePage).where(col(ConfluencePage.id) == moved).values(parent_id=None)
        )
    backup = await latest_backup(site, "acme_confluence")
    selection = {"selection": {"spaceKeys": ["ENG"]}, "conflictPolicy": "MERGE"}
    result = await preview(site, backup, "acme_confluence", **selection)
    [item] = result["items"]
    assert (item["kind"], item["action"]) == ("SPACE", "MERGE")
    assert item["diff"] == {
        "onlyInBackup": 5,
        "identical": len(pages) - 6,
        "different": 1,
        "onlyInDestination": 0,
    }
    assert item["entityCounts"]["pages"] == 5
    assert_items_add_up(result)
    started = await start(site, backup, "acme_confluence", **selection)
    assert started["errors"] == []
    events = await follow(site, started["restore"]["id"])
    assert events[-1]["status"] == "COMPLETED"
    node = await wait_restore(site, started["restore"]["id"])
    assert {k: v for k, v in node["entityCounts"].items() if k in CONTENT} == item["entityCounts"]
