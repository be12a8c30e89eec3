"""Query cost analysis, before validation and execution (GitHub's node limit is the model).

Every field occurrence costs its static cost (1 unless listed in ``FIELD_COSTS``) times the
size of the lists around it: a connection multiplies its ``edges``/``nodes`` by ``first`` (or
the argument's default), any other list by ``DEFAULT_LIST_SIZE``. Aliases and duplicate fields
each count, fragments count wherever they are spread. An operation over ``max_query_cost`` is
refused with QUERY_TOO_COMPLEX; otherwise its cost is charged to the caller's budget, and a
spent budget is RATE_LIMITED (HTTP 429 with ``Retry-After``). Responses carry
``extensions.cost``. Any new field is costed by the same default rules."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef
from strawberry.extensions import SchemaExtension

from recoverly.errors import RecoverlyError
from recoverly.resolvers.pagination import MAX_PAGE_SIZE
from recoverly.settings import Settings

TOO_COMPLEX = "QUERY_TOO_COMPLEX"
RATE_LIMITED = "RATE_LIMITED"
DEFAULT_LIST_SIZE = 10
CONNECTION_COST = 10  # a page and its count: two SQL statements
ROOT_OPERATION_COST = 10  # a mutation's writes, a subscription's stream
MAX_NESTING = 64
FIELD_COSTS: Mapping[str, int] = {
    "Query.restorePreview": 100,
    "Query.pendingAccessReviews": 5,
    "Organization.billing": 10,
    "Mutation.createBackupPolicy": 50,
    "Mutation.runBackup": 20,
    "Mutation.startRestore": 50,
}
# Strawberry's own limiters, whose errors are complexity errors too.
_LIMITER_MESSAGES = ("exceeds maximum operation depth", "aliases found. Allowed", "tokens")


class QueryTooComplex(RecoverlyError):
    """Cost walking stopped: the operation is beyond any limit."""


@dataclass
class CostWalk:
    """The cost of one operation in one document (fragments memoized, cycles ignored)."""

    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]
    defaults: dict[str, Any]
    memo: dict[tuple[str, int | None], int] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)

    def selections(
        self, parent: Any, selection_set: SelectionSetNode, page: int | None, depth: int
    ) -> int:
        if depth > MAX_NESTING:
            raise QueryTooComplex()
        total = 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                total += self.field(parent, node, page, depth)
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(target, node.selection_set, page, depth + 1)
            elif isinstance(node, FragmentSpreadNode):
                total += self.spread(node.name.value, page, depth)
        return total

    def spread(self, name: str, page: int | None, depth: int) -> int:
        fragment = self.fragments.get(name)
        if fragment is None or name in self.active:
            return 0
        key = (name, page)
        if key not in self.memo:
            self.active.add(name)
            target = self.schema.get_type(fragment.type_condition.name.value)
            self.memo[key] = self.selections(target, fragment.selection_set, page, depth + 1)
            self.active.discard(name)
        return self.memo[key]

    def field(self, parent: Any, node: FieldNode, page: int | None, depth: int) -> int:
        definition = _field_definition(self.schema, parent, node.name.value)
        if definition is None:
            return 1
        own = _static_cost(self.schema, parent, node.name.value, definition)
        if node.selection_set is None:
            return own
        first = self.first(node, definition) if "first" in definition.args else None
        nullable = definition.type
        if isinstance(nullable, GraphQLNonNull):
            nullable = nullable.of_type
        is_list = isinstance(nullable, GraphQLList)
        multiplier = 1
        if is_list:
            multiplier = first or page or DEFAULT_LIST_SIZE
        inner_page = first if first is not None and not is_list else None
        named = get_named_type(definition.type)
        return own + multiplier * self.selections(named, node.selection_set, inner_page, depth + 1)

    def first(self, node: FieldNode, definition: Any) -> int:
        value: Any = definition.args["first"].default_value
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                name = argument.value.name.value
                value = self.variables.get(name, self.defaults.get(name, value))
        count = value if isinstance(value, int) and not isinstance(value, bool) else MAX_PAGE_SIZE
        return min(max(count, 1), MAX_PAGE_SIZE)


def _field_definition(schema: GraphQLSchema, parent: Any, name: str) -> Any:
    if name == "__schema":
        return SchemaMetaFieldDef
    if name == "__type":
        return TypeMetaFieldDef
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return parent.fields.get(name)
    return None


def _static_cost(schema: GraphQLSchema, parent: Any, name: str, definition: Any) -> int:
    key = f"{getattr(parent, 'name', '')}.{name}"
    if key in FIELD_COSTS:
        return FIELD_COSTS[key]
    if parent is schema.mutation_type or parent is schema.subscription_type:
        return ROOT_OPERATION_COST
    return CONNECTION_COST if "first" in definition.args else 1


def operation_cost(
    schema: GraphQLSchema,
    document: Any,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> int | None:
    """The cost of the operation that would run, or None if there is no such operation."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [
        o
        for o in operations
        if operation_name is None or (o.name and o.name.value == operation_name)
    ]
    if len(chosen) != 1:
        return None
    operation = chosen[0]
    root = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }[operation.operation]
    walk = CostWalk(
        schema=schema,
        fragments={
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        },
        variables=variables or {},
        defaults={
            v.variable.name.value: int(v.default_value.value)
            for v in operation.variable_definitions or ()
            if isinstance(v.default_value, IntValueNode)
        },
    )
    return walk.selections(root, operation.selection_set, None, 0)


