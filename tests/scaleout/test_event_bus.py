"""The PostgreSQL event bus: two buses stand for two processes (a worker and an API replica)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import asyncpg

from recoverly.events.postgres import MAX_PAYLOAD, PostgresEventBus, channel_of
from tests.scaleout.conftest import needs_postgres
from tests.waiting import wait_for

pytestmark = needs_postgres


@asynccontextmanager
async def buses(url: str, count: int = 2) -> AsyncIterator[list[PostgresEventBus]]:
    async with AsyncExitStack() as stack:
        started = []
        for _ in range(count):
            bus = PostgresEventBus(url, reconnect_seconds=0.1)
            await bus.start()
            stack.push_async_callback(bus.close)
            started.append(bus)
        yield started


async def test_events_published_in_one_process_reach_subscribers_in_another(
    postgres_url: str,
) -> None:
    async with buses(postgres_url) as (worker, api):
        async with api.subscribe("restore:1") as first, api.subscribe("restore:2") as other:
            for done in range(5):
                await worker.publish("restore:1", {"items_done": done, "note": "ü"})
            await worker.publish("restore:2", {"items_done": 99})
            received = [await asyncio.wait_for(first.get(), 5) for _ in range(5)]
            assert [e["items_done"] for e in received] == [0, 1, 2, 3, 4]
            assert received[0]["note"] == "ü"
            assert (await asyncio.wait_for(other.get(), 5))["items_done"] == 99
            assert first.queue.empty()
            assert api.subscriber_count("restore:1") == 1
            assert worker.subscriber_count() == 0
        assert api.subscriber_count() == 0


async def test_leaving_unlistens_and_later_events_go_nowhere(postgres_url: str) -> None:
    async with buses(postgres_url) as (worker, api):
        async with api.subscribe("restore:5") as subscription:
            await worker.publish("restore:5", {"n": 1})
            assert (await asyncio.wait_for(subscription.get(), 5))["n"] == 1
        assert api._listener is not None
        assert channel_of("restore:5") not in api._listener._listeners  # UNLISTENed
        await worker.publish("restore:5", {"n": 2})
        async with api.subscribe("restore:5") as again:
            await worker.publish("restore:5", {"n": 3})
            assert (await asyncio.wait_for(again.get(), 5))["n"] == 3


async def test_many_subscribers_come_and_go_concurrently(postgres_url: str) -> None:
    async with buses(postgres_url) as (worker, api):

        async def follow(topic: str) -> int:
            async with api.subscribe(topic) as subscription:
                ready.release()
                return int((await asyncio.wait_for(subscription.get(), 10))["n"])

        ready = asyncio.Semaphore(0)
        tasks = [asyncio.create_task(follow(f"restore:{i % 7}")) for i in range(50)]
        for _ in tasks:
            await ready.acquire()
        for i in range(7):
            await worker.publish(f"restore:{i}", {"n": i})
        results = await asyncio.gather(*tasks)
        assert sorted(results) == sorted(i % 7 for i in range(50))
        assert api.subscriber_count() == 0


async def test_a_dropped_listening_connection_comes_back(postgres_url: str) -> None:
    async with buses(postgres_url) as (worker, api), api.subscribe("restore:9") as subscription:
        assert api._listener is not None
        pid = api._listener.get_server_pid()
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()

        def listening_again() -> bool:
            listener = api._listener
            return (
                listener is not None
                and not listener.is_closed()
                and listener.get_server_pid() != pid
            )

        await wait_for(listening_again, within=10, what="the listening connection to reopen")
        await worker.publish("restore:9", {"n": 1})
        assert (await asyncio.wait_for(subscription.get(), 5))["n"] == 1


async def test_long_messages_are_shortened_to_fit_a_notification(postgres_url: str) -> None:
    async with buses(postgres_url) as (worker, api), api.subscribe("restore:3") as subscription:
        await worker.publish("restore:3", {"message": "x" * 20_000, "items_done": 1})
        event = await asyncio.wait_for(subscription.get(), 5)
    assert event["items_done"] == 1
    assert 0 < len(event["message"]) < MAX_PAYLOAD
