"""Scoring jobs: the queue the job processes claim from, and each job's state.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = sa.DateTime(timezone=True)
    op.create_table(
        "scoring_jobs",
        sa.Column("id", sa.String(32), primary_key=True, comment="job id (hex)"),
        sa.Column("owner", sa.String(100), nullable=False,
                  comment="key:<id> or address:<ip>: who may see it"),
        sa.Column("state", sa.String(16), nullable=False,
                  comment="queued, running, succeeded, failed or cancelled"),
        sa.Column("version", sa.String(80), nullable=True,
                  comment="the version asked for; null: the active one"),
        sa.Column("explain", sa.Boolean(), nullable=False),
        sa.Column("upload_bytes", sa.BigInteger(), nullable=False),
        sa.Column("model_version", sa.String(80), nullable=True,
                  comment="the version that made the estimates"),
        sa.Column("rows_total", sa.BigInteger(), nullable=True),
        sa.Column("rows_done", sa.BigInteger(), nullable=False),
        sa.Column("rows_failed", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False,
                  comment="claims by a job process (a crashed one's lease runs "
                          "out)"),
        sa.Column("worker", sa.String(128), nullable=True,
                  comment="the process holding the job (host:pid)"),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(2000), nullable=True),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("started_at", moment, nullable=True),
        sa.Column("heartbeat_at", moment, nullable=True,
                  comment="the holder's last sign of life: its lease"),
        sa.Column("finished_at", moment, nullable=True),
        sa.Column("expires_at", moment, nullable=False,
                  comment="the job and its files are deleted after this"),
    )
    op.create_index("ix_scoring_jobs_state_created", "scoring_jobs",
                    ["state", "created_at"])
    op.create_index("ix_scoring_jobs_owner_created", "scoring_jobs",
                    ["owner", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_scoring_jobs_owner_created", table_name="scoring_jobs")
    op.drop_index("ix_scoring_jobs_state_created", table_name="scoring_jobs")
    op.drop_table("scoring_jobs")
