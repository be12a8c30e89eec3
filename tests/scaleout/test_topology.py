"""Scale-out with real processes: 2 API replicas and 2 queue workers on one PostgreSQL.

A restore started through API 1 is followed to COMPLETED by a websocket subscriber on API 2;
a restore whose worker is killed with SIGKILL mid-way is finished by the other worker, with
a destination identical to an uninterrupted restore; and one operation per destination holds
across replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import select

from recoverly.database import Database
from recoverly.demo import DemoInfo
from recoverly.models import FINAL_RESTORE_STATUSES, ProductInstance, ProductKey, Restore
from recoverly.products.digest import content_digest
from recoverly.resolvers.global_ids import decode_id, to_global_id
from recoverly.services.backups import back_up_now
from recoverly.services.restores import RESTORE_JOB
from recoverly.services.system import build_runtime
from recoverly.settings import async_database_url
from tests.conftest import TEMPLATES, make_settings
from tests.processes import ServerProcess, WorkerProcess, frozen
from tests.scaleout.conftest import FAST_QUEUE_ENV, needs_postgres
from tests.scaleout.topology import Topology
from tests.waiting import wait_for

pytestmark = [needs_postgres, pytest.mark.slow]
# The demo at its smallest, restored in small chunks: many checkpoints and progress steps;
# the kill is made deterministic by the frozen row, not by the data size.
SCALE = 1
ENV = {**FAST_QUEUE_ENV, "RECOVERLY_RESTORE_CHUNK_SIZE": "250"}

START = """mutation($i: StartRestoreInput!) {
  startRestore(input: $i) { restore { id status } errors { code message } } }"""
PROGRESS = """subscription($id: ID!) {
  restoreProgress(restoreId: $id) { status phase itemsDone itemsTotal percent message } }"""


@dataclass
class ScaleOut:
    topology: Topology
    demo: DemoInfo
    instances: dict[str, int]  # the demo's and the empty ones added here
    backups: dict[str, int]  # by source instance

    @property
    def db(self) -> Database:
        return self.topology.db

    async def start(self, api: ServerProcess, source: str, destination: str) -> dict[str, Any]:
        variables = {
            "i": {
                "backupId": to_global_id("Backup", self.backups[source]),
                "destinationId": to_global_id("ProductInstance", self.instances[destination]),
            }
        }
        return (await self.topology.gql(api, START, variables))["startRestore"]  # type: ignore[no-any-return]

    async def follow(self, api: ServerProcess, restore_id: str) -> list[dict[str, Any]]:
        async with self.topology.websocket(api) as ws, asyncio.timeout(90):
            operation = await ws.subscribe(PROGRESS, {"id": restore_id})
            return [event["restoreProgress"] async for event in ws.events(operation)]

    async def restore(self, restore_id: int) -> Restore:
        async with self.db.session() as session:
            row = await session.get(Restore, restore_id)
        assert row is not None
        return row

    async def wait_restore(self, restore_id: int, done: Any, *, within: float = 90) -> Restore:
        async def reached() -> Restore | None:
            row = await self.restore(restore_id)
            return row if done(row) else None

        return await wait_for(reached, within=within, what=f"restore {restore_id} {done.__name__}")

    async def digest(self, instance: str) -> dict[str, Any]:
        return await content_digest(self.db, self.instances[instance])


def _a_fifth_written(row: Restore) -> bool:
    return row.status == "IN_PROGRESS" and 0 < row.items_total // 5 <= row.items_done


def _final(row: Restore) -> bool:
    return row.status in FINAL_RESTORE_STATUSES


async def _add_empty_jira(db: Database, demo: DemoInfo, organization: str, name: str) -> int:
    async with db.transaction() as session:
        row = ProductInstance(
            organization_id=demo.organizations[organization],
            product=ProductKey.JIRA,
            name=name,
            url=f"https://{name.lower().replace(' ', '-')}.example.net",
        )
        session.add(row)
    assert row.id is not None
    return row.id


async def _make_backup(settings: Any, instance_id: int, admin_id: int) -> int:
    runtime = build_runtime(settings, with_scheduler=False)
    try:
        return await back_up_now(runtime, instance_id=instance_id, admin_id=admin_id)
    finally:
        await runtime.db.dispose()


@pytest.fixture(scope="module")
async def scale_out(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ScaleOut]:
    data_dir = tmp_path_factory.mktemp("scaleout")
    url, pg, demo = await TEMPLATES.clone("postgres", data_dir, scale=SCALE, backups=False)
    db = Database(async_database_url(url))
    try:
        instances = dict(demo.instances)
        instances["acme_jira_sandbox_2"] = await _add_empty_jira(db, demo, "acme", "Sandbox 2")
        instances["initech_jira_empty"] = await _add_empty_jira(db, demo, "initech", "Empty")
        settings = make_settings(data_dir, url)
        backups = {
            name: await _make_backup(settings, instances[name], demo.admin_id)
            for name in ("acme_jira", "initech_jira")
        }
        topology = Topology(data_dir=data_dir, database_url=url, db=db, env=ENV)
        try:
            await topology.start(apis=2, workers=2)
            yield ScaleOut(topology, demo, instances, backups)
        except BaseException:
            print(topology.logs())
            raise
        finally:
            await topology.stop()
    finally:
        await db.dispose()
        assert pg is not None
        await pg.drop()


async def test_a_restore_started_on_api_1_is_followed_to_completion_on_api_2(
    scale_out: ScaleOut,
) -> None:
    api1, api2 = scale_out.topology.apis
    started = await scale_out.start(api1, "acme_jira", "acme_jira_sandbox")
    assert started["errors"] == []
    events = await scale_out.follow(api2, started["restore"]["id"])

    assert events[-1]["status"] == "COMPLETED", events[-1]
    assert events[-1]["itemsDone"] == events[-1]["itemsTotal"] > 0
    assert "IN_PROGRESS" in {e["status"] for e in events}
    done = [e["itemsDone"] for e in events]
    assert done == sorted(done)
    assert len(set(done)) >= 3, "live progress crossed processes, not only the final state"
    workers = sum(len(w.worker_ids) for w in scale_out.topology.workers)
    assert await scale_out.topology.registered_workers() == workers == 4, "APIs run no jobs"


async def test_a_restore_whose_worker_is_killed_is_finished_by_the_other_worker(
    scale_out: ScaleOut,
) -> None:
    api1, api2 = scale_out.topology.apis
    started = await scale_out.start(api2, "acme_jira", "acme_jira_sandbox_2")
    assert started["errors"] == []
    restore_id = decode_id(started["restore"]["id"], "Restore")
    assert restore_id is not None
    follower = asyncio.create_task(scale_out.follow(api1, started["restore"]["id"]))

    try:
        await scale_out.wait_restore(restore_id, _a_fifth_written)
        async with frozen(scale_out.db, Restore, restore_id) as row:
            assert _a_fifth_written(row)
            victim = await scale_out.topology.job_worker(RESTORE_JOB, {"restore_id": restore_id})
            assert victim is not None
            await victim.kill()  # while its restore cannot write its next chunk
        killed = await scale_out.restore(restore_id)
        assert 0 < killed.items_done < killed.items_total, "killed mid-way"

        final = await scale_out.wait_restore(restore_id, _final)
        assert final.status == "COMPLETED", final.failure_reason
        events = await asyncio.wait_for(follower, 30)
    finally:
        follower.cancel()
    assert events[-1]["status"] == "COMPLETED"
    assert [e["itemsDone"] for e in events] == sorted(e["itemsDone"] for e in events)

    restored = await scale_out.digest("acme_jira_sandbox_2")
    uninterrupted = await scale_out.digest("acme_jira_sandbox")
    source = await scale_out.digest("acme_jira")
    assert restored["counts"] == uninterrupted["counts"] == source["counts"]
    assert restored["sha256"] == uninterrupted["sha256"] == source["sha256"]


async def test_one_operation_per_destination_across_api_replicas(scale_out: ScaleOut) -> None:
    apis = scale_out.topology.apis
    # The workers are paused while the twelve race: the winner's restore (a small site) could
    # otherwise finish first, and a late start would then find the site not empty, not busy.
    workers = scale_out.topology.workers
    _signal_workers(workers, signal.SIGSTOP)
    try:
        results = await asyncio.gather(
            *(scale_out.start(apis[i % 2], "initech_jira", "initech_jira_empty") for i in range(12))
        )
    finally:
        _signal_workers(workers, signal.SIGCONT)
    winners = [r for r in results if not r["errors"]]
    assert len(winners) == 1
    assert (
        sorted(r["errors"][0]["code"] for r in results if r["errors"]) == ["DESTINATION_BUSY"] * 11
    )
    restore_id = decode_id(winners[0]["restore"]["id"], "Restore")
    assert restore_id is not None
    final = await scale_out.wait_restore(restore_id, _final)
    assert final.status == "COMPLETED", final.failure_reason
    async with scale_out.db.session() as session:
        rows = (
            await session.exec(
                select(Restore).where(
                    Restore.destination_id == scale_out.instances["initech_jira_empty"]
                )
            )
        ).all()
    assert len(rows) == 1


def _signal_workers(workers: list[WorkerProcess], signal_number: int) -> None:
    """Send a signal to each worker still running (an earlier test may have killed one)."""
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal_number)
