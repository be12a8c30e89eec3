"""Read a backup archive safely: validate it on open, then stream members with bounded memory.

Every byte read is hashed and counted: a member that grows past the size its manifest declares
or past the expansion limit is stopped mid-stream, and a checksum or size mismatch raises
``ArchiveError`` at the end of the member. Call ``verify()`` before changing anything.
Records are decoded a batch of lines at a time; ``RecordChunks`` hands them out in chunks read
in a worker thread, ahead of the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import struct
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from recoverly.products.archive import (
    BLOB_PREFIX,
    CHUNK_SIZE,
    MANIFEST_NAME,
    ArchiveError,
    Manifest,
    MemberInfo,
    blob_name,
    check_member_name,
)

MAX_MANIFEST_BYTES = 256 * 1024 * 1024
MAX_RECORD_BYTES = 64 * 1024 * 1024
DECODE_BATCH = 2000  # records decoded at a time: bounds the dicts held beyond the caller's
Record = dict[str, Any]
_Chunk = tuple[int, list[Record]]  # (index of the first record, records)
# json.loads's own C scanner, without its Python layers: (text, start) -> (value, end).
_scan: Callable[[str, int], tuple[Any, int]]
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]

# What zipfile and zlib raise on damaged input; all of it becomes ArchiveError.
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, struct.error, zlib.error)
_READ_ERRORS = (*_ZIP_ERRORS, OSError, ValueError, NotImplementedError)


class ArchiveReader:
    """An open, validated archive; use as a context manager."""

    def __init__(self, path: Path, *, max_expansion_bytes: int) -> None:
        self.path = Path(path)
        self.max_expansion_bytes = max_expansion_bytes
        try:
            self._zip = zipfile.ZipFile(self.path)
        except FileNotFoundError as exc:
            raise ArchiveError(f"archive not found: {self.path}") from exc
        except _READ_ERRORS as exc:
            raise ArchiveError(
                f"{self.path.name} is not a readable zip archive (truncated or corrupt): {exc}"
            ) from exc
        try:
            self._entries = self._check_entries()
            self.manifest = self._load_manifest()
            self._check_manifest()
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def members(self) -> list[str]:
        """Names of all data members and blobs, in manifest order (without the manifest)."""
        return list(self.manifest.members)

    def verify(self, progress: Callable[[int, int], None] | None = None) -> Manifest:
        """Stream every member, checking sizes, SHA-256 and record counts."""
        total = self.manifest.total_member_bytes
        done = 0
        for name, info in self.manifest.members.items():
            newlines = 0
            last = b"\n"
            for chunk in self._stream(name):
                done += len(chunk)
                newlines += chunk.count(b"\n")
                last = chunk[-1:]
                if progress:
                    progress(done, total)
            lines = newlines + (last != b"\n")
            if info.records is not None and lines != info.records:
                raise _count_mismatch(name, info, lines)
        return self.manifest

    def records(self, member: str) -> Iterator[dict[str, Any]]:
        """Stream the JSON records of a member."""
        for _, record in self.iter_records(member):
            yield record

    def iter_records(self, member: str, *, start: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(index, record)`` from index ``start`` on; skipped lines are still hashed."""
        for first, records in self.iter_batches(member, start=start):
            yield from zip(itertools.count(first), records)

    def iter_batches(self, member: str, *, start: int = 0) -> Iterator[tuple[int, list[Record]]]:
        """``iter_records`` a list at a time: ``(index of the first, records)``, consecutive,
        up to ``DECODE_BATCH`` records each (so memory stays bounded)."""
        info = self._info(member)
        index = 0
        for lines in self._line_batches(member):
            for first in range(max(0, start - index), len(lines), DECODE_BATCH):
                batch = lines[first : first + DECODE_BATCH]
                records, error = _decode_all(batch, member, index + first)
                if records:
                    yield index + first, records
                if error is not None:
                    raise error
            index += len(lines)
        if info.records is not None and index != info.records:
            raise _count_mismatch(member, info, index)

    def read_blob(self, sha256: str) -> bytes:
        """The attachment with this content hash, verified."""
        return b"".join(self.iter_blob(sha256))

    def iter_blob(self, sha256: str) -> Iterator[bytes]:
        """The attachment in chunks; raises at the end if its hash does not match."""
        name = blob_name(sha256)
        if name not in self.manifest.members:
            raise ArchiveError(f"no attachment {sha256} in {self.path.name}")
        yield from self._stream(name)

    def _info(self, member: str) -> MemberInfo:
        try:
            return self.manifest.members[member]
        except KeyError:
            raise ArchiveError(f"no member {member} in {self.path.name}") from None

    def _check_entries(self) -> dict[str, zipfile.ZipInfo]:
        entries: dict[str, zipfile.ZipInfo] = {}
        for entry in self._zip.infolist():
            name = check_member_name(entry.filename)
            if name in entries:
                raise ArchiveError(f"duplicate member {name} in {self.path.name}")
            if entry.flag_bits & 0x1:
                raise ArchiveError(f"member {name} is encrypted")
            if entry.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ArchiveError(f"member {name} uses unsupported compression")
            entries[name] = entry
        return entries

    def _load_manifest(self) -> Manifest:
        entry = self._entries.get(MANIFEST_NAME)
        if entry is None:
            raise ArchiveError(f"{self.path.name} has no {MANIFEST_NAME}: not a recoverly backup")
        limit = min(MAX_MANIFEST_BYTES, self.max_expansion_bytes)
        if entry.file_size > limit:
            raise ArchiveError(f"{MANIFEST_NAME} is {entry.file_size} bytes, beyond {limit}")
        data = b"".join(self._read(MANIFEST_NAME, limit=limit))
        manifest = Manifest.from_json(data)
        manifest.size_bytes = self.path.stat().st_size
        return manifest

    def _check_manifest(self) -> None:
        declared = self.manifest.members
        if MANIFEST_NAME in declared:
            raise ArchiveError(f"{MANIFEST_NAME} lists itself as a member")
        for name in self._entries:
            if name != MANIFEST_NAME and name not in declared:
                raise ArchiveError(f"member {name} is in the archive but not in the manifest")
        for name, info in declared.items():
            if name not in self._entries:
                raise ArchiveError(f"member {name} is in the manifest but missing from the archive")
            if name.startswith(BLOB_PREFIX) and name != blob_name(info.sha256):
                raise ArchiveError(f"attachment {name} is not named by its sha256")
        limit = self.max_expansion_bytes
        for what, size in (
            ("its manifest declares", self.manifest.total_member_bytes),
            ("its zip headers declare", sum(e.file_size for e in self._entries.values())),
        ):
            if size > limit:
                raise ArchiveError(
                    f"{self.path.name} expands to {size} bytes ({what}), "
                    f"beyond the limit of {limit} bytes"
                )

    def _stream(self, name: str) -> Generator[bytes, None, None]:
        """A member's bytes in chunks, checked against the manifest's size and SHA-256."""
        info = self._info(name)
        digest = hashlib.sha256()
        size = 0
        for chunk in self._read(name, limit=info.size):
            digest.update(chunk)
            size += len(chunk)
            yield chunk
        if size != info.size:
            raise ArchiveError(
                f"size mismatch in member {name}: manifest says {info.size} bytes, found {size}"
            )
        if digest.hexdigest() != info.sha256:
            raise ArchiveError(f"checksum mismatch in member {name}")

    def _read(self, name: str, *, limit: int) -> Iterator[bytes]:
        """Decompress a member in chunks, stopping as soon as it passes ``limit`` bytes."""
        if limit > self.max_expansion_bytes:
            limit, what = self.max_expansion_bytes, "the expansion limit"
        else:
            what = "its declared size"
        size = 0
        try:
            with self._zip.open(self._entries[name]) as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    size += len(chunk)
                    if size > limit:
                        raise ArchiveError(
                            f"member {name} expands beyond {limit} bytes ({what}); reading stopped"
                        )
                    yield chunk
        except _READ_ERRORS as exc:
            raise ArchiveError(f"member {name} is corrupt: {exc}") from exc

    def _line_batches(self, name: str) -> Iterator[list[bytes]]:
        """A member's complete lines, a list per inflated chunk: never more than one chunk and
        one line in memory, and the stream's checks run exactly where a line-by-line reader's
        would."""
        parts: list[bytes] = []
        pending = 0
        with contextlib.closing(self._stream(name)) as chunks:
            for chunk in chunks:
                lines = chunk.split(b"\n")
                if len(lines) > 1:
                    lines[0] = b"".join([*parts, lines[0]])
                    parts, pending = [], 0
                    yield lines[:-1]
                parts.append(lines[-1])
                pending += len(lines[-1])
                if pending > MAX_RECORD_BYTES:
                    raise ArchiveError(f"a record in {name} is over {MAX_RECORD_BYTES} bytes")
        if pending:
            yield [b"".join(parts)]


