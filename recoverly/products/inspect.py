"""``recoverly backup inspect FILE``: show what an archive holds and check every checksum."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from recoverly.products.archive import BLOB_PREFIX, ArchiveError, Manifest
from recoverly.products.archive_reader import ArchiveReader

PROGRESS_MIN_BYTES = 8 * 1024 * 1024


def inspect_archive(
    path: Path, *, out: TextIO, max_expansion_bytes: int, show_progress: bool
) -> int:
    """Print the manifest, verify all members; return 0 if the archive is valid, else 1."""
    try:
        with ArchiveReader(path, max_expansion_bytes=max_expansion_bytes) as reader:
            _print_manifest(Path(path), reader.manifest, out)
            show = show_progress and reader.manifest.size_bytes > PROGRESS_MIN_BYTES
            with _progress_bar(reader.manifest, enabled=show) as progress:
                reader.verify(progress)
    except ArchiveError as exc:
        print(f"INVALID: {exc}", file=out)
        return 1
    print("checksums OK", file=out)
    return 0


def _print_manifest(path: Path, manifest: Manifest, out: TextIO) -> None:
    rows = [
        ("Archive", f"{path.name} ({human_size(manifest.size_bytes)})"),
        ("Format", f"recoverly-backup, format_version {manifest.format_version}"),
        ("Product", manifest.product),
        ("Source", _pairs(manifest.source_instance)),
        ("Created at", manifest.created_at.isoformat()),
        ("Options", _pairs(manifest.options)),
    ]
    for label, value in rows:
        print(f"{label + ':':<12} {value}", file=out)
    print("Entity counts:", file=out)
    counts = {**manifest.entity_counts, "total": manifest.total_records}
    width = max(len(name) for name in counts)
    for name, count in counts.items():
        print(f"  {name:<{width}}  {count:>12,}", file=out)
    print("Members:", file=out)
    blobs = [m for name, m in manifest.members.items() if name.startswith(BLOB_PREFIX)]
    for name, member in manifest.members.items():
        if not name.startswith(BLOB_PREFIX):
            records = "" if member.records is None else f"{member.records:,} records, "
            print(f"  {name}  {records}{human_size(member.size)}  sha256 {member.sha256}", file=out)
    if blobs:
        total = human_size(sum(m.size for m in blobs))
        print(f"  {BLOB_PREFIX}<sha256>  {len(blobs):,} attachment blobs, {total}", file=out)


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in values.items()) or "-"


@contextlib.contextmanager
def _progress_bar(
    manifest: Manifest, *, enabled: bool
) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    with tqdm(
        total=manifest.total_member_bytes,
        desc="verifying",
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
    ) as bar:

        def update(done: int, total: int) -> None:
            bar.update(done - bar.n)

        yield update


def human_size(size: int) -> str:
    """Bytes as a short human-readable string, e.g. ``12.3 MiB``."""
    if size < 1024:
        return f"{size} B"
    value, unit = size / 1024, "KiB"
    for larger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:.1f} {unit}"
