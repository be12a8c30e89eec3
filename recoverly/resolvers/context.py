"""The per-request GraphQL context: who is asking, what they may see, the loaders, and the
one database session every read of the request shares."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from recoverly.database import Database
from recoverly.errors import RecoverlyError
from recoverly.models import Admin
from recoverly.resolvers.dataloaders import Loaders
from recoverly.services.auth import hash_token, identity_for_hash, token_from_header
from recoverly.services.runtime import Runtime
from recoverly.services.scoping import Scope


class NotAuthenticatedError(RecoverlyError):
    """Raised when a request reaches a resolver without a valid token."""


class RequestSession:
    """One read session (one connection) for a whole HTTP request, opened on first use;
    resolvers and loaders take turns on it.

    With ``per_use`` (a websocket connection, which lives long; a mutation, which writes
    through a connection of its own) each use ends its transaction, giving the connection
    back, and forgets the rows it loaded, so nothing is held between uses and a later read
    never sees rows cached by an earlier one.
    """

    def __init__(self, db: Database, *, per_use: bool = False) -> None:
        self.db = db
        self.per_use = per_use
        self._session: AsyncSession | None = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def use(self) -> AsyncIterator[AsyncSession]:
        async with self._lock:
            if self._session is None:
                self._session = self.db.read_sessions()
            try:
                yield self._session
            finally:
                if self.per_use:
                    await self._release()

    async def release(self) -> None:
        """Give the connection back now, and after each later use."""
        async with self._lock:
            self.per_use = True
            if self._session is not None:
                await self._release()

    async def close(self) -> None:
        async with self._lock:
            if self._session is not None:
                await self._session.close()
                self._session = None

    async def _release(self) -> None:
        # Commit, not rollback: nothing was written, and a rollback would expire every row
        # already handed to resolvers.
        assert self._session is not None
        if self._session.in_transaction():
            await self._session.commit()
        self._session.expunge_all()


@dataclass
class Context:
    runtime: Runtime
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    admin: Admin | None = None
    scope: Scope | None = None
    db: RequestSession = field(init=False)
    _loaders: Loaders | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.db = RequestSession(self.runtime.db)

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self.db.use, self.authenticated_scope)
        return self._loaders

    @property
    def authenticated_scope(self) -> Scope:
        if self.scope is None:
            raise NotAuthenticatedError("not authenticated")
        return self.scope

    @property
    def authenticated_admin(self) -> Admin:
        if self.admin is None:
            raise NotAuthenticatedError("not authenticated")
        return self.admin

    @property
    def admin_id(self) -> int:
        return self.authenticated_scope.admin_id

    async def authenticate(self, authorization: str | None) -> bool:
        """Resolve an ``Authorization`` value to an admin and their scope (cached briefly)."""
        token = token_from_header(authorization)
        if token is None:
            return False
        token_hash, now = hash_token(token), self.runtime.now()
        cache = self.runtime.auth_cache
        identity = cache.get(token_hash, now=now)
        if identity is None:
            async with self.db.use() as session:
                identity = await identity_for_hash(session, token_hash, now=now)
            if identity is None:
                return False
            cache.put(token_hash, identity)
        self.admin, self.scope = identity.admin, identity.scope
        return True
