"""The database: the engine, the tables, and their migrations (Alembic).

Holds the records the service promises to keep (the prediction log, the
reported sales). Imports the client columns of ``inference``, SQLAlchemy and
Alembic; no Flask. SQLite in the instance folder is the embedded
default; production sets ``DATABASE_URL`` to PostgreSQL.
"""
from .bulk import BulkInsert
from .engine import ProcessEngine, make_engine
from .tables import metadata, predictions, sales

__all__ = ["BulkInsert", "ProcessEngine", "make_engine", "metadata", "predictions",
           "sales"]
