"""The audit log: who did what, when, on which objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from recoverly.models.base import created_at_field, json_field


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="admin.id")
    action: str = Field(max_length=64, index=True)
    target_type: str = Field(max_length=64)
    target_ids: list[int] = json_field(list)
    details: dict[str, Any] = json_field(dict)
    created_at: datetime = created_at_field()
