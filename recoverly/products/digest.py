"""A content digest of an instance that ignores database IDs: equal content, equal digest.

Rows are described by their fields with foreign keys replaced by the referenced row's label
(an issue's project key, a page's space key and parent title, a membership's group name and
account id), attachments by their content hash. Each entity is hashed as a multiset (a sum of
row hashes), so neither row order nor IDs matter and memory holds only the labels. The same
sums per project or space (``containers``) digest each one and what lies under it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recoverly.database import Database
from recoverly.models import ProductInstance
from recoverly.products.entities import CONTENT, EntitySpec, entities_for, referenced
from recoverly.products.export import iter_rows

CHUNK_SIZE = 2000
_MODULUS = 2**256


@dataclass
class _Labels:
    """How rows are named by the rows that reference them, and the container (project or
    space key) each row lies under."""

    names: dict[str, dict[int, str]] = field(default_factory=dict)
    containers: dict[str, dict[int, str]] = field(default_factory=dict)

    def resolve(self, spec: EntitySpec, column: str, value: Any) -> Any:
        target = spec.references.get(column)
        if target is None or value is None:
            return value
        return self.names[target].get(value)

    def container_of(self, spec: EntitySpec, values: dict[str, Any]) -> str | None:
        if spec.phase == CONTENT and not spec.references:
            return str(values["key"])
        for column, target in spec.references.items():
            found = self.containers.get(target, {}).get(values.get(column))  # type: ignore[arg-type]
            if found is not None:
                return found
        return None


async def content_digest(db: Database, instance_id: int) -> dict[str, Any]:
    """``{"product", "counts", "entities", "containers", "sha256"}`` for the instance's
    content; ``containers`` maps each project or space key to the digest of it and of what
    lies under it.

    Product access is left out: a restore turns it into access reviews instead of applying it.
    """
    async with db.session() as session:
        instance = await session.get(ProductInstance, instance_id)
    if instance is None:
        raise LookupError(f"instance {instance_id} does not exist")
    specs = [spec for spec in entities_for(instance.product) if spec.restored_as_is]
    labels = _Labels()
    counts: dict[str, int] = {}
    hashes: dict[str, str] = {}
    sums: dict[str, dict[str, list[int]]] = {}  # container -> entity -> [count, sum]
    for spec in specs:
        if spec.name in referenced(specs):
            await _labels(db, spec, instance_id, labels)
        counts[spec.name], hashes[spec.name] = await _entity(db, spec, instance_id, labels, sums)
    summary = {"product": str(instance.product), "counts": counts, "entities": hashes}
    containers = {key: _sha256(entities) for key, entities in sorted(sums.items())}
    return {**summary, "containers": containers, "sha256": _sha256(summary)}


async def _labels(db: Database, spec: EntitySpec, instance_id: int, labels: _Labels) -> None:
    """How rows of ``spec`` are named by rows that reference them, and their containers."""
    names = labels.names[spec.name] = {}
    containers = labels.containers[spec.name] = {}
    columns = list(dict.fromkeys([*spec.label, *spec.references]))
    chunks = iter_rows(db, spec.table, columns, instance_id=instance_id, chunk_size=CHUNK_SIZE)
    async for chunk in chunks:
        for row in chunk:
            values = row._asdict()
            names[row.id] = _encode([labels.resolve(spec, c, values[c]) for c in spec.label])
            if (container := labels.container_of(spec, values)) is not None:
                containers[row.id] = container


async def _entity(
    db: Database,
    spec: EntitySpec,
    instance_id: int,
    labels: _Labels,
    sums: dict[str, dict[str, list[int]]],
) -> tuple[int, str]:
    """Row count and multiset hash of one entity; each row's also added to its container's."""
    columns = [*spec.fields, *spec.references]
    if spec.blob_column:
        columns.append(spec.blob_column)
    count, total = 0, 0
    chunks = iter_rows(db, spec.table, columns, instance_id=instance_id, chunk_size=CHUNK_SIZE)
    async for chunk in chunks:
        for row in chunk:
            values = row._asdict()
            values.pop("id")
            container = labels.container_of(spec, values)
            if spec.blob_column:
                content = values.pop(spec.blob_column)
                values["content_sha256"] = hashlib.sha256(content).hexdigest()
            for column in spec.references:
                values[column] = labels.resolve(spec, column, values[column])
            row_hash = int(hashlib.sha256(_encode(values).encode()).hexdigest(), 16)
            total = (total + row_hash) % _MODULUS
            count += 1
            if container is not None:
                entry = sums.setdefault(container, {}).setdefault(spec.name, [0, 0])
                entry[0] += 1
                entry[1] = (entry[1] + row_hash) % _MODULUS
    return count, f"{total:064x}"


def _sha256(value: Any) -> str:
    return hashlib.sha256(_encode(value).encode()).hexdigest()


def _encode(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=_iso)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
