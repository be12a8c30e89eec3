"""Progress events: one EventBus interface, in-memory by default."""

from recoverly.events.bus import Event, EventBus, InMemoryEventBus, Subscription

__all__ = ["Event", "EventBus", "InMemoryEventBus", "Subscription"]
