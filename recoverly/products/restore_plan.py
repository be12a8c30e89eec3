"""How archive records meet a destination: written, mapped to a row already there, or skipped.

``Resolver`` holds the per-entity ID maps and applies the rules of ``entities.EntitySpec``
(match keys, skipped spaces and their content); the restore engine writes what it says
through ``restore_rows.BulkInsert``, ``plan_restore`` only counts, and a resumed restore
replays it to rebuild state.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from recoverly.database import Database
from recoverly.models import GroupProductAccess, ProductInstance, SiteGroup, table_of
from recoverly.products.archive import ArchiveError, Manifest
from recoverly.products.archive_reader import ArchiveReader
from recoverly.products.entities import (
    USERS_AND_GROUPS,
    EntitySpec,
    container_spec,
    entities_for,
    referenced,
)
from recoverly.products.selection import Selection, selected_specs


class RecordOutcome(StrEnum):
    WRITE = "written"
    EXISTING = "existing"
    SKIP = "skipped"
    HELD = "held"  # written to the spec's ``held_model``, waiting for an access review


@dataclass
class EntityState:
    """Source IDs of one entity: their destination IDs, and which existed or were skipped."""

    ids: dict[int, int] = field(default_factory=dict)
    existing: set[int] = field(default_factory=set)
    skipped: set[int] = field(default_factory=set)
    keys: dict[tuple[Any, ...], int] | None = None  # destination rows that predate the restore
    skipped_keys: list[str] = field(default_factory=list)
    last_id: int = 0  # the highest ID this restore has written to the entity's table


@dataclass(slots=True)
class Verdict:
    """What to do with one record; ``refs`` holds its foreign keys mapped to destination IDs."""

    outcome: RecordOutcome
    refs: dict[str, int | None]
    row_id: int | None = None  # the destination row it maps to (EXISTING)
    deferred: tuple[str, ...] = ()  # self-references to records not written yet: linked later
    record: dict[str, Any] | None = None  # the record as written (WRITE), after ``transform``
    excluded: bool = False  # left out by ``transform`` (SKIP, not reported as skipped)


@dataclass
class Resolved:
    """A chunk of records classified: those to write, their references mapped (a list per
    column), self-references to link later, and how many records had each outcome."""

    records: list[dict[str, Any]]
    refs: dict[str, list[int | None]]
    links: list[tuple[str, Any, int]]  # (column, source id, referenced source id)
    counts: Counter[RecordOutcome]
    held: list[dict[str, Any]] = field(default_factory=list)  # records held for review
    held_refs: dict[str, list[int | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class RestoreOptions:
    """What of the archive a restore writes (``startRestore``'s flags; no ``selection``:
    the whole site)."""

    include_attachments: bool = True
    include_users_and_groups: bool = True
    selection: Selection | None = None


def restore_specs(manifest: Manifest, options: RestoreOptions) -> list[EntitySpec]:
    """The specs a restore processes: included by the options and present in the archive,
    with the selection's rules (``selection.selected_specs``)."""
    specs = [
        spec
        for spec in entities_for(manifest.product)
        if spec.member in manifest.members
        and spec.included(
            include_attachments=options.include_attachments,
            include_users_and_groups=options.include_users_and_groups,
        )
    ]
    return specs if options.selection is None else selected_specs(specs, options.selection)


def record_count(manifest: Manifest, spec: EntitySpec) -> int:
    records = manifest.members[spec.member].records
    return manifest.entity_counts.get(spec.name, 0) if records is None else records


