"""Customer storage: blobs in an S3-compatible bucket, streamed with multipart uploads."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator

from recoverly.storage.base import BlobStore, StorageError, check_key
from recoverly.storage.endpoints import EndpointRefused, connector_args, endpoint_problem

MULTIPART_THRESHOLD = 8 * 1024 * 1024
MAX_PARTS = 10_000
_DOWNLOAD_CHUNK = 1024 * 1024
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"}
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` breaks S3's bucket naming rules, or None when it follows them."""
    if not _BUCKET_NAME.fullmatch(name):
        return (
            "must be 3 to 63 lowercase letters, digits, dots or hyphens, "
            "starting and ending with a letter or digit"
        )
    if ".." in name or ".-" in name or "-." in name:
        return "must not have two adjacent periods or a period next to a hyphen"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        return "must not look like an IP address"
    if name.startswith(_BUCKET_PREFIXES) or name.endswith(_BUCKET_SUFFIXES):
        return "uses a prefix or suffix that S3 reserves"
    return None


class S3BucketConfig(BaseModel):
    """Where a customer's bucket is and how to reach it; ``secret_access_key`` never leaves it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    prefix: str = ""
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        problem = bucket_name_problem(value)
        if problem is not None:
            raise ValueError(f"bucket {problem}")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("endpoint_url must start with http:// or https://")
        return value or None

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.strip("/")
        return check_key(value) if value else ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> S3BucketConfig:
        """Build from a stored dict (e.g. a policy's ``customer_bucket``); bad input is a
        ``StorageError`` naming the field."""
        fields = {k: v for k, v in data.items() if not (k == "kind" and v == "s3")}
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()
            )
            raise StorageError(f"invalid S3 bucket configuration: {problems}") from None

    def to_public_dict(self) -> dict[str, Any]:
        """Everything but the secret key: safe to store next to a backup or return to clients."""
        return self.model_dump(exclude={"secret_access_key"})


class S3BlobStore(BlobStore):
    """Blobs at ``s3://bucket/prefix/key``; one short-lived client per operation."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
        allow_private_endpoints: bool = False,
    ) -> None:
        self.allow_private_endpoints = allow_private_endpoints
        self.config = S3BucketConfig.from_dict(
            {
                "bucket": bucket,
                "endpoint_url": endpoint_url,
                "region": region,
                "prefix": prefix,
                "access_key_id": access_key_id,
                "secret_access_key": secret_access_key,
            }
        )
        self._session: Any = None  # aiobotocore's, made on first use (see ``_client``)

    @classmethod
    def from_config(
        cls, config: S3BucketConfig, *, allow_private_endpoints: bool = False
    ) -> S3BlobStore:
        secret = config.secret_access_key
        return cls(
            allow_private_endpoints=allow_private_endpoints,
            bucket=config.bucket,
            endpoint_url=config.endpoint_url,
            region=config.region,
            prefix=config.prefix,
            access_key_id=config.access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
        )

    def object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.config.prefix}/{key}" if self.config.prefix else key

    def describe(self) -> dict[str, Any]:
        public = self.config.to_public_dict()
        public.pop("access_key_id")
        return {"kind": "s3", **public}

    async def put_file(self, key: str, path: Path) -> int:
        path = Path(path)
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        async with self._client("upload", key) as client:
            if size <= MULTIPART_THRESHOLD:
                body = await asyncio.to_thread(_read_range, path, 0, MULTIPART_THRESHOLD + 1)
                if len(body) != size:
                    raise StorageError(f"{path} changed size while being uploaded")
                await client.put_object(
                    Bucket=self.config.bucket, Key=self.object_key(key), Body=body
                )
            else:
                await self._multipart(client, self.object_key(key), path, size)
        return size

    async def _multipart(self, client: Any, object_key: str, path: Path, size: int) -> None:
        bucket = self.config.bucket
        part_size = max(MULTIPART_THRESHOLD, -(-size // MAX_PARTS))
        upload = await client.create_multipart_upload(Bucket=bucket, Key=object_key)
        upload_id = upload["UploadId"]
        try:
            parts = []
            for number, offset in enumerate(range(0, size, part_size), start=1):
                body = await asyncio.to_thread(_read_range, path, offset, part_size)
                response = await client.upload_part(
                    Bucket=bucket, Key=object_key, UploadId=upload_id, PartNumber=number, Body=body
                )
                parts.append({"PartNumber": number, "ETag": response["ETag"]})
            if (await asyncio.to_thread(path.stat)).st_size != size:
                raise StorageError(f"{path} changed size while being uploaded")
            await client.complete_multipart_upload(
                Bucket=bucket, Key=object_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await client.abort_multipart_upload(
                    Bucket=bucket, Key=object_key, UploadId=upload_id
                )
            raise

    async def get_to_file(self, key: str, path: Path) -> None:
        path = Path(path)
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
        try:
            async with self._client("download", key) as client:
                response = await client.get_object(
                    Bucket=self.config.bucket, Key=self.object_key(key)
                )
                expected = response.get("ContentLength")
                async with response["Body"] as body:
                    written = await _stream_to_file(body, temp)
            if expected is not None and written != expected:
                raise StorageError(f"download of {key!r} ended after {written} of {expected} bytes")
            await asyncio.to_thread(os.replace, temp, path)
        except BaseException:
            await asyncio.to_thread(temp.unlink, missing_ok=True)
            raise

    async def delete(self, key: str) -> None:
        async with self._client("delete", key) as client:
            await client.delete_object(Bucket=self.config.bucket, Key=self.object_key(key))

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        async with self._client("head", key) as client:
            try:
                response = await client.head_object(
                    Bucket=self.config.bucket, Key=self.object_key(key)
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                    return None
                raise
        return int(response["ContentLength"])

    async def probe(self) -> None:
        """Check that the bucket exists and takes writes: put a tiny object, delete it.
        Fails fast (one attempt, short timeouts) with a ``StorageError`` whose ``kind``
        says what is wrong."""
        key = f".recoverly-probe-{uuid.uuid4().hex}"
        async with self._client("probe", key, attempts=1, read_seconds=10) as client:
            object_key = self.object_key(key)
            await client.put_object(Bucket=self.config.bucket, Key=object_key, Body=b"")
            await client.delete_object(Bucket=self.config.bucket, Key=object_key)

    @contextlib.asynccontextmanager
    async def _client(
        self, action: str, key: str, *, attempts: int = 5, read_seconds: float = 60
    ) -> AsyncIterator[Any]:
        """An S3 client whose failures become ``StorageError`` naming the bucket and key.
        The endpoint is checked against the SSRF rules here, at connect time, and its host
        name is resolved through ``GuardedResolver``. The S3 libraries are imported here,
        on first use, not when the server starts."""
        import aiohttp
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session
        from botocore import UNSIGNED
        from botocore.exceptions import BotoCoreError, ClientError

        if self._session is None:
            self._session = get_session()
        where = f"s3://{self.config.bucket}/{self.object_key(key)}"
        config = self.config
        secret = config.secret_access_key
        if config.endpoint_url is not None:
            problem = endpoint_problem(
                config.endpoint_url, allow_private=self.allow_private_endpoints
            )
            if problem is not None:
                raise StorageError(f"S3 endpoint URL {problem}", kind="refused")
        guard = connector_args(allow_private=self.allow_private_endpoints)
        try:
            async with self._session.create_client(
                "s3",
                region_name=config.region,
                endpoint_url=config.endpoint_url,
                aws_access_key_id=config.access_key_id,
                aws_secret_access_key=secret.get_secret_value() if secret else None,
                config=AioConfig(
                    # Without a key pair, requests go unsigned: never the server's own
                    # credentials (environment, instance profile) on a customer's bucket.
                    signature_version=None if config.access_key_id else UNSIGNED,
                    s3={"addressing_style": "path"} if config.endpoint_url else None,
                    retries={"mode": "standard", "max_attempts": attempts},
                    connect_timeout=min(read_seconds, 10),
                    read_timeout=read_seconds,
                    connector_args=guard,
                ),
            ) as client:
                yield client
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code"))
            kind = (
                "missing_bucket"
                if code == "NoSuchBucket"
                else "denied"
                if code in _DENIED
                else "other"
            )
            raise StorageError(
                f"S3 {action} of {where} failed: {code} {error.get('Message', '')}", kind=kind
            ) from exc
        except (BotoCoreError, aiohttp.ClientError, OSError) as exc:
            refused = guard["resolver"].refused
            if refused is not None or isinstance(exc, EndpointRefused):
                raise StorageError(f"S3 endpoint refused: {refused}", kind="refused") from exc
            raise StorageError(f"S3 {action} of {where} failed: {exc}", kind="unreachable") from exc


def _read_range(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as file:
        file.seek(offset)
        return file.read(length)


async def _stream_to_file(body: Any, path: Path) -> int:
    """Write an async body to ``path`` chunk by chunk, fsync it, return the byte count."""
    file: IO[bytes] = await asyncio.to_thread(path.open, "wb")
    written = 0
    try:
        while chunk := await body.read(_DOWNLOAD_CHUNK):
            await asyncio.to_thread(file.write, chunk)
            written += len(chunk)
        await asyncio.to_thread(file.flush)
        await asyncio.to_thread(os.fsync, file.fileno())
    finally:
        await asyncio.to_thread(file.close)
    return written
