"""The tables: every estimate answered, the sale prices reported for them,
the clients' keys, and the scoring jobs waiting or running."""
from sqlalchemy import (
    BigInteger, Boolean, Column, Date, DateTime, Float, ForeignKey, Index,
    Integer, LargeBinary, MetaData, String, Table, text,
)

from ..inference.columns import NUMERIC_COLUMNS

metadata = MetaData()

# The prediction log writes rows as tuples in this column order
# (monitoring.log.Estimates.rows): change both together.
predictions = Table(
    "predictions", metadata,
    Column("id", String(32), primary_key=True,
           comment="prediction_id in the answer (hex)"),
    Column("request_id", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("model_version", String(80), nullable=False),
    Column("client", String(64), nullable=True, comment="client address"),
    Column("api_key_id", String(32), nullable=True,
           comment="the API key the estimate was asked with, if any"),
    *(Column(name, Float, nullable=True) for name in NUMERIC_COLUMNS),
    Column("zipcode", String(5), nullable=False),
    Column("price", Float, nullable=False, comment="USD, unrounded"),
    Column("lower", Float, nullable=False),
    Column("upper", Float, nullable=False),
    Column("level", Float, nullable=False),
    Column("answered_id", String(32), nullable=True,
           comment="a rollout's other estimate: the answered one it was made beside"),
    Column("variant", String(16), nullable=True,
           comment="null: the version's model; minimal: its minimal companion"),
    Column("as_of", String(7), nullable=True,
           comment="YYYY-MM asked with as_of; null: estimated now"),
    # The one index beside the key, for every query by version and time.
    # Each index costs every logged row (migration 0002).
    Index("ix_predictions_version_created", "model_version", "created_at"),
    # Partial: only a rollout's other estimates pay for it (judging joins
    # them to the answered ones).
    Index("ix_predictions_answered", "answered_id",
          postgresql_where=text("answered_id IS NOT NULL"),
          sqlite_where=text("answered_id IS NOT NULL")),
)

sales = Table(
    "sales", metadata,
    Column("prediction_id", String(32),
           ForeignKey("predictions.id", ondelete="CASCADE"), primary_key=True),
    Column("sale_price", Float, nullable=False),
    Column("sale_date", Date, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
)

# Clients' API keys. The secret itself is never stored: only its SHA-256
# (a key carries 256 random bits, so a fast hash is enough) and the first
# characters, which name the key in lists and logs.
api_keys = Table(
    "api_keys", metadata,
    Column("id", String(32), primary_key=True, comment="public id (hex)"),
    Column("prefix", String(16), nullable=False,
           comment="the key's first characters, to recognise it"),
    Column("digest", LargeBinary(32), nullable=False, unique=True,
           comment="SHA-256 of the whole key"),
    Column("name", String(100), nullable=False, comment="who holds it"),
    Column("scopes", String(100), nullable=False,
           comment="space-separated: predict, sales, admin"),
    Column("quota", String(200), nullable=True,
           comment="flask-limiter notation; empty: API_KEY_QUOTA"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True,
           comment="updated at most once a minute"),
    Column("revoked_at", DateTime(timezone=True), nullable=True,
           comment="refused from this moment (a rotation may set it ahead)"),
    Column("replaced_by", String(32), nullable=True,
           comment="the key a rotation issued in its place"),
)

api_key_usage = Table(
    "api_key_usage", metadata,
    Column("key_id", String(32), ForeignKey("api_keys.id", ondelete="CASCADE"),
           primary_key=True),
    Column("day", Date, primary_key=True, comment="UTC"),
    Column("requests", BigInteger, nullable=False),
    Column("estimates", BigInteger, nullable=False,
           comment="homes priced (a batch counts each home)"),
)

# Scoring jobs (POST /v1/jobs): the queue the job processes claim from
# (``jobs.queue``), and each job's state. The files (upload, result,
# refused rows) live in JOBS_DIR under the job's id.
scoring_jobs = Table(
    "scoring_jobs", metadata,
    Column("id", String(32), primary_key=True, comment="job id (hex)"),
    Column("owner", String(100), nullable=False,
           comment="key:<id> or address:<ip>: who may see it"),
    Column("state", String(16), nullable=False,
           comment="queued, running, succeeded, failed or cancelled"),
    Column("version", String(80), nullable=True,
           comment="the version asked for; null: the active one"),
    Column("explain", Boolean, nullable=False),
    Column("upload_bytes", BigInteger, nullable=False),
    Column("model_version", String(80), nullable=True,
           comment="the version that made the estimates"),
    Column("rows_total", BigInteger, nullable=True),
    Column("rows_done", BigInteger, nullable=False),
    Column("rows_failed", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False,
           comment="claims by a job process (a crashed one's lease runs out)"),
    Column("worker", String(128), nullable=True,
           comment="the process holding the job (host:pid)"),
    Column("cancel_requested", Boolean, nullable=False),
    Column("error", String(2000), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True,
           comment="the holder's last sign of life: its lease"),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=False,
           comment="the job and its files are deleted after this"),
    # Claims look for the oldest queued job; a client lists its own.
    Index("ix_scoring_jobs_state_created", "state", "created_at"),
    Index("ix_scoring_jobs_owner_created", "owner", "created_at"),
)
