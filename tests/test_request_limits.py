"""Request limits through the real server: oversized or malformed requests get a typed
refusal at once (never a 500 or a traceback) while a normal query is answered meanwhile."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.conftest import DEMO_TOKEN, Deployment

VIEWER = "{ viewer { email } }"


async def answered_meanwhile(deployment: Deployment, attack: Awaitable[Any]) -> Any:
    return await deployment.answered_meanwhile(attack)


def assert_typed(response: httpx.Response, status: int, code: str = "BAD_REQUEST") -> None:
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert errors[0]["extensions"]["code"] == code
    assert "Traceback" not in response.text


async def post(deployment: Deployment, **kwargs: Any) -> httpx.Response:
    async with deployment.client() as client:
        return await client.post("/graphql", **kwargs)


async def test_body_over_the_limit_is_413(deployment: Deployment) -> None:
    padding = "x" * (deployment.runtime.settings.max_request_bytes + 1)
    body = json.dumps({"query": VIEWER, "variables": {"pad": padding}})
    response = await answered_meanwhile(
        deployment,
        post(deployment, content=body, headers={"Content-Type": "application/json"}),
    )
    assert_typed(response, 413)


async def test_streamed_body_over_the_limit_is_413(deployment: Deployment) -> None:
    limit = deployment.runtime.settings.max_request_bytes

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ viewer { email } }", "pad": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = await answered_meanwhile(
        deployment,
        post(deployment, content=chunks(), headers={"Content-Type": "application/json"}),
    )
    assert_typed(response, 413)


async def test_large_variables_are_refused(deployment: Deployment) -> None:
    size = deployment.runtime.settings.max_variables_bytes + 10
    response = await answered_meanwhile(
        deployment, post(deployment, json={"query": VIEWER, "variables": {"pad": "x" * size}})
    )
    assert_typed(response, 400, "BAD_USER_INPUT")
    assert "variables" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("depth", [100, 10_000])
async def test_deeply_nested_json_is_400_not_500(deployment: Deployment, depth: int) -> None:
    body = '{"query": "{ viewer { email } }", "variables": {"a": ' + "[" * depth + "]" * depth
    body += "}}"
    response = await answered_meanwhile(
        deployment, post(deployment, content=body, headers={"Content-Type": "application/json"})
    )
    assert_typed(response, 400)


async def test_deeply_nested_variables_over_get_are_400(deployment: Deployment) -> None:
    variables = '{"a": ' + "[" * 5000 + "]" * 5000 + "}"
    async with deployment.client() as client:
        response = await client.get("/graphql", params={"query": VIEWER, "variables": variables})
    assert response.status_code == 400


async def test_malformed_json_and_non_object_bodies_are_400(deployment: Deployment) -> None:
    for body in ("{", "[]", '"query"', "[" + json.dumps({"query": VIEWER}) + "]"):
        response = await post(
            deployment, content=body, headers={"Content-Type": "application/json"}
        )
        assert_typed(response, 400)


async def _ws_send_after_init(deployment: Deployment, frame: str | bytes) -> tuple[int, str]:
    async with websockets.connect(
        deployment.ws_url,
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        max_size=None,
    ) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {DEMO_TOKEN}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}
        await ws.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


@pytest.mark.parametrize(
    "frame",
    [
        "[]",
        '["subscribe"]',
        '{"type": "subscribe", "payload": "q"}',
        '{"type": "subscribe", "id": "1", "payload": "q"}',
        '{"type": "subscribe", "id": "1", "payload": {"query": 1}}',
        '{"type": "subscribe", "id": "1", "payload": {"query": "{ viewer { email } }",'
        ' "variables": []}}',
        '{"type": 7}',
        '{"type": "nonsense"}',
        "[" * 10_000 + "]" * 10_000,
        "not json",
        b"\x00binary",
    ],
)
async def test_malformed_websocket_messages_close_4400_without_traceback(
    deployment: Deployment, frame: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        code, reason = await answered_meanwhile(deployment, _ws_send_after_init(deployment, frame))
    assert code == 4400, reason
    assert reason
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_websocket_message_over_the_limit_is_closed_1009(deployment: Deployment) -> None:
    size = deployment.runtime.settings.max_websocket_message_bytes + 1
    frame = json.dumps({"type": "ping", "payload": {"pad": "x" * size}})
    code, _ = await answered_meanwhile(deployment, _ws_send_after_init(deployment, frame))
    assert code == 1009
