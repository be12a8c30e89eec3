"""Subscription streams: current state from the database, then events from the bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from recoverly.models import FINAL_BACKUP_STATUSES, FINAL_RESTORE_STATUSES, Backup, Restore
from recoverly.resolvers.context import Context
from recoverly.resolvers.errors import NotFoundError
from recoverly.resolvers.global_ids import decode_id
from recoverly.services.progress import backup_topic, percent, progress_event, restore_topic

# How long a silent stream waits before re-reading the row (covers a worker that died).
RESYNC_SECONDS = 15.0
T = TypeVar("T")
ProgressRowT = TypeVar("ProgressRowT", Backup, Restore)


class SharedReads(Generic[T]):
    """Concurrent reads of the same key share one query, and a read answers only those who
    asked before it began: who asks once one is under way shares the next, which begins when
    the running one ends. So a subscriber, which asks once it is subscribed, never gets a
    state read before that (an event published in between would be in neither); and nothing
    is kept once a read returns."""

    def __init__(self) -> None:
        self._running: dict[Hashable, _Read[T]] = {}
        self._next: dict[Hashable, tuple[asyncio.Future[T], Callable[[], Awaitable[T]]]] = {}

    async def get(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key)
        waiting = self._next.get(key)
        if running is not None and not running.begun:
            future = running.future  # its query is not made yet: it will see what we see
        elif waiting is not None:
            future = waiting[0]
        elif running is not None:
            future = asyncio.get_running_loop().create_future()
            self._next[key] = (future, read)
        else:
            future = self._start(key, read)
        return await asyncio.shield(future)  # one subscriber leaving cancels no one's read

    def _start(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        running = self._running[key] = _Read(read)
        running.future.add_done_callback(lambda _: self._ended(key))
        return running.future

    def _ended(self, key: Hashable) -> None:
        del self._running[key]
        waiting = self._next.pop(key, None)
        if waiting is not None:
            promised, read = waiting
            self._start(key, read).add_done_callback(lambda done: _settle(promised, done))


class _Read(Generic[T]):
    """A running read, and whether it has begun (made its query, or is about to)."""

    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self.begun = False
        self.future: asyncio.Future[T] = asyncio.ensure_future(self._run(read))

    async def _run(self, read: Callable[[], Awaitable[T]]) -> T:
        self.begun = True
        return await read()


def _settle(promised: asyncio.Future[T], done: asyncio.Future[T]) -> None:
    if promised.done():
        return
    if done.cancelled():
        promised.cancel()
    elif (error := done.exception()) is not None:
        promised.set_exception(error)
    else:
        promised.set_result(done.result())


CURRENT_STATES: SharedReads[tuple[int, dict[str, Any]] | None] = SharedReads()


async def _current(ctx: Context, model: type[ProgressRowT], row_id: int) -> dict[str, Any] | None:
    """The row's current state if the caller may see it. Subscribers joining together share
    the query and the event (so it is executed once for all of them too)."""
    db = ctx.runtime.db

    async def read() -> tuple[int, dict[str, Any]] | None:
        # A fresh session per read: no database session is held across a yield.
        async with db.session() as session:
            row = await session.get(model, row_id)
        if row is None:
            return None
        return row.organization_id, progress_event(row)

    found = await CURRENT_STATES.get((id(db), model.__name__, row_id), read)
    if found is None or not ctx.authenticated_scope.allows(found[0]):
        return None
    return found[1]


# Made in the subscriber's task once its first event was sent: a function that sends one
# event to this subscriber at once, from the publisher's task, or says it cannot (False).
SendNow = Callable[[dict[str, Any]], bool]
SenderFactory = Callable[[], SendNow | None]


async def restore_progress_events(
    ctx: Context, global_id: str, send_now: SenderFactory | None = None
) -> AsyncIterator[dict[str, Any]]:
    """The restore's current state, then live events; ends after a final status."""
    restore_id = decode_id(global_id, "Restore")
    if restore_id is None:
        raise NotFoundError("restore")
    events = _progress_events(
        ctx, Restore, restore_id, restore_topic(restore_id), FINAL_RESTORE_STATUSES, send_now
    )
    async for event in events:
        yield event


async def backup_progress_events(
    ctx: Context, global_id: str, send_now: SenderFactory | None = None
) -> AsyncIterator[dict[str, Any]]:
    """The backup's current state, then live events; ends after a final status."""
    backup_id = decode_id(global_id, "Backup")
    if backup_id is None:
        raise NotFoundError("backup")
    events = _progress_events(
        ctx, Backup, backup_id, backup_topic(backup_id), FINAL_BACKUP_STATUSES, send_now
    )
    async for event in events:
        yield event


async def _progress_events(
    ctx: Context,
    model: type[ProgressRowT],
    row_id: int,
    topic: str,
    final: frozenset[str],
    send_now: SenderFactory | None,
) -> AsyncIterator[dict[str, Any]]:
    """``items_done`` never decreases and never passes ``items_total``.

    With ``send_now``, the events in between (not the first, not a final one, none that
    ``_steady`` would change) are sent by the publisher's delivery while this stream waits,
    instead of waking this stream for each: the same frames, in the same order."""
    # Subscribe before reading the current state, so no event falls in between.
    async with ctx.runtime.bus.subscribe(topic) as subscription:
        current = await _current(ctx, model, row_id)
        if current is None:
            raise NotFoundError(model.__name__.lower())
        last = current
        yield current
        send = send_now() if send_now is not None else None
        deadline: asyncio.Timeout | None = None

        def directly(event: dict[str, Any]) -> bool:
            nonlocal last
            if send is None or event["status"] in final or _steady(event, last) is not event:
                return False
            if not send(event):
                return False
            last = event
            if deadline is not None:  # the stream is not silent: no re-read
                deadline.reschedule(asyncio.get_running_loop().time() + RESYNC_SECONDS)
            return True

        while last["status"] not in final:
            try:
                async with asyncio.timeout(RESYNC_SECONDS) as deadline:  # no task per event
                    event = await subscription.get(directly if send is not None else None)
            except TimeoutError:
                event = await _current(ctx, model, row_id) or last
                if event == last:
                    continue
            last = event = _steady(event, last)
            yield event


def _steady(event: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    total = event["items_total"] or last["items_total"]
    done = max(event["items_done"], last["items_done"])
    if total:
        done = min(done, total)
    if (done, total) == (event["items_done"], event["items_total"]):
        return event
    return {**event, "items_done": done, "items_total": total, "percent": percent(done, total)}
