"""Backup archive format v1: the manifest, member-path rules and errors shared by reader and writer.

An archive is one zip file: JSON Lines members (one per entity type), attachment blobs at
``attachments/<sha256>``, and ``manifest.json`` last, which records the SHA-256 and size of
every other member. ``archive_writer.ArchiveWriter`` builds one, ``archive_reader.ArchiveReader``
validates and streams it back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recoverly.errors import RecoverlyError
from recoverly.models.base import ProductKey

FORMAT_NAME = "recoverly-backup"
FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
MANIFEST_NAME = "manifest.json"
BLOB_PREFIX = "attachments/"
CHUNK_SIZE = 1024 * 1024

_SHA256 = re.compile(r"[0-9a-f]{64}")
_DRIVE = re.compile(r"[A-Za-z]:")


class ArchiveError(RecoverlyError):
    """The archive is unreadable, unsafe or inconsistent; the message says which and where."""


def check_member_name(name: str) -> str:
    """Return ``name`` if it is a safe relative zip path, else raise ``ArchiveError``."""
    reason = _unsafe_reason(name)
    if reason:
        raise ArchiveError(f"unsafe member path {name!r}: {reason}")
    return name


def _unsafe_reason(name: str) -> str | None:
    if not name:
        return "empty path"
    if "\x00" in name:
        return "NUL character"
    if "\\" in name:
        return "backslashes are not allowed"
    if name.startswith("/"):
        return "absolute path"
    if _DRIVE.match(name):
        return "drive letter"
    parts = name.split("/")
    if ".." in parts:
        return "'..' component"
    if "" in parts or "." in parts:
        return "empty or '.' component"
    return None


def blob_name(sha256: str) -> str:
    """The member name of an attachment blob, after checking the hash is lowercase hex."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ArchiveError(f"not a SHA-256 hex digest: {sha256!r}")
    return BLOB_PREFIX + sha256


@dataclass(frozen=True)
class MemberInfo:
    """What the manifest promises about one member: content hash, uncompressed size, records."""

    sha256: str
    size: int
    records: int | None = None


@dataclass
class Manifest:
    """The parsed ``manifest.json``; ``size_bytes`` is the archive file's size, not serialized."""

    product: str
    source_instance: dict[str, Any]
    created_at: datetime
    options: dict[str, Any]
    entity_counts: dict[str, int]
    members: dict[str, MemberInfo]
    format_version: int = FORMAT_VERSION
    size_bytes: int = field(default=0, compare=False)

    @property
    def total_records(self) -> int:
        return sum(self.entity_counts.values())

    @property
    def total_member_bytes(self) -> int:
        """Uncompressed size of all members the manifest declares."""
        return sum(m.size for m in self.members.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "product": str(self.product),
            "source_instance": self.source_instance,
            "created_at": self.created_at.isoformat(),
            "options": self.options,
            "entity_counts": self.entity_counts,
            "members": {
                name: {"sha256": m.sha256, "size": m.size, "records": m.records}
                for name, m in self.members.items()
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str | bytes) -> Manifest:
        """Parse and validate a manifest; any defect raises ``ArchiveError``."""
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArchiveError(f"{MANIFEST_NAME} is not valid JSON: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
            raise ArchiveError(f"{MANIFEST_NAME} does not describe a {FORMAT_NAME} archive")
        version = raw.get("format_version")
        if type(version) is not int or version not in SUPPORTED_FORMAT_VERSIONS:
            supported = ", ".join(str(v) for v in SUPPORTED_FORMAT_VERSIONS)
            raise ArchiveError(
                f"unsupported archive format_version {version!r}: "
                f"this version of recoverly reads format_version {supported}"
            )
        return cls(
            product=check_product(raw.get("product")),
            source_instance=_object(raw, "source_instance"),
            created_at=_timestamp(raw.get("created_at")),
            options=_object(raw, "options"),
            entity_counts={
                str(k): _count(v, f"entity_counts[{k!r}]")
                for k, v in _object(raw, "entity_counts").items()
            },
            members={
                check_member_name(name): _member(name, value)
                for name, value in _object(raw, "members").items()
            },
            format_version=version,
        )


def check_product(product: object) -> str:
    """Return the product key as a plain string, or raise ``ArchiveError``."""
    known = [p.value for p in ProductKey]
    if not isinstance(product, str) or product not in known:
        raise ArchiveError(f"unknown product {product!r}: expected one of {', '.join(known)}")
    return str(product)


def _object(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise ArchiveError(f"{MANIFEST_NAME}: {key!r} must be an object")
    return value


def _count(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise ArchiveError(f"{MANIFEST_NAME}: {what} must be a non-negative integer")
    return value


def _timestamp(value: object) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ArchiveError(f"{MANIFEST_NAME}: created_at is not an ISO-8601 time") from exc


def _member(name: str, value: object) -> MemberInfo:
    if not isinstance(value, dict):
        raise ArchiveError(f"{MANIFEST_NAME}: entry for member {name} must be an object")
    sha256 = value.get("sha256")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ArchiveError(f"{MANIFEST_NAME}: member {name} has no valid sha256")
    records = value.get("records")
    return MemberInfo(
        sha256=sha256,
        size=_count(value.get("size"), f"size of member {name}"),
        records=None if records is None else _count(records, f"records of member {name}"),
    )
