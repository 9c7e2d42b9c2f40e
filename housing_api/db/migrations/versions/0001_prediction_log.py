"""The prediction log and the sale prices reported for its estimates.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NUMERIC_INPUTS = (
    "bedrooms", "bathrooms", "sqft_living", "sqft_lot", "floors", "waterfront",
    "view", "condition", "grade", "sqft_above", "sqft_basement", "yr_built",
    "yr_renovated", "lat", "long", "sqft_living15", "sqft_lot15",
)


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(length=32), nullable=False,
                  comment="prediction_id in the answer (hex)"),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=80), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=True,
                  comment="client address (the API key id once keys exist)"),
        *(sa.Column(name, sa.Float(), nullable=True) for name in NUMERIC_INPUTS),
        sa.Column("zipcode", sa.String(length=5), nullable=False),
        sa.Column("price", sa.Float(), nullable=False, comment="USD, unrounded"),
        sa.Column("lower", sa.Float(), nullable=False),
        sa.Column("upper", sa.Float(), nullable=False),
        sa.Column("level", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_predictions_created", "predictions", ["created_at"])
    op.create_index("ix_predictions_version_created", "predictions",
                    ["model_version", "created_at"])
    op.create_table(
        "sales",
        sa.Column("prediction_id", sa.String(length=32), nullable=False),
        sa.Column("sale_price", sa.Float(), nullable=False),
        sa.Column("sale_date", sa.Date(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["prediction_id"], ["predictions.id"],
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("prediction_id"),
    )


def downgrade() -> None:
    op.drop_table("sales")
    op.drop_index("ix_predictions_version_created", table_name="predictions")
    op.drop_index("ix_predictions_created", table_name="predictions")
    op.drop_table("predictions")
