"""Progress delivery under load: p50/p95/max delay from publish to receipt for N concurrent
graphql-transport-ws subscribers on one restore, against 1 subscriber in the same run.

A real ``recoverly serve`` process runs on loopback (embedded runner, in-memory bus, SQLite);
the subscribers are real websocket clients in this process. The delay of an event is the
receipt time minus the event's ``at`` (stamped when the worker publishes it); the first
message of each stream (the current state, read from the database) is left out.

    .venv/bin/python bench/subscriber_latency.py [--subscribers 200] [--scale 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recoverly.database import Database  # noqa: E402
from recoverly.demo import seed_demo  # noqa: E402
from recoverly.models import ProductInstance  # noqa: E402
from recoverly.resolvers.global_ids import to_global_id  # noqa: E402
from recoverly.services.backups import new_backup, perform_backup  # noqa: E402
from recoverly.services.system import build_runtime  # noqa: E402
from recoverly.settings import Settings, async_database_url  # noqa: E402
from tests.processes import ServerProcess  # noqa: E402

TOKEN = "bench-token"
PROGRESS = """subscription($id: ID!) { restoreProgress(restoreId: $id) {
  status itemsDone at } }"""
START = """mutation($i: StartRestoreInput!) { startRestore(input: $i) {
  restore { id } errors { code message } } }"""


async def prepare(data_dir: Path, scale: int) -> tuple[str, dict[str, int], int]:
    """Seed the demo and back up Acme's Jira; returns the DB URL, instance IDs, backup ID."""
    url = f"sqlite:///{data_dir / 'bench.db'}"
    settings = Settings(data_dir=data_dir, database_url=url)
    runtime = build_runtime(settings, with_scheduler=False)
    await runtime.db.migrate()
    demo = await seed_demo(runtime.db, scale=scale, demo_token=TOKEN, other_token="other")
    async with runtime.db.transaction() as session:
        instance = await session.get(ProductInstance, demo.instances["acme_jira"])
        assert instance is not None
        backup = new_backup(
            runtime,
            instance,
            policy=None,
            created_by_id=demo.admin_id,
            include_attachments=True,
            include_users_and_groups=True,
            include_personal_spaces=False,
        )
        session.add(backup)
    assert backup.id is not None
    await perform_backup(runtime, backup_id=backup.id)
    await runtime.db.dispose()
    return url, demo.instances, backup.id


async def subscriber(ws_url: str, restore_id: str, delays: list[float]) -> None:
    protocol = [websockets.Subprotocol("graphql-transport-ws")]
    async with websockets.connect(ws_url, subprotocols=protocol, max_queue=None) as ws:
        payload = {"Authorization": f"Bearer {TOKEN}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        await ws.recv()
        message = {"query": PROGRESS, "variables": {"id": restore_id}}
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": message}))
        first = True
        async for raw in ws:
            now = datetime.now(UTC)
            data = json.loads(raw)
            if data["type"] == "complete":
                return
            if first:  # the current state, read from the database: not a published event
                first = False
                continue
            at = datetime.fromisoformat(data["payload"]["data"]["restoreProgress"]["at"])
            delays.append((now - at).total_seconds() * 1000)


async def measure(server: ServerProcess, backup_id: int, destination: int, n: int) -> list[float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
        variables = {
            "i": {
                "backupId": to_global_id("Backup", backup_id),
                "destinationId": to_global_id("ProductInstance", destination),
            }
        }
        response = await client.post("/graphql", json={"query": START, "variables": variables})
        body = response.json()["data"]["startRestore"]
        assert not body["errors"], body["errors"]
        restore_id = body["restore"]["id"]
    ready, count, delays = asyncio.Event(), [0, n], []
    ws_url = server.url.replace("http://", "ws://") + "/graphql"
    await asyncio.gather(*(subscriber(ws_url, restore_id, ready, count, delays) for _ in range(n)))
    return delays


async def purge(db_url: str, destination: int) -> None:
    """Empty the sandbox again (through the engine's purge of the last restore)."""
    from sqlmodel import col, select

    from recoverly.models import Restore
    from recoverly.products.restore_engine import purge_restore

    db = Database(async_database_url(db_url))
    async with db.session() as session:
        restore_ids = (
            await session.exec(select(Restore.id).where(col(Restore.destination_id) == destination))
        ).all()
    for restore_id in restore_ids:
        assert restore_id is not None
        await purge_restore(db, restore_id=restore_id)
    await db.dispose()


def summary(delays: list[float]) -> tuple[float, float, float, int]:
    ordered = sorted(delays)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return statistics.median(ordered), p95, ordered[-1], len(ordered)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--scale", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recoverly-bench-") as tmp:
        data_dir = Path(tmp)
        db_url, instances, backup_id = await prepare(data_dir, args.scale)
        server = ServerProcess(data_dir=data_dir, database_url=db_url)
        await server.start()
        try:
            results = {}
            for n in (1, args.subscribers):
                await purge(db_url, instances["acme_jira_sandbox"])
                delays = await measure(server, backup_id, instances["acme_jira_sandbox"], n)
                results[n] = summary(delays)
        finally:
            await server.stop()
    print(f"{'subscribers':>12} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9} {'events':>8}")
    for n, (p50, p95, top, events) in results.items():
        print(f"{n:>12} {p50:>9.1f} {p95:>9.1f} {top:>9.1f} {events:>8}")
    base, loaded = results[1][1], results[args.subscribers][1]
    print(f"p95 ratio {args.subscribers} vs 1 subscriber: {loaded / base:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