class Resolver:
    """Classifies records against the destination; ``strict`` rejects dangling references."""

    def __init__(
        self,
        specs: list[EntitySpec],
        *,
        destination_id: int,
        restore_id: int | None,
        strict: bool = True,
    ) -> None:
        self.destination_id, self.restore_id, self.strict = destination_id, restore_id, strict
        self.tracked = referenced(specs)
        self.states = {spec.name: EntityState() for spec in specs}
        # Pre-existing rows that grant product access, per entity with ``held_by``.
        self.granting: dict[str, frozenset[int]] = {}

    async def load_keys(self, db: Database, spec: EntitySpec) -> None:
        """Index the destination's rows by match key, leaving out this restore's own rows."""
        state = self.states[spec.name]
        if not spec.match_key or state.keys is not None:
            return
        table = spec.target
        statement = select(table.c.id, *(table.c[c] for c in spec.match_key)).where(
            table.c.instance_id == self.destination_id
        )
        if self.restore_id is not None:
            mine = table.c.restore_id
            statement = statement.where(or_(mine.is_(None), mine != self.restore_id))
        async with db.session() as session:
            conn = await session.connection()
            rows = (await conn.execute(statement)).all()
            if spec.held_by:
                self.granting[spec.name] = await self._granting(conn)
        state.keys = {tuple(row[1:]): row[0] for row in rows}

    async def _granting(self, conn: AsyncConnection) -> frozenset[int]:
        """Groups of the destination with product access that this restore did not create."""
        access, groups = table_of(GroupProductAccess), table_of(SiteGroup)
        statement = (
            select(access.c.group_id)
            .join(groups, groups.c.id == access.c.group_id)
            .where(access.c.instance_id == self.destination_id)
        )
        if self.restore_id is not None:
            mine = groups.c.restore_id
            statement = statement.where(or_(mine.is_(None), mine != self.restore_id))
        return frozenset((await conn.execute(statement)).scalars())

    def may_skip(self, spec: EntitySpec) -> bool:
        """Whether a record of ``spec`` can be skipped or map to an existing row."""
        if spec.match_key or spec.held_by or spec.transform:
            return True
        for column, target in spec.references.items():
            state = self.states.get(target)
            if state and (state.skipped or (column in spec.skip_existing_refs and state.existing)):
                return True
        return False

    def classify(self, spec: EntitySpec, record: dict[str, Any]) -> Verdict:
        if spec.transform is not None:
            changed = spec.transform(record)
            if changed is None:
                return Verdict(RecordOutcome.SKIP, {}, excluded=True)
            record = changed
        refs: dict[str, int | None] = {}
        deferred: tuple[str, ...] = ()
        for column, target in spec.references.items():
            value = record.get(column)
            if value is None:
                refs[column] = None
                continue
            state = self.states[target]
            if value in state.skipped:
                return Verdict(RecordOutcome.SKIP, refs)
            if value in state.existing and column in spec.skip_existing_refs:
                return Verdict(RecordOutcome.EXISTING, refs)
            new = state.ids.get(value)
            if new is None:
                if target == spec.name:
                    deferred = (*deferred, column)
                elif self.strict:
                    raise _dangling(spec, record, column, target)
            refs[column] = new
        if spec.match_key:
            found = self._match(spec, record, refs)
            if found is not None:
                outcome = (
                    RecordOutcome.SKIP if spec.on_existing == "skip" else RecordOutcome.EXISTING
                )
                return Verdict(outcome, refs, row_id=found)
        if spec.held_by and refs.get(spec.held_by) in self.granting.get(spec.name, ()):
            return Verdict(RecordOutcome.HELD, refs)
        return Verdict(RecordOutcome.WRITE, refs, deferred=deferred, record=record)

    def resolve(self, spec: EntitySpec, records: list[dict[str, Any]]) -> Resolved:
        """``classify`` a chunk and ``apply`` what is not written.

        When no record of ``spec`` can be skipped or mapped, every one is written: references
        are then mapped a column at a time in C (``map``), without a verdict per record. A
        reference that does not resolve sends the chunk through ``classify`` record by record,
        which raises for the first one, as it would have.
        """
        if not self.may_skip(spec) and (resolved := self._map_references(spec, records)):
            return resolved
        resolved = Resolved([], {column: [] for column in spec.references}, [], Counter())
        resolved.held_refs = {column: [] for column in spec.references}
        for record in records:
            verdict = self.classify(spec, record)
            resolved.counts[verdict.outcome] += 1
            if verdict.outcome is RecordOutcome.HELD:
                resolved.held.append(record)
                for column, values in resolved.held_refs.items():
                    values.append(verdict.refs[column])
                continue
            if verdict.outcome is not RecordOutcome.WRITE:
                self.apply(spec, record, verdict)
                continue
            resolved.records.append(verdict.record or record)
            for column, values in resolved.refs.items():
                values.append(verdict.refs[column])
            resolved.links.extend((c, record.get("id"), record[c]) for c in verdict.deferred)
        return resolved

    def _map_references(self, spec: EntitySpec, records: list[dict[str, Any]]) -> Resolved | None:
        resolved = Resolved(records, {}, [], Counter({RecordOutcome.WRITE: len(records)}))
        for column, target in spec.references.items():
            values = list(map(dict.get, records, itertools.repeat(column)))
            ids: dict[Any, int] = self.states[target].ids
            try:
                mapped = resolved.refs[column] = list(map(ids.get, values))
            except TypeError:  # an unhashable value: classify says what is wrong with it
                return None
            if mapped.count(None) == values.count(None):
                continue
            for record, value, new in zip(records, values, mapped, strict=True):
                if new is None and value is not None:
                    if target == spec.name:
                        resolved.links.append((column, record.get("id"), value))
                    elif self.strict:
                        return None
        return resolved

    def _match(self, spec: EntitySpec, record: dict[str, Any], refs: dict[str, Any]) -> int | None:
        keys = self.states[spec.name].keys
        if keys is None:
            raise RuntimeError(f"load_keys() was not called for {spec.name}")
        return keys.get(tuple(refs[c] if c in refs else record.get(c) for c in spec.match_key))

    def apply(self, spec: EntitySpec, record: dict[str, Any], verdict: Verdict) -> None:
        """Remember a skipped or existing record (written ones come back from the insert)."""
        state = self.states[spec.name]
        if verdict.outcome is RecordOutcome.SKIP and spec.match_key and not verdict.excluded:
            state.skipped_keys.append(str(record.get(spec.match_key[0])))
        if spec.name not in self.tracked:
            return
        source_id = source_id_of(spec, record)
        if verdict.outcome is RecordOutcome.SKIP:
            state.skipped.add(source_id)
        elif verdict.outcome is RecordOutcome.EXISTING and verdict.row_id is not None:
            state.ids[source_id] = verdict.row_id
            state.existing.add(source_id)

    def replay(self, reader: ArchiveReader, spec: EntitySpec, end: int | None) -> None:
        """Rebuild skipped and existing records of a member's first ``end`` records (resume)."""
        ids = self.states[spec.name].ids
        records = reader.iter_records(spec.member)
        try:
            for index, record in records:
                if end is not None and index >= end:
                    break
                verdict = self.classify(spec, record)
                if verdict.outcome is not RecordOutcome.WRITE:
                    self.apply(spec, record, verdict)
                elif source_id_of(spec, record) not in ids:
                    raise ArchiveError(
                        f"{spec.name} record {index} was restored but is not in the database"
                    )
        finally:
            close_records(records)

    def forward_references(
        self, reader: ArchiveReader, spec: EntitySpec
    ) -> dict[str, list[tuple[int, int]]]:
        """(row id, referenced row id) per self-reference column that pointed forwards."""
        state = self.states[spec.name]
        updates: dict[str, list[tuple[int, int]]] = {c: [] for c in spec.self_references}
        seen: set[int] = set()
        for _, record in reader.iter_records(spec.member):
            source_id = source_id_of(spec, record)
            written = source_id in state.ids and source_id not in state.existing
            for column in spec.self_references:
                value = record.get(column)
                if written and value is not None and value not in seen:
                    if value not in state.ids:
                        raise _dangling(spec, record, column, spec.name)
                    updates[column].append((state.ids[source_id], state.ids[value]))
            seen.add(source_id)
        return updates

    def dry_run(
        self,
        reader: ArchiveReader,
        spec: EntitySpec,
        on_record: Callable[[dict[str, Any], RecordOutcome], None] | None = None,
    ) -> Counter[RecordOutcome]:
        """Classify a whole member without writing; written records get placeholder IDs.
        ``on_record`` hears every record with its outcome."""
        tally: Counter[RecordOutcome] = Counter()
        ids = self.states[spec.name].ids
        for _, record in reader.iter_records(spec.member):
            verdict = self.classify(spec, record)
            tally[verdict.outcome] += 1
            if verdict.outcome is not RecordOutcome.WRITE:
                self.apply(spec, record, verdict)
            elif spec.name in self.tracked:
                ids[source_id_of(spec, record)] = -len(ids) - 1
            if on_record:
                on_record(verdict.record or record, verdict.outcome)
        return tally


