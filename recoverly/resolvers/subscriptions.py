"""Subscription streams: current state from the database, then events from the bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from recoverly.models import FINAL_RESTORE_STATUSES, Restore, RestoreStatus
from recoverly.resolvers.context import Context
from recoverly.resolvers.global_ids import decode_id
from recoverly.services.progress import percent, progress_event, restore_topic

# How long a silent stream waits before re-reading the restore (covers a worker that died).
RESYNC_SECONDS = 15.0


class RestoreNotFoundError(Exception):
    def __init__(self) -> None:
        super().__init__("restore not found")


async def _current(ctx: Context, restore_id: int) -> dict[str, Any] | None:
    # A fresh session per read: no database session is held across a yield.
    async with ctx.runtime.db.session() as session:
        row = await ctx.authenticated_scope.get(session, Restore, restore_id)
    return progress_event(row) if row is not None else None


async def restore_progress_events(ctx: Context, global_id: str) -> AsyncIterator[dict[str, Any]]:
    """The current state, then live events with ``items_done`` never decreasing; ends after
    the event that carries a final status."""
    restore_id = decode_id(global_id, "Restore")
    if restore_id is None:
        raise RestoreNotFoundError()
    # Subscribe before reading the current state, so no event falls in between.
    async with ctx.runtime.bus.subscribe(restore_topic(restore_id)) as subscription:
        current = await _current(ctx, restore_id)
        if current is None:
            raise RestoreNotFoundError()
        last = current
        yield current
        while RestoreStatus(last["status"]) not in FINAL_RESTORE_STATUSES:
            try:
                async with asyncio.timeout(RESYNC_SECONDS):  # no task per event, unlike wait_for
                    event = await subscription.get()
            except TimeoutError:
                event = await _current(ctx, restore_id) or last
                if event == last:
                    continue
            if event["items_done"] < last["items_done"]:
                done = last["items_done"]
                event = {
                    **event,
                    "items_done": done,
                    "percent": percent(done, event["items_total"]),
                }
            last = event
            yield event
