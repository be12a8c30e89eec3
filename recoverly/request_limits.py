"""Limits on what a client may send before any of it is parsed or executed: body size,
variables size, JSON nesting, websocket message size and graphql-transport-ws message shape.

Every refusal is a ``RequestRejected`` with an HTTP status and a GraphQL error code, so a
bad request costs the server little and always gets a typed answer (never a 500)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope

from recoverly.errors import RecoverlyError

BAD_REQUEST = "BAD_REQUEST"  # the request itself: size, JSON, shape
BAD_USER_INPUT = "BAD_USER_INPUT"  # what it asks for: its variables


class RequestRejected(RecoverlyError):
    """A request refused before execution: ``status`` for HTTP, ``code`` for the client."""

    def __init__(self, status: int, message: str, *, code: str = BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def response(self) -> JSONResponse:
        error = {"message": self.message, "extensions": {"code": self.code}}
        return JSONResponse({"errors": [error]}, status_code=self.status)


class JSONTooDeep(RecoverlyError, json.JSONDecodeError):
    """JSON nested deeper than allowed (a ``JSONDecodeError``, so parsers report it as bad JSON)."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nested deeper than {max_depth} levels", "", 0)


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                raise RequestRejected(400, "invalid Content-Length header") from None
    return None


async def read_body(scope: Scope, receive: Receive, *, max_bytes: int) -> bytes:
    """The whole request body, refused with 413 as soon as it passes ``max_bytes``."""
    too_large = RequestRejected(413, f"request body larger than {max_bytes} bytes")
    length = declared_length(scope)
    if length is not None and length > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestRejected(400, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes) -> Receive:
    """An ASGI ``receive`` that hands out ``body`` once (the view reads it again)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def decode_json(data: str | bytes, *, max_depth: int) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` (``JSONTooDeep``)."""
    if isinstance(data, bytes):
        brackets = data.count(b"[") + data.count(b"{")
    else:
        brackets = data.count("[") + data.count("{")
    try:
        value = json.loads(data)
    except RecursionError:
        raise JSONTooDeep(max_depth) from None
    if brackets > max_depth and json_depth(value) > max_depth:
        raise JSONTooDeep(max_depth)
    return value


def json_depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value (iterative: no recursion limit to hit)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_graphql_body(body: bytes, *, max_depth: int, max_variables_bytes: int) -> None:
    """Refuse a JSON GraphQL request whose JSON is malformed, too deep, or whose
    variables are too large (all 400: BAD_REQUEST, BAD_USER_INPUT for the variables)."""
    try:
        parsed = decode_json(body, max_depth=max_depth)
    except JSONTooDeep as error:
        raise RequestRejected(400, error.msg) from None
    except ValueError:
        raise RequestRejected(400, "the request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise RequestRejected(400, "the request body must be one JSON object")
    variables = parsed.get("variables")
    if len(body) > max_variables_bytes and variables is not None:
        size = len(json.dumps(variables, separators=(",", ":")).encode())
        if size > max_variables_bytes:
            raise RequestRejected(
                400, f"variables larger than {max_variables_bytes} bytes", code=BAD_USER_INPUT
            )


_OPTIONAL_OBJECT = (dict, type(None))


def ws_message_problem(message: Any) -> str | None:
    """Why a decoded graphql-transport-ws message is malformed, or None if well formed."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "a message must be a JSON object with a string type"
    kind = message["type"]
    if kind in ("connection_init", "ping", "pong"):
        ok = isinstance(message.get("payload"), _OPTIONAL_OBJECT)
        return None if ok else f"the {kind} payload must be an object"
    if kind == "complete":
        return None if isinstance(message.get("id"), str) else "complete needs a string id"
    if kind == "subscribe":
        return _subscribe_problem(message)
    return f"unknown message type {kind[:40]!r}"


def _subscribe_problem(message: dict[str, Any]) -> str | None:
    if not isinstance(message.get("id"), str) or not message["id"]:
        return "subscribe needs a string id"
    payload = message.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return "the subscribe payload must be an object with a string query"
    if not isinstance(payload.get("variables"), _OPTIONAL_OBJECT):
        return "variables must be an object"
    if not isinstance(payload.get("extensions"), _OPTIONAL_OBJECT):
        return "extensions must be an object"
    if not isinstance(payload.get("operationName"), str | None):
        return "operationName must be a string"
    return None
