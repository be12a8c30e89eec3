"""Organizations, their admins, memberships and API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from recoverly.models.base import created_at_field, time_field


class Organization(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    slug: str = Field(max_length=100, unique=True)
    created_at: datetime = created_at_field()


class Admin(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str = Field(max_length=200)
    created_at: datetime = created_at_field()


class Membership(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("admin_id", "organization_id"),)

    id: int | None = Field(default=None, primary_key=True)
    admin_id: int = Field(foreign_key="admin.id", index=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    role: str = Field(default="ORG_ADMIN", max_length=32)


class ApiToken(SQLModel, table=True):
    """A bearer token; only its SHA-256 is stored."""

    id: int | None = Field(default=None, primary_key=True)
    admin_id: int = Field(foreign_key="admin.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    name: str = Field(default="default", max_length=100)
    created_at: datetime = created_at_field()
    last_used_at: datetime | None = time_field()
    expires_at: datetime | None = time_field()  # none: valid until revoked
