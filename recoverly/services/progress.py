"""Restore progress events: one JSON-safe shape for the bus, the API and the database row."""

from __future__ import annotations

from typing import Any

from recoverly.models import Restore, utcnow


def restore_topic(restore_id: int) -> str:
    return f"restore:{restore_id}"


def percent(done: int, total: int) -> float:
    if total <= 0:
        return 0.0
    return round(min(100.0, 100.0 * done / total), 2)


def progress_event(restore: Restore) -> dict[str, Any]:
    """The restore's current state as a progress event."""
    assert restore.id is not None
    return {
        "restore_id": restore.id,
        "status": str(restore.status),
        "phase": str(restore.phase) if restore.phase else None,
        "items_done": restore.items_done,
        "items_total": restore.items_total,
        "percent": percent(restore.items_done, restore.items_total),
        "message": restore.message,
        "at": (
            restore.finished_at or restore.started_at or restore.created_at or utcnow()
        ).isoformat(),
    }