def close_records(records: Iterator[Any]) -> None:
    """Stop reading a member early (``iter_records`` returns a generator)."""
    close = getattr(records, "close", None)
    if close is not None:
        close()


def source_id_of(spec: EntitySpec, record: dict[str, Any]) -> int:
    value = record.get("id")
    if type(value) is not int:
        raise ArchiveError(f"a {spec.name} record has no integer id: {value!r}")
    return value


def _dangling(spec: EntitySpec, record: dict[str, Any], column: str, target: str) -> ArchiveError:
    return ArchiveError(
        f"{spec.name} record {record.get('id')!r} refers to {target} {record.get(column)!r} "
        f"({column}), which the archive does not hold"
    )


# --- The plan ------------------------------------------------------------------------


@dataclass
class RestorePlan:
    """What a restore would do: counts per entity, skipped spaces, attachments, access reviews."""

    entity_counts: dict[str, int]  # records that would be written
    existing: dict[str, int]  # records that map to rows already in the destination
    skipped_spaces: list[str]
    attachments: int
    attachment_bytes: int
    groups_with_access: list[tuple[str, str]]  # (group name, product): pending reviews
    items_total: int  # records the restore writes: its progress ends there
    # Members held for review, by the name of the group (which grants product access).
    held_members: dict[str, set[str]] = field(default_factory=dict)
    # With ``by_container``: records written per Jira project or Confluence space (source ID).
    by_container: dict[int, Counter[str]] | None = None


