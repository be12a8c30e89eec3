from __future__ import annotations

import hashlib
import json
import os
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from recoverly.products.archive import ArchiveError, Manifest
from recoverly.products.archive_reader import ArchiveReader
from recoverly.products.archive_writer import ArchiveWriter

LIMIT = 1024**3
SOURCE = {"id": 3, "url": "https://acme.example.net", "product": "JIRA"}


def issue(i: int) -> dict[str, Any]:
    return {"id": i, "key": f"ACME-{i}", "summary": f"Ticket ✓ {i}", "labels": ["a", str(i % 7)]}


def write_archive(path: Path, *, issues: int = 500, blobs: tuple[bytes, ...] = ()) -> Manifest:
    with ArchiveWriter(path, product="JIRA", source_instance=SOURCE) as writer:
        with writer.records("jira/issues.jsonl", entity="issues") as sink:
            for i in range(issues):
                sink.write(issue(i))
        for blob in blobs:
            writer.write_blob(blob)
        return writer.close()


def rebuild(
    source: Path,
    target: Path,
    *,
    manifest: Callable[[dict[str, Any]], None] = lambda raw: None,
    extra: dict[str, bytes] | None = None,
    drop: tuple[str, ...] = (),
) -> Path:
    """Copy an archive entry by entry, editing the manifest, adding or dropping entries."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for name, data in (extra or {}).items():
            new.writestr(name, data)
        for entry in old.infolist():
            if entry.filename in drop:
                continue
            data = old.read(entry)
            if entry.filename == "manifest.json":
                raw = json.loads(data)
                manifest(raw)
                data = json.dumps(raw).encode()
            new.writestr(entry.filename, data)
    return target


def open_and_verify(path: Path, *, limit: int = LIMIT) -> Manifest:
    with ArchiveReader(path, max_expansion_bytes=limit) as reader:
        return reader.verify()


def test_round_trip_of_records_and_blobs(tmp_path: Path) -> None:
    path = tmp_path / "backup.zip"
    created = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    users = [{"id": i, "name": f"user {i}", "active": i % 2 == 0} for i in range(40)]
    comments = [{"id": i, "issue": i // 3, "body": "line\nbreak \u2028 ok"} for i in range(300)]
    with ArchiveWriter(
        path,
        product="JIRA",
        source_instance=SOURCE,
        options={"include_attachments": True},
        created_at=created,
    ) as writer:
        for member, entity, records in (
            ("jira/issues.jsonl", "issues", [issue(i) for i in range(1000)]),
            ("jira/comments.jsonl", "comments", comments),
            ("directory/users.jsonl", "users", users),
        ):
            with writer.records(member, entity=entity) as sink:
                for record in records:
                    sink.write(record)
        first = writer.write_blob(b"PNG" * 5000)
        assert writer.write_blob(b"PNG" * 5000) == first  # stored once
        empty = writer.write_blob(b"")
        written = writer.close()

    assert written.entity_counts == {"issues": 1000, "comments": 300, "users": 40}
    assert written.total_records == 1340
    assert written.size_bytes == path.stat().st_size
    assert not path.with_name("backup.zip.partial").exists()
    assert zipfile.ZipFile(path).namelist()[-1] == "manifest.json"
    with ArchiveReader(path, max_expansion_bytes=LIMIT) as reader:
        assert reader.verify() == written
        assert reader.manifest.created_at == created
        assert reader.manifest.options == {"include_attachments": True}
        assert reader.manifest.source_instance == SOURCE
        assert list(reader.records("jira/issues.jsonl")) == [issue(i) for i in range(1000)]
        assert list(reader.records("jira/comments.jsonl")) == comments
        assert list(reader.records("directory/users.jsonl")) == users
        assert reader.read_blob(first) == b"PNG" * 5000
        assert reader.read_blob(empty) == b""
        assert len(reader.members()) == 5
    assert Manifest.from_json(written.to_json()) == written


def test_verify_reports_progress_up_to_the_total(tmp_path: Path) -> None:
    path = tmp_path / "backup.zip"
    manifest = write_archive(path, issues=50_000, blobs=(os.urandom(100_000),))
    calls: list[tuple[int, int]] = []

    with ArchiveReader(path, max_expansion_bytes=LIMIT) as reader:
        reader.verify(lambda done, total: calls.append((done, total)))

    total = sum(m.size for m in manifest.members.values())
    assert len(calls) > 2
    assert calls[-1] == (total, total)


def test_resume_from_a_record_index(tmp_path: Path) -> None:
    path = tmp_path / "backup.zip"
    write_archive(path, issues=100)

    with ArchiveReader(path, max_expansion_bytes=LIMIT) as reader:
        resumed = list(reader.iter_records("jira/issues.jsonl", start=40))

    assert [index for index, _ in resumed] == list(range(40, 100))
    assert [record for _, record in resumed] == [issue(i) for i in range(40, 100)]


def test_a_writer_that_fails_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "backup.zip"

    with (
        pytest.raises(RuntimeError, match="source went away"),
        ArchiveWriter(path, product="CONFLUENCE", source_instance=SOURCE) as writer,
        writer.records("confluence/pages.jsonl", entity="pages") as sink,
    ):
        sink.write({"id": 1})
        raise RuntimeError("source went away")

    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_unsafe_names_and_overlapping_members(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path / "b.zip", product="JIRA", source_instance=SOURCE) as writer:
        with (
            pytest.raises(ArchiveError, match=r"unsafe member path '\.\./x'"),
            writer.records("../x", entity="x"),
        ):
            pass
        with (
            writer.records("jira/issues.jsonl", entity="issues"),
            pytest.raises(ArchiveError, match="while another member"),
        ):
            writer.write_blob(b"x")
        with (
            pytest.raises(ArchiveError, match="duplicate member"),
            writer.records("jira/issues.jsonl", entity="issues"),
        ):
            pass


def test_flipped_byte_in_compressed_data_is_caught_naming_the_member(tmp_path: Path) -> None:
    path = tmp_path / "backup.zip"
    write_archive(path, issues=5000)
    entry = zipfile.ZipFile(path).getinfo("jira/issues.jsonl")
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack(
        "<HH", data[entry.header_offset + 26 : entry.header_offset + 30]
    )
    start = entry.header_offset + 30 + name_len + extra_len
    data[start + entry.compress_size // 2] ^= 0x40
    path.write_bytes(data)

    with pytest.raises(ArchiveError, match=r"jira/issues\.jsonl"):
        open_and_verify(path)


def test_manifest_checksum_mismatch(tmp_path: Path) -> None:
    path = write_archive_and_rebuild(
        tmp_path, manifest=lambda raw: raw["members"]["jira/issues.jsonl"].update(sha256="0" * 64)
    )
    with pytest.raises(ArchiveError, match=r"checksum mismatch in member jira/issues\.jsonl"):
        open_and_verify(path)


def test_manifest_size_mismatch(tmp_path: Path) -> None:
    def grow(raw: dict[str, Any]) -> None:
        raw["members"]["jira/issues.jsonl"]["size"] += 10

    path = write_archive_and_rebuild(tmp_path, manifest=grow)
    with pytest.raises(ArchiveError, match=r"size mismatch in member jira/issues\.jsonl"):
        open_and_verify(path)


@pytest.mark.parametrize("cut", [0, 1, 30, 0.25, 0.5, 0.9, -60, -22, -1])
def test_truncated_archive_is_rejected(tmp_path: Path, cut: float) -> None:
    path = tmp_path / "backup.zip"
    write_archive(path, issues=2000, blobs=(os.urandom(20_000),))
    data = path.read_bytes()
    keep = int(len(data) * cut) if isinstance(cut, float) else cut % len(data)
    path.write_bytes(data[:keep])

    with pytest.raises(ArchiveError):
        open_and_verify(path)


def test_not_a_zip_at_all(tmp_path: Path) -> None:
    path = tmp_path / "backup.zip"
    path.write_bytes(b"PK definitely not a zip" * 100)
    with pytest.raises(ArchiveError, match="not a readable zip archive"):
        open_and_verify(path)


@pytest.mark.parametrize("evil", ["../evil", "/abs", "jira/../../evil", "C:/windows", "a\\b"])
@pytest.mark.parametrize("where", ["zip", "manifest"])
def test_unsafe_member_paths_are_rejected_naming_the_path(
    tmp_path: Path, evil: str, where: str
) -> None:
    def declare(raw: dict[str, Any]) -> None:
        raw["members"][evil] = {"sha256": hashlib.sha256(b"x").hexdigest(), "size": 1}

    if where == "zip":
        path = write_archive_and_rebuild(tmp_path, extra={evil: b"x"})
    else:
        path = write_archive_and_rebuild(tmp_path, manifest=declare)

    with pytest.raises(ArchiveError, match="unsafe member path") as caught:
        open_and_verify(path)
    assert repr(evil) in str(caught.value)


def test_unknown_format_version_is_rejected_naming_it(tmp_path: Path) -> None:
    path = write_archive_and_rebuild(tmp_path, manifest=lambda raw: raw.update(format_version=99))
    with pytest.raises(ArchiveError, match=r"format_version 99\b.* reads format_version 1$"):
        open_and_verify(path)


def test_missing_manifest(tmp_path: Path) -> None:
    path = write_archive_and_rebuild(tmp_path, drop=("manifest.json",))
    with pytest.raises(ArchiveError, match=r"no manifest\.json"):
        open_and_verify(path)


def test_member_not_in_the_manifest(tmp_path: Path) -> None:
    path = write_archive_and_rebuild(tmp_path, extra={"jira/secret.jsonl": b"{}\n"})
    with pytest.raises(ArchiveError, match=r"jira/secret\.jsonl is in the archive but not in"):
        open_and_verify(path)


def test_manifest_member_missing_from_the_archive(tmp_path: Path) -> None:
    path = write_archive_and_rebuild(tmp_path, drop=("jira/issues.jsonl",))
    with pytest.raises(ArchiveError, match=r"jira/issues\.jsonl is in the manifest but missing"):
        open_and_verify(path)


def test_expansion_beyond_the_limit_is_rejected_on_open(tmp_path: Path) -> None:
    path = tmp_path / "backup.zip"
    write_archive(path, issues=1000)
    with pytest.raises(ArchiveError, match="beyond the limit of 10000 bytes"):
        ArchiveReader(path, max_expansion_bytes=10_000)


def test_a_manifest_that_understates_sizes_is_stopped_while_streaming(tmp_path: Path) -> None:
    # ~3 MiB of records, but the manifest claims the member is 1000 bytes.
    def understate(raw: dict[str, Any]) -> None:
        raw["members"]["jira/issues.jsonl"]["size"] = 1000

    path = write_archive_and_rebuild(tmp_path, issues=40_000, manifest=understate)

    # The zip headers still tell the truth, so a small limit catches it on open...
    with pytest.raises(ArchiveError, match="zip headers declare"):
        ArchiveReader(path, max_expansion_bytes=2_000_000)
    # ...and with a generous limit, reading stops at the declared size, before any record.
    seen = []
    with ArchiveReader(path, max_expansion_bytes=LIMIT) as reader:
        with pytest.raises(ArchiveError, match="expands beyond 1000 bytes"):
            for record in reader.records("jira/issues.jsonl"):
                seen.append(record)
        with pytest.raises(ArchiveError, match="expands beyond 1000 bytes"):
            reader.verify()
    assert seen == []


def test_a_zip_header_that_understates_sizes_cannot_inflate_a_bomb(tmp_path: Path) -> None:
    # 64 MiB of records deflate to ~64 KiB; both the manifest and the zip headers claim 1000 bytes.
    bomb = b"{}\n" * (64 * 1024 * 1024 // 3)
    path = tmp_path / "bomb.zip"
    manifest = {
        "format": "recoverly-backup",
        "format_version": 1,
        "product": "JIRA",
        "source_instance": {},
        "created_at": "2025-01-01T00:00:00+00:00",
        "options": {},
        "entity_counts": {"issues": 333},
        "members": {
            "jira/issues.jsonl": {
                "sha256": hashlib.sha256(bomb[:1000]).hexdigest(),
                "size": 1000,
                "records": 333,
            }
        },
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("jira/issues.jsonl", bomb)
        zf.writestr("manifest.json", json.dumps(manifest))
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature)
        data[at + offset : at + offset + 4] = struct.pack("<I", 1000)
    path.write_bytes(data)

    with (
        ArchiveReader(path, max_expansion_bytes=10_000) as reader,
        pytest.raises(ArchiveError, match=r"jira/issues\.jsonl") as caught,
    ):
        reader.verify()
    assert "Bad CRC-32" in str(caught.value)  # zipfile stops at the header size; the CRC catches it


def test_streaming_keeps_memory_flat(tmp_path: Path) -> None:
    # 50,000 records (~4 MB of JSON lines) held at once take ~36 MB of Python objects;
    # streaming them peaks at ~6.5 MB, buffers included.
    path = tmp_path / "big.zip"
    tracemalloc.start()
    try:
        manifest = write_archive(path, issues=50_000)
        with ArchiveReader(path, max_expansion_bytes=LIMIT) as reader:
            count = sum(1 for _ in reader.records("jira/issues.jsonl"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == manifest.total_records == 50_000
    assert manifest.members["jira/issues.jsonl"].size > 3_900_000
    assert peak < 12 * 1024 * 1024


def write_archive_and_rebuild(tmp_path: Path, *, issues: int = 500, **changes: Any) -> Path:
    original = tmp_path / "original.zip"
    write_archive(original, issues=issues)
    return rebuild(original, tmp_path / "crafted.zip", **changes)
