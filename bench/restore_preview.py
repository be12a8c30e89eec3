"""What restorePreview's items (per-project counts and the diff) cost over the plan alone.

Seeds the demo at ``--scale`` (default 20: a Jira site of 40,000+ issues) into a temporary
SQLite database, exports Acme Jira into an archive, deletes ``--missing`` issues (default
1,000) of its largest project, then times, ``--repeat`` times each, in the same run:

- baseline: ``plan_restore`` of a MERGE of that project into the live site (what
  ``startRestore`` plans before it queues the restore);
- subject: what ``restorePreview`` computes for it, ``plan_with_items``: the same plan with
  ``by_container=True`` and an ``ItemsPreview`` observing its pass over the archive, then the
  diff of the project's issues, comments and attachments against the site's rows.

``--full-site`` times a full-site preview into the empty sandbox instead (every project an
item, none compared: the cost of attributing records to projects). It prints wall and CPU
seconds and the subject/baseline ratios, and checks the diff says ``--missing`` only in the
backup. Run: ``.venv/bin/python bench/restore_preview.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, func  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from bench.common import Timing, print_table, ratio, timed  # noqa: E402
from recoverly.database import Database  # noqa: E402
from recoverly.demo import seed_demo  # noqa: E402
from recoverly.models import (  # noqa: E402
    ConflictPolicy,
    JiraAttachment,
    JiraComment,
    JiraIssue,
    JiraProject,
    ProductInstance,
)
from recoverly.products.archive_reader import ArchiveReader  # noqa: E402
from recoverly.products.export import export_instance  # noqa: E402
from recoverly.products.restore_diff import plan_with_items  # noqa: E402
from recoverly.products.restore_plan import RestoreOptions, plan_restore  # noqa: E402
from recoverly.products.selection import Selection  # noqa: E402
from recoverly.settings import async_database_url  # noqa: E402


async def largest_project(db: Database, instance_id: int) -> tuple[str, list[int]]:
    async with db.session() as session:
        key = (
            await session.exec(
                select(JiraProject.key)
                .join(JiraIssue, col(JiraIssue.project_id) == JiraProject.id)
                .where(col(JiraProject.instance_id) == instance_id)
                .group_by(col(JiraProject.key))
                .order_by(func.count().desc())
            )
        ).first()
        assert key is not None
        issues = (
            await session.exec(
                select(JiraIssue.id)
                .join(JiraProject, col(JiraProject.id) == JiraIssue.project_id)
                .where(col(JiraProject.instance_id) == instance_id, col(JiraProject.key) == key)
                .order_by(col(JiraIssue.id))
            )
        ).all()
    return key, list(issues)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="recoverly-bench-preview-") as work:
        db = Database(async_database_url(f"sqlite:///{Path(work) / 'bench.db'}"))
        try:
            await run(db, Path(work), args)
        finally:
            await db.dispose()


async def run(db: Database, work: Path, args: argparse.Namespace) -> None:
    await db.migrate()
    with timed() as seeding:
        demo = await seed_demo(db, scale=args.scale)
    site_id = demo.instances["acme_jira"]
    async with db.session() as session:
        site = await session.get(ProductInstance, site_id)
    assert site is not None
    archive = work / "acme-jira.zip"
    with timed() as exporting:
        await export_instance(
            db,
            instance=site,
            path=archive,
            include_attachments=True,
            include_users_and_groups=True,
            include_personal_spaces=False,
        )
    key, issues = await largest_project(db, site_id)
    gone = issues[: args.missing]
    async with db.transaction() as session:
        for model in (JiraComment, JiraAttachment):
            await session.exec(delete(model).where(col(model.issue_id).in_(gone)))
        await session.exec(delete(JiraIssue).where(col(JiraIssue.id).in_(gone)))
    print(
        f"scale {args.scale}: seeded in {seeding.wall:.1f}s, exported in {exporting.wall:.1f}s;"
        f" project {key}: {len(issues)} issues, {len(gone)} deleted from the live site"
    )
    options = RestoreOptions(
        selection=Selection(keys=frozenset({key}), policy=ConflictPolicy.MERGE)
    )
    title = f"MERGE of {key}"
    if args.full_site:
        options, site_id = RestoreOptions(), demo.instances["acme_jira_sandbox"]
        title = "full site into the empty sandbox"
    rows: list[list[object]] = []
    best: list[Timing] = [Timing(wall=1e9, cpu=1e9), Timing(wall=1e9, cpu=1e9)]
    with ArchiveReader(archive, max_expansion_bytes=2**40) as reader:
        for attempt in range(1, args.repeat + 1):
            with timed() as plan_only:
                plan = await plan_restore(db, reader, destination_id=site_id, options=options)
            with timed() as previewing:
                full, [item, *_] = await plan_with_items(
                    db, reader, destination_id=site_id, options=options
                )
            assert full.entity_counts == plan.entity_counts
            if not args.full_site:
                assert item.diff is not None and item.diff.only_in_backup == len(gone), item.diff
            for index, timing in enumerate((plan_only, previewing)):
                best[index].wall = min(best[index].wall, timing.wall)
                best[index].cpu = min(best[index].cpu, timing.cpu)
            rows.append(_row(str(attempt), previewing, plan_only))
    rows.append(_row("best", best[1], best[0]))
    print(f"diff: {item.diff}; counts: {item.entity_counts}")
    print_table(
        f"restorePreview items vs plan_restore alone ({title}, load {_load()})",
        ["run", "preview s", "preview cpu s", "plan s", "plan cpu s", "wall ratio", "cpu ratio"],
        rows,
    )


def _row(label: str, subject: Timing, baseline: Timing) -> list[object]:
    return [
        label,
        f"{subject.wall:.2f}",
        f"{subject.cpu:.2f}",
        f"{baseline.wall:.2f}",
        f"{baseline.cpu:.2f}",
        ratio(subject.wall, baseline.wall),
        ratio(subject.cpu, baseline.cpu),
    ]


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=20)
    parser.add_argument("--missing", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--full-site", action="store_true", help="a full-site preview into the empty sandbox"
    )
    asyncio.run(main(parser.parse_args()))