HELD_COUNT = "held_memberships"  # the entity count of records held for review


async def plan_restore(
    db: Database,
    reader: ArchiveReader,
    *,
    destination_id: int,
    options: RestoreOptions,
    by_container: bool = False,
    observe: Callable[[EntitySpec, dict[str, Any]], None] | None = None,
) -> RestorePlan:
    """Dry-run the restore: read only the members that can change the counts, write nothing.

    ``by_container`` also attributes each written content record to its project or space
    (reading every content member, where the counts alone may come from the manifest);
    ``observe`` then hears each content record too (in the worker thread that reads it), so
    the preview's diff reads the archive in the same pass."""
    specs = restore_specs(reader.manifest, options)
    planner = _Planner(specs, destination_id=destination_id, by_container=by_container)
    planner.observe = observe if by_container else None
    for spec in specs:
        await planner.count(db, reader, spec)
    plan = planner.plan
    plan.items_total = sum(plan.entity_counts.values())
    plan.skipped_spaces = sorted(
        key for state in planner.resolver.states.values() for key in state.skipped_keys
    )
    return plan


class _Planner:
    """Counts by dry-run where records can be skipped or mapped, else from the manifest."""

    def __init__(self, specs: list[EntitySpec], *, destination_id: int, by_container: bool) -> None:
        self.resolver = Resolver(
            specs, destination_id=destination_id, restore_id=None, strict=False
        )
        self.plan = RestorePlan({}, {}, [], 0, 0, [], 0)
        # Names of the groups (and, for held members, users) a review would name, by source id.
        self.reviewed = {t for s in specs if not s.restored_as_is for t in s.references.values()}
        self.reviewed |= {t for s in specs if s.held_by for t in s.references.values()}
        self.names: dict[tuple[str, int], str] = {}
        self.containers = _Containers(specs) if by_container else None
        self.observe: Callable[[EntitySpec, dict[str, Any]], None] | None = None
        if self.containers is not None:
            self.plan.by_container = self.containers.counts

    async def count(self, db: Database, reader: ArchiveReader, spec: EntitySpec) -> None:
        needed = self.resolver.may_skip(spec) or spec.blob_column or spec.name in self.reviewed
        attributed = self.containers is not None and self.containers.covers(spec)
        if not needed and not attributed and spec.restored_as_is:
            self.plan.entity_counts[spec.name] = record_count(reader.manifest, spec)
            return
        await self.resolver.load_keys(db, spec)
        tally = await asyncio.to_thread(self.resolver.dry_run, reader, spec, self._on_record(spec))
        self.plan.entity_counts[spec.name] = tally[RecordOutcome.WRITE]
        self.plan.existing[spec.name] = tally[RecordOutcome.EXISTING]
        if tally[RecordOutcome.HELD]:
            self.plan.entity_counts[HELD_COUNT] = tally[RecordOutcome.HELD]

    def _on_record(self, spec: EntitySpec) -> Callable[[dict[str, Any], RecordOutcome], None]:
        containers = self.containers if self.containers and self.containers.covers(spec) else None

        def remember(record: dict[str, Any], outcome: RecordOutcome) -> None:
            if containers is not None:
                containers.add(spec, record, outcome)
                if self.observe is not None:
                    self.observe(spec, record)
            if spec.name in self.reviewed:
                self.names[spec.name, record["id"]] = str(record.get(spec.label[0]))
            if outcome is RecordOutcome.HELD:
                self._hold(spec, record)
            if outcome is not RecordOutcome.WRITE:
                return
            if not spec.restored_as_is:
                column, target = next(iter(spec.references.items()))
                name = self.names.get((target, record.get(column, -1)), "?")
                self.plan.groups_with_access.append((name, str(record.get("product"))))
            if spec.blob_column:
                self.plan.attachments += 1
                self.plan.attachment_bytes += int(record.get("size") or 0)

        return remember

    def _hold(self, spec: EntitySpec, record: dict[str, Any]) -> None:
        """A member held for review: its account ID under the group's name."""
        assert spec.held_by is not None
        names = [
            self.names.get((target, record.get(column, -1)), "?")
            for column, target in spec.references.items()
        ]
        group = names[list(spec.references).index(spec.held_by)]
        members = self.plan.held_members.setdefault(group, set())
        members.update(n for c, n in zip(spec.references, names, strict=True) if c != spec.held_by)


