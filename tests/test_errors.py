"""Errors a frontend can branch on: every top-level error carries ``extensions.code``,
expected mistakes are logged in one line, and mutation errors point at their input."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import pytest

from recoverly.app import create_app
from recoverly.resolvers.global_ids import to_global_id
from tests.clients import http_client
from tests.conftest import DEMO_TOKEN, Deployment, RunningServer
from tests.services.test_restores import START, latest_backup, restore_input

BACKUPS = """query($org: ID!, $first: Int, $after: String) {
  backups(organizationId: $org, first: $first, after: $after) { totalCount } }"""


DEEP = (
    "{ viewer { organizations "
    + "{ products { instances { organization " * 4
    + "{ id }"
    + " } } }" * 4
    + " } }"
)


def acme(deployment: Deployment) -> str:
    return to_global_id("Organization", deployment.demo.organizations["acme"])


def codes(errors: list[dict[str, Any]]) -> list[str]:
    return [error["extensions"]["code"] for error in errors]


async def post(deployment: Deployment, body: Any) -> Any:
    async with deployment.client() as client:
        return await client.post("/graphql", json=body)


async def test_unauthenticated(deployment: Deployment) -> None:
    async with deployment.client(token=None) as client:
        response = await client.post("/graphql", json={"query": "{ viewer { email } }"})
    assert response.status_code == 401
    assert codes(response.json()["errors"]) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"first": 0}, "first must be between 1 and 100"),
        ({"first": 101}, "first must be between 1 and 100"),
        ({"first": 5, "after": "not-a-cursor"}, "invalid cursor"),
        ({"first": "five"}, "Variable '$first'"),
    ],
)
async def test_bad_user_input(
    deployment: Deployment, variables: dict[str, Any], message: str
) -> None:
    errors = await deployment.errors(BACKUPS, {"org": acme(deployment), **variables})
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert message in errors[0]["message"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ viewer { email", "GRAPHQL_PARSE_FAILED"),
        ("{ viewer { nonsense } }", "GRAPHQL_VALIDATION_FAILED"),
        (DEEP, "QUERY_TOO_COMPLEX"),
        ("query($id: ID!) { node(id: $id) { id } }", "BAD_USER_INPUT"),  # missing variable
    ],
)
async def test_document_errors(deployment: Deployment, query: str, code: str) -> None:
    errors = await deployment.errors(query)
    assert codes(errors) == [code], errors


async def test_not_found(deployment: Deployment) -> None:
    errors = await deployment.errors(BACKUPS, {"org": to_global_id("Organization", 777)})
    assert codes(errors) == ["NOT_FOUND"]
    assert errors[0]["path"] == ["backups"]


async def test_subscription_over_http_is_a_clear_error(deployment: Deployment) -> None:
    response = await post(
        deployment, {"query": 'subscription { restoreProgress(restoreId: "x") { status } }'}
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "websocket" in error["message"] and "graphql-transport-ws" in error["message"]
    assert "null" not in error["message"]


async def test_malformed_body_is_a_bad_request(deployment: Deployment) -> None:
    async with deployment.client() as client:
        response = await client.post(
            "/graphql", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400
    assert codes(response.json()["errors"]) == ["BAD_REQUEST"]


async def test_subscription_errors_carry_codes(deployment: Deployment) -> None:
    async with deployment.websocket() as ws:
        restore = to_global_id("Restore", 987_654)
        operation = await ws.subscribe(
            "subscription($id: ID!) { restoreProgress(restoreId: $id) { status } }",
            {"id": restore},
        )
        while True:
            message = json.loads(await ws.ws.recv())
            if message.get("id") == operation:
                break
    # A resolver's error is a ``next`` message (graphql-transport-ws keeps ``error`` for
    # operations that fail validation).
    assert message["type"] == "next", message
    errors = message["payload"]["errors"]
    assert codes(errors) == ["NOT_FOUND"]


async def test_unexpected_errors_are_internal_with_a_traceback_in_the_log(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from recoverly.resolvers import queries

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(queries, "organization_billing", broken)
    with caplog.at_level(logging.INFO):
        errors = await deployment.errors(
            "query($id: ID!) { organization(id: $id) { billing { product } } }",
            {"id": acme(deployment)},
        )
    assert codes(errors) == ["INTERNAL_SERVER_ERROR"]
    assert any(r.exc_info and "disk on fire" in str(r.exc_info[1]) for r in caplog.records)


async def test_production_masks_the_message_and_keeps_the_code(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recoverly.resolvers import queries

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret path /srv/x")

    monkeypatch.setattr(queries, "organization_billing", broken)
    settings = deployment.runtime.settings.model_copy(update={"production": True})
    runtime = dataclasses.replace(deployment.runtime, settings=settings)
    async with RunningServer(create_app(runtime=runtime), lifespan="off") as url:
        headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
        async with http_client(url, headers=headers) as client:
            billing = "query($id: ID!) { organization(id: $id) { billing { product } } }"
            body = (
                await client.post(
                    "/graphql", json={"query": billing, "variables": {"id": acme(deployment)}}
                )
            ).json()
            paging = (
                await client.post(
                    "/graphql",
                    json={"query": BACKUPS, "variables": {"org": acme(deployment), "first": 0}},
                )
            ).json()
    assert codes(body["errors"]) == ["INTERNAL_SERVER_ERROR"]
    assert "secret" not in json.dumps(body)
    assert codes(paging["errors"]) == ["BAD_USER_INPUT"]
    assert "between 1 and 100" in paging["errors"][0]["message"], "client errors stay readable"


async def test_expected_errors_log_one_line_without_traceback(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        await deployment.errors(BACKUPS, {"org": acme(deployment), "first": 0})
        await deployment.errors(BACKUPS, {"org": to_global_id("Organization", 777)})
        await deployment.errors("{ viewer { nonsense } }")
    graphql = [
        r
        for r in caplog.records
        if r.name.startswith(("recoverly", "strawberry")) and r.name != "recoverly.request"
    ]  # the request log adds one line per request, with its error codes
    assert len(graphql) == 3
    assert all(r.exc_info is None and r.levelno == logging.INFO for r in graphql)
    assert [r.getMessage().split(" at ")[0] for r in graphql] == [
        "GraphQL error BAD_USER_INPUT",
        "GraphQL error NOT_FOUND",
        "GraphQL error GRAPHQL_VALIDATION_FAILED",
    ]


async def test_restore_errors_name_the_mismatch_and_the_field(deployment: Deployment) -> None:
    backup = await latest_backup(deployment, "acme_jira")
    across = await deployment.gql(
        START, {"input": restore_input(deployment, backup, "initech_jira")}
    )
    [error] = across["startRestore"]["errors"]
    assert error["code"] == "ORGANIZATION_MISMATCH"
    assert error["field"] == ["input", "destinationId"]
    assert "Initech" not in error["message"]
    wrong_product = await deployment.gql(
        START, {"input": restore_input(deployment, backup, "acme_confluence_target")}
    )
    assert wrong_product["startRestore"]["errors"][0]["code"] == "PRODUCT_MISMATCH"


async def test_destination_busy_points_at_the_destination(deployment: Deployment) -> None:
    backup = await latest_backup(deployment, "acme_confluence")
    runner = deployment.runtime.runner
    assert runner is not None
    await runner.stop()
    try:
        first = await deployment.gql(
            START, {"input": restore_input(deployment, backup, "acme_confluence")}
        )
        assert first["startRestore"]["errors"] == []
        busy = await deployment.gql(
            START, {"input": restore_input(deployment, backup, "acme_confluence")}
        )
        preview = await deployment.gql(
            "query($input: StartRestoreInput!) { restorePreview(input: $input) "
            "{ errors { code field } } }",
            {"input": restore_input(deployment, backup, "acme_confluence")},
        )
    finally:
        await runner.start()
    [error] = busy["startRestore"]["errors"]
    assert (error["code"], error["field"]) == ("DESTINATION_BUSY", ["input", "destinationId"])
    assert preview["restorePreview"]["errors"] == [
        {"code": "DESTINATION_BUSY", "field": ["input", "destinationId"]}
    ]
    await deployment.wait_until(
        first["startRestore"]["restore"]["id"],
        "... on Restore { status }",
        lambda n: n["status"] == "COMPLETED",
    )
