"""Shared fixtures: a seeded database per backend (SQLite always, PostgreSQL whenever a server
answers) and a real uvicorn server on loopback.

PostgreSQL: ``RECOVERLY_TEST_POSTGRES_URL`` if set (CI sets it), else a local server on
127.0.0.1:5432 if it accepts connections; without one the PostgreSQL tests are skipped with
that reason. Each test database is created from a template seeded once per test process, so
a deployment costs a file copy (SQLite) or a ``CREATE DATABASE ... TEMPLATE`` (PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psycopg
import pytest
import uvicorn
import websockets
from sqlmodel import select

from recoverly.app import create_app
from recoverly.database import Database
from recoverly.demo import DemoInfo, seed_demo, seed_demo_backups
from recoverly.models import BackupCopy, BackupPolicy
from recoverly.services.runtime import Runtime
from recoverly.services.system import build_runtime
from recoverly.settings import Settings, async_database_url
from tests.clients import http_client
from tests.s3_server import s3_bucket, s3_client, s3_credentials, s3_endpoint
from tests.waiting import wait_for

__all__ = ["s3_bucket", "s3_client", "s3_credentials", "s3_endpoint"]

DEMO_TOKEN = "demo-admin-token"
OTHER_TOKEN = "globex-admin-token"
LOCAL_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _find_postgres() -> tuple[str | None, str]:
    """The PostgreSQL server the tests use, or None and why there is none."""
    configured = os.environ.get("RECOVERLY_TEST_POSTGRES_URL")
    if configured:
        return configured, ""
    try:
        with psycopg.connect(LOCAL_POSTGRES_URL, connect_timeout=2) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        reason = (
            "PostgreSQL tests need a server: set RECOVERLY_TEST_POSTGRES_URL, or run one that "
            f"accepts {LOCAL_POSTGRES_URL} ({type(error).__name__})"
        )
        return None, reason
    return LOCAL_POSTGRES_URL, ""


POSTGRES_URL, NO_POSTGRES = _find_postgres()
needs_postgres = pytest.mark.skipif(POSTGRES_URL is None, reason=NO_POSTGRES)


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
    """An empty database: a file under ``tmp_path``, or a new PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'recoverly.db'}", None
    assert POSTGRES_URL is not None
    pg = PostgresDatabase(POSTGRES_URL, f"recoverly_test_{uuid.uuid4().hex[:12]}")
    await pg.create()
    return pg.url, pg


