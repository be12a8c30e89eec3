"""Retention: internal copies expire after the retention period (14 days by default)."""

from __future__ import annotations

import logging

from sqlmodel import col, select

from recoverly.models import Backup, BackupCopy, BackupLocation, BackupStatus, CopyStatus
from recoverly.services.locations import copy_is_live
from recoverly.services.runtime import Runtime

log = logging.getLogger(__name__)


async def sweep_expired_copies(runtime: Runtime) -> list[int]:
    """Delete the blobs of expired internal copies and mark them expired; a backup left
    with no copy at all becomes EXPIRED. Returns the IDs of the copies expired."""
    now = runtime.now()
    async with runtime.db.session() as session:
        expired = (
            await session.exec(
                select(BackupCopy).where(
                    col(BackupCopy.location) == BackupLocation.INTERNAL_STORAGE,
                    col(BackupCopy.status) == CopyStatus.AVAILABLE,
                    col(BackupCopy.expires_at) <= now,
                )
            )
        ).all()
    done = []
    for copy in expired:
        await runtime.internal_store.delete(copy.key)
        async with runtime.db.transaction() as session:
            row = await session.get(BackupCopy, copy.id)
            if row is None or row.status != CopyStatus.AVAILABLE:
                continue
            row.status = CopyStatus.EXPIRED
            row.expired_at = now
            siblings = (
                await session.exec(
                    select(BackupCopy).where(col(BackupCopy.backup_id) == row.backup_id)
                )
            ).all()
            if not any(copy_is_live(c, now) for c in siblings if c.id != row.id):
                backup = await session.get(Backup, row.backup_id)
                if backup is not None and backup.status in (
                    BackupStatus.COMPLETED,
                    BackupStatus.INCOMPLETE,
                ):
                    backup.status = BackupStatus.EXPIRED
        assert copy.id is not None
        done.append(copy.id)
        log.info("expired internal copy %s of backup %s", copy.id, copy.backup_id)
    return done
