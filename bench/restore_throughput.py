"""Restore throughput: ``restore_archive`` against plain bulk inserts of the same rows.

1. Generates a Jira instance of N entities (default 200,000) on SQLite and exports it once.
2. Times ``restore_archive`` of that archive into an empty Jira instance of a fresh, migrated
   SQLite database (entities/s), with the ``Backup`` and ``Restore`` rows it needs and no-op
   progress and stop callbacks. ``reader.verify()`` (the job's validating phase) is timed
   apart and not counted.
3. Baseline, same run: the same rows (read from the archive's JSON Lines and converted to
   column values beforehand, not timed) inserted with the standard library's ``sqlite3``
   ``executemany`` in ONE transaction into another fresh database migrated the same way, with
   the same connection pragmas as the application (WAL, synchronous=NORMAL, foreign keys).
   Rows that others point at keep their archive id as primary key, so foreign keys need no
   mapping; the rest get new ids, as in a restore.
4. With ``--postgres URL``: the same restore into a temporary PostgreSQL database, against
   asyncpg ``copy_records_to_table`` of the same rows (one transaction) into another one.
   Both databases are created with unique names and dropped afterwards.
5. Peak RSS of the restore (SQLite) in child processes for N/4 and N entities (50,000 and
   200,000 by default): it should be flat, ratio about 1.

Usage: ``.venv/bin/python bench/restore_throughput.py [--entities N] [--postgres URL]
[--repeat R] [--profile] [--py-spy PATH] [--skip-rss]``.

- ``--repeat R``: timed runs (default 3), each restore followed by its baseline; the best of
  each is shown too.
- ``--profile``: one more SQLite restore under cProfile (event-loop thread only).
- ``--py-spy PATH``: one more SQLite restore in a child process sampled by py-spy (every
  thread, so SQLite's and the archive reader's threads too); prints the busiest frames.

Temporary files and databases are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import asyncpg
from common import (
    Timing,
    child_spec,
    code_version,
    comparison_rows,
    current_rss_mib,
    peak_rss_mib,
    print_rss_table,
    print_table,
    reset_peak_rss,
    run_child,
    timed,
)
from generate import (
    create_instance,
    create_organization,
    generate_jira,
    plain_sqlite_path,
    temp_database,
)
from sqlalchemy import func, select

from recoverly.database import Database
from recoverly.models import (
    Backup,
    BackupStatus,
    ProductInstance,
    ProductKey,
    Restore,
    RestoreStatus,
)
from recoverly.products.archive_reader import ArchiveReader
from recoverly.products.entities import EntitySpec, entities_for, referenced
from recoverly.products.export import export_instance
from recoverly.products.restore_engine import restore_archive
from recoverly.services.restore_job import RestoreRowStore
from recoverly.settings import Settings

SCRIPT = Path(__file__).resolve()
MAX_EXPANSION = Settings().archive_max_expansion_bytes


@dataclass
class Target:
    """An empty destination instance with the Backup and Restore rows a restore needs."""

    organization_id: int
    destination: ProductInstance
    backup_id: int
    restore_id: int

    @property
    def destination_id(self) -> int:
        assert self.destination.id is not None
        return self.destination.id


async def make_target(db: Database) -> Target:
    organization_id = await create_organization(db)
    source = await create_instance(db, organization_id, name="Bench source (backed up)")
    destination = await create_instance(db, organization_id, name="Bench destination")
    assert source.id is not None and destination.id is not None
    async with db.transaction() as session:
        backup = Backup(
            organization_id=organization_id,
            instance_id=source.id,
            product=ProductKey.JIRA,
            status=BackupStatus.COMPLETED,
        )
        session.add(backup)
        await session.flush()
        assert backup.id is not None
        restore = Restore(
            organization_id=organization_id,
            backup_id=backup.id,
            destination_id=destination.id,
            status=RestoreStatus.IN_PROGRESS,
        )
        session.add(restore)
        await session.flush()
        assert restore.id is not None
        return Target(organization_id, destination, backup.id, restore.id)


async def _progress(phase: str, done: int) -> None:
    return None


async def _never() -> bool:
    return False


async def run_restore(db: Database, archive: Path, target: Target, *, chunk_size: int) -> Timing:
    """``restore_archive`` timed; items are the rows it wrote."""
    store = RestoreRowStore(db, target.restore_id, on_progress=_progress, should_stop=_never)
    order = await store.order()
    with ArchiveReader(archive, max_expansion_bytes=MAX_EXPANSION) as reader, timed() as timing:
        result = await restore_archive(db, reader, order, store, chunk_size=chunk_size)
    timing.items = sum(result.entity_counts.values())
    return timing


async def time_verify(archive: Path) -> float:
    def verify() -> float:
        with ArchiveReader(archive, max_expansion_bytes=MAX_EXPANSION) as reader:
            with timed() as timing:
                reader.verify()
            return timing.wall

    return await asyncio.to_thread(verify)


def time_read_records(archive: Path) -> Timing:
    """Only reading the archive: every record of every member through ``iter_records``
    (inflate, SHA-256, split lines, JSON decode), nothing written: the share of a restore
    that the baseline does not have to do, since its rows were read beforehand."""
    with ArchiveReader(archive, max_expansion_bytes=MAX_EXPANSION) as reader, timed() as timing:
        for spec in entities_for(reader.manifest.product):
            if spec.member in reader.manifest.members:
                for _ in reader.iter_records(spec.member):
                    timing.items += 1
    return timing


async def count_rows(db: Database, instance_id: int) -> int:
    total = 0
    async with db.session() as session:
        conn = await session.connection()
        for table in {spec.target for spec in entities_for(ProductKey.JIRA.value)}:
            statement = select(func.count()).where(table.c.instance_id == instance_id)
            total += (await conn.execute(statement)).scalar_one()
    return total


# --- The baseline's rows ---------------------------------------------------------------


@dataclass
class TableRows:
    table: str
    columns: list[str]
    rows: list[tuple[Any, ...]]


def read_archive_rows(archive: Path, target: Target, *, dialect: Any | None) -> list[TableRows]:
    """Every row a restore writes, as column tuples ready for ``executemany`` or COPY.

    With a SQLAlchemy ``dialect`` (SQLite) values go through the columns' bind processors, so
    they are stored exactly as the application stores them; without (asyncpg COPY), values
    are the Python objects asyncpg expects (aware datetimes for ``timestamptz``).
    """
    specs = list(entities_for(ProductKey.JIRA.value))
    tracked = referenced(specs)
    tables: list[TableRows] = []
    with zipfile.ZipFile(archive) as zf:
        for spec in specs:
            tables.append(_table_rows(zf, spec, spec.name in tracked, target, dialect))
    return tables


def _table_rows(
    zf: zipfile.ZipFile, spec: EntitySpec, keep_id: bool, target: Target, dialect: Any | None
) -> TableRows:
    table = spec.target
    constants: dict[str, Any] = {
        "instance_id": target.destination_id,
        "restore_id": target.restore_id,
    }
    if "organization_id" in table.c:
        constants["organization_id"] = target.organization_id
    columns = [*(["id"] if keep_id else []), *spec.fields, *spec.references, *constants]
    if "source_id" in table.c:
        columns.append("source_id")
    if spec.blob_column:
        columns.append(spec.blob_column)
    # Columns the restore leaves to their Python-side defaults (access reviews' status, time).
    defaults = {
        column.name: column.default
        for column in table.c
        if column.name not in columns and column.default is not None
    }
    columns.extend(defaults)
    processors = []
    for name in columns:
        processor = None
        if dialect is not None:
            processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        processors.append(processor)
    rows = []
    with zf.open(spec.member) as member:
        for line in io.TextIOWrapper(member, encoding="utf-8"):
            record = json.loads(line)
            values: dict[str, Any] = {**constants, "source_id": record["id"]}
            for name in columns:
                if name in spec.datetime_fields and record.get(name) is not None:
                    values[name] = datetime.fromisoformat(record[name])
                elif name in record:
                    values[name] = record[name]
            if spec.blob_column:
                values[spec.blob_column] = zf.read(f"attachments/{record['sha256']}")
            for name, default in defaults.items():
                arg: Any = default.arg  # type: ignore[attr-defined]
                value = arg(None) if default.is_callable else arg
                values[name] = value.value if isinstance(value, Enum) else value
            row = [values[name] for name in columns]
            for i, processor in enumerate(processors):
                if processor is not None:
                    row[i] = processor(row[i])
            rows.append(tuple(row))
    return TableRows(table.name, columns, rows)


def sqlite_baseline(db_path: Path, tables: list[TableRows]) -> Timing:
    """``executemany`` of every row in one transaction, with the application's pragmas."""
    connection = sqlite3.connect(db_path, isolation_level=None)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            connection.execute(f"PRAGMA {pragma}")
        with timed() as timing:
            connection.execute("BEGIN IMMEDIATE")
            for t in tables:
                marks = ", ".join("?" for _ in t.columns)
                sql = f'INSERT INTO "{t.table}" ({", ".join(t.columns)}) VALUES ({marks})'
                connection.executemany(sql, t.rows)
            connection.execute("COMMIT")
    finally:
        connection.close()
    timing.items = sum(len(t.rows) for t in tables)
    return timing


