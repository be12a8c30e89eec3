"""restores: the selection and conflict policy of a selective restore

Revision ID: 0004_issue14_selective_restore
Revises: 0003_issue10_token_expiry
Create Date: 2026-12-01 15:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_issue14_selective_restore"
down_revision = "0003_issue10_token_expiry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("restore", schema=None) as batch_op:
        # JSON null for the restores made before: full-site restores.
        batch_op.add_column(
            sa.Column("selection", sa.JSON(), nullable=False, server_default="null")
        )
        batch_op.add_column(
            sa.Column("conflict_policy", sa.String(32), nullable=False, server_default="SKIP")
        )


def downgrade() -> None:
    with op.batch_alter_table("restore", schema=None) as batch_op:
        batch_op.drop_column("conflict_policy")
        batch_op.drop_column("selection")
