"""A bounded property-based fuzz of every query and mutation (hypothesis-graphql, fixed seed,
few examples) against a production-mode server: never an HTTP 5xx, never an internal error,
never an internal detail in a message, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from recoverly.resolvers.global_ids import to_global_id
from tests.conftest import Deployment, deploy
from tests.schema_walk import graphql_schema

EXAMPLES = 5
LEAKS = ("Traceback", "SELECT ", "INSERT ", "sqlite", "asyncpg", "/tmp/", 'File "')


@pytest.fixture(scope="module")
async def target(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    async with deploy(
        backend,
        tmp_path_factory.mktemp(f"fuzz-{backend}"),
        production=True,
        rate_limit_points=10**9,
    ) as deployed:
        yield deployed


def id_values(deployment: Deployment) -> st.SearchStrategy[Any]:
    """Real IDs of both organizations' rows, wrong-type and out-of-range IDs, and junk."""
    demo = deployment.demo
    real = [to_global_id("Organization", i) for i in demo.organizations.values()]
    real += [to_global_id("ProductInstance", i) for i in demo.instances.values()]
    real += [to_global_id("Backup", i) for i in range(1, 6)]
    real += [to_global_id("Backup", 2**31), to_global_id("Restore", 2**63), ""]
    return st.one_of(st.sampled_from(real), st.text(max_size=30)).map(nodes.String)


def scalars(deployment: Deployment) -> dict[str, st.SearchStrategy[Any]]:
    moments = st.datetimes(timezones=st.one_of(st.none(), st.just(UTC)))
    return {
        "ID": id_values(deployment),
        "DateTime": st.one_of(moments.map(lambda d: d.isoformat()), st.text(max_size=30)).map(
            nodes.String
        ),
        "JSON": st.text(max_size=20).map(nodes.String),
    }


def examples(strategy: st.SearchStrategy[Any], count: int) -> list[str]:
    """``count`` documents drawn with a fixed seed (no shrinking, no example database)."""
    drawn: list[str] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(document: str) -> None:
        drawn.append(document)

    collect()
    return drawn


def documents(deployment: Deployment) -> list[str]:
    schema = graphql_schema()
    custom = scalars(deployment)
    found = []
    for root, build in ((schema.query_type, queries), (schema.mutation_type, mutations)):
        assert root is not None
        for name, definition in root.fields.items():
            modes = (Mode.POSITIVE, Mode.NEGATIVE) if definition.args else (Mode.POSITIVE,)
            for mode in modes:
                strategy = build(schema, fields=[name], custom_scalars=custom, mode=mode)
                found += examples(strategy, EXAMPLES if mode is Mode.POSITIVE else 2)
    return found


async def test_fuzzed_operations_never_fail_internally(target: Deployment) -> None:
    failures = []
    docs = documents(target)
    async with target.client() as client:
        for document in docs:
            response = await client.post("/graphql", json={"query": document})
            if response.status_code >= 500:
                failures.append((response.status_code, document, response.text[:300]))
                continue
            for error in response.json().get("errors") or []:
                code = (error.get("extensions") or {}).get("code")
                if code == "INTERNAL_SERVER_ERROR" or any(x in error["message"] for x in LEAKS):
                    failures.append((code, document, error["message"][:300]))
    assert len(docs) > 100
    assert failures == []
