"""Export a product instance into a backup archive, reading the database a chunk at a time.

Rows are read by keyset (``id > last ORDER BY id LIMIT n``) in short transactions and handed
to the zip writer in a worker thread, so neither memory nor the event loop is held up by the
size of the site. A row whose reference was not exported (a personal space's page, or a
comment added after its issue was read) is left out, so every archive is self-consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Row, func, select

from recoverly.database import Database
from recoverly.models import ProductInstance
from recoverly.products.archive import Manifest
from recoverly.products.archive_writer import ArchiveWriter, RecordSink
from recoverly.products.entities import EntitySpec, entities_for, referenced

BLOB_CHUNK_ROWS = 64  # attachment rows carry their content

ProgressCallback = Callable[[int], Awaitable[None]]  # rows read from the site so far
StopCheck = Callable[[], Awaitable[bool]]


class ExportStopped(Exception):
    """``should_stop`` asked the export to stop; the partial archive is discarded."""


async def _no_progress(done: int) -> None:
    return None


async def _never_stop() -> bool:
    return False


def export_specs(
    instance: ProductInstance, *, include_attachments: bool, include_users_and_groups: bool
) -> list[EntitySpec]:
    """The entities a backup of ``instance`` with these options reads, in export order."""
    return [
        spec
        for spec in entities_for(instance.product)
        if spec.included(
            include_attachments=include_attachments,
            include_users_and_groups=include_users_and_groups,
        )
    ]


async def count_export_rows(
    db: Database,
    *,
    instance: ProductInstance,
    include_attachments: bool,
    include_users_and_groups: bool,
) -> int:
    """Rows an export would read now: a backup's ``items_total`` before it starts."""
    specs = export_specs(
        instance,
        include_attachments=include_attachments,
        include_users_and_groups=include_users_and_groups,
    )
    total = 0
    async with db.session() as session:
        conn = await session.connection()
        for spec in specs:
            statement = select(func.count()).where(spec.table.c.instance_id == _id(instance))
            total += int((await conn.execute(statement)).scalar_one())
    return total


