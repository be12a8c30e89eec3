from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from recoverly.products.archive_writer import ArchiveWriter
from recoverly.products.inspect import human_size, inspect_archive

LIMIT = 1024**3


def make_archive(path: Path, *, blob: bytes = b"attachment") -> Path:
    with ArchiveWriter(
        path, product="CONFLUENCE", source_instance={"url": "https://wiki.example.net"}
    ) as writer:
        with writer.records("confluence/spaces.jsonl", entity="spaces") as sink:
            for i in range(3):
                sink.write({"key": f"SP{i}"})
        with writer.records("confluence/pages.jsonl", entity="pages") as sink:
            for i in range(1234):
                sink.write({"id": i, "title": f"Page {i}"})
        writer.write_blob(blob)
    return path


def test_prints_the_manifest_and_confirms_checksums(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make_archive(tmp_path / "backup.zip")
    out = io.StringIO()

    code = inspect_archive(path, out=out, max_expansion_bytes=LIMIT, show_progress=True)

    text = out.getvalue()
    assert code == 0
    assert "Product:     CONFLUENCE" in text
    assert "url=https://wiki.example.net" in text
    assert "format_version 1" in text
    assert "spaces" in text and "pages" in text and "1,234" in text and "1,237" in text
    assert "confluence/pages.jsonl  1,234 records" in text
    assert "1 attachment blobs" in text
    assert text.rstrip().endswith("checksums OK")
    assert capsys.readouterr().err == ""  # small archive: no progress bar


def test_corrupted_archive_returns_1_and_says_why(tmp_path: Path) -> None:
    path = make_archive(tmp_path / "backup.zip")
    entry = zipfile.ZipFile(path).getinfo("confluence/pages.jsonl")
    data = bytearray(path.read_bytes())
    data[entry.header_offset + 200] ^= 0xFF  # inside the compressed records
    path.write_bytes(data)
    out = io.StringIO()

    code = inspect_archive(path, out=out, max_expansion_bytes=LIMIT, show_progress=False)

    assert code == 1
    assert "INVALID: member confluence/pages.jsonl is corrupt" in out.getvalue()
    assert "checksums OK" not in out.getvalue()


def test_truncated_archive_returns_1(tmp_path: Path) -> None:
    path = make_archive(tmp_path / "backup.zip")
    path.write_bytes(path.read_bytes()[:-100])
    out = io.StringIO()

    assert inspect_archive(path, out=out, max_expansion_bytes=LIMIT, show_progress=False) == 1
    assert "not a readable zip archive" in out.getvalue()


def test_large_archive_shows_a_progress_bar_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make_archive(tmp_path / "backup.zip", blob=os.urandom(9 * 1024 * 1024))

    code = inspect_archive(path, out=io.StringIO(), max_expansion_bytes=LIMIT, show_progress=True)

    assert code == 0
    assert "verifying" in capsys.readouterr().err


def test_human_size() -> None:
    assert human_size(512) == "512 B"
    assert human_size(1536) == "1.5 KiB"
    assert human_size(9 * 1024**3) == "9.0 GiB"
