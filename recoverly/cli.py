"""Command line: ``recoverly serve``, ``recoverly worker``, ``recoverly health`` and
``recoverly backup inspect``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
import urllib.request
from pathlib import Path

from recoverly.settings import Settings, get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recoverly", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API server (and the embedded job runner)")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8000)")
    serve.add_argument("--demo", action="store_true", help="seed the demo organizations once")
    serve.add_argument("--demo-scale", type=int, default=1, help="multiply the demo's data sizes")

    worker = commands.add_parser(
        "worker", help="run queue jobs (RECOVERLY_JOB_RUNNER=queue, PostgreSQL); no API"
    )
    worker.add_argument(
        "--concurrency", type=int, help="jobs at a time (RECOVERLY_JOB_CONCURRENCY)"
    )

    health = commands.add_parser("health", help="exit 0 if this container's process is healthy")
    health.add_argument(
        "--worker", action="store_true", help="check the worker's liveness file, not /healthz"
    )
    health.add_argument("--max-age", type=float, default=30.0, help="liveness file age limit (s)")

    backup = commands.add_parser("backup", help="backup archive tools")
    backup_commands = backup.add_subparsers(dest="backup_command", required=True)
    inspect = backup_commands.add_parser("inspect", help="print a manifest, verify checksums")
    inspect.add_argument("file", type=Path)
    inspect.add_argument("--no-progress", action="store_true", help="no progress bar")

    secrets = commands.add_parser("secrets", help="customer credentials at rest")
    secrets_commands = secrets.add_subparsers(dest="secrets_command", required=True)
    new_key = secrets_commands.add_parser(
        "new-key", help="print a new key entry to put first in RECOVERLY_SECRET_KEYS"
    )
    new_key.add_argument("kid", help="the key's ID, e.g. k2")
    secrets_commands.add_parser(
        "reencrypt", help="re-seal every stored credential with the first (active) key"
    )

    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "serve":
        return _serve(settings, args)
    if args.command == "worker":
        return _worker(settings, args)
    if args.command == "health":
        return _health(settings, args)
    if args.command == "secrets":
        return _secrets(settings, args)
    return _inspect(settings, args)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from recoverly.app import create_app
    from recoverly.services.system import build_runtime

    host = args.host or settings.host
    port = args.port or settings.port
    if args.demo:
        if args.demo_scale < 1:
            print("--demo-scale must be at least 1", file=sys.stderr)
            return 2
        asyncio.run(_seed(settings, args.demo_scale, f"http://{host}:{port}/graphql"))
    app = create_app(runtime=build_runtime(settings))
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        ws="websockets-sansio",
        ws_max_size=settings.max_websocket_message_bytes,
    )
    return 0


def _secrets(settings: Settings, args: argparse.Namespace) -> int:
    from recoverly.services.secrets import SecretError, new_key_line

    try:
        if args.secrets_command == "new-key":
            print(new_key_line(args.kid))
            return 0
        count = asyncio.run(_reencrypt(settings))
    except SecretError as error:
        print(f"recoverly secrets: {error}", file=sys.stderr)
        return 2
    print(f"re-sealed {count} stored credentials with the active key")
    return 0


async def _reencrypt(settings: Settings) -> int:
    from recoverly.services.system import build_runtime, migrate_database, reseal_secrets

    runtime = build_runtime(settings, with_scheduler=False)
    try:
        await migrate_database(runtime.db)
        return await reseal_secrets(runtime, rotate=True)
    finally:
        await runtime.db.dispose()


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    if settings.job_runner != "queue":
        print("recoverly worker needs RECOVERLY_JOB_RUNNER=queue (and PostgreSQL)", file=sys.stderr)
        return 2
    if args.concurrency is not None:
        settings = settings.model_copy(update={"job_concurrency": args.concurrency})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    return asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> int:
    from recoverly.services.system import run_worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return await run_worker(settings, stop)


def _health(settings: Settings, args: argparse.Namespace) -> int:
    """For container health checks: the API's ``/healthz``, or a worker's liveness file."""
    if args.worker:
        path = settings.worker_heartbeat_file
        try:
            beat = json.loads(path.read_text()) if path else None
        except (OSError, ValueError):
            beat = None
        healthy = beat is not None and time.time() - beat["at"] < args.max_age
        return 0 if healthy else 1
    url = f"http://127.0.0.1:{settings.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


async def _seed(settings: Settings, scale: int, graphql_url: str) -> None:
    from recoverly.demo import seed_demo, seed_demo_backups
    from recoverly.services.system import build_runtime, migrate_database

    runtime = build_runtime(settings)
    await migrate_database(runtime.db)
    try:
        info = await seed_demo(
            runtime.db,
            scale=scale,
            demo_token=settings.demo_token,
            other_token=settings.demo_other_token,
        )
        backups = await seed_demo_backups(runtime, info)
    finally:
        await runtime.db.dispose()
    if backups:
        print(f"Recoverly demo: {backups} backups made", flush=True)
    print("Recoverly demo " + ("seeded" if info.created else "already seeded"), flush=True)
    print(f"  GraphiQL:            {graphql_url}")
    print(f"  Acme admin token:    {info.admin_token}   (admin@acme.example)")
    print(f"  Globex admin token:  {info.other_token}   (admin@globex.example)")
    print('  In GraphiQL, set the header {"Authorization": "Bearer <token>"}', flush=True)


def _inspect(settings: Settings, args: argparse.Namespace) -> int:
    from recoverly.products.inspect import inspect_archive

    return inspect_archive(
        args.file,
        out=sys.stdout,
        max_expansion_bytes=settings.archive_max_expansion_bytes,
        show_progress=not args.no_progress,
    )


if __name__ == "__main__":
    raise SystemExit(main())
