"""The blob-store interface: where backup archives are kept (a local directory or an S3 bucket)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recoverly.errors import RecoverlyError


class StorageError(RecoverlyError):
    """A blob store operation failed; the message names the store, the key and the cause.

    ``kind`` sorts the cause for callers that explain it to users: ``missing_bucket``,
    ``denied`` (credentials), ``refused`` (endpoint not allowed), ``unreachable`` or ``other``.
    """

    def __init__(self, message: str, *, kind: str = "other") -> None:
        super().__init__(message)
        self.kind = kind


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative ``/``-separated path, else raise ``StorageError``."""
    parts = key.split("/") if isinstance(key, str) else []
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or re.match(r"[A-Za-z]:", key)
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise StorageError(f"invalid blob key {key!r}: use a relative path without '..'")
    return key


class BlobStore(ABC):
    """Stores files under string keys; files stream in and out, never whole in memory."""

    @abstractmethod
    async def put_file(self, key: str, path: Path) -> int:
        """Upload the file at ``path`` under ``key`` (replacing any blob there); return its size."""

    @abstractmethod
    async def get_to_file(self, key: str, path: Path) -> None:
        """Download ``key`` to ``path``; ``path`` appears only once complete."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""

    @abstractmethod
    async def exists(self, key: str) -> bool: ...

    @abstractmethod
    async def size(self, key: str) -> int | None:
        """The blob's size in bytes, or ``None`` if there is no such blob."""

    async def sizes(self, keys: Sequence[str]) -> list[int | None]:
        """``size`` of each key, with ``None`` also for a blob that cannot be read."""
        found: list[int | None] = []
        for key in keys:
            try:
                found.append(await self.size(key))
            except StorageError:
                found.append(None)
        return found

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Where blobs live, JSON-safe and free of secrets, to record with each stored copy."""
