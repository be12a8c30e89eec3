"""A job handler for the runner tests: it records each run, fails its first ``failures``
attempts, and lets a test await a number of runs or the give-up without polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recoverly.jobs import JobArgs, JobDefinition, JobInfo


@dataclass
class Recorder:
    failures: int = 0
    runs: list[tuple[JobArgs, JobInfo, float]] = field(default_factory=list)  # monotonic start
    gave_up: list[tuple[JobArgs, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, args: JobArgs, info: JobInfo) -> None:
        self.runs.append((args, info, time.monotonic()))
        self.changed.set()
        if info.attempt <= self.failures:
            raise RuntimeError(f"boom {info.attempt}")

    async def give_up(self, args: JobArgs, reason: str) -> None:
        self.gave_up.append((args, reason))
        self.changed.set()

    async def until(self, condition: Callable[[], Any], *, within: float = 20) -> None:
        """Await ``condition()`` becoming true, woken by each run and give-up."""
        async with asyncio.timeout(within):
            while not condition():
                self.changed.clear()
                await self.changed.wait()

    def definition(self, max_attempts: int = 1) -> JobDefinition:
        return JobDefinition("test.record", self.run, self.give_up, max_attempts)
