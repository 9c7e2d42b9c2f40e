"""The database: the engine, the tables, and their migrations (Alembic).

Holds the records the service promises to keep (the prediction log, the
reported sales, the clients' API keys and their usage) and the queue of
scoring jobs. Imports the client
columns of ``inference``, SQLAlchemy and Alembic; no Flask. SQLite in the
instance folder is the embedded default; production sets ``DATABASE_URL``
to PostgreSQL.
"""
from .bulk import BulkInsert
from .engine import ProcessEngine, make_engine
from .tables import (
    api_key_usage, api_keys, metadata, predictions, sales, scoring_jobs,
)

__all__ = ["BulkInsert", "ProcessEngine", "make_engine", "api_key_usage",
           "api_keys", "metadata", "predictions", "sales", "scoring_jobs"]
