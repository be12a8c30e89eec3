"""Restores: one row per restore, with its progress and resume checkpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from recoverly.models.base import (
    ConflictPolicy,
    RestorePhase,
    RestoreStatus,
    created_at_field,
    enum_field,
    json_field,
    time_field,
)


class Restore(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    backup_id: int = Field(foreign_key="backup.id", index=True)
    destination_id: int = Field(foreign_key="productinstance.id", index=True)
    include_attachments: bool = True
    include_users_and_groups: bool = True
    # A selective restore's ``products.selection.Selection`` (to_json); None: the whole site.
    selection: dict[str, Any] | None = json_field(lambda: None)
    conflict_policy: ConflictPolicy = enum_field(ConflictPolicy.SKIP)
    status: RestoreStatus = enum_field(RestoreStatus.QUEUED, index=True)
    phase: RestorePhase | None = enum_field(None)
    items_done: int = 0
    items_total: int = 0
    message: str | None = None
    skipped_spaces: list[str] = json_field(list)
    entity_counts: dict[str, Any] | None = json_field(lambda: None)
    checkpoint: dict[str, Any] | None = json_field(lambda: None)
    failure_reason: str | None = None
    started_by_id: int | None = Field(default=None, foreign_key="admin.id")
    created_at: datetime = created_at_field()
    started_at: datetime | None = time_field()
    finished_at: datetime | None = time_field()
