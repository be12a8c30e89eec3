"""Demo backups, made by the real backup code at back-dated times (the clock is moved):
recent ones in internal storage, an older one left only in customer storage, an expired one.
Each is found again by its back-dated moment, so a seed killed half-way is completed.

The demo's customer storage is a local directory standing in for the customer's bucket.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import delete
from sqlmodel import col, select

from recoverly.demo.seed import DemoInfo
from recoverly.demo.sites import CONTRACTORS
from recoverly.models import (
    FINAL_BACKUP_STATUSES,
    Backup,
    BackupPolicy,
    GroupProductAccess,
    Organization,
    ProductInstance,
    Schedule,
    SiteGroup,
    StorageMode,
    utcnow,
)
from recoverly.services.backups import back_up_now, perform_backup
from recoverly.services.retention import sweep_expired_copies
from recoverly.services.runtime import Runtime

# (site, days ago, with a customer copy)
DEMO_BACKUPS = (
    ("acme_jira", 30, False),  # expired: no copy left
    ("acme_jira", 20, True),  # internal copy expired, customer copy remains
    ("acme_confluence", 3, False),
    ("acme_jira", 1, False),
)


def _fixed(moment: datetime) -> datetime:
    return moment


async def seed_demo_backups(runtime: Runtime, info: DemoInfo) -> int:
    """Make the demo backups that are missing and finish one a crash interrupted, so an
    interrupted seed is completed by the next start; returns how many were made."""
    async with runtime.db.session() as session:
        org = await session.get(Organization, info.organizations["acme"])
    assert org is not None
    made = 0
    try:
        for site, days_ago, customer in DEMO_BACKUPS:
            # Back-dated from when the demo data was seeded: the same moments on every start.
            moment = org.created_at - timedelta(days=days_ago)
            runtime.clock = partial(_fixed, moment)
            found = await _demo_backup(runtime, info.instances[site], moment)
            if found is None:
                await _backup(runtime, info, site=site, customer=customer)
            elif found.status in FINAL_BACKUP_STATUSES:
                continue
            else:
                assert found.id is not None
                await perform_backup(runtime, backup_id=found.id)
            made += 1
    finally:
        runtime.clock = utcnow
    await sweep_expired_copies(runtime)
    await _offboard_contractors(runtime, info)
    return made


async def _demo_backup(runtime: Runtime, instance_id: int, moment: datetime) -> Backup | None:
    window = timedelta(seconds=1)
    async with runtime.db.session() as session:
        statement = select(Backup).where(
            col(Backup.instance_id) == instance_id,
            col(Backup.created_at) >= moment - window,
            col(Backup.created_at) <= moment + window,
        )
        return (await session.exec(statement)).first()


async def _offboard_contractors(runtime: Runtime, info: DemoInfo) -> None:
    """The contractors left after the backups were made: their Jira access is revoked, so
    restoring a backup brings back access that would add billable users."""
    groups = select(SiteGroup.id).where(
        col(SiteGroup.instance_id) == info.instances["acme_jira"],
        col(SiteGroup.name) == CONTRACTORS,
    )
    async with runtime.db.transaction() as session:
        await session.exec(
            delete(GroupProductAccess).where(col(GroupProductAccess.group_id).in_(groups))
        )


async def _backup(runtime: Runtime, info: DemoInfo, *, site: str, customer: bool) -> None:
    policy = partial(_policy, runtime, admin_id=info.admin_id) if customer else None
    await back_up_now(
        runtime, instance_id=info.instances[site], admin_id=info.admin_id, policy=policy
    )


def _policy(runtime: Runtime, instance: ProductInstance, *, admin_id: int) -> BackupPolicy:
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
