"""Selective restore: MERGE of 1,000 missing issues into a live 40,000-issue project.

1. Generates (``generate.py``) a Jira site with ONE project of 40,000 issues (100,000
   entities: 55,000 comments, 50 attachments and a directory of about 5,000 rows; the demo at
   scale 20 has as many issues, over 10 projects) on SQLite, and exports it once.
2. Baseline, same run: the restore of that project (``selection: {projectKeys: [B0000]}``)
   into an empty Jira site: every row written.
3. 1,000 issues, spread over the project, are deleted from the live site with their
   comments and attachments.
4. The plan of a MERGE of the project into the live site (``plan_restore`` with the
   selection: the preview's totals), the preview with its diff (``plan_with_items``: what
   ``restorePreview`` computes, its diff checked), then the MERGE itself
   (``restore_archive``). After each MERGE the site's content digest must equal the
   original's (checked, not timed). For reference, reading every record of the archive
   alone (inflate, hash, decode: what any restore of it must do) is timed too.

Each of 2 and 4 is timed as the engine runs them in the restore job (no-op progress
callbacks). Printed: wall and CPU seconds, rows written, and each as a ratio to the
baseline. Usage: ``.venv/bin/python bench/selective_restore.py [--issues N] [--missing M]
[--repeat R] [--chunk-size C]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from common import Timing, code_version, print_table, ratio, timed
from generate import create_instance, generate_jira, temp_database
from restore_throughput import MAX_EXPANSION, _never, _progress, time_read_records
from sqlalchemy import delete, select

from recoverly.database import Database
from recoverly.models import (
    Backup,
    BackupStatus,
    ConflictPolicy,
    JiraAttachment,
    JiraComment,
    JiraIssue,
    ProductKey,
    Restore,
    RestoreStatus,
    table_of,
)
from recoverly.products.archive_reader import ArchiveReader
from recoverly.products.digest import content_digest
from recoverly.products.export import export_instance
from recoverly.products.restore_diff import ItemDiff, plan_with_items
from recoverly.products.restore_engine import RestoreOptions, plan_restore, restore_archive
from recoverly.products.selection import Selection
from recoverly.services.restore_job import RestoreRowStore
from recoverly.settings import Settings

PROJECT = "B0000"
ISSUES, COMMENTS, ATTACHMENTS = table_of(JiraIssue), table_of(JiraComment), table_of(JiraAttachment)


async def new_restore(
    db: Database, *, organization_id: int, backup_id: int, destination_id: int, selection: Selection
) -> int:
    async with db.transaction() as session:
        restore = Restore(
            organization_id=organization_id,
            backup_id=backup_id,
            destination_id=destination_id,
            status=RestoreStatus.IN_PROGRESS,
            selection=selection.to_json(),
            conflict_policy=selection.policy,
        )
        session.add(restore)
        await session.flush()
        assert restore.id is not None
        return restore.id


async def run_restore(db: Database, archive: Path, restore_id: int, *, chunk_size: int) -> Timing:
    """``restore_archive`` of the restore row's order, timed; items are the rows written."""
    store = RestoreRowStore(db, restore_id, on_progress=_progress, should_stop=_never)
    order = await store.order()
    with ArchiveReader(archive, max_expansion_bytes=MAX_EXPANSION) as reader, timed() as timing:
        result = await restore_archive(db, reader, order, store, chunk_size=chunk_size)
    timing.items = sum(result.entity_counts.values())
    return timing


async def run_plan(
    db: Database, archive: Path, destination_id: int, selection: Selection
) -> Timing:
    options = RestoreOptions(selection=selection)
    with ArchiveReader(archive, max_expansion_bytes=MAX_EXPANSION) as reader, timed() as timing:
        plan = await plan_restore(db, reader, destination_id=destination_id, options=options)
    timing.items = plan.items_total
    return timing


async def run_preview(
    db: Database, archive: Path, destination_id: int, selection: Selection
) -> tuple[Timing, ItemDiff | None]:
    """What ``restorePreview`` computes: the plan with its items and the item's diff."""
    options = RestoreOptions(selection=selection)
    with ArchiveReader(archive, max_expansion_bytes=MAX_EXPANSION) as reader, timed() as timing:
        plan, [item] = await plan_with_items(
            db, reader, destination_id=destination_id, options=options
        )
    timing.items = plan.items_total
    return timing, item.diff


