"""Scale-out fixtures: a fresh PostgreSQL database per test (skipped when no server answers,
see tests/conftest.py), and queue-mode settings with short heartbeats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import make_database_url, needs_postgres

__all__ = ["needs_postgres"]

# Fast failure detection for tests: heartbeats every 0.25 s, a worker silent for 2 s is dead.
FAST_QUEUE_ENV = {
    "RECOVERLY_JOB_RUNNER": "queue",
    "RECOVERLY_JOB_POLL_SECONDS": "0.5",
    "RECOVERLY_QUEUE_HEARTBEAT_SECONDS": "0.25",
    "RECOVERLY_JOB_STALE_SECONDS": "2",
    "RECOVERLY_QUEUE_STALLED_CHECK_SECONDS": "1",
    "RECOVERLY_WORKER_SHUTDOWN_SECONDS": "5",
}


@pytest.fixture
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    """A uniquely named database, dropped after the test."""
    url, pg = await make_database_url("postgres", tmp_path)
    assert pg is not None
    try:
        yield url
    finally:
        await pg.drop()
