"""Access reviews of restored members: review kinds and held memberships

A restore that adds members to a group which already grants product access holds them in
``held_membership`` behind a ``MEMBERS`` review; a group can then have one review per
restore, so the unique key of ``access_review`` gains ``restore_id``.

Revision ID: 0005_issue14_member_reviews
Revises: 0004_issue14_selective_restore
Create Date: 2026-12-01 15:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_issue14_member_reviews"
down_revision = "0004_issue14_selective_restore"
branch_labels = None
depends_on = None

# How the unnamed unique key of 0001 is named: PostgreSQL's default name; on SQLite, batch
# mode recreates the table and finds the reflected constraint under this convention.
_CONVENTION = {"uq": "%(table_name)s_%(column_0_name)s_%(column_1_name)s_key"}
_OLD_KEY = "access_review_group_id_product_key"
_NEW_KEY = "access_review_group_id_product_restore_id_key"


def upgrade() -> None:
    op.create_table(
        "held_membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("restore_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["sitegroup.id"]),
        sa.ForeignKeyConstraint(["instance_id"], ["productinstance.id"]),
        sa.ForeignKeyConstraint(["restore_id"], ["restore.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["siteuser.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("held_membership", schema=None) as batch_op:
        for column in ("group_id", "instance_id", "restore_id", "user_id"):
            batch_op.create_index(f"ix_held_membership_{column}", [column], unique=False)
    with op.batch_alter_table(
        "access_review", schema=None, naming_convention=_CONVENTION
    ) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=32), nullable=False, server_default="GROUP_ACCESS")
        )
        batch_op.drop_constraint(_OLD_KEY, type_="unique")
        batch_op.create_unique_constraint(_NEW_KEY, ["group_id", "product", "restore_id"])


def downgrade() -> None:
    with op.batch_alter_table("access_review", schema=None) as batch_op:
        batch_op.drop_constraint(_NEW_KEY, type_="unique")
        batch_op.create_unique_constraint(_OLD_KEY, ["group_id", "product"])
        batch_op.drop_column("kind")
    op.drop_table("held_membership")
