"""GraphQL read path against a plain Starlette route doing the same SQL, in the same run.

Both servers are real processes on loopback over the same SQLite file: ``recoverly serve``
with production settings (one process), and a plain Starlette app defined here (uvicorn,
aiosqlite) that runs the same statements a GraphQL request needs (token lookup, scope,
count, page, sites, copies) and returns the same JSON (checked before timing). wrk drives
both with the same load; besides throughput and latency, each process's CPU time per request
(all its threads, from ``/proc``) and their ratio, plain over ours, which a machine shared
with other work disturbs less than throughput. Last, ``viewer`` is measured again while
100,000-entity restores run back to back in the server, against its idle p99.

The cost of logging and metrics: with ``--observability both`` (the default) a second
``recoverly serve`` over the same file runs with them off (``RECOVERLY_METRICS_ENABLED=false``,
``RECOVERLY_LOG_LEVEL=warning``: no operation metrics, no request lines), the two are
measured alternately (on, off, then off, on with ``--rounds 2``, ..., each round restarting
both in its order, see ``alternately``) and the table adds the
off server's throughput, the on/off ratio, and each server's CPU time per request (all its
threads, from ``/proc``; steadier than throughput on a machine shared with other work) with
their off/on ratio. ``on`` or ``off`` measures one server only.

    .venv/bin/python bench/read_path.py [--backups 100000] [--duration 10] [--connections 32]
        [--entities 100000] [--no-restore] [--observability on|off|both] [--rounds 2]
        [--cases first10 first100 viewer]

Needs ``wrk`` (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.common import print_table, ratio  # noqa: E402
from bench.generate import create_instance, generate_jira  # noqa: E402
from recoverly.demo import seed_demo  # noqa: E402
from recoverly.demo.bulk import insert_rows  # noqa: E402
from recoverly.models import Backup, BackupCopy, utcnow  # noqa: E402
from recoverly.resolvers.global_ids import to_global_id  # noqa: E402
from recoverly.services.backups import back_up_now  # noqa: E402
from recoverly.services.system import build_runtime  # noqa: E402
from recoverly.settings import Settings  # noqa: E402
from tests.processes import ServerProcess, free_port  # noqa: E402

TOKEN = "bench-read-token"
BACKUPS = """query($org: ID!, $first: Int) { backups(organizationId: $org, first: $first) {
  totalCount nodes { id status location availableForRestore createdAt source { id name } } } }"""
VIEWER = "{ viewer { id } }"
START = """mutation($i: StartRestoreInput!) { startRestore(input: $i) {
  restore { id } errors { code message } } }"""
STATUS = "query($id: ID!) { node(id: $id) { ... on Restore { status } } }"
FINAL = {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED", "CANCELED"}
COPY_SIZE = 1000
CASES = ["first10", "first100", "viewer"]


@dataclass
class Prepared:
    db_path: Path
    organization: str  # global ID of the organization with the many backups
    restore_backup: str | None  # global ID of the backup of the big site
    destinations: list[str]  # global IDs of empty Jira sites to restore into


# --- Data ------------------------------------------------------------------------------


async def prepare(data_dir: Path, *, backups: int, entities: int, restores: int) -> Prepared:
    """Demo data, ``backups`` backups of Acme's Jira (with copies), and for the restore part a
    Jira site of ``entities`` entities, its backup, and empty destination sites."""
    db_path = data_dir / "recoverly.db"
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{db_path}")
    runtime = build_runtime(settings, with_scheduler=False)
    db = runtime.db
    await db.migrate()
    demo = await seed_demo(db, demo_token=TOKEN, other_token="bench-other-token")
    org_id, jira_id = demo.organizations["acme"], demo.instances["acme_jira"]
    keys = await insert_backups(db, organization_id=org_id, instance_id=jira_id, count=backups)
    # The internal copies' blobs exist (sparse files of their size), as in a deployment: the
    # server's periodic copy check finds them and changes nothing while the load runs.
    for key in keys:
        path = runtime.internal_store.path_for(key)  # type: ignore[attr-defined]
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as blob:
            blob.truncate(COPY_SIZE)
    restore_backup, destinations = None, []
    if restores:
        site = await generate_jira(db, entities=entities, organization_id=org_id)
        backup_id = await back_up_now(runtime, instance_id=site.instance_id, admin_id=demo.admin_id)
        restore_backup = to_global_id("Backup", backup_id)
        for n in range(restores):
            empty = await create_instance(db, org_id, name=f"Bench destination {n}")
            assert empty.id is not None
            destinations.append(to_global_id("ProductInstance", empty.id))
    await db.dispose()
    return Prepared(db_path, to_global_id("Organization", org_id), restore_backup, destinations)


async def insert_backups(
    db: Any, *, organization_id: int, instance_id: int, count: int
) -> list[str]:
    """``count`` backups of the last days: most with an internal copy, every third with a
    customer copy only, every seventh failed (no copy). Nothing the retention sweep would
    change while the benchmark runs. Returns the keys of the internal copies."""
    internal: list[str] = []
    now = utcnow()
    base = {
        "organization_id": organization_id,
        "instance_id": instance_id,
        "policy_id": None,
        "product": "JIRA",
        "include_attachments": True,
        "include_users_and_groups": True,
        "include_personal_spaces": False,
        "checksum": None,
        "entity_counts": {"issues": 10},
        "attempts": 1,
        "created_by_id": None,
        "started_at": None,
    }
    async with db.engine.begin() as conn:
        for start in range(0, count, 20_000):
            size = min(20_000, count - start)
            created = [now - timedelta(seconds=5 * (count - start - i)) for i in range(size)]
            failed = [(start + i) % 7 == 0 for i in range(size)]
            rows = [
                {**base, "status": "FAILED" if bad else "COMPLETED", "size_bytes": 1000 + i,
                 "failure_reason": "bench" if bad else None, "created_at": at,
                 "completed_at": at}
                for i, (at, bad) in enumerate(zip(created, failed, strict=True))
            ]  # fmt: skip
            ids = await insert_rows(conn, Backup, rows, returning=True)
            copies = []
            for backup_id, at, bad in zip(ids, created, failed, strict=True):
                if bad:
                    continue
                if backup_id % 3 == 0:
                    copies.append(_copy(backup_id, "CUSTOMER_STORAGE", at, None))
                else:
                    expires = at + timedelta(days=14)
                    copies.append(_copy(backup_id, "INTERNAL_STORAGE", at, expires))
                    internal.append(copies[-1]["key"])
            await insert_rows(conn, BackupCopy, copies)
    return internal


def _copy(backup_id: int, location: str, at: datetime, expires: datetime | None) -> dict[str, Any]:
    return {
        "backup_id": backup_id,
        "location": location,
        "key": f"bench/{backup_id}/{location}",
        "bucket": None,
        "status": "AVAILABLE",
        "size_bytes": COPY_SIZE,
        "created_at": at,
        "expires_at": expires,
        "expired_at": None,
    }


# --- The plain route (runs in a child process) ------------------------------------------

TOKEN_SQL = """SELECT admin.id FROM admin JOIN apitoken ON apitoken.admin_id = admin.id
WHERE apitoken.token_hash = ?"""
SCOPE_SQL = "SELECT organization_id FROM membership WHERE admin_id = ?"
COUNT_SQL = "SELECT count(*) FROM backup WHERE organization_id = ?"
PAGE_SQL = """SELECT id, status, created_at, instance_id FROM backup WHERE organization_id = ?
ORDER BY id DESC LIMIT ?"""
SITES_SQL = "SELECT id, name FROM productinstance WHERE id IN ({})"
COPIES_SQL = (
    "SELECT backup_id, location, status, expires_at FROM backup_copy WHERE backup_id IN ({})"
)


def plain_app(db_path: str) -> Any:
    """A Starlette app with one route answering the benchmark's two GraphQL documents with the
    same SQL and the same JSON, over a small pool of aiosqlite connections."""
    import hashlib
    from contextlib import asynccontextmanager

    import aiosqlite
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    pool: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        for _ in range(4):
            conn = await aiosqlite.connect(db_path)
            await conn.execute("PRAGMA busy_timeout=30000")
            pool.put_nowait(conn)
        yield
        while not pool.empty():
            await pool.get_nowait().close()

    async def rows(conn: aiosqlite.Connection, sql: str, params: Any) -> list[Any]:
        async with conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def handle(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        token = request.headers.get("authorization", "").partition(" ")[2]
        conn = await pool.get()
        try:
            found = await rows(conn, TOKEN_SQL, (hashlib.sha256(token.encode()).hexdigest(),))
            if not found:
                return JSONResponse({"errors": [{"message": "Unauthorized"}]}, status_code=401)
            admin_id = found[0][0]
            if body["query"] == VIEWER:
                return JSONResponse({"data": {"viewer": {"id": to_global_id("Admin", admin_id)}}})
            orgs = {r[0] for r in await rows(conn, SCOPE_SQL, (admin_id,))}
            variables = body["variables"]
            return JSONResponse({"data": {"backups": await backups(conn, orgs, variables)}})
        finally:
            pool.put_nowait(conn)

    async def backups(conn: Any, orgs: set[int], variables: dict[str, Any]) -> dict[str, Any]:
        org_id = int(_decode(variables["org"]))
        if org_id not in orgs:
            return {"totalCount": 0, "nodes": []}
        first = variables["first"]
        total = (await rows(conn, COUNT_SQL, (org_id,)))[0][0]
        page = (await rows(conn, PAGE_SQL, (org_id, first + 1)))[:first]
        site_ids = sorted({r[3] for r in page})
        marks = ",".join("?" * len(site_ids))
        sites = {r[0]: r[1] for r in await rows(conn, SITES_SQL.format(marks), site_ids)}
        backup_ids = [r[0] for r in page]
        marks = ",".join("?" * len(backup_ids))
        copies: dict[int, list[Any]] = {}
        for copy in await rows(conn, COPIES_SQL.format(marks), backup_ids):
            copies.setdefault(copy[0], []).append(copy)
        now = datetime.now(UTC)
        nodes = []
        for backup_id, status, created_at, site_id in page:
            location = _location(status, copies.get(backup_id, []), now)
            nodes.append(
                {
                    "id": to_global_id("Backup", backup_id),
                    "status": status,
                    "location": location,
                    "availableForRestore": location is not None,
                    "createdAt": _timestamp(created_at).isoformat(),
                    "source": {"id": to_global_id("ProductInstance", site_id),
                               "name": sites[site_id]},
                }
            )  # fmt: skip
        return {"totalCount": total, "nodes": nodes}

    return Starlette(routes=[Route("/graphql", handle, methods=["POST"])], lifespan=lifespan)


def _decode(global_id: str) -> str:
    import base64

    padded = global_id + "=" * (-len(global_id) % 4)
    return base64.urlsafe_b64decode(padded).decode().partition(":")[2]


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _location(status: str, copies: list[Any], now: datetime) -> str | None:
    if status not in ("COMPLETED", "INCOMPLETE", "EXPIRED"):
        return None
    live = {
        c[1] for c in copies if c[2] == "AVAILABLE" and (c[3] is None or _timestamp(c[3]) > now)
    }
    for location in ("INTERNAL_STORAGE", "CUSTOMER_STORAGE"):
        if location in live:
            return location
    return None


def serve_plain(db_path: str, port: int) -> None:
    import uvicorn

    uvicorn.run(plain_app(db_path), host="127.0.0.1", port=port, log_level="warning")


class PlainProcess:
    """The plain route in its own process, like the server."""

    def __init__(self, db_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--plain", str(db_path), str(self.port)]
        )

    async def wait_ready(self) -> None:
        async with httpx.AsyncClient() as client, asyncio.timeout(30):
            while True:
                try:
                    await client.post(f"{self.url}/graphql", content=b"{}")
                    return
                except httpx.TransportError:
                    await asyncio.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# --- Load ------------------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float = 0.0  # the server's CPU time (all its threads) per request, when measured


WRK_SCRIPT = """wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""


