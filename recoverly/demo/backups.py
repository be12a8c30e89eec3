"""Demo backups, made by the real backup code at back-dated times (the clock is moved):
recent ones in internal storage, an older one left only in customer storage, an expired one.

The demo's customer storage is a local directory standing in for the customer's bucket.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, select

from recoverly.demo.seed import DemoInfo
from recoverly.models import Backup, BackupPolicy, ProductInstance, Schedule, StorageMode, utcnow
from recoverly.services.backups import new_backup, perform_backup
from recoverly.services.retention import sweep_expired_copies
from recoverly.services.runtime import Runtime

# (site, days ago, with a customer copy)
DEMO_BACKUPS = (
    ("acme_jira", 30, False),  # expired: no copy left
    ("acme_jira", 20, True),  # internal copy expired, customer copy remains
    ("acme_confluence", 3, False),
    ("acme_jira", 1, False),
)


async def seed_demo_backups(runtime: Runtime, info: DemoInfo) -> int:
    """Create the demo backups once; returns how many were created."""
    async with runtime.db.session() as session:
        existing = (
            await session.exec(
                select(Backup.id).where(col(Backup.organization_id) == info.organizations["acme"])
            )
        ).first()
    if existing is not None:
        return 0
    now = utcnow()
    try:
        for site, days_ago, customer in DEMO_BACKUPS:
            moment = now - timedelta(days=days_ago)
            runtime.clock = lambda moment=moment: moment  # type: ignore[misc]
            await _backup(runtime, info, site=site, customer=customer)
    finally:
        runtime.clock = utcnow
    await sweep_expired_copies(runtime)
    return len(DEMO_BACKUPS)


async def _backup(runtime: Runtime, info: DemoInfo, *, site: str, customer: bool) -> None:
    async with runtime.db.transaction() as session:
        instance = await session.get(ProductInstance, info.instances[site])
        assert instance is not None
        policy = _policy(runtime, instance, info.admin_id) if customer else None
        if policy is not None:
            session.add(policy)
            await session.flush()
        backup = new_backup(
            runtime,
            instance,
            policy=policy,
            created_by_id=info.admin_id,
            include_attachments=True,
            include_users_and_groups=True,
            include_personal_spaces=False,
        )
        session.add(backup)
    assert backup.id is not None
    await perform_backup(runtime, backup_id=backup.id)


def _policy(runtime: Runtime, instance: ProductInstance, admin_id: int) -> BackupPolicy:
    assert instance.id is not None
    bucket_root = runtime.settings.data_dir / "customer-bucket"
    now: datetime = runtime.now()
    return BackupPolicy(
        organization_id=instance.organization_id,
        instance_id=instance.id,
        name=f"Weekly backup of {instance.name} to Acme's bucket (inactive)",
        schedule=Schedule.WEEKLY,
        storage=StorageMode.INTERNAL_AND_CUSTOMER,
        customer_bucket={"kind": "local", "root": str(bucket_root), "bucket": "acme-backups"},
        active=False,
        last_run_at=now,
        created_by_id=admin_id,
        created_at=now,
    )
