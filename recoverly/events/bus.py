"""The event bus: progress events published by jobs, consumed by subscriptions.

Publishers and subscribers share nothing but a topic name and JSON-safe dicts, so an
implementation across processes (PostgreSQL LISTEN/NOTIFY, Redis) can replace the
in-memory one without changing either side.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

Event = dict[str, Any]
log = logging.getLogger(__name__)


class SubscriberQueue:
    """A bounded queue of events for one subscriber; the oldest is dropped when full.

    A subscriber waiting in ``get`` with nothing queued may pass ``direct``: each event is
    then offered to it first, as it is delivered, and queued only if it returns False (after
    which the waiting ``get`` returns it, and nothing more is offered until the next ``get``,
    so events never overtake one another)."""

    def __init__(self, maxsize: int = 1000) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.direct: Callable[[Event], bool] | None = None

    def deliver(self, event: Event) -> None:
        direct = self.direct
        if direct is not None:
            try:
                if direct(event):
                    return
            except Exception:
                log.exception("delivering an event directly failed; it is queued")
            self.direct = None
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(event)

    async def get(self, direct: Callable[[Event], bool] | None = None) -> Event:
        if direct is not None and self.queue.empty():
            self.direct = direct
        try:
            return await self.queue.get()
        finally:
            self.direct = None


class EventBus(ABC):
    @abstractmethod
    async def publish(self, topic: str, event: Event) -> None: ...

    @abstractmethod
    def subscribe(self, topic: str) -> Any:
        """An async context manager yielding a ``SubscriberQueue``; leaving it unsubscribes."""

    async def start(self) -> None:  # noqa: B027  (optional hook)
        """Connect to the transport, if any."""

    async def close(self) -> None:  # noqa: B027  (optional hook)
        """Release the transport, if any."""

    @abstractmethod
    def subscriber_count(self, topic: str | None = None) -> int: ...


class InMemoryEventBus(EventBus):
    """Events within one process: the embedded default."""

    def __init__(self) -> None:
        self._topics: dict[str, set[SubscriberQueue]] = {}

    async def publish(self, topic: str, event: Event) -> None:
        for subscription in list(self._topics.get(topic, ())):
            subscription.deliver(event)

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[SubscriberQueue]:
        subscription = SubscriberQueue()
        self._topics.setdefault(topic, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._topics.get(topic)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._topics[topic]

    def subscriber_count(self, topic: str | None = None) -> int:
        if topic is not None:
            return len(self._topics.get(topic, ()))
        return sum(len(s) for s in self._topics.values())
