"""Command line: ``recoverly serve``, ``recoverly worker``, ``recoverly health`` and
``recoverly backup inspect``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from recoverly.errors import RecoverlyError
from recoverly.settings import Settings, get_settings

if TYPE_CHECKING:
    from recoverly.services.runtime import Runtime


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
    health.add_argument(
        "--ready",
        action="store_true",
        help="check /readyz (database, migrations, jobs); a worker's needs RECOVERLY_METRICS_PORT",
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
    try:
        settings = get_settings()
    except ValidationError as error:
        first = error.errors()[0]
        name = "RECOVERLY_" + "_".join(str(part) for part in first["loc"]).upper()
        return _fail(f"invalid setting {name}: {first['msg']}")
    if args.command in ("serve", "worker"):
        try:  # before the imports a server needs: a typo fails at once
            settings.check()
        except ValueError as error:
            return _fail(f"invalid configuration: {error}")
    if args.command == "serve":
        return _serve(settings, args)
    if args.command == "worker":
        return _worker(settings, args)
    if args.command == "health":
        return _health(settings, args)
    if args.command == "secrets":
        return _secrets(settings, args)
    return _inspect(settings, args)


def _observe(settings: Settings, service: str) -> None:
    """Logs and (when the OTEL_* variables ask for them) traces for this process."""
    from recoverly.observability.logs import configure_logging
    from recoverly.observability.tracing import configure_tracing

    configure_logging(settings)
    configure_tracing(settings, service=service)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    """Bind the port, check the database (migrating it) and seed the demo, then serve.

    Each step fails with one line and exit status 2, before any later step starts."""
    import uvicorn

    from recoverly.app import create_app
    from recoverly.observability.tracing import shutdown_tracing
    from recoverly.services.system import build_runtime

    _observe(settings, "recoverly-api")
    host = args.host or settings.host
    port = args.port or settings.port
    if args.demo and args.demo_scale < 1:
        return _fail("--demo-scale must be at least 1")
    try:
        listener = _bind(host, port)
    except OSError as error:
        return _fail(f"cannot listen on {host}:{port}: {error.strerror or error}")
    try:
        demo = args.demo_scale if args.demo else None
        asyncio.run(
            _prepare(settings, demo_scale=demo, graphql_url=f"http://{host}:{port}/graphql")
        )
        runtime = build_runtime(settings)
    except StartupError as error:
        listener.close()
        return _fail(str(error))
    # No permessage-deflate: progress frames are small, and compressing each one for each
    # subscriber cost more than sending it.
    config = uvicorn.Config(
        create_app(runtime=runtime),
        log_config=None,
        access_log=False,  # the request log's lines replace uvicorn's access lines
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=settings.max_websocket_message_bytes,
    )
    tune_gc()
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        shutdown_tracing()
    return 0


# Container allocations between two young-generation collections (CPython's default: 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Before a long-running process serves: what the imports and the set-up made is moved
    out of the collector's sight (``gc.freeze``), and young collections come less often.

    With CPython's defaults, a restore's chunks of records (tens of thousands of dicts, alive
    for one chunk) were promoted to the old generation and set off full collections over
    every object of the process, at 1,000 websocket connections 0.3 to 0.9 s each, several per
    restore, with the event loop stopped. Reference counting still frees all garbage that is
    not cyclic at once; cycles wait a little longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


class StartupError(RecoverlyError):
    """A setting or the database keeps the server from starting: said in one line."""


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
    except OSError:
        listener.close()
        raise
    return listener


async def _prepare(
    settings: Settings,
    *,
    worker: bool = False,
    demo_scale: int | None = None,
    graphql_url: str = "",
) -> None:
    """Migrate the database (proving it is reachable) and, given a ``demo_scale``, seed the
    demo; a bad setting or an unusable database is a StartupError."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from recoverly.services.system import build_runtime, migrate_database

    try:
        runtime = build_runtime(settings, worker=worker)
    except (ValueError, SQLAlchemyError) as error:
        raise StartupError(f"invalid configuration: {error}") from None
    try:
        await migrate_database(runtime.db)
    except (OSError, SQLAlchemyError) as error:
        given = settings.database_url or settings.resolved_database_url()
        url = make_url(given).render_as_string(hide_password=True)
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        await runtime.db.dispose()
        raise StartupError(f"cannot use the database {url}: {reason}") from None
    try:
        if demo_scale is not None:
            await _seed(runtime, settings, demo_scale, graphql_url)
    finally:
        await runtime.db.dispose()


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
        return _fail("recoverly worker needs RECOVERLY_JOB_RUNNER=queue (and PostgreSQL)")
    if args.concurrency is not None:
        settings = settings.model_copy(update={"job_concurrency": args.concurrency})
    from recoverly.observability.tracing import shutdown_tracing

    _observe(settings, "recoverly-worker")
    try:
        asyncio.run(_prepare(settings, worker=True))
    except StartupError as error:
        return _fail(str(error))
    tune_gc()
    try:
        return asyncio.run(_run_worker(settings))
    finally:
        shutdown_tracing()


