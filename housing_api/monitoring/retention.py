"""How long the log keeps estimates: ``housing-api db purge``."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select

from ..db import make_engine, predictions, sales


def purge(url: str, days: float, now: datetime | None = None) -> tuple[int, int]:
    """Delete estimates older than ``days`` and their sales; return both counts."""
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    # Version by version, so that the (model_version, created_at) index
    # finds the old rows: there is no index on the time alone.
    where = (predictions.c.model_version.in_(
                 select(predictions.c.model_version).distinct()),
             predictions.c.created_at < cutoff)
    old = select(predictions.c.id).where(*where)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            n_sales = connection.scalar(
                select(func.count()).select_from(sales)
                .where(sales.c.prediction_id.in_(old)))
            # Sales first: the foreign key's cascade is not relied upon.
            connection.execute(delete(sales).where(sales.c.prediction_id.in_(old)))
            n_predictions = connection.execute(
                delete(predictions).where(*where)
            ).rowcount
        return n_predictions, n_sales
    finally:
        engine.dispose()
