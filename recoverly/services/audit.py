"""The audit log: every mutation records who did what, when, on which objects."""

from __future__ import annotations

from typing import Any

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
