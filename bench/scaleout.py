"""Scale-out: wall time of 4 concurrent restores (50,000 entities each) with 2 queue workers
against 1 worker, on PostgreSQL, with real ``recoverly worker`` processes.

A Jira site of N entities is generated and backed up once (internal storage); each round
adds 4 empty destinations, starts its workers (``RECOVERLY_JOB_CONCURRENCY`` jobs each),
enqueues the 4 restore jobs in one transaction and waits for all 4 to finish. Besides the
wall time, it reports where the CPU went: the workers' processes (Python: archive reading,
row building, the event loop) and PostgreSQL's server processes (inserts, index upkeep, WAL),
against what the machine's cores could give in that time.

Run: ``.venv/bin/python bench/scaleout.py --postgres postgresql://postgres@127.0.0.1:5432/postgres``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import print_table, ratio  # noqa: E402
from bench.generate import create_instance, generate_jira, temp_database  # noqa: E402
from recoverly.database import Database  # noqa: E402
from recoverly.jobs import JobDefinition  # noqa: E402
from recoverly.jobs.queue import QueueJobRunner  # noqa: E402
from recoverly.models import (  # noqa: E402
    FINAL_RESTORE_STATUSES,
    ProductInstance,
    Restore,
    RestoreStatus,
)
from recoverly.services.backups import new_backup, perform_backup  # noqa: E402
from recoverly.services.restores import RESTORE_JOB  # noqa: E402
from recoverly.services.system import build_runtime  # noqa: E402
from recoverly.settings import Settings  # noqa: E402
from tests.processes import WorkerProcess  # noqa: E402

RESTORES = 4


@dataclass
class Round:
    label: str
    workers: int
    concurrency: int
    wall: float = 0.0
    worker_cpu: float = 0.0
    postgres_cpu: float = 0.0
    restore_seconds: float = 0.0  # mean of each restore's own started -> finished
    entities: int = 0

    def row(self, cores: int) -> list[object]:
        busy = (self.worker_cpu + self.postgres_cpu) / (self.wall * cores)
        return [
            self.label,
            self.wall,
            self.entities / self.wall,
            self.restore_seconds,
            self.worker_cpu,
            self.postgres_cpu,
            f"{100 * busy:.0f}%",
        ]


@dataclass
class Site:
    data_dir: Path
    url: str  # plain postgresql:// URL for the worker processes
    db: Database
    organization_id: int
    backup_id: int


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL server process on this machine (all backends)."""
    total = 0.0
    for process in psutil.process_iter(["name", "cpu_times"]):
        if process.info["name"] in ("postgres", "postmaster") and process.info["cpu_times"]:
            times = process.info["cpu_times"]
            total += times.user + times.system
    return total


def process_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with_children = psutil.Process(pid)
        for process in (with_children, *with_children.children(recursive=True)):
            times = process.cpu_times()
            total += times.user + times.system
    return total


