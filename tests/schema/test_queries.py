"""Read queries through the real HTTP endpoint: scoping, nodes, products, pagination."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import event

from recoverly.models import Backup, BackupCopy, BackupLocation, BackupStatus, ProductKey, utcnow
from recoverly.resolvers.global_ids import to_global_id
from recoverly.services.auth import hash_token
from tests.conftest import DEMO_TOKEN, OTHER_TOKEN, Deployment

ORGS = "{ viewer { email organizations { id name } } }"


async def test_demo_admin_sees_acme_and_initech_not_globex(deployment: Deployment) -> None:
    data = await deployment.gql(ORGS)
    assert sorted(o["name"] for o in data["viewer"]["organizations"]) == ["Acme", "Initech"]
    other = await deployment.gql(ORGS, token=OTHER_TOKEN)
    assert [o["name"] for o in other["viewer"]["organizations"]] == ["Globex"]


async def test_globex_ids_resolve_to_null_for_the_demo_admin(deployment: Deployment) -> None:
    other = await deployment.gql(
        "{ viewer { organizations { id products { instances { id } } } } }", token=OTHER_TOKEN
    )
    globex = other["viewer"]["organizations"][0]
    ids = [globex["id"]] + [i["id"] for p in globex["products"] for i in p["instances"]]
    assert len(ids) >= 3
    for global_id in ids:
        seen_by_owner = await deployment.gql(
            "query($id: ID!) { node(id: $id) { id } }", {"id": global_id}, token=OTHER_TOKEN
        )
        assert seen_by_owner["node"] == {"id": global_id}
        seen = await deployment.gql(
            "query($id: ID!) { node(id: $id) { id } organization(id: $id) { name } }",
            {"id": global_id},
        )
        assert seen == {"node": None, "organization": None}
    # A foreign organization ID is NOT_FOUND, exactly like an unknown one.
    for org_id in (globex["id"], to_global_id("Organization", 999_999)):
        errors = await deployment.errors(
            "query($id: ID!) { products(organizationId: $id) { key } }", {"id": org_id}
        )
        assert [(e["message"], e["extensions"]["code"]) for e in errors] == [
            ("organization not found", "NOT_FOUND")
        ]


async def test_node_of_garbage_id_is_null(deployment: Deployment) -> None:
    data = await deployment.gql('{ a: node(id: "nonsense") { id } b: node(id: "") { id } }')
    assert data == {"a": None, "b": None}


async def test_products_list_instances_with_emptiness(deployment: Deployment) -> None:
    acme = to_global_id("Organization", deployment.demo.organizations["acme"])
    data = await deployment.gql(
        """query($org: ID!) { products(organizationId: $org) {
            key name instances { id name url product isEmpty operationInProgress } } }""",
        {"org": acme},
    )
    by_key = {p["key"]: p for p in data["products"]}
    assert by_key["JIRA"]["name"] == "Jira"
    jira = {i["name"]: i for i in by_key["JIRA"]["instances"]}
    assert jira["Acme Jira"]["isEmpty"] is False
    assert jira["Acme Jira Sandbox"]["isEmpty"] is True
    assert all(i["operationInProgress"] is False for i in jira.values())
    confluence = {i["name"]: i for i in by_key["CONFLUENCE"]["instances"]}
    assert confluence["Acme Confluence Restore Target"]["isEmpty"] is False


@pytest.fixture(scope="module")
async def many_backups(deployment: Deployment) -> AsyncIterator[int]:
    """45 backups of Initech's Jira, with internal copies: enough for several pages."""
    instance_id = deployment.demo.instances["initech_jira"]
    org_id = deployment.demo.organizations["initech"]
    now = utcnow()
    async with deployment.runtime.db.transaction() as session:
        backups = [
            Backup(
                organization_id=org_id,
                instance_id=instance_id,
                product=ProductKey.JIRA,
                status=BackupStatus.COMPLETED,
                created_at=now - timedelta(hours=45 - i),
                completed_at=now - timedelta(hours=45 - i),
                size_bytes=1000 + i,
                entity_counts={"issues": i},
            )
            for i in range(45)
        ]
        session.add_all(backups)
        await session.flush()
        session.add_all(
            BackupCopy(
                backup_id=b.id,
                location=BackupLocation.INTERNAL_STORAGE,
                key=f"test/{b.id}.zip",
                expires_at=now + timedelta(days=14),
            )
            for b in backups
            if b.id is not None
        )
    yield org_id