async def _run_worker(settings: Settings) -> int:
    from recoverly.monitoring import metrics_server
    from recoverly.services.system import run_worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    port = settings.metrics_port
    if port is None:
        return await run_worker(settings, stop)
    return await run_worker(settings, stop, probes=lambda runtime: metrics_server(runtime, port))


def _health(settings: Settings, args: argparse.Namespace) -> int:
    """For container health checks: the API's ``/healthz`` or ``/readyz``, a worker's
    liveness file or its ``/readyz`` (on its metrics port)."""
    if args.ready:
        port = settings.metrics_port if args.worker else settings.port
        if port is None:
            print("a worker serves /readyz only with RECOVERLY_METRICS_PORT", file=sys.stderr)
            return 2
        return _probe(f"http://127.0.0.1:{port}/readyz")
    if args.worker:
        path = settings.worker_heartbeat_file
        try:
            beat = json.loads(path.read_text()) if path else None
        except (OSError, ValueError):
            beat = None
        healthy = beat is not None and time.time() - beat["at"] < args.max_age
        return 0 if healthy else 1
    return _probe(f"http://127.0.0.1:{settings.port}/healthz")


def _probe(url: str) -> int:
    """0 when ``url`` answers 200; the answer (which check fails) is printed either way."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            print(response.read().decode(errors="replace"))
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as error:
        print(error.read().decode(errors="replace"))
        return 1
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 1


async def _seed(runtime: Runtime, settings: Settings, scale: int, graphql_url: str) -> None:
    from recoverly.demo import seed_demo, seed_demo_backups

    info = await seed_demo(
        runtime.db,
        scale=scale,
        demo_token=settings.demo_token,
        other_token=settings.demo_other_token,
    )
    backups = await seed_demo_backups(runtime, info)
    if backups:
        print(f"Recoverly demo: {backups} backup{'s' * (backups != 1)} made", flush=True)
    if info.created:
        print("Recoverly demo seeded", flush=True)
    elif backups:
        print("Recoverly demo completed: an earlier seed had been interrupted", flush=True)
    else:
        print("Recoverly demo already seeded", flush=True)
    print(f"  Console:             {graphql_url.removesuffix('graphql')}#token={info.admin_token}")
    print(f"  GraphiQL:            {graphql_url}#token={info.admin_token}")
    print(f"  Acme admin token:    {info.admin_token}   (admin@acme.example)")
    print(f"  Globex admin token:  {info.other_token}   (admin@globex.example)")
    print(
        "  Both links sign in as the Acme admin (the token stays in the browser);",
        flush=True,
    )
    print("  or paste a token into GraphiQL's token field.", flush=True)


def _fail(message: str) -> int:
    print(f"recoverly: {message}", file=sys.stderr, flush=True)
    return 2


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
