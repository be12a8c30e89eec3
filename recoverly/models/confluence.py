"""Confluence product data: spaces, pages, comments and attachments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from recoverly.models.base import created_at_field


class ConfluenceSpace(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("instance_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    key: str = Field(max_length=64)
    name: str = Field(max_length=200)
    personal: bool = False
    restore_id: int | None = Field(default=None, index=True)
    source_id: int | None = None


class ConfluencePage(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    space_id: int = Field(foreign_key="confluencespace.id", index=True)
    parent_id: int | None = Field(default=None, index=True)
    title: str = Field(max_length=300)
    body: str = ""
    author_account_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = created_at_field()
    restore_id: int | None = Field(default=None, index=True)
    source_id: int | None = None


class ConfluenceComment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    page_id: int = Field(foreign_key="confluencepage.id", index=True)
    author_account_id: str | None = Field(default=None, max_length=64)
    body: str = ""
    created_at: datetime = created_at_field()
    restore_id: int | None = Field(default=None, index=True)
    source_id: int | None = None


class ConfluenceAttachment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    page_id: int = Field(foreign_key="confluencepage.id", index=True)
    filename: str = Field(max_length=300)
    media_type: str = Field(default="application/octet-stream", max_length=100)
    size: int = 0
    sha256: str = Field(max_length=64)
    content: bytes = Field(sa_type=LargeBinary)
    restore_id: int | None = Field(default=None, index=True)
    source_id: int | None = None
