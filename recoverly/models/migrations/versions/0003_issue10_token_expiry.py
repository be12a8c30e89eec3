"""API tokens may expire

Revision ID: 0003_issue10_token_expiry
Revises: 0002_issue11_console
Create Date: 2026-12-01 09:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_issue10_token_expiry"
down_revision = "0002_issue11_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("apitoken", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("apitoken", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