class _Containers:
    """Written content records per container (the product's first content entity: Jira
    projects, Confluence spaces), found through each record's reference towards it."""

    def __init__(self, specs: list[EntitySpec]) -> None:
        content = [s for s in specs if s.phase != USERS_AND_GROUPS]
        names = {s.name for s in content}
        self.container = content[0].name if content else ""
        self.towards = {
            s.name: next(c for c, t in s.references.items() if t in names and t != s.name)
            for s in content[1:]
        }
        # Source ID -> container source ID, for the entities other content refers to.
        self.of: dict[str, dict[int, int]] = {
            s.name: {} for s in content if s.name in referenced(specs) and s.name in self.towards
        }
        self.counts: dict[int, Counter[str]] = {}

    def covers(self, spec: EntitySpec) -> bool:
        return spec.name == self.container or spec.name in self.towards

    def add(self, spec: EntitySpec, record: dict[str, Any], outcome: RecordOutcome) -> None:
        if spec.name == self.container:
            container: int | None = record.get("id")
        else:
            column = self.towards[spec.name]
            target = spec.references[column]
            value: Any = record.get(column)
            container = value if target == self.container else self.of[target].get(value)
        if container is None:
            return
        if spec.name in self.of:
            self.of[spec.name][record["id"]] = container
        if outcome is RecordOutcome.WRITE:
            self.counts.setdefault(container, Counter())[spec.name] += 1


async def destination_is_empty(conn: AsyncConnection, destination: ProductInstance) -> bool:
    """No Jira projects, or no Confluence spaces: the product's first content entity."""
    table = container_spec(destination.product).target
    statement = select(table.c.id).where(table.c.instance_id == destination.id).limit(1)
    return (await conn.execute(statement)).first() is None
