"""Bearer-token authentication: tokens are stored as SHA-256 digests, never in clear.

A request's identity (the admin and their scope) is read in one query, then kept for a few
seconds in an ``AuthCache`` keyed by the token's hash. An expired token leaves the cache on
its next use; ``revoke_token`` removes a token and tells every process's cache (through the
event bus) before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.database import Database
from recoverly.events import EventBus
from recoverly.models import Admin, ApiToken, Membership, utcnow
from recoverly.services.scoping import Scope

AUTH_TOPIC = "auth:revoked"


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to and what they may see."""

    admin: Admin
    scope: Scope
    expires_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


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


async def identity_for_hash(
    session: AsyncSession, token_hash: str, *, now: datetime
) -> Identity | None:
    """The admin of a token and the organizations they administer, in one query; None for
    an unknown or expired token."""
    statement = (
        select(Admin.id, Admin.email, Admin.name, ApiToken.expires_at, Membership.organization_id)
        .join(ApiToken, col(ApiToken.admin_id) == col(Admin.id))
        .outerjoin(Membership, col(Membership.admin_id) == col(Admin.id))
        .where(col(ApiToken.token_hash) == token_hash)
    )
    rows = (await session.exec(statement)).all()
    if not rows:
        return None
    admin_id, email, name, expires_at, _ = rows[0]
    identity = Identity(
        admin=Admin(id=admin_id, email=email, name=name),
        scope=Scope(
            admin_id=admin_id,
            organization_ids=frozenset(r[4] for r in rows if r[4] is not None),
        ),
        expires_at=expires_at,
    )
    return None if identity.expired(now) else identity


async def admin_for_token(session: AsyncSession, token: str | None) -> Admin | None:
    if not token:
        return None
    identity = await identity_for_hash(session, hash_token(token), now=utcnow())
    return identity.admin if identity else None


class AuthCache:
    """Identities by token hash for ``ttl`` seconds (0 turns the cache off).

    Membership changes made meanwhile show after at most ``ttl``; revocations made with
    ``revoke_token`` and expiry show at once.
    """

    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, Identity]] = OrderedDict()
        self._watcher: asyncio.Task[None] | None = None

    def get(self, token_hash: str, *, now: datetime) -> Identity | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        stored_at, identity = entry
        if self.clock() - stored_at >= self.ttl or identity.expired(now):
            del self._entries[token_hash]
            return None
        return identity

    def put(self, token_hash: str, identity: Identity) -> None:
        if self.ttl <= 0:
            return
        self._entries[token_hash] = (self.clock(), identity)
        self._entries.move_to_end(token_hash)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, token_hash: str) -> None:
        self._entries.pop(token_hash, None)

    async def start(self, bus: EventBus) -> None:
        """Follow revocations published by any process."""
        ready = asyncio.Event()
        self._watcher = asyncio.create_task(self._watch(bus, ready), name="recoverly-auth-cache")
        await ready.wait()

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        self._entries.clear()

    async def _watch(self, bus: EventBus, ready: asyncio.Event) -> None:
        async with bus.subscribe(AUTH_TOPIC) as subscription:
            ready.set()
            while True:
                event = await subscription.get()
                self.forget(str(event.get("token_hash")))


class RevocationParts(Protocol):
    """The parts of the ``Runtime`` a revocation uses (the runtime holds an ``AuthCache``, so
    this module does not name it)."""

    db: Database
    bus: EventBus
    auth_cache: AuthCache


async def revoke_token(runtime: RevocationParts, token: str) -> bool:
    """Delete a token; this process refuses it at once, the others when the bus delivers the
    revocation (or after the cache's ttl at worst). False when the token was unknown."""
    token_hash = hash_token(token)
    async with runtime.db.transaction() as session:
        deleted = await session.exec(  # type: ignore[call-overload]
            delete(ApiToken).where(col(ApiToken.token_hash) == token_hash)
        )
    runtime.auth_cache.forget(token_hash)
    await runtime.bus.publish(AUTH_TOPIC, {"token_hash": token_hash})
    return bool(deleted.rowcount)
