"""Internal storage: blobs as files under one root directory, written atomically."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recoverly.files import fsync_directory
from recoverly.storage.base import BlobStore, StorageError, check_key

_COPY_CHUNK = 1024 * 1024


class LocalBlobStore(BlobStore):
    """Each key is a file under ``root``; a write goes to a temp file, is fsynced, then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        """The file that holds ``key`` (which may not exist yet)."""
        return self.root / check_key(key)

    async def put_file(self, key: str, path: Path) -> int:
        target = self.path_for(key)
        return await asyncio.to_thread(self._copy, Path(path), target, f"store {key!r}")

    async def get_to_file(self, key: str, path: Path) -> None:
        source = self.path_for(key)
        if not await asyncio.to_thread(source.is_file):
            raise StorageError(f"no blob {key!r} in {self.root}")
        await asyncio.to_thread(self._copy, source, Path(path), f"fetch {key!r}")

    async def delete(self, key: str) -> None:
        target = self.path_for(key)
        try:
            await asyncio.to_thread(target.unlink, missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {key!r} from {self.root}: {exc}") from exc

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def size(self, key: str) -> int | None:
        target = self.path_for(key)
        try:
            stat = await asyncio.to_thread(target.stat)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot stat {key!r} in {self.root}: {exc}") from exc
        return stat.st_size

    async def sizes(self, keys: Sequence[str]) -> list[int | None]:
        # One worker thread for them all: a stat is far cheaper than a thread hand-off.
        paths = [self.path_for(key) for key in keys]
        return await asyncio.to_thread(lambda: [_size_or_none(path) for path in paths])

    def describe(self) -> dict[str, Any]:
        return {"kind": "local", "root": str(self.root)}

    @staticmethod
    def _copy(source: Path, target: Path, action: str) -> int:
        """Copy ``source`` to ``target`` via a fsynced temp file and an atomic rename."""
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with source.open("rb") as src, temp.open("wb") as dst:
                shutil.copyfileobj(src, dst, _COPY_CHUNK)
                dst.flush()
                os.fsync(dst.fileno())
                size = dst.tell()
            os.replace(temp, target)
            fsync_directory(target.parent)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise StorageError(f"cannot {action} ({source} -> {target}): {exc}") from exc
        return size


def _size_or_none(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
