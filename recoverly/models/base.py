"""Shared column helpers and enums for the table models."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import JSON, Column, DateTime, Dialect, String, Table, TypeDecorator, inspect
from sqlmodel import Field


class TableRow(Protocol):
    """A row of a table model: every Recoverly table has an integer primary key ``id``."""

    id: int | None


def saved_id(row: TableRow) -> int:
    """The ``id`` of a stored row; a row not stored yet has none, and is a ``ValueError``."""
    if row.id is None:
        raise ValueError(f"the {type(row).__name__.lower()} has no id: it is not stored yet")
    return row.id


def table_of(model: type[object]) -> Table:
    """The Core table of a table model (SQLModel leaves ``__table__`` untyped)."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use timezone-aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


def created_at_field() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def time_field(*, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)


def enum_field(default: Any = None, *, index: bool = False) -> Any:
    """Enums are stored as short strings, so migrations never touch database enum types."""
    return Field(default=default, sa_type=String(32), index=index)


def json_field(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


class ProductKey(StrEnum):
    JIRA = "JIRA"
    CONFLUENCE = "CONFLUENCE"


class BackupStatus(StrEnum):
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    INCOMPLETE = "INCOMPLETE"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"


FINAL_BACKUP_STATUSES = frozenset(
    {
        BackupStatus.COMPLETED,
        BackupStatus.INCOMPLETE,
        BackupStatus.FAILED,
        BackupStatus.EXPIRED,
        BackupStatus.CANCELED,
    }
)


class Schedule(StrEnum):
    ONCE = "ONCE"
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"


class StorageMode(StrEnum):
    INTERNAL = "INTERNAL"
    INTERNAL_AND_CUSTOMER = "INTERNAL_AND_CUSTOMER"


class BackupLocation(StrEnum):
    INTERNAL_STORAGE = "INTERNAL_STORAGE"
    CUSTOMER_STORAGE = "CUSTOMER_STORAGE"


class CopyStatus(StrEnum):
    AVAILABLE = "AVAILABLE"
    EXPIRED = "EXPIRED"
    MISSING = "MISSING"  # the blob was gone or unreadable when last checked


class RestoreStatus(StrEnum):
    QUEUED = "QUEUED"
    VALIDATING = "VALIDATING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    PARTIALLY_COMPLETED = "PARTIALLY_COMPLETED"
    FAILED = "FAILED"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"


FINAL_RESTORE_STATUSES = frozenset(
    {
        RestoreStatus.COMPLETED,
        RestoreStatus.PARTIALLY_COMPLETED,
        RestoreStatus.FAILED,
        RestoreStatus.CANCELED,
    }
)


class RestorePhase(StrEnum):
    VALIDATING = "VALIDATING"
    READING_ARCHIVE = "READING_ARCHIVE"
    USERS_AND_GROUPS = "USERS_AND_GROUPS"
    CONTENT = "CONTENT"
    ATTACHMENTS = "ATTACHMENTS"
    FINALIZING = "FINALIZING"


class ConflictPolicy(StrEnum):
    """What a selective restore does with a selected project or space whose key the
    destination already holds."""

    SKIP = "SKIP"  # leave it untouched
    RENAME = "RENAME"  # restore it beside, under another key
    MERGE = "MERGE"  # add only what is missing


class RestoreItemKind(StrEnum):
    PROJECT = "PROJECT"
    SPACE = "SPACE"


class RestoreItemAction(StrEnum):
    """What a restore does with one project or space of the backup."""

    CREATE = "CREATE"
    SKIP = "SKIP"
    RENAME = "RENAME"
    MERGE = "MERGE"


class AccessReviewStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    DENIED = "DENIED"


class AccessReviewKind(StrEnum):
    GROUP_ACCESS = "GROUP_ACCESS"  # a restored group's product access
    MEMBERS = "MEMBERS"  # restored members of a group that already grants product access


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
