"""Persisted queries: Apollo's automatic persisted queries, and an optional list of registered
documents that, in production, may be the only ones accepted.

A client sends ``extensions.persistedQuery.sha256Hash`` alone; an unknown hash answers the
top-level error ``PersistedQueryNotFound`` (``extensions.code`` PERSISTED_QUERY_NOT_FOUND),
and the client sends the hash with the query once, which is kept (LRU, per process) once
it validates. With ``persisted_queries_only`` only the documents of
``RECOVERLY_PERSISTED_QUERIES_FILE`` are run, sent in full or by hash, over HTTP and websockets.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"


def document_hash(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def load_registered(path: Path) -> dict[str, str]:
    """Documents by SHA-256 from a JSON file: an Apollo persisted query manifest
    (``{"operations": [{"body": ...}]}``) or an object of hash to document."""
    data = json.loads(path.read_text())
    bodies = (
        [operation["body"] for operation in data["operations"]]
        if isinstance(data, dict) and "operations" in data
        else list(data.values())
    )
    return {document_hash(body): body for body in bodies}


class PersistedQueries:
    """The documents known by hash: registered ones, then those clients sent (LRU)."""

    def __init__(
        self, *, registered: dict[str, str], only_registered: bool, size: int = 1000
    ) -> None:
        self.registered = registered
        self.only_registered = only_registered
        self.size = size
        self._sent: OrderedDict[str, str] = OrderedDict()

    def get(self, sha256: str) -> str | None:
        found = self.registered.get(sha256)
        if found is None and not self.only_registered:
            found = self._sent.get(sha256)
            if found is not None:
                self._sent.move_to_end(sha256)
        return found

    def remember(self, sha256: str, query: str) -> None:
        if self.only_registered or sha256 in self.registered:
            return
        self._sent[sha256] = query
        self._sent.move_to_end(sha256)
        while len(self._sent) > self.size:
            self._sent.popitem(last=False)

    def extension(self) -> SchemaExtension:
        return PersistedQueryExtension(self)


class PersistedQueryExtension(SchemaExtension):
    """Resolves ``extensions.persistedQuery`` before parsing, and refuses documents that are
    not registered when only registered ones are accepted."""

    def __init__(self, queries: PersistedQueries) -> None:
        self.queries = queries
        self._learn: str | None = None

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        sha256 = _requested_hash(context.operation_extensions)
        if sha256 is not None and context.query:
            if document_hash(context.query) != sha256:
                raise GraphQLError(
                    "provided sha does not match query", extensions={"code": "BAD_USER_INPUT"}
                )
            self._learn = sha256
        elif sha256 is not None:
            context.query = self.queries.get(sha256)
            if context.query is None:
                raise GraphQLError("PersistedQueryNotFound", extensions={"code": NOT_FOUND})
        if self.queries.only_registered and not self._registered(context.query):
            raise GraphQLError(
                "only registered documents are accepted: send a registered document or its "
                "extensions.persistedQuery.sha256Hash",
                extensions={"code": NOT_FOUND},
            )
        yield

    def _registered(self, query: str | None) -> bool:
        return query is None or document_hash(query) in self.queries.registered

    def on_validate(self) -> Iterator[None]:
        yield
        context = self.execution_context
        if self._learn is not None and not context.pre_execution_errors and context.query:
            self.queries.remember(self._learn, context.query)


def _requested_hash(extensions: dict[str, Any] | None) -> str | None:
    persisted = (extensions or {}).get("persistedQuery")
    if not isinstance(persisted, dict):
        return None
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or persisted.get("version", 1) != 1:
        raise GraphQLError(
            "extensions.persistedQuery needs version 1 and a sha256Hash",
            extensions={"code": "BAD_USER_INPUT"},
        )
    return sha256.lower()
