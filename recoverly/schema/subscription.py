"""Subscriptions: live restore and backup progress over graphql-transport-ws."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from recoverly.resolvers.context import Context
from recoverly.resolvers.subscriptions import backup_progress_events, restore_progress_events
from recoverly.schema.backups import BackupProgress
from recoverly.schema.broadcast import BROADCASTS
from recoverly.schema.restores import RestoreProgress


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The restore's current state first, then every change, until it is final."
    )
    async def restore_progress(
        self, info: Info[Context, None], restore_id: strawberry.ID
    ) -> AsyncGenerator[RestoreProgress, None]:
        async for event in restore_progress_events(info.context, restore_id):
            yield BROADCASTS.payload(event, RestoreProgress.from_event)

    @strawberry.subscription(
        description="The backup's current state first, then every change, until it is final."
    )
    async def backup_progress(
        self, info: Info[Context, None], backup_id: strawberry.ID
    ) -> AsyncGenerator[BackupProgress, None]:
        async for event in backup_progress_events(info.context, backup_id):
            yield BROADCASTS.payload(event, BackupProgress.from_event)