async def postgres_baseline(url: str, tables: list[TableRows]) -> Timing:
    """asyncpg ``copy_records_to_table`` of every row in one transaction."""
    connection = await asyncpg.connect(url)
    try:
        with timed() as timing:
            async with connection.transaction():
                for t in tables:
                    await connection.copy_records_to_table(
                        t.table, records=t.rows, columns=t.columns
                    )
    finally:
        await connection.close()
    timing.items = sum(len(t.rows) for t in tables)
    return timing


def sqlalchemy_url_to_plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


# --- Runs ----------------------------------------------------------------------------


async def make_archive(work: Path, entities: int, name: str) -> tuple[Path, int]:
    """Generate a source instance of ``entities`` on SQLite and export it; the DB is removed."""
    archive = work / f"{name}.zip"
    async with temp_database(work, name=f"source-{name}") as db:
        site = await generate_jira(db, entities=entities)
        print(f"generated {site.total:,} entities in {site.seconds:.1f} s", flush=True)
        manifest = await export_instance(
            db,
            instance=site.instance,
            path=archive,
            include_attachments=True,
            include_users_and_groups=True,
            include_personal_spaces=False,
        )
    return archive, sum(manifest.entity_counts.values())


async def sqlite_round(
    work: Path, archive: Path, chunk_size: int, *, profile: bool = False
) -> tuple[Timing, Timing]:
    """The restore and the baseline, each into a fresh SQLite database."""
    async with temp_database(work, name="restore") as db:
        target = await make_target(db)
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        restored = await run_restore(db, archive, target, chunk_size=chunk_size)
        if profiler:
            profiler.disable()
            print_profile(profiler)
        stored = await count_rows(db, target.destination_id)
        assert stored == restored.items, (stored, restored)
    async with temp_database(work, name="baseline") as db:
        target = await make_target(db)
        tables = await asyncio.to_thread(
            read_archive_rows, archive, target, dialect=db.engine.dialect
        )
        path = plain_sqlite_path(db)
        await db.dispose()  # the baseline has the file to itself
        baseline = await asyncio.to_thread(sqlite_baseline, path, tables)
        del tables
        stored = await count_rows(db, target.destination_id)
        assert stored == baseline.items, (stored, baseline)
    return restored, baseline


