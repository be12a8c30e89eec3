"""Shared fixtures: a seeded database per backend (SQLite always, PostgreSQL when
``RECOVERLY_TEST_POSTGRES_URL`` is set) and a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
import websockets

from recoverly.app import create_app
from recoverly.demo import DemoInfo, seed_demo, seed_demo_backups
from recoverly.services.runtime import Runtime
from recoverly.services.system import build_runtime
from recoverly.settings import Settings
from tests.s3_server import s3_bucket, s3_client, s3_credentials, s3_endpoint

__all__ = ["s3_bucket", "s3_client", "s3_credentials", "s3_endpoint"]

DEMO_TOKEN = "demo-admin-token"
OTHER_TOKEN = "globex-admin-token"
POSTGRES_URL = os.environ.get("RECOVERLY_TEST_POSTGRES_URL")


@dataclass
class PostgresDatabase:
    """A uniquely named database on the test PostgreSQL server, dropped afterwards."""

    server_url: str
    name: str

    @property
    def url(self) -> str:
        return f"{self.server_url.rsplit('/', 1)[0]}/{self.name}"

    async def _admin(self, sql: str) -> None:
        base = self.server_url.replace("postgresql+asyncpg://", "postgresql://")
        connection = await asyncpg.connect(base.rsplit("/", 1)[0] + "/postgres")
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def create(self) -> None:
        await self._admin(f'CREATE DATABASE "{self.name}"')

    async def drop(self) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


async def make_database_url(backend: str, tmp_path: Path) -> tuple[str, PostgresDatabase | None]:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'recoverly.db'}", None
    assert POSTGRES_URL is not None
    pg = PostgresDatabase(POSTGRES_URL, f"recoverly_test_{uuid.uuid4().hex[:12]}")
    await pg.create()
    return pg.url, pg


def backend_params() -> list[Any]:
    reason = "PostgreSQL tests need RECOVERLY_TEST_POSTGRES_URL (CI sets it)"
    return [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.skipif(POSTGRES_URL is None, reason=reason)),
    ]


@pytest.fixture(scope="session", params=backend_params())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class GraphQLWebSocket:
    """A minimal graphql-transport-ws client over a real websocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._ids = 0

    async def init(self, token: str) -> None:
        payload = {"Authorization": f"Bearer {token}"}
        await self.ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await self.ws.recv())["type"] == "connection_ack"

    async def subscribe(self, query: str, variables: dict[str, Any]) -> str:
        self._ids += 1
        operation_id = str(self._ids)
        message = {"query": query, "variables": variables}
        await self.ws.send(
            json.dumps({"type": "subscribe", "id": operation_id, "payload": message})
        )
        return operation_id

    async def events(self, operation_id: str) -> AsyncIterator[dict[str, Any]]:
        """The ``data`` of each ``next`` message until ``complete``; errors fail the test."""
        while True:
            message = json.loads(await self.ws.recv())
            if message.get("id") != operation_id:
                continue
            if message["type"] == "complete":
                return
            assert message["type"] == "next", message
            assert not message["payload"].get("errors"), message["payload"]["errors"]
            yield message["payload"]["data"]


@dataclass
class Deployment:
    """A seeded system and a real server in front of it."""

    runtime: Runtime
    demo: DemoInfo
    url: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"

    def client(self, token: str | None = DEMO_TOKEN) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str = DEMO_TOKEN
    ) -> dict[str, Any]:
        """Run an operation over HTTP and return ``data``; fail on GraphQL errors."""
        async with self.client(token) as client:
            response = await client.post("/graphql", json={"query": query, "variables": variables})
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    async def answered_meanwhile(self, attack: Awaitable[Any]) -> Any:
        """Run ``attack`` while a normal query is in flight; the normal one must be answered."""
        outcome, data = await asyncio.gather(attack, self.gql("{ viewer { email } }"))
        assert data == {"viewer": {"email": "admin@acme.example"}}
        return outcome

    async def errors(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str = DEMO_TOKEN
    ) -> list[dict[str, Any]]:
        """Run an operation over HTTP that must fail; return its top-level errors."""
        async with self.client(token) as client:
            response = await client.post("/graphql", json={"query": query, "variables": variables})
        errors = response.json().get("errors")
        assert errors, response.text
        return errors  # type: ignore[no-any-return]

    async def wait_until(
        self, global_id: str, fragment: str, done: Any, *, within: float = 120
    ) -> dict[str, Any]:
        """Poll ``node(id)`` with ``fragment`` until ``done(node)`` holds."""
        query = f"query($id: ID!) {{ node(id: $id) {{ id {fragment} }} }}"
        async with asyncio.timeout(within):
            while True:
                node = (await self.gql(query, {"id": global_id}))["node"]
                if done(node):
                    return node  # type: ignore[no-any-return]
                await asyncio.sleep(0.1)

    @asynccontextmanager
    async def websocket(self, token: str = DEMO_TOKEN) -> AsyncIterator[GraphQLWebSocket]:
        """A graphql-transport-ws connection, initialised with the bearer token."""
        async with websockets.connect(
            self.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
        ) as ws:
            connection = GraphQLWebSocket(ws)
            await connection.init(token)
            yield connection

    async def wait_backup(self, backup_id: str) -> dict[str, Any]:
        return await self.wait_until(
            backup_id,
            "... on Backup { status failureReason entityCounts sizeBytes location }",
            lambda node: node["status"] not in ("QUEUED", "IN_PROGRESS"),
        )


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        demo_token=DEMO_TOKEN,
        demo_other_token=OTHER_TOKEN,
        job_poll_seconds=0.05,
        retry_backoff_seconds=0.1,
        restore_chunk_size=250,
        allow_private_endpoints=True,  # the moto S3 server listens on loopback
        **overrides,
    )


@asynccontextmanager
async def deploy(backend: str, tmp_path: Path, **settings: Any) -> AsyncIterator[Deployment]:
    """A fresh database with the demo seeded, and a real server in front of it."""
    database_url, pg = await make_database_url(backend, tmp_path)
    try:
        runtime = build_runtime(make_settings(tmp_path, database_url, **settings))
        await runtime.db.migrate()
        demo = await seed_demo(runtime.db, demo_token=DEMO_TOKEN, other_token=OTHER_TOKEN)
        await seed_demo_backups(runtime, demo)
        async with RunningServer(create_app(runtime=runtime)) as url:
            yield Deployment(runtime=runtime, demo=demo, url=url)
    finally:
        if pg is not None:
            await pg.drop()


@pytest.fixture(scope="session")
async def deployment(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    """The deployment most tests share; tests that move the clock use their own."""
    async with deploy(backend, tmp_path_factory.mktemp(f"deployment-{backend}")) as deployed:
        yield deployed


@pytest.fixture(scope="module")
async def own_deployment(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    """A deployment for one test module alone (for tests that change global state)."""
    async with deploy(backend, tmp_path_factory.mktemp(f"own-{backend}")) as deployed:
        yield deployed


class RunningServer:
    """uvicorn serving ``app`` on a free loopback port within the test's event loop."""

    def __init__(self, app: Any, *, lifespan: str = "auto") -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            ws="websockets-sansio",
            timeout_graceful_shutdown=10,  # a connection left open never blocks the teardown
            ws_per_message_deflate=False,
            lifespan=lifespan,
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> str:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "asyncio"
