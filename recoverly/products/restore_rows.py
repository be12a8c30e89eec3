"""Turning archive records into rows and inserting them fast, through the database driver.

Core's per-row parameter handling costs more than SQLite's own insert, so ``BulkInsert``
compiles one INSERT per table and dialect, builds the parameters a column at a time and
converts values with each column's own bind processor (with a shortcut for UTC timestamps
where it gives the same text). PostgreSQL gets them through asyncpg's COPY.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Column, Dialect, Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from recoverly.products.archive import ArchiveError
from recoverly.products.archive_reader import ArchiveReader
from recoverly.products.entities import EntitySpec
from recoverly.products.restore_plan import source_id_of

Convert = Callable[[Any], Any]


class BulkInsert:
    """One table's INSERT through the driver, records turned into its parameters here.

    Core's per-row parameter handling costs more than SQLite's own insert, so the statement is
    compiled once for the connection's dialect and values go through each column's bind
    processor, as Core would: every column is listed, with its default when a row lacks it
    (defaults and constants are converted once). With ``?`` placeholders, rows go as multi-row
    ``VALUES`` pages (as Core's insertmanyvalues does, in larger pages); with asyncpg, through
    COPY; else through ``executemany``.
    """

    def __init__(
        self,
        spec: EntitySpec,
        dialect: Dialect,
        constants: dict[str, Any],
        *,
        table: Table | None = None,
    ) -> None:
        self.spec = spec
        table = spec.target if table is None else table
        self.table = table
        columns = [column for column in table.c if not column.primary_key]
        self.names = [column.name for column in columns]
        compiled = insert(table).inline().compile(dialect=dialect, column_keys=self.names)
        if list(compiled.positiontup or ()) != self.names:
            raise RuntimeError(f"cannot prepare a positional INSERT for {table.name}")
        self.sql = compiled.string
        head, _, group = self.sql.rpartition(" VALUES ")
        self._paged = group == "(" + ", ".join("?" * len(self.names)) + ")"
        self._head, self._group = head + " VALUES ", group
        # As many rows per page as SQLite's 32,766 variables allow: a page is a round trip to
        # the driver's thread, and the longer the statement, the longer SQLite runs without the
        # GIL while the archive is read.
        self.page_rows = max(1, 30000 // len(columns))
        self._copy = dialect.name == "postgresql" and dialect.driver == "asyncpg"
        processors = {
            column.name: processor
            for column in columns
            if (processor := column.type.dialect_impl(dialect).bind_processor(dialect))
        }
        given = {*spec.fields, *spec.references, "source_id", spec.blob_column}
        fixed = {c.name: _default(c) for c in columns if c.name not in given}
        fixed.update(constants)  # constants win over the record's values
        self._fixed = {name: _convert(processors.get(name), v) for name, v in fixed.items()}
        self._converters = {
            name: converter
            for name in self.names
            if name not in fixed and (converter := _converter(spec, name, processors.get(name)))
        }

    def rows(
        self,
        records: list[dict[str, Any]],
        refs: dict[str, list[Any]],
        blobs: list[bytes] | None = None,
    ) -> Rows:
        """The INSERT's parameters for ``records``, their references mapped (``refs``: a list
        per column), attachments' content in ``blobs``.

        Built a column at a time, so the per-value work runs in C (``map``) but for
        conversions, and without a tuple per row; if a value is refused, the records are
        taken again one by one so that the error is the first bad record's, as row by row.
        """
        try:
            return self._rows(records, refs, blobs)
        except Exception as error:
            failure = error
        for i in range(len(records)):
            one = {column: values[i : i + 1] for column, values in refs.items()}
            self._rows(records[i : i + 1], one, blobs[i : i + 1] if blobs else None)
        raise failure

    def _rows(
        self, records: list[dict[str, Any]], refs: dict[str, list[Any]], blobs: list[bytes] | None
    ) -> Rows:
        count = len(records)
        ids = list(map(dict.get, records, itertools.repeat("id")))
        if set(map(type, ids)) - {int}:
            for record in records:
                source_id_of(self.spec, record)  # raises for the first without an integer id
        given: dict[str, list[Any]] = {**refs, "source_id": ids}
        if self.spec.blob_column:
            given[self.spec.blob_column] = blobs or [None] * count
        columns: list[list[Any]] = []
        for name in self.names:
            if name in self._fixed:
                columns.append([self._fixed[name]] * count)
                continue
            values = given.get(name)
            if values is None:  # one of the record's fields
                values = list(map(dict.get, records, itertools.repeat(name)))
            convert = self._converters.get(name)
            columns.append(values if convert is None else list(map(convert, values)))
        if any(len(values) != count for values in columns):
            raise ValueError(f"{self.spec.name}: columns of unequal length")
        return Rows(columns, count)

    async def run(self, conn: AsyncConnection, rows: Rows) -> None:
        """Insert ``rows`` in the connection's transaction: asyncpg's COPY on PostgreSQL
        (``executemany`` waits on the server row by row), else ``VALUES`` pages."""
        if self._copy:
            driver = await _driver_in_transaction(conn)
            table = self.table
            await driver.copy_records_to_table(
                table.name, schema_name=table.schema, columns=self.names, records=rows.tuples()
            )
        elif self._paged:
            for start in range(0, rows.count, self.page_rows):
                page = rows.page(start, start + self.page_rows)
                groups = itertools.repeat(self._group, len(page) // rows.width)
                await conn.exec_driver_sql(self._head + ", ".join(groups), page)
        else:
            await conn.exec_driver_sql(self.sql, rows.tuples())


@dataclass
class Rows:
    """An INSERT's parameters, a list per column in the statement's order, ``count`` long."""

    columns: list[list[Any]]
    count: int

    @property
    def width(self) -> int:
        return len(self.columns)

    def tuples(self) -> list[tuple[Any, ...]]:
        return list(zip(*self.columns, strict=True))

    def page(self, start: int, stop: int) -> tuple[Any, ...]:
        """Rows ``start`` to ``stop`` as one flat tuple, row after row (a multi-row VALUES)."""
        stop = min(stop, self.count)
        flat: list[Any] = [None] * ((stop - start) * self.width)
        for position, values in enumerate(self.columns):
            flat[position :: self.width] = values[start:stop]
        return tuple(flat)


async def _driver_in_transaction(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn``, inside its transaction.

    SQLAlchemy's asyncpg adapter begins the transaction at the first statement; COPY goes
    around the adapter, so a first statement is sent through it if none was yet. COPY never
    runs outside the transaction that also writes the checkpoint.
    """
    driver = (await conn.get_raw_connection()).driver_connection
    if driver is not None and not driver.is_in_transaction():
        await conn.exec_driver_sql("SELECT 1")
    if driver is None or not driver.is_in_transaction():
        raise RuntimeError("no transaction to COPY in: the restore needs one per chunk")
    return driver


