"""startRestore, cancelRestore and the restorePreview query."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from recoverly.resolvers import restore_mutations
from recoverly.resolvers.context import Context
from recoverly.schema.backups import Backup
from recoverly.schema.enums import ConflictPolicy, ProductKey
from recoverly.schema.errors import UserError, user_errors
from recoverly.schema.organizations import ProductInstance
from recoverly.schema.restores import Restore


@strawberry.input(description="The projects (Jira) or spaces (Confluence) to restore.")
class RestoreSelectionInput:
    project_keys: list[str] | None = None
    space_keys: list[str] | None = None


@strawberry.input(description="Restore the project or space `from` under the key `to`.")
class KeyRenameInput:
    from_: str = strawberry.field(name="from")
    to: str


@strawberry.input
class StartRestoreInput:
    backup_id: strawberry.ID
    destination_id: strawberry.ID
    include_attachments: bool = True
    include_users_and_groups: bool = True
    selection: RestoreSelectionInput | None = strawberry.field(
        default=None,
        description="Restore only these projects or spaces, into any site, live ones "
        "included; none: a full-site restore.",
    )
    conflict_policy: ConflictPolicy = strawberry.field(
        default=ConflictPolicy.SKIP,
        description="What happens to a selected key that already exists in the destination.",
    )
    key_renames: list[KeyRenameInput] | None = strawberry.field(
        default=None, description="For RENAME: the key each renamed project or space gets."
    )


@strawberry.type
class StartRestorePayload:
    restore: Restore | None
    errors: list[UserError]


@strawberry.input
class CancelRestoreInput:
    restore_id: strawberry.ID


@strawberry.type
class CancelRestorePayload:
    restore: Restore | None
    errors: list[UserError]


@strawberry.type(description="A restored group's product access that would await review.")
class PreviewAccessReview:
    group_name: str
    product: ProductKey
    billable_users_added: int = strawberry.field(
        description="Users who would become billable if this review alone were approved."
    )


@strawberry.type(description="What a restore would do, without doing it.")
class RestorePreviewPayload:
    backup: Backup | None
    destination: ProductInstance | None
    entity_counts: JSON | None
    items_total: int = strawberry.field(
        description="Items the restore would write: its progress counts up to this."
    )
    skipped_spaces: list[str]
    attachments: int
    attachment_bytes: int
    destination_empty: bool | None
    access_reviews: list[PreviewAccessReview]
    errors: list[UserError] = strawberry.field(
        description="The errors startRestore would return now."
    )


async def restore_preview(
    info: Info[Context, None], input: StartRestoreInput
) -> RestorePreviewPayload:
    preview = await restore_mutations.restore_preview(info.context, input)
    plan = preview.plan
    return RestorePreviewPayload(
        backup=Backup.from_row(preview.backup) if preview.backup else None,
        destination=ProductInstance.from_row(preview.destination) if preview.destination else None,
        entity_counts=JSON(dict(plan.entity_counts)) if plan else None,
        items_total=plan.items_total if plan else 0,
        skipped_spaces=list(plan.skipped_spaces) if plan else [],
        attachments=plan.attachments if plan else 0,
        attachment_bytes=plan.attachment_bytes if plan else 0,
        destination_empty=preview.destination_empty,
        access_reviews=[
            PreviewAccessReview(
                group_name=name,
                product=ProductKey(product),
                billable_users_added=preview.billing.get((name, product), 0),
            )
            for name, product in (plan.groups_with_access if plan else [])
        ],
        errors=user_errors(preview.errors),
    )


@strawberry.type
class RestoreMutations:
    @strawberry.mutation(description="Restore a backup into a destination site.")
    async def start_restore(
        self, info: Info[Context, None], input: StartRestoreInput
    ) -> StartRestorePayload:
        outcome = await restore_mutations.start_restore(info.context, input)
        return StartRestorePayload(
            restore=Restore.from_row(outcome.value) if outcome.value else None,
            errors=user_errors(outcome.errors),
        )

    @strawberry.mutation(description="Cancel a restore; what it restored so far is removed.")
    async def cancel_restore(
        self, info: Info[Context, None], input: CancelRestoreInput
    ) -> CancelRestorePayload:
        outcome = await restore_mutations.cancel_restore(info.context, restore_id=input.restore_id)
        return CancelRestorePayload(
            restore=Restore.from_row(outcome.value) if outcome.value else None,
            errors=user_errors(outcome.errors),
        )
