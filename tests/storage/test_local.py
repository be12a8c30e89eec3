from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from recoverly.storage import LocalBlobStore, StorageError


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "storage")


async def test_put_and_get_round_trip_byte_for_byte(store: LocalBlobStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    source = tmp_path / "archive.zip"
    await asyncio.to_thread(source.write_bytes, data)

    assert await store.put_file("org-1/backups/7.zip", source) == len(data)
    assert await store.exists("org-1/backups/7.zip")
    assert await store.size("org-1/backups/7.zip") == len(data)

    target = tmp_path / "restore" / "7.zip"
    await store.get_to_file("org-1/backups/7.zip", target)
    assert await asyncio.to_thread(target.read_bytes) == data


async def test_put_replaces_atomically_and_leaves_no_temp_files(
    store: LocalBlobStore, tmp_path: Path
) -> None:
    source = tmp_path / "a.bin"
    for content in (b"first", b"second"):
        await asyncio.to_thread(source.write_bytes, content)
        await store.put_file("a.bin", source)

    files = await asyncio.to_thread(lambda: sorted(p.name for p in store.root.iterdir()))
    assert files == ["a.bin"]
    assert await asyncio.to_thread(store.path_for("a.bin").read_bytes) == b"second"


async def test_delete_is_idempotent(store: LocalBlobStore, tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    await asyncio.to_thread(source.write_bytes, b"x")
    await store.put_file("a.bin", source)

    await store.delete("a.bin")
    await store.delete("a.bin")

    assert not await store.exists("a.bin")
    assert await store.size("a.bin") is None


async def test_missing_blob_is_a_storage_error(store: LocalBlobStore, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"no blob 'nope\.zip'"):
        await store.get_to_file("nope.zip", tmp_path / "out.zip")


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "a\\b", "", "a//b", "C:/x"])
async def test_rejects_keys_that_could_escape_the_root(
    store: LocalBlobStore, tmp_path: Path, key: str
) -> None:
    source = tmp_path / "a.bin"
    await asyncio.to_thread(source.write_bytes, b"x")
    with pytest.raises(StorageError, match="invalid blob key"):
        await store.put_file(key, source)
    with pytest.raises(StorageError, match="invalid blob key"):
        await store.delete(key)


def test_describe_names_the_root(store: LocalBlobStore) -> None:
    assert store.describe() == {"kind": "local", "root": str(store.root)}