PAGE = """query($org: ID!, $first: Int, $after: String) {
  backups(organizationId: $org, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id status location availableForRestore unavailableReason
      source { name isEmpty operationInProgress organization { name } } } }
  }
}"""


async def test_walking_every_page_yields_each_backup_once_in_order(
    deployment: Deployment, many_backups: int
) -> None:
    org = to_global_id("Organization", many_backups)
    seen: list[str] = []
    after = None
    while True:
        data = await deployment.gql(PAGE, {"org": org, "first": 7, "after": after})
        connection = data["backups"]
        assert connection["totalCount"] == 45
        seen += [edge["node"]["id"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 45
    again = await deployment.gql(PAGE, {"org": org, "first": 100})
    assert [e["node"]["id"] for e in again["backups"]["edges"]] == seen
    first = again["backups"]["edges"][0]["node"]
    assert first["location"] == "INTERNAL_STORAGE" and first["availableForRestore"] is True
    assert first["source"]["organization"]["name"] == "Initech"


@pytest.mark.parametrize("first", [0, 101, -1])
async def test_page_size_out_of_bounds_is_an_error(deployment: Deployment, first: int) -> None:
    async with deployment.client() as client:
        response = await client.post(
            "/graphql",
            json={
                "query": PAGE,
                "variables": {"org": to_global_id("Organization", 1), "first": first},
            },
        )
    errors = response.json()["errors"]
    assert "between 1 and 100" in errors[0]["message"]


async def test_statement_count_does_not_grow_with_page_size(
    deployment: Deployment, many_backups: int
) -> None:
    org = to_global_id("Organization", many_backups)
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        # Only the request's statements: not the job workers' or the scheduler's polling.
        task = asyncio.current_task()
        if task is None or not task.get_name().startswith("recoverly-"):
            statements.append(statement)

    engine = deployment.runtime.db.engine.sync_engine
    counts = {}
    for first in (5, 100):
        deployment.runtime.auth_cache.forget(hash_token(DEMO_TOKEN))  # both authenticate
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            data = await deployment.gql(PAGE, {"org": org, "first": first})
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(data["backups"]["edges"]) == min(first, 45)
        counts[first] = len(statements)
    assert counts[5] == counts[100], counts


async def test_other_admin_sees_no_backups_of_initech(
    deployment: Deployment, many_backups: int
) -> None:
    org = to_global_id("Organization", many_backups)
    errors = await deployment.errors(PAGE, {"org": org, "first": 10}, token=OTHER_TOKEN)
    assert [e["extensions"]["code"] for e in errors] == ["NOT_FOUND"]
    assert "Initech" not in str(errors)


async def test_a_request_uses_one_connection_and_counts_only_when_asked(
    deployment: Deployment, many_backups: int
) -> None:
    org = to_global_id("Organization", many_backups)
    deployment.runtime.auth_cache.forget(hash_token(DEMO_TOKEN))  # authentication included
    checkouts: list[object] = []
    statements: list[str] = []

    def checkout(dbapi_connection: object, *args: object) -> None:
        task = asyncio.current_task()
        if task is None or not task.get_name().startswith("recoverly-"):
            checkouts.append(dbapi_connection)

    def execute(conn: object, cursor: object, statement: str, *args: object) -> None:
        task = asyncio.current_task()
        if task is None or not task.get_name().startswith("recoverly-"):
            statements.append(statement)

    engine = deployment.runtime.db.engine.sync_engine
    event.listen(engine, "checkout", checkout)
    event.listen(engine, "before_cursor_execute", execute)
    try:
        await deployment.gql(PAGE, {"org": org, "first": 100})
        assert len(checkouts) == 1
        assert sum("count(" in s.lower() for s in statements) == 1
        checkouts.clear()
        statements.clear()
        without_total = PAGE.replace("totalCount ", "")
        data = await deployment.gql(without_total, {"org": org, "first": 10})
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "before_cursor_execute", execute)
    assert len(data["backups"]["edges"]) == 10
    assert len(checkouts) == 1
    assert not any("count(" in s.lower() for s in statements)
