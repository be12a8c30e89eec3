"""The Strawberry schema: roots joined, with depth and size limits and error masking."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.query_depth_limiter import create_validator

from recoverly.resolvers.pagination import PaginationError
from recoverly.resolvers.subscriptions import RestoreNotFoundError
from recoverly.schema.access_mutations import AccessMutations
from recoverly.schema.backup_mutations import BackupMutations
from recoverly.schema.backups import resolve_prefetched_directly
from recoverly.schema.broadcast import BroadcastExecutor
from recoverly.schema.extensions import ReadsBesideWrites
from recoverly.schema.persisted_queries import PersistedQueries, load_registered
from recoverly.schema.query import Query
from recoverly.schema.restore_mutations import RestoreMutations
from recoverly.schema.subscription import Subscription
from recoverly.settings import Settings

# Errors whose message is meant for the client even in production.
CLIENT_ERRORS = (PaginationError, RestoreNotFoundError)


def _should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, CLIENT_ERRORS)


@strawberry.type
class Mutation(BackupMutations, RestoreMutations, AccessMutations):
    """Every mutation takes one ``input`` and returns a payload with ``errors``."""


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
        extensions.append(lambda: MaskErrors(should_mask_error=_should_mask))
    schema = strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=BroadcastExecutor,
    )
    resolve_prefetched_directly(schema)
    return schema