def count_fields(document: Any) -> int:
    """Field nodes written in the document (before fragments are expanded)."""
    return sum(1 for node in _nodes(document) if isinstance(node, FieldNode))


def _nodes(document: Any) -> Iterator[Any]:
    stack = list(document.definitions)
    while stack:
        node = stack.pop()
        yield node
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)


def too_complex(message: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": TOO_COMPLEX, **extensions})


class QueryCost(SchemaExtension):
    """Costs each operation before validation; refuses, charges, and reports the cost."""

    def __init__(self, *, settings: Settings) -> None:
        self.settings = settings
        self.cost: dict[str, Any] | None = None
        self.rejection: GraphQLError | None = None

    def on_parse(self) -> Iterator[None]:
        yield
        _code_limiter_errors(self.execution_context.pre_execution_errors)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            self.rejection = self._check(context)
            if self.rejection is not None:
                context.pre_execution_errors = [self.rejection]
        yield
        if self.rejection is not None:
            context.pre_execution_errors = [self.rejection]
        _code_limiter_errors(context.pre_execution_errors)

    def _check(self, context: Any) -> GraphQLError | None:
        settings = self.settings
        document = context.graphql_document
        fields = count_fields(document)
        if fields > settings.max_query_fields:
            return too_complex(
                f"the operation selects {fields} fields, "
                f"at most {settings.max_query_fields} allowed"
            )
        try:
            cost = operation_cost(
                context.schema._schema, document, context.operation_name, context.variables
            )
        except QueryTooComplex:
            return too_complex("the operation is nested too deeply")
        if cost is None:
            return None
        if cost > settings.max_query_cost:
            return too_complex(
                f"the operation costs {cost}, at most {settings.max_query_cost} allowed",
                cost={"requested": cost, "limit": settings.max_query_cost},
            )
        return self._charge(context.context, cost)

    def _charge(self, request: Any, cost: int) -> GraphQLError | None:
        runtime = getattr(request, "runtime", None)
        if runtime is None:
            return None
        now = runtime.now()
        budget = runtime.rate_limiter.charge(
            caller_key(request),
            cost,
            limit=self.settings.rate_limit_points,
            seconds=self.settings.rate_limit_window_seconds,
            now=now,
        )
        self.cost = {
            "requested": cost,
            "limit": budget.limit,
            "remaining": budget.remaining,
            "resetAt": budget.reset_at.isoformat(),
        }
        if budget.allowed:
            return None
        retry_after = budget.retry_after(now)
        response = getattr(request, "response", None)
        if response is not None and hasattr(response, "status_code"):  # HTTP, not a websocket
            response.status_code = 429
            response.headers["Retry-After"] = str(retry_after)
        return GraphQLError(
            f"rate limit reached: {budget.remaining} of {budget.limit} points left, this "
            f"operation costs {cost}; retry after {retry_after} s",
            extensions={"code": RATE_LIMITED, "cost": self.cost, "retryAfter": retry_after},
        )

    def get_results(self) -> dict[str, Any]:
        # A subscription is charged once, when it starts; its events carry no cost report,
        # so every subscriber of a broadcast event is sent the very same frame.
        if self.cost is None:
            return {}
        if getattr(self.execution_context.operation_type, "value", None) == "subscription":
            return {}
        return {"cost": self.cost}


def _code_limiter_errors(errors: list[GraphQLError] | None) -> None:
    """Depth, token and alias limit errors are QUERY_TOO_COMPLEX too."""
    for error in errors or []:
        coded = error.extensions is not None and "code" in error.extensions
        if not coded and any(m in error.message for m in _LIMITER_MESSAGES):
            error.extensions = {**(error.extensions or {}), "code": TOO_COMPLEX}


def caller_key(request: Any) -> str:
    """Whose budget a request spends: the authenticated admin's."""
    scope = getattr(request, "scope", None)
    return f"admin:{scope.admin_id}" if scope is not None else "anonymous"
