"""One backup or restore at a time per instance, enforced by the database.

The lock is a row keyed by the instance: inserting it fails for everyone but the first,
atomically, on SQLite and PostgreSQL alike and across processes.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.models import InstanceOperation
from recoverly.services.errors import ErrorCode, ServiceError


async def acquire(
    session: AsyncSession, *, instance_id: int, kind: str, ref_id: int, field: list[str]
) -> None:
    """Take the instance's lock in the caller's transaction, or raise DESTINATION_BUSY
    pointing at the input ``field`` that names the site."""
    try:
        async with session.begin_nested():
            session.add(InstanceOperation(instance_id=instance_id, kind=kind, ref_id=ref_id))
    except IntegrityError:
        raise busy_error(field) from None


async def is_busy(session: AsyncSession, *, instance_id: int) -> bool:
    """Whether an operation holds the instance's lock now (only ``acquire`` decides)."""
    return await session.get(InstanceOperation, instance_id) is not None


def busy_error(field: list[str]) -> ServiceError:
    return ServiceError(
        ErrorCode.DESTINATION_BUSY,
        "a backup or restore is already in progress on this site; "
        "wait for it to finish, then try again",
        field=field,
    )


async def release(session: AsyncSession, *, instance_id: int, kind: str, ref_id: int) -> None:
    await session.exec(  # type: ignore[call-overload]
        delete(InstanceOperation).where(
            col(InstanceOperation.instance_id) == instance_id,
            col(InstanceOperation.kind) == kind,
            col(InstanceOperation.ref_id) == ref_id,
        )
    )
