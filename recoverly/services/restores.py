"""Restores: the rules of DESIGN.md, enforced here, for startRestore, the preview and cancel.

Each rule is checked here and nowhere else: the backup and the destination exist for the
caller, share the organization and the product (``check_request``), a copy can be read
(``copy_to_read``), a Jira destination is empty (``check_destination_free``), nothing else
runs on it (the destination lock). The restore engine gets the outcome (a ``RestoreOrder``)
and checks none of it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.models import (
    FINAL_RESTORE_STATUSES,
    Backup,
    BackupCopy,
    ProductInstance,
    ProductKey,
    Restore,
    RestoreStatus,
)
from recoverly.observability import tracing
from recoverly.observability.incidents import cite, report
from recoverly.observability.logs import get_logger
from recoverly.products.archive import ArchiveError
from recoverly.products.archive_reader import ArchiveReader
from recoverly.products.restore_diff import PreviewItem, plan_with_items
from recoverly.products.restore_engine import RestoreOptions, RestorePlan, plan_restore
from recoverly.products.restore_plan import destination_is_empty
from recoverly.products.selection import Selection, archive_containers, destination_containers
from recoverly.services import audit, operations
from recoverly.services.access import billable_accounts
from recoverly.services.archives import local_archive
from recoverly.services.errors import ErrorCode, ServiceError, not_found
from recoverly.services.locations import Availability, availability
from recoverly.services.progress import progress_event, restore_topic
from recoverly.services.restore_selection import (
    SelectionRequest,
    check_selection_input,
    selection_for,
)
from recoverly.services.retention import check_copies
from recoverly.services.runtime import Runtime
from recoverly.services.scoping import Scope
from recoverly.storage import StorageError

RESTORE_JOB = "restore.run"
DESTINATION_FIELD = ["input", "destinationId"]
log = get_logger(__name__)


@dataclass(frozen=True)
class RestoreRequest:
    backup_id: int
    destination_id: int
    options: RestoreOptions = field(default_factory=RestoreOptions)  # its selection: None
    selection: SelectionRequest = field(default_factory=SelectionRequest)


@dataclass
class Checked:
    """A request that passed the rules that need no lock: the rows it names."""

    backup: Backup
    destination: ProductInstance
    copy: BackupCopy
    in_archive: frozenset[str] | None = None  # the keys of the archive's projects or spaces


@dataclass
class Preview:
    errors: list[ServiceError]
    plan: RestorePlan | None = None
    backup: Backup | None = None
    destination: ProductInstance | None = None
    destination_empty: bool | None = None  # known with the plan
    options: RestoreOptions | None = None  # what was planned, the selection checked
    billing: dict[tuple[str, str], int] = field(default_factory=dict)
    items: list[PreviewItem] = field(default_factory=list)  # per project or space
    # For each group whose restored members wait for review: members held, billable added.
    held: dict[str, tuple[int, int]] = field(default_factory=dict)


async def check_request(
    runtime: Runtime, session: AsyncSession, scope: Scope, request: RestoreRequest
) -> Checked:
    """Same organization and product, and a copy to restore from; else a ServiceError."""
    backup = await scope.get(session, Backup, request.backup_id)
    if backup is None:
        raise not_found("backup", field=["input", "backupId"])
    destination = await scope.get(session, ProductInstance, request.destination_id)
    if destination is None:
        raise not_found("destination site", field=DESTINATION_FIELD)
    if backup.organization_id != destination.organization_id:
        raise ServiceError(
            ErrorCode.ORGANIZATION_MISMATCH,
            "a backup can only be restored into a site of the organization it was made in",
            field=DESTINATION_FIELD,
        )
    if backup.product != destination.product:
        raise ServiceError(
            ErrorCode.PRODUCT_MISMATCH,
            f"a {backup.product.title()} backup can only be restored into a "
            f"{backup.product.title()} site",
            field=DESTINATION_FIELD,
        )
    check_selection_input(request.selection, product=backup.product)
    found = await copy_to_read(runtime, session, backup)
    if found.copy is None:
        raise ServiceError(
            ErrorCode.BACKUP_NOT_AVAILABLE,
            f"this backup cannot be restored: {found.reason}",
            field=["input", "backupId"],
        )
    return Checked(backup=backup, destination=destination, copy=found.copy)


async def copies_of(session: AsyncSession, backup_id: int | None) -> list[BackupCopy]:
    statement = select(BackupCopy).where(col(BackupCopy.backup_id) == backup_id)
    return list((await session.exec(statement)).all())


async def copy_to_read(runtime: Runtime, session: AsyncSession, backup: Backup) -> Availability:
    """The copy a restore of ``backup`` reads now, or why there is none."""
    return availability(backup, await copies_of(session, backup.id), runtime.now())


async def is_empty(session: AsyncSession, destination: ProductInstance) -> bool:
    return await destination_is_empty(await session.connection(), destination)


def check_destination_free(
    destination: ProductInstance, request: RestoreRequest, *, empty: bool
) -> None:
    """A full-site Jira restore needs an empty destination (Confluence ones do not; a
    selective restore may go into a live site)."""
    if destination.product == ProductKey.JIRA and not empty and not request.selection.given:
        raise ServiceError(
            ErrorCode.DESTINATION_NOT_EMPTY,
            f"the Jira site {destination.name} already holds projects: a Jira backup can "
            "only be restored into an empty site",
            field=DESTINATION_FIELD,
        )


@asynccontextmanager
async def open_archive(
    runtime: Runtime, backup: Backup, copy: BackupCopy, *, name: str
) -> AsyncIterator[ArchiveReader]:
    """The copy's archive, open for reading, once it is known to be an archive of the
    backup's product (which ``check_request`` matched with the destination's)."""
    async with local_archive(runtime, copy, name=name) as path:
        limit = runtime.settings.archive_max_expansion_bytes
        with ArchiveReader(path, max_expansion_bytes=limit) as reader:
            product = reader.manifest.product
            if str(product) != str(backup.product):
                raise ArchiveError(f"the archive holds a {product} backup, not a {backup.product}")
            yield reader


@asynccontextmanager
async def _archive(runtime: Runtime, checked: Checked) -> AsyncIterator[ArchiveReader]:
    """The backup's archive, open for reading; a damaged one is BACKUP_NOT_AVAILABLE."""
    assert checked.backup.id is not None
    name = f"plan-{checked.backup.id}-{id(checked)}.zip"
    try:
        async with open_archive(runtime, checked.backup, checked.copy, name=name) as reader:
            yield reader
    except (StorageError, ArchiveError) as error:
        error_id = report(f"reading the archive of backup {checked.backup.id} failed", error)
        message = cite("the backup's archive could not be read", error_id)
        raise ServiceError(
            ErrorCode.BACKUP_NOT_AVAILABLE, message, field=["input", "backupId"]
        ) from None


