"""Product instances (sites) and the per-instance operation lock."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from recoverly.models.base import ProductKey, created_at_field, enum_field


class ProductInstance(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    product: ProductKey = enum_field()
    name: str = Field(max_length=200)
    url: str = Field(max_length=500, unique=True)
    created_at: datetime = created_at_field()


class InstanceOperation(SQLModel, table=True):
    """At most one backup or restore runs on an instance: the primary key makes it atomic."""

    __tablename__ = "instance_operation"

    instance_id: int = Field(foreign_key="productinstance.id", primary_key=True)
    kind: str = Field(max_length=16)  # "backup" or "restore"
    ref_id: int
    acquired_at: datetime = created_at_field()
