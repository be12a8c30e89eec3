"""The periodic loop: starts due policy runs, sweeps expired copies and checks that internal
copies still have their blobs (a batch of them per tick, going on where the last one stopped)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from recoverly.services.policies import run_due_policies
from recoverly.services.retention import check_internal_copies, sweep_expired_copies
from recoverly.services.runtime import Runtime

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._checked_after = 0  # the internal copy check goes on after this copy ID

    def kick(self) -> None:
        """Run a tick now (a policy was created) instead of at the next interval."""
        self._wake.set()

    async def tick(self) -> None:
        await run_due_policies(self.runtime)
        await sweep_expired_copies(self.runtime)
        checked = await check_internal_copies(
            self.runtime,
            after=self._checked_after,
            limit=self.runtime.settings.copy_check_batch,
        )
        self._checked_after = checked.after

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="recoverly-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            # Cleared before the tick, so a kick during the tick runs another one.
            self._wake.clear()
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), self.runtime.settings.scheduler_interval_seconds
                )
