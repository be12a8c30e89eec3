"""The scale-out topology as real processes on loopback, without containers: API replicas
(``recoverly serve``) and workers (``recoverly worker``) in queue mode on one PostgreSQL
database, sharing a storage directory (docker/compose.yaml runs the same)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from sqlalchemy import text

from recoverly.database import Database
from tests.clients import http_client
from tests.conftest import DEMO_TOKEN, GraphQLWebSocket
from tests.processes import ServerProcess, WorkerProcess


@dataclass
class Topology:
    data_dir: Path
    database_url: str
    db: Database
    env: dict[str, str]
    apis: list[ServerProcess] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)

    async def start(self, *, apis: int, workers: int) -> None:
        self.apis = [self._process(ServerProcess, f"api{i + 1}") for i in range(apis)]
        self.workers = [self._process(WorkerProcess, f"worker{i + 1}") for i in range(workers)]
        await asyncio.gather(*(p.start() for p in [*self.apis, *self.workers]))

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in [*self.apis, *self.workers]))

    def _process(self, kind: Any, name: str) -> Any:
        return kind(
            data_dir=self.data_dir, database_url=self.database_url, log_name=name, env=self.env
        )

    def logs(self) -> str:
        """Every process's log, for a failing test's report."""
        parts = []
        for process in [*self.apis, *self.workers]:
            if process.log_path.exists():
                parts.append(f"--- {process.log_path.name}\n{process.log_path.read_text()[-6000:]}")
        return "\n".join(parts)

    async def gql(
        self, api: ServerProcess, query: str, variables: dict[str, Any] | None = None
    ) -> Any:
        headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
        async with http_client(api.url, headers=headers, timeout=30) as client:
            response = await client.post("/graphql", json={"query": query, "variables": variables})
        body = response.json()
        assert not body.get("errors"), body
        return body["data"]

    @asynccontextmanager
    async def websocket(self, api: ServerProcess) -> AsyncIterator[GraphQLWebSocket]:
        async with websockets.connect(
            api.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
        ) as ws:
            connection = GraphQLWebSocket(ws)
            await connection.init(DEMO_TOKEN)
            yield connection

    async def job_worker(self, task_name: str, args: dict[str, Any]) -> WorkerProcess | None:
        """The worker process running the job ``task_name(**args)`` now, if any."""
        statement = text(
            "SELECT worker_id FROM procrastinate_jobs "
            "WHERE task_name = :task AND args = CAST(:args AS jsonb) AND status = 'doing'"
        )
        async with self.db.session() as session:
            conn = await session.connection()
            params = {"task": task_name, "args": json.dumps(args)}
            worker_id = (await conn.execute(statement, params)).scalar_one_or_none()
        return next((w for w in self.workers if worker_id in w.worker_ids), None)

    async def registered_workers(self) -> int:
        """procrastinate workers with a row (API processes register none)."""
        async with self.db.session() as session:
            conn = await session.connection()
            return int(
                (
                    await conn.execute(text("SELECT count(*) FROM procrastinate_workers"))
                ).scalar_one()
            )
