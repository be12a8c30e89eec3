"""Progress events: one EventBus interface, in-memory by default; across processes with
PostgreSQL LISTEN/NOTIFY (``recoverly.events.postgres``, imported on first use)."""

from __future__ import annotations

from typing import Any

from recoverly.events.bus import Event, EventBus, InMemoryEventBus, SubscriberQueue

__all__ = ["Event", "EventBus", "InMemoryEventBus", "PostgresEventBus", "SubscriberQueue"]


def __getattr__(name: str) -> Any:
    if name == "PostgresEventBus":
        from recoverly.events.postgres import PostgresEventBus

        return PostgresEventBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
