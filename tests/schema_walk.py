"""Operations generated from the schema itself: one per root field, with every ID argument
(including IDs inside input objects and lists) as a slot a test can fill."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
    is_leaf_type,
)
from graphql.pyutils import Undefined

from recoverly.schema.schema import build_schema
from recoverly.settings import Settings

Path = tuple[str | int, ...]


@dataclass
class Probe:
    """One root field as an operation; ``variables(ids)`` fills the ID slots."""

    kind: str  # query, mutation or subscription
    field: str
    document: str
    template: dict[str, Any]
    id_slots: list[Path] = field(default_factory=list)

    def variables(self, ids: dict[Path, str]) -> dict[str, Any]:
        values = copy.deepcopy(self.template)
        for path, value in ids.items():
            target: Any = values
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
        return values


def graphql_schema() -> GraphQLSchema:
    return build_schema(Settings())._schema


def probes(schema: GraphQLSchema | None = None) -> list[Probe]:
    schema = schema or graphql_schema()
    found = []
    roots = (
        ("query", schema.query_type),
        ("mutation", schema.mutation_type),
        ("subscription", schema.subscription_type),
    )
    for kind, root in roots:
        if root is None:
            continue
        for name, definition in root.fields.items():
            template: dict[str, Any] = {}
            slots: list[Path] = []
            declared = []
            for arg_name, arg in definition.args.items():
                if not isinstance(arg.type, GraphQLNonNull) and not _has_id(arg.type):
                    continue
                template[arg_name] = _value(arg.type, (arg_name,), slots)
                declared.append(f"${arg_name}: {arg.type}")
            args = ", ".join(f"{a}: ${a}" for a in template)
            header = f"{kind} Probe({', '.join(declared)})" if declared else kind
            call = f"{name}({args})" if args else name
            document = f"{header} {{ {call}{selection(definition.type)} }}"
            found.append(Probe(kind, name, document, template, slots))
    return found


def _has_id(type_: GraphQLInputType, seen: frozenset[str] = frozenset()) -> bool:
    named = get_named_type(type_)
    if isinstance(named, GraphQLScalarType):
        return named.name == "ID"
    if isinstance(named, GraphQLInputObjectType) and named.name not in seen:
        return any(_has_id(f.type, seen | {named.name}) for f in named.fields.values())
    return False


def _value(type_: GraphQLInputType, path: Path, slots: list[Path]) -> Any:
    """A valid value for ``type_``: required fields filled, IDs recorded as slots."""
    nullable = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(nullable, GraphQLList):
        return [_value(nullable.of_type, (*path, 0), slots)]
    if isinstance(nullable, GraphQLInputObjectType):
        value = {}
        for name, input_field in nullable.fields.items():
            required = isinstance(input_field.type, GraphQLNonNull)
            if (required and input_field.default_value is Undefined) or _has_id(input_field.type):
                value[name] = _value(input_field.type, (*path, name), slots)
        return value
    if isinstance(nullable, GraphQLEnumType):
        return next(iter(nullable.values))
    assert isinstance(nullable, GraphQLScalarType)
    if nullable.name == "ID":
        slots.append(path)
        return ""
    return {"Boolean": True, "Int": 1, "Float": 1.0, "String": "x"}.get(nullable.name, "x")


def selection(type_: GraphQLOutputType, depth: int = 0) -> str:
    """Every leaf field without required arguments, and one level of objects below."""
    named = get_named_type(type_)
    if is_leaf_type(named):
        return ""
    if not isinstance(named, GraphQLObjectType):
        return " { __typename }"
    parts = ["__typename"]
    for name, definition in named.fields.items():
        if any(isinstance(a.type, GraphQLNonNull) for a in definition.args.values()):
            continue
        inner = get_named_type(definition.type)
        if is_leaf_type(inner):
            parts.append(name)
        elif depth < 1 or name in ("errors", "nodes", "node"):
            parts.append(name + selection(definition.type, depth + 1))
    return " { " + " ".join(parts) + " }"