@asynccontextmanager
async def empty_database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database with no rows (a copy of this process's migrated template),
    dropped (PostgreSQL) afterwards."""
    url, pg = await TEMPLATES.clone_empty(backend, tmp_path)
    db = Database(async_database_url(url))
    try:
        yield db
    finally:
        await db.dispose()
        if pg is not None:
            await pg.drop()


def backend_params() -> list[Any]:
    return ["sqlite", pytest.param("postgres", marks=needs_postgres)]


@pytest.fixture(scope="session", params=backend_params())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class SeededTemplate:
    """A data directory and database with the demo (and its backups), seeded once per test
    process, backend and scale; deployments start from copies of it. Scale 0: migrated, no
    rows (``empty_database``)."""

    data_dir: Path
    database_url: str
    demo: DemoInfo | None
    pg: PostgresDatabase | None


class Templates:
    """The seeded templates of this test process, made on first use, dropped at its end."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, int, bool], SeededTemplate] = {}
        self._lock: asyncio.Lock | None = None
        self._root: Path | None = None

    def configure(self, root: Path) -> None:
        self._root = root

    async def get(self, backend: str, *, scale: int = 1, backups: bool = True) -> SeededTemplate:
        if self._lock is None:
            self._lock = asyncio.Lock()
        key = (backend, scale, backups)
        async with self._lock:
            if key not in self._made:
                self._made[key] = await self._seed(*key)
            return self._made[key]

    async def _seed(self, backend: str, scale: int, backups: bool) -> SeededTemplate:
        assert self._root is not None, "the session fixture configures the templates"
        data_dir = self._root / f"template-{backend}-{scale}-{backups}"
        data_dir.mkdir(parents=True)
        database_url, pg = await make_database_url(backend, data_dir)
        runtime = build_runtime(make_settings(data_dir, database_url), with_scheduler=False)
        demo = None
        try:
            await runtime.db.migrate()
            if scale > 0:
                demo = await seed_demo(
                    runtime.db, scale=scale, demo_token=DEMO_TOKEN, other_token=OTHER_TOKEN
                )
            if demo is not None and backups:
                await seed_demo_backups(runtime, demo)
        finally:
            await runtime.db.dispose()  # SQLite: checkpoints the WAL into the file
        return SeededTemplate(data_dir, database_url, demo, pg)

    async def clone(
        self, backend: str, data_dir: Path, *, scale: int = 1, backups: bool = True
    ) -> tuple[str, PostgresDatabase | None, DemoInfo]:
        """A copy of the template in ``data_dir``: its database URL, its PostgreSQL database
        (to drop afterwards) and the demo's IDs."""
        template = await self.get(backend, scale=scale, backups=backups)
        assert template.demo is not None
        database_url, pg = await self._copy(template, data_dir)
        await _move_local_buckets(database_url, template.data_dir, data_dir)
        return database_url, pg, template.demo

    async def clone_empty(
        self, backend: str, data_dir: Path
    ) -> tuple[str, PostgresDatabase | None]:
        """A copy of the migrated database without rows: its URL and PostgreSQL database."""
        return await self._copy(await self.get(backend, scale=0, backups=False), data_dir)

    async def _copy(
        self, template: SeededTemplate, data_dir: Path
    ) -> tuple[str, PostgresDatabase | None]:
        await asyncio.to_thread(shutil.copytree, template.data_dir, data_dir, dirs_exist_ok=True)
        if template.pg is None:
            return f"sqlite:///{data_dir / 'recoverly.db'}", None
        pg = PostgresDatabase(template.pg.server_url, f"recoverly_test_{uuid.uuid4().hex[:12]}")
        await pg._admin(f'CREATE DATABASE "{pg.name}" TEMPLATE "{template.pg.name}"')
        return pg.url, pg

    async def drop(self) -> None:
        for template in self._made.values():
            if template.pg is not None:
                await template.pg.drop()
        self._made.clear()


async def _move_local_buckets(database_url: str, old: Path, new: Path) -> None:
    """Point the copied rows that name a local directory of the template at the copy's."""
    db = Database(async_database_url(database_url))
    try:
        async with db.transaction() as session:
            for model, column in ((BackupPolicy, "customer_bucket"), (BackupCopy, "bucket")):
                for row in (await session.exec(select(model))).all():
                    place = getattr(row, column)
                    root = (place or {}).get("root")
                    if isinstance(root, str) and root.startswith(str(old)):
                        moved = str(new) + root[len(str(old)) :]
                        setattr(row, column, {**place, "root": moved})
                        session.add(row)
    finally:
        await db.dispose()


TEMPLATES = Templates()


@pytest.fixture(scope="session", autouse=True)
async def _templates(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Templates]:
    TEMPLATES.configure(tmp_path_factory.mktemp("templates"))
    yield TEMPLATES
    await TEMPLATES.drop()


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
        return http_client(self.url, headers=headers, timeout=30)

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

        async def node() -> dict[str, Any] | None:
            found = (await self.gql(query, {"id": global_id}))["node"]
            return found if done(found) else None

        return await wait_for(
            node, within=within, what=f"{global_id} to reach its state", poll=0.05
        )

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
        job_poll_seconds=0.5,  # workers wake on commit; the poll finds only other processes' jobs
        retry_backoff_seconds=0.1,
        restore_chunk_size=250,
        allow_private_endpoints=True,  # the moto S3 server listens on loopback
        **overrides,
    )


@asynccontextmanager
async def deploy(backend: str, tmp_path: Path, **settings: Any) -> AsyncIterator[Deployment]:
    """A copy of the seeded demo (its database, storage and keys), and a real server in
    front of it."""
    database_url, pg, demo = await TEMPLATES.clone(backend, tmp_path)
    try:
        runtime = build_runtime(make_settings(tmp_path, database_url, **settings))
        await runtime.db.migrate()
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
        task = self.task = asyncio.create_task(self.server.serve())

        def started() -> bool:
            if task.done():
                task.result()  # the server's start-up error, if any
            return bool(self.server.started)

        await wait_for(started, within=30, what="uvicorn to start", poll=0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "asyncio"


def _module_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    """Modules with tests marked ``slow`` (server processes) first: ``make test`` hands each
    module to one worker (``--dist loadscope``, module-scoped fixtures made once) in this
    order, so that no worker starts a long module while the others have nothing left."""
    yield
    slow = {_module_of(item) for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: _module_of(item) not in slow)
