"""Strict checks of user input, each naming the offending field in ``ServiceError.field``:
names, date-times, and customer buckets (S3 naming rules, endpoint rules, credentials)."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from typing import Any

from recoverly.services.errors import ErrorCode, ServiceError
from recoverly.storage import StorageError, check_key
from recoverly.storage.endpoints import endpoint_problem
from recoverly.storage.s3 import bucket_name_problem

MAX_NAME = 200
MAX_PAST = timedelta(days=1)
MAX_FUTURE = timedelta(days=366)
_REGION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def invalid(message: str, field: list[str]) -> ServiceError:
    return ServiceError(ErrorCode.INVALID_INPUT, message, field=field)


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in value)


def check_name(value: str, *, field: list[str], max_length: int = MAX_NAME) -> str:
    """A display name: 1..``max_length`` characters, no control characters; trimmed."""
    if has_control_characters(value):
        raise invalid("must not contain control characters", field)
    value = value.strip()
    if not 1 <= len(value) <= max_length:
        raise invalid(f"must be 1 to {max_length} characters", field)
    return value


def check_datetime(value: datetime, *, now: datetime, field: list[str]) -> datetime:
    """A moment with a time zone, no more than a day in the past nor a year ahead."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise invalid("needs a time zone, e.g. 2030-01-31T09:00:00Z", field)
    try:
        in_range = now - MAX_PAST <= value <= now + MAX_FUTURE
    except OverflowError:
        in_range = False
    if not in_range:
        raise invalid("must be between a day ago and a year from now", field)
    return value


def check_customer_bucket(
    bucket: dict[str, Any], *, allow_private: bool, field: list[str]
) -> dict[str, Any]:
    """A customer bucket as entered: every part checked, the key pair complete."""
    name = bucket.get("bucket") or ""
    if (problem := bucket_name_problem(name)) is not None:
        raise invalid(f"bucket name {problem}", [*field, "bucket"])
    endpoint = bucket.get("endpoint_url")
    problem = None if endpoint is None else endpoint_problem(endpoint, allow_private=allow_private)
    if problem is not None:
        raise invalid(f"endpoint URL {problem}", [*field, "endpointUrl"])
    region = bucket.get("region") or "us-east-1"
    if not (1 <= len(region) <= 64 and set(region) <= _REGION_CHARS):
        raise invalid("region must be lowercase letters, digits and hyphens", [*field, "region"])
    prefix = (bucket.get("prefix") or "").strip("/")
    if len(prefix) > 512 or has_control_characters(prefix):
        raise invalid("prefix must be at most 512 characters", [*field, "prefix"])
    if prefix:
        try:
            check_key(prefix)
        except StorageError:
            raise invalid(
                "prefix must be a relative path without '..'", [*field, "prefix"]
            ) from None
    _check_key_pair(bucket, field=field)
    return {**bucket, "region": region, "prefix": prefix}


def _check_key_pair(bucket: dict[str, Any], *, field: list[str]) -> None:
    access, secret = bucket.get("access_key_id"), bucket.get("secret_access_key")
    if (access is None) != (secret is None):
        missing = "secretAccessKey" if secret is None else "accessKeyId"
        raise invalid("give both accessKeyId and secretAccessKey, or neither", [*field, missing])
    for value, name in ((access, "accessKeyId"), (secret, "secretAccessKey")):
        if value is not None and not (
            1 <= len(value) <= 256 and value.isascii() and value.isprintable() and " " not in value
        ):
            raise invalid("must be 1 to 256 printable ASCII characters", [*field, name])
