"""The one place that gives every top-level GraphQL error an ``extensions.code``.

Codes set where an error is raised (``GraphQLError(message, extensions={"code": ...})``)
pass through unchanged; the rest are classified here. Expected client mistakes are logged
in one line; only unexpected errors (INTERNAL_SERVER_ERROR) get a traceback.
"""

from __future__ import annotations

import logging

from graphql import GraphQLError

from recoverly.resolvers.context import NotAuthenticatedError
from recoverly.resolvers.pagination import PaginationError

log = logging.getLogger("recoverly.graphql")

INTERNAL = "INTERNAL_SERVER_ERROR"
# Raised below the schema for a client's mistake: their message is meant for the client.
CLIENT_ERRORS: dict[type[Exception], str] = {
    PaginationError: "BAD_USER_INPUT",
    NotAuthenticatedError: "UNAUTHENTICATED",
}


def classify(error: GraphQLError) -> str:
    """The error's code: its own, else one derived from what went wrong."""
    code = error.extensions.get("code") if error.extensions else None
    if isinstance(code, str):
        return code
    original = error.original_error
    if isinstance(original, GraphQLError) and original.extensions:
        original_code = original.extensions.get("code")
        if original_code:
            return str(original_code)
    if error.path is None and (original is None or error.message.startswith("Variable '$")):
        return _document_error_code(error.message)
    for kind, client_code in CLIENT_ERRORS.items():
        if isinstance(original, kind):
            return client_code
    return INTERNAL


def _document_error_code(message: str) -> str:
    """Errors found before execution (parsing, validation, variables): no field path."""
    if "exceeds maximum operation depth" in message or (
        "more than" in message and "tokens" in message
    ):
        return "QUERY_TOO_COMPLEX"
    if message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if message.startswith("Variable '$"):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


def assign_codes(errors: list[GraphQLError]) -> list[GraphQLError]:
    """Set the code of every error; return those that are unexpected (for a traceback)."""
    unexpected = []
    for error in errors:
        code = classify(error)
        error.extensions = {**(error.extensions or {}), "code": code}
        if code == INTERNAL:
            unexpected.append(error)
        else:
            log.info("GraphQL error %s at %s: %s", code, error.path or "-", error.message)
    return unexpected
