"""Top-level GraphQL errors a client can branch on: each carries ``extensions.code``."""

from __future__ import annotations

from graphql import GraphQLError

from recoverly.errors import RecoverlyError


class NotFoundError(RecoverlyError, GraphQLError):
    """An ID that names nothing the caller may see: unknown and foreign look the same."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found", extensions={"code": "NOT_FOUND"})


class BadUserInputError(RecoverlyError, GraphQLError):
    """An argument the API cannot serve (a malformed ID in a filter, say)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": "BAD_USER_INPUT"})
