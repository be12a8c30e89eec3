"""Probes and scrapes of a real server: /readyz answers 503 naming the database while
PostgreSQL is out of reach and 200 once it is back (/healthz stays 200), names migrations
behind the code; /metrics behind a token or on a port of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from recoverly.app import create_app
from recoverly.services.system import build_runtime
from tests.clients import http_client
from tests.conftest import (
    POSTGRES_URL,
    Deployment,
    RunningServer,
    make_database_url,
    make_settings,
)
from tests.observability.test_operating import metric_samples
from tests.processes import free_port
from tests.scaleout.conftest import needs_postgres


class TcpGate:
    """A loopback port that forwards to PostgreSQL while open; closed, nothing listens there
    and the connections it carried are cut."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        await self.server.wait_closed()
        self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self.writers -= {writer, up_writer}

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


@needs_postgres
async def test_readyz_follows_the_database(tmp_path: Path) -> None:
    url, pg = await make_database_url("postgres", tmp_path)
    assert pg is not None and POSTGRES_URL is not None
    target = urlsplit(POSTGRES_URL)
    gate = TcpGate(target.hostname or "127.0.0.1", target.port or 5432)
    await gate.open()
    gated = url.replace(f"{target.hostname}:{target.port or 5432}", f"127.0.0.1:{gate.port}")
    settings = make_settings(tmp_path, gated).model_copy(update={"readiness_timeout_seconds": 2})
    runtime = build_runtime(settings)
    try:
        async with (
            RunningServer(create_app(runtime=runtime)) as base,
            http_client(base, timeout=30) as client,
        ):
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "jobs": "ok"}

            await gate.close()
            down = await client.get("/readyz")
            assert down.status_code == 503
            assert down.json()["failing"][0] == "database"
            assert down.json()["checks"]["database"].startswith("unreachable")
            assert (await client.get("/healthz")).status_code == 200

            await gate.open()
            again = await client.get("/readyz")
            assert again.status_code == 200, again.text
    finally:
        if gate.server is not None:
            await gate.close()
        await pg.drop()


async def test_readyz_names_migrations_behind_the_code(tmp_path: Path) -> None:
    database_url, _ = await make_database_url("sqlite", tmp_path)
    runtime = build_runtime(make_settings(tmp_path, database_url))
    async with RunningServer(create_app(runtime=runtime)) as base:
        async with runtime.db.engine.begin() as connection:
            await connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'old'")
        async with http_client(base) as client:
            response = await client.get("/readyz")
        port = base.rsplit(":", 1)[1]
        ready_rc, ready_out = await _cli("health", "--ready", RECOVERLY_PORT=port)
        live_rc, _ = await _cli("health", RECOVERLY_PORT=port)
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["migrations"]
    assert body["checks"]["migrations"].startswith("at old")
    assert body["checks"]["database"] == "ok"
    # `recoverly health --ready` fails and says why; plain `health` (liveness) still passes.
    assert ready_rc == 1 and json.loads(ready_out)["failing"] == ["migrations"]
    assert live_rc == 0


async def test_worker_readiness_needs_its_metrics_port() -> None:
    rc, _ = await _cli("health", "--worker", "--ready")
    assert rc == 2


async def _cli(*args: str, **env: str) -> tuple[int, str]:
    """``recoverly ARGS`` as a process, without blocking the server in this event loop."""
    environment = {k: v for k, v in os.environ.items() if k != "RECOVERLY_METRICS_PORT"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "recoverly.cli",
        *args,
        env={**environment, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_metrics_token_keeps_scrapers_out(tmp_path: Path, token: str | None) -> None:
    database_url, _ = await make_database_url("sqlite", tmp_path)
    settings = make_settings(tmp_path, database_url).model_copy(
        update={"metrics_token": "scrape-secret"}
    )
    async with (
        RunningServer(create_app(settings)) as base,
        http_client(base) as client,
    ):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        refused = await client.get("/metrics", headers=headers)
        allowed = await client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert refused.status_code == 401
    assert allowed.status_code == 200
    assert "recoverly_graphql_subscriptions" in allowed.text


async def test_metrics_on_a_port_of_their_own(tmp_path: Path) -> None:
    database_url, _ = await make_database_url("sqlite", tmp_path)
    port = free_port()
    settings = make_settings(tmp_path, database_url).model_copy(update={"metrics_port": port})
    app = create_app(settings)
    async with RunningServer(app) as base, http_client() as client:
        on_api = await client.get(f"{base}/metrics")
        separate = await client.get(f"http://127.0.0.1:{port}/metrics")
        ready = await client.get(f"http://127.0.0.1:{port}/readyz")
    assert on_api.status_code == 404
    assert separate.status_code == 200 and "recoverly_job_queue_depth" in separate.text
    assert ready.status_code == 200


async def test_open_websockets_are_counted(deployment: Deployment) -> None:
    async with deployment.websocket(), http_client(deployment.url) as client:
        metrics = metric_samples((await client.get("/metrics")).text)
    # At least this one (the shared server may still be closing an earlier test's).
    assert metrics["recoverly_websocket_connections"][0][1] >= 1.0
