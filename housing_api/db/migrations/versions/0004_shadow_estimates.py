"""Shadow estimates: the answered estimate each one was made beside.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: neither SQLite nor PostgreSQL rewrites the table.
    op.add_column("predictions", sa.Column(
        "champion_id", sa.String(length=32), nullable=True,
        comment="a shadow estimate: the answered estimate it was made beside"))


def downgrade() -> None:
    op.drop_column("predictions", "champion_id")
