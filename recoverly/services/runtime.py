"""The running system's parts, handed to services explicitly rather than found globally."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Protocol

from recoverly.database import Database
from recoverly.events import EventBus, InMemoryEventBus
from recoverly.jobs import JobRunner
from recoverly.models import utcnow
from recoverly.observability.metrics import Metrics
from recoverly.services.auth import AuthCache
from recoverly.services.rate_limits import RateLimiter
from recoverly.services.secrets import SecretBox, secret_box
from recoverly.settings import Settings
from recoverly.storage import BlobStore


class SchedulerHandle(Protocol):
    """What the runtime knows of the scheduler (``services.scheduler.Scheduler``): naming
    the class would make every service that gets a runtime depend on all the services the
    scheduler runs."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    def kick(self) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    db: Database
    internal_store: BlobStore
    bus: EventBus = field(default_factory=InMemoryEventBus)
    runner: JobRunner | None = None
    scheduler: SchedulerHandle | None = None
    metrics: Metrics = field(default_factory=Metrics)
    clock: Callable[[], datetime] = utcnow
    rate_limiter: RateLimiter = field(default_factory=RateLimiter)
    auth_cache: AuthCache = field(default_factory=lambda: AuthCache(ttl=0))

    @cached_property
    def secrets(self) -> SecretBox:
        """Seals customer credentials at rest (keys from the settings)."""
        return secret_box(self.settings)

    def now(self) -> datetime:
        return self.clock()

    def kick_scheduler(self) -> None:
        if self.scheduler is not None:
            self.scheduler.kick()
