"""Turning archive records into rows and inserting them fast, through the database driver.

Core's per-row parameter handling costs more than SQLite's own insert, so ``BulkInsert``
compiles one INSERT per table and dialect and converts values with each column's own bind
processor (a faster equivalent for UTC datetimes where it gives the same text).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Any

from sqlalchemy import Column, Dialect, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from recoverly.models.base import UTCDateTime
from recoverly.products.archive import ArchiveError
from recoverly.products.entities import EntitySpec
from recoverly.products.restore_plan import Verdict, source_id_of


def row_of(spec: EntitySpec, record: dict[str, Any], verdict: Verdict) -> dict[str, Any]:
    """The record's fields (times parsed) and mapped references, keyed by column."""
    row = {name: record.get(name) for name in spec.fields}
    for name in spec.datetime_fields:
        if row[name] is not None:
            row[name] = _timestamp(row[name], spec)
    row.update(verdict.refs)
    row["source_id"] = source_id_of(spec, record)
    return row


class BulkInsert:
    """One table's INSERT through the driver, rows turned into parameter tuples here.

    Core's per-row parameter handling costs more than SQLite's own insert, so the statement is
    compiled once for the connection's dialect and values go through each column's bind
    processor, as Core would: every column is listed, with its default when a row lacks it.
    With ``?`` placeholders, rows go as multi-row ``VALUES`` pages (as Core's insertmanyvalues
    does), else through ``executemany``.
    """

    def __init__(self, spec: EntitySpec, dialect: Dialect, constants: dict[str, Any]) -> None:
        table = spec.target
        columns = [column for column in table.c if not column.primary_key]
        names = [column.name for column in columns]
        compiled = insert(table).inline().compile(dialect=dialect, column_keys=names)
        if list(compiled.positiontup or ()) != names:
            raise RuntimeError(f"cannot prepare a positional INSERT for {table.name}")
        self.sql = compiled.string
        head, _, group = self.sql.rpartition(" VALUES ")
        self._paged = group == "(" + ", ".join("?" * len(names)) + ")"
        self._head, self._group = head + " VALUES ", group
        self.page_rows = max(1, min(dialect.insertmanyvalues_page_size, 30000 // len(names)))
        given = {*spec.fields, *spec.references, "source_id", spec.blob_column}
        self.fixed = {c.name: _default(c) for c in columns if c.name not in given}
        self.fixed.update(constants)
        self.processors = [
            (column.name, _faster(column, processor))
            for column in columns
            if (processor := column.type.dialect_impl(dialect).bind_processor(dialect))
        ]
        self.ordered = operator.itemgetter(*names)

    async def run(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        params = [self.values(row) for row in rows]
        if not self._paged:
            await conn.exec_driver_sql(self.sql, params)
            return
        for start in range(0, len(params), self.page_rows):
            page = params[start : start + self.page_rows]
            sql = self._head + ", ".join(itertools.repeat(self._group, len(page)))
            await conn.exec_driver_sql(sql, tuple(itertools.chain.from_iterable(page)))

    def values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        row.update(self.fixed)
        for name, process in self.processors:
            row[name] = process(row[name])
        values: tuple[Any, ...] = self.ordered(row)
        return values


def _default(column: Column[Any]) -> Any:
    """A column's Python-side default (evaluated once per restore for callables), else None."""
    default = column.default
    if default is not None and default.is_callable:
        value = default.arg(None)  # type: ignore[attr-defined]
    elif default is not None and default.is_scalar:
        value = default.arg  # type: ignore[attr-defined]
    else:
        return None
    return value.value if isinstance(value, Enum) else value


def _timestamp(value: Any, spec: EntitySpec) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ArchiveError(f"{spec.name}: {value!r} is not an ISO-8601 time") from exc
    if parsed.tzinfo is None:
        raise ArchiveError(f"{spec.name}: {value!r} has no UTC offset")
    return parsed


_PROBES = (
    datetime(2024, 3, 5, 10, 20, 30, 123456, tzinfo=UTC),
    datetime(987, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
)


def _faster(column: Column[Any], processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``_utc_text`` where it gives what the column's bind processor gives (SQLite's UTC
    datetimes as text): the generic processor chain costs more than the row's insert."""
    if isinstance(column.type, UTCDateTime) and all(
        processor(probe) == _utc_text(probe) for probe in _PROBES
    ):
        return _utc_text
    return processor


def _utc_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