async def check_selection(
    session: AsyncSession, checked: Checked, request: RestoreRequest
) -> RestoreOptions:
    """The request's options with its selection checked against the archive's keys
    (``checked.in_archive``) and the destination's now."""
    if not request.selection.given:
        return request.options
    assert checked.in_archive is not None and checked.destination.id is not None
    in_destination = await destination_containers(
        await session.connection(),
        product=checked.destination.product,
        destination_id=checked.destination.id,
    )
    selection = selection_for(
        request.selection,
        product=checked.backup.product,
        in_archive=checked.in_archive,
        in_destination=in_destination,
    )
    return replace(request.options, selection=selection)


async def _checked_options(
    runtime: Runtime, reader: ArchiveReader, checked: Checked, request: RestoreRequest
) -> RestoreOptions:
    """The request's options, its selection checked against the archive and destination."""
    if request.selection.given:
        archived = await asyncio.to_thread(archive_containers, reader)
        checked.in_archive = frozenset(container.key for container in archived)
    async with runtime.db.session() as session:
        return await check_selection(session, checked, request)


def _selection_json(selection: Selection | None) -> dict[str, object] | None:
    return None if selection is None else selection.to_json()


async def start_restore(runtime: Runtime, scope: Scope, request: RestoreRequest) -> Restore:
    """Queue a restore. The destination lock, the restore row, its job and the audit event
    commit together, so of concurrent calls on one destination exactly one wins.

    The rules are checked before the restore is planned (so a refused request reads no
    archive) and again in the transaction that takes the destination's lock, for what
    changed meanwhile. The restore is planned first (as ``restorePreview`` does), so its
    progress carries the number of items it will write from the first event on."""
    assert runtime.runner is not None
    await verify_copy(runtime, scope, request.backup_id)
    async with runtime.db.session() as session:
        checked = await check_request(runtime, session, scope, request)
        if await operations.is_busy(session, instance_id=request.destination_id):
            raise operations.busy_error(DESTINATION_FIELD)
        check_destination_free(
            checked.destination, request, empty=await is_empty(session, checked.destination)
        )
    async with _archive(runtime, checked) as reader:
        options = await _checked_options(runtime, reader, checked, request)
        plan = await plan_restore(
            runtime.db, reader, destination_id=request.destination_id, options=options
        )
    in_archive = checked.in_archive
    async with runtime.db.transaction() as session:
        checked = await check_request(runtime, session, scope, request)
        checked.in_archive = in_archive
        options = await check_selection(session, checked, request)
        restore = Restore(
            organization_id=checked.destination.organization_id,
            backup_id=request.backup_id,
            destination_id=request.destination_id,
            include_attachments=options.include_attachments,
            include_users_and_groups=options.include_users_and_groups,
            selection=_selection_json(options.selection),
            conflict_policy=request.selection.policy,
            started_by_id=scope.admin_id,
            created_at=runtime.now(),
            items_total=plan.items_total,
            message="queued: waiting for a worker",
        )
        session.add(restore)
        await session.flush()
        assert restore.id is not None
        tracing.set_attribute("recoverly.restore_id", restore.id)
        await operations.acquire(
            session,
            instance_id=request.destination_id,
            kind="restore",
            ref_id=restore.id,
            field=DESTINATION_FIELD,
        )
        check_destination_free(
            checked.destination, request, empty=await is_empty(session, checked.destination)
        )
        await runtime.runner.enqueue(RESTORE_JOB, {"restore_id": restore.id}, session=session)
        audit.record(
            session,
            organization_id=restore.organization_id,
            actor_id=scope.admin_id,
            action="restore.start",
            target_type="Restore",
            target_ids=[restore.id],
            details={
                "backup_id": request.backup_id,
                "destination_id": request.destination_id,
                "include_attachments": options.include_attachments,
                "include_users_and_groups": options.include_users_and_groups,
                "selection": _selection_json(options.selection),
                "conflict_policy": request.selection.policy.value,
            },
        )
    log.info(
        "restore queued",
        restore_id=restore.id,
        backup_id=request.backup_id,
        destination_id=request.destination_id,
    )
    await runtime.bus.publish(restore_topic(restore.id), progress_event(restore))
    return restore


