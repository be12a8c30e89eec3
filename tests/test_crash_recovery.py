"""Crash safety with real processes: a server killed with SIGKILL mid-job finishes the job
after a restart, exactly once.

The kill happens while the test holds what the job needs to move its row on (SQLite's write
lock, the row's lock on PostgreSQL), so the job is caught mid-way however fast it runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from recoverly.database import Database
from recoverly.demo import DemoInfo
from recoverly.models import (
    FINAL_RESTORE_STATUSES,
    Backup,
    BackupCopy,
    BackupStatus,
    ProductInstance,
    Restore,
    RestoreStatus,
)
from recoverly.products.archive_reader import ArchiveReader
from recoverly.products.digest import content_digest
from recoverly.resolvers.global_ids import decode_id, to_global_id
from recoverly.services.backups import new_backup, perform_backup
from recoverly.services.system import build_runtime
from recoverly.settings import async_database_url
from recoverly.storage import LocalBlobStore
from tests.clients import http_client
from tests.conftest import DEMO_TOKEN, TEMPLATES, make_settings
from tests.processes import ServerProcess, frozen
from tests.services.test_restore_selection import delete_issues, issues_of
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
# The demo at its smallest: the kill is made deterministic by the frozen row, not by size.
CRASH_SCALE = 1
# Small restore chunks: many checkpoints (dozens), so a kill between two of them is a resume.
SERVER_ENV = {"RECOVERLY_RESTORE_CHUNK_SIZE": "250"}


@dataclass
class CrashSite:
    data_dir: Path
    database_url: str
    db: Database
    demo: DemoInfo

    def server(self) -> ServerProcess:
        return ServerProcess(data_dir=self.data_dir, database_url=self.database_url, env=SERVER_ENV)

    async def gql(self, server: ServerProcess, query: str, variables: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
        async with http_client(server.url, headers=headers, timeout=30) as c:
            body = (await c.post("/graphql", json={"query": query, "variables": variables})).json()
        assert not body.get("errors"), body
        return body["data"]


@pytest.fixture
async def crash_site(backend: str, tmp_path: Path) -> AsyncIterator[CrashSite]:
    """A copy of the demo, without backups; a restore of it writes many checkpoints."""
    database_url, pg, demo = await TEMPLATES.clone(
        backend, tmp_path, scale=CRASH_SCALE, backups=False
    )
    db = Database(async_database_url(database_url))
    try:
        yield CrashSite(data_dir=tmp_path, database_url=database_url, db=db, demo=demo)
    finally:
        await db.dispose()
        if pg is not None:
            await pg.drop()


async def _backup_status(db: Database, instance_id: int) -> list[Backup]:
    async with db.session() as session:
        statement = select(Backup).where(col(Backup.instance_id) == instance_id)
        return list((await session.exec(statement)).all())


async def _kill_when(
    site: CrashSite, server: ServerProcess, model: Any, row_id: int, mid_way: Callable[..., bool]
) -> None:
    """SIGKILL ``server`` as soon as the row, read frozen, is ``mid_way``."""

    async def killed() -> bool:
        async with frozen(site.db, model, row_id) as row:
            if not mid_way(row):
                return False
            await server.kill()
            return True

    await wait_for(killed, within=120, what=f"{model.__name__} {row_id} to be mid-way")


async def test_backup_killed_mid_way_completes_once_after_restart(crash_site: CrashSite) -> None:
    instance_id = crash_site.demo.instances["acme_jira"]
    server = crash_site.server()
    await server.start()
    try:
        data = await crash_site.gql(
            server,
            "mutation($i: RunBackupInput!) { runBackup(input: $i) "
            "{ backup { id } errors { code } } }",
            {"i": {"instanceId": to_global_id("ProductInstance", instance_id)}},
        )
        assert data["runBackup"]["errors"] == []
        backup_id = decode_id(data["runBackup"]["backup"]["id"], "Backup")
        assert backup_id is not None
        work = crash_site.data_dir / "work"

        async def in_progress() -> bool:
            rows = await _backup_status(crash_site.db, instance_id)
            return any(b.status == BackupStatus.IN_PROGRESS for b in rows)

        await wait_for(in_progress, within=120, what="the backup to start")
        async with frozen(crash_site.db, Backup, backup_id) as row:
            assert row.status == BackupStatus.IN_PROGRESS
            # Its next progress write waits for the lock: the archive stays half-written.
            await wait_for(
                lambda: list(work.glob(f"backup-{backup_id}.zip*")),
                within=120,
                what="the export to write its archive",
            )
            await server.kill()
    finally:
        await server.stop()
    killed = await _backup_status(crash_site.db, instance_id)
    assert [b.status for b in killed] == [BackupStatus.IN_PROGRESS], "killed mid-way"

    restarted = crash_site.server()
    await restarted.start()
    try:

        async def finished() -> list[Backup] | None:
            rows = await _backup_status(crash_site.db, instance_id)
            done = all(
                b.status not in (BackupStatus.QUEUED, BackupStatus.IN_PROGRESS) for b in rows
            )
            return rows if done else None

        rows = await wait_for(finished, within=300, what="the backup to finish")
    finally:
        await restarted.stop()
    assert [b.status for b in rows] == [BackupStatus.COMPLETED]
    backup = rows[0]
    async with crash_site.db.session() as session:
        copies = (
            await session.exec(select(BackupCopy).where(col(BackupCopy.backup_id) == backup.id))
        ).all()
    assert len(copies) == 1
    store = LocalBlobStore(crash_site.data_dir / "storage")
    with ArchiveReader(store.path_for(copies[0].key), max_expansion_bytes=1 << 34) as reader:
        manifest = reader.verify()
    assert manifest.entity_counts == backup.entity_counts
    assert manifest.entity_counts["issues"] >= 2000 * CRASH_SCALE
    leftovers = list((crash_site.data_dir / "work").glob("*"))
    assert leftovers == [], "no half-written archive is left behind"


async def _make_backup(site: CrashSite, instance: str) -> int:
    """A backup made by the real backup code, before any server runs."""
    settings = make_settings(site.data_dir, site.database_url)
    runtime = build_runtime(settings, with_scheduler=False)
    try:
        async with runtime.db.transaction() as session:
            row = await session.get(ProductInstance, site.demo.instances[instance])
            assert row is not None
            backup = new_backup(
                runtime,
                row,
                policy=None,
                created_by_id=site.demo.admin_id,
                include_attachments=True,
                include_users_and_groups=True,
                include_personal_spaces=False,
            )
            session.add(backup)
        assert backup.id is not None
        await perform_backup(runtime, backup_id=backup.id)
        return backup.id
    finally:
        await runtime.db.dispose()


async def _restore(db: Database, restore_id: int) -> Restore:
    async with db.session() as session:
        row = await session.get(Restore, restore_id)
    assert row is not None
    return row


async def test_restore_killed_mid_way_resumes_to_an_identical_destination(
    crash_site: CrashSite,
) -> None:
    backup_id = await _make_backup(crash_site, "acme_jira")
    sandbox = crash_site.demo.instances["acme_jira_sandbox"]
    restore_id = await _start_restore_and_kill_mid_way(
        crash_site,
        {
            "backupId": to_global_id("Backup", backup_id),
            "destinationId": to_global_id("ProductInstance", sandbox),
        },
    )
    killed = await _restore(crash_site.db, restore_id)
    assert killed.status == RestoreStatus.IN_PROGRESS
    assert 0 < killed.items_done < killed.items_total, "killed mid-way"

    final = await _restart_until_final(crash_site, restore_id)
    assert final.status == RestoreStatus.COMPLETED, final.failure_reason
    restored = await content_digest(crash_site.db, sandbox)
    source = await content_digest(crash_site.db, crash_site.demo.instances["acme_jira"])
    assert restored["counts"] == source["counts"]
    assert restored["sha256"] == source["sha256"]


async def test_merge_killed_mid_way_resumes_to_the_same_site(crash_site: CrashSite) -> None:
    source = crash_site.demo.instances["acme_jira"]
    backup_id = await _make_backup(crash_site, "acme_jira")
    live = await content_digest(crash_site.db, source)
    gone = await delete_issues(crash_site.db, await issues_of(crash_site.db, source, "ENG"))
    restore_id = await _start_restore_and_kill_mid_way(
        crash_site,
        {
            "backupId": to_global_id("Backup", backup_id),
            "destinationId": to_global_id("ProductInstance", source),
            "selection": {"projectKeys": ["ENG"]},
            "conflictPolicy": "MERGE",
        },
    )
    killed = await _restore(crash_site.db, restore_id)
    assert 0 < killed.items_done < killed.items_total == sum(gone.values()), "killed mid-way"

    final = await _restart_until_final(crash_site, restore_id)
    assert final.status == RestoreStatus.COMPLETED, final.failure_reason
    assert final.items_done == final.items_total == sum(gone.values())
    # What an uninterrupted MERGE gives: exactly the deleted issues back, nothing else changed.
    assert await content_digest(crash_site.db, source) == live


async def _start_restore_and_kill_mid_way(crash_site: CrashSite, restore: dict[str, Any]) -> int:
    """``startRestore`` with ``restore`` as its input, then the server killed while the
    restore is writing; the restore's ID."""
    server = crash_site.server()
    await server.start()
    try:
        data = await crash_site.gql(
            server,
            """mutation($i: StartRestoreInput!) {
              startRestore(input: $i) { restore { id } errors { code message } } }""",
            {"i": restore},
        )
        assert data["startRestore"]["errors"] == []
        restore_id = decode_id(data["startRestore"]["restore"]["id"], "Restore")
        assert restore_id is not None

        def writing(row: Restore) -> bool:
            return row.status == RestoreStatus.IN_PROGRESS and 0 < row.items_done < row.items_total

        await _kill_when(crash_site, server, Restore, restore_id, writing)
    finally:
        await server.stop()
    return restore_id


async def _restart_until_final(crash_site: CrashSite, restore_id: int) -> Restore:
    """Start the server again and wait for the restore it resumes to end."""
    restarted = crash_site.server()
    await restarted.start()
    try:

        async def finished() -> Restore | None:
            row = await _restore(crash_site.db, restore_id)
            return row if row.status in FINAL_RESTORE_STATUSES else None

        return await wait_for(finished, within=300, what="the restore to finish")
    finally:
        await restarted.stop()
