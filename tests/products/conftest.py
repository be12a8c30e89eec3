"""A demo database seeded once per session, copied per test, plus its exported archives."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from recoverly.database import Database
from recoverly.demo import DemoInfo, seed_demo
from recoverly.models import Backup, ProductInstance, Restore
from recoverly.products.export import export_instance

LIMIT = 1024**3


@dataclass(frozen=True)
class Seeded:
    """The seeded template database file, the demo's ids and the archives exported from it."""

    path: Path
    info: DemoInfo
    jira_archive: Path
    confluence_archive: Path


@pytest.fixture(scope="session")
async def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    folder = tmp_path_factory.mktemp("seeded")
    db = Database(f"sqlite+aiosqlite:///{folder / 'template.db'}")
    await db.migrate()
    info = await seed_demo(db, demo_token="a", other_token="b")
    archives = {}
    for key in ("acme_jira", "acme_confluence"):
        archives[key] = folder / f"{key}.zip"
        await export(db, info.instances[key], archives[key])
    await db.dispose()  # checkpoints the WAL: the file alone is the database
    return Seeded(folder / "template.db", info, archives["acme_jira"], archives["acme_confluence"])


MakeDb = Callable[[], Awaitable[Database]]


@pytest.fixture
async def make_db(seeded: Seeded, tmp_path: Path) -> AsyncIterator[MakeDb]:
    """Fresh copies of the seeded database, disposed after the test."""
    opened: list[Database] = []

    async def make() -> Database:
        path = tmp_path / f"copy-{len(opened)}.db"
        shutil.copy(seeded.path, path)
        opened.append(Database(f"sqlite+aiosqlite:///{path}"))
        return opened[-1]

    yield make
    for db in opened:
        await db.dispose()


@pytest.fixture
async def db(make_db: MakeDb) -> Database:
    return await make_db()


async def export(db: Database, instance_id: int, path: Path, **options: Any) -> Any:
    flags = {
        "include_attachments": True,
        "include_users_and_groups": True,
        "include_personal_spaces": False,
    }
    flags.update(options)
    return await export_instance(db, instance=await instance(db, instance_id), path=path, **flags)


async def instance(db: Database, instance_id: int) -> ProductInstance:
    async with db.session() as session:
        found = await session.get(ProductInstance, instance_id)
    assert found is not None
    return found


async def new_restore(db: Database, info: DemoInfo, *, source: str, destination: str) -> int:
    """A Backup of ``source`` and a Restore of it into ``destination``; the Restore's id."""
    organization_id = info.organizations["acme"]
    source_instance = await instance(db, info.instances[source])
    async with db.transaction() as session:
        backup = Backup(
            organization_id=organization_id,
            instance_id=info.instances[source],
            product=source_instance.product,
        )
        session.add(backup)
        await session.flush()
        assert backup.id is not None
        restore = Restore(
            organization_id=organization_id,
            backup_id=backup.id,
            destination_id=info.instances[destination],
        )
        session.add(restore)
        await session.flush()
        assert restore.id is not None
        return restore.id


async def count(db: Database, model: Any, **where: Any) -> int:
    table = model.__table__
    statement = select(func.count()).select_from(table)
    for column, value in where.items():
        statement = statement.where(table.c[column] == value)
    async with db.session() as session:
        return int((await (await session.connection()).execute(statement)).scalar_one())
