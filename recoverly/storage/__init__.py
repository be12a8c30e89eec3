"""Blob stores for backup archives: a local directory (internal storage) and S3 (customer)."""

from recoverly.storage.base import BlobStore, StorageError, check_key
from recoverly.storage.local import LocalBlobStore
from recoverly.storage.s3 import S3BlobStore, S3BucketConfig

__all__ = [
    "BlobStore",
    "LocalBlobStore",
    "S3BlobStore",
    "S3BucketConfig",
    "StorageError",
    "check_key",
]
