"""Subscribers joining together share the read of the current state, but never one that
began before they asked (it could predate an event they did not get from the bus)."""

from __future__ import annotations

import asyncio

from recoverly.resolvers.subscriptions import SharedReads


class Row:
    """A row whose reads can be held mid-way; each read returns the value at its start."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0
        self.began = asyncio.Event()
        self.release = asyncio.Event()

    async def read(self) -> int:
        self.reads += 1
        seen = self.value
        self.began.set()
        await self.release.wait()
        return seen


async def test_reads_asked_before_one_begins_are_that_one_query() -> None:
    row, shared = Row(), SharedReads[int]()
    asked = [asyncio.ensure_future(shared.get("r", row.read)) for _ in range(3)]
    await row.began.wait()
    row.release.set()
    assert await asyncio.gather(*asked) == [0, 0, 0]
    assert row.reads == 1


async def test_who_asks_while_a_read_runs_gets_the_next_read() -> None:
    row, shared = Row(), SharedReads[int]()
    early = asyncio.ensure_future(shared.get("r", row.read))
    await row.began.wait()  # the read has seen 0
    row.value = 1  # an event is committed after it began
    late = [asyncio.ensure_future(shared.get("r", row.read)) for _ in range(3)]
    await asyncio.sleep(0)
    assert row.reads == 1  # the late ones wait for the running read to end
    row.release.set()
    assert await early == 0
    assert await asyncio.gather(*late) == [1, 1, 1]  # one read, begun after they asked
    assert row.reads == 2


async def test_a_failed_read_fails_its_sharers_and_the_next_read_is_fresh() -> None:
    shared = SharedReads[int]()
    calls = 0
    began, gate = asyncio.Event(), asyncio.Event()

    async def read() -> int:
        nonlocal calls
        calls += 1
        began.set()
        await gate.wait()
        if calls == 1:
            raise ConnectionError("the database went away")
        return 7

    first = asyncio.ensure_future(shared.get("r", read))
    await began.wait()
    waiting = asyncio.ensure_future(shared.get("r", read))
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(first, waiting, return_exceptions=True)
    assert isinstance(results[0], ConnectionError) and results[1] == 7
    assert await shared.get("r", read) == 7  # nothing is kept once a read returns
    assert calls == 3
