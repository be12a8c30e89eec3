"""What an admin console lists: groups and their members, backup policies, access reviews
and the audit log; each a Relay connection with stable cursors, filters and scoping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from recoverly.models import utcnow
from recoverly.resolvers.global_ids import to_global_id
from recoverly.services.auth import hash_token
from tests.conftest import DEMO_TOKEN, OTHER_TOKEN, Deployment
from tests.services.test_restores import follow, latest_backup, start

GROUPS = """query($org: ID!, $site: ID, $search: String, $first: Int, $after: String) {
  organization(id: $org) { groups(instanceId: $site, search: $search, first: $first,
    after: $after) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { cursor node { id name memberCount billableMemberCount productAccess
        instance { id name } } } } } }"""
MEMBERS = """query($id: ID!, $first: Int, $after: String) { node(id: $id) { ... on Group {
  memberCount members(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id accountId displayName email } } } } } }"""
POLICIES = """query($org: ID!, $site: ID, $first: Int, $after: String) {
  organization(id: $org) { backupPolicies(instanceId: $site, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id name schedule instance { id } } } } } }"""
SITE_POLICIES = """query($id: ID!) { node(id: $id) { ... on ProductInstance {
  backupPolicies(first: 100) { totalCount nodes { id name } } } } }"""
CREATE = """mutation($input: CreateBackupPolicyInput!) { createBackupPolicy(input: $input) {
  policy { id name schedule storage nextRunAt } errors { code message field } } }"""
UPDATE = """mutation($input: UpdateBackupPolicyInput!) { updateBackupPolicy(input: $input) {
  policy { id name schedule storage includeAttachments nextRunAt customerBucket { bucket } }
  errors { code message field } } }"""
DELETE = """mutation($input: DeleteBackupPolicyInput!) { deleteBackupPolicy(input: $input) {
  deletedPolicyId errors { code message field } } }"""
REVIEWS = """query($org: ID!, $status: [AccessReviewStatus!], $first: Int, $after: String) {
  accessReviews(organizationId: $org, status: $status, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id status product decidedAt decidedBy { email } group { name } } } } }"""
AUDIT = """query($org: ID!, $filter: AuditEventFilter, $first: Int, $after: String) {
  auditEvents(organizationId: $org, filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id action at targetType targetIds details actor { id email } } } } }"""
DENY = """mutation($ids: [ID!]!) { denyGroupAccess(input: {reviewIds: $ids}) {
  reviews { id status } errors { code } } }"""

Fetch = Callable[[str | None], Awaitable[dict[str, Any]]]


@pytest.fixture(scope="module")
async def console(own_deployment: Deployment) -> Deployment:
    """Acme's Jira backup restored into the sandbox, so there are reviews to list."""
    backup = await latest_backup(own_deployment, "acme_jira")
    started = await start(own_deployment, backup, "acme_jira_sandbox")
    events = await follow(own_deployment, started["restore"]["id"])
    assert events[-1]["status"] == "COMPLETED"
    return own_deployment


def org_id(deployment: Deployment, slug: str = "acme") -> str:
    return to_global_id("Organization", deployment.demo.organizations[slug])


def site_id(deployment: Deployment, name: str) -> str:
    return to_global_id("ProductInstance", deployment.demo.instances[name])


async def walk(fetch: Fetch, connection: Callable[[dict[str, Any]], dict[str, Any]]) -> list[Any]:
    """Every page of a connection in turn; checks cursors and the total on the way."""
    nodes: list[Any] = []
    after = None
    while True:
        page = connection(await fetch(after))
        nodes += [edge["node"] for edge in page["edges"]]
        assert [edge["cursor"] for edge in page["edges"]][-1:] == (
            [page["pageInfo"]["endCursor"]] if page["edges"] else []
        )
        if not page["pageInfo"]["hasNextPage"]:
            assert len(nodes) == page["totalCount"]
            return nodes
        after = page["pageInfo"]["endCursor"]


