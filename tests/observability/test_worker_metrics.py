"""Scale-out: a ``recoverly worker`` process exposes its own /metrics and /readyz on
``RECOVERLY_METRICS_PORT`` (``recoverly health --worker --ready`` reads them), and an API
replica in queue mode its own, with the queue among its readiness checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recoverly.database import Database
from recoverly.settings import async_database_url
from tests.clients import http_client
from tests.processes import ServerProcess, WorkerProcess, free_port
from tests.scaleout.conftest import FAST_QUEUE_ENV, needs_postgres

pytestmark = [needs_postgres, pytest.mark.slow]


def health(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recoverly.cli", "health", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


async def test_worker_serves_metrics_and_readiness(tmp_path: Path, postgres_url: str) -> None:
    db = Database(async_database_url(postgres_url))
    await db.migrate()
    await db.dispose()
    port = free_port()
    env = {**FAST_QUEUE_ENV, "RECOVERLY_METRICS_PORT": str(port), "RECOVERLY_LOG_FORMAT": "json"}
    worker = WorkerProcess(data_dir=tmp_path, database_url=postgres_url, env=env)
    api = ServerProcess(data_dir=tmp_path, database_url=postgres_url, env=FAST_QUEUE_ENV)
    await worker.start()
    try:
        await api.start()
        async with http_client(f"http://127.0.0.1:{port}") as client:
            metrics = await client.get("/metrics")
            ready = await client.get("/readyz")
        async with http_client(api.url) as client:
            api_metrics = await client.get("/metrics")
            api_ready = await client.get("/readyz")
        checked = health("--worker", "--ready", env={"RECOVERLY_METRICS_PORT": str(port)})
    finally:
        await api.stop()
        await worker.stop()
    assert api_ready.status_code == 200 and api_ready.json()["checks"]["jobs"] == "ok"
    assert "recoverly_job_queue_depth 0.0" in api_metrics.text
    assert metrics.status_code == 200
    assert "recoverly_job_queue_depth 0.0" in metrics.text
    assert "recoverly_restores_started_total" in metrics.text
    assert ready.status_code == 200 and ready.json()["checks"]["jobs"] == "ok"
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["status"] == "ok"
    lines = [json.loads(line) for line in worker.log_path.read_text().splitlines() if line]
    assert any(line["event"] == "metrics served" for line in lines)