def read_blobs(
    reader: ArchiveReader, spec: EntitySpec, records: list[dict[str, Any]]
) -> list[bytes]:
    """Each attachment record's content, read (and hash-checked) from the archive."""
    contents = []
    for record in records:
        content = reader.read_blob(record.get("sha256"))  # type: ignore[arg-type]
        if record.get("size") != len(content):
            raise ArchiveError(
                f"{spec.name}: attachment {record.get('filename')!r} is {len(content)} bytes, "
                f"its record says {record.get('size')}"
            )
        contents.append(content)
    return contents


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


def _convert(processor: Convert | None, value: Any) -> Any:
    return value if processor is None else processor(value)


def _converter(spec: EntitySpec, name: str, processor: Convert | None) -> Convert | None:
    """How a value from the archive becomes a bind value: times parsed, then the processor."""
    if name not in spec.datetime_fields:
        return processor

    def time(value: Any) -> Any:
        return None if value is None else _convert(processor, _timestamp(value, spec))

    if processor is None:
        return time
    sliced = _sqlite_time(spec, processor)
    return sliced if all(sliced(probe) == time(probe) for probe in _PROBES) else time


def _sqlite_time(spec: EntitySpec, processor: Convert) -> Convert:
    """Times as SQLite's stored text (``YYYY-MM-DD HH:MM:SS.ffffff``), sliced from the ISO text
    when it is UTC as ``isoformat()`` writes it: parsing, shifting and formatting cost more than
    the row's insert. The text is still parsed, so an invalid time is refused as before; any
    other layout goes through the processor. Used only where the probes agree."""

    def time(value: Any) -> Any:
        if value is None:
            return None
        parsed = _timestamp(value, spec)
        if value[19:] == "+00:00" and value[4:17:3] == "--T::":  # YYYY-MM-DDTHH:MM:SS+00:00
            return value[:10] + " " + value[11:19] + ".000000"
        if value[26:] == "+00:00" and value[4:20:3] == "--T::.":  # ...THH:MM:SS.ffffff+00:00
            return value[:10] + " " + value[11:26]
        return processor(parsed)

    return time


def _timestamp(value: Any, spec: EntitySpec) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ArchiveError(f"{spec.name}: {value!r} is not an ISO-8601 time") from exc
    if parsed.tzinfo is None:
        raise ArchiveError(f"{spec.name}: {value!r} has no UTC offset")
    return parsed


# Times in both layouts that ``_sqlite_time`` slices, and one it does not.
_PROBES = (
    "2024-03-05T10:20:30.123456+00:00",
    "2024-03-05T10:20:30+00:00",
    "0987-12-31T23:00:00.000001+00:00",
    "0987-12-31T23:00:00-05:00",
)
