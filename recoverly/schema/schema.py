"""The Strawberry schema: roots joined, with cost, depth, size and alias limits, error codes,
caches and persisted queries; in production, errors masked with error IDs, no introspection
(unless enabled) and no field suggestions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLEnumType, GraphQLError, GraphQLObjectType
from graphql.validation import NoSchemaIntrospectionCustomRule, specified_rules
from strawberry.extensions import ParserCache, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from recoverly.observability.graphql import attach_to_request, on_websocket
from recoverly.schema.access_mutations import AccessMutations
from recoverly.schema.backup_mutations import BackupMutations
from recoverly.schema.backups import resolve_prefetched_directly
from recoverly.schema.broadcast import BroadcastExecutor
from recoverly.schema.cost import QueryCost
from recoverly.schema.error_codes import assign_codes
from recoverly.schema.extensions import CachedValidation, ReadsBesideWrites
from recoverly.schema.masking import MaskInternalErrors, should_mask
from recoverly.schema.persisted_queries import PersistedQueries, load_registered
from recoverly.schema.query import Query
from recoverly.schema.restore_mutations import RestoreMutations
from recoverly.schema.subscription import Subscription
from recoverly.settings import Settings

HTTP_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})


@strawberry.type
class Mutation(BackupMutations, RestoreMutations, AccessMutations):
    """Every mutation takes one ``input`` and returns a payload with ``errors``."""


class RecoverlySchema(strawberry.Schema):
    """Every top-level error gets an ``extensions.code``; subscriptions are websocket-only;
    every operation is parsed with the token limit and validated with the extra rules (set
    on its execution context when it is made: an extension would cost a hook per operation
    to do the same)."""

    def __init__(
        self,
        *args: Any,
        production: bool,
        validation_rules: Sequence[type[ASTValidationRule]],
        max_tokens: int,
        websocket_observers: Sequence[Callable[[], SchemaExtension]] = (),
        **kwargs: Any,
    ) -> None:
        self.production = production
        self.websocket_observers = tuple(websocket_observers)
        self.operation_rules = (*specified_rules, *validation_rules)
        self.max_tokens = max_tokens
        super().__init__(*args, **kwargs)

    def _create_execution_context(self, *args: Any, **kwargs: Any) -> ExecutionContext:
        context = super()._create_execution_context(*args, **kwargs)
        context.validation_rules = self.operation_rules
        context.parse_options["max_tokens"] = self.max_tokens
        attach_to_request(context)
        return context

    def get_extensions(self, sync: bool = False) -> list[SchemaExtension]:
        # A websocket's operations account for themselves, outside the other extensions;
        # an HTTP request's operation is the request log's (``attach_to_request``).
        extensions = super().get_extensions(sync)
        if self.websocket_observers and on_websocket():
            extensions[:0] = [make() for make in self.websocket_observers]
        return extensions

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        unexpected = assign_codes(errors)
        # In production, masked errors are logged once, with their error ID, by the masker.
        if self.production:
            unexpected = [e for e in unexpected if not should_mask(e)]
        if unexpected:
            super().process_errors(unexpected, execution_context)

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        # ``execute`` serves HTTP; websocket operations go through ``subscribe``.
        allowed = HTTP_OPERATIONS.intersection(allowed_operation_types or HTTP_OPERATIONS)
        return await super().execute(
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            allowed_operation_types=allowed,
            operation_extensions=operation_extensions,
        )


def build_schema(
    settings: Settings,
    *,
    observers: Sequence[Callable[[], SchemaExtension]] = (),
    websocket_observers: Sequence[Callable[[], SchemaExtension]] = (),
) -> strawberry.Schema:
    """The schema; ``observers`` (traces) run outside the other extensions, for every
    operation, ``websocket_observers`` (metrics and log lines) for a websocket's only."""
    # Validation rules are made once: the validation cache is keyed by the rule classes too.
    rules: list[type[ASTValidationRule]] = [
        depth_validator(settings.max_query_depth, None),
        aliases_validator(settings.max_query_aliases),
    ]
    if settings.production and not settings.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
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
        *observers,
        persisted.extension,
        lambda: QueryCost(settings=settings),
        lambda: ParserCache(maxsize=settings.document_cache_size),
        lambda: CachedValidation(maxsize=settings.document_cache_size),
        ReadsBesideWrites,
    ]
    if settings.production:
        extensions.append(MaskInternalErrors)
    schema = RecoverlySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=settings.production),
        production=settings.production,
        validation_rules=rules,
        max_tokens=settings.max_query_tokens,
        websocket_observers=websocket_observers,
        execution_context_class=BroadcastExecutor,
    )
    resolve_prefetched_directly(schema)
    resolve_plain_fields_directly(schema)
    return schema


def resolve_plain_fields_directly(schema: strawberry.Schema) -> None:
    """The per-row work of a page, made smaller without changing any answer: a field with
    no resolver of its own (and no extension or permission) is read straight from its
    object, without Strawberry's wrapper around the same read; an enum value's name is
    looked up in a dict, not found by comparing it with each value in turn."""
    for graphql_type in schema._schema.type_map.values():
        if isinstance(graphql_type, GraphQLObjectType):
            for field in graphql_type.fields.values():
                definition = field.extensions.get("strawberry-definition")
                if getattr(field.resolve, "_is_default", False) and definition is not None:
                    field.resolve = _read(definition.default_resolver, definition.python_name)
        elif isinstance(graphql_type, GraphQLEnumType) and hasattr(graphql_type, "wrapped_cls"):
            graphql_type.coerce_output_value = _enum_names(graphql_type)  # type: ignore[method-assign, assignment]


def _read(read: Callable[[Any, str], Any], name: str) -> Callable[..., Any]:
    def resolve(source: Any, info: Any, **kwargs: Any) -> Any:
        return read(source, name)

    return resolve


def _enum_names(enum_type: Any) -> Callable[[Any], Any]:
    members, slow = enum_type.wrapped_cls, enum_type.coerce_output_value
    names = {
        member: name
        for name, value in enum_type.values.items()
        for member in members
        if member.value == value.value
    }

    def coerce_output_value(value: Any) -> Any:
        if isinstance(value, members):
            name = names.get(value)
            if name is not None:
                return name
        return slow(value)

    return coerce_output_value