async def export_instance(
    db: Database,
    *,
    instance: ProductInstance,
    path: Path,
    include_attachments: bool,
    include_users_and_groups: bool,
    include_personal_spaces: bool,
    chunk_size: int = 2000,
    on_progress: ProgressCallback = _no_progress,
    should_stop: StopCheck = _never_stop,
) -> Manifest:
    """Write the instance's data into an archive at ``path`` and return its manifest.

    ``on_progress`` hears how many rows were read after each chunk (kept in the archive or
    not, so the count ends at ``count_export_rows``); ``should_stop`` is asked before each chunk."""
    specs = export_specs(
        instance,
        include_attachments=include_attachments,
        include_users_and_groups=include_users_and_groups,
    )
    options = {
        "include_attachments": include_attachments,
        "include_users_and_groups": include_users_and_groups,
        "include_personal_spaces": include_personal_spaces,
    }
    writer = await asyncio.to_thread(
        ArchiveWriter,
        path,
        product=str(instance.product),
        source_instance=source_of(instance),
        options=options,
    )
    export = _Export(
        db,
        writer,
        instance_id=_id(instance),
        chunk_size=chunk_size,
        specs=specs,
        include_personal_spaces=include_personal_spaces,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    try:
        for spec in specs:
            await export.entity(spec)
        return await asyncio.to_thread(writer.close)
    except BaseException:
        await asyncio.to_thread(writer.abort)
        raise


def source_of(instance: ProductInstance) -> dict[str, Any]:
    return {
        "id": instance.id,
        "name": instance.name,
        "url": instance.url,
        "product": str(instance.product),
    }


def _id(instance: ProductInstance) -> int:
    if instance.id is None:
        raise ValueError("the instance has no id: it is not stored yet")
    return instance.id


async def iter_rows(
    db: Database,
    table: Any,
    columns: Iterable[str],
    *,
    instance_id: int,
    chunk_size: int,
) -> AsyncIterator[list[Row[Any]]]:
    """The instance's rows of ``table`` in ID order, one short transaction per chunk."""
    selected = [table.c.id, *(table.c[name] for name in columns)]
    last = 0
    while True:
        statement = (
            select(*selected)
            .where(table.c.instance_id == instance_id, table.c.id > last)
            .order_by(table.c.id)
            .limit(chunk_size)
        )
        async with db.session() as session:
            rows = list((await (await session.connection()).execute(statement)).all())
        if not rows:
            return
        yield rows
        last = rows[-1].id
        if len(rows) < chunk_size:
            return


class _Export:
    """The state of one export: the writer and the IDs exported so far per referenced entity."""

    def __init__(
        self,
        db: Database,
        writer: ArchiveWriter,
        *,
        instance_id: int,
        chunk_size: int,
        specs: list[EntitySpec],
        include_personal_spaces: bool,
        on_progress: ProgressCallback,
        should_stop: StopCheck,
    ) -> None:
        self.db, self.writer = db, writer
        self.on_progress, self.should_stop = on_progress, should_stop
        self.rows_read = 0
        self.instance_id, self.chunk_size = instance_id, chunk_size
        self.include_personal_spaces = include_personal_spaces
        self.exported: dict[str, set[int]] = {name: set() for name in referenced(specs)}

    async def entity(self, spec: EntitySpec) -> None:
        if spec.blob_column:
            await self._blob_entity(spec)
            return
        async with _member(self.writer, spec) as sink:
            async for chunk in self._records(spec):
                await asyncio.to_thread(_write_records, sink, chunk)

    async def _blob_entity(self, spec: EntitySpec) -> None:
        """Blobs go in first; their metadata is spooled and becomes the member afterwards."""
        with tempfile.TemporaryFile() as spool:
            async for chunk in self._records(spec):
                await asyncio.to_thread(_write_blobs, self.writer, spool, chunk, spec)
            await asyncio.to_thread(_copy_spool, self.writer, spool, spec)

    async def _records(self, spec: EntitySpec) -> AsyncIterator[list[dict[str, Any]]]:
        columns = [*spec.fields, *spec.references]
        if spec.blob_column:
            columns.append(spec.blob_column)
        size = min(self.chunk_size, BLOB_CHUNK_ROWS) if spec.blob_column else self.chunk_size
        rows = iter_rows(
            self.db, spec.table, columns, instance_id=self.instance_id, chunk_size=size
        )
        async for chunk in rows:
            if await self.should_stop():
                raise ExportStopped(f"export stopped at {spec.name}")
            yield [row._asdict() for row in chunk if self._keep(spec, row)]
            self.rows_read += len(chunk)
            await self.on_progress(self.rows_read)

    def _keep(self, spec: EntitySpec, row: Row[Any]) -> bool:
        """Drop personal spaces (unless asked for) and rows whose parent was not exported."""
        personal = spec.personal_column and getattr(row, spec.personal_column)
        if personal and not self.include_personal_spaces:
            return False
        for column, target in spec.references.items():
            value = getattr(row, column)
            if value is not None and target != spec.name and value not in self.exported[target]:
                return False
        if spec.name in self.exported:
            self.exported[spec.name].add(row.id)
        return True


@contextlib.asynccontextmanager
async def _member(writer: ArchiveWriter, spec: EntitySpec) -> AsyncIterator[RecordSink]:
    """``writer.records()`` with its zip work (opening, final flush) done in a worker thread."""
    records = writer.records(spec.member, entity=spec.name)
    sink = await asyncio.to_thread(records.__enter__)
    try:
        yield sink
    except BaseException as exc:
        await asyncio.to_thread(records.__exit__, type(exc), exc, exc.__traceback__)
        raise
    await asyncio.to_thread(records.__exit__, None, None, None)


def _write_records(sink: RecordSink, records: list[dict[str, Any]]) -> None:
    for record in records:
        sink.write(record)


def _write_blobs(
    writer: ArchiveWriter, spool: IO[bytes], records: list[dict[str, Any]], spec: EntitySpec
) -> None:
    assert spec.blob_column is not None
    for record in records:
        content = record.pop(spec.blob_column)
        record["sha256"] = writer.write_blob(content)
        record["size"] = len(content)
        spool.write(json.dumps(record, default=_iso).encode() + b"\n")


def _iso(value: Any) -> str:
    return str(value.isoformat())


def _copy_spool(writer: ArchiveWriter, spool: IO[bytes], spec: EntitySpec) -> None:
    spool.seek(0)
    with writer.records(spec.member, entity=spec.name) as sink:
        for line in spool:
            sink.write(json.loads(line))
