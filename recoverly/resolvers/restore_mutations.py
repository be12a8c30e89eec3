"""startRestore, cancelRestore and restorePreview: global IDs decoded, the restore service
called, expected failures kept as errors for the payload."""

from __future__ import annotations

from typing import Protocol

from recoverly.models import Restore
from recoverly.products.restore_engine import RestoreOptions
from recoverly.resolvers.context import Context
from recoverly.resolvers.mutations import Outcome, attempt, require_id
from recoverly.services import restores
from recoverly.services.errors import ServiceError


class RestoreInput(Protocol):
    """``StartRestoreInput`` as the resolvers read it."""

    @property
    def backup_id(self) -> str: ...

    @property
    def destination_id(self) -> str: ...

    @property
    def include_attachments(self) -> bool: ...

    @property
    def include_users_and_groups(self) -> bool: ...


def to_request(input: RestoreInput) -> restores.RestoreRequest:
    return restores.RestoreRequest(
        backup_id=require_id(input.backup_id, "Backup", field=["input", "backupId"]),
        destination_id=require_id(
            input.destination_id,
            "ProductInstance",
            field=["input", "destinationId"],
            what="destination site",
        ),
        options=RestoreOptions(
            include_attachments=input.include_attachments,
            include_users_and_groups=input.include_users_and_groups,
        ),
    )


async def start_restore(ctx: Context, input: RestoreInput) -> Outcome[Restore]:
    async def start() -> Restore:
        request = to_request(input)
        return await restores.start_restore(ctx.runtime, ctx.authenticated_scope, request)

    return await attempt(start())


async def cancel_restore(ctx: Context, *, restore_id: str) -> Outcome[Restore]:
    async def cancel() -> Restore:
        return await restores.cancel_restore(
            ctx.runtime,
            ctx.authenticated_scope,
            restore_id=require_id(restore_id, "Restore", field=["input", "restoreId"]),
        )

    return await attempt(cancel())


async def restore_preview(ctx: Context, input: RestoreInput) -> restores.Preview:
    """What ``start_restore`` would do; its errors are in the preview, never raised."""
    try:
        request = to_request(input)
        return await restores.preview_restore(ctx.runtime, ctx.authenticated_scope, request)
    except ServiceError as error:
        return restores.Preview(errors=[error])
