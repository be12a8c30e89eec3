"""The Starlette app: ``/graphql`` (HTTP, websockets, GraphiQL), the probes and ``/metrics``
(``recoverly.monitoring``), the admin console at ``/`` and the assets of both, behind the
request log; the lifespan migrates the database and starts the job runner."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import SchemaExtension
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message
from strawberry.types.unset import UNSET
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from recoverly import request_limits
from recoverly.monitoring import metrics_server, probe_routes
from recoverly.observability import tracing
from recoverly.observability.graphql import OperationObserver, TracingExtension
from recoverly.observability.requests import RequestLogMiddleware
from recoverly.request_limits import RequestRejected
from recoverly.resolvers.context import Context
from recoverly.schema.broadcast import CURRENT_TARGET, BroadcastData, text_frame
from recoverly.schema.schema import build_schema
from recoverly.services.runtime import Runtime
from recoverly.services.system import build_runtime, start_runtime, stop_runtime
from recoverly.settings import Settings, get_settings

GRAPHIQL_DIR = Path(__file__).parent / "static" / "graphiql"
CONSOLE_DIR = Path(__file__).parent / "static" / "console"
UNAUTHORIZED = 4401
INVALID_MESSAGE = 4400
MESSAGE_TOO_BIG = 1009
CONTEXT_KEY = "recoverly.context"
CONNECTION_KEY = "recoverly.ws_connection"


class _WireTarget:
    """One websocket operation's frames written straight to its uvicorn connection (the
    websockets-sansio implementation): what uvicorn's own send does for a text message,
    with the frame built once for every subscriber of a broadcast event. Says False while
    the connection is not open for writing, or its buffer waits to drain."""

    __slots__ = ("connection", "operation_id")

    def __init__(self, connection: Any, operation_id: str) -> None:
        self.connection, self.operation_id = connection, operation_id

    def write(self, frame: bytes) -> bool:
        return _write_frame(self.connection, frame)


def _write_frame(c: Any, frame: bytes) -> bool:
    if (
        c.close_sent
        or c.disconnected
        or c.initial_response is not None
        or not c.writable.is_set()
        or c.conn.state is not State.OPEN
        or c.transport.is_closing()
    ):
        return False
    c.transport.write(frame)
    return True


class _KeepConnection:
    """Outermost: remembers a websocket's uvicorn connection for ``_WireTarget`` (when it is
    one that sends frames as they are, without permessage-deflate)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            connection = getattr(send, "__self__", None)
            if isinstance(connection, WebSocketsSansIOProtocol) and not connection.conn.extensions:
                scope[CONNECTION_KEY] = connection
        await self.app(scope, receive, send)


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    async def run_operation(self, operation: Operation[Context, None]) -> None:
        # The operation's task: its subscription stream may send broadcast frames directly.
        connection = self._connection()
        if connection is not None:
            CURRENT_TARGET.set(_WireTarget(connection, operation.id))
        await super().run_operation(operation)

    async def send_message(self, message: Message) -> None:
        # Every message of the protocol is one text frame, written straight to the
        # connection when it can take it now (a broadcast event's frame built once for all
        # its subscribers); else through the ASGI send, as Strawberry does.
        connection = self._connection()
        if connection is not None and _write_frame(connection, self._frame(message)):
            return
        await super().send_message(message)

    def _connection(self) -> Any:
        return self.websocket.ws.scope.get(CONNECTION_KEY)  # type: ignore[attr-defined]

    def _frame(self, message: Message) -> bytes:
        shared = _shared_data(message)
        if shared is not None:
            return shared.wire_frame(str(message["id"]))  # type: ignore[typeddict-item]
        encoded = self.view.encode_json(message)
        return text_frame(encoded if isinstance(encoded, str) else encoded.decode())


