"""availableForRestore is true only while a copy's blob is really there: a missing or
damaged archive is found on the sweep or before a restore starts, and the reason says so."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from recoverly.models import BackupCopy, BackupLocation
from recoverly.resolvers.global_ids import decode_id, to_global_id
from recoverly.services.retention import check_internal_copies
from tests.conftest import Deployment
from tests.services.test_backups import POLICY, _policy_backups, run_backup

AVAILABILITY = "... on Backup { status location availableForRestore unavailableReason }"
PREVIEW = """query($input: StartRestoreInput!) { restorePreview(input: $input) {
  itemsTotal errors { code message field } } }"""
START = """mutation($input: StartRestoreInput!) { startRestore(input: $input) {
  restore { id } errors { code message field } } }"""


async def copies_of(deployment: Deployment, backup_id: str) -> dict[BackupLocation, BackupCopy]:
    async with deployment.runtime.db.session() as session:
        statement = select(BackupCopy).where(
            col(BackupCopy.backup_id) == decode_id(backup_id, "Backup")
        )
        return {c.location: c for c in (await session.exec(statement)).all()}


async def state(deployment: Deployment, backup_id: str) -> dict[str, Any]:
    return await deployment.wait_until(backup_id, AVAILABILITY, lambda n: True)


def restore_input(deployment: Deployment, backup_id: str) -> dict[str, Any]:
    destination = to_global_id("ProductInstance", deployment.demo.instances["acme_jira_sandbox"])
    return {"input": {"backupId": backup_id, "destinationId": destination}}


async def test_a_missing_internal_archive_is_found_by_the_sweep(own_deployment: Deployment) -> None:
    deployment = own_deployment
    started = await run_backup(deployment, "acme_jira")
    backup = await deployment.wait_backup(started["backup"]["id"])
    assert backup["status"] == "COMPLETED"
    internal = (await copies_of(deployment, backup["id"]))[BackupLocation.INTERNAL_STORAGE]
    assert (await state(deployment, backup["id"]))["availableForRestore"] is True
    await deployment.runtime.internal_store.delete(internal.key)
    assert (await check_internal_copies(deployment.runtime)).missing == [internal.id]
    node = await state(deployment, backup["id"])
    assert node["availableForRestore"] is False
    assert node["location"] is None
    assert "missing or unreadable in internal storage" in node["unavailableReason"]


async def test_the_sweep_checks_a_batch_of_copies_at_a_time_going_on_where_it_stopped(
    own_deployment: Deployment,
) -> None:
    deployment = own_deployment
    internal = []
    for _ in range(2):
        started = await run_backup(deployment, "acme_jira")
        backup = await deployment.wait_backup(started["backup"]["id"])
        internal.append(
            (await copies_of(deployment, backup["id"]))[BackupLocation.INTERNAL_STORAGE]
        )
    first, second = internal
    for copy in internal:
        await deployment.runtime.internal_store.delete(copy.key)
    runtime = deployment.runtime
    assert first.id is not None and second.id is not None
    checked = await check_internal_copies(runtime, after=first.id - 1, limit=1)
    assert (checked.missing, checked.after) == ([first.id], first.id)
    checked = await check_internal_copies(runtime, after=checked.after, limit=1)
    assert (checked.missing, checked.after) == ([second.id], second.id)
    # Past the last copy the next check starts from the first again.
    checked = await check_internal_copies(runtime, after=checked.after, limit=1)
    assert (checked.missing, checked.after) == ([], 0)


async def test_a_damaged_archive_is_found_before_a_restore_starts(
    own_deployment: Deployment,
) -> None:
    deployment = own_deployment
    started = await run_backup(deployment, "acme_jira")
    backup = await deployment.wait_backup(started["backup"]["id"])
    internal = (await copies_of(deployment, backup["id"]))[BackupLocation.INTERNAL_STORAGE]
    path = deployment.runtime.internal_store.path_for(internal.key)  # type: ignore[attr-defined]
    path.write_bytes(path.read_bytes()[:100])  # truncated on disk
    preview = await deployment.answered_meanwhile(
        deployment.gql(PREVIEW, restore_input(deployment, backup["id"]))
    )
    errors = preview["restorePreview"]["errors"]
    assert [e["code"] for e in errors] == ["BACKUP_NOT_AVAILABLE"]
    assert "missing or unreadable in internal storage" in errors[0]["message"]
    started_restore = await deployment.gql(START, restore_input(deployment, backup["id"]))
    assert started_restore["startRestore"]["restore"] is None
    assert started_restore["startRestore"]["errors"][0]["code"] == "BACKUP_NOT_AVAILABLE"
    assert (await state(deployment, backup["id"]))["availableForRestore"] is False


async def test_the_customer_copy_takes_over_then_is_checked_too(
    own_deployment: Deployment,
    s3_endpoint: str,
    s3_bucket: str,
    s3_credentials: dict[str, str],
    s3_client: Any,
) -> None:
    deployment = own_deployment
    instance_id = to_global_id("ProductInstance", deployment.demo.instances["acme_jira"])
    bucket = {
        "bucket": s3_bucket,
        "endpointUrl": s3_endpoint,
        "accessKeyId": s3_credentials["access_key_id"],
        "secretAccessKey": s3_credentials["secret_access_key"],
    }
    data = await deployment.gql(
        POLICY,
        {
            "input": {
                "instanceId": instance_id,
                "storage": "INTERNAL_AND_CUSTOMER",
                "customerBucket": bucket,
            }
        },
    )
    backup_ids = await _policy_backups(deployment, data["createBackupPolicy"]["policy"]["id"])
    backup = await deployment.wait_backup(backup_ids[0])
    assert backup["status"] == "COMPLETED", backup["failureReason"]
    copies = await copies_of(deployment, backup["id"])
    await deployment.runtime.internal_store.delete(copies[BackupLocation.INTERNAL_STORAGE].key)
    preview = await deployment.gql(PREVIEW, restore_input(deployment, backup["id"]))
    assert preview["restorePreview"]["errors"] == []
    assert preview["restorePreview"]["itemsTotal"] > 0
    node = await state(deployment, backup["id"])
    assert node["location"] == "CUSTOMER_STORAGE" and node["availableForRestore"] is True
    s3_client.delete_object(Bucket=s3_bucket, Key=copies[BackupLocation.CUSTOMER_STORAGE].key)
    preview = await deployment.gql(PREVIEW, restore_input(deployment, backup["id"]))
    errors = preview["restorePreview"]["errors"]
    assert [e["code"] for e in errors] == ["BACKUP_NOT_AVAILABLE"]
    assert "internal storage and in your bucket" in errors[0]["message"]
