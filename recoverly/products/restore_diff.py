"""What a restore does to each project or space, and how the backup's items differ from the
destination's: the items of ``restorePreview``.

An item is a container of the archive (a Jira project, a Confluence space): selected ones, or
every one for a full-site restore. Its ``entity_counts`` are the plan's
(``plan_restore(by_container=True)`` attributes each record it writes to its container), so
the items add up to the plan's content counts. Where the container's key exists in the
destination (and it is not restored under another key), its items are compared: Jira issues
by issue key, Confluence pages by title within the space, each by a content hash over its
copied fields (a page's parent by title, so a moved page differs), plus a multiset hash of
its comments and (when the restore includes them) its attachments' metadata and SHA-256.
The archive's side is taken from the plan's own pass over the archive (``observe``), the
destination's rows of the compared containers are read a chunk at a time; memory holds one
key and one hash per compared item. Hashing runs in worker threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import orjson
from sqlalchemy import Table, select

from recoverly.database import Database
from recoverly.models import ProductKey, RestoreItemAction, RestoreItemKind
from recoverly.products.archive_reader import ArchiveReader
from recoverly.products.entities import USERS_AND_GROUPS, EntitySpec, container_spec
from recoverly.products.restore_plan import (
    RestoreOptions,
    RestorePlan,
    plan_restore,
    restore_specs,
)
from recoverly.products.selection import archive_containers, destination_containers

CHUNK_SIZE = 2000
_MODULUS = 2**256


@dataclass(frozen=True)
class ItemDiff:
    """Items (issues, pages) of a container compared with the destination's, by key."""

    only_in_backup: int
    identical: int
    different: int
    only_in_destination: int


@dataclass(frozen=True)
class PreviewItem:
    kind: RestoreItemKind
    key: str
    name: str
    action: RestoreItemAction
    target_key: str
    entity_counts: dict[str, int]  # records the restore writes for it, per content entity
    diff: ItemDiff | None  # None: the key does not exist in the destination (or is renamed)


async def plan_with_items(
    db: Database, reader: ArchiveReader, *, destination_id: int, options: RestoreOptions
) -> tuple[RestorePlan, list[PreviewItem]]:
    """``plan_restore`` with the preview's items: counts per project or space, and the diff
    of those the destination already has (the archive is read once, by the plan)."""
    items = ItemsPreview()
    await items.prepare(db, reader, destination_id=destination_id, options=options)
    plan = await plan_restore(
        db,
        reader,
        destination_id=destination_id,
        options=options,
        by_container=True,
        observe=items.observe,
    )
    return plan, await items.finish(db, plan)


class ItemsPreview:
    """The preview's items of one restore: ``prepare`` (the items and which are compared),
    then ``plan_restore(by_container=True, observe=preview.observe)`` (the archive's side of
    the diff is taken from the plan's own pass over the archive), then ``finish``."""

    def __init__(self) -> None:
        self.items: list[_Item] = []
        self.shape: _Shape | None = None
        self.compared: dict[int, int] = {}  # archive source id -> destination id
        self.backup = _Side()
        self.kind = RestoreItemKind.PROJECT
        self._containers: frozenset[int] = frozenset()

    async def prepare(
        self, db: Database, reader: ArchiveReader, *, destination_id: int, options: RestoreOptions
    ) -> None:
        """One item per selected container (every one without a selection), archive order."""
        product = str(reader.manifest.product)
        container = container_spec(product)
        specs = restore_specs(reader.manifest, options)
        content = [s.name for s in specs if s.phase != USERS_AND_GROUPS]
        archived = await asyncio.to_thread(archive_containers, reader)
        async with db.session() as session:
            existing = await destination_containers(
                await session.connection(), product=product, destination_id=destination_id
            )
        selection = options.selection
        for c in archived:
            if selection is not None and c.key not in selection.keys:
                continue
            target = selection.target_key(c.key) if selection else c.key
            action = _action(product, c.key, target, existing, options)
            item = _Item(c.source_id, c.key, c.name, action, target, dict.fromkeys(content, 0))
            if action is not RestoreItemAction.RENAME and c.key in existing:
                item.destination_id = self.compared[c.source_id] = existing[c.key]
            self.items.append(item)
        self.shape = _shape(specs, container) if self.compared else None
        self._containers = frozenset(self.compared)
        if product != ProductKey.JIRA.value:
            self.kind = RestoreItemKind.SPACE

    def observe(self, spec: EntitySpec, record: dict[str, Any]) -> None:
        """An archive record as the plan reads it (in its worker thread)."""
        if self.shape is not None:
            _observe(self.backup, self.shape, self._containers, spec, record)

    async def finish(self, db: Database, plan: RestorePlan) -> list[PreviewItem]:
        """The items with the plan's counts and, for the compared ones, their diff."""
        by_container = plan.by_container or {}
        diffs: dict[int, ItemDiff] = {}
        if self.compared:
            diffs = await _diff(db, self.shape, self.backup, self.compared)
        out = []
        for i in self.items:
            counts: Mapping[str, int] = by_container.get(i.source_id) or {}
            written = {name: counts.get(name, 0) for name in i.counts}
            diff = diffs.get(i.source_id)
            out.append(PreviewItem(self.kind, i.key, i.name, i.action, i.target_key, written, diff))
        return out