async def postgres_round(
    work: Path, archive: Path, chunk_size: int, server_url: str
) -> tuple[Timing, Timing]:
    """The restore and the COPY baseline, each into a fresh PostgreSQL database."""
    async with temp_database(work, postgres_url=server_url, name="restore") as db:
        target = await make_target(db)
        restored = await run_restore(db, archive, target, chunk_size=chunk_size)
        assert await count_rows(db, target.destination_id) == restored.items
    async with temp_database(work, postgres_url=server_url, name="baseline") as db:
        target = await make_target(db)
        tables = await asyncio.to_thread(read_archive_rows, archive, target, dialect=None)
        baseline = await postgres_baseline(sqlalchemy_url_to_plain(db.url), tables)
        del tables
        assert await count_rows(db, target.destination_id) == baseline.items
    return restored, baseline


def print_profile(profiler: cProfile.Profile, top: int = 30) -> None:
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    print("\ncProfile of the SQLite restore (top by own time, then cumulative):")
    print(stream.getvalue())


# --- Sampling profile (py-spy, every thread) --------------------------------------------

PY_SPY_RATE = 200  # samples per second
# Leaf frames of threads that wait (py-spy counts them as active): queue gets, the selector.
WAITING = (
    "aiosqlite/core.py:59 ",
    "concurrent/futures/thread.py:81 ",
    "selectors.py:",
    "threading.py:",
    "queue.py:",
    "start_py_spy",
)


