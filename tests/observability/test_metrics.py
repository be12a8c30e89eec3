"""GraphQL error metrics through a real server: codes of top-level errors and of mutation
payload errors, and operations counted by outcome."""

from __future__ import annotations

from recoverly.resolvers.global_ids import to_global_id
from tests.clients import http_client
from tests.conftest import DEMO_TOKEN, Deployment
from tests.observability.test_operating import metric_samples
from tests.services.test_restores import START, latest_backup, restore_input


async def _scrape(deployment: Deployment) -> dict[tuple[str, ...], float]:
    async with http_client(deployment.url) as client:
        samples = metric_samples((await client.get("/metrics")).text)
    counts: dict[tuple[str, ...], float] = {}
    for labels, value in samples.get("recoverly_graphql_errors_total", []):
        counts[("error", labels["code"])] = value
    for labels, value in samples.get("recoverly_graphql_operations_total", []):
        key = ("operation", labels["operation_name"], labels["operation_type"], labels["outcome"])
        counts[key] = value
    return counts


async def test_errors_are_counted_by_code(deployment: Deployment) -> None:
    before = await _scrape(deployment)
    backup = await latest_backup(deployment, "acme_jira")
    refused = await deployment.gql(
        START.replace("mutation(", "mutation RefusedRestore("),
        {"input": restore_input(deployment, backup, "acme_jira")},
    )
    assert refused["startRestore"]["errors"][0]["code"] == "DESTINATION_NOT_EMPTY"
    async with deployment.client(DEMO_TOKEN) as client:
        invalid = await client.post("/graphql", json={"query": "query Typo { viewr { id } }"})
    assert invalid.json()["errors"]
    org = to_global_id("Organization", deployment.demo.organizations["acme"])
    await deployment.gql("query Fine($o: ID!) { node(id: $o) { id } }", {"o": org})
    after = await _scrape(deployment)

    def grew(key: tuple[str, ...]) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew(("error", "DESTINATION_NOT_EMPTY")) == 1
    assert grew(("operation", "RefusedRestore", "mutation", "rejected")) == 1
    assert grew(("error", "GRAPHQL_VALIDATION_FAILED")) == 1
    assert grew(("operation", "Typo", "query", "error")) == 1
    assert grew(("operation", "Fine", "query", "ok")) == 1
