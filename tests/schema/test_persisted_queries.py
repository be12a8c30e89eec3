"""Automatic persisted queries through the real endpoint, and registered documents only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recoverly.schema.persisted_queries import document_hash
from recoverly.schema.schema import build_schema
from recoverly.settings import Settings
from tests.conftest import Deployment

VIEWER = "query PersistedViewer { viewer { email } }"


async def _post(deployment: Deployment, body: dict[str, Any]) -> dict[str, Any]:
    async with deployment.client() as client:
        response = await client.post("/graphql", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _persisted(query: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": document_hash(query)}}


async def test_persisted_query_round_trip(deployment: Deployment) -> None:
    query = VIEWER + " # round trip"
    unknown = await _post(deployment, {"extensions": _persisted(query)})
    assert unknown["errors"][0]["message"] == "PersistedQueryNotFound"
    assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    sent = await _post(deployment, {"query": query, "extensions": _persisted(query)})
    assert sent["data"] == {"viewer": {"email": "admin@acme.example"}}
    assert "errors" not in sent
    by_hash = await _post(deployment, {"extensions": _persisted(query)})
    assert by_hash["data"] == sent["data"] and "errors" not in by_hash
    # A document sent by its hash is costed like one sent in full.
    assert by_hash["extensions"]["cost"]["requested"] == sent["extensions"]["cost"]["requested"]


async def test_a_hash_that_does_not_match_its_query_is_refused(deployment: Deployment) -> None:
    body = {"query": VIEWER, "extensions": _persisted(VIEWER + " # other")}
    refused = await _post(deployment, body)
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    again = await _post(deployment, {"extensions": _persisted(VIEWER + " # other")})
    assert again["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_only_registered_documents_run_when_asked(tmp_path: Path) -> None:
    registered = "query Registered { __typename }"
    manifest = {"format": "apollo-persisted-query-manifest", "version": 1,
                "operations": [{"id": "x", "name": "Registered", "type": "query",
                                "body": registered}]}  # fmt: skip
    path = tmp_path / "persisted.json"
    path.write_text(json.dumps(manifest))
    schema = build_schema(Settings(persisted_queries_file=path, persisted_queries_only=True))
    in_full = await schema.execute(registered)
    assert in_full.errors is None and in_full.data == {"__typename": "Query"}
    by_hash = await schema.execute(None, operation_extensions=_persisted(registered))
    assert by_hash.errors is None and by_hash.data == {"__typename": "Query"}
    for other in ("{ __typename }", "query Registered { __typename } "):
        refused = await schema.execute(other, operation_extensions=_persisted(other))
        assert refused.errors and refused.errors[0].extensions == {
            "code": "PERSISTED_QUERY_NOT_FOUND"
        }
        plain = await schema.execute(other)
        assert plain.errors and plain.errors[0].extensions == {"code": "PERSISTED_QUERY_NOT_FOUND"}