async def make_site(data_dir: Path, db: Database, url: str, entities: int) -> Site:
    generated = await generate_jira(db, entities=entities)
    print(f"generated {generated.total:,} entities in {generated.seconds:.1f} s", flush=True)
    runtime = build_runtime(Settings(data_dir=data_dir, database_url=url), with_scheduler=False)
    try:
        async with runtime.db.transaction() as session:
            instance = await session.get(ProductInstance, generated.instance_id)
            assert instance is not None
            backup = new_backup(
                runtime,
                instance,
                policy=None,
                created_by_id=None,
                include_attachments=True,
                include_users_and_groups=True,
                include_personal_spaces=False,
            )
            session.add(backup)
        assert backup.id is not None
        started = time.perf_counter()
        await perform_backup(runtime, backup_id=backup.id)
        print(f"backed up in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        await runtime.db.dispose()
    return Site(data_dir, url, db, generated.organization_id, backup.id)


async def enqueue_restores(site: Site, count: int) -> list[int]:
    """``count`` empty destinations, a QUEUED restore into each, and their jobs, at once."""
    destinations = [
        await create_instance(site.db, site.organization_id, name=f"Bench destination {i}")
        for i in range(count)
    ]
    runner = QueueJobRunner(site.db, dsn=site.url, work=False)
    runner.register(_placeholder(RESTORE_JOB))
    async with site.db.transaction() as session:
        restores = [
            Restore(
                organization_id=site.organization_id,
                backup_id=site.backup_id,
                destination_id=destination_id,
            )
            for destination_id in (d.id for d in destinations if d.id is not None)
        ]
        session.add_all(restores)
        await session.flush()
        for restore in restores:
            await runner.enqueue(RESTORE_JOB, {"restore_id": restore.id}, session=session)
    return [r.id for r in restores if r.id is not None]


def _placeholder(name: str) -> JobDefinition:
    async def never(*_: object) -> None:
        raise AssertionError("the bench process runs no job")

    return JobDefinition(name, never)


async def wait_final(db: Database, restore_ids: list[int]) -> list[Restore]:
    async with asyncio.timeout(1800):
        while True:
            async with db.session() as session:
                rows = [await session.get(Restore, rid) for rid in restore_ids]
            if all(r is not None and r.status in FINAL_RESTORE_STATUSES for r in rows):
                return [r for r in rows if r is not None]
            await asyncio.sleep(0.1)


async def run_round(site: Site, label: str, *, workers: int, concurrency: int) -> Round:
    env = {
        "RECOVERLY_JOB_RUNNER": "queue",
        "RECOVERLY_JOB_CONCURRENCY": str(concurrency),
        "RECOVERLY_JOB_POLL_SECONDS": "1",
    }
    processes = [
        WorkerProcess(data_dir=site.data_dir, database_url=site.url, log_name=f"w{i}", env=env)
        for i in range(workers)
    ]
    await asyncio.gather(*(p.start() for p in processes))
    result = Round(label, workers, concurrency)
    try:
        pids = [p.pid for p in processes]
        cpu_before, pg_before = process_cpu(pids), postgres_cpu()
        started = time.perf_counter()
        restore_ids = await enqueue_restores(site, RESTORES)
        rows = await wait_final(site.db, restore_ids)
        result.wall = time.perf_counter() - started
        result.worker_cpu = process_cpu(pids) - cpu_before
        result.postgres_cpu = postgres_cpu() - pg_before
    finally:
        await asyncio.gather(*(p.stop() for p in processes))
    failed = [r for r in rows if r.status != RestoreStatus.COMPLETED]
    if failed:
        raise RuntimeError(f"restores failed: {[(r.id, r.failure_reason) for r in failed]}")
    result.entities = sum(r.items_total for r in rows)
    spans = [
        (r.finished_at - r.started_at).total_seconds()
        for r in rows
        if r.started_at and r.finished_at
    ]
    result.restore_seconds = sum(spans) / len(spans)
    return result


async def main(args: argparse.Namespace) -> None:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="recoverly-bench-scaleout-") as tmp:
        work = Path(tmp)
        async with temp_database(work, postgres_url=args.postgres, name="scaleout") as db:
            url = db.url.replace("postgresql+asyncpg://", "postgresql://")
            site = await make_site(work, db, url, args.entities)
            configs = [("1 worker x 2 jobs", 1, 2), ("2 workers x 2 jobs", 2, 2)]
            if args.with_single_process_four:
                configs.append(("1 worker x 4 jobs", 1, 4))
            rounds: dict[str, list[Round]] = {label: [] for label, _, _ in configs}
            for _ in range(args.repeat):
                for label, workers, concurrency in configs:
                    done = await run_round(site, label, workers=workers, concurrency=concurrency)
                    print(f"{label}: {done.wall:.1f} s", flush=True)
                    rounds[label].append(done)
    best = {label: min(runs, key=lambda r: r.wall) for label, runs in rounds.items()}
    headers = ["", "wall s", "entities/s", "per restore s", "worker cpu s", "postgres cpu s",
               f"cores busy ({cores})"]  # fmt: skip
    print_table(
        f"{RESTORES} concurrent restores of {args.entities:,} entities each, PostgreSQL "
        f"(best of {args.repeat})",
        headers,
        [round_.row(cores) for round_ in best.values()],
    )
    one, two = best["1 worker x 2 jobs"], best["2 workers x 2 jobs"]
    print(f"\nwall time, 2 workers / 1 worker: {ratio(two.wall, one.wall)}")
    print(f"speed-up, 1 worker / 2 workers: {ratio(one.wall, two.wall)}")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", required=True, metavar="URL", help="PostgreSQL server")
    parser.add_argument("--entities", type=int, default=50_000, help="per restore (50,000)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of each set-up (2)")
    parser.add_argument(
        "--with-single-process-four",
        action="store_true",
        help="also 1 worker running 4 jobs at once (separates processes from concurrency)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
