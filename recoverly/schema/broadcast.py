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
from contextvars import ContextVar
from functools import partial
from typing import Any, Protocol, TypeVar

from graphql import ExecutionResult
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from websockets.frames import Frame, Opcode

PayloadT = TypeVar("PayloadT")
Results = dict[tuple[int, str], Any]


class BroadcastData(dict[str, Any]):
    """The ``data`` of a result shared by several subscribers; encodes its frame once."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self._payload: str | None = None
        self._frames: dict[str, str] = {}
        self._wire: dict[str, bytes] = {}

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

    def wire_frame(self, operation_id: str) -> bytes:
        """That message as a whole websocket text frame."""
        found = self._wire.get(operation_id)
        if found is None:
            found = self._wire[operation_id] = text_frame(self.frame(operation_id))
        return found


def text_frame(text: str) -> bytes:
    """A whole websocket text frame as a server sends it (not masked)."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


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
        shared = self._shared_event(payload)
        if shared is None:
            return super().build_per_event_executor(payload)
        CURRENT_EXECUTOR.set(self)  # for the stream's ``send_now`` (same task)
        return shared

    def _shared_event(self, payload: Any) -> _SharedEvent | None:
        results = BROADCASTS.results_for(payload)
        if results is None:
            return None
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


# The executor of the subscription whose task this is, once it executed a broadcast event,
# and the websocket operation the task serves (set by the graphql-transport-ws handler).
CURRENT_EXECUTOR: ContextVar[BroadcastExecutor | None] = ContextVar("broadcast_executor")
CURRENT_TARGET: ContextVar[FrameTarget | None] = ContextVar("broadcast_target")


class FrameTarget(Protocol):
    operation_id: str

    def write(self, frame: bytes) -> bool:
        """Send a whole websocket frame now; False if it cannot be sent that way now."""


def send_now(convert: Callable[[Any], Any]) -> Callable[[], Callable[[Any], bool] | None]:
    """For a subscription stream: in its task, after its first event was sent, a function
    that executes an event (once for all subscribers, as above) and writes this subscriber's
    frame to its connection at once; None when this connection cannot be written that way.
    It says False, and the event takes the usual way, for anything but a plain result."""

    def factory() -> Callable[[Any], bool] | None:
        executor, target = CURRENT_EXECUTOR.get(None), CURRENT_TARGET.get(None)
        if executor is None or target is None:
            return None

        def send(event: Any) -> bool:
            shared = executor._shared_event(BROADCASTS.payload(event, convert))
            if shared is None:
                return False
            result = shared.execute_operation(False)
            if isinstance(result, asyncio.Future):
                if not result.done() or result.cancelled() or result.exception():
                    return False
                result = result.result()
            if (
                not isinstance(result, ExecutionResult)
                or result.errors
                or result.extensions
                or not isinstance(result.data, BroadcastData)
            ):
                return False
            return target.write(result.data.wire_frame(target.operation_id))

        return send

    return factory
