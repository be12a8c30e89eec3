"""Real server processes for crash tests: start ``recoverly serve``, kill it with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``recoverly serve`` in its own process, on a free loopback port."""

    def __init__(self, *, data_dir: Path, database_url: str, log_name: str = "server") -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = free_port()
        self.log_path = data_dir / f"{log_name}-{self.port}.log"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = {
            **os.environ,
            "RECOVERLY_DATA_DIR": str(self.data_dir),
            "RECOVERLY_DATABASE_URL": self.database_url,
            "RECOVERLY_JOB_POLL_SECONDS": "0.05",
        }
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "recoverly.cli",
                "serve",
                "--port",
                str(self.port),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        await self._wait_healthy()

    async def _wait_healthy(self) -> None:
        assert self.process is not None
        async with httpx.AsyncClient(base_url=self.url) as client, asyncio.timeout(60):
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"server exited:\n{self.log_path.read_text()}")
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)

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
