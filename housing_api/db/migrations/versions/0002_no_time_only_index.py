"""Drop the index on ``predictions.created_at`` alone.

No query reads it: performance and drift ask by model version and time
(``ix_predictions_version_created``), and the retention purge goes version
by version on that index too. Every logged estimate paid to keep it up to
date: a fifth of what storing a row costs SQLite.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_predictions_created", table_name="predictions")


def downgrade() -> None:
    op.create_index("ix_predictions_created", "predictions", ["created_at"])
