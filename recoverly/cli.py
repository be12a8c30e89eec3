"""Command line: ``recoverly serve``, ``recoverly worker`` and ``recoverly backup inspect``."""

from __future__ import annotations

import argparse
import asyncio
import sys
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

    backup = commands.add_parser("backup", help="backup archive tools")
    backup_commands = backup.add_subparsers(dest="backup_command", required=True)
    inspect = backup_commands.add_parser("inspect", help="print a manifest, verify checksums")
    inspect.add_argument("file", type=Path)
    inspect.add_argument("--no-progress", action="store_true", help="no progress bar")

    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "serve":
        return _serve(settings, args)
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
    uvicorn.run(app, host=host, port=port, log_level="info", ws="websockets-sansio")
    return 0


async def _seed(settings: Settings, scale: int, graphql_url: str) -> None:
    from recoverly.demo import seed_demo, seed_demo_backups
    from recoverly.services.system import build_runtime

    runtime = build_runtime(settings)
    await runtime.db.migrate()
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
