"""The job runner interface: a job is a name plus JSON arguments, never a callable.

Handlers are registered by name when the system is built; any runner (the embedded one
here, a distributed queue on PostgreSQL later) looks them up by that name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.observability import tracing
from recoverly.observability.logs import bound
from recoverly.observability.metrics import QueueStats

JobArgs = dict[str, Any]


@dataclass(frozen=True)
class JobInfo:
    """What a handler learns about the run it is in."""

    job_id: int
    attempt: int
    max_attempts: int


Handler = Callable[[JobArgs, JobInfo], Awaitable[None]]
GiveUpHandler = Callable[[JobArgs, str], Awaitable[None]]


@dataclass(frozen=True)
class JobDefinition:
    name: str
    run: Handler
    on_give_up: GiveUpHandler | None = None
    max_attempts: int = 1


class JobRunner(ABC):
    def __init__(self) -> None:
        self.definitions: dict[str, JobDefinition] = {}

    def register(self, definition: JobDefinition) -> None:
        self.definitions[definition.name] = definition

    @abstractmethod
    async def enqueue(
        self,
        name: str,
        args: JobArgs,
        *,
        session: AsyncSession | None = None,
        run_after: datetime | None = None,
    ) -> int:
        """Queue a job; with ``session`` it commits (or rolls back) with the caller's work."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def queue_stats(self) -> QueueStats:
        """How many jobs wait, and for how long the oldest due one has (for metrics)."""

    @abstractmethod
    async def check(self) -> str | None:
        """Why this runner cannot do its work right now (for readiness), or None."""

    @abstractmethod
    async def stop(self) -> None: ...

    def definition(self, name: str) -> JobDefinition:
        try:
            return self.definitions[name]
        except KeyError:
            raise LookupError(f"no job handler registered for {name!r}") from None


@contextmanager
def job_scope(name: str, args: JobArgs, info: JobInfo) -> Iterator[JobArgs]:
    """One run of a job: its IDs, attempt and phase on every log line, its span continuing
    the trace that queued it; yields the handler's arguments (without the trace carrier)."""
    ids = {key: value for key, value in args.items() if key.endswith("_id")}
    values = {"job": name, "job_id": info.job_id, "attempt": info.attempt, **ids}
    attributes = {f"recoverly.{key}": value for key, value in values.items()}
    with bound(**values, phase="start"), tracing.job_span(name, args, attributes):
        yield {key: value for key, value in args.items() if key != tracing.TRACE_KEY}
