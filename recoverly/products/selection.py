"""Selective restore: the projects or spaces chosen, and how they meet a live destination.

A ``Selection`` names container keys (Jira project keys, Confluence space keys), the
``ConflictPolicy`` for those the destination already holds, and renames. ``selected_specs``
turns it into the restore's own entity specs (``dataclasses.replace`` on the product's), so
the resolver, the planner and the engine stay generic and a resumed restore replays exactly
what the first run did:

- records of unselected containers are excluded (and with them everything under them);
- SKIP: a selected container that exists is skipped with its content (and reported);
- RENAME: a container is written under its new key; Jira issue keys ``KEY-N`` follow;
- MERGE: a container that exists maps to it; its items (issues by key, pages by title)
  map to existing ones where they match, and the leaves (comments, attachments) of existing
  items are not added; nothing that exists is modified.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from recoverly.models import ConflictPolicy, ProductKey
from recoverly.products.archive_reader import ArchiveReader
from recoverly.products.entities import CONTENT, EntitySpec, container_spec

Record = dict[str, Any]

_JIRA_KEY = re.compile(r"[A-Z][A-Z0-9]{1,9}")
_SPACE_KEY = re.compile(r"[A-Z0-9]{1,64}")


@dataclass(frozen=True)
class Selection:
    """What a selective restore restores: container keys, the conflict policy, renames."""

    keys: frozenset[str]  # project keys (Jira) or space keys (Confluence)
    policy: ConflictPolicy = ConflictPolicy.SKIP
    renames: Mapping[str, str] = field(default_factory=dict)  # from -> to, for RENAME

    def target_key(self, key: str) -> str:
        """The key a selected container gets in the destination."""
        return self.renames.get(key, key)

    def to_json(self) -> dict[str, Any]:
        return {
            "keys": sorted(self.keys),
            "policy": self.policy.value,
            "renames": dict(sorted(self.renames.items())),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Selection:
        return cls(
            keys=frozenset(str(key) for key in data.get("keys") or ()),
            policy=ConflictPolicy(data.get("policy") or ConflictPolicy.SKIP),
            renames={str(k): str(v) for k, v in (data.get("renames") or {}).items()},
        )


def key_problem(product: str, key: str) -> str | None:
    """Why ``key`` cannot be a new project (Jira) or space (Confluence) key, or None."""
    if str(product) == ProductKey.JIRA.value:
        if not _JIRA_KEY.fullmatch(key):
            return (
                "a Jira project key is 2 to 10 uppercase letters and digits, starting with a letter"
            )
        return None
    if not _SPACE_KEY.fullmatch(key):
        return "a Confluence space key is 1 to 64 uppercase letters and digits"
    return None


@dataclass(frozen=True)
class Container:
    """A project or space of an archive: its source ID, key and name."""

    source_id: int
    key: str
    name: str


def archive_containers(reader: ArchiveReader) -> list[Container]:
    """Every project or space the archive holds, in archive order."""
    spec = container_spec(reader.manifest.product)
    if spec.member not in reader.manifest.members:
        return []
    return [
        Container(int(r["id"]), str(r.get("key")), str(r.get("name")))
        for r in reader.records(spec.member)
    ]


async def destination_containers(
    conn: AsyncConnection, *, product: str, destination_id: int
) -> dict[str, int]:
    """Key -> row ID of every project or space the destination holds now."""
    table = container_spec(product).target
    statement = select(table.c.key, table.c.id).where(table.c.instance_id == destination_id)
    return {key: row_id for key, row_id in (await conn.execute(statement)).all()}


def selected_specs(specs: Sequence[EntitySpec], selection: Selection) -> list[EntitySpec]:
    """The restore's specs for ``selection``: the product's, with its rules applied.

    The container is the first content spec, its items the specs that reference it, their
    leaves the specs that reference items (issues and their comments and attachments;
    pages and theirs). The directory is restored as in a full-site restore.
    """
    product_specs = list(specs)
    container = next((s for s in product_specs if s.phase == CONTENT), None)
    if container is None:
        return product_specs
    items = {s.name for s in product_specs if container.name in s.references.values()}
    merge = selection.policy == ConflictPolicy.MERGE
    derived: list[EntitySpec] = []
    for spec in product_specs:
        if spec is container:
            spec = replace(
                spec,
                match_key=("key",),
                on_existing="map" if merge else "skip",
                transform=_containers(selection),
            )
        elif spec.name in items:
            spec = _item(spec, container.name, selection, merge=merge)
        elif merge and (refs := tuple(c for c, t in spec.references.items() if t in items)):
            spec = replace(spec, skip_existing_refs=(*spec.skip_existing_refs, *refs))
        derived.append(spec)
    return derived


def _containers(selection: Selection) -> Callable[[Record], Record | None]:
    """Unselected containers are excluded; selected ones get their target key."""
    keys, renames = selection.keys, selection.renames

    def transform(record: Record) -> Record | None:
        key = record.get("key")
        if key not in keys:
            return None
        if key in renames:
            return {**record, "key": renames[key]}
        return record

    return transform


def _item(spec: EntitySpec, container: str, selection: Selection, *, merge: bool) -> EntitySpec:
    """Items (issues, pages): matched within their container on MERGE; Jira issue keys
    ``KEY-N`` follow a renamed project."""
    if merge:
        column = next(c for c, target in spec.references.items() if target == container)
        match = (column, *(c for c in spec.label if c != column))
        spec = replace(spec, match_key=match)
    if selection.renames and "key" in spec.fields:
        spec = replace(spec, transform=_rekey(selection.renames))
    return spec


def _rekey(renames: Mapping[str, str]) -> Callable[[Record], Record | None]:
    def transform(record: Record) -> Record | None:
        key = record.get("key")
        if isinstance(key, str):
            prefix, dash, number = key.rpartition("-")
            if dash and prefix in renames:
                return {**record, "key": f"{renames[prefix]}-{number}"}
        return record

    return transform
