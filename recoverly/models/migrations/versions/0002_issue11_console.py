"""console: backup progress columns

Revision ID: 0002_issue11_console
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_issue11_console"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backup", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("items_done", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("items_total", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("message", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("backup", schema=None) as batch_op:
        batch_op.drop_column("message")
        batch_op.drop_column("items_total")
        batch_op.drop_column("items_done")
