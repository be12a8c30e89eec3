"""The Strawberry schema: roots joined, with depth and size limits and error masking."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from recoverly.resolvers.pagination import PaginationError
from recoverly.resolvers.subscriptions import RestoreNotFoundError
from recoverly.schema.access_mutations import AccessMutations
from recoverly.schema.backup_mutations import BackupMutations
from recoverly.schema.cost import QueryCost
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
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: QueryCost(settings=settings),
        lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
        lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_query_aliases),
    ]
    if settings.production:
        extensions.append(lambda: MaskErrors(should_mask_error=_should_mask))
    return strawberry.Schema(
        query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions
    )
