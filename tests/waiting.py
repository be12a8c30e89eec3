"""The one way tests wait for something that has no event to await: ``wait_for`` polls a
condition until it holds, and fails naming what it waited for and what it saw last."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

POLL_SECONDS = 0.02


class WaitTimeout(AssertionError):
    """What a test waited for did not happen in time."""


async def wait_for(
    condition: Callable[[], T | Awaitable[T]],
    *,
    within: float,
    what: str,
    poll: float = POLL_SECONDS,
) -> T:
    """Call ``condition`` (plain or async) until it returns something truthy, and return that.

    After ``within`` seconds the test fails with ``what`` and the last value seen; an
    exception raised by ``condition`` fails it at once.
    """
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        last = result
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {within:g} s waiting for {what} (last: {last!r})")
        await asyncio.sleep(poll)