async def cancel_restore(runtime: Runtime, scope: Scope, *, restore_id: int) -> Restore:
    """Ask a running restore to stop; its worker removes what it wrote, then CANCELED."""
    async with runtime.db.transaction() as session:
        restore = await scope.get(session, Restore, restore_id)
        if restore is None:
            raise not_found("restore", field=["input", "restoreId"])
        if restore.status in FINAL_RESTORE_STATUSES or restore.status == RestoreStatus.CANCELING:
            raise ServiceError(
                ErrorCode.ALREADY_FINAL,
                f"the restore is already {restore.status.lower().replace('_', ' ')}",
                field=["input", "restoreId"],
            )
        restore.status = RestoreStatus.CANCELING
        restore.message = "canceling: stopping, then removing what was restored"
        assert restore.id is not None
        audit.record(
            session,
            organization_id=restore.organization_id,
            actor_id=scope.admin_id,
            action="restore.cancel",
            target_type="Restore",
            target_ids=[restore.id],
        )
    await runtime.bus.publish(restore_topic(restore_id), progress_event(restore))
    return restore


async def preview_restore(runtime: Runtime, scope: Scope, request: RestoreRequest) -> Preview:
    """What ``start_restore`` would do, and every error it would return, changing nothing."""
    preview = Preview(errors=[])
    await verify_copy(runtime, scope, request.backup_id)
    async with runtime.db.session() as session:
        try:
            checked = await check_request(runtime, session, scope, request)
        except ServiceError as error:
            preview.errors.append(error)
            return preview
        preview.backup, preview.destination = checked.backup, checked.destination
        if await operations.is_busy(session, instance_id=request.destination_id):
            preview.errors.append(operations.busy_error(DESTINATION_FIELD))
        empty = await is_empty(session, checked.destination)
        try:
            check_destination_free(checked.destination, request, empty=empty)
        except ServiceError as error:
            preview.errors.append(error)
    try:
        async with _archive(runtime, checked) as reader:
            options = await _checked_options(runtime, reader, checked, request)
            plan, preview.items = await plan_with_items(
                runtime.db, reader, destination_id=request.destination_id, options=options
            )
            preview.options, preview.plan = options, plan
            preview.destination_empty = empty
            if plan.groups_with_access:
                members = await asyncio.to_thread(archived_group_members, reader)
                preview.billing = await _billing_impact(runtime, checked.destination, plan, members)
            preview.held = await _held_impact(runtime, checked.destination, plan)
    except ServiceError as error:
        preview.errors.append(error)
    return preview


