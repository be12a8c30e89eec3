"""Progress delivery under load: p50/p95/max delay from publish to receipt for N concurrent
graphql-transport-ws subscribers on one restore, against 1 subscriber in the same run.

A real ``recoverly serve`` process runs on loopback (production settings, embedded runner,
in-memory bus, SQLite); the subscribers are real websocket clients in this process. Each
round connects N clients, starts a restore, subscribes them all, and follows it to the end.
The delay of an event is the receipt time minus the event's ``at`` (stamped when the worker
publishes it); the first message of each stream (the current state, read from the database)
is left out. Also printed: time to connect and to subscribe everyone, the server's RSS
growth per connection, the restore's duration against the first round's, subscribers that
missed the final event, and whether all subscribers received the same frames; the server
process's CPU time (all threads) and its full garbage collections (``/metrics``) from the
restore's start until every subscriber saw its end, and the load average when the round
began. Each round is compared with the latest round before it that had the first round's
number of subscribers, so ``--subscribers 1 1000 1 1000`` gives two ratios, each from a
pair measured back to back.

    .venv/bin/python bench/subscriber_latency.py [--subscribers 1 200 1000] [--scale 2]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import print_table, ratio  # noqa: E402
from recoverly.cli import tune_gc  # noqa: E402
from recoverly.database import Database  # noqa: E402
from recoverly.demo import seed_demo  # noqa: E402
from recoverly.resolvers.global_ids import to_global_id  # noqa: E402
from recoverly.services.backups import back_up_now  # noqa: E402
from recoverly.services.system import build_runtime  # noqa: E402
from recoverly.settings import Settings, async_database_url  # noqa: E402
from tests.processes import ServerProcess  # noqa: E402

TOKEN = "bench-token"
PROGRESS = """subscription($id: ID!) { restoreProgress(restoreId: $id) {
  status itemsDone at } }"""
DURATION = "query($id: ID!) { node(id: $id) { ... on Restore { durationSeconds } } }"
FINAL = {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED", "CANCELED"}
START = """mutation($i: StartRestoreInput!) { startRestore(input: $i) {
  restore { id } errors { code message } } }"""


async def prepare(data_dir: Path, scale: int) -> tuple[str, dict[str, int], int]:
    """Seed the demo and back up Acme's Jira; returns the DB URL, instance IDs, backup ID."""
    url = f"sqlite:///{data_dir / 'bench.db'}"
    settings = Settings(data_dir=data_dir, database_url=url)
    runtime = build_runtime(settings, with_scheduler=False)
    await runtime.db.migrate()
    demo = await seed_demo(runtime.db, scale=scale, demo_token=TOKEN, other_token="other")
    backup_id = await back_up_now(
        runtime, instance_id=demo.instances["acme_jira"], admin_id=demo.admin_id
    )
    await runtime.db.dispose()
    return url, demo.instances, backup_id


@dataclass
class Stream:
    """What one subscriber saw."""

    delays: list[float] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)  # raw text of each published event
    subscribed_at: float = 0.0


