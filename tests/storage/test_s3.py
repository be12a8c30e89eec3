from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from recoverly.storage import S3BlobStore, S3BucketConfig, StorageError
from recoverly.storage.s3 import MULTIPART_THRESHOLD

pytestmark = pytest.mark.slow


@pytest.fixture
def store(s3_endpoint: str, s3_bucket: str, s3_credentials: dict[str, str]) -> S3BlobStore:
    return S3BlobStore(
        bucket=s3_bucket,
        endpoint_url=s3_endpoint,
        prefix="backups",
        allow_private_endpoints=True,
        **s3_credentials,
    )


def write_random(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as file:
        for start in range(0, size, 1024 * 1024):
            chunk = os.urandom(min(1024 * 1024, size - start))
            digest.update(chunk)
            file.write(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


async def test_large_file_goes_up_in_parts_and_comes_back_identical(
    store: S3BlobStore, s3_client: Any, tmp_path: Path
) -> None:
    size = 20 * 1024 * 1024 + 12345
    source = tmp_path / "archive.zip"
    expected = await asyncio.to_thread(write_random, source, size)
    assert size > MULTIPART_THRESHOLD

    assert await store.put_file("org-1/backup-7.zip", source) == size

    head = s3_client.head_object(Bucket=store.config.bucket, Key="backups/org-1/backup-7.zip")
    assert head["ContentLength"] == size
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of three parts
    target = tmp_path / "copy.zip"
    await store.get_to_file("org-1/backup-7.zip", target)
    assert await asyncio.to_thread(sha256_of, target) == expected


async def test_small_file_round_trip_exists_size_and_delete(
    store: S3BlobStore, tmp_path: Path
) -> None:
    source = tmp_path / "small.bin"
    await asyncio.to_thread(source.write_bytes, b"recoverly" * 1000)

    assert not await store.exists("small.bin")
    assert await store.size("small.bin") is None
    assert await store.put_file("small.bin", source) == 9000
    assert await store.exists("small.bin")
    assert await store.size("small.bin") == 9000

    target = tmp_path / "back.bin"
    await store.get_to_file("small.bin", target)
    assert await asyncio.to_thread(target.read_bytes) == b"recoverly" * 1000

    await store.delete("small.bin")
    await store.delete("small.bin")
    assert not await store.exists("small.bin")


async def test_missing_object_is_a_storage_error_and_leaves_no_file(
    store: S3BlobStore, tmp_path: Path
) -> None:
    with pytest.raises(StorageError, match="NoSuchKey"):
        await store.get_to_file("missing.zip", tmp_path / "never.zip")
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []


async def test_unknown_bucket_is_a_storage_error(
    s3_endpoint: str, s3_credentials: dict[str, str], tmp_path: Path
) -> None:
    store = S3BlobStore(
        bucket="no-such-bucket",
        endpoint_url=s3_endpoint,
        allow_private_endpoints=True,
        **s3_credentials,
    )
    source = tmp_path / "x.bin"
    await asyncio.to_thread(source.write_bytes, b"x")
    with pytest.raises(StorageError, match="no-such-bucket"):
        await store.put_file("x.bin", source)


async def test_keys_are_validated(store: S3BlobStore) -> None:
    with pytest.raises(StorageError, match="invalid blob key"):
        await store.exists("../escape")
    with pytest.raises(StorageError, match="invalid blob key"):
        await store.delete("/absolute")


def test_bucket_config_keeps_the_secret_out_of_public_views() -> None:
    config = S3BucketConfig.from_dict(
        {
            "bucket": "acme",
            "region": "eu-west-1",
            "prefix": "/recoverly/",
            "access_key_id": "AKIDEXAMPLE",
            "secret_access_key": "very-secret",
        }
    )

    assert config.to_public_dict() == {
        "bucket": "acme",
        "endpoint_url": None,
        "region": "eu-west-1",
        "prefix": "recoverly",
        "access_key_id": "AKIDEXAMPLE",
    }
    assert "very-secret" not in repr(config)
    store = S3BlobStore.from_config(config)
    assert store.describe() == {
        "kind": "s3",
        "bucket": "acme",
        "endpoint_url": None,
        "region": "eu-west-1",
        "prefix": "recoverly",
    }
    assert S3BucketConfig.from_dict(store.describe()).bucket == "acme"


def test_bucket_config_rejects_bad_input_naming_the_field() -> None:
    with pytest.raises(StorageError, match="endpoint_url"):
        S3BucketConfig.from_dict({"bucket": "acme", "endpoint_url": "ftp://x"})
    with pytest.raises(StorageError, match="secret_key"):
        S3BucketConfig.from_dict({"bucket": "acme", "secret_key": "typo"})
