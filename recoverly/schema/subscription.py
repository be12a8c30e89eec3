"""Subscriptions: live restore and backup progress over graphql-transport-ws."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from recoverly.resolvers.context import Context
from recoverly.resolvers.subscriptions import backup_progress_events, restore_progress_events
from recoverly.schema.backups import BackupProgress
from recoverly.schema.broadcast import BROADCASTS, send_now
from recoverly.schema.restores import RestoreProgress

_RESTORE_NOW = send_now(RestoreProgress.from_event)
_BACKUP_NOW = send_now(BackupProgress.from_event)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The restore's current state first, then every change, until it is final."
    )
    async def restore_progress(
        self, info: Info[Context, None], restore_id: strawberry.ID
    ) -> AsyncGenerator[RestoreProgress, None]:
        events = restore_progress_events(info.context, restore_id, _RESTORE_NOW)
        async for event in events:
            yield BROADCASTS.payload(event, RestoreProgress.from_event)

    @strawberry.subscription(
        description="The backup's current state first, then every change, until it is final."
    )
    async def backup_progress(
        self, info: Info[Context, None], backup_id: strawberry.ID
    ) -> AsyncGenerator[BackupProgress, None]:
        events = backup_progress_events(info.context, backup_id, _BACKUP_NOW)
        async for event in events:
            yield BROADCASTS.payload(event, BackupProgress.from_event)
