"""Production errors: an unexpected error reaches the client as INTERNAL_SERVER_ERROR with
an error ID and a plain message; its detail (exception, SQL, paths) goes only to the log,
under that ID."""

from __future__ import annotations

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from recoverly.observability.incidents import cite, report
from recoverly.schema.error_codes import INTERNAL, classify


def should_mask(error: GraphQLError) -> bool:
    """Only unexpected errors are masked: every coded client error keeps its message."""
    return classify(error) == INTERNAL


class MaskInternalErrors(MaskErrors):
    """``MaskErrors`` whose masked errors cite an error ID the log holds."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask)

    def _process_result(self, result: object) -> None:
        # As MaskErrors, without its isinstance check against a runtime-checkable Protocol,
        # which costs more than the rest of a subscription event's delivery together.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

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
