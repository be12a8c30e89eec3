"""Cursor pagination over SQL, newest first: keyset on the primary key, so walking the
pages yields each row exactly once even while new rows arrive."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

RowT = TypeVar("RowT", bound=SQLModel)
MAX_PAGE_SIZE = 100


class PaginationError(ValueError):
    """A ``first`` or ``after`` argument the API cannot serve."""


@dataclass
class Page(Generic[RowT]):
    rows: list[RowT]
    cursors: list[str]
    has_next_page: bool
    count_statement: Select[Any]  # counts every row of the listing (see ``count_rows``)


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"cursor:{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        prefix, _, raw = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if prefix == "cursor" and raw.isdigit():
            return int(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise PaginationError(f"invalid cursor {cursor!r}")


async def paginate(
    session: AsyncSession,
    statement: Select[Any],
    *,
    model: type[RowT],
    first: int,
    after: str | None,
) -> Page[RowT]:
    """One page of ``statement`` (already filtered and scoped); the total is counted apart,
    only when asked for."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise PaginationError(f"first must be between 1 and {MAX_PAGE_SIZE}, got {first}")
    id_column = col(model.id)  # type: ignore[attr-defined]
    page_statement = statement
    if after is not None:
        page_statement = page_statement.where(id_column < decode_cursor(after))
    page_statement = page_statement.order_by(id_column.desc()).limit(first + 1)
    # Core rows (named columns), not ORM objects: the schema only reads them.
    connection = await session.connection()
    rows: list[Any] = list((await connection.execute(page_statement)).all())
    return Page(
        rows=rows[:first],
        cursors=[encode_cursor(row.id) for row in rows[:first]],
        has_next_page=len(rows) > first,
        count_statement=_count(statement, id_column),
    )


def _count(statement: Select[Any], id_column: Any) -> Select[Any]:
    # The listing's own table and WHERE clause: the count can use its index, where a count
    # over the listing as a subquery would read every row.
    if statement.whereclause is None:
        return select(func.count(id_column))
    return select(func.count(id_column)).where(statement.whereclause)


async def count_rows(session: AsyncSession, count_statement: Select[Any]) -> int:
    return int((await session.exec(count_statement)).one())
