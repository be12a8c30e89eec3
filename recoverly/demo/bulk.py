"""Bulk inserts with SQLAlchemy Core: batches of rows per statement, ids back in row order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from recoverly.models.base import table_of

BATCH_SIZE = 1000
BLOB_BATCH_SIZE = 200  # attachment rows carry up to 20 KiB each


async def insert_rows(
    conn: AsyncConnection,
    model: Any,
    rows: Sequence[dict[str, Any]],
    *,
    returning: bool = False,
    batch_size: int = BATCH_SIZE,
) -> list[int]:
    """Bulk-insert ``rows`` in batches; with ``returning``, the new ids in row order."""
    table = table_of(model)
    # Restore bookkeeping columns stay empty for demo data; every row needs the same keys.
    padding = {name: None for name in ("restore_id", "source_id") if name in table.c}
    ids: list[int] = []
    for start in range(0, len(rows), batch_size):
        chunk = [{**padding, **row} for row in rows[start : start + batch_size]]
        if returning:
            statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            ids.extend((await conn.execute(statement, chunk)).scalars())
        else:
            await conn.execute(insert(table), chunk)
    return ids


class BatchWriter:
    """Collects rows and inserts them a batch at a time, so memory stays flat."""

    def __init__(self, conn: AsyncConnection, model: Any, batch_size: int = BATCH_SIZE) -> None:
        self.conn, self.model, self.batch_size = conn, model, batch_size
        self.rows: list[dict[str, Any]] = []

    async def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.batch_size:
            await self.flush()

    async def flush(self) -> None:
        if self.rows:
            await insert_rows(self.conn, self.model, self.rows, batch_size=self.batch_size)
            self.rows = []