async def test_groups_paginate_filter_and_count_billable_members(console: Deployment) -> None:
    async def fetch(after: str | None, **filters: Any) -> dict[str, Any]:
        variables = {"org": org_id(console), "first": 3, "after": after, **filters}
        return await console.gql(GROUPS, variables)

    groups = await walk(fetch, lambda d: d["organization"]["groups"])
    ids = [g["id"] for g in groups]
    assert len(ids) == len(set(ids)) >= 12, "each group exactly once across the pages"
    assert {g["instance"]["name"] for g in groups} >= {"Acme Jira", "Acme Jira Sandbox"}
    for group in groups:
        assert 0 <= group["billableMemberCount"] <= group["memberCount"]
        if group["productAccess"]:
            assert group["billableMemberCount"] == group["memberCount"]
    assert any(g["billableMemberCount"] < g["memberCount"] for g in groups)

    jira = site_id(console, "acme_jira")
    on_jira = await walk(
        lambda after: fetch(after, site=jira), lambda d: d["organization"]["groups"]
    )
    assert on_jira and {g["instance"]["id"] for g in on_jira} == {jira}
    admins = await walk(
        lambda after: fetch(after, search="ADMIN"), lambda d: d["organization"]["groups"]
    )
    assert admins and all("admin" in g["name"] for g in admins)
    assert len(admins) == sum("admin" in g["name"] for g in groups)


async def test_group_members_paginate(console: Deployment) -> None:
    data = await console.gql(GROUPS, {"org": org_id(console), "search": "developers"})
    group = data["organization"]["groups"]["edges"][0]["node"]

    async def fetch(after: str | None) -> dict[str, Any]:
        return await console.gql(MEMBERS, {"id": group["id"], "first": 7, "after": after})

    members = await walk(fetch, lambda d: d["node"]["members"])
    assert len(members) == group["memberCount"] > 7
    assert len({m["id"] for m in members}) == len(members)
    assert all(m["accountId"] and "@" in m["email"] for m in members)
    user = "query($id: ID!) { node(id: $id) { ... on User { email } } }"
    assert (await console.gql(user, {"id": members[0]["id"]}))["node"] == {
        "email": members[0]["email"]
    }
    assert (await console.gql(user, {"id": members[0]["id"]}, token=OTHER_TOKEN))["node"] is None


async def test_groups_of_another_organization_are_not_visible(console: Deployment) -> None:
    other = await console.gql(GROUPS, {"org": org_id(console)}, token=OTHER_TOKEN)
    assert other["organization"] is None
    globex_site = site_id(console, "globex_jira")
    errors = await console.errors(GROUPS, {"org": org_id(console), "site": globex_site})
    assert [(e["message"], e["extensions"]["code"]) for e in errors] == [
        ("site not found", "NOT_FOUND")
    ]


