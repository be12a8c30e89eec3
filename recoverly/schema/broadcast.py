"""Subscription fan-out: an event broadcast on a topic is executed and serialized once per
(event, document, variables), whatever the number of subscribers.

The event bus hands the same event object to every subscriber of a topic. A subscription
turns it into its root value with ``BROADCASTS.payload(event, convert)``, which converts each
event once and remembers it; ``BroadcastExecutor`` then executes the document once per
(root value, operation, variables) and gives every subscriber of it the same result, whose
``data`` is a ``BroadcastData``; the websocket view sends each subscriber the same frame text,
encoded once. A subscriber whose stream changes an event (see ``restore_progress_events``)
yields another object, which is executed on its own: sharing never changes what anyone sees.

Only payload types whose fields depend on the event alone (not on the request context) may be
broadcast: ``RestoreProgress`` and other progress types are.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from graphql import ExecutionResult
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

PayloadT = TypeVar("PayloadT")
Results = dict[tuple[int, str], Any]


class BroadcastData(dict[str, Any]):
    """The ``data`` of a result shared by several subscribers; encodes its frame once."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self._payload: str | None = None
        self._frames: dict[str, str] = {}

    def frame(self, operation_id: str) -> str:
        """The graphql-transport-ws ``next`` message of this data, as text."""
        found = self._frames.get(operation_id)
        if found is None:
            if self._payload is None:
                self._payload = json.dumps(self, separators=(",", ":"))
            found = (
                '{"id":' + json.dumps(operation_id) + ',"type":"next","payload":{"data":'
                + self._payload + "}}"
            )  # fmt: skip
            self._frames[operation_id] = found
        return found


class Broadcasts:
    """The root value made of each recent event, and the results executed for it.

    Entries hold their event, so an ``id`` is never reused while it is remembered; the
    oldest are forgotten first (a subscriber that far behind just executes on its own).
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._by_event: OrderedDict[int, tuple[object, Any, Results]] = OrderedDict()
        self._by_payload: dict[int, Results] = {}

    def payload(self, event: object, convert: Callable[[Any], PayloadT]) -> PayloadT:
        entry = self._by_event.get(id(event))
        if entry is not None and entry[0] is event:
            return entry[1]  # type: ignore[no-any-return]
        value = convert(event)
        results: Results = {}
        self._by_event[id(event)] = (event, value, results)
        self._by_payload[id(value)] = results
        while len(self._by_event) > self.size:
            _, (_, old, _) = self._by_event.popitem(last=False)
            self._by_payload.pop(id(old), None)
        return value

    def results_for(self, payload: object) -> Results | None:
        """The shared results of a root value made by ``payload``, else None (not broadcast).

        Remembered root values are alive, so no other object can have their ``id``."""
        return self._by_payload.get(id(payload))


BROADCASTS = Broadcasts()


class BroadcastExecutor(StrawberryGraphQLCoreExecutionContext):
    """Executes each broadcast event once per (operation, variables); others as usual."""

    def build_per_event_executor(self, payload: Any) -> Any:
        results = BROADCASTS.results_for(payload)
        if results is None:
            return super().build_per_event_executor(payload)
        key: tuple[int, str] | None = getattr(self, "_broadcast_key", None)
        if key is None:  # made once per subscription, used for each of its events
            variables = json.dumps(self.variable_values, sort_keys=True, default=str)
            key = self._broadcast_key = (id(self.operation), variables)
        build = partial(
            StrawberryGraphQLCoreExecutionContext.build_per_event_executor, self, payload
        )
        return _SharedEvent(build, results, key, self.operation)


class _SharedEvent:
    """Stands in for a per-event executor: the first subscriber executes, the others reuse."""

    def __init__(
        self, build: Callable[[], Any], results: Results, key: tuple[int, str], operation: Any
    ) -> None:
        self.build, self.results, self.key, self.operation = build, results, key, operation

    def execute_operation(self, *args: Any) -> Any:
        found = self.results.get(self.key)
        # The entry holds its operation, so its id cannot belong to another one meanwhile.
        if found is not None and found[0] is self.operation:
            return found[1]
        result = self.build().execute_operation(*args)
        if isinstance(result, ExecutionResult):
            shared: Any = _shared(result)
        else:  # awaitable: the others await the same task
            shared = asyncio.ensure_future(_shared_later(result))
        self.results[self.key] = (self.operation, shared)
        return shared


def _shared(result: ExecutionResult) -> ExecutionResult:
    if result.data is None:
        return result
    return ExecutionResult(BroadcastData(result.data), result.errors, result.extensions)


async def _shared_later(result: Any) -> ExecutionResult:
    return _shared(await result)
