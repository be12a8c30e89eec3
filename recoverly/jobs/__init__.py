"""Background jobs: one JobRunner interface; the embedded runner persists jobs in the database,
the queue runner (``recoverly.jobs.queue``, imported on first use) runs them on procrastinate."""

from __future__ import annotations

from typing import Any

from recoverly.jobs.embedded import EmbeddedJobRunner
from recoverly.jobs.runner import JobArgs, JobDefinition, JobInfo, JobRunner

__all__ = [
    "EmbeddedJobRunner",
    "JobArgs",
    "JobDefinition",
    "JobInfo",
    "JobRunner",
    "QueueJobRunner",
    "QueueOptions",
]


def __getattr__(name: str) -> Any:
    # procrastinate and psycopg are imported only by processes that use the queue.
    if name in ("QueueJobRunner", "QueueOptions"):
        from recoverly.jobs import queue

        return getattr(queue, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
