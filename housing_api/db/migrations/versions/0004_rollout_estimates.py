"""A rollout's other estimates: the answered one each was made beside.

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
        "answered_id", sa.String(length=32), nullable=True,
        comment="a rollout's other estimate: the answered one it was made beside"))
    where = sa.text("answered_id IS NOT NULL")
    op.create_index("ix_predictions_answered", "predictions", ["answered_id"],
                    postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    op.drop_index("ix_predictions_answered", table_name="predictions")
    op.drop_column("predictions", "answered_id")
