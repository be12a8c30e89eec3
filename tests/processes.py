"""Real processes for crash and scale-out tests: ``recoverly serve`` and ``recoverly worker``,
started on loopback and killed with SIGKILL, while ``frozen`` holds a job's row still."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import col, select

from recoverly.database import Database
from tests.clients import http_client
from tests.waiting import wait_for

# Server processes get ports from a block per pytest-xdist worker, below the kernel's
# ephemeral range (where port-0 binds land): two workers never pick the same port between
# the check here and the child's bind.
PORT_BLOCK = 400
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_next_port = itertools.cycle(
    range(20000 + PORT_BLOCK * _WORKER, 20000 + PORT_BLOCK * (_WORKER + 1))
)
for _ in range(random.randrange(PORT_BLOCK)):  # other test runs on the machine start elsewhere
    next(_next_port)


def free_port() -> int:
    """A loopback port nothing listens on, from this test process's block."""
    for _ in range(PORT_BLOCK):
        port = next(_next_port)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port left in this test process's block")


class ServerProcess:
    """``recoverly serve`` in its own process, on a free loopback port; ``env`` adds to (or
    overrides) the environment, e.g. ``RECOVERLY_JOB_RUNNER=queue`` for an API replica."""

    command = "serve"

    def __init__(
        self,
        *,
        data_dir: Path,
        database_url: str,
        log_name: str = "server",
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.env = env or {}
        self.port = free_port()
        self.log_path = data_dir / f"{log_name}-{self.port}.log"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def arguments(self) -> list[str]:
        return ["--port", str(self.port)]

    async def start(self) -> None:
        env = {
            **os.environ,
            "RECOVERLY_DATA_DIR": str(self.data_dir),
            "RECOVERLY_DATABASE_URL": self.database_url,
            # Workers wake on commit; the poll finds only jobs other processes queued.
            "RECOVERLY_JOB_POLL_SECONDS": "0.5",
            **self.env,
        }
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "recoverly.cli",
                self.command,
                *self.arguments(),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        async with http_client(self.url) as client:

            async def healthy() -> bool:
                self._check_alive()
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(healthy, within=60, what=f"{self.command} to answer /healthz", poll=0.05)

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.returncode is not None:
            raise RuntimeError(f"{self.command} exited:\n{self.log_path.read_text()}")

    async def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            async with asyncio.timeout(30):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class WorkerProcess(ServerProcess):
    """``recoverly worker`` (queue mode) in its own process; ready once its liveness file
    names its procrastinate workers."""

    command = "worker"

    def __init__(
        self,
        *,
        data_dir: Path,
        database_url: str,
        log_name: str = "worker",
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(data_dir=data_dir, database_url=database_url, log_name=log_name, env=env)
        self.beat_path = data_dir / f"{log_name}-{self.port}.alive.json"
        self.env = {"RECOVERLY_WORKER_HEARTBEAT_FILE": str(self.beat_path), **self.env}

    def arguments(self) -> list[str]:
        return []

    @property
    def worker_ids(self) -> list[int]:
        """procrastinate's IDs of this process's workers (from its liveness file)."""
        try:
            return list(json.loads(self.beat_path.read_text())["worker_ids"])
        except (OSError, ValueError):
            return []

    async def _wait_ready(self) -> None:
        def registered() -> bool:
            self._check_alive()
            return len(self.worker_ids) >= 2

        await wait_for(registered, within=60, what="the worker to register", poll=0.05)


@asynccontextmanager
async def frozen(db: Database, model: Any, row_id: int) -> AsyncIterator[Any]:
    """The row, read holding what its job needs to write it: SQLite's write lock (a
    transaction begins IMMEDIATE) or the row's lock on PostgreSQL (FOR UPDATE). Until the
    block ends, the job cannot record progress nor finish, so a kill inside it lands mid-way
    however fast the job runs."""
    async with db.transaction() as session:
        statement = select(model).where(col(model.id) == row_id).with_for_update()
        yield (await session.exec(statement)).one()
