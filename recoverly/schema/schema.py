"""The Strawberry schema: roots joined, with depth and size limits, error codes and masking."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.query_depth_limiter import create_validator
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from recoverly.resolvers.errors import BadUserInputError, NotFoundError
from recoverly.resolvers.pagination import PaginationError
from recoverly.schema.access_mutations import AccessMutations
from recoverly.schema.backup_mutations import BackupMutations
from recoverly.schema.backups import resolve_prefetched_directly
from recoverly.schema.broadcast import BroadcastExecutor
from recoverly.schema.error_codes import MaskErrorsKeepingCodes, assign_codes
from recoverly.schema.extensions import ReadsBesideWrites
from recoverly.schema.persisted_queries import PersistedQueries, load_registered
from recoverly.schema.query import Query
from recoverly.schema.restore_mutations import RestoreMutations
from recoverly.schema.subscription import Subscription
from recoverly.settings import Settings

# Errors whose message is meant for the client even in production.
CLIENT_ERRORS = (PaginationError, NotFoundError, BadUserInputError)
HTTP_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})


def _should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, CLIENT_ERRORS)


@strawberry.type
class Mutation(BackupMutations, RestoreMutations, AccessMutations):
    """Every mutation takes one ``input`` and returns a payload with ``errors``."""


class RecoverlySchema(strawberry.Schema):
    """Every top-level error gets an ``extensions.code``; subscriptions are websocket-only."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        unexpected = assign_codes(errors)
        if unexpected:
            super().process_errors(unexpected, execution_context)

    async def execute(  # type: ignore[override]
        self,
        query: str | None,
        *args: Any,
        allowed_operation_types: Iterable[OperationType] | None = None,
        **kwargs: Any,
    ) -> ExecutionResult:
        # ``execute`` serves HTTP; websocket operations go through ``subscribe``.
        allowed = HTTP_OPERATIONS.intersection(allowed_operation_types or HTTP_OPERATIONS)
        return await super().execute(query, *args, allowed_operation_types=allowed, **kwargs)


def build_schema(settings: Settings) -> strawberry.Schema:
    # Validation rules are made once: the validation cache is keyed by the rule classes too.
    rules = [create_validator(settings.max_query_depth, None)]
    persisted = PersistedQueries(
        registered=(
            load_registered(settings.persisted_queries_file)
            if settings.persisted_queries_file
            else {}
        ),
        only_registered=settings.persisted_queries_only,
        size=settings.document_cache_size,
    )
    extensions: list[Callable[[], SchemaExtension]] = [
        persisted.extension,
        lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
        lambda: AddValidationRules(rules),
        lambda: ParserCache(maxsize=settings.document_cache_size),
        lambda: ValidationCache(maxsize=settings.document_cache_size),
        ReadsBesideWrites,
    ]
    if settings.production:
        extensions.append(lambda: MaskErrorsKeepingCodes(should_mask_error=_should_mask))
    schema = RecoverlySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=BroadcastExecutor,
    )
    resolve_prefetched_directly(schema)
    return schema