@dataclass
class _Item:
    source_id: int
    key: str
    name: str
    action: RestoreItemAction
    target_key: str
    counts: dict[str, int]
    destination_id: int | None = None


def _action(
    product: str, key: str, target: str, existing: Mapping[str, int], options: RestoreOptions
) -> RestoreItemAction:
    """A full-site restore creates every Jira project (into an empty site) and skips the
    Confluence spaces that exist; a selective one applies its policy to existing keys."""
    selection = options.selection
    if selection is not None and target != key:
        return RestoreItemAction.RENAME
    if key not in existing:
        return RestoreItemAction.CREATE
    if selection is None:
        return (
            RestoreItemAction.CREATE if product == ProductKey.JIRA.value else RestoreItemAction.SKIP
        )
    return RestoreItemAction(selection.policy.value)


# --- The diff ------------------------------------------------------------------------


@dataclass
class _Side:
    """One side's items: (container, key) -> field hash, parent id, id -> (container, key),
    and the leaves' multiset hash per item id."""

    fields: dict[tuple[int, str], bytes] = field(default_factory=dict)
    ids: dict[int, tuple[int, str]] = field(default_factory=dict)
    parents: dict[int, int] = field(default_factory=dict)
    leaves: dict[int, int] = field(default_factory=dict)

    def add_item(self, item_id: int, container: int, key: str, digest: bytes, parent: Any) -> None:
        self.ids[item_id] = (container, key)
        self.fields[container, key] = digest
        if parent is not None:
            self.parents[item_id] = parent

    def add_leaf(self, item_id: Any, digest: bytes) -> None:
        if item_id in self.ids:
            total = self.leaves.get(item_id, 0) + int.from_bytes(digest)
            self.leaves[item_id] = total % _MODULUS

    def by_container(self) -> dict[int, dict[str, bytes]]:
        """The final hash of each item by container and key: its fields, its parent's key,
        its leaves (of items sharing a key, the last one read counts)."""
        out: dict[int, dict[str, bytes]] = {}
        for item_id, (container, key) in self.ids.items():
            parent = self.ids.get(self.parents.get(item_id, -1), (0, ""))[1]
            leaves = self.leaves.get(item_id, 0).to_bytes(32)
            digest = self.fields[container, key] + parent.encode() + b"\0" + leaves
            out.setdefault(container, {})[key] = hashlib.sha256(digest).digest()
        return out


@dataclass(frozen=True)
class _Shape:
    """Which specs and columns make up an item: its spec, the column naming its container,
    its key columns, an optional self-reference (a page's parent), and its leaves."""

    item: EntitySpec
    container_column: str
    key_columns: tuple[str, ...]
    parent_column: str | None
    leaves: tuple[tuple[EntitySpec, str], ...]  # (spec, the column naming the item)

    @cached_property
    def leaf_columns(self) -> dict[str, str]:
        return {spec.name: column for spec, column in self.leaves}


def _shape(specs: list[EntitySpec], container: EntitySpec) -> _Shape | None:
    item = next((s for s in specs if container.name in s.references.values()), None)
    if item is None:
        return None
    column = next(c for c, t in item.references.items() if t == container.name)
    leaves = tuple(
        (s, next(c for c, t in s.references.items() if t == item.name))
        for s in specs
        if s is not item and item.name in s.references.values()
    )
    return _Shape(
        item,
        column,
        tuple(c for c in item.label if c != column),
        next(iter(item.self_references), None),
        leaves,
    )


async def _diff(
    db: Database, shape: _Shape | None, backup: _Side, compared: dict[int, int]
) -> dict[int, ItemDiff]:
    """For each compared container (archive source id -> destination id), its ItemDiff."""
    if shape is None:
        return {s: ItemDiff(0, 0, 0, 0) for s in compared}
    destination = await _destination_side(db, shape, {d: s for s, d in compared.items()})
    ours, theirs = await asyncio.to_thread(
        lambda: (backup.by_container(), destination.by_container())
    )
    diffs = {}
    for source_id in compared:
        mine, there = ours.get(source_id, {}), theirs.get(source_id, {})
        both = mine.keys() & there.keys()
        same = sum(1 for k in both if mine[k] == there[k])
        diffs[source_id] = ItemDiff(
            only_in_backup=len(mine) - len(both),
            identical=same,
            different=len(both) - same,
            only_in_destination=len(there) - len(both),
        )
    return diffs


