"""Mutations: decode the input's global IDs, call a service, turn expected failures into
UserErrors. Every mutation goes through ``attempt`` so none leaks a ServiceError."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from recoverly.resolvers.global_ids import decode_id
from recoverly.services.errors import ErrorCode, ServiceError, not_found

T = TypeVar("T")
MAX_IDS = 1000


@dataclass
class MutationResult(Generic[T]):
    value: T | None
    errors: list[ServiceError]


async def attempt(operation: Awaitable[T]) -> MutationResult[T]:
    try:
        return MutationResult(await operation, [])
    except ServiceError as error:
        return MutationResult(None, [error])


def require_id(global_id: str, type_name: str, *, field: list[str], what: str | None = None) -> int:
    """The row ID in a global ID of ``type_name``; NOT_FOUND for anything else, worded as
    the service words it for a row that does not exist (``what``)."""
    row_id = decode_id(global_id, type_name)
    if row_id is None:
        raise not_found(what or type_name_label(type_name), field=field)
    return row_id


def require_ids(global_ids: Sequence[str], type_name: str, *, field: list[str]) -> list[int]:
    """The row IDs of a list argument: at most ``MAX_IDS`` (INVALID_INPUT beyond), each
    decoded like ``require_id``."""
    if len(global_ids) > MAX_IDS:
        raise ServiceError(
            ErrorCode.INVALID_INPUT,
            f"at most {MAX_IDS} IDs per request, got {len(global_ids)}",
            field=field,
        )
    return [require_id(i, type_name, field=field) for i in global_ids]


def type_name_label(type_name: str) -> str:
    labels = {"ProductInstance": "site", "BackupPolicy": "backup policy"}
    return (labels | {"AccessReview": "access review"}).get(type_name, type_name.lower())
