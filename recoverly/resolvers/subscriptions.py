"""Subscription streams: current state from the database, then events from the bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any

from sqlalchemy import select

from recoverly.models import FINAL_RESTORE_STATUSES, Restore, RestoreStatus
from recoverly.resolvers.context import Context
from recoverly.resolvers.global_ids import decode_id
from recoverly.services.progress import percent, progress_event, restore_topic

# How long a silent stream waits before re-reading the restore (covers a worker that died).
RESYNC_SECONDS = 15.0


class RestoreNotFoundError(Exception):
    def __init__(self) -> None:
        super().__init__("restore not found")


class SharedReads:
    """Concurrent reads of the same key share one query; nothing is kept once it returns,
    so a read never answers older data than a query of its own would."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[Any]] = {}

    async def get(self, key: Hashable, read: Callable[[], Awaitable[Any]]) -> Any:
        future = self._running.get(key)
        if future is None:
            future = asyncio.ensure_future(read())
            self._running[key] = future
            future.add_done_callback(lambda _: self._running.pop(key, None))
        return await asyncio.shield(future)  # one subscriber leaving cancels no one's read


CURRENT_STATES = SharedReads()


async def _current(ctx: Context, restore_id: int) -> dict[str, Any] | None:
    """The restore's current state if the caller may see it. Subscribers joining together
    share the query and the event (so it is executed once for all of them too)."""
    db = ctx.runtime.db

    async def read() -> tuple[int, dict[str, Any]] | None:
        table = Restore.__table__  # type: ignore[attr-defined]
        # A fresh session per read: no database session is held across a yield.
        async with db.session() as session:
            connection = await session.connection()
            row = (await connection.execute(select(table).where(table.c.id == restore_id))).first()
        return None if row is None else (row.organization_id, progress_event(row))

    found = await CURRENT_STATES.get((id(db), restore_id), read)
    if found is None or not ctx.authenticated_scope.allows(found[0]):
        return None
    return found[1]  # type: ignore[no-any-return]


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
