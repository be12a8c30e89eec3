"""Generate a Jira instance of N entities, fast, for the benchmarks (shared helper).

``generate_jira(db, entities=N)`` writes one organization, one Jira instance and exactly N
entity rows (users, groups, memberships, product access, projects, issues, comments,
attachments) with SQLAlchemy Core bulk inserts (``recoverly.demo.bulk``) in one transaction.
Issues are about 40% of N and comments about 55%; the directory takes most of the rest
(users and groups stay small), plus a few projects and up to 100 small attachments.

``temp_database(workdir, postgres_url=None)`` yields a fresh, migrated ``Database``: a SQLite
file under ``workdir``, or a uniquely named PostgreSQL database that is dropped afterwards.

Run on its own to try it: ``.venv/bin/python bench/generate.py --entities 20000``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncConnection  # noqa: E402

from recoverly.database import Database  # noqa: E402
from recoverly.demo import content  # noqa: E402
from recoverly.demo.bulk import BLOB_BATCH_SIZE, BatchWriter, insert_rows  # noqa: E402
from recoverly.models import (  # noqa: E402
    GroupMembership,
    GroupProductAccess,
    JiraAttachment,
    JiraComment,
    JiraIssue,
    JiraProject,
    Organization,
    ProductInstance,
    ProductKey,
    SiteGroup,
    SiteUser,
    utcnow,
)
from recoverly.settings import async_database_url  # noqa: E402

GROUP_NAMES = ("jira-software-users", "jira-admins", "developers", "qa", "support", "site-admins")
GROUPS_WITH_ACCESS = 4  # the first four groups grant Jira access
MAX_ATTACHMENTS = 100
COMMENT_BATCH = 5000


@dataclass
class GeneratedSite:
    """A generated instance: its organization, the instance row and its rows per entity."""

    organization_id: int
    instance: ProductInstance
    counts: dict[str, int] = field(default_factory=dict)  # by entities.py entity name
    seconds: float = 0.0

    @property
    def instance_id(self) -> int:
        assert self.instance.id is not None
        return self.instance.id

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def plan_counts(entities: int, *, projects: int | None = None) -> dict[str, int]:
    """How many rows of each entity make exactly ``entities`` in total (``projects``: one
    per 10,000 entities unless given)."""
    if entities < 100:
        raise ValueError("generate at least 100 entities")
    groups, access = len(GROUP_NAMES), GROUPS_WITH_ACCESS
    attachments = max(1, min(MAX_ATTACHMENTS, entities // 2000))
    projects = projects or max(1, entities // 10_000)
    issues = round(entities * 0.40)
    comments = round(entities * 0.55)
    rest = entities - (groups + access + attachments + projects + issues + comments)
    users = max(1, rest // 3)
    memberships = rest - users
    assert 0 <= memberships <= groups * users, (users, memberships)
    return {
        "users": users,
        "groups": groups,
        "group_memberships": memberships,
        "group_product_access": access,
        "projects": projects,
        "issues": issues,
        "comments": comments,
        "attachments": attachments,
    }


async def create_organization(db: Database, name: str = "Bench") -> int:
    """A new organization with a unique slug."""
    slug = f"bench-{uuid.uuid4().hex[:12]}"
    async with db.engine.begin() as conn:
        row = {"name": name, "slug": slug, "created_at": utcnow()}
        return (await insert_rows(conn, Organization, [row], returning=True))[0]


async def create_instance(
    db: Database, organization_id: int, *, name: str, product: ProductKey = ProductKey.JIRA
) -> ProductInstance:
    """A new, empty product instance with a unique URL."""
    instance = ProductInstance(
        organization_id=organization_id,
        product=product,
        name=name,
        url=f"https://bench-{uuid.uuid4().hex[:12]}.example.net",
        created_at=utcnow(),
    )
    row = instance.model_dump(exclude={"id"})
    row["product"] = product.value
    async with db.engine.begin() as conn:
        (instance.id,) = await insert_rows(conn, ProductInstance, [row], returning=True)
    return instance


async def generate_jira(
    db: Database,
    *,
    entities: int,
    organization_id: int | None = None,
    seed: str = "recoverly-bench",
    projects: int | None = None,
) -> GeneratedSite:
    """A new Jira instance holding exactly ``entities`` entity rows."""
    started = time.perf_counter()
    counts = plan_counts(entities, projects=projects)
    if organization_id is None:
        organization_id = await create_organization(db)
    instance = await create_instance(db, organization_id, name=f"Bench Jira ({entities})")
    assert instance.id is not None
    rng = random.Random(seed)
    async with db.engine.begin() as conn:
        accounts = await _directory(conn, rng, instance.id, counts)
        await _jira(conn, rng, instance.id, counts, accounts)
    if db.is_sqlite:
        await db.dispose()  # closing the last connection checkpoints and removes the WAL
    return GeneratedSite(organization_id, instance, counts, time.perf_counter() - started)


async def _directory(
    conn: AsyncConnection, rng: random.Random, iid: int, counts: dict[str, int]
) -> list[str]:
    people = content.make_people(rng, counts["users"], "bench.example")
    users = [
        {
            "instance_id": iid,
            "account_id": p.account_id,
            "display_name": p.display_name,
            "email": p.email,
            "active": p.active,
        }
        for p in people
    ]
    user_ids = await insert_rows(conn, SiteUser, users, returning=True)
    groups = [{"instance_id": iid, "name": name} for name in GROUP_NAMES[: counts["groups"]]]
    group_ids = await insert_rows(conn, SiteGroup, groups, returning=True)
    # Membership k: group k % G, user k // G (unique pairs, every group gets members).
    memberships = [
        {
            "instance_id": iid,
            "group_id": group_ids[k % len(group_ids)],
            "user_id": user_ids[k // len(group_ids)],
        }
        for k in range(counts["group_memberships"])
    ]
    await insert_rows(conn, GroupMembership, memberships)
    access = [
        {"instance_id": iid, "group_id": group_id, "product": ProductKey.JIRA.value}
        for group_id in group_ids[: counts["group_product_access"]]
    ]
    await insert_rows(conn, GroupProductAccess, access)
    return [p.account_id for p in people]


async def _jira(
    conn: AsyncConnection,
    rng: random.Random,
    iid: int,
    counts: dict[str, int],
    accounts: list[str],
) -> None:
    projects = [
        {
            "instance_id": iid,
            "key": f"B{n:04d}",
            "name": f"Bench project {n}",
            "description": f"Work tracked by bench team {n}.",
            "lead_account_id": rng.choice(accounts),
        }
        for n in range(counts["projects"])
    ]
    project_ids = await insert_rows(conn, JiraProject, projects, returning=True)
    numbers = [0] * len(project_ids)
    issues: list[dict[str, Any]] = []
    times = sorted(content.content_time(rng) for _ in range(counts["issues"]))
    for created_at in times:
        p = rng.randrange(len(project_ids))
        numbers[p] += 1
        issue_type = rng.choices(content.ISSUE_TYPES, content.ISSUE_TYPE_WEIGHTS)[0]
        issues.append(
            {
                "instance_id": iid,
                "project_id": project_ids[p],
                "key": f"{projects[p]['key']}-{numbers[p]}",
                "summary": content.issue_summary(rng),
                "description": content.issue_description(rng, issue_type),
                "status": rng.choices(content.STATUSES, content.STATUS_WEIGHTS)[0],
                "issue_type": issue_type,
                "reporter_account_id": rng.choice(accounts),
                "assignee_account_id": rng.choice(accounts) if rng.random() < 0.8 else None,
                "created_at": created_at,
            }
        )
    issue_ids = await insert_rows(conn, JiraIssue, issues, returning=True)
    del issues
    comments = BatchWriter(conn, JiraComment, COMMENT_BATCH)
    total = counts["comments"]
    for n in range(total):
        i = n * len(issue_ids) // total  # comments follow their issues, spread evenly
        await comments.add(
            {
                "instance_id": iid,
                "issue_id": issue_ids[i],
                "author_account_id": rng.choice(accounts),
                "body": content.comment_body(rng),
                "created_at": times[i] + timedelta(hours=rng.randrange(1, 200)),
            }
        )
    await comments.flush()
    attachments = BatchWriter(conn, JiraAttachment, BLOB_BATCH_SIZE)
    for number in range(1, counts["attachments"] + 1):
        blob = content.attachment(rng, number)
        await attachments.add(
            {
                "instance_id": iid,
                "issue_id": rng.choice(issue_ids),
                "filename": blob.filename,
                "media_type": blob.media_type,
                "size": len(blob.content),
                "sha256": blob.sha256,
                "content": blob.content,
            }
        )
    await attachments.flush()


# --- Databases -----------------------------------------------------------------------


@asynccontextmanager
async def temp_database(
    workdir: Path, *, postgres_url: str | None = None, name: str = "bench"
) -> AsyncIterator[Database]:
    """A fresh migrated database: SQLite under ``workdir`` or a temporary PostgreSQL one."""
    if postgres_url is None:
        path = workdir / f"{name}-{uuid.uuid4().hex[:8]}.db"
        db = Database(async_database_url(f"sqlite:///{path}"))
        try:
            await db.migrate()
            yield db
        finally:
            await db.dispose()
            remove_sqlite(path)
        return
    async with temp_postgres(postgres_url, name=name) as url:
        db = Database(async_database_url(url))
        try:
            await db.migrate()
            yield db
        finally:
            await db.dispose()


@asynccontextmanager
async def temp_postgres(server_url: str, *, name: str = "bench") -> AsyncIterator[str]:
    """Create a uniquely named database on the server of ``server_url``; drop it afterwards."""
    plain = server_url.replace("postgresql+asyncpg://", "postgresql://")
    base = plain.split("?", 1)[0].rsplit("/", 1)[0]
    database = f"recoverly_bench_{name}_{uuid.uuid4().hex[:10]}"
    await _admin(plain, f'CREATE DATABASE "{database}"')
    try:
        yield f"{base}/{database}"
    finally:
        await _admin(plain, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def remove_sqlite(path: Path) -> None:
    """Delete a SQLite database file with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def plain_sqlite_path(db: Database) -> Path:
    """The file behind a SQLite ``Database`` (for the standard library's ``sqlite3``)."""
    return Path(db.url.split(":///", 1)[1].split("?", 1)[0])


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=200_000)
    parser.add_argument("--postgres", metavar="URL", help="generate on PostgreSQL instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recoverly-bench-") as tmp:
        async with temp_database(Path(tmp), postgres_url=args.postgres) as db:
            site = await generate_jira(db, entities=args.entities)
            rate = site.total / site.seconds
            print(f"generated {site.total} entities in {site.seconds:.2f} s ({rate:,.0f}/s)")
            for name, count in site.counts.items():
                print(f"  {name:22} {count:>9}")


if __name__ == "__main__":
    asyncio.run(_main())