async def test_backup_policies_are_listed_updated_and_deleted(console: Deployment) -> None:
    later = (utcnow() + timedelta(days=30)).isoformat()
    created = []
    for site, name in (("acme_jira", "nightly jira"), ("acme_confluence", "nightly wiki")) * 2:
        data = await console.gql(
            CREATE,
            {
                "input": {
                    "instanceId": site_id(console, site),
                    "name": name,
                    "schedule": "DAILY",
                    "startAt": later,
                }
            },
        )
        assert data["createBackupPolicy"]["errors"] == []
        created.append(data["createBackupPolicy"]["policy"])

    async def fetch(after: str | None, **filters: Any) -> dict[str, Any]:
        return await console.gql(
            POLICIES, {"org": org_id(console), "first": 2, "after": after, **filters}
        )

    listed = await walk(fetch, lambda d: d["organization"]["backupPolicies"])
    assert {p["id"] for p in created} <= {p["id"] for p in listed}
    jira = site_id(console, "acme_jira")
    on_jira = await walk(
        lambda after: fetch(after, site=jira), lambda d: d["organization"]["backupPolicies"]
    )
    assert {p["instance"]["id"] for p in on_jira} == {jira}
    site_policies = await console.gql(SITE_POLICIES, {"id": jira})
    assert sorted(p["id"] for p in site_policies["node"]["backupPolicies"]["nodes"]) == sorted(
        p["id"] for p in on_jira
    )

    policy = created[0]
    updated = await console.gql(
        UPDATE,
        {
            "input": {
                "policyId": policy["id"],
                "name": "weekly jira",
                "schedule": "WEEKLY",
                "includeAttachments": False,
            }
        },
    )
    assert updated["updateBackupPolicy"]["errors"] == []
    assert updated["updateBackupPolicy"]["policy"] | {"nextRunAt": None} == {
        "id": policy["id"],
        "name": "weekly jira",
        "schedule": "WEEKLY",
        "storage": "INTERNAL",
        "includeAttachments": False,
        "nextRunAt": None,
        "customerBucket": None,
    }
    refused = await console.gql(
        UPDATE, {"input": {"policyId": policy["id"], "storage": "INTERNAL_AND_CUSTOMER"}}
    )
    assert refused["updateBackupPolicy"]["policy"] is None
    assert refused["updateBackupPolicy"]["errors"][0]["code"] == "INVALID_INPUT"
    assert refused["updateBackupPolicy"]["errors"][0]["field"] == ["input", "customerBucket"]
    foreign = await console.gql(
        UPDATE, {"input": {"policyId": policy["id"], "name": "x"}}, token=OTHER_TOKEN
    )
    assert foreign["updateBackupPolicy"]["errors"][0]["code"] == "NOT_FOUND"

    deleted = await console.gql(DELETE, {"input": {"policyId": policy["id"]}})
    assert deleted["deleteBackupPolicy"] == {"deletedPolicyId": policy["id"], "errors": []}
    after_delete = await walk(fetch, lambda d: d["organization"]["backupPolicies"])
    assert policy["id"] not in {p["id"] for p in after_delete}
    assert len(after_delete) == len(listed) - 1
    again = await console.gql(DELETE, {"input": {"policyId": policy["id"]}})
    assert again["deleteBackupPolicy"]["errors"][0]["code"] == "NOT_FOUND"

    events = await console.gql(
        AUDIT,
        {"org": org_id(console), "filter": {"targetId": policy["id"]}, "first": 10},
    )
    actions = [e["node"]["action"] for e in events["auditEvents"]["edges"]]
    assert actions == ["backup_policy.delete", "backup_policy.update", "backup_policy.create"]
    update_event = events["auditEvents"]["edges"][1]["node"]
    assert update_event["targetIds"] == [policy["id"]]
    assert update_event["actor"]["email"] == "admin@acme.example"
    assert sorted(update_event["details"]["changed"]) == ["include_attachments", "name", "schedule"]


async def test_access_reviews_list_every_decision(console: Deployment) -> None:
    async def fetch(after: str | None, **filters: Any) -> dict[str, Any]:
        return await console.gql(
            REVIEWS, {"org": org_id(console), "first": 2, "after": after, **filters}
        )

    reviews = await walk(fetch, lambda d: d["accessReviews"])
    assert len(reviews) >= 4
    pending = [r for r in reviews if r["status"] == "PENDING"]
    denied = await console.gql(DENY, {"ids": [pending[0]["id"]]})
    assert denied["denyGroupAccess"]["errors"] == []

    listed = await walk(lambda a: fetch(a, status=["DENIED"]), lambda d: d["accessReviews"])
    assert pending[0]["id"] in {r["id"] for r in listed}
    decided = next(r for r in listed if r["id"] == pending[0]["id"])
    assert decided["decidedBy"] == {"email": "admin@acme.example"}
    assert decided["decidedAt"] is not None
    still_pending = await walk(lambda a: fetch(a, status=["PENDING"]), lambda d: d["accessReviews"])
    assert pending[0]["id"] not in {r["id"] for r in still_pending}
    everything = await walk(fetch, lambda d: d["accessReviews"])
    assert len(everything) == len(reviews), "a decided review stays listed"


