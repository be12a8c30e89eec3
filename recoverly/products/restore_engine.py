"""Restore an archive into a destination instance: chunked, checkpointed, resumable, purgeable.

The engine writes product rows only. What to restore comes in as a ``RestoreOrder`` (made by
the restore's service, with the ``Checkpoint`` to resume from); the checkpoints and the
progress go out through a ``RestoreStore``, the service's, which owns the ``Restore`` row.
Each chunk of records is inserted in one transaction together with its checkpoint: the
store writes it on the connection of that transaction. A restart gets the last checkpoint,
rebuilds the ID maps from the rows tagged with ``restore_id`` and carries on, so a restore
killed at any point ends exactly like an uninterrupted one. The next chunk is read from the
archive in a worker thread while this one is written (``RecordChunks``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from recoverly.database import Database
from recoverly.errors import RecoverlyError
from recoverly.models import (
    AccessReview,
    AccessReviewKind,
    AccessReviewStatus,
    GroupMembership,
    GroupProductAccess,
    HeldMembership,
    RestorePhase,
    SiteGroup,
    table_of,
    utcnow,
)
from recoverly.products.archive_reader import ArchiveReader, RecordChunks
from recoverly.products.entities import EntitySpec, purge_order
from recoverly.products.restore_plan import (
    HELD_COUNT,
    RecordOutcome,
    Resolved,
    Resolver,
    RestoreOptions,
    RestorePlan,
    plan_restore,
    record_count,
    restore_specs,
)
from recoverly.products.restore_rows import BulkInsert, Rows, read_blobs

__all__ = [
    "Checkpoint",
    "RestoreIncompleteError",
    "RestoreOptions",
    "RestoreOrder",
    "RestorePlan",
    "RestoreResult",
    "RestoreStopped",
    "RestoreStore",
    "plan_restore",
    "purge_restore",
    "restore_archive",
]

BLOB_CHUNK_BYTES = 32 * 1024 * 1024  # attachment chunks also stop at this many bytes
FINALIZING = RestorePhase.FINALIZING.value


class RestoreStopped(RecoverlyError):
    """The store asked the restore to stop; the last checkpoint is where it resumes."""


class RestoreIncompleteError(RecoverlyError):
    """Some archive records were neither written, mapped to existing rows nor skipped."""


@dataclass(frozen=True)
class Checkpoint:
    """Where a restore resumes: record ``index`` of member ``entity``, with the state after
    the records before it (records written so far, self-references waiting for a later chunk
    of ``entity``, outcome counts per entity).

    Stored as the JSON object ``{"entity", "index", "items_done", "deferred", "counts"}``
    (``to_json``), the format every version wrote; ``from_json`` reads it back."""

    entity: str
    index: int
    items_done: int
    deferred: int = 0
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "index": self.index,
            "items_done": self.items_done,
            "deferred": self.deferred,
            "counts": {name: dict(counts) for name, counts in self.counts.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, items_done: int = 0) -> Checkpoint:
        """A stored checkpoint; ``items_done`` (the row's) stands in when it lacks its own."""
        counts = data.get("counts") or {}
        return cls(
            entity=str(data.get("entity")),
            index=int(data.get("index", 0)),
            items_done=int(data.get("items_done", items_done)),
            deferred=int(data.get("deferred", 0)),
            counts={
                str(name): {str(k): int(v) for k, v in c.items()} for name, c in counts.items()
            },
        )


@dataclass(frozen=True)
class RestoreOrder:
    """What to restore where, as the restore's service decided it: the engine checks none of
    it again (the destination is of the archive's product, the options are the restore's)."""

    restore_id: int
    organization_id: int
    destination_id: int
    options: RestoreOptions
    checkpoint: Checkpoint | None = None  # None: from the start


class RestoreStore(Protocol):
    """The owner of a restore's row, as the engine sees it: where checkpoints and progress go.

    ``save_checkpoint`` runs on ``conn``, inside the transaction that writes the chunk the
    checkpoint describes: both commit, or neither (a crash loses the chunk with its
    checkpoint). ``report_progress`` hears the phase and the records written so far
    (skipped records and those mapped to rows already there are not progress, so a restore
    ends at its plan's ``items_total``); ``should_stop`` is asked before each chunk."""

    async def save_checkpoint(
        self, conn: AsyncConnection, checkpoint: Checkpoint, *, phase: str
    ) -> None: ...

    async def report_progress(self, phase: str, items_done: int) -> None: ...

    async def should_stop(self) -> bool: ...


@dataclass
class RestoreResult:
    entity_counts: dict[str, int]  # rows written per entity
    skipped_spaces: list[str]
    access_reviews: int
    existing: dict[str, int]  # records mapped to rows the destination already had
    skipped: dict[str, int]  # records skipped with their space
    held: dict[str, int] = field(default_factory=dict)  # records held for an access review


async def restore_archive(
    db: Database,
    reader: ArchiveReader,
    order: RestoreOrder,
    store: RestoreStore,
    *,
    chunk_size: int,
) -> RestoreResult:
    """Write the archive's records into the order's destination, from its checkpoint on.

    The archive should have passed ``reader.verify()``: members are checked as they are read,
    but a defect found late leaves rows behind for ``purge_restore`` to remove.
    """
    specs = restore_specs(reader.manifest, order.options)
    run = _Run(db, reader, specs, order, store, chunk_size=chunk_size)
    for spec, start in await run.resume(order.checkpoint):
        await run.entity(spec, start)
    return await run.finish()


class _Run:
    """One restore's state: resolver (ID maps), counts and progress."""

    def __init__(
        self,
        db: Database,
        reader: ArchiveReader,
        specs: list[EntitySpec],
        order: RestoreOrder,
        store: RestoreStore,
        *,
        chunk_size: int,
    ) -> None:
        self.db, self.reader, self.specs, self.store = db, reader, specs, store
        self.restore_id, self.destination_id = order.restore_id, order.destination_id
        self.organization_id, self.chunk_size = order.organization_id, max(1, chunk_size)
        self.product = str(reader.manifest.product)
        self.resolver = Resolver(
            specs, destination_id=self.destination_id, restore_id=self.restore_id
        )
        self.counts: dict[str, dict[str, int]] = {}
        self.items_done = 0
        self.deferred = 0
        self.phase: str | None = None
        self._inserts: dict[str, BulkInsert] = {}

    # --- Resuming --------------------------------------------------------------------

    async def resume(self, checkpoint: Checkpoint | None) -> list[tuple[EntitySpec, int]]:
        """Where to start: every member from 0, or from the checkpoint after rebuilding state."""
        if checkpoint is None:
            return [(spec, 0) for spec in self.specs]
        names = [spec.name for spec in self.specs]
        if checkpoint.entity not in names:
            raise RestoreIncompleteError(f"checkpoint {checkpoint} does not match this restore")
        position, index = names.index(checkpoint.entity), checkpoint.index
        self.counts = {name: dict(c) for name, c in checkpoint.counts.items()}
        self.items_done = checkpoint.items_done
        self.deferred = checkpoint.deferred
        for spec in self.specs[:position]:
            await self._rebuild(spec, end=None)
        await self._rebuild(self.specs[position], end=index)
        return [(self.specs[position], index), *((s, 0) for s in self.specs[position + 1 :])]

    async def _rebuild(self, spec: EntitySpec, *, end: int | None) -> None:
        """The entity's ID map from the database, plus what was skipped or mapped (replayed)."""
        if spec.name not in self.resolver.tracked:
            return
        table = spec.target
        statement = select(table.c.source_id, table.c.id).where(
            table.c.restore_id == self.restore_id
        )
        async with self.db.session() as session:
            rows = (await (await session.connection()).execute(statement)).all()
        state = self.resolver.states[spec.name]
        state.ids.update((source_id, row_id) for source_id, row_id in rows)
        state.last_id = max((row_id for _, row_id in rows), default=0)
        if self.resolver.may_skip(spec):
            await self.resolver.load_keys(self.db, spec)
            await asyncio.to_thread(self.resolver.replay, self.reader, spec, end)

    # --- Writing ---------------------------------------------------------------------

    async def entity(self, spec: EntitySpec, start: int) -> None:
        """Restore one member from record ``start`` on, a chunk per transaction."""
        if spec.phase != self.phase:
            self.phase = spec.phase
            await self.store.report_progress(spec.phase, self.items_done)
        await self.resolver.load_keys(self.db, spec)
        if start == 0:
            self.deferred = 0
        # Attachments read their blobs from the archive too: one reader thread at a time.
        chunks = RecordChunks(
            self.reader.iter_batches(spec.member, start=start),
            size=self.chunk_size,
            max_bytes=BLOB_CHUNK_BYTES if spec.blob_column else None,
            ahead=not spec.blob_column,
        )
        try:
            while not chunks.done:
                if await self.store.should_stop():
                    raise RestoreStopped(f"restore {self.restore_id} stopped at {spec.name}")
                first, records = await chunks.next()
                if records:
                    await self._chunk(spec, first, records)
                    await self.store.report_progress(spec.phase, self.items_done)
        finally:
            await chunks.close()
        if self.deferred:
            await self._fix_forward_references(spec)
            self.deferred = 0

    async def _chunk(self, spec: EntitySpec, first: int, records: list[dict[str, Any]]) -> None:
        """Write records ``first`` on, with the checkpoint after them, in one transaction."""
        # Classifying records and building rows is CPU work: in a worker thread, so the
        # event loop (which serves the API in the embedded mode) is never held for a chunk.
        inserter = self._inserter(spec)
        resolved, rows, held = await asyncio.to_thread(self._prepare, spec, inserter, records)
        counts = dict(self.counts.get(spec.name) or dict.fromkeys(RecordOutcome, 0))
        for outcome, count in resolved.counts.items():
            counts[outcome] = counts.get(outcome, 0) + count
        self.counts[spec.name] = counts
        self.items_done += (
            resolved.counts[RecordOutcome.WRITE] + resolved.counts[RecordOutcome.HELD]
        )
        async with self.db.transaction() as session:
            conn = await session.connection()
            await self._insert(conn, spec, rows)
            if held is not None:
                await self._hold(conn, spec, resolved, held)
            self.deferred += await self._link(conn, spec, resolved.links)
            checkpoint = Checkpoint(
                entity=spec.name,
                index=first + len(records),
                items_done=self.items_done,
                deferred=self.deferred,
                counts={name: dict(c) for name, c in self.counts.items()},
            )
            await self.store.save_checkpoint(conn, checkpoint, phase=spec.phase)

    def _prepare(
        self, spec: EntitySpec, inserter: BulkInsert, records: list[dict[str, Any]]
    ) -> tuple[Resolved, Rows, Rows | None]:
        """The chunk's resolved records and their INSERT parameters, and those of the records
        held for review (runs in a thread; the restore's state is touched by nothing else
        meanwhile)."""
        resolved = self.resolver.resolve(spec, records)
        blobs = None
        if spec.blob_column and resolved.records:
            blobs = read_blobs(self.reader, spec, resolved.records)
        held = None
        if resolved.held:
            held = self._inserter(spec, held=True).rows(resolved.held, resolved.held_refs)
        return resolved, inserter.rows(resolved.records, resolved.refs, blobs), held

    async def _hold(
        self, conn: AsyncConnection, spec: EntitySpec, resolved: Resolved, rows: Rows
    ) -> None:
        """Write records held for review, and the review of each group that has none yet
        from this restore (one per group: approving it adds the members)."""
        await self._inserter(spec, held=True).run(conn, rows)
        assert spec.held_by is not None
        groups = {g for g in resolved.held_refs[spec.held_by] if g is not None}
        reviews = table_of(AccessReview)
        statement = select(reviews.c.group_id).where(
            reviews.c.restore_id == self.restore_id, reviews.c.group_id.in_(groups)
        )
        groups -= set((await conn.execute(statement)).scalars())
        if not groups:
            return
        now = utcnow()
        await conn.execute(
            insert(reviews),
            [
                {
                    "organization_id": self.organization_id,
                    "instance_id": self.destination_id,
                    "group_id": group_id,
                    "product": self.product,
                    "restore_id": self.restore_id,
                    "kind": AccessReviewKind.MEMBERS.value,
                    "status": AccessReviewStatus.PENDING.value,
                    "created_at": now,
                }
                for group_id in sorted(groups)
            ],
        )

    async def _link(
        self, conn: AsyncConnection, spec: EntitySpec, links: list[tuple[str, Any, int]]
    ) -> int:
        """Set self-references to rows of this chunk; return how many wait for later chunks."""
        ids = self.resolver.states[spec.name].ids
        for column in spec.self_references:
            pairs = [(ids[s], ids[t]) for c, s, t in links if c == column and t in ids]
            await _set_references(conn, spec, column, pairs)
        return sum(1 for _, _, target in links if target not in ids)

    async def _insert(self, conn: AsyncConnection, spec: EntitySpec, rows: Rows) -> None:
        if not rows.count:
            return
        state = self.resolver.states[spec.name]
        await self._inserter(spec).run(conn, rows)
        if spec.name not in self.resolver.tracked:
            return
        # The driver returns no IDs: read them back, above the last one this restore wrote.
        table = spec.target
        statement = select(table.c.source_id, table.c.id).where(
            table.c.restore_id == self.restore_id, table.c.id > state.last_id
        )
        written = (await conn.execute(statement)).all()
        if len(written) != rows.count:
            raise RestoreIncompleteError(
                f"{spec.name}: {rows.count} inserted, {len(written)} found"
            )
        state.ids.update((source_id, row_id) for source_id, row_id in written)
        state.last_id = max(row_id for _, row_id in written)

    def _inserter(self, spec: EntitySpec, *, held: bool = False) -> BulkInsert:
        key = f"{spec.name}:held" if held else spec.name
        inserter = self._inserts.get(key)
        if inserter is None:
            table = spec.held_target if held else spec.target
            assert table is not None
            constants = {"instance_id": self.destination_id, "restore_id": self.restore_id}
            if "organization_id" in table.c:
                constants["organization_id"] = self.organization_id
            dialect = self.db.engine.dialect
            inserter = self._inserts[key] = BulkInsert(spec, dialect, constants, table=table)
        return inserter

    async def _fix_forward_references(self, spec: EntitySpec) -> None:
        """Set self-references that pointed at records later in the member (idempotent)."""
        updates = await asyncio.to_thread(self.resolver.forward_references, self.reader, spec)
        for column, pairs in updates.items():
            for start in range(0, len(pairs), self.chunk_size):
                async with self.db.transaction() as session:
                    conn = await session.connection()
                    await _set_references(
                        conn, spec, column, pairs[start : start + self.chunk_size]
                    )

    # --- Finishing -------------------------------------------------------------------

    async def finish(self) -> RestoreResult:
        """Check that every record is accounted for, in the counts and in the database."""
        await self.store.report_progress(FINALIZING, self.items_done)
        for spec in self.specs:
            await self._verify(spec)
        written = {name: c[RecordOutcome.WRITE] for name, c in self.counts.items()}
        reviews = sum(written.get(s.name, 0) for s in self.specs if not s.restored_as_is)
        held = {name: n for name, c in self.counts.items() if (n := c.get(RecordOutcome.HELD))}
        if held:
            written[HELD_COUNT] = sum(held.values())
            reviews += await self._count(table_of(AccessReview), kind=AccessReviewKind.MEMBERS)
        return RestoreResult(
            entity_counts=written,
            skipped_spaces=sorted(
                key for state in self.resolver.states.values() for key in state.skipped_keys
            ),
            access_reviews=reviews,
            existing={name: c[RecordOutcome.EXISTING] for name, c in self.counts.items()},
            skipped={name: c[RecordOutcome.SKIP] for name, c in self.counts.items()},
            held=held,
        )

    async def _count(self, table: Any, **equal: Any) -> int:
        """Rows of ``table`` this restore wrote (with the given column values)."""
        statement = select(func.count()).where(table.c.restore_id == self.restore_id)
        for column, value in equal.items():
            statement = statement.where(table.c[column] == value)
        async with self.db.session() as session:
            return int((await (await session.connection()).execute(statement)).scalar_one())

    async def _verify(self, spec: EntitySpec) -> None:
        expected = record_count(self.reader.manifest, spec)
        counts = self.counts.get(spec.name) or dict.fromkeys(RecordOutcome, 0)
        if sum(counts.values()) != expected:
            raise RestoreIncompleteError(
                f"{spec.name}: the archive holds {expected} records, "
                f"{sum(counts.values())} were restored, mapped or skipped"
            )
        # Access reviews of held members share the reviews' table: counted with those.
        reviews = {} if spec.restored_as_is else {"kind": AccessReviewKind.GROUP_ACCESS.value}
        for table, outcome, equal in (
            (spec.target, RecordOutcome.WRITE, reviews),
            (spec.held_target, RecordOutcome.HELD, {}),
        ):
            if table is None:
                continue
            wanted = counts.get(outcome, 0)
            stored = await self._count(table, **equal)
            if stored != wanted:
                raise RestoreIncompleteError(
                    f"{spec.name} ({table.name}): {wanted} rows written, {stored} in the database"
                )


async def _set_references(
    conn: AsyncConnection, spec: EntitySpec, column: str, pairs: list[tuple[int, int]]
) -> None:
    """Point ``column`` of each row (destination ID) at its referenced row (destination ID)."""
    if not pairs:
        return
    table = spec.target
    statement = (
        update(table).where(table.c.id == bindparam("row_id")).values({column: bindparam("ref_id")})
    )
    await conn.execute(statement, [{"row_id": row, "ref_id": ref} for row, ref in pairs])


# --- Purging -------------------------------------------------------------------------


async def purge_restore(db: Database, *, restore_id: int, chunk_size: int = 5000) -> int:
    """Delete every row this restore wrote, children first; return how many were deleted."""
    deleted = await _purge_applied_access(db, restore_id=restore_id)
    deleted += await _purge_applied_members(db, restore_id=restore_id)
    for table in purge_order():
        deleted += await _purge_table(db, table, restore_id=restore_id, chunk_size=chunk_size)
    return deleted


async def _purge_applied_access(db: Database, *, restore_id: int) -> int:
    """Product access already approved for groups this restore created goes with them."""
    access, groups = table_of(GroupProductAccess), table_of(SiteGroup)
    restored = select(groups.c.id).where(groups.c.restore_id == restore_id).scalar_subquery()
    async with db.transaction() as session:
        result = await (await session.connection()).execute(
            delete(access).where(access.c.group_id.in_(restored))
        )
    return int(result.rowcount)


async def _purge_applied_members(db: Database, *, restore_id: int) -> int:
    """Held members already approved (added to their group) go with the restore."""
    members, held = table_of(GroupMembership), table_of(HeldMembership)
    applied = select(held.c.group_id, held.c.user_id).where(
        held.c.restore_id == restore_id, held.c.applied.is_(True)
    )
    async with db.transaction() as session:
        result = await (await session.connection()).execute(
            delete(members).where(
                tuple_(members.c.group_id, members.c.user_id).in_(applied),
                members.c.restore_id.is_(None),
            )
        )
    return int(result.rowcount)


async def _purge_table(db: Database, table: Any, *, restore_id: int, chunk_size: int) -> int:
    deleted = 0
    while True:
        batch = (
            select(table.c.id)
            .where(table.c.restore_id == restore_id)
            .order_by(table.c.id)
            .limit(chunk_size)
            .scalar_subquery()
        )
        async with db.transaction() as session:
            result = await (await session.connection()).execute(
                delete(table).where(table.c.id.in_(batch))
            )
        deleted += result.rowcount
        if result.rowcount < chunk_size:
            return deleted
