"""Relay global IDs: opaque base64 of ``Type:id``, decoded strictly.

Only the exact encoding this module produces is accepted, and only row numbers every
supported database can hold in an ID column (PostgreSQL ``integer``: 1..2**31-1), so a
crafted ID is simply unknown instead of reaching the database."""

from __future__ import annotations

import base64
import binascii
import re

MAX_ROW_ID = 2**31 - 1
_PAYLOAD = re.compile(r"([A-Za-z]{1,40}):([1-9][0-9]{0,9})")
_ALPHABET = re.compile(r"[A-Za-z0-9_-]{1,80}")


def to_global_id(type_name: str, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{row_id}".encode()).decode().rstrip("=")


def from_global_id(global_id: object) -> tuple[str, int] | None:
    """``(type_name, id)``, or None when the ID is not one of ours."""
    if not isinstance(global_id, str) or not _ALPHABET.fullmatch(global_id):
        return None
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        text = base64.urlsafe_b64decode(padded).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    match = _PAYLOAD.fullmatch(text)
    if match is None:
        return None
    type_name, row_id = match.group(1), int(match.group(2))
    if row_id > MAX_ROW_ID or to_global_id(type_name, row_id) != global_id:
        return None
    return type_name, row_id


def decode_id(global_id: object, expected_type: str) -> int | None:
    decoded = from_global_id(global_id)
    if decoded is None or decoded[0] != expected_type:
        return None
    return decoded[1]
