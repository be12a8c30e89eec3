"""Schema extensions of the request lifecycle that are Recoverly's own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from strawberry.extensions import SchemaExtension, ValidationCache
from strawberry.types.graphql import OperationType

from recoverly.resolvers.context import Context


class ReadsBesideWrites(SchemaExtension):
    """A mutation writes through a connection of its own: before it runs, the request's read
    session gives its connection back (a request never holds two), and from then on each
    read takes one only while it runs."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if (
            isinstance(context, Context)
            and self.execution_context.operation_type is OperationType.MUTATION
        ):
            await context.db.release()
        yield


class CachedValidation(ValidationCache):
    """Strawberry's validation cache, except that a document an earlier hook already refused
    (the cost analysis) is not validated at all: validating a fragment bomb is exponential."""

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors:
            yield
            return
        yield from super().on_validate()