async def test_audit_events_filter_by_action_actor_and_time(console: Deployment) -> None:
    viewer = (await console.gql("{ viewer { id } }"))["viewer"]["id"]

    async def fetch(after: str | None, **filter: Any) -> dict[str, Any]:
        return await console.gql(
            AUDIT, {"org": org_id(console), "first": 3, "after": after, "filter": filter}
        )

    events = await walk(fetch, lambda d: d["auditEvents"])
    assert len(events) >= 2 and len({e["id"] for e in events}) == len(events)

    # Cursors are stable: an event recorded mid-walk neither repeats nor hides a row.
    first_page = (await fetch(None))["auditEvents"]
    await console.gql(
        CREATE,
        {
            "input": {
                "instanceId": site_id(console, "acme_jira"),
                "name": "mid-walk",
                "schedule": "WEEKLY",
                "startAt": (utcnow() + timedelta(days=9)).isoformat(),
            }
        },
    )
    walked = [e["node"]["id"] for e in first_page["edges"]]
    after = first_page["pageInfo"]["endCursor"]
    while after:
        page = (await fetch(after))["auditEvents"]
        walked += [e["node"]["id"] for e in page["edges"]]
        after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
    assert walked == [e["id"] for e in events]
    events = await walk(fetch, lambda d: d["auditEvents"])
    ats = [e["at"] for e in events]
    assert ats == sorted(ats, reverse=True), "newest first"
    starts = await walk(lambda a: fetch(a, action=["restore.start"]), lambda d: d["auditEvents"])
    assert starts and {e["action"] for e in starts} == {"restore.start"}
    assert all(e["targetType"] == "Restore" for e in starts)
    mine = await walk(lambda a: fetch(a, actorId=viewer), lambda d: d["auditEvents"])
    assert {e["actor"]["id"] for e in mine} == {viewer}
    future = (utcnow() + timedelta(days=1)).isoformat()
    assert (await fetch(None, since=future))["auditEvents"]["totalCount"] == 0
    assert (await fetch(None, until=future))["auditEvents"]["totalCount"] == len(events)
    errors = await console.errors(AUDIT, {"org": org_id(console), "filter": {"actorId": "nope"}})
    assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("query", [REVIEWS, AUDIT])
async def test_lists_of_another_organization_are_not_found(console: Deployment, query: str) -> None:
    for org in (org_id(console), to_global_id("Organization", 424242)):
        errors = await console.errors(query, {"org": org}, token=OTHER_TOKEN)
        assert [e["extensions"]["code"] for e in errors] == ["NOT_FOUND"]


async def test_nested_members_cost_the_same_for_two_groups_or_twelve(console: Deployment) -> None:
    query = """query($org: ID!, $first: Int) { organization(id: $org) {
      groups(first: $first) { nodes { name memberCount billableMemberCount productAccess
        members(first: 3) { totalCount pageInfo { hasNextPage } nodes { email } } } } } }"""
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        # Only the request's statements: not the job workers' or the scheduler's polling.
        task = asyncio.current_task()
        if task is None or not task.get_name().startswith("recoverly-"):
            statements.append(statement)

    engine = console.runtime.db.engine.sync_engine
    counts = {}
    for first in (2, 12):
        # Both requests look their token up (a cached identity expires after a while).
        console.runtime.auth_cache.forget(hash_token(DEMO_TOKEN))
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            data = await console.gql(query, {"org": org_id(console), "first": first})
        finally:
            event.remove(engine, "before_cursor_execute", count)
        groups = data["organization"]["groups"]["nodes"]
        assert len(groups) == first
        for group in groups:
            members = group["members"]
            assert members["totalCount"] == group["memberCount"]
            assert len(members["nodes"]) == min(3, group["memberCount"])
            assert members["pageInfo"]["hasNextPage"] == (group["memberCount"] > 3)
        counts[first] = len(statements)
    assert counts[2] == counts[12], counts
