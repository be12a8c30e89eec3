"""Production errors: an unexpected error reaches the client as INTERNAL_SERVER_ERROR with
an error ID and a plain message; its detail (exception, SQL, paths) goes only to the log,
under that ID."""

from __future__ import annotations

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from recoverly.resolvers.pagination import PaginationError
from recoverly.resolvers.subscriptions import RestoreNotFoundError
from recoverly.services.incidents import cite, report

INTERNAL = "INTERNAL_SERVER_ERROR"
# Errors whose message is meant for the client even in production.
CLIENT_ERRORS = (PaginationError, RestoreNotFoundError)


def should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, CLIENT_ERRORS)


class MaskInternalErrors(MaskErrors):
    """``MaskErrors`` whose masked errors cite an error ID the log holds."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        where = ".".join(str(p) for p in error.path or ()) or "the operation"
        error_id = report(f"unexpected error in {where}", error.original_error)
        return GraphQLError(
            message=cite("Internal error", error_id),
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": INTERNAL, "errorId": error_id},
        )
