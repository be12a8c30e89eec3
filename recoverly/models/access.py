"""Access reviews: restored product access, or restored members of a group that already
grants it, waiting for an admin's decision."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from recoverly.models.base import (
    AccessReviewKind,
    AccessReviewStatus,
    ProductKey,
    created_at_field,
    enum_field,
    time_field,
)


class AccessReview(SQLModel, table=True):
    __tablename__ = "access_review"
    """``GROUP_ACCESS``: the product access of a group the restore created; ``MEMBERS``: the
    restore's ``HeldMembership`` rows of a group that had product access before it (one review
    per group and restore). Approving applies the access or adds the members."""

    __table_args__ = (UniqueConstraint("group_id", "product", "restore_id"),)

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    group_id: int = Field(foreign_key="sitegroup.id", index=True)
    product: ProductKey = enum_field()
    restore_id: int = Field(foreign_key="restore.id", index=True)
    kind: AccessReviewKind = enum_field(AccessReviewKind.GROUP_ACCESS)
    status: AccessReviewStatus = enum_field(AccessReviewStatus.PENDING, index=True)
    decided_by_id: int | None = Field(default=None, foreign_key="admin.id")
    decided_at: datetime | None = time_field()
    created_at: datetime = created_at_field()
