"""The event buses (``recoverly.events``): what a subscription receives, in which order, what
leaving it does, and the PostgreSQL bus's channels, payload limits and lifecycle.
(tests/scaleout/test_event_bus.py covers the PostgreSQL bus across two processes and its
reconnection.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from recoverly.events import EventBus, InMemoryEventBus, SubscriberQueue
from recoverly.events.postgres import (
    CHANNEL_PREFIX,
    MAX_CHANNEL,
    MAX_PAYLOAD,
    PostgresEventBus,
    channel_of,
    encode,
)
from tests.conftest import make_database_url
from tests.scaleout.conftest import needs_postgres, postgres_url

__all__ = ["postgres_url"]


@pytest.fixture(params=["memory", pytest.param("postgres", marks=needs_postgres)])
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventBus]:
    """Each bus as one process sees it: it publishes and subscribes."""
    if request.param == "memory":
        yield InMemoryEventBus()
        return
    url, pg = await make_database_url("postgres", tmp_path)
    assert pg is not None
    started = PostgresEventBus(url, reconnect_seconds=0.1)
    try:
        await started.start()
        yield started
    finally:
        await started.close()
        await pg.drop()


async def received(subscription: SubscriberQueue, count: int) -> list[dict]:
    return [await asyncio.wait_for(subscription.get(), 5) for _ in range(count)]


async def test_every_subscriber_of_a_topic_gets_its_events_in_order(bus: EventBus) -> None:
    async with (
        bus.subscribe("restore:1") as first,
        bus.subscribe("restore:1") as second,
        bus.subscribe("restore:2") as elsewhere,
    ):
        for n in range(50):
            await bus.publish("restore:1", {"items_done": n})
        await bus.publish("restore:2", {"items_done": -1})
        expected = [{"items_done": n} for n in range(50)]
        assert await received(first, 50) == expected
        assert await received(second, 50) == expected
        assert await received(elsewhere, 1) == [{"items_done": -1}]
        assert first.queue.empty() and second.queue.empty() and elsewhere.queue.empty()


async def test_events_are_json_values_as_published(bus: EventBus) -> None:
    event = {"status": "IN_PROGRESS", "percent": 12.5, "message": "ü ✓", "eta": None, "n": [1]}
    async with bus.subscribe("backup:7") as subscription:
        await bus.publish("backup:7", event)
        assert await received(subscription, 1) == [event]


async def test_an_event_published_before_subscribing_is_not_replayed(bus: EventBus) -> None:
    await bus.publish("restore:3", {"n": 1})
    async with bus.subscribe("restore:3") as subscription:
        await bus.publish("restore:3", {"n": 2})
        assert await received(subscription, 1) == [{"n": 2}]
        assert subscription.queue.empty()


async def test_subscriber_counts_follow_subscriptions(bus: EventBus) -> None:
    assert bus.subscriber_count() == 0
    async with bus.subscribe("restore:4"), bus.subscribe("restore:4"):
        async with bus.subscribe("restore:5"):
            assert bus.subscriber_count("restore:4") == 2
            assert bus.subscriber_count("restore:5") == 1
            assert bus.subscriber_count() == 3
        assert bus.subscriber_count("restore:5") == 0
        assert bus.subscriber_count() == 2
    assert bus.subscriber_count() == 0
    assert bus.subscriber_count("restore:4") == 0


async def test_leaving_stops_delivery_even_when_the_block_fails(bus: EventBus) -> None:
    with pytest.raises(LookupError):
        async with bus.subscribe("restore:6") as left:
            raise LookupError("the subscriber went away")
    assert bus.subscriber_count() == 0
    async with bus.subscribe("restore:6") as stayed:
        await bus.publish("restore:6", {"n": 1})
        assert await received(stayed, 1) == [{"n": 1}]
    assert left.queue.empty()


def test_a_full_subscription_drops_its_oldest_events() -> None:
    subscription = SubscriberQueue(maxsize=3)
    for n in range(5):
        subscription.deliver({"n": n})
    assert [subscription.queue.get_nowait()["n"] for _ in range(3)] == [2, 3, 4]


async def test_a_slow_subscriber_keeps_the_newest_thousand_events() -> None:
    bus = InMemoryEventBus()
    async with bus.subscribe("restore:8") as subscription:
        for n in range(1005):
            await bus.publish("restore:8", {"n": n})
        # Delivery happens within publish: nothing is pending elsewhere.
        assert subscription.queue.qsize() == 1000
        assert (await subscription.get())["n"] == 5


def test_channels_are_prefixed_topics_or_hashes_that_fit_an_identifier() -> None:
    assert channel_of("restore:12") == f"{CHANNEL_PREFIX}restore:12"
    long_topics = [f"restore:{'x' * 80}:{n}" for n in range(3)]
    channels = [channel_of(topic) for topic in long_topics]
    assert all(len(c.encode()) <= MAX_CHANNEL and c.startswith(CHANNEL_PREFIX) for c in channels)
    assert len(set(channels)) == 3
    assert channel_of(long_topics[0]) == channels[0]  # the same topic, the same channel
    edge = "t" * (MAX_CHANNEL - len(CHANNEL_PREFIX))
    assert channel_of(edge) == CHANNEL_PREFIX + edge
    assert channel_of(edge + "t") != CHANNEL_PREFIX + edge + "t"


def test_payloads_are_compact_json_and_shortened_only_when_too_long() -> None:
    event = {"status": "COMPLETED", "message": "done ✓"}
    assert json.loads(encode(event)) == event
    assert " " not in encode({"a": 1, "b": [1, 2]})
    long = {"message": "m" * 20_000, "items_done": 3}
    shortened = json.loads(encode(long))
    assert shortened["items_done"] == 3
    assert shortened["message"] == "m" * 500 + "…"
    assert len(encode(long).encode()) <= MAX_PAYLOAD
    many = {f"key{n}": "v" * 400 for n in range(30)}  # each short, too many together
    with pytest.raises(ValueError, match="event too large for a notification"):
        encode(many)


async def test_publishing_on_a_postgres_bus_that_was_not_started_is_an_error() -> None:
    bus = PostgresEventBus("postgresql://127.0.0.1:1/none")
    with pytest.raises(RuntimeError, match="the event bus is not started"):
        await bus.publish("restore:1", {"n": 1})


@needs_postgres
async def test_a_closed_postgres_bus_releases_its_connections(postgres_url: str) -> None:
    bus = PostgresEventBus(postgres_url, reconnect_seconds=0.1)
    await bus.start()
    async with bus.subscribe("restore:9") as subscription:
        await bus.publish("restore:9", {"n": 1})
        assert await received(subscription, 1) == [{"n": 1}]
        listener = bus._listener
    await bus.close()
    assert listener is not None and listener.is_closed()
    assert (bus._pool, bus._listener, bus._reconnecting) == (None, None, None)
    with pytest.raises(RuntimeError, match="not started"):
        await bus.publish("restore:9", {"n": 2})
