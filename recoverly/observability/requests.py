"""The request log: an ASGI middleware that gives every request an ID (``X-Request-ID``,
kept from the client when it is a sane one), binds it to every line logged while the
request runs, and when it ends writes one line and counts the GraphQL operation it ran, both
with the one duration it measured.

The line and the count are made at the end of the event-loop turn in which the request
ended, for all the requests that ended in it, one after the other: done amid each request's
work they cost ``viewer`` 7% of its throughput, done together 3% (``bench/read_path.py``).
A process killed outright loses the accounting of its current turn, as it loses its lines."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recoverly.observability.graphql import Operation
from recoverly.observability.logs import CURRENT_REQUEST, HotLogger, RequestInfo, get_logger
from recoverly.observability.metrics import Metrics

log = get_logger("recoverly.request")
_LINE_KEYS = ("request_id", "method", "path", "status", "duration_ms", "outcome")
_OPERATION_KEYS = ("operation_name", "operation_type", "admin_id", "error_codes")
request_line = HotLogger("recoverly.request", frozenset(_LINE_KEYS + _OPERATION_KEYS))
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._\-]{8,64}")
# Probes and scrapes log at debug level: they would drown the lines that matter.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_FAILED = {401: "unauthorized", 403: "forbidden", 404: "not_found"}


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Requests that ended in this turn of the event loop, and the loop they ended on.
        self._ended: list[tuple[Scope, RequestInfo, int, float]] = []
        self._due: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = RequestInfo(request_id=_request_id(scope))
        header = (b"x-request-id", request.request_id.encode())
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = CURRENT_REQUEST.set(request)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            CURRENT_REQUEST.reset(token)
            seconds = time.perf_counter() - start
            self._ended.append((scope, request, status, seconds))
            loop = asyncio.get_running_loop()
            if loop is not self._due:
                self._due = loop
                loop.call_soon(self._account, context=contextvars.Context())

    def _account(self) -> None:
        """The requests that ended in the turn just run, accounted for one after the other."""
        ended, self._ended, self._due = self._ended, [], None
        for scope, request, status, seconds in ended:
            try:
                operation = None
                if request.operation is not None and (
                    self.metrics.enabled or request_line.enabled(logging.INFO)
                ):
                    operation = Operation.of(request.operation, self.metrics)
                if operation is not None and self.metrics.enabled:
                    operation.observe(self.metrics, seconds)
                _log_http(scope, request, operation, status, seconds)
            except Exception:
                log.exception("accounting for a request failed", request_id=request.request_id)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = RequestInfo(request_id=_request_id(scope), websocket=True)
        token = CURRENT_REQUEST.set(request)
        self.metrics.websocket_connections.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.metrics.websocket_connections.dec()
            CURRENT_REQUEST.reset(token)
            log.debug(
                "websocket closed",
                request_id=request.request_id,
                path=scope["path"],
                duration_ms=round((time.perf_counter() - start) * 1000, 2),
            )


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _REQUEST_ID.fullmatch(value):
            return str(value.decode())
    # Unique, not secret: 128 random bits without a system call per request.
    return f"{random.getrandbits(128):032x}"


def _log_http(
    scope: Scope, request: RequestInfo, operation: Operation | None, status: int, seconds: float
) -> None:
    path = scope["path"]
    fields: dict[str, Any] = {
        "request_id": request.request_id,
        "method": scope["method"],
        "path": path,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "outcome": "ok" if status < 400 else _FAILED.get(status, "error"),
    }
    if operation is not None:
        fields.update(
            outcome=operation.outcome,
            operation_name=operation.name,
            operation_type=operation.kind,
            admin_id=operation.admin_id,
            error_codes=operation.codes,
        )
    quiet = status < 400 and (path in QUIET_PATHS or path.startswith("/graphiql-assets/"))
    request_line.write(logging.DEBUG if quiet else logging.INFO, "http request", fields)