def start_py_spy(py_spy: str, out: Path) -> subprocess.Popen[bytes]:
    """Attach ``py-spy record`` to this process (all threads, raw collapsed stacks)."""
    command = [py_spy, "record", "--pid", str(os.getpid()), "--format", "raw", "--threads"]
    command += ["--rate", str(PY_SPY_RATE), "--nonblocking", "-o", str(out)]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # let it attach
    return spy


def stop_py_spy(spy: subprocess.Popen[bytes]) -> str:
    """Stop sampling (py-spy writes its file on SIGINT); return what it printed on stderr."""
    spy.send_signal(signal.SIGINT)
    try:
        _, errors = spy.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, errors = spy.communicate()
    return errors.decode(errors="replace")


def summarize_py_spy(path: Path, top: int = 22) -> None:
    """Where the samples went: per thread kind, per own frame, per inclusive project frame."""
    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = waiting = 0
    for line in path.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text:
            continue
        count = int(count_text)
        frames = stack_text.split(";")
        leaf = _short(frames[-1]) if len(frames) > 1 else "(no Python frame: in C or the GIL)"
        if any(marker in leaf for marker in WAITING):
            waiting += count
            continue
        total += count
        threads[_thread_kind(frames)] += count
        own[leaf] += count
        seen = set()
        for frame in frames[1:]:
            name = _short(frame, line_numbers=False)
            if ("recoverly/" in frame or "sqlalchemy/" in frame) and name not in seen:
                seen.add(name)
                inclusive[name] += count
    if not total:
        print("py-spy recorded no samples")
        return
    seconds = total / PY_SPY_RATE

    def pct(count: int) -> str:
        return f"{100 * count / total:.1f}%"

    print(
        f"\npy-spy: {total} busy samples ({seconds:.1f} s of thread time) during the restore, "
        f"{waiting} more of threads waiting (queue gets, epoll; left out)"
    )
    print_table("Samples by thread", ["thread", "share", "s"],
                [(k, pct(c), c / PY_SPY_RATE) for k, c in threads.most_common()])  # fmt: skip
    print_table("Own time (leaf frame)", ["frame", "share"],
                [(k, pct(c)) for k, c in own.most_common(top)])  # fmt: skip
    print_table("Inclusive time (recoverly and SQLAlchemy frames)", ["function", "share"],
                [(k, pct(c)) for k, c in inclusive.most_common(top)])  # fmt: skip


def _thread_kind(frames: list[str]) -> str:
    text = ";".join(frames)
    if "aiosqlite/core.py" in text:
        return "aiosqlite connection thread (SQLite work)"
    if "concurrent/futures/thread.py" in text:
        return "asyncio.to_thread workers"
    if "MainThread" in frames[0]:
        return "main thread (event loop)"
    return frames[0]