def _observe(
    side: _Side,
    shape: _Shape,
    containers: frozenset[int],
    spec: EntitySpec,
    record: dict[str, Any],
) -> None:
    """Take an archive record into the backup's side: an item of a compared container, or a
    leaf (of such an item: ``add_leaf`` ignores the others)."""
    if spec.name == shape.item.name:
        container = record.get(shape.container_column)
        if container in containers:
            side.add_item(
                record["id"],
                container,
                _key(record, shape.key_columns),
                _hash(shape.item, record),
                record.get(shape.parent_column) if shape.parent_column else None,
            )
        return
    column = shape.leaf_columns.get(spec.name)
    if column is not None and (item_id := record.get(column)) in side.ids:
        side.add_leaf(item_id, _hash(spec, record))


async def _destination_side(db: Database, shape: _Shape, containers: dict[int, int]) -> _Side:
    """The destination's items of ``containers`` (destination id -> archive source id) and
    their leaves, read by keyset a chunk at a time and hashed in a worker thread."""
    side = _Side()
    item = shape.item
    table = item.target
    columns = {*item.fields, shape.container_column, *shape.key_columns}
    if shape.parent_column:
        columns.add(shape.parent_column)
    where = table.c[shape.container_column].in_(list(containers))

    def add_items(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            side.add_item(
                row["id"],
                containers[row[shape.container_column]],
                _key(row, shape.key_columns),
                _hash(item, row),
                row.get(shape.parent_column) if shape.parent_column else None,
            )

    async for rows in _chunks(db, table, columns, where):
        await asyncio.to_thread(add_items, rows)
    item_ids = list(side.ids)
    for leaf, column in shape.leaves:
        leaf_table = leaf.target
        selected = [leaf_table.c.id, *(leaf_table.c[c] for c in sorted({*leaf.fields, column}))]

        def add_leaves(
            rows: list[dict[str, Any]], leaf: EntitySpec = leaf, column: str = column
        ) -> None:
            for row in rows:
                side.add_leaf(row[column], _hash(leaf, row))

        # By the items' IDs a chunk at a time (the leaf's index on its item column), not
        # by a subquery over the items, which SQLite ran again for every page of leaves.
        for start in range(0, len(item_ids), CHUNK_SIZE):
            chunk = item_ids[start : start + CHUNK_SIZE]
            statement = select(*selected).where(leaf_table.c[column].in_(chunk))
            async with db.session() as session:
                result = await (await session.connection()).execute(statement)
                rows = [r._asdict() for r in result]
            await asyncio.to_thread(add_leaves, rows)
    return side


async def _chunks(
    db: Database, table: Table, columns: Iterable[str], where: Any
) -> AsyncIterator[list[dict[str, Any]]]:
    selected = [table.c.id, *(table.c[name] for name in sorted(columns))]
    last = 0
    while True:
        statement = (
            select(*selected).where(where, table.c.id > last).order_by(table.c.id).limit(CHUNK_SIZE)
        )
        async with db.session() as session:
            rows = [r._asdict() for r in (await (await session.connection()).execute(statement))]
        if not rows:
            return
        yield rows
        last = rows[-1]["id"]


def _key(values: Mapping[str, Any], columns: tuple[str, ...]) -> str:
    return "\0".join(str(values.get(c)) for c in columns)


def _hash(spec: EntitySpec, values: Mapping[str, Any]) -> bytes:
    """SHA-256 of a record's or row's copied fields, times as UTC ISO-8601 on both sides
    (encoded with orjson: the diff hashes every item and leaf of both sides)."""
    times = spec.datetime_fields
    fields = [
        _utc(value) if name in times and value is not None else value
        for name in spec.fields
        for value in (values.get(name),)
    ]
    try:
        encoded = orjson.dumps(fields)
    except TypeError:  # what orjson refuses (a lone surrogate, a huge integer)
        encoded = json.dumps(fields, ensure_ascii=False, default=str).encode(errors="replace")
    return hashlib.sha256(encoded).digest()


def _utc(value: Any) -> str:
    """A time as the export writes it (``isoformat`` of the UTC time): an archive's string
    already in that form is taken as it is; anything else is parsed."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value)
        if text.endswith("+00:00") and text[10:11] == "T":
            return text
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:  # SQLite's naive UTC
        return moment.replace(tzinfo=UTC).isoformat()
    return moment.astimezone(UTC).isoformat()
