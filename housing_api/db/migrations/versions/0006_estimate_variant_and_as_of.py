"""Which model of a version made an estimate, and the month it was asked as of.

Intervals adapt to the sales reported for the estimates a version's model
made "now" (``monitoring.adaptation``): the minimal companion's and the
estimates asked ``as_of`` a past month are counted apart.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: neither SQLite nor PostgreSQL rewrites the table.
    op.add_column("predictions", sa.Column(
        "variant", sa.String(length=16), nullable=True,
        comment="null: the version's model; minimal: its minimal companion"))
    op.add_column("predictions", sa.Column(
        "as_of", sa.String(length=7), nullable=True,
        comment="YYYY-MM asked with as_of; null: estimated now"))


def downgrade() -> None:
    op.drop_column("predictions", "as_of")
    op.drop_column("predictions", "variant")
