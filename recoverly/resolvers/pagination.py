"""Cursor pagination over SQL, newest first: keyset on the primary key, so walking the
pages yields each row exactly once even while new rows arrive."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.resolvers.global_ids import MAX_ROW_ID

RowT = TypeVar("RowT", bound=SQLModel)
MAX_PAGE_SIZE = 100
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_=-]{1,40}")
_CURSOR = re.compile(r"cursor:([1-9][0-9]{0,9})")


class PaginationError(ValueError):
    """A ``first`` or ``after`` argument the API cannot serve."""


@dataclass
class Page(Generic[RowT]):
    rows: list[RowT]
    cursors: list[str]
    has_next_page: bool
    total_count: int


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"cursor:{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    """The row ID in a cursor this module made; anything else is a ``PaginationError``."""
    if isinstance(cursor, str) and _CURSOR_TEXT.fullmatch(cursor):
        try:
            match = _CURSOR.fullmatch(base64.urlsafe_b64decode(cursor).decode("ascii"))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            match = None
        if match is not None:
            row_id = int(match.group(1))
            if row_id <= MAX_ROW_ID and encode_cursor(row_id) == cursor:
                return row_id
    raise PaginationError("invalid cursor: pass the endCursor or an edge cursor of a page")


async def paginate(
    session: AsyncSession,
    statement: Select[Any],
    *,
    model: type[RowT],
    first: int,
    after: str | None,
) -> Page[RowT]:
    """One page of ``statement`` (already filtered and scoped), plus the total count."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise PaginationError(f"first must be between 1 and {MAX_PAGE_SIZE}, got {first}")
    id_column = col(model.id)  # type: ignore[attr-defined]
    total = (await session.exec(select(func.count()).select_from(statement.subquery()))).one()
    page_statement = statement
    if after is not None:
        page_statement = page_statement.where(id_column < decode_cursor(after))
    page_statement = page_statement.order_by(id_column.desc()).limit(first + 1)
    rows = list((await session.exec(page_statement)).all())  # type: ignore[call-overload]
    return Page(
        rows=rows[:first],
        cursors=[encode_cursor(row.id) for row in rows[:first]],
        has_next_page=len(rows) > first,
        total_count=int(total),
    )
