"""The audit log: every mutation records who did what, when, on which objects."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, cast, exists, func, literal
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.models import AuditEvent


def record(
    session: AsyncSession,
    *,
    organization_id: int,
    actor_id: int | None,
    action: str,
    target_type: str,
    target_ids: list[int],
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the caller's transaction, so it commits with the change itself."""
    event = AuditEvent(
        organization_id=organization_id,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_ids=target_ids,
        details=details or {},
    )
    session.add(event)
    return event


def targets(dialect: str, target_type: str, target_id: int) -> ColumnElement[bool]:
    """Events about one object: its type, and its ID among the event's JSON ``target_ids``."""
    ids = col(AuditEvent.target_ids)
    if dialect == "postgresql":
        contains = cast(ids, JSONB).contains([target_id])
    else:
        values = func.json_each(ids).table_valued("value")
        contains = exists(select(literal(1)).select_from(values).where(values.c.value == target_id))
    return and_(col(AuditEvent.target_type) == target_type, contains)
