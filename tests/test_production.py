"""Production mode through the real server: no introspection (unless enabled), no field
suggestions, and unexpected errors masked as INTERNAL_SERVER_ERROR with an error ID that the
log holds, never SQL or server paths."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from recoverly.resolvers.global_ids import to_global_id
from tests.conftest import Deployment, deploy

INTROSPECTION = "{ __schema { queryType { name } } }"


@pytest.fixture(scope="module")
async def production(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    async with deploy(backend, tmp_path_factory.mktemp(f"prod-{backend}"), production=True) as d:
        yield d


async def errors_of(deployment: Deployment, query: str, **variables: object) -> list[dict]:
    async with deployment.client() as client:
        response = await client.post("/graphql", json={"query": query, "variables": variables})
    return response.json().get("errors") or []


async def test_introspection_is_off_in_production(production: Deployment) -> None:
    errors = await errors_of(production, INTROSPECTION)
    assert errors and "introspection" in errors[0]["message"].lower()
    assert await production.gql("{ __typename viewer { email } }")


async def test_introspection_can_be_enabled(production: Deployment) -> None:
    production.runtime.settings.introspection = True
    try:
        # The schema is built at start-up; a server built with the setting allows it.
        from recoverly.schema.schema import build_schema

        result = await build_schema(production.runtime.settings).execute(INTROSPECTION)
    finally:
        production.runtime.settings.introspection = False
    assert result.errors is None
    assert result.data == {"__schema": {"queryType": {"name": "Query"}}}


async def test_introspection_stays_on_in_development(deployment: Deployment) -> None:
    assert await deployment.gql(INTROSPECTION)


async def test_no_field_suggestions_in_production(production: Deployment) -> None:
    errors = await errors_of(production, "{ viewr { emial } }")
    assert errors
    assert all("Did you mean" not in e["message"] for e in errors)
    development = await errors_of_development_suggestion()
    assert "Did you mean" in development


async def errors_of_development_suggestion() -> str:
    from recoverly.schema.schema import build_schema
    from recoverly.settings import Settings

    result = await build_schema(Settings()).execute("{ viewr { email } }")
    assert result.errors
    return result.errors[0].message


async def test_internal_errors_are_masked_with_an_error_id(
    production: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    org = to_global_id("Organization", production.demo.organizations["acme"])
    query = "query($org: ID!) { pendingAccessReviews(organizationId: $org) { id } }"
    async with production.runtime.db.transaction() as session:
        await session.exec(text("ALTER TABLE access_review RENAME TO access_review_away"))  # type: ignore[call-overload]
    try:
        with caplog.at_level(logging.ERROR):
            errors = await production.answered_meanwhile(errors_of(production, query, org=org))
    finally:
        async with production.runtime.db.transaction() as session:
            await session.exec(text("ALTER TABLE access_review_away RENAME TO access_review"))  # type: ignore[call-overload]
    assert len(errors) == 1
    error = errors[0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    error_id = error["extensions"]["errorId"]
    assert re.fullmatch(r"[0-9a-f]{12}", error_id)
    assert error_id in error["message"]
    for leak in ("SELECT", "access_review", "sqlite", "asyncpg", "/", "Traceback"):
        assert leak not in error["message"]
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert "access_review" in str(logged[0].exc_info[1])
