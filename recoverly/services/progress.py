"""Progress events of restores and backups: one JSON-safe shape for the bus, the API and the
database row, with a rate and an ETA from a moving window while the work runs."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from recoverly.events import EventBus
from recoverly.models import (
    FINAL_BACKUP_STATUSES,
    FINAL_RESTORE_STATUSES,
    Backup,
    BackupStatus,
    Restore,
    RestoreStatus,
    utcnow,
)
from recoverly.observability.logs import get_logger, set_phase

log = get_logger(__name__)
RATE_WINDOW_SECONDS = 10.0


def restore_topic(restore_id: int) -> str:
    return f"restore:{restore_id}"


def backup_topic(backup_id: int) -> str:
    return f"backup:{backup_id}"


def topic_of(row: Restore | Backup) -> str:
    assert row.id is not None
    return restore_topic(row.id) if isinstance(row, Restore) else backup_topic(row.id)


def percent(done: int, total: int) -> float:
    if total <= 0:
        return 0.0
    return round(min(100.0, 100.0 * done / total), 2)


def is_final(row: Restore | Backup) -> bool:
    if isinstance(row, Restore):
        return row.status in FINAL_RESTORE_STATUSES
    return row.status in FINAL_BACKUP_STATUSES


def progress_event(row: Restore | Backup) -> dict[str, Any]:
    """The row's current state as a progress event (no rate: a row holds no history)."""
    assert row.id is not None
    done = min(row.items_done, row.items_total) if row.items_total else row.items_done
    completed = row.status in (RestoreStatus.COMPLETED, BackupStatus.COMPLETED)
    event: dict[str, Any] = {
        "status": str(row.status),
        "items_done": done,
        "items_total": row.items_total,
        # Nothing to do is done at once: a completed run is 100%, even of zero items.
        "percent": 100.0 if completed else percent(done, row.items_total),
        "message": row.message,
        "items_per_second": None,
        "eta_seconds": None,
    }
    if isinstance(row, Restore):
        event["restore_id"] = row.id
        event["phase"] = str(row.phase) if row.phase else None
        moment = row.finished_at or row.started_at or row.created_at
    else:
        event["backup_id"] = row.id
        moment = row.completed_at or row.started_at or row.created_at
    event["at"] = (moment or utcnow()).isoformat()
    return event


class RateWindow:
    """Items per second over the last ``seconds``: recent speed, not the average since start."""

    def __init__(self, seconds: float = RATE_WINDOW_SECONDS) -> None:
        self.seconds = seconds
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, done: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.seconds:
            self.samples.popleft()

    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        if t1 - t0 < 0.5 or d1 <= d0:
            return None
        return round((d1 - d0) / (t1 - t0), 2)


class ProgressPublisher:
    """Publishes a restore's or a backup's progress, coalesced: an event that changes the
    status or the phase (so the first and the final one) is published at once; any other
    change waits until ``min_interval`` has passed since the last event, and only the latest
    one waiting is published then (by a timer, so it goes out even if nothing follows it).
    A status or phase change replaces whatever was waiting. ``items_done`` never decreases
    and never passes ``items_total``."""

    def __init__(self, bus: EventBus, row: Restore | Backup, *, min_interval: float = 0.5) -> None:
        self.bus = bus
        self.row = row
        self.min_interval = min_interval
        self.window = RateWindow()
        self._last: dict[str, Any] | None = None
        self._phase: str | None = None
        self._last_time = 0.0
        self._waiting: dict[str, Any] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._sending = asyncio.Lock()  # events leave in the order they were made

    async def publish(self, **changes: Any) -> None:
        row = self.row
        for name, value in changes.items():
            setattr(row, name, value)
        if self._last is not None:
            row.items_done = max(row.items_done, self._last["items_done"])
        if row.items_total:
            row.items_done = min(row.items_done, row.items_total)
        self.window.add(row.items_done)
        event = progress_event(row)
        event["at"] = utcnow().isoformat()
        phase = event.get("phase")
        if phase is not None and phase != self._phase:
            # Every later line of the job names the phase it belongs to.
            self._phase = phase
            set_phase(phase)
            if isinstance(row, Restore):
                log.info("restore phase", status=event["status"], items_total=row.items_total)
        if not is_final(row):
            rate = self.window.rate()
            event["items_per_second"] = rate
            if rate and row.items_total:
                event["eta_seconds"] = round((row.items_total - row.items_done) / rate, 1)
        last = self._last
        if last is not None and all(event[k] == last.get(k) for k in event if k != "at"):
            self._wait(None)  # back where the last event was: nothing to tell
        elif (
            last is None
            or (last["status"], last.get("phase")) != (event["status"], event.get("phase"))
            or time.monotonic() - self._last_time >= self.min_interval
        ):
            self._wait(None)
            await self._send(event)
        else:
            self._wait(event)

    def _wait(self, event: dict[str, Any] | None) -> None:
        """Hold ``event`` until the interval ends (None: hold nothing)."""
        self._waiting = event
        if event is None and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        elif event is not None and self._timer is None:
            delay = self._last_time + self.min_interval - time.monotonic()
            self._timer = asyncio.get_running_loop().call_later(delay, self._due)

    def _due(self) -> None:
        """The interval has passed: publish the event waiting (a task of its own)."""
        self._timer = None
        event, self._waiting = self._waiting, None
        if event is not None:
            self._flushing = asyncio.create_task(self._send(event), name="recoverly-progress")

    async def _send(self, event: dict[str, Any]) -> None:
        self._last, self._last_time = event, time.monotonic()
        async with self._sending:
            await self.bus.publish(topic_of(self.row), event)
