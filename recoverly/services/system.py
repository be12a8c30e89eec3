"""Building, starting and stopping the running system (database, event bus, job runner)."""

from __future__ import annotations

from recoverly.database import Database
from recoverly.events import InMemoryEventBus
from recoverly.services.runtime import Runtime
from recoverly.settings import Settings


def build_runtime(settings: Settings) -> Runtime:
    return Runtime(
        settings=settings,
        db=Database(settings.resolved_database_url()),
        bus=InMemoryEventBus(),
    )


async def start_runtime(runtime: Runtime, *, migrate: bool = True) -> None:
    if migrate:
        await runtime.db.migrate()
    await runtime.bus.start()
    if runtime.runner is not None:
        await runtime.runner.start()


async def stop_runtime(runtime: Runtime) -> None:
    if runtime.runner is not None:
        await runtime.runner.stop()
    await runtime.bus.close()
    await runtime.db.dispose()
