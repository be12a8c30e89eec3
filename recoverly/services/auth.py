"""Bearer-token authentication: tokens are stored as SHA-256 digests, never in clear."""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.models import Admin, ApiToken


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "rcv_" + secrets.token_urlsafe(32)


def token_from_header(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value, or None."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def admin_for_token(session: AsyncSession, token: str | None) -> Admin | None:
    if not token:
        return None
    statement = (
        select(Admin)
        .join(ApiToken, ApiToken.admin_id == Admin.id)  # type: ignore[arg-type]
        .where(ApiToken.token_hash == hash_token(token))
    )
    return (await session.exec(statement)).first()
