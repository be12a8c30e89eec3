"""Write a backup archive as a stream: records and blobs go straight into the zip, not memory.

The zip is built at ``<path>.partial`` and renamed over ``path`` only once the manifest is written
and the file fsynced, so a crash or an exception never leaves a half archive at ``path``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from recoverly.files import fsync_directory
from recoverly.products.archive import (
    BLOB_PREFIX,
    MANIFEST_NAME,
    ArchiveError,
    Manifest,
    MemberInfo,
    blob_name,
    check_member_name,
    check_product,
)

_FLUSH_BYTES = 256 * 1024


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
)


class RecordSink:
    """Appends JSON records, one per line, to one member; counts and hashes as it streams."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._digest = hashlib.sha256()
        self.count = 0
        self.size = 0

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a line of compact JSON."""
        if self._stream.closed:
            raise ArchiveError("this member is finished; open a new records() block to write more")
        line = _ENCODER.encode(record)
        self._buffer += line.encode()
        self._buffer += b"\n"
        self.count += 1
        if len(self._buffer) >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        self._digest.update(self._buffer)
        self._stream.write(self._buffer)
        self.size += len(self._buffer)
        self._buffer.clear()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


class ArchiveWriter:
    """Builds one archive; use as a context manager, call ``close()`` to get the ``Manifest``.

    Members are written one at a time (a zip allows a single open write handle), so a
    ``records()`` block must end before the next one or a ``write_blob()`` call.
    """

    def __init__(
        self,
        path: Path,
        *,
        product: str,
        source_instance: dict[str, Any],
        options: dict[str, Any] | None = None,
        created_at: datetime | None = None,
    ) -> None:
        self.path = Path(path)
        self.manifest: Manifest | None = None
        self._product = check_product(product)
        self._source_instance = dict(source_instance)
        self._options = dict(options or {})
        self._created_at = created_at or datetime.now(UTC)
        self._members: dict[str, MemberInfo] = {}
        self._entity_counts: dict[str, int] = {}
        self._busy = False
        self._failed = False
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._file = open(self._partial, "wb")  # noqa: SIM115 - closed by close()/abort()
        self._zip = zipfile.ZipFile(self._file, "w", compression=zipfile.ZIP_DEFLATED)

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif self.manifest is None and not self._file.closed:
            self.close()

    @contextlib.contextmanager
    def records(self, member: str, *, entity: str) -> Iterator[RecordSink]:
        """Open a JSON Lines member counted under ``entity`` in the manifest's entity counts."""
        if member.startswith(BLOB_PREFIX):
            raise ArchiveError(f"member {member} is inside the reserved {BLOB_PREFIX} folder")
        with self._member(member) as stream:
            sink = RecordSink(stream)
            yield sink
            sink.flush()
        self._members[member] = MemberInfo(sha256=sink.sha256, size=sink.size, records=sink.count)
        self._entity_counts[entity] = self._entity_counts.get(entity, 0) + sink.count

    def write_blob(self, data: bytes) -> str:
        """Store an attachment at ``attachments/<sha256>`` (once per content); return the hash."""
        sha256 = hashlib.sha256(data).hexdigest()
        name = blob_name(sha256)
        if name not in self._members:
            with self._member(name) as stream:
                stream.write(data)
            self._members[name] = MemberInfo(sha256=sha256, size=len(data))
        return sha256

    @contextlib.contextmanager
    def _member(self, name: str) -> Iterator[IO[bytes]]:
        check_member_name(name)
        if self._failed or self.manifest is not None or self._file.closed:
            raise ArchiveError(f"cannot add member {name}: the archive is closed or failed")
        if self._busy:
            raise ArchiveError(f"cannot add member {name} while another member is being written")
        if name == MANIFEST_NAME or name in self._members:
            raise ArchiveError(f"duplicate member {name}")
        self._busy = True
        stream = self._zip.open(name, "w", force_zip64=True)
        try:
            yield stream
            stream.close()
        except BaseException:
            self._failed = True
            with contextlib.suppress(Exception):
                stream.close()
            raise
        finally:
            self._busy = False

    def close(self) -> Manifest:
        """Write the manifest, fsync, move the file to ``path`` and return the manifest."""
        if self.manifest is not None:
            return self.manifest
        if self._failed or self._busy or self._file.closed:
            self.abort()
            raise ArchiveError(f"cannot finish {self.path.name}: a member failed or is still open")
        manifest = Manifest(
            product=self._product,
            source_instance=self._source_instance,
            created_at=self._created_at,
            options=self._options,
            entity_counts=dict(self._entity_counts),
            members=dict(self._members),
        )
        try:
            with self._zip.open(MANIFEST_NAME, "w", force_zip64=True) as stream:
                stream.write(manifest.to_json().encode())
            self._zip.close()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._partial, self.path)
            fsync_directory(self.path.parent)
        except BaseException:
            self.abort()
            raise
        manifest.size_bytes = self.path.stat().st_size
        self.manifest = manifest
        return manifest

    def abort(self) -> None:
        """Discard the archive being written; safe to call more than once."""
        self._failed = True
        with contextlib.suppress(Exception):
            self._zip.close()
        with contextlib.suppress(Exception):
            self._file.close()
        self._partial.unlink(missing_ok=True)