def _shared_data(message: object) -> BroadcastData | None:
    """The data of a ``next`` message that carries a broadcast event's data alone."""
    if isinstance(message, dict) and message.get("type") == "next":
        payload = message["payload"]
        shared = payload.get("data")
        if isinstance(shared, BroadcastData) and len(payload) == 1:
            return shared
    return None


class _WebSocketAdapter(ASGIWebSocketAdapter):
    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        """Messages as JSON; a frame too large or not a well-formed graphql-transport-ws
        message closes the connection (1009, 4400) with a reason, not a traceback."""
        assert isinstance(self.view, GraphQLView)
        limit = self.view.runtime.settings.max_websocket_message_bytes
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    await self.close(INVALID_MESSAGE, "messages must be text")
                    return
                if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
                    await self.close(MESSAGE_TOO_BIG, f"message larger than {limit} bytes")
                    return
                try:
                    value = self.view.decode_json(text)
                except ValueError:
                    await self.close(INVALID_MESSAGE, "messages must be valid JSON")
                    return
                problem = request_limits.ws_message_problem(value)
                if problem is not None:
                    await self.close(INVALID_MESSAGE, problem)
                    return
                yield value
        except WebSocketDisconnect:
            return

    async def close(self, code: int, reason: str) -> None:
        # Strawberry closes rejected connection_init with 4403; the API promises 4401.
        if code == 4403:
            code, reason = UNAUTHORIZED, "Unauthorized"
        await super().close(code, reason)


def error_response(message: str, code: str, status_code: int, **headers: str) -> JSONResponse:
    """A GraphQL-shaped error body for failures before execution (auth, bad requests)."""
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status_code, headers=headers)


class GraphQLView(GraphQL[Context, None]):
    websocket_adapter_class = _WebSocketAdapter
    graphql_transport_ws_handler_class = _TransportWSHandler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as error:
            message = error.reason
            if message.startswith("subscriptions are not allowed"):
                message = (
                    "subscriptions run over a websocket: connect to /graphql with the "
                    "graphql-transport-ws protocol"
                )
            response = error_response(message, "BAD_REQUEST", error.status_code)
        await response(scope, receive, send)

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(
            build_schema(
                runtime.settings,
                observers=[TracingExtension] if tracing.enabled() else [],
                websocket_observers=_websocket_observers(runtime),
            ),
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            # Websocket handshakes from other origins (a browser page elsewhere) are refused
            # with 403 unless listed: the same list as CORS.
            allowed_origins=runtime.settings.cors_origin_list(),
        )
        self.runtime = runtime

    def decode_json(self, data: str | bytes) -> object:
        return request_limits.decode_json(data, max_depth=self.runtime.settings.max_json_depth)

    def encode_json(self, data: object) -> str | bytes:
        # A broadcast event's frame is encoded once for all its subscribers.
        shared = _shared_data(data)
        if shared is not None:
            return shared.frame(data["id"])  # type: ignore[index]
        return super().encode_json(data)

    async def get_context(self, request: Any, response: Any) -> Context:
        # HTTP: the context AuthenticatedGraphQL made (it holds the request's session).
        context: Context | None = request.scope.get(CONTEXT_KEY)
        if context is None:  # a websocket connection: each read ends its transaction
            context = Context(runtime=self.runtime)
            context.db.per_use = True
        context.request, context.response = request, response
        return context

    async def on_ws_connect(self, context: Context) -> Any:
        params = context.connection_params or {}
        authorization = params.get("Authorization") or params.get("authorization")
        if not isinstance(authorization, str) or not await context.authenticate(authorization):
            raise ConnectionRejectionError({"message": "Unauthorized"})
        return UNSET


