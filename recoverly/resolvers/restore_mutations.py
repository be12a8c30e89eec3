"""startRestore, cancelRestore and restorePreview: global IDs decoded, the restore service
called, expected failures kept as errors for the payload."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from recoverly.models import ConflictPolicy, Restore
from recoverly.products.restore_engine import RestoreOptions
from recoverly.resolvers.context import Context
from recoverly.resolvers.mutations import MutationResult, attempt, require_id
from recoverly.services import restores
from recoverly.services.errors import ServiceError
from recoverly.services.restore_selection import SelectionRequest


class SelectionFields(Protocol):
    @property
    def project_keys(self) -> Sequence[str] | None: ...

    @property
    def space_keys(self) -> Sequence[str] | None: ...


class RenameFields(Protocol):
    @property
    def from_(self) -> str: ...

    @property
    def to(self) -> str: ...


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

    @property
    def selection(self) -> SelectionFields | None: ...

    @property
    def conflict_policy(self) -> ConflictPolicy: ...

    @property
    def key_renames(self) -> Sequence[RenameFields] | None: ...


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
        selection=selection_request(input),
    )


def selection_request(input: RestoreInput) -> SelectionRequest:
    selection = input.selection
    return SelectionRequest(
        project_keys=_keys(selection.project_keys) if selection else None,
        space_keys=_keys(selection.space_keys) if selection else None,
        given=selection is not None,
        policy=input.conflict_policy,
        renames=tuple((r.from_, r.to) for r in input.key_renames or ()),
    )


def _keys(keys: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if keys is None else tuple(keys)


async def start_restore(ctx: Context, input: RestoreInput) -> MutationResult[Restore]:
    async def start() -> Restore:
        request = to_request(input)
        return await restores.start_restore(ctx.runtime, ctx.authenticated_scope, request)

    return await attempt(start())


async def cancel_restore(ctx: Context, *, restore_id: str) -> MutationResult[Restore]:
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