class RecordChunks:
    """A member's records in chunks ``(index of the first, records)``, read in a worker thread.

    With ``ahead``, the next chunk is read while the caller writes this one: inflating, hashing
    and the database's own work release the GIL, so they overlap. A chunk ends after ``size``
    records, or once the records' declared ``size`` (attachments) reaches ``max_bytes``. A read
    in flight is never abandoned: a generator cannot be closed while a thread runs it, so
    ``close()`` waits for it, even after a cancellation, then closes the batches.
    """

    def __init__(
        self,
        batches: Iterator[tuple[int, list[Record]]],
        *,
        size: int,
        max_bytes: int | None = None,
        ahead: bool,
    ) -> None:
        self._batches, self._size, self._max_bytes = batches, max(1, size), max_bytes
        self._ahead = ahead
        self._pending: asyncio.Task[tuple[_Chunk, bool]] | None = None
        self._carry: _Chunk = (0, [])  # records read but not handed out yet
        self.done = False

    async def next(self) -> _Chunk:
        """The next chunk (no records at the end); ``done`` tells whether more may follow."""
        read, self._pending = self._pending or self._read(), None
        try:
            chunk, self.done = await asyncio.shield(read)
        except asyncio.CancelledError:
            self._pending = read
            raise
        if self._ahead and not self.done:
            self._pending = self._read()
        return chunk

    async def close(self) -> None:
        if self._pending is not None:
            await asyncio.wait([self._pending])
            if not self._pending.cancelled():
                self._pending.exception()  # a read nobody waited for: its error is moot
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()

    def _read(self) -> asyncio.Task[tuple[_Chunk, bool]]:
        return asyncio.ensure_future(asyncio.to_thread(self._take))

    def _take(self) -> tuple[_Chunk, bool]:
        """The next chunk, and whether the member ends with it."""
        first, records = self._carry
        while (end := self._end(records)) is None:
            batch = next(self._batches, None)
            if batch is None:
                self._carry = (first + len(records), [])
                return (first, records), True
            first, records = (first, records + batch[1]) if records else batch
        self._carry = (first + end, records[end:])
        return (first, records[:end]), False

    def _end(self, records: list[Record]) -> int | None:
        """How many of ``records`` make the chunk, or None if it needs more."""
        if self._max_bytes is not None:
            size = 0
            for count, record in enumerate(records[: self._size], 1):
                declared = record.get("size")
                size += declared if isinstance(declared, int) else 0
                if size >= self._max_bytes:
                    return count
        return self._size if len(records) >= self._size else None


