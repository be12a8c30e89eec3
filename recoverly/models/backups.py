"""Backup policies, backups and the copies of each backup per storage location."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from recoverly.models.base import (
    BackupLocation,
    BackupStatus,
    CopyStatus,
    ProductKey,
    Schedule,
    StorageMode,
    created_at_field,
    enum_field,
    json_field,
    time_field,
)


class BackupPolicy(SQLModel, table=True):
    __tablename__ = "backup_policy"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    name: str = Field(default="", max_length=200)
    schedule: Schedule = enum_field(Schedule.ONCE)
    include_attachments: bool = True
    include_users_and_groups: bool = True
    include_personal_spaces: bool = False
    storage: StorageMode = enum_field(StorageMode.INTERNAL)
    customer_bucket: dict[str, Any] | None = json_field(lambda: None)
    active: bool = True
    next_run_at: datetime | None = time_field(index=True)
    last_run_at: datetime | None = time_field()
    created_by_id: int | None = Field(default=None, foreign_key="admin.id")
    created_at: datetime = created_at_field()


class Backup(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    policy_id: int | None = Field(default=None, foreign_key="backup_policy.id", index=True)
    product: ProductKey = enum_field()
    status: BackupStatus = enum_field(BackupStatus.QUEUED, index=True)
    include_attachments: bool = True
    include_users_and_groups: bool = True
    include_personal_spaces: bool = False
    size_bytes: int | None = None
    checksum: str | None = Field(default=None, max_length=64)
    entity_counts: dict[str, Any] | None = json_field(lambda: None)
    failure_reason: str | None = None
    attempts: int = 0
    items_done: int = 0  # rows read from the site so far
    items_total: int = 0  # rows the site held when the backup was queued
    message: str | None = None
    created_by_id: int | None = Field(default=None, foreign_key="admin.id")
    created_at: datetime = created_at_field()
    started_at: datetime | None = time_field()
    completed_at: datetime | None = time_field()


class BackupCopy(SQLModel, table=True):
    """One stored copy of a backup's archive: internal storage or the customer's bucket."""

    __tablename__ = "backup_copy"

    id: int | None = Field(default=None, primary_key=True)
    backup_id: int = Field(foreign_key="backup.id", index=True)
    location: BackupLocation = enum_field()
    key: str = Field(max_length=500)
    bucket: dict[str, Any] | None = json_field(lambda: None)
    status: CopyStatus = enum_field(CopyStatus.AVAILABLE)
    size_bytes: int = 0
    created_at: datetime = created_at_field()
    expires_at: datetime | None = time_field(index=True)
    expired_at: datetime | None = time_field()
