"""The Strawberry schema: roots joined, with cost and size limits; in production, errors
masked with error IDs, no introspection (unless enabled) and no field suggestions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from recoverly.schema.access_mutations import AccessMutations
from recoverly.schema.backup_mutations import BackupMutations
from recoverly.schema.cost import QueryCost
from recoverly.schema.masking import MaskInternalErrors, should_mask
from recoverly.schema.query import Query
from recoverly.schema.restore_mutations import RestoreMutations
from recoverly.schema.subscription import Subscription
from recoverly.settings import Settings


class RecoverlySchema(strawberry.Schema):
    def __init__(self, *args: Any, production: bool, **kwargs: Any) -> None:
        self.production = production
        super().__init__(*args, **kwargs)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # In production, masked errors are logged once, with their error ID, by the masker.
        if self.production:
            errors = [e for e in errors if not should_mask(e)]
        super().process_errors(errors, execution_context)


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
        extensions.append(MaskInternalErrors)
        if not settings.introspection:
            extensions.append(DisableIntrospection)
    return RecoverlySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=settings.production),
        production=settings.production,
    )
