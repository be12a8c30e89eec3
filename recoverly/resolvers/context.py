"""The per-request GraphQL context: who is asking, what they may see, and the loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recoverly.models import Admin
from recoverly.resolvers.dataloaders import Loaders
from recoverly.services.auth import admin_for_token, token_from_header
from recoverly.services.runtime import Runtime
from recoverly.services.scoping import Scope, scope_for_admin


class NotAuthenticatedError(Exception):
    """Raised when a request reaches a resolver without a valid token."""


@dataclass
class Context:
    runtime: Runtime
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    admin: Admin | None = None
    scope: Scope | None = None
    _loaders: Loaders | None = field(default=None, repr=False)

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self.runtime.db, self.authenticated_scope)
        return self._loaders

    @property
    def authenticated_scope(self) -> Scope:
        if self.scope is None:
            raise NotAuthenticatedError("not authenticated")
        return self.scope

    @property
    def admin_id(self) -> int:
        return self.authenticated_scope.admin_id

    async def authenticate(self, authorization: str | None) -> bool:
        """Resolve an ``Authorization`` value to an admin and their scope."""
        async with self.runtime.db.session() as session:
            admin = await admin_for_token(session, token_from_header(authorization))
            if admin is None:
                return False
            self.admin = admin
            self.scope = await scope_for_admin(session, admin)
        return True
