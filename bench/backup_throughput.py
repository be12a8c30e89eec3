"""Backup throughput: ``export_instance`` against a plain zipfile + JSON Lines baseline.

1. Generates a Jira instance of N entities (default 200,000) in a fresh SQLite database.
2. Times ``export_instance`` on it (entities/s).
3. Baseline, same run and same rows: the standard library alone (``sqlite3`` reading the same
   columns in chunks, ``json.dumps`` per row, one ``ZIP_DEFLATED`` member per entity plus one
   per attachment blob). No checksums, no manifest, no async: the floor for this work.
4. Peak RSS of the export in child processes for N/4 and N entities (50,000 and 200,000 by
   default): memory should stay flat, so the ratio should be about 1.

Usage: ``.venv/bin/python bench/backup_throughput.py [--entities N] [--repeat R]``
(R timed runs, default 3, each export followed by its baseline; the best of each is shown).
Temporary files live in a temporary directory removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

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
from generate import generate_jira, plain_sqlite_path, temp_database

from recoverly.database import Database
from recoverly.models import ProductInstance, ProductKey
from recoverly.products.entities import entities_for
from recoverly.products.export import export_instance
from recoverly.settings import async_database_url

CHUNK = 2000
SCRIPT = Path(__file__).resolve()


async def run_export(db: Database, instance: ProductInstance, path: Path) -> Timing:
    """``export_instance`` of the instance, timed; items are the entities written."""
    with timed() as timing:
        manifest = await export_instance(
            db,
            instance=instance,
            path=path,
            include_attachments=True,
            include_users_and_groups=True,
            include_personal_spaces=False,
        )
    timing.items = sum(manifest.entity_counts.values())
    return timing


def baseline_export(db_path: Path, instance_id: int, out: Path) -> Timing:
    """The stdlib-only JSON Lines zip of the same rows and columns, timed."""
    with timed() as timing:
        connection = sqlite3.connect(db_path)
        try:
            with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for spec in entities_for(ProductKey.JIRA.value):
                    columns = ["id", *spec.fields, *spec.references]
                    if spec.blob_column:
                        columns.append(spec.blob_column)
                    cursor = connection.execute(
                        f"SELECT {', '.join(columns)} FROM {spec.table.name} "
                        "WHERE instance_id = ? ORDER BY id",
                        (instance_id,),
                    )
                    if spec.blob_column:
                        timing.items += _blobs_member(archive, cursor, columns, spec.member)
                        continue
                    with archive.open(spec.member, "w", force_zip64=True) as member:
                        while rows := cursor.fetchmany(CHUNK):
                            lines = [json.dumps(dict(zip(columns, r, strict=True))) for r in rows]
                            member.write(("\n".join(lines) + "\n").encode())
                            timing.items += len(rows)
        finally:
            connection.close()
    return timing


def _blobs_member(
    archive: zipfile.ZipFile, cursor: sqlite3.Cursor, columns: list[str], member: str
) -> int:
    """Attachments: each blob as its own member, then their records (one open member at once)."""
    lines = []
    while rows := cursor.fetchmany(64):
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            blob = record.pop(columns[-1])
            name = f"attachments/{record['sha256']}"
            if name not in archive.NameToInfo:
                archive.writestr(name, blob)
            lines.append(json.dumps(record))
    archive.writestr(member, "".join(line + "\n" for line in lines))
    return len(lines)


async def child(spec: dict[str, Any]) -> None:
    """In a child process: export one instance and report peak RSS."""
    db = Database(async_database_url(f"sqlite:///{spec['db']}"))
    async with db.session() as session:
        instance = await session.get(ProductInstance, spec["instance_id"])
    assert instance is not None
    setup_peak = peak_rss_mib()
    reset = reset_peak_rss()
    before = current_rss_mib()
    timing = await run_export(db, instance, Path(spec["out"]))
    peak = peak_rss_mib()
    await db.dispose()
    await asyncio.to_thread(Path(spec["out"]).unlink, missing_ok=True)
    result = {
        "entities": timing.items,
        "seconds": timing.wall,
        "setup_peak_mib": setup_peak,
        "peak_reset": reset,
        "rss_before_mib": before,
        "peak_mib": peak,
    }
    print(json.dumps(result))


async def main(args: argparse.Namespace) -> None:
    n = args.entities
    print(f"code: {code_version()}")
    with tempfile.TemporaryDirectory(prefix="recoverly-bench-backup-") as tmp:
        work = Path(tmp)
        async with temp_database(work, name="source") as db:
            site = await generate_jira(db, entities=n)
            print(f"generated {site.total:,} entities in {site.seconds:.1f} s ({site.counts})")
            db_path = plain_sqlite_path(db)

            pairs, sizes_mib = [], (0.0, 0.0)
            for attempt in range(1, args.repeat + 1):
                out, base_out = work / f"export-{attempt}.zip", work / f"baseline-{attempt}.zip"
                export = await run_export(db, site.instance, out)
                baseline = await asyncio.to_thread(
                    baseline_export, db_path, site.instance_id, base_out
                )
                pairs.append((export, baseline))
                sizes_mib = (out.stat().st_size / 2**20, base_out.stat().st_size / 2**20)
                out.unlink()
                base_out.unlink()
            print_table(
                f"Backup throughput, {pairs[0][0].items:,} entities on SQLite "
                f"(zip: export {sizes_mib[0]:.1f} MiB, baseline {sizes_mib[1]:.1f} MiB)",
                ["", "export ent/s", "baseline ent/s", "export/baseline", "export s",
                 "baseline s", "export cpu s", "baseline cpu s"],
                comparison_rows("SQLite", pairs),
            )  # fmt: skip

            sizes = sorted({max(1000, n // 4), n})
            measured: dict[int, dict[str, Any]] = {n: {"db": str(db_path), "id": site.instance_id}}
            async with temp_database(work, name="small") as small_db:
                for size in sizes:
                    if size not in measured:
                        small = await generate_jira(small_db, entities=size)
                        measured[size] = {
                            "db": str(plain_sqlite_path(small_db)),
                            "id": small.instance_id,
                        }
                results = {}
                for size in sizes:
                    spec = {
                        "db": measured[size]["db"],
                        "instance_id": measured[size]["id"],
                        "out": str(work / f"child-{size}.zip"),
                    }
                    results[size] = await asyncio.to_thread(run_child, SCRIPT, spec)
            print_rss_table("Export memory (child processes, MiB)", results)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=200_000, help="default 200,000")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (default 3)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    spec = child_spec(sys.argv)
    if spec is not None:
        asyncio.run(child(spec))
    else:
        asyncio.run(main(parse(sys.argv[1:])))