def run_wrk(
    url: str,
    body: dict[str, Any],
    *,
    connections: int,
    duration: int,
    work: Path,
    pid: int | None = None,
) -> Load:
    """wrk's throughput and latency; with the server's ``pid``, its CPU time per request too."""
    script = work / "wrk.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(json.dumps(body)), token=TOKEN))
    command = [
        "wrk", f"-c{connections}", "-t2", f"-d{duration}s", "--latency", "--timeout", "30s",
        "-s", str(script), f"{url}/graphql",
    ]  # fmt: skip
    cpu = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu if pid else 0.0
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|timeout) (\d+)", out))
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Load(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_latency(out, "50%"),
        p99_ms=_latency(out, "99%"),
        errors=errors,
        cpu_us=cpu / requests * 1e6 if requests else 0.0,
    )


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, all its threads (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _latency(out: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def check_same_json(server: str, plain: str, body: dict[str, Any]) -> None:
    """Both answer the same JSON (else the comparison would be meaningless)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(headers=headers, timeout=60) as client:
        ours = (await client.post(f"{server}/graphql", json=body)).json()
        ours.pop("extensions", None)  # the cost report, which the plain route has no notion of
        theirs = (await client.post(f"{plain}/graphql", json=body)).json()
    if ours != theirs:
        raise SystemExit(f"different answers for {body}:\n{ours}\n{theirs}")


class RestoreLoop:
    """Restores of the big site into fresh empty sites, back to back, until stopped."""

    def __init__(self, server: str, prepared: Prepared) -> None:
        self.server, self.prepared = server, prepared
        self.done: list[float] = []
        self.statuses: list[str] = []
        self.running = False
        self.started = asyncio.Event()

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=self.server, headers=headers, timeout=60) as client:
            for destination in self.prepared.destinations:
                started = time.perf_counter()
                variables = {
                    "i": {"backupId": self.prepared.restore_backup, "destinationId": destination}
                }
                response = await client.post(
                    "/graphql", json={"query": START, "variables": variables}
                )
                payload = response.json()["data"]["startRestore"]
                assert not payload["errors"], payload["errors"]
                restore_id = payload["restore"]["id"]
                self.running = True
                self.started.set()
                while True:
                    node = await client.post(
                        "/graphql", json={"query": STATUS, "variables": {"id": restore_id}}
                    )
                    status = node.json()["data"]["node"]["status"]
                    if status in FINAL:
                        self.statuses.append(status)
                        break
                    await asyncio.sleep(0.2)
                self.done.append(time.perf_counter() - started)
        self.running = False


# Production settings; the per-caller query budget is a defence against one client, and wrk
# is one client sending thousands of requests a second, so the budget is lifted here. The job
# runner polls at its default (the test servers' 50 ms would cost each idle server about 6%
# of a core).
SERVER_ENV = {
    "RECOVERLY_PRODUCTION": "true",
    "RECOVERLY_RATE_LIMIT_POINTS": str(10**15),
    "RECOVERLY_JOB_POLL_SECONDS": str(Settings().job_poll_seconds),
}
# Without operation metrics and request lines (the probes and /metrics stay).
OBSERVABILITY_OFF = {"RECOVERLY_METRICS_ENABLED": "false", "RECOVERLY_LOG_LEVEL": "warning"}


def combined(loads: list[Load]) -> Load:
    """The mean of several runs of the same load."""
    n = len(loads)
    return Load(
        rps=sum(load.rps for load in loads) / n,
        p50_ms=sum(load.p50_ms for load in loads) / n,
        p99_ms=sum(load.p99_ms for load in loads) / n,
        errors=sum(load.errors for load in loads),
        cpu_us=sum(load.cpu_us for load in loads) / n,
    )


async def alternately(
    servers: list[ServerProcess], body: dict[str, Any], *, rounds: int, load: dict[str, Any]
) -> list[Load]:
    """Each server's load over ``rounds`` runs, the order reversed every round (on, off, off,
    on, ...), so that a drift of the machine's load weighs on both alike. With more than one
    server, each round first restarts them in its order: of two servers started one after
    the other over one file, the first serves a few per cent slower (the same configuration
    twice: 0.965x CPU time per request), and this way neither is always the first."""
    runs: list[list[Load]] = [[] for _ in servers]
    for n in range(rounds):
        order = list(range(len(servers)))
        if n % 2:
            order.reverse()
        if len(servers) > 1:
            for i in order:
                await servers[i].stop()
            for i in order:
                await servers[i].start()
            for i in order:
                run_wrk(servers[i].url, body, **{**load, "duration": 2})  # warm up
        for i in order:
            runs[i].append(run_wrk(servers[i].url, body, pid=servers[i].pid, **load))
    return [combined(server_runs) for server_runs in runs]


async def measure(args: argparse.Namespace, work: Path) -> None:
    prepared = await prepare(
        work,
        backups=args.backups,
        entities=args.entities,
        restores=0 if args.no_restore else args.restores,
    )
    url = f"sqlite:///{prepared.db_path}"
    on = args.observability != "off"
    # The first server is the one of the existing columns: observability on unless "off".
    servers = [
        ServerProcess(
            data_dir=work, database_url=url, env={**SERVER_ENV, **({} if on else OBSERVABILITY_OFF)}
        )
    ]
    if args.observability == "both":
        servers.append(
            ServerProcess(
                data_dir=work, database_url=url, log_name="server-off",
                env={**SERVER_ENV, **OBSERVABILITY_OFF},
            )
        )  # fmt: skip
    for process in servers:
        await process.start()
    server = servers[0]
    plain = PlainProcess(prepared.db_path)
    try:
        await plain.wait_ready()
        org = prepared.organization
        cases = [
            ("backups(first: 10)", {"query": BACKUPS, "variables": {"org": org, "first": 10}}),
            ("backups(first: 100)", {"query": BACKUPS, "variables": {"org": org, "first": 100}}),
            ("viewer { id }", {"query": VIEWER}),
        ]
        cases = [case for case, name in zip(cases, CASES, strict=True) if name in args.cases]
        load = {"connections": args.connections, "duration": args.duration, "work": work}
        rows, idle_viewer = [], None
        for label, body in cases:
            for process in servers:
                await check_same_json(process.url, plain.url, body)
                run_wrk(process.url, body, connections=args.connections, duration=2, work=work)
            ours, *off = await alternately(servers, body, rounds=args.rounds, load=load)
            theirs = run_wrk(plain.url, body, pid=plain.process.pid, **load)
            if label.startswith("viewer"):
                idle_viewer = ours
            row = [label, ours.rps, ours.p50_ms, ours.p99_ms, theirs.rps, theirs.p50_ms,
                   theirs.p99_ms, ratio(ours.rps, theirs.rps), ours.cpu_us, theirs.cpu_us,
                   ratio(theirs.cpu_us, ours.cpu_us)]  # fmt: skip
            for other in off:  # observability off, for the on/off ratio
                row += [other.rps, other.p99_ms, ratio(other.rps, theirs.rps),
                        ratio(ours.rps, other.rps), other.cpu_us,
                        ratio(other.cpu_us, ours.cpu_us)]  # fmt: skip
            rows.append([*row, sum(r.errors for r in (ours, *off, theirs))])
        headers = ["query", "req/s", "p50 ms", "p99 ms", "plain req/s", "plain p50", "plain p99",
                   "ratio", "cpu us/req", "plain cpu us/req", "cpu ratio"]  # fmt: skip
        if len(servers) > 1:
            headers += ["off req/s", "off p99", "off ratio", "on/off", "off cpu us/req",
                        "cpu off/on"]  # fmt: skip
        title = (
            f"GraphQL vs plain route, SQLite, {args.backups:,} backups, wrk {args.connections} "
            f"connections, {args.duration} s each"
        )
        if args.observability != "on":
            title += f", observability {args.observability}"
        if args.rounds > 1:
            title += f", mean of {args.rounds} alternating runs"
        print_table(title, [*headers, "errors"], rows)
        print(f"load average at the end: {', '.join(f'{n:.2f}' for n in os.getloadavg())}")
        if not args.no_restore and idle_viewer is not None:
            await viewer_during_restores(server.url, prepared, idle_viewer, load)
    finally:
        plain.stop()
        for process in servers:
            await process.stop()


async def viewer_during_restores(
    server: str, prepared: Prepared, idle: Load, load: dict[str, Any]
) -> None:
    restores = RestoreLoop(server, prepared)
    task = asyncio.create_task(restores.run())
    started = asyncio.create_task(restores.started.wait())
    await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # a restore could not start: show why
    busy = await asyncio.to_thread(run_wrk, server, {"query": VIEWER}, **load)
    still_running = restores.running
    await task
    print_table(
        f"viewer {{ id }} while {len(prepared.destinations)} restores of the big site run back "
        "to back",
        ["", "req/s", "p50 ms", "p99 ms", "p99 ratio to idle"],
        [
            ["idle", idle.rps, idle.p50_ms, idle.p99_ms, ""],
            ["during restores", busy.rps, busy.p50_ms, busy.p99_ms,
             ratio(busy.p99_ms, idle.p99_ms)],
        ],
    )  # fmt: skip
    durations = ", ".join(f"{d:.1f}" for d in restores.done)
    print(
        f"restore wall seconds: {durations} ({', '.join(restores.statuses)}); "
        f"a restore was still running when the load ended: {still_running}"
    )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--plain":
        serve_plain(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backups", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--entities", type=int, default=100_000, help="size of restored site")
    parser.add_argument("--restores", type=int, default=6, help="empty destination sites")
    parser.add_argument("--no-restore", action="store_true", help="skip the restore part")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=CASES, help="the loads")
    parser.add_argument(
        "--observability",
        choices=["on", "off", "both"],
        default="both",
        help="metrics and request lines on, off, or both (two servers, the on/off ratio)",
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="alternating runs per server (both: 2, else 1)"
    )
    args = parser.parse_args()
    if args.rounds is None:
        args.rounds = 2 if args.observability == "both" else 1
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="recoverly-bench-") as tmp:
        asyncio.run(measure(args, Path(tmp)))


if __name__ == "__main__":
    main()