class AuthenticatedGraphQL:
    """HTTP ``/graphql``: GraphiQL for browsers, else a bearer token or 401, then the view."""

    def __init__(self, view: GraphQLView) -> None:
        self.view = view

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if _wants_graphiql(request):
            page = FileResponse(GRAPHIQL_DIR / "index.html", media_type="text/html")
            return await page(scope, receive, send)
        settings = self.view.runtime.settings
        try:
            length = request_limits.declared_length(scope)
            if length is not None and length > settings.max_request_bytes:
                raise RequestRejected(
                    413, f"request body larger than {settings.max_request_bytes} bytes"
                )
        except RequestRejected as rejected:
            return await rejected.response()(scope, receive, send)
        context = Context(runtime=self.view.runtime)
        try:
            if not await context.authenticate(request.headers.get("authorization")):
                denied = error_response(
                    "Unauthorized: send Authorization: Bearer <token>",
                    "UNAUTHENTICATED",
                    401,
                    **{"WWW-Authenticate": 'Bearer realm="recoverly"'},
                )
                return await denied(scope, receive, send)
            try:
                receive = await _checked_body(request, scope, receive, settings)
            except RequestRejected as rejected:
                return await rejected.response()(scope, receive, send)
            scope[CONTEXT_KEY] = context
            await self.view(scope, receive, send)
        finally:
            await context.db.close()


async def _checked_body(
    request: Request, scope: Scope, receive: Receive, settings: Settings
) -> Receive:
    """Read a POST body within the size limit and check its JSON, then replay it."""
    if request.method != "POST":
        return receive
    body = await request_limits.read_body(scope, receive, max_bytes=settings.max_request_bytes)
    if request.headers.get("content-type", "").startswith("application/json"):
        request_limits.check_graphql_body(
            body,
            max_depth=settings.max_json_depth,
            max_variables_bytes=settings.max_variables_bytes,
        )
    return request_limits.replay(body)


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Starlette:
    """The ASGI app; pass a ``runtime`` to share one with tests or the CLI."""
    runtime = runtime or build_runtime(settings or get_settings())
    view = GraphQLView(runtime)
    origins = runtime.settings.cors_origin_list()

    async def graphql_ws(websocket: WebSocket) -> None:
        await view(websocket.scope, websocket.receive, websocket.send)

    metrics_port = runtime.settings.metrics_port

    async def console(request: Request) -> Response:
        # Static files need no token: the console signs in to /graphql itself.
        return FileResponse(CONSOLE_DIR / "index.html", media_type="text/html")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await start_runtime(runtime)
        try:
            if metrics_port is None:
                yield
            else:
                async with metrics_server(runtime, metrics_port) as app.state.metrics_port:
                    yield
        finally:
            await stop_runtime(runtime)

    app = Starlette(
        routes=[
            Route("/graphql", AuthenticatedGraphQL(view), methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_ws),
            *probe_routes(runtime, with_metrics=metrics_port is None),
            Route("/", console, methods=["GET"]),
            Mount("/console", StaticFiles(directory=CONSOLE_DIR), name="console"),
            Mount("/graphiql-assets", StaticFiles(directory=GRAPHIQL_DIR), name="graphiql"),
        ],
        middleware=[
            Middleware(_KeepConnection),
            Middleware(RequestLogMiddleware, metrics=runtime.metrics),
            *([Middleware(_CORS, origins=origins)] if origins else []),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app


class _CORS:
    """CORS for the configured origins; requests from any other origin pass through
    untouched, so they get no CORS headers at all (not even on a refused preflight)."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.origins = set(origins)
        self.cors: ASGIApp = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = Headers(scope=scope).get("origin") if scope["type"] == "http" else None
        target = self.cors if origin in self.origins else self.app
        await target(scope, receive, send)


def _websocket_observers(runtime: Runtime) -> list[Callable[[], SchemaExtension]]:
    """Metrics and a log line for each operation on a websocket (an HTTP request's operation
    is the request log's)."""
    if runtime.metrics.enabled or runtime.settings.log_level in ("debug", "info"):
        return [lambda: OperationObserver(metrics=runtime.metrics)]
    return []


def _wants_graphiql(request: Request) -> bool:
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and "text/html" in request.headers.get("accept", "")
    )
