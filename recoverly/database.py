"""The async engine, sessions and schema migrations, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.observability import tracing
from recoverly.observability.metrics import PoolStats
from recoverly.sqlite_driver import OneTripDBAPI

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "models" / "migrations"
READ_ONLY = "recoverly_read_only"  # execution option of read sessions' connections


class Database:
    """One engine and its session factories; sessions never expire objects on commit.

    ``session()`` is for reading: on SQLite it begins no transaction, so each statement
    reads a WAL snapshot of its own and never waits for the write lock (nor makes writers
    wait).
    ``transaction()`` is for writing: it begins IMMEDIATE, taking the write lock up front.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # Statement parameters hold customer data: never in an error message or a log line.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            _ensure_sqlite_dir(url)
            kwargs["connect_args"] = {"timeout": 30}
            # Sessions end their transactions themselves; a second rollback when a
            # connection goes back to the pool would only cost a round trip to its thread.
            kwargs["pool_reset_on_return"] = None
            kwargs["module"] = OneTripDBAPI()
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        tracing.instrument_engine(self.engine)
        self.read_sessions = async_sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}),
            class_=AsyncSession,
            expire_on_commit=False,
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only (it never commits)."""
        async with self.read_sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on success and rolls back on any exception."""
        async with self.sessions() as session, session.begin():
            yield session

    async def migrate(self) -> None:
        """Bring the schema up to date (Alembic ``upgrade head``). A database already at head
        is left as it is without loading Alembic (its import and a no-op upgrade)."""
        try:
            if await self.schema_revision() == head_revision():
                return
        except SQLAlchemyError:  # no schema yet, or no database: Alembic says which
            pass
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade)

    async def scrub(self, tables: list[str]) -> None:
        """Make overwritten values of ``tables`` unrecoverable from the database files: on
        SQLite (deleted cells are zeroed, see ``secure_delete``) fold the WAL into the file
        and truncate it; on PostgreSQL rewrite the tables (``VACUUM FULL``)."""
        async with self.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            if self.is_sqlite:
                await autocommit.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                return
            for table in tables:
                await autocommit.exec_driver_sql(f'VACUUM FULL "{table}"')

    async def dispose(self) -> None:
        await self.engine.dispose()

    async def schema_revision(self) -> str | None:
        """The migration the database is at (one query: it also proves the database answers)."""
        async with self.engine.connect() as connection:
            result = await connection.execute(text("SELECT version_num FROM alembic_version"))
            row = result.first()
        return None if row is None else str(row[0])

    def pool_stats(self) -> PoolStats | None:
        """The connection pool's use, for metrics (None for pools that do not count)."""
        pool: Any = self.engine.pool
        try:
            size, in_use, idle = pool.size(), pool.checkedout(), pool.checkedin()
        except AttributeError:
            return None
        return PoolStats(size=size, in_use=in_use, idle=idle, overflow=max(pool.overflow(), 0))


_REVISION = re.compile(r"^(down_revision|revision)\s*=\s*(?:\"([^\"]*)\"|None)", re.MULTILINE)


@cache
def head_revision() -> str:
    """The newest migration this code knows: the revision no other migration follows, read
    from the migration files (what Alembic's ``get_current_head`` finds, a test checks,
    without loading Alembic)."""
    revisions: set[str] = set()
    followed: set[str] = set()  # "" for the first migration's ``down_revision = None``
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        values: dict[str, str] = dict(_REVISION.findall(path.read_text()))
        revisions.add(values["revision"])
        followed.add(values.get("down_revision", ""))
    heads = revisions - followed
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _upgrade(connection: Connection) -> None:
    from alembic import command

    config = _alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, a busy timeout, foreign keys; BEGIN IMMEDIATE for writes, none for reads.

    Immediate transactions take the write lock up front, so two writers wait for each
    other (busy timeout) instead of failing when a read lock cannot be upgraded. Read
    sessions run in autocommit: each statement reads a WAL snapshot while a writer works.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA secure_delete=FAST")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if not options.get(READ_ONLY, False) and options.get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
