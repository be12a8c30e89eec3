"""Readiness: can this process do its work now? The database answers a query, its schema is
at the newest migration, and the job runner is alive (embedded) or the queue reachable."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

from recoverly.database import head_revision
from recoverly.observability.logs import get_logger
from recoverly.services.runtime import Runtime

log = get_logger(__name__)
OK = "ok"


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        return all(value == OK for value in self.checks.values())

    @property
    def failing(self) -> list[str]:
        return [name for name, value in self.checks.items() if value != OK]

    def as_json(self) -> dict[str, object]:
        status = "ok" if self.ready else "unavailable"
        return {"status": status, "failing": self.failing, "checks": self.checks}


async def readiness(runtime: Runtime) -> Readiness:
    """Every check, each bounded by ``readiness_timeout_seconds``; failures are logged."""
    timeout = runtime.settings.readiness_timeout_seconds
    checks: dict[str, str] = {}
    try:
        revision = await _bounded(runtime.db.schema_revision(), timeout)
    except Exception as error:
        checks["database"] = f"unreachable ({_describe(error)})"
        checks["migrations"] = "unknown: the database is unreachable"
    else:
        checks["database"] = OK
        head = head_revision()
        checks["migrations"] = OK if revision == head else f"at {revision}, code needs {head}"
    if runtime.runner is None:
        checks["jobs"] = "no job runner"
    else:
        try:
            checks["jobs"] = await _bounded(runtime.runner.check(), timeout) or OK
        except Exception as error:
            checks["jobs"] = f"unreachable ({_describe(error)})"
    result = Readiness(checks)
    if not result.ready:
        log.warning("not ready", failing=result.failing, checks=checks)
    return result


async def _bounded(check: Awaitable[str | None], seconds: float) -> str | None:
    async with asyncio.timeout(seconds):
        return await check


def _describe(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return type(error).__name__
