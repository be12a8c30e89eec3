"""A content digest of an instance that ignores database IDs: equal content, equal digest.

Rows are described by their fields with foreign keys replaced by the referenced row's label
(an issue's project key, a page's space key and parent title, a membership's group name and
account id), attachments by their content hash. Each entity is hashed as a multiset (a sum of
row hashes), so neither row order nor IDs matter and memory holds only the labels.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from recoverly.database import Database
from recoverly.models import ProductInstance
from recoverly.products.entities import EntitySpec, entities_for, referenced
from recoverly.products.export import iter_rows

CHUNK_SIZE = 2000
_MODULUS = 2**256


async def content_digest(db: Database, instance_id: int) -> dict[str, Any]:
    """``{"product", "counts", "entities", "sha256"}`` for the instance's content.

    Product access is left out: a restore turns it into access reviews instead of applying it.
    """
    async with db.session() as session:
        instance = await session.get(ProductInstance, instance_id)
    if instance is None:
        raise LookupError(f"instance {instance_id} does not exist")
    specs = [spec for spec in entities_for(instance.product) if spec.restored_as_is]
    labels: dict[str, dict[int, str]] = {}
    counts: dict[str, int] = {}
    hashes: dict[str, str] = {}
    for spec in specs:
        if spec.name in referenced(specs):
            labels[spec.name] = await _labels(db, spec, instance_id, labels)
        counts[spec.name], hashes[spec.name] = await _entity(db, spec, instance_id, labels)
    summary = {"product": str(instance.product), "counts": counts, "entities": hashes}
    return {**summary, "sha256": hashlib.sha256(_encode(summary).encode()).hexdigest()}


async def _labels(
    db: Database, spec: EntitySpec, instance_id: int, labels: dict[str, dict[int, str]]
) -> dict[int, str]:
    """How rows of ``spec`` are named by rows that reference them."""
    found: dict[int, str] = {}
    chunks = iter_rows(db, spec.table, spec.label, instance_id=instance_id, chunk_size=CHUNK_SIZE)
    async for chunk in chunks:
        for row in chunk:
            values = row._asdict()
            found[row.id] = _encode([_resolve(spec, c, values[c], labels) for c in spec.label])
    return found


async def _entity(
    db: Database, spec: EntitySpec, instance_id: int, labels: dict[str, dict[int, str]]
) -> tuple[int, str]:
    """Row count and multiset hash of one entity."""
    columns = [*spec.fields, *spec.references]
    if spec.blob_column:
        columns.append(spec.blob_column)
    count, total = 0, 0
    chunks = iter_rows(db, spec.table, columns, instance_id=instance_id, chunk_size=CHUNK_SIZE)
    async for chunk in chunks:
        for row in chunk:
            values = row._asdict()
            values.pop("id")
            if spec.blob_column:
                content = values.pop(spec.blob_column)
                values["content_sha256"] = hashlib.sha256(content).hexdigest()
            for column in spec.references:
                values[column] = _resolve(spec, column, values[column], labels)
            total = (total + int(hashlib.sha256(_encode(values).encode()).hexdigest(), 16)) % (
                _MODULUS
            )
            count += 1
    return count, f"{total:064x}"


def _resolve(spec: EntitySpec, column: str, value: Any, labels: dict[str, dict[int, str]]) -> Any:
    target = spec.references.get(column)
    if target is None or value is None:
        return value
    return labels[target].get(value)


def _encode(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=_iso)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
