"""Relay cursor connections: ``Connection[Backup]`` is named ``BackupConnection`` in the SDL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.types import Info

from recoverly.resolvers.context import Context
from recoverly.resolvers.pagination import Page, count_rows

NodeT = TypeVar("NodeT")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    nodes: list[NodeT]
    page_info: PageInfo
    page: strawberry.Private[Page[Any]]

    @strawberry.field(description="Rows in the whole listing; counted only when selected.")
    async def total_count(self, info: Info[Context, None]) -> int:
        if self.page.total_count is not None:
            return self.page.total_count
        assert self.page.count_statement is not None
        async with info.context.db.use() as session:
            return await count_rows(session, self.page.count_statement)

    @classmethod
    def from_page(
        cls, page: Page[Any], convert: Callable[[Any], NodeT], *, after: str | None
    ) -> Connection[NodeT]:
        nodes = [convert(row) for row in page.rows]
        return cls(
            edges=[Edge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=True)],
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=after is not None,
                start_cursor=page.cursors[0] if page.cursors else None,
                end_cursor=page.cursors[-1] if page.cursors else None,
            ),
            page=page,
        )
