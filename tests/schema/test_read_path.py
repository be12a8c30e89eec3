"""The read path: reads beside a write transaction, and the authentication cache."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import websockets
from sqlalchemy import text

from recoverly.models import ApiToken
from recoverly.services.auth import hash_token, new_token, revoke_token
from tests.conftest import Deployment

VIEWER = "{ viewer { email organizations { name } } }"


async def test_reads_complete_while_a_write_transaction_is_open(
    deployment: Deployment, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's write lock; PostgreSQL readers never wait for writers")
    db = deployment.runtime.db
    async with db.transaction() as writer:
        await writer.exec(text("UPDATE organization SET name = name"))  # type: ignore[call-overload]
        # Guards against a hang only: a read that waited for the write lock would wait for
        # this very transaction, which stays open until the reads are done.
        async with asyncio.timeout(20):
            async with db.session() as reader:
                count = (await reader.exec(text("SELECT count(*) FROM organization"))).one()  # type: ignore[call-overload]
            data = await deployment.gql(VIEWER)
    assert count[0] >= 3
    assert sorted(o["name"] for o in data["viewer"]["organizations"]) == ["Acme", "Initech"]


async def _add_token(deployment: Deployment, **fields: object) -> str:
    token = new_token()
    async with deployment.runtime.db.transaction() as session:
        session.add(
            ApiToken(admin_id=deployment.demo.admin_id, token_hash=hash_token(token), **fields)
        )
    return token


async def _status(deployment: Deployment, token: str) -> int:
    async with deployment.client(token) as client:
        response = await client.post("/graphql", json={"query": VIEWER})
    return response.status_code


async def test_a_revoked_token_is_refused_on_the_next_request(deployment: Deployment) -> None:
    token = await _add_token(deployment, name="revoked-next")
    assert await _status(deployment, token) == 200
    assert deployment.runtime.auth_cache.get(hash_token(token), now=deployment.runtime.now())
    assert await revoke_token(deployment.runtime, token) is True
    assert await _status(deployment, token) == 401
    assert await revoke_token(deployment.runtime, token) is False


async def test_a_cached_token_is_refused_once_it_expires(own_deployment: Deployment) -> None:
    runtime = own_deployment.runtime
    now = runtime.now()
    token = await _add_token(own_deployment, name="expiring", expires_at=now + timedelta(hours=1))
    assert await _status(own_deployment, token) == 200
    assert runtime.auth_cache.get(hash_token(token), now=now) is not None
    clock = runtime.clock
    runtime.clock = lambda: clock() + timedelta(hours=2)
    try:
        assert await _status(own_deployment, token) == 401
    finally:
        runtime.clock = clock
    expired = await _add_token(own_deployment, name="expired", expires_at=now - timedelta(1))
    assert await _status(own_deployment, expired) == 401


async def test_websocket_connections_are_refused_with_a_revoked_token(
    deployment: Deployment,
) -> None:
    token = await _add_token(deployment, name="revoked-ws")
    async with deployment.websocket(token):
        pass
    await revoke_token(deployment.runtime, token)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with deployment.websocket(token):
            pass
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
