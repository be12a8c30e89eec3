"""Customer credentials at rest: sealed with AES-GCM under key IDs, never in plain text in
the database or the log, older plain values sealed at start-up, keys rotated by the CLI."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from recoverly.models import BackupPolicy, Organization, ProductInstance, ProductKey
from recoverly.resolvers.global_ids import decode_id, to_global_id
from recoverly.services.secrets import (
    SEALED_BUCKET_SECRET,
    SecretBox,
    SecretError,
    new_key_line,
    open_bucket,
    parse_keys,
)
from recoverly.services.system import build_runtime, reseal_secrets
from recoverly.settings import Settings
from tests.conftest import Deployment
from tests.services.test_backups import POLICY, _policy_backups


async def database_text(deployment: Deployment) -> str:
    """Everything the database holds, as text: the SQLite files, or every PostgreSQL row."""
    db = deployment.runtime.db
    url = deployment.runtime.settings.resolved_database_url()
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        files = [p for p in (path, Path(f"{path}-wal")) if p.exists()]
        return "".join(p.read_bytes().decode("latin-1") for p in files)
    async with db.session() as session:
        tables = (
            (
                await session.exec(  # type: ignore[call-overload]
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            )
            .scalars()
            .all()
        )
        rows = []
        for table in tables:
            result = await session.exec(text(f'SELECT t::text FROM "{table}" t'))  # type: ignore[call-overload]
            rows.extend(result.scalars().all())
    return "\n".join(rows)


async def test_no_plain_secret_in_the_database_after_a_backup(
    own_deployment: Deployment,
    s3_endpoint: str,
    s3_bucket: str,
    s3_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    deployment = own_deployment
    secret = f"customer-secret-{uuid.uuid4().hex}"
    bucket = {
        "bucket": s3_bucket,
        "endpointUrl": s3_endpoint,
        "accessKeyId": "customer-key",
        "secretAccessKey": secret,
    }
    instance_id = to_global_id("ProductInstance", deployment.demo.instances["initech_jira"])
    variables = {
        "input": {
            "instanceId": instance_id,
            "storage": "INTERNAL_AND_CUSTOMER",
            "customerBucket": bucket,
        }
    }
    with caplog.at_level(logging.DEBUG):
        data = await deployment.gql(POLICY, variables)
        assert data["createBackupPolicy"]["errors"] == []
        policy_id = data["createBackupPolicy"]["policy"]["id"]
        backup = await deployment.wait_backup((await _policy_backups(deployment, policy_id))[0])
    assert backup["status"] == "COMPLETED", backup["failureReason"]
    assert s3_client.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 1
    assert secret not in await database_text(deployment)
    assert not [r for r in caplog.records if secret in r.getMessage()]
    async with deployment.runtime.db.session() as session:
        row = await session.get(BackupPolicy, decode_id(policy_id, "BackupPolicy"))
    assert row is not None and row.customer_bucket is not None
    assert row.customer_bucket[SEALED_BUCKET_SECRET].startswith("enc:v1:")
    opened = open_bucket(deployment.runtime.secrets, row.customer_bucket)
    assert opened["secret_access_key"] == secret


async def test_plain_secrets_left_by_older_versions_are_sealed(own_deployment: Deployment) -> None:
    runtime = own_deployment.runtime
    secret = f"old-plain-{uuid.uuid4().hex}"
    plain = {"bucket": "old-bucket", "access_key_id": "k", "secret_access_key": secret}
    async with runtime.db.transaction() as session:
        policy = BackupPolicy(
            organization_id=own_deployment.demo.organizations["initech"],
            instance_id=own_deployment.demo.instances["initech_jira"],
            name="from an older version",
            customer_bucket=plain,
            active=False,
        )
        session.add(policy)
    assert await reseal_secrets(runtime, rotate=False) >= 1
    assert await reseal_secrets(runtime, rotate=False) == 0
    async with runtime.db.session() as session:
        row = (
            await session.exec(select(BackupPolicy).where(col(BackupPolicy.id) == policy.id))
        ).one()
    assert row.customer_bucket is not None and "secret_access_key" not in row.customer_bucket
    assert open_bucket(runtime.secrets, row.customer_bucket)["secret_access_key"] == secret
    assert secret not in await database_text(own_deployment)


def test_sealed_values_are_authenticated_and_bound_to_their_purpose() -> None:
    box = SecretBox(parse_keys(new_key_line("k1")))
    token = box.seal("s3cret", purpose="customer_bucket")
    assert "s3cret" not in token and box.open(token, purpose="customer_bucket") == "s3cret"
    with pytest.raises(SecretError):
        box.open(token, purpose="something else")
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(SecretError):
        box.open(tampered, purpose="customer_bucket")
    with pytest.raises(SecretError):
        SecretBox(parse_keys(new_key_line("k2"))).open(token, purpose="customer_bucket")
    with pytest.raises(SecretError):
        parse_keys("k1:not-base64")


async def test_the_cli_rotates_keys(tmp_path: Path) -> None:
    old, new = new_key_line("k1"), new_key_line("k2")
    url = f"sqlite:///{tmp_path / 'rotate.db'}"
    runtime = build_runtime(Settings(data_dir=tmp_path, database_url=url, secret_keys=old))
    await runtime.db.migrate()
    async with runtime.db.transaction() as session:
        org = Organization(name="Rotate", slug="rotate")
        session.add(org)
        await session.flush()
        assert org.id is not None
        site = ProductInstance(
            organization_id=org.id, product=ProductKey.JIRA, name="Jira", url="https://j.example"
        )
        session.add(site)
        await session.flush()
        org_id, instance_id = org.id, site.id
        assert instance_id is not None
        session.add(
            BackupPolicy(
                organization_id=org_id,
                instance_id=instance_id,
                name="rotated",
                customer_bucket={
                    "bucket": "b",
                    SEALED_BUCKET_SECRET: runtime.secrets.seal("rot", purpose="customer_bucket"),
                },
            )
        )
    await runtime.db.dispose()
    env = {**os.environ, "RECOVERLY_DATABASE_URL": url, "RECOVERLY_DATA_DIR": str(tmp_path)}
    env["RECOVERLY_SECRET_KEYS"] = f"{new},{old}"
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "recoverly.cli", "secrets", "reencrypt"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "re-sealed 1" in result.stdout
    only_new = build_runtime(Settings(data_dir=tmp_path, database_url=url, secret_keys=new))
    async with only_new.db.session() as session:
        row = (await session.exec(select(BackupPolicy))).one()
    await only_new.db.dispose()
    assert open_bucket(only_new.secrets, row.customer_bucket or {})["secret_access_key"] == "rot"
    with pytest.raises(SecretError):
        open_bucket(runtime.secrets, row.customer_bucket or {})
