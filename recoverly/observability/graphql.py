"""GraphQL operations seen from outside: what each operation was (name, type, outcome, error
codes, admin) for its metrics and log line, and the tracing extension.

An HTTP request's operation is accounted for by the request log (``requests.py``) when the
response has been sent, with the request's duration: the schema hands the request its
operation's execution context as it makes it (``attach_to_request``), so HTTP operations run
no extension of this module at all (an extension, even without hooks, costs every request
more than the accounting itself). A websocket's operations (subscriptions above all) count
and time themselves (``OperationObserver``), and log a line each.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode
from opentelemetry import trace
from strawberry.extensions import LifecycleStep, SchemaExtension
from strawberry.extensions.tracing import OpenTelemetryExtension
from strawberry.types.execution import ExecutionContext
from strawberry.types.graphql import OperationType

from recoverly.observability.logs import CURRENT_REQUEST, get_logger
from recoverly.observability.metrics import Metrics

log = get_logger("recoverly.request")


def attach_to_request(context: ExecutionContext) -> None:
    """Give the HTTP request being served the execution context of its operation, which the
    request log describes (``Operation.of``) once the response is sent."""
    request = CURRENT_REQUEST.get()
    if request is not None and not request.websocket:
        request.operation = context


def on_websocket() -> bool:
    """Whether the operation being made runs on a websocket connection."""
    request = CURRENT_REQUEST.get()
    return request is not None and request.websocket


@dataclass(slots=True)
class Operation:
    """What an operation was, as its metrics and log line say it."""

    name: str  # bounded (``Metrics.operation_label``)
    kind: str  # query, mutation, subscription or unknown
    outcome: str  # ok, error (top-level errors) or rejected (mutation payload errors)
    codes: list[str]
    admin_id: int | None

    @classmethod
    def of(cls, context: ExecutionContext, metrics: Metrics) -> Operation:
        name, kind = _operation(context)
        errors = _top_level_errors(context)
        codes = [_error_code(error) for error in errors]
        if kind == "mutation":
            codes += _payload_codes(context)
        outcome = "error" if errors else "rejected" if codes else "ok"
        admin = getattr(context.context, "admin", None)
        return cls(metrics.operation_label(name), kind, outcome, codes, getattr(admin, "id", None))

    def observe(self, metrics: Metrics, seconds: float) -> None:
        metrics.observe_operation(
            name=self.name, kind=self.kind, seconds=seconds, outcome=self.outcome, codes=self.codes
        )


class OperationObserver(SchemaExtension):
    """Metrics and a log line for each operation outside an HTTP request (a websocket's),
    timed from its start to its end (a subscription: its lifetime)."""

    def __init__(self, *, metrics: Metrics, execution_context: ExecutionContext | None = None):
        self.metrics = metrics
        self._subscribed = False
        if execution_context is not None:
            self.execution_context = execution_context

    def on_operation(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self._subscribed:
                self.metrics.subscriptions.dec()
            self._finish(time.perf_counter() - start)

    def on_execute(self) -> Iterator[None]:
        if self.execution_context.operation_type is OperationType.SUBSCRIPTION:
            self._subscribed = True
            self.metrics.subscriptions.inc()
        yield

    def _finish(self, seconds: float) -> None:
        operation = Operation.of(self.execution_context, self.metrics)
        operation.observe(self.metrics, seconds)
        log.info(
            "graphql operation",
            operation_name=operation.name,
            operation_type=operation.kind,
            admin_id=operation.admin_id,
            duration_ms=round(seconds * 1000, 2),
            outcome=operation.outcome,
            error_codes=operation.codes,
        )


def _operation(context: ExecutionContext) -> tuple[str | None, str]:
    """The name and type of the operation that ran, in one pass over the document."""
    name = context.operation_name
    document = context.graphql_document
    if document is None:  # not even parsed
        return name, "unknown"
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and name == (
            definition.name.value if definition.name else None
        ):
            return name, definition.operation.value
    return name, "unknown"


def _top_level_errors(context: ExecutionContext) -> list[GraphQLError]:
    # The errors as raised: the result's may have been masked already (production).
    errors = context.pre_execution_errors or getattr(context.result, "errors", None) or []
    return list(errors)


def _error_code(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str) and code:
        return code
    return "GRAPHQL_VALIDATION_FAILED" if error.original_error is None else "INTERNAL_SERVER_ERROR"


def _payload_codes(context: ExecutionContext) -> list[str]:
    """The codes of the ``errors`` of each mutation payload (expected failures)."""
    data = getattr(context.result, "data", None)
    if not isinstance(data, dict):
        return []
    codes = []
    for payload in data.values():
        errors = payload.get("errors") if isinstance(payload, dict) else None
        for error in errors or []:
            if isinstance(error, dict) and isinstance(error.get("code"), str):
                codes.append(error["code"])
    return codes


class TracingExtension(OpenTelemetryExtension):
    """Strawberry's OpenTelemetry extension without the query text and arguments (they may
    hold customer data or a bucket secret), named and typed after the operation."""

    def __init__(self, *, execution_context: ExecutionContext | None = None) -> None:
        super().__init__(execution_context=execution_context, arg_filter=_no_arguments)

    def on_operation(self) -> Generator[None, None, None]:
        span = self._tracer.start_span("GraphQL operation", kind=trace.SpanKind.SERVER)
        span.set_attribute("component", "graphql")
        self._span_holder[LifecycleStep.OPERATION] = span
        try:
            yield
        finally:
            context = self.execution_context
            name = context.operation_name
            try:
                kind = context.operation_type.value
                span.set_attribute("graphql.operation.type", kind)
            except RuntimeError:
                kind = "operation"
            if name:
                span.set_attribute("graphql.operation.name", name)
            span.update_name(f"GraphQL {kind} {name}" if name else f"GraphQL {kind}")
            request = CURRENT_REQUEST.get()
            if request is not None:
                span.set_attribute("recoverly.request_id", request.request_id)
            span.end()


def _no_arguments(args: dict[str, Any], info: Any) -> dict[str, Any]:
    return {}


__all__ = [
    "Operation",
    "OperationObserver",
    "TracingExtension",
    "attach_to_request",
    "on_websocket",
]
