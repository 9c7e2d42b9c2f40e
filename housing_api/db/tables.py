"""The tables: every estimate answered, and the sale prices reported for them."""
from sqlalchemy import (
    Column, Date, DateTime, Float, ForeignKey, Index, MetaData, String, Table,
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
    Column("client", String(64), nullable=True,
           comment="client address (the API key id once keys exist)"),
    *(Column(name, Float, nullable=True) for name in NUMERIC_COLUMNS),
    Column("zipcode", String(5), nullable=False),
    Column("price", Float, nullable=False, comment="USD, unrounded"),
    Column("lower", Float, nullable=False),
    Column("upper", Float, nullable=False),
    Column("level", Float, nullable=False),
    # The one index beside the key, for every query by version and time.
    # Each index costs every logged row (migration 0002).
    Index("ix_predictions_version_created", "model_version", "created_at"),
)

sales = Table(
    "sales", metadata,
    Column("prediction_id", String(32),
           ForeignKey("predictions.id", ondelete="CASCADE"), primary_key=True),
    Column("sale_price", Float, nullable=False),
    Column("sale_date", Date, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
)
