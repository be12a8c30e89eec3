"""Retention: internal copies expire after the retention period (14 days by default), and
copies whose blob is gone or unreadable stop being offered for restore."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col, select

from recoverly.models import BackupCopy, BackupLocation, CopyStatus
from recoverly.services.archives import store_for
from recoverly.services.backups import expire_backup
from recoverly.services.locations import copy_is_live
from recoverly.services.runtime import Runtime
from recoverly.storage import StorageError

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
                await expire_backup(session, backup_id=row.backup_id)
        assert copy.id is not None
        done.append(copy.id)
        log.info("expired internal copy %s of backup %s", copy.id, copy.backup_id)
    return done


async def check_copies(runtime: Runtime, copies: Sequence[BackupCopy]) -> list[int]:
    """Mark live copies whose blob is missing, of the wrong size or unreadable as MISSING
    (one stat or HEAD each); a customer bucket that does not answer proves nothing and is
    left as it is. Returns the IDs marked."""
    now = runtime.now()
    missing = []
    for copy in copies:
        if not copy_is_live(copy, now):
            continue
        try:
            size = await store_for(runtime, copy).size(copy.key)
        except StorageError as error:
            if copy.location == BackupLocation.CUSTOMER_STORAGE:
                log.warning(
                    "could not check copy %s of backup %s: %s", copy.id, copy.backup_id, error
                )
                continue
            size = None
        if size is None or size != copy.size_bytes:
            missing.append(copy)
    return await _mark_missing(runtime, missing)


CHECK_PAGE = 1000


@dataclass(frozen=True)
class CopiesChecked:
    """What one run of ``check_internal_copies`` found, and where the next one goes on:
    after the copy with ID ``after``, or from the first again (0) when it reached the last."""

    missing: list[int]
    after: int


async def check_internal_copies(
    runtime: Runtime, *, after: int = 0, limit: int | None = None
) -> CopiesChecked:
    """The sweep's check: live internal copies still have their blobs, in ID order from
    ``after`` on, at most ``limit`` of them (all without one). A page of copies at a time:
    one query for the few columns it needs (plain rows, no ORM objects), then the page's
    sizes in one call of the store (one worker thread for local storage), so that however
    many copies there are, the check never holds the event loop long."""
    missing: list[int] = []
    left = limit
    columns = (
        col(BackupCopy.id),
        col(BackupCopy.backup_id),
        col(BackupCopy.key),
        col(BackupCopy.size_bytes),
    )
    while left is None or left > 0:
        page = CHECK_PAGE if left is None else min(CHECK_PAGE, left)
        async with runtime.db.session() as session:
            now = runtime.now()
            copies: Sequence[Any] = (
                await session.exec(
                    select(*columns)
                    .where(
                        col(BackupCopy.location) == BackupLocation.INTERNAL_STORAGE,
                        col(BackupCopy.status) == CopyStatus.AVAILABLE,
                        col(BackupCopy.id) > after,
                        or_(col(BackupCopy.expires_at).is_(None), col(BackupCopy.expires_at) > now),
                    )
                    .order_by(col(BackupCopy.id))
                    .limit(page)
                )
            ).all()
        if copies:
            after = copies[-1].id
            sizes = await runtime.internal_store.sizes([copy.key for copy in copies])
            bad = [c for c, size in zip(copies, sizes, strict=True) if size != c.size_bytes]
            missing += await _mark_missing(runtime, bad)
        if len(copies) < page:
            return CopiesChecked(missing, after=0)
        if left is not None:
            left -= len(copies)
    return CopiesChecked(missing, after=after)


async def _mark_missing(runtime: Runtime, copies: Sequence[Any]) -> list[int]:
    """Mark these copies (still AVAILABLE; anything with the ``id`` and ``backup_id`` of
    one) MISSING; returns their IDs."""
    ids = []
    for copy in copies:
        assert copy.id is not None
        ids.append(copy.id)
        log.warning("copy %s of backup %s is missing or damaged", copy.id, copy.backup_id)
    if ids:
        async with runtime.db.transaction() as session:
            await session.exec(
                update(BackupCopy)
                .where(col(BackupCopy.id).in_(ids), col(BackupCopy.status) == CopyStatus.AVAILABLE)
                .values(status=CopyStatus.MISSING)
            )
    return ids
