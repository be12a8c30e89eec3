"""Query cost analysis through the real server: expensive operations are refused before
they run (QUERY_TOO_COMPLEX), each caller spends a budget (RATE_LIMITED, HTTP 429), and
every response reports its cost, while other callers are answered meanwhile."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from recoverly.resolvers.global_ids import to_global_id
from tests.conftest import DEMO_TOKEN, OTHER_TOKEN, Deployment


async def post(
    deployment: Deployment, query: str, token: str = DEMO_TOKEN, **variables: Any
) -> httpx.Response:
    async with deployment.client(token) as client:
        return await client.post("/graphql", json={"query": query, "variables": variables})


def assert_code(response: httpx.Response, code: str) -> dict[str, Any]:
    body = response.json()
    assert body.get("data") is None, body
    assert body["errors"][0]["extensions"]["code"] == code, body
    return body  # type: ignore[no-any-return]


def org(deployment: Deployment) -> str:
    return to_global_id("Organization", deployment.demo.organizations["acme"])


async def refused(deployment: Deployment, query: str, **variables: Any) -> dict[str, Any]:
    response = await deployment.answered_meanwhile(post(deployment, query, **variables))
    assert response.status_code == 200
    return assert_code(response, "QUERY_TOO_COMPLEX")


async def test_many_aliases_are_refused(deployment: Deployment) -> None:
    aliases = " ".join(f"a{i}: backups(organizationId: $org) {{ totalCount }}" for i in range(280))
    body = await refused(deployment, f"query($org: ID!) {{ {aliases} }}", org=org(deployment))
    assert "aliases" in body["errors"][0]["message"]


async def test_many_previews_are_refused(deployment: Deployment) -> None:
    preview = 'restorePreview(input: {backupId: "x", destinationId: "y"}) { itemsTotal }'
    await refused(deployment, "{ " + " ".join(f"p{i}: {preview}" for i in range(280)) + " }")


async def test_many_billing_lookups_are_refused(deployment: Deployment) -> None:
    billing = "viewer { organizations { billing { product billableUsers } } }"
    await refused(deployment, "{ " + " ".join(f"v{i}: {billing}" for i in range(180)) + " }")


async def test_duplicate_fields_are_counted(deployment: Deployment) -> None:
    body = await refused(deployment, "{ " + "__typename " * 3900 + "}")
    assert "fields" in body["errors"][0]["message"]


async def test_repeated_fragments_in_a_full_page_cost_too_much(deployment: Deployment) -> None:
    fields = "id status product createdAt sizeBytes checksum failureReason attempts location"
    query = f"""query($org: ID!) {{ backups(organizationId: $org, first: 100) {{
        nodes {{ ...F ...F ...F ...F ...F ...F ...F ...F ...F ...F ...F ...F }} }} }}
        fragment F on Backup {{ {fields} }}"""
    body = await refused(deployment, query, org=org(deployment))
    assert body["errors"][0]["extensions"]["cost"]["requested"] > 10_000


async def test_a_fragment_bomb_is_refused_before_it_expands(deployment: Deployment) -> None:
    levels = 30
    fragments = ["fragment F0 on Query { __typename }"]
    fragments += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)]
    query = f"{{ ...F{levels - 1} }} " + " ".join(fragments)
    await refused(deployment, query)


async def test_responses_carry_their_cost(deployment: Deployment) -> None:
    response = await post(deployment, "{ rateLimit { limit remaining used resetAt } }")
    body = response.json()
    cost = body["extensions"]["cost"]
    assert cost["requested"] >= 1
    assert cost["limit"] == deployment.runtime.settings.rate_limit_points
    assert datetime.fromisoformat(cost["resetAt"])
    budget = body["data"]["rateLimit"]
    assert budget["limit"] == cost["limit"]
    assert budget["remaining"] == cost["remaining"] == budget["limit"] - budget["used"]


@pytest.fixture
def small_budget(deployment: Deployment) -> Iterator[int]:
    settings = deployment.runtime.settings
    saved = settings.rate_limit_points
    settings.rate_limit_points = 40
    deployment.runtime.rate_limiter.reset()
    try:
        yield settings.rate_limit_points
    finally:
        settings.rate_limit_points = saved
        deployment.runtime.rate_limiter.reset()


async def test_a_spent_budget_is_429_with_retry_after(
    deployment: Deployment, small_budget: int
) -> None:
    query = "{ viewer { email organizations { id name } } }"
    statuses = [(await post(deployment, query)).status_code for _ in range(10)]
    assert 200 in statuses and statuses[-1] == 429
    response = await post(deployment, query)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    body = assert_code(response, "RATE_LIMITED")
    assert (
        body["errors"][0]["extensions"]["cost"]["remaining"]
        < body["errors"][0]["extensions"]["cost"]["requested"]
    )
    other = await post(deployment, query, token=OTHER_TOKEN)
    assert other.status_code == 200
    assert other.json()["data"]["viewer"]["email"] != "admin@acme.example"


async def test_subscriptions_spend_the_budget_too(
    deployment: Deployment, small_budget: int
) -> None:
    while (await post(deployment, "{ viewer { email } }")).status_code != 429:
        pass
    async with deployment.websocket() as ws:
        operation = await ws.subscribe(
            "subscription($id: ID!) { restoreProgress(restoreId: $id) { status } }",
            {"id": to_global_id("Restore", 1)},
        )
        message = json.loads(await ws.ws.recv())
    assert message["id"] == operation
    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_depth_and_size_limits_are_query_too_complex(deployment: Deployment) -> None:
    nested = "organization { " * 14 + "name" + " }" * 14
    deep = "{ viewer { organizations { products { instances { " + nested + " } } } } }"
    await refused(deployment, deep)
    await refused(deployment, "{ " + " ".join(f"a{i}: __typename" for i in range(4100)) + " }")
