"""Browser apps on other origins: CORS for the configured origins, websocket Origin checks."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from recoverly.app import create_app
from tests.clients import http_client
from tests.conftest import DEMO_TOKEN, Deployment, RunningServer

CONSOLE = "http://localhost:5173"
ELSEWHERE = "https://evil.example"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


@pytest.fixture(scope="module")
async def cors_url(deployment: Deployment) -> AsyncIterator[str]:
    """A second server on the shared system, configured with the console's origin."""
    settings = deployment.runtime.settings.model_copy(update={"cors_origins": f"{CONSOLE}/"})
    runtime = dataclasses.replace(deployment.runtime, settings=settings)
    async with RunningServer(create_app(runtime=runtime), lifespan="off") as url:
        yield url


async def test_preflight_from_the_configured_origin_succeeds(cors_url: str) -> None:
    async with http_client(cors_url) as client:
        response = await client.options("/graphql", headers={"Origin": CONSOLE, **PREFLIGHT})
        post = await client.post(
            "/graphql",
            json={"query": "{ viewer { email } }"},
            headers={"Origin": CONSOLE, "Authorization": f"Bearer {DEMO_TOKEN}"},
        )
        denied = await client.post(
            "/graphql", json={"query": "{ viewer { email } }"}, headers={"Origin": CONSOLE}
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == CONSOLE
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert post.json()["data"] == {"viewer": {"email": "admin@acme.example"}}
    assert post.headers["access-control-allow-origin"] == CONSOLE
    # The console can read why it was refused.
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == CONSOLE


@pytest.mark.parametrize("where", ["cors", "default"])
async def test_other_origins_get_no_cors_headers(
    cors_url: str, deployment: Deployment, where: str
) -> None:
    url = cors_url if where == "cors" else deployment.url
    origin = ELSEWHERE if where == "cors" else CONSOLE  # none is configured by default
    async with http_client(url) as client:
        response = await client.options("/graphql", headers={"Origin": origin, **PREFLIGHT})
        post = await client.post(
            "/graphql",
            json={"query": "{ viewer { email } }"},
            headers={"Origin": origin, "Authorization": f"Bearer {DEMO_TOKEN}"},
        )
    assert response.status_code >= 400
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]
    assert not [h for h in post.headers if h.lower().startswith("access-control-")]


async def _handshake(url: str, origin: str | None) -> str:
    ws_url = url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(
        ws_url,
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        origin=websockets.Origin(origin) if origin else None,
    ) as ws:
        payload = {"Authorization": f"Bearer {DEMO_TOKEN}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        return str(json.loads(await ws.recv())["type"])


async def test_websocket_origin_is_checked_against_the_same_list(cors_url: str) -> None:
    assert await _handshake(cors_url, CONSOLE) == "connection_ack"
    assert await _handshake(cors_url, None) == "connection_ack", "not a browser"
    assert await _handshake(cors_url, cors_url) == "connection_ack", "same origin (GraphiQL)"
    with pytest.raises(InvalidStatus) as refused:
        await _handshake(cors_url, ELSEWHERE)
    assert refused.value.response.status_code == 403
