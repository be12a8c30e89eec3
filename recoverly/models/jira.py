"""Jira product data: projects, issues, comments and attachments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from recoverly.models.base import created_at_field


class JiraProject(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("instance_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    key: str = Field(max_length=32)
    name: str = Field(max_length=200)
    description: str = ""
    lead_account_id: str | None = Field(default=None, max_length=64)
    restore_id: int | None = Field(default=None, index=True)
    source_id: int | None = None


class JiraIssue(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    project_id: int = Field(foreign_key="jiraproject.id", index=True)
    key: str = Field(max_length=64)
    summary: str = Field(max_length=500)
    description: str = ""
    status: str = Field(default="To Do", max_length=32)
    issue_type: str = Field(default="Task", max_length=32)
    reporter_account_id: str | None = Field(default=None, max_length=64)
    assignee_account_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = created_at_field()
    restore_id: int | None = Field(default=None, index=True)
    source_id: int | None = None


class JiraComment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    issue_id: int = Field(foreign_key="jiraissue.id", index=True)
    author_account_id: str | None = Field(default=None, max_length=64)
    body: str = ""
    created_at: datetime = created_at_field()
    restore_id: int | None = Field(default=None, index=True)
    source_id: int | None = None


class JiraAttachment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    issue_id: int = Field(foreign_key="jiraissue.id", index=True)
    filename: str = Field(max_length=300)
    media_type: str = Field(default="application/octet-stream", max_length=100)
    size: int = 0
    sha256: str = Field(max_length=64)
    content: bytes = Field(sa_type=LargeBinary)
    restore_id: int | None = Field(default=None, index=True)
    source_id: int | None = None