async def verify_copy(runtime: Runtime, scope: Scope, backup_id: int) -> None:
    """Before a restore or preview: check that the copy it would read still has its blob
    (a stat or a HEAD); a missing one is marked so, and the next copy is checked."""
    async with runtime.db.session() as session:
        backup = await scope.get(session, Backup, backup_id)
        if backup is None:
            return
        copies = await copies_of(session, backup_id)
    while (copy := availability(backup, copies, runtime.now()).copy) is not None:
        if not await check_copies(runtime, [copy]):
            return
        copies.remove(copy)


def archived_group_members(reader: ArchiveReader) -> dict[str, set[str]]:
    """Group name -> account IDs of its members, as the archive holds them."""
    accounts = {r["id"]: r["account_id"] for r in reader.records("directory/users.jsonl")}
    names = {r["id"]: r["name"] for r in reader.records("directory/groups.jsonl")}
    members: dict[str, set[str]] = {name: set() for name in names.values()}
    for record in reader.records("directory/group_memberships.jsonl"):
        members[names[record["group_id"]]].add(accounts[record["user_id"]])
    return members


async def _held_impact(
    runtime: Runtime, destination: ProductInstance, plan: RestorePlan
) -> dict[str, tuple[int, int]]:
    """For each group whose restored members would wait for review (a ``MEMBERS`` review for
    the site's product): members held, and users approving it alone would make billable."""
    if not plan.held_members:
        return {}
    async with runtime.db.session() as session:
        billable = await billable_accounts(
            session, organization_id=destination.organization_id, product=destination.product
        )
    return {
        group: (len(accounts), len(accounts - billable))
        for group, accounts in sorted(plan.held_members.items())
    }


async def _billing_impact(
    runtime: Runtime,
    destination: ProductInstance,
    plan: RestorePlan,
    members: dict[str, set[str]],
) -> dict[tuple[str, str], int]:
    """For each review the restore would create: users that approving it alone would add."""
    impact = {}
    async with runtime.db.session() as session:
        for group, product in plan.groups_with_access:
            billable = await billable_accounts(
                session, organization_id=destination.organization_id, product=ProductKey(product)
            )
            impact[(group, product)] = len(members.get(group, set()) - billable)
    return impact
