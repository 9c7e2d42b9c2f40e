"""Clients' API keys, their daily usage, and the key of each estimate.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_CLIENT_COMMENT = "client address (the API key id once keys exist)"


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False,
                  comment="public id (hex)"),
        sa.Column("prefix", sa.String(length=16), nullable=False,
                  comment="the key's first characters, to recognise it"),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False,
                  comment="SHA-256 of the whole key"),
        sa.Column("name", sa.String(length=100), nullable=False,
                  comment="who holds it"),
        sa.Column("scopes", sa.String(length=100), nullable=False,
                  comment="space-separated: predict, sales, admin"),
        sa.Column("quota", sa.String(length=200), nullable=True,
                  comment="flask-limiter notation; empty: API_KEY_QUOTA"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True,
                  comment="updated at most once a minute"),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True,
                  comment="refused from this moment (a rotation may set it ahead)"),
        sa.Column("replaced_by", sa.String(length=32), nullable=True,
                  comment="the key a rotation issued in its place"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    op.create_table(
        "api_key_usage",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False, comment="UTC"),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("estimates", sa.BigInteger(), nullable=False,
                  comment="homes priced (a batch counts each home)"),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_id", "day"),
    )
    # Adding a column: SQLite rebuilds nothing, PostgreSQL rewrites nothing
    # (a nullable column without a default).
    op.add_column("predictions", sa.Column(
        "api_key_id", sa.String(length=32), nullable=True,
        comment="the API key the estimate was asked with, if any"))
    if op.get_bind().dialect.name != "sqlite":  # SQLite keeps no comments
        op.alter_column("predictions", "client", comment="client address",
                        existing_comment=OLD_CLIENT_COMMENT,
                        existing_type=sa.String(length=64), existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("predictions", "client", comment=OLD_CLIENT_COMMENT,
                        existing_comment="client address",
                        existing_type=sa.String(length=64), existing_nullable=True)
    op.drop_column("predictions", "api_key_id")
    op.drop_table("api_key_usage")
    op.drop_table("api_keys")
