"""Transport and authentication: HTTP 401, websocket 4401, health check, GraphiQL offline."""

from __future__ import annotations

import json
import re

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.conftest import DEMO_TOKEN, Deployment

VIEWER = "{ viewer { email } }"


async def test_healthz_needs_no_token(deployment: Deployment) -> None:
    async with deployment.client(token=None) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_graphql_without_valid_token_is_401(deployment: Deployment, token: str) -> None:
    async with deployment.client(token=token) as client:
        post = await client.post("/graphql", json={"query": VIEWER})
        get = await client.get("/graphql", params={"query": VIEWER})
    assert post.status_code == get.status_code == 401
    assert "Bearer" in post.headers["www-authenticate"]
    assert "data" not in post.json()


async def test_malformed_authorization_header_is_401(deployment: Deployment) -> None:
    async with deployment.client(token=None) as client:
        response = await client.post(
            "/graphql", json={"query": VIEWER}, headers={"Authorization": DEMO_TOKEN}
        )
    assert response.status_code == 401


async def test_queries_work_over_get_and_post(deployment: Deployment) -> None:
    async with deployment.client() as client:
        post = await client.post("/graphql", json={"query": VIEWER})
        get = await client.get("/graphql", params={"query": VIEWER})
    assert post.json()["data"] == get.json()["data"] == {"viewer": {"email": "admin@acme.example"}}


async def test_mutations_are_refused_over_get(deployment: Deployment) -> None:
    async with deployment.client() as client:
        response = await client.get("/graphql", params={"query": "mutation { __typename }"})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "message": "mutations are not allowed when using GET",
            "extensions": {"code": "BAD_REQUEST"},
        }
    ]


async def _ws_init(deployment: Deployment, payload: object) -> tuple[int | None, object]:
    async with websockets.connect(
        deployment.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        try:
            reply = json.loads(await ws.recv())
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None, None
        return None, reply


@pytest.mark.parametrize(
    "payload", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": DEMO_TOKEN}]
)
async def test_websocket_without_valid_token_is_closed_4401(
    deployment: Deployment, payload: object
) -> None:
    code, reply = await _ws_init(deployment, payload)
    assert code == 4401, reply


async def test_websocket_with_token_is_acknowledged(deployment: Deployment) -> None:
    code, reply = await _ws_init(deployment, {"Authorization": f"Bearer {DEMO_TOKEN}"})
    assert code is None
    assert reply == {"type": "connection_ack"}


async def test_websocket_subscribe_before_init_is_closed_4401(deployment: Deployment) -> None:
    async with websockets.connect(
        deployment.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": VIEWER}}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_graphiql_page_loads_only_local_assets(deployment: Deployment) -> None:
    async with deployment.client(token=None) as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert not re.search(r"https?://", page.text)
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets, "the page references its scripts and styles"
        for asset in assets:
            assert asset.startswith("/"), asset
            response = await client.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 1000, asset


async def test_too_deep_queries_are_refused(deployment: Deployment) -> None:
    nested = "organization { " * 14 + "name" + " }" * 14
    query = "{ viewer { organizations { products { instances { " + nested + " } } } } }"
    async with deployment.client() as client:
        response = await client.post("/graphql", json={"query": query})
    errors = response.json()["errors"]
    assert "exceeds maximum operation depth" in errors[0]["message"]