def _short(frame: str, *, line_numbers: bool = True) -> str:
    """``function (path/to/file.py:12)`` -> ``file.py:12 function`` (project-relative)."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    filename, _, line = where.rpartition(":")
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
    if not filename:
        return name
    return f"{filename}:{line} {name}" if line_numbers else f"{filename} {name}"


async def child(spec: dict[str, Any]) -> None:
    """In a child process: restore one archive into a fresh SQLite database, report memory."""
    work = Path(spec["work"])
    async with temp_database(work, name="child") as db:
        target = await make_target(db)
        setup_peak = peak_rss_mib()
        reset = reset_peak_rss()
        before = current_rss_mib()
        spy = None
        if spec.get("py_spy"):
            spy = start_py_spy(spec["py_spy"], Path(spec["py_spy_out"]))
        spy_errors = ""
        try:
            timing = await run_restore(
                db, Path(spec["archive"]), target, chunk_size=spec["chunk_size"]
            )
        finally:
            if spy is not None:
                spy_errors = await asyncio.to_thread(stop_py_spy, spy)
        peak = peak_rss_mib()
    result = {
        "entities": timing.items,
        "seconds": timing.wall,
        "setup_peak_mib": setup_peak,
        "peak_reset": reset,
        "rss_before_mib": before,
        "peak_mib": peak,
        "py_spy_errors": spy_errors[-2000:],
    }
    print(json.dumps(result))


async def main(args: argparse.Namespace) -> None:
    n = args.entities
    print(f"code: {code_version()}; chunk size {args.chunk_size}")
    with tempfile.TemporaryDirectory(prefix="recoverly-bench-restore-") as tmp:
        work = Path(tmp)
        archive, archived = await make_archive(work, n, "large")
        size_mib = archive.stat().st_size / 2**20
        print(f"archive: {archived:,} entities, {size_mib:.1f} MiB", flush=True)
        verify_seconds = await time_verify(archive)
        reading = await asyncio.to_thread(time_read_records, archive)

        headers = ["", "restore ent/s", "baseline ent/s", "restore/baseline", "restore s",
                   "baseline s", "restore cpu s", "baseline cpu s"]  # fmt: skip
        pairs = [await sqlite_round(work, archive, args.chunk_size) for _ in range(args.repeat)]
        print_table(
            f"Restore throughput on SQLite, {archived:,} entities, baseline sqlite3 executemany "
            f"(verify() before the restore, not counted: {verify_seconds:.2f} s)",
            headers,
            comparison_rows("SQLite", pairs),
        )
        print(
            f"reading alone (iter_records over every member, no writes): {reading.wall:.2f} s, "
            f"{reading.rate:,.0f} records/s"
        )
        if args.postgres:
            pairs = [
                await postgres_round(work, archive, args.chunk_size, args.postgres)
                for _ in range(args.repeat)
            ]
            print_table(
                f"Restore throughput on PostgreSQL, {archived:,} entities, "
                "baseline asyncpg copy_records_to_table (server CPU not in cpu s)",
                headers,
                comparison_rows("PostgreSQL", pairs),
            )

        if args.profile:
            await sqlite_round(work, archive, args.chunk_size, profile=True)
        if args.py_spy:
            out = work / "py-spy.txt"
            spec = {"archive": str(archive), "work": str(work), "chunk_size": args.chunk_size,
                    "py_spy": args.py_spy, "py_spy_out": str(out)}  # fmt: skip
            result = await asyncio.to_thread(run_child, SCRIPT, spec)
            print(f"\nrestore under py-spy: {result['entities'] / result['seconds']:,.0f} ent/s")
            if out.exists():
                summarize_py_spy(out)
            else:
                print(f"py-spy wrote nothing: {result.get('py_spy_errors', '')}")

        if not args.skip_rss:
            small_n = max(1000, n // 4)
            archives = {n: archive}
            if small_n != n:
                archives[small_n], _ = await make_archive(work, small_n, "small")
            results = {}
            for size, path in sorted(archives.items()):
                spec = {"archive": str(path), "work": str(work), "chunk_size": args.chunk_size}
                results[size] = await asyncio.to_thread(run_child, SCRIPT, spec)
            print_rss_table("Restore memory, SQLite (child processes, MiB)", results)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=200_000, help="default 200,000")
    parser.add_argument("--postgres", metavar="URL", help="also measure on this server")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (default 3)")
    parser.add_argument("--chunk-size", type=int, default=Settings().restore_chunk_size)
    parser.add_argument("--profile", action="store_true", help="cProfile the SQLite restore")
    parser.add_argument(
        "--py-spy", metavar="PATH", help="py-spy binary: sample the SQLite restore, all threads"
    )
    parser.add_argument("--skip-rss", action="store_true", help="skip the memory children")
    return parser.parse_args(argv)


if __name__ == "__main__":
    spec = child_spec(sys.argv)
    if spec is not None:
        asyncio.run(child(spec))
    else:
        asyncio.run(main(parse(sys.argv[1:])))
