"""Fetching a backup's archive from where it lives (internal or customer storage)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from recoverly.models import BackupCopy, BackupLocation
from recoverly.services.runtime import Runtime
from recoverly.services.secrets import open_bucket
from recoverly.storage import BlobStore, LocalBlobStore, S3BlobStore, S3BucketConfig


def customer_store(runtime: Runtime, config: dict[str, Any]) -> BlobStore:
    """The customer's bucket: S3-compatible, or (``"kind": "local"``, for the demo) a
    directory standing in for one. Endpoints follow the SSRF rules of the settings."""
    if config.get("kind") == "local":
        return LocalBlobStore(Path(config["root"]))
    return S3BlobStore.from_config(
        S3BucketConfig.from_dict(open_bucket(runtime.secrets, config)),
        allow_private_endpoints=runtime.settings.allow_private_endpoints,
    )


def store_for(runtime: Runtime, copy: BackupCopy) -> BlobStore:
    if copy.location == BackupLocation.INTERNAL_STORAGE:
        return runtime.internal_store
    return customer_store(runtime, copy.bucket or {})


@asynccontextmanager
async def local_archive(runtime: Runtime, copy: BackupCopy, *, name: str) -> AsyncIterator[Path]:
    """A local path to the copy's archive: in place for the local store, else a download
    into the work directory that is removed afterwards."""
    store = store_for(runtime, copy)
    if isinstance(store, LocalBlobStore):
        yield store.path_for(copy.key)
        return
    work_dir = runtime.settings.data_dir / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / name
    try:
        await store.get_to_file(copy.key, path)
        yield path
    finally:
        path.unlink(missing_ok=True)
