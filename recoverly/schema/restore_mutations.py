"""startRestore, cancelRestore and the restorePreview query."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from recoverly.resolvers import restore_mutations
from recoverly.resolvers.context import Context
from recoverly.schema.backups import Backup
from recoverly.schema.enums import (
    AccessReviewKind,
    ConflictPolicy,
    ProductKey,
    RestoreItemAction,
    RestoreItemKind,
)
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


@strawberry.type(
    description="A review the restore would create: a restored group's product access "
    "(GROUP_ACCESS), or restored members of a group that already grants it (MEMBERS)."
)
class PreviewAccessReview:
    group_name: str
    product: ProductKey
    billable_users_added: int = strawberry.field(
        description="Users who would become billable if this review alone were approved."
    )
    kind: AccessReviewKind = AccessReviewKind.GROUP_ACCESS
    held_members: int = strawberry.field(
        default=0,
        description="MEMBERS: restored members who would wait for this review to join the "
        "group (no access before approval); 0 for GROUP_ACCESS.",
    )


@strawberry.type(description="Items of a project or space compared with the destination's.")
class RestoreItemDiff:
    only_in_backup: int = strawberry.field(description="Only in the backup: would be added.")
    identical: int = strawberry.field(description="In both, with the same content hash.")
    different: int = strawberry.field(description="In both, with different content hashes.")
    only_in_destination: int = strawberry.field(description="Only in the destination.")


@strawberry.type(description="What the restore does with one project or space of the backup.")
class RestorePreviewItem:
    kind: RestoreItemKind
    key: str
    name: str
    action: RestoreItemAction
    target_key: str = strawberry.field(description="The key it will have in the destination.")
    entity_counts: JSON = strawberry.field(
        description="Records the restore writes for it, per content entity: the items' "
        "counts add up to the preview's for those entities."
    )
    diff: RestoreItemDiff | None = strawberry.field(
        description="Its items (Jira issues by key, Confluence pages by title) compared with "
        "the destination's by a content hash over their fields, comments and attachments; "
        "null when the key does not exist in the destination (or it is renamed)."
    )


@strawberry.type(description="Users or groups of the backup, as the restore would treat them.")
class RestorePreviewDirectory:
    created: int = strawberry.field(description="New in the destination.")
    reused: int = strawberry.field(
        description="Already in the destination (users by account ID, groups by name): "
        "mapped to, never modified."
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
    items: list[RestorePreviewItem] = strawberry.field(
        default_factory=list,
        description="One per selected project or space (every one for a full-site restore).",
    )
    users: RestorePreviewDirectory | None = strawberry.field(
        default=None,
        description="Users the restore creates or maps to existing ones (by account ID); "
        "null when it leaves users and groups out.",
    )
    groups: RestorePreviewDirectory | None = strawberry.field(
        default=None,
        description="Groups the restore creates or maps to existing ones (by name); null "
        "when it leaves users and groups out.",
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
        ]
        + [
            PreviewAccessReview(
                group_name=name,
                product=ProductKey(preview.destination.product),
                billable_users_added=billable,
                kind=AccessReviewKind.MEMBERS,
                held_members=held,
            )
            for name, (held, billable) in preview.held.items()
            if preview.destination is not None
        ],
        errors=user_errors(preview.errors),
        items=[
            RestorePreviewItem(
                kind=item.kind,
                key=item.key,
                name=item.name,
                action=item.action,
                target_key=item.target_key,
                entity_counts=JSON(item.entity_counts),
                diff=RestoreItemDiff(
                    only_in_backup=item.diff.only_in_backup,
                    identical=item.diff.identical,
                    different=item.diff.different,
                    only_in_destination=item.diff.only_in_destination,
                )
                if item.diff
                else None,
            )
            for item in preview.items
        ],
        users=_directory(plan.entity_counts, plan.existing, "users") if plan else None,
        groups=_directory(plan.entity_counts, plan.existing, "groups") if plan else None,
    )


def _directory(
    written: dict[str, int], existing: dict[str, int], entity: str
) -> RestorePreviewDirectory | None:
    """Null when the restore leaves users and groups out."""
    if entity not in written:
        return None
    return RestorePreviewDirectory(created=written[entity], reused=existing.get(entity, 0))


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