async def connect(ws_url: str, gate: asyncio.Semaphore) -> Any:
    """A graphql-transport-ws connection, acknowledged."""
    protocol = [websockets.Subprotocol("graphql-transport-ws")]
    async with gate:
        ws = await websockets.connect(
            ws_url, subprotocols=protocol, max_queue=None, compression=None, open_timeout=60
        )
        payload = {"Authorization": f"Bearer {TOKEN}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
    return ws


async def follow(ws: Any, restore_id: str, stream: Stream) -> None:
    """Subscribe, then read until ``complete``; the first message (the current state, read
    from the database) is not a published event and is left out of the delays."""
    message = {"query": PROGRESS, "variables": {"id": restore_id}}
    await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": message}))
    first = True
    async for raw in ws:
        now = datetime.now(UTC)
        data = json.loads(raw)
        if data["type"] == "complete":
            break
        assert data["type"] == "next" and data["payload"].get("data"), data
        progress = data["payload"]["data"]["restoreProgress"]
        stream.statuses.append(progress["status"])
        if first:
            first = False
            stream.subscribed_at = time.perf_counter()
            continue
        stream.frames.append(raw)
        stream.delays.append((now - datetime.fromisoformat(progress["at"])).total_seconds() * 1000)
    await ws.close()


@dataclass
class Round:
    subscribers: int
    connect_seconds: float
    subscribe_seconds: float
    restore_seconds: float
    rss_per_connection_kib: float
    server_cpu_seconds: float
    full_collections: int
    client_full_collections: int
    load: float
    streams: list[Stream]

    @property
    def delays(self) -> list[float]:
        return [d for s in self.streams for d in s.delays]

    @property
    def missing_final(self) -> int:
        return sum(1 for s in self.streams if not s.statuses or s.statuses[-1] not in FINAL)


async def measure(server: ServerProcess, backup_id: int, destination: int, n: int) -> Round:
    """Connect ``n`` clients, start a restore, subscribe them all to it, follow it to the end."""
    process = psutil.Process(server.pid)
    load = os.getloadavg()[0]
    rss_before = process.memory_info().rss
    ws_url = server.url.replace("http://", "ws://") + "/graphql"
    began = time.perf_counter()
    gate = asyncio.Semaphore(100)
    sockets = await asyncio.gather(*(connect(ws_url, gate) for _ in range(n)))
    connected = time.perf_counter()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
        variables = {
            "i": {
                "backupId": to_global_id("Backup", backup_id),
                "destinationId": to_global_id("ProductInstance", destination),
            }
        }
        collections_before = await _full_collections(client)
        client_before = gc.get_stats()[2]["collections"]
        cpu_before = _cpu_seconds(process)
        response = await client.post("/graphql", json={"query": START, "variables": variables})
        body = response.json()["data"]["startRestore"]
        assert not body["errors"], body["errors"]
        restore_id = body["restore"]["id"]
        streams = [Stream() for _ in range(n)]
        followers = [
            asyncio.create_task(follow(ws, restore_id, stream))
            for ws, stream in zip(sockets, streams, strict=True)
        ]
        subscribe_started = time.perf_counter()
        rss_during = 0
        while not all(s.subscribed_at for s in streams) and not all(f.done() for f in followers):
            rss_during = max(rss_during, process.memory_info().rss)
            await asyncio.sleep(0.05)
        rss_during = max(rss_during, process.memory_info().rss)
        await asyncio.gather(*followers)
        cpu = _cpu_seconds(process) - cpu_before
        collections = await _full_collections(client) - collections_before
        client_collections = gc.get_stats()[2]["collections"] - client_before
        node = await client.post(
            "/graphql", json={"query": DURATION, "variables": {"id": restore_id}}
        )
    subscribed = max(s.subscribed_at for s in streams)
    return Round(
        subscribers=n,
        connect_seconds=connected - began,
        subscribe_seconds=subscribed - subscribe_started,
        restore_seconds=node.json()["data"]["node"]["durationSeconds"],
        rss_per_connection_kib=(rss_during - rss_before) / n / 1024,
        server_cpu_seconds=cpu,
        full_collections=collections,
        client_full_collections=client_collections,
        load=load,
        streams=streams,
    )


async def _full_collections(client: httpx.AsyncClient) -> int:
    """The server's collections of the oldest generation so far (its ``/metrics``)."""
    text = (await client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith('python_gc_collections_total{generation="2"}'):
            return int(float(line.rpartition(" ")[2]))
    raise RuntimeError("the server's /metrics has no python_gc_collections_total")


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


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


# Leaf frames of threads waiting for work (aiosqlite's thread blocks in queue.get on line 59,
# an idle thread-pool worker in work_queue.get on line 81).
IDLE_FRAMES = (
    "epoll",
    "select",
    "wait (threading",
    "get (queue",
    "aiosqlite/core.py:59)",
    "_worker (concurrent/futures/thread.py:81)",
)


def start_py_spy(py_spy: str, pid: int, out: Path) -> subprocess.Popen[bytes]:
    command = [py_spy, "record", "-p", str(pid), "-r", "250", "-f", "raw", "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def print_py_spy(path: Path, top: int = 25) -> None:
    """Busy samples of the server's threads by leaf frame and by inclusive frame."""
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any(idle in frames[-1] for idle in IDLE_FRAMES):
            continue
        total += int(count)
        leaves[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    print(f"\npy-spy of the server, last round: {total} busy samples")
    for title, counter in (("leaf", leaves), ("inclusive", inclusive)):
        print(f"-- {title}")
        for frame, count in counter.most_common(top):
            print(f"{100 * count / max(total, 1):5.1f}%  {frame[:140]}")


def summary(delays: list[float]) -> tuple[float, float, float, int]:
    if not delays:
        return 0.0, 0.0, 0.0, 0
    ordered = sorted(delays)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return statistics.median(ordered), p95, ordered[-1], len(ordered)


def identical_frames(streams: list[Stream]) -> bool:
    """Whether all subscribers received the same text for each event they shared: from the
    first frame a subscriber shares with the longest stream on, it is that stream's tail. (A
    late subscriber misses early events, and the events it had queued while reading its
    current state are raised to that state, so that its itemsDone never decreases.)"""
    longest = max((s.frames for s in streams), key=len)
    position = {frame: i for i, frame in enumerate(longest)}
    for stream in streams:
        joined = next((i for i, frame in enumerate(stream.frames) if frame in position), None)
        if joined is None:
            return False
        start = position[stream.frames[joined]]
        if stream.frames[joined:] != longest[start:]:
            return False
    return True


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--subscribers", type=int, nargs="+", default=[1, 200, 1000], help="one round each"
    )
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--py-spy", help="py-spy binary: record the server in the last round")
    args = parser.parse_args()
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="recoverly-bench-") as tmp:
        data_dir = Path(tmp)
        db_url, instances, backup_id = await prepare(data_dir, args.scale)
        # The clients' receipt times are the measurement: no full collection of this
        # process (its 1,000 connections and their frames) pauses them (as in the server).
        tune_gc()
        server = ServerProcess(
            data_dir=data_dir,
            database_url=db_url,
            env={"RECOVERLY_PRODUCTION": "true", "RECOVERLY_RATE_LIMIT_POINTS": str(10**15)},
        )
        await server.start()
        try:
            for i, n in enumerate(args.subscribers):
                await purge(db_url, instances["acme_jira_sandbox"])
                spy = None
                if args.py_spy and i == len(args.subscribers) - 1:
                    spy = start_py_spy(args.py_spy, server.pid, data_dir / "spy.txt")
                rounds.append(await measure(server, backup_id, instances["acme_jira_sandbox"], n))
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait()
                    print_py_spy(data_dir / "spy.txt")
        finally:
            await server.stop()
    rows = []
    base = rounds[0]
    for r in rounds:
        if r.subscribers == rounds[0].subscribers:
            base = r
        p50, p95, top, events = summary(r.delays)
        rows.append(
            [f"{r.subscribers:,}", f"{r.load:.1f}", p50, p95, top, events, r.connect_seconds,
             r.subscribe_seconds, r.rss_per_connection_kib, r.restore_seconds,
             ratio(r.restore_seconds, base.restore_seconds), r.server_cpu_seconds,
             ratio(r.server_cpu_seconds, base.server_cpu_seconds), r.full_collections,
             r.client_full_collections, r.missing_final,
             "yes" if identical_frames(r.streams) else "NO"]
        )  # fmt: skip
    print_table(
        "Progress fan-out: one restore, N graphql-transport-ws subscribers",
        ["subscribers", "load", "p50 ms", "p95 ms", "max ms", "events", "connect s",
         "subscribe s", "server KiB/conn", "restore s", "restore vs 1", "server cpu s",
         "cpu vs 1", "full GCs", "client full GCs", "missing final", "same frames"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
