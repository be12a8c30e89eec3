"""Cursor pagination over SQL, newest first: keyset on the primary key, so walking the
pages yields each row exactly once even while new rows arrive."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import func
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from recoverly.errors import RecoverlyError
from recoverly.models.base import TableRow, saved_id, table_of
from recoverly.resolvers.global_ids import MAX_ROW_ID

RowT = TypeVar("RowT", bound=TableRow)
MAX_PAGE_SIZE = 100
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_=-]{1,40}")
_CURSOR = re.compile(r"cursor:([1-9][0-9]{0,9})")


class PaginationError(RecoverlyError, ValueError):
    """A ``first`` or ``after`` argument the API cannot serve."""


@dataclass
class Page(Generic[RowT]):
    rows: list[RowT]
    cursors: list[str]
    has_next_page: bool
    # The listing's total: known (``paginate_each`` counts every key at once), or counted
    # with ``count_statement`` (see ``count_rows``) when a client asks for it.
    total_count: int | None = None
    count_statement: SelectOfScalar[int] | None = None


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"cursor:{row_id}".encode()).decode()


def row_cursors(rows: Sequence[TableRow]) -> list[str]:
    """The cursor of each row (a row read from the database has its ``id``)."""
    return [encode_cursor(saved_id(row)) for row in rows]


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
    statement: SelectOfScalar[RowT],
    *,
    model: type[RowT],
    first: int,
    after: str | None,
    columns_only: bool = False,
) -> Page[RowT]:
    """One page of ``statement`` (already filtered and scoped); the total is counted apart,
    only when asked for. With ``columns_only`` the rows are Core rows of the model's columns
    (cheaper than ORM objects, for pages whose columns are all their readers need)."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise PaginationError(f"first must be between 1 and {MAX_PAGE_SIZE}, got {first}")
    id_column = col(model.id)
    page_statement = statement
    if after is not None:
        page_statement = page_statement.where(id_column < decode_cursor(after))
    page_statement = page_statement.order_by(id_column.desc()).limit(first + 1)
    if columns_only:
        connection = await session.connection()
        rows: list[Any] = list((await connection.execute(page_statement)).all())
    else:
        rows = list((await session.exec(page_statement)).all())
    return Page(
        rows=rows[:first],
        cursors=row_cursors(rows[:first]),
        has_next_page=len(rows) > first,
        count_statement=_count(statement, model),
    )


def _count(statement: SelectOfScalar[Any], model: type[TableRow]) -> SelectOfScalar[int]:
    # A listing of one table counts with its own WHERE clause, so the count can use an
    # index, where a count over the listing as a subquery reads every row; joined
    # listings count their subquery. The test reads what the statement was built from:
    # ``get_final_froms()`` would compile the whole statement (milliseconds per page).
    table = table_of(model)
    froms = statement.columns_clause_froms
    if statement._setup_joins or statement._from_obj or len(froms) != 1 or froms[0] is not table:
        return select(func.count()).select_from(statement.subquery())
    count = select(func.count()).select_from(table)
    return count if statement.whereclause is None else count.where(statement.whereclause)


async def count_rows(session: AsyncSession, count_statement: SelectOfScalar[int]) -> int:
    return int((await session.exec(count_statement)).one())


async def paginate_each(
    session: AsyncSession,
    statement: SelectOfScalar[RowT],
    *,
    model: type[RowT],
    key: Any,
    keys: list[int],
    first: int,
    after: str | None,
) -> dict[int, Page[RowT]]:
    """The same page of ``statement`` for each of ``keys`` (a column of it, such as a
    group ID), in two statements whatever the number of keys: nested connections cost
    no more per parent than one connection."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise PaginationError(f"first must be between 1 and {MAX_PAGE_SIZE}, got {first}")
    id_column = col(model.id)
    base = statement.where(key.in_(keys))
    counted = base.add_columns(key.label("page_key")).subquery()
    totals = dict(
        (
            await session.exec(
                select(counted.c.page_key, func.count()).group_by(counted.c.page_key)
            )
        ).all()
    )
    if after is not None:
        base = base.where(id_column < decode_cursor(after))
    rank = func.row_number().over(partition_by=key, order_by=id_column.desc())
    ranked = base.add_columns(key.label("page_key"), rank.label("page_rank")).subquery()
    rows = aliased(model, ranked)
    page_statement = (
        select(rows, ranked.c.page_key)
        .where(ranked.c.page_rank <= first + 1)
        .order_by(ranked.c.page_key, ranked.c.page_rank)
    )
    found: dict[int, list[RowT]] = {k: [] for k in keys}
    for row, page_key in (await session.exec(page_statement)).all():
        found[page_key].append(row)
    return {
        k: Page(
            rows=found[k][:first],
            cursors=row_cursors(found[k][:first]),
            has_next_page=len(found[k]) > first,
            total_count=int(totals.get(k, 0)),
        )
        for k in keys
    }
