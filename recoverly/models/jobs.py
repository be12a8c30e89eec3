"""Jobs of the embedded runner: a name plus JSON arguments, persisted so a restart resumes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from recoverly.models.base import JobStatus, created_at_field, enum_field, json_field, time_field


class Job(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    args: dict[str, Any] = json_field(dict)
    status: JobStatus = enum_field(JobStatus.QUEUED, index=True)
    attempts: int = 0
    max_attempts: int = 1
    run_after: datetime = created_at_field()
    locked_by: str | None = Field(default=None, max_length=100)
    heartbeat_at: datetime | None = time_field()
    last_error: str | None = None
    created_at: datetime = created_at_field()
    finished_at: datetime | None = time_field()