def _decode_all(
    lines: list[bytes], member: str, first: int
) -> tuple[list[Record], ArchiveError | None]:
    """The records of consecutive lines (``first`` is the index of the first one), and the
    error of the first line that is not a record, if any: the records before it come first.

    ``json.loads`` costs more in its Python layers than in decoding a short line, so lines go
    straight to its C scanner; a line the scanner cannot take whole and alone (an error,
    surrounding whitespace, not an object) goes through ``_decode``, which accepts what
    ``json.loads`` accepts and words the error.
    """
    records: list[Record] = []
    append = records.append
    for line in lines:
        try:
            text = line.decode()
            record, end = _scan(text, 0)
            if end == len(text) and type(record) is dict:
                append(record)
                continue
        except (ValueError, StopIteration):  # undecodable bytes or JSON
            pass
        try:
            append(_decode(line, member, first + len(records)))
        except ArchiveError as error:
            return records, error
    return records, None


def _decode(line: bytes, member: str, index: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise ArchiveError(f"invalid JSON in member {member}, record {index}: {exc}") from exc
    if not isinstance(record, dict):
        raise ArchiveError(f"record {index} in member {member} is not a JSON object")
    return record


def _count_mismatch(name: str, info: MemberInfo, found: int) -> ArchiveError:
    return ArchiveError(
        f"record count mismatch in member {name}: manifest says {info.records}, found {found}"
    )
