"""Users, groups, memberships and product access of an instance.

Rows written by a restore carry ``restore_id`` and the ``source_id`` they had in the
archive, so a resumed restore rebuilds its ID map and a failed one removes exactly its rows.
"""

from __future__ import annotations

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from recoverly.models.base import ProductKey, enum_field


class SiteUser(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("instance_id", "account_id"),)

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    account_id: str = Field(max_length=64)
    display_name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    active: bool = True
    restore_id: int | None = Field(default=None, index=True)
    source_id: int | None = None


class SiteGroup(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("instance_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    name: str = Field(max_length=200)
    restore_id: int | None = Field(default=None, index=True)
    source_id: int | None = None


class GroupMembership(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    group_id: int = Field(foreign_key="sitegroup.id", index=True)
    user_id: int = Field(foreign_key="siteuser.id", index=True)
    restore_id: int | None = Field(default=None, index=True)


class HeldMembership(SQLModel, table=True):
    """A restored membership of a group that already granted product access: it waits for its
    ``MEMBERS`` access review (the group and the restore's) and gives no access until then.
    ``applied``: approving it added the ``GroupMembership`` (denying removes that again)."""

    __tablename__ = "held_membership"

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    group_id: int = Field(foreign_key="sitegroup.id", index=True)
    user_id: int = Field(foreign_key="siteuser.id", index=True)
    applied: bool = False
    restore_id: int = Field(foreign_key="restore.id", index=True)


class GroupProductAccess(SQLModel, table=True):
    """Applied product access: members of the group are billable users of the product."""

    __table_args__ = (UniqueConstraint("group_id", "product"),)

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="productinstance.id", index=True)
    group_id: int = Field(foreign_key="sitegroup.id", index=True)
    product: ProductKey = enum_field()
