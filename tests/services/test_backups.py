"""Backups through the API: manual runs, policies, busy sites, retention and location."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from recoverly.models import (
    Backup,
    GroupMembership,
    JiraAttachment,
    JiraComment,
    JiraIssue,
    JiraProject,
    SiteGroup,
    SiteUser,
    utcnow,
)
from recoverly.products.archive_reader import ArchiveReader
from recoverly.resolvers.global_ids import decode_id, to_global_id
from recoverly.services.backups import internal_key
from recoverly.services.policies import run_due_policies
from recoverly.services.retention import sweep_expired_copies
from recoverly.storage import LocalBlobStore
from tests.conftest import OTHER_TOKEN, Deployment
from tests.waiting import wait_for

RUN = """mutation($input: RunBackupInput!) {
  runBackup(input: $input) { backup { id status } errors { code message field } }
}"""
POLICY = """mutation($input: CreateBackupPolicyInput!) {
  createBackupPolicy(input: $input) {
    policy { id schedule storage active nextRunAt customerBucket { bucket endpointUrl } }
    errors { code message field }
  }
}"""


async def source_counts(deployment: Deployment, instance_id: int) -> dict[str, int]:
    tables = {
        "projects": JiraProject,
        "issues": JiraIssue,
        "comments": JiraComment,
        "attachments": JiraAttachment,
        "users": SiteUser,
        "groups": SiteGroup,
        "group_memberships": GroupMembership,
    }
    counts = {}
    async with deployment.runtime.db.session() as session:
        for name, model in tables.items():
            statement = select(func.count()).where(col(model.instance_id) == instance_id)
            counts[name] = (await session.exec(statement)).one()
    return counts


async def run_backup(deployment: Deployment, instance: str, **options: Any) -> dict[str, Any]:
    instance_id = to_global_id("ProductInstance", deployment.demo.instances[instance])
    data = await deployment.gql(RUN, {"input": {"instanceId": instance_id, **options}})
    return data["runBackup"]  # type: ignore[no-any-return]


async def test_backup_of_demo_jira_holds_exactly_the_source_counts(
    deployment: Deployment,
) -> None:
    started = await run_backup(deployment, "acme_jira")
    assert started["errors"] == []
    assert started["backup"]["status"] == "QUEUED"
    backup = await deployment.wait_backup(started["backup"]["id"])
    assert backup["status"] == "COMPLETED", backup["failureReason"]
    expected = await source_counts(deployment, deployment.demo.instances["acme_jira"])
    assert expected["issues"] >= 2000 and expected["attachments"] >= 100
    for entity, count in expected.items():
        assert backup["entityCounts"][entity] == count, entity
    assert backup["location"] == "INTERNAL_STORAGE"
    async with deployment.runtime.db.session() as session:
        row = await session.get(Backup, decode_id(backup["id"], "Backup"))
    assert row is not None
    path = deployment.runtime.internal_store.path_for(internal_key(row))  # type: ignore[attr-defined]
    with ArchiveReader(path, max_expansion_bytes=1 << 32) as reader:
        manifest = reader.verify()
    assert manifest.entity_counts == backup["entityCounts"]
    assert row.size_bytes == path.stat().st_size


async def test_second_backup_on_a_busy_site_is_refused(deployment: Deployment) -> None:
    instance_id = to_global_id("ProductInstance", deployment.demo.instances["acme_confluence"])
    # Workers paused: the first backup stays queued, holding the site, however fast it runs.
    runner = deployment.runtime.runner
    assert runner is not None
    await runner.stop()
    try:
        data = await deployment.gql(
            """mutation($i: RunBackupInput!) {
              a: runBackup(input: $i) { backup { id } errors { code } }
              b: runBackup(input: $i) { backup { id } errors { code message } }
            }""",
            {"i": {"instanceId": instance_id}},
        )
        busy = await deployment.gql(
            "query($id: ID!) { node(id: $id) { ... on ProductInstance { operationInProgress } } }",
            {"id": instance_id},
        )
    finally:
        await runner.start()
    assert data["a"]["errors"] == []
    assert data["b"]["backup"] is None
    assert data["b"]["errors"][0]["code"] == "DESTINATION_BUSY"
    backup = await deployment.wait_backup(data["a"]["backup"]["id"])
    assert backup["status"] == "COMPLETED"
    assert busy["node"]["operationInProgress"] is True
    idle = await deployment.gql(
        "query($id: ID!) { node(id: $id) { ... on ProductInstance { operationInProgress } } }",
        {"id": instance_id},
    )
    assert idle["node"]["operationInProgress"] is False


async def test_backup_of_another_organizations_site_is_not_found(deployment: Deployment) -> None:
    # The Globex admin cannot back up Acme's sandbox: it does not exist for them.
    instance_id = to_global_id("ProductInstance", deployment.demo.instances["acme_jira_sandbox"])
    data = await deployment.gql(RUN, {"input": {"instanceId": instance_id}}, token=OTHER_TOKEN)
    assert data["runBackup"]["errors"][0]["code"] == "NOT_FOUND"
    assert data["runBackup"]["backup"] is None


async def test_policy_with_customer_storage_runs_and_survives_internal_expiry(
    own_deployment: Deployment, s3_endpoint: str, s3_bucket: str, s3_credentials: dict[str, str]
) -> None:
    deployment = own_deployment
    instance_id = to_global_id("ProductInstance", deployment.demo.instances["initech_jira"])
    bucket = {"bucket": s3_bucket, "endpointUrl": s3_endpoint, "prefix": "recoverly"}
    bucket |= {
        "accessKeyId": s3_credentials["access_key_id"],
        "secretAccessKey": s3_credentials["secret_access_key"],
    }
    data = await deployment.gql(
        POLICY,
        {
            "input": {
                "instanceId": instance_id,
                "schedule": "ONCE",
                "storage": "INTERNAL_AND_CUSTOMER",
                "customerBucket": bucket,
            }
        },
    )
    policy = data["createBackupPolicy"]
    assert policy["errors"] == []
    assert policy["policy"]["customerBucket"] == {"bucket": s3_bucket, "endpointUrl": s3_endpoint}
    runtime = deployment.runtime
    assert runtime.scheduler is not None
    backup_ids = await _policy_backups(deployment, policy["policy"]["id"])
    backup = await deployment.wait_backup(backup_ids[0])
    assert backup["status"] == "COMPLETED", backup["failureReason"]

    later = utcnow() + timedelta(days=15)
    runtime.clock = lambda: later
    try:
        expired = await sweep_expired_copies(runtime)
        assert expired, "the internal copy expired"
        node = await deployment.wait_until(
            backup["id"],
            "... on Backup { status location availableForRestore unavailableReason }",
            lambda n: True,
        )
        assert node["location"] == "CUSTOMER_STORAGE"
        assert node["availableForRestore"] is True
        assert node["status"] == "COMPLETED"
    finally:
        runtime.clock = utcnow


async def _policy_backups(deployment: Deployment, policy_id: str) -> list[str]:
    policy_row_id = decode_id(policy_id, "BackupPolicy")

    async def started() -> list[str]:
        async with deployment.runtime.db.session() as session:
            statement = select(Backup.id).where(col(Backup.policy_id) == policy_row_id)
            rows = (await session.exec(statement)).all()
        return [to_global_id("Backup", r) for r in rows if r is not None]

    return await wait_for(started, within=60, what="the scheduler to start the policy's run")


async def test_backup_without_customer_copy_becomes_unavailable_after_retention(
    own_deployment: Deployment,
) -> None:
    deployment = own_deployment
    started = await run_backup(deployment, "initech_jira")
    backup = await deployment.wait_backup(started["backup"]["id"])
    assert backup["status"] == "COMPLETED"
    runtime = deployment.runtime
    later = utcnow() + timedelta(days=14, minutes=1)
    runtime.clock = lambda: later
    try:
        await sweep_expired_copies(runtime)
        node = await deployment.wait_until(
            backup["id"],
            "... on Backup { status location availableForRestore unavailableReason }",
            lambda n: True,
        )
    finally:
        runtime.clock = utcnow
    assert node["location"] is None
    assert node["availableForRestore"] is False
    assert node["status"] == "EXPIRED"
    assert "policy" in node["unavailableReason"] and "expired" in node["unavailableReason"]


async def test_invalid_policy_input_is_a_user_error(deployment: Deployment) -> None:
    instance_id = to_global_id("ProductInstance", deployment.demo.instances["acme_jira"])
    data = await deployment.gql(
        POLICY, {"input": {"instanceId": instance_id, "storage": "INTERNAL_AND_CUSTOMER"}}
    )
    errors = data["createBackupPolicy"]["errors"]
    assert errors[0]["code"] == "INVALID_INPUT"
    assert errors[0]["field"] == ["input", "customerBucket"]


async def test_failing_backup_is_retried_then_failed_with_a_user_facing_reason(
    deployment: Deployment, tmp_path: Path
) -> None:
    runtime = deployment.runtime
    instance_id = to_global_id("ProductInstance", deployment.demo.instances["acme_jira_sandbox"])
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("internal storage cannot live under a file")
    healthy = runtime.internal_store
    runtime.internal_store = LocalBlobStore(blocker / "storage")
    try:
        started = await run_backup(deployment, "acme_jira_sandbox")
        backup = await deployment.wait_until(
            started["backup"]["id"],
            "... on Backup { status failureReason attempts location }",
            lambda n: n["status"] not in ("QUEUED", "IN_PROGRESS"),
        )
    finally:
        runtime.internal_store = healthy
    assert backup["status"] == "FAILED"
    assert backup["attempts"] == runtime.settings.backup_max_attempts == 3
    assert "could not be completed after 3 attempts" in backup["failureReason"]
    assert re.search(r"error ID [0-9a-f]{12}", backup["failureReason"])
    assert str(tmp_path) not in backup["failureReason"]
    assert backup["location"] is None
    idle = await deployment.gql(
        "query($id: ID!) { node(id: $id) { ... on ProductInstance { operationInProgress } } }",
        {"id": instance_id},
    )
    assert idle["node"]["operationInProgress"] is False


async def test_customer_copy_failure_keeps_the_internal_copy_as_incomplete(
    own_deployment: Deployment,
    s3_endpoint: str,
    s3_bucket: str,
    s3_credentials: dict[str, str],
    s3_client: Any,
) -> None:
    deployment = own_deployment
    runtime = deployment.runtime
    instance_id = to_global_id("ProductInstance", deployment.demo.instances["initech_jira"])
    bucket = {
        "bucket": s3_bucket,
        "endpointUrl": s3_endpoint,
        "accessKeyId": s3_credentials["access_key_id"],
        "secretAccessKey": s3_credentials["secret_access_key"],
    }
    start_at = (utcnow() + timedelta(hours=1)).isoformat()
    data = await deployment.gql(
        POLICY,
        {
            "input": {
                "instanceId": instance_id,
                "storage": "INTERNAL_AND_CUSTOMER",
                "customerBucket": bucket,
                "startAt": start_at,
            }
        },
    )
    assert data["createBackupPolicy"]["errors"] == []
    s3_client.delete_bucket(Bucket=s3_bucket)  # the customer removes the bucket later
    later = utcnow() + timedelta(hours=2)
    runtime.clock = lambda: later
    try:
        await run_due_policies(runtime)  # (or the scheduler claims the run first)
    finally:
        runtime.clock = utcnow
    backup_ids = await _policy_backups(deployment, data["createBackupPolicy"]["policy"]["id"])
    assert len(backup_ids) == 1
    backup = await deployment.wait_until(
        backup_ids[0],
        "... on Backup { status failureReason location availableForRestore }",
        lambda n: n["status"] not in ("QUEUED", "IN_PROGRESS"),
    )
    assert backup["status"] == "INCOMPLETE"
    assert "the bucket no longer exists" in backup["failureReason"]
    assert "internal storage is kept" in backup["failureReason"]
    assert re.search(r"error ID [0-9a-f]{12}", backup["failureReason"])
    assert backup["location"] == "INTERNAL_STORAGE"
    assert backup["availableForRestore"] is True
