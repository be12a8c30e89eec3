"""Events across processes: PostgreSQL LISTEN/NOTIFY.

A topic is a notification channel. Publishing is ``pg_notify`` on a small pool (delivered
when it commits, in order per publisher); each process that has subscribers keeps one
listening connection and LISTENs only to the topics someone subscribed to, so a subscriber
on any API replica receives the events published by any worker. When the listening
connection drops, it is opened again and every topic listened to again; events published
meanwhile are lost, which subscribers cover by re-reading the current state.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from recoverly.events.bus import Event, EventBus, SubscriberQueue

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "recoverly:"
MAX_CHANNEL = 63  # PostgreSQL identifiers
MAX_PAYLOAD = 7900  # NOTIFY payloads must stay under 8000 bytes
LONG_STRING = 500


class PostgresEventBus(EventBus):
    def __init__(self, dsn: str, *, reconnect_seconds: float = 1.0) -> None:
        self.dsn = dsn
        self.reconnect_seconds = reconnect_seconds
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._topics: dict[str, set[SubscriberQueue]] = {}
        self._channels: dict[str, str] = {}  # channel -> topic
        self._lock = asyncio.Lock()  # one operation at a time on the listening connection
        self._reconnecting: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        self._closing = False
        self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=4)

    async def close(self) -> None:
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        async with self._lock:
            if self._listener is not None:
                await self._listener.close()
                self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def publish(self, topic: str, event: Event) -> None:
        """Best effort: a lost event must not fail the job that publishes it (subscribers
        re-read the current state when a stream stays silent)."""
        if self._pool is None:
            raise RuntimeError("the event bus is not started")
        payload = encode(event)
        try:
            await self._pool.execute("SELECT pg_notify($1, $2)", channel_of(topic), payload)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("event bus: an event on %s was lost: %s", topic, error)

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[SubscriberQueue]:
        subscription = SubscriberQueue()
        await self._add(topic, subscription)
        try:
            yield subscription
        finally:
            await asyncio.shield(self._remove(topic, subscription))

    def subscriber_count(self, topic: str | None = None) -> int:
        if topic is not None:
            return len(self._topics.get(topic, ()))
        return sum(len(s) for s in self._topics.values())

    # --- Listening -----------------------------------------------------------------------

    async def _add(self, topic: str, subscription: SubscriberQueue) -> None:
        async with self._lock:
            listener = await self._connected()
            subscribers = self._topics.setdefault(topic, set())
            if not subscribers:
                await listener.add_listener(channel_of(topic), self._on_notify)
                self._channels[channel_of(topic)] = topic
            subscribers.add(subscription)

    async def _remove(self, topic: str, subscription: SubscriberQueue) -> None:
        async with self._lock:
            subscribers = self._topics.get(topic)
            if subscribers is None:
                return
            subscribers.discard(subscription)
            if subscribers:
                return
            del self._topics[topic]
            channel = channel_of(topic)
            self._channels.pop(channel, None)
            if self._listener is not None and not self._listener.is_closed():
                with contextlib.suppress(asyncpg.PostgresError, OSError):
                    await self._listener.remove_listener(channel, self._on_notify)

    async def _connected(self) -> asyncpg.Connection:
        """The listening connection, opened on first use (workers only publish); it becomes
        the bus's once it listens on every channel, so no one sees it half set up."""
        if self._listener is None or self._listener.is_closed():
            listener = await asyncpg.connect(self.dsn)
            listener.add_termination_listener(self._on_terminated)
            try:
                for channel in self._channels:
                    await listener.add_listener(channel, self._on_notify)
            except BaseException:
                listener.terminate()
                raise
            self._listener = listener
        return self._listener

    def _on_notify(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        topic = self._channels.get(channel)
        if topic is None:
            return
        event = json.loads(payload)
        for subscription in list(self._topics.get(topic, ())):
            subscription.deliver(event)

    def _on_terminated(self, _connection: Any) -> None:
        if self._closing or (self._reconnecting and not self._reconnecting.done()):
            return
        log.warning("event bus: the listening connection closed; reconnecting")
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while not self._closing:
            try:
                async with self._lock:
                    if self._channels:
                        await self._connected()
                return
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("event bus: reconnecting failed (%s); trying again", error)
                await asyncio.sleep(self.reconnect_seconds)


def channel_of(topic: str) -> str:
    """The notification channel of a topic (hashed when too long for an identifier)."""
    channel = CHANNEL_PREFIX + topic
    if len(channel.encode()) <= MAX_CHANNEL:
        return channel
    return CHANNEL_PREFIX + hashlib.sha256(topic.encode()).hexdigest()[:40]


def encode(event: Event) -> str:
    """The event as JSON, long strings shortened to fit in a notification."""
    payload = json.dumps(event, default=str, separators=(",", ":"))
    if len(payload.encode()) <= MAX_PAYLOAD:
        return payload
    shortened = {
        key: value[:LONG_STRING] + "…"
        if isinstance(value, str) and len(value) > LONG_STRING
        else value
        for key, value in event.items()
    }
    payload = json.dumps(shortened, default=str, separators=(",", ":"))
    if len(payload.encode()) > MAX_PAYLOAD:
        raise ValueError(f"event too large for a notification ({len(payload)} bytes)")
    return payload
