"""Restore progress events: one JSON-safe shape for the bus, the API and the database row."""

from __future__ import annotations

import time
from typing import Any

from recoverly.events import EventBus
from recoverly.models import Restore, utcnow
from recoverly.observability.logs import get_logger, set_phase

log = get_logger(__name__)


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


class ProgressPublisher:
    """Publishes a restore's progress, throttled: on every status or phase change, and
    otherwise when progress moved by about 1% or half a second passed."""

    def __init__(self, bus: EventBus, restore: Restore, *, min_interval: float = 0.5) -> None:
        self.bus = bus
        self.restore = restore
        self.min_interval = min_interval
        self._last: dict[str, Any] | None = None
        self._last_time = 0.0

    async def publish(self, *, force: bool = False, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self.restore, name, value)
        # items_done never decreases, whatever a resumed phase reports.
        if self._last is not None:
            self.restore.items_done = max(self.restore.items_done, self._last["items_done"])
        event = progress_event(self.restore)
        event["at"] = utcnow().isoformat()
        if self._last is None or event["phase"] != self._last["phase"]:
            # Every later line of the job names the phase it belongs to.
            set_phase(event["phase"])
            log.info("restore phase", status=event["status"], items_total=event["items_total"])
        if force or self._due(event):
            await self.bus.publish(restore_topic(event["restore_id"]), event)
            self._last, self._last_time = event, time.monotonic()

    def _due(self, event: dict[str, Any]) -> bool:
        last = self._last
        if last is None or (last["status"], last["phase"]) != (event["status"], event["phase"]):
            return True
        if event["message"] != last["message"] and event["percent"] == last["percent"]:
            return time.monotonic() - self._last_time >= self.min_interval
        return (
            event["percent"] - last["percent"] >= 1.0
            or time.monotonic() - self._last_time >= self.min_interval
        )