async def delete_issues(db: Database, instance_id: int, *, missing: int) -> int:
    """Delete ``missing`` issues spread over the site, with their comments and attachments;
    return how many rows went."""
    async with db.session() as session:
        # By key, so that every run deletes the same issues (a MERGE gives them new IDs).
        statement = select(ISSUES.c.id).where(ISSUES.c.instance_id == instance_id)
        ids = list(
            (await (await session.connection()).execute(statement.order_by(ISSUES.c.key))).scalars()
        )
    step = max(1, len(ids) // missing)
    doomed = ids[::step][:missing]
    deleted = 0
    async with db.transaction() as session:
        conn = await session.connection()
        for table, column in ((ATTACHMENTS, "issue_id"), (COMMENTS, "issue_id"), (ISSUES, "id")):
            for start in range(0, len(doomed), 500):
                chunk = doomed[start : start + 500]
                deleted += (
                    await conn.execute(delete(table).where(table.c[column].in_(chunk)))
                ).rowcount
    return deleted


async def main(args: argparse.Namespace) -> None:
    entities = round(args.issues / 0.40)
    chunk_size = args.chunk_size or Settings().restore_chunk_size
    with tempfile.TemporaryDirectory(prefix="recoverly-bench-") as tmp:
        async with temp_database(Path(tmp)) as db:
            site = await generate_jira(db, entities=entities, projects=1)
            source = site.instance_id
            archive = Path(tmp) / "site.zip"
            async with db.session() as session:
                instance = await session.get(type(site.instance), source)
            assert instance is not None
            await export_instance(
                db, instance=instance, path=archive, include_attachments=True,
                include_users_and_groups=True, include_personal_spaces=False,
            )  # fmt: skip
            original = await content_digest(db, source)
            async with db.transaction() as session:
                backup = Backup(
                    organization_id=site.organization_id, instance_id=source,
                    product=ProductKey.JIRA, status=BackupStatus.COMPLETED,
                )  # fmt: skip
                session.add(backup)
                await session.flush()
                assert backup.id is not None
                backup_id = backup.id
            create = Selection(keys=frozenset({PROJECT}))
            merge = Selection(keys=frozenset({PROJECT}), policy=ConflictPolicy.MERGE)
            rows: list[list[Any]] = []
            for run in range(1, args.repeat + 1):
                empty = await create_instance(db, site.organization_id, name=f"Empty {run}")
                assert empty.id is not None
                restore_id = await new_restore(
                    db, organization_id=site.organization_id, backup_id=backup_id,
                    destination_id=empty.id, selection=create,
                )  # fmt: skip
                full = await run_restore(db, archive, restore_id, chunk_size=chunk_size)
                deleted = await delete_issues(db, source, missing=args.missing)
                plan = await run_plan(db, archive, source, merge)
                preview, diff = await run_preview(db, archive, source, merge)
                assert diff is not None and diff.only_in_backup == args.missing, diff
                restore_id = await new_restore(
                    db, organization_id=site.organization_id, backup_id=backup_id,
                    destination_id=source, selection=merge,
                )  # fmt: skip
                merged = await run_restore(db, archive, restore_id, chunk_size=chunk_size)
                assert plan.items == preview.items == merged.items == deleted, (
                    plan.items, preview.items, merged.items, deleted,
                )  # fmt: skip
                assert await content_digest(db, source) == original, "MERGE changed the site"
                reading = await asyncio.to_thread(time_read_records, archive)
                rows += [
                    [f"run {run}: full restore into an empty site", full.items, full.wall,
                     full.cpu, "1.00x", "1.00x"],
                    [f"run {run}: MERGE plan (preview totals)", plan.items, plan.wall, plan.cpu,
                     ratio(plan.wall, full.wall), ratio(plan.cpu, full.cpu)],
                    [f"run {run}: MERGE preview with its diff (restorePreview)", preview.items,
                     preview.wall, preview.cpu, ratio(preview.wall, full.wall),
                     ratio(preview.cpu, full.cpu)],
                    [f"run {run}: MERGE restore", merged.items, merged.wall, merged.cpu,
                     ratio(merged.wall, full.wall), ratio(merged.cpu, full.cpu)],
                    [f"run {run}: reading the archive alone", 0, reading.wall, reading.cpu,
                     ratio(reading.wall, full.wall), ratio(reading.cpu, full.cpu)],
                ]  # fmt: skip
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print_table(
        f"Selective restore: MERGE of {args.missing:,} missing issues into a live project of "
        f"{args.issues:,} issues ({entities:,} entities; SQLite, chunk size {chunk_size}; "
        f"load average {load}; {code_version()})",
        ["", "rows written", "wall s", "cpu s", "wall / full", "cpu / full"],
        rows,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issues", type=int, default=40_000)
    parser.add_argument("--missing", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=0)
    asyncio.run(main(parser.parse_args()))
