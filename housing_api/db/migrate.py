"""``housing-api db upgrade``: migrations, once, however many replicas start.

PostgreSQL: a session advisory lock serializes replicas that start
together; the second one finds the schema at head and does nothing.
SQLite: a file lock beside the database does the same for processes of
one host.
"""
import zlib
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy import text

from ..ops import progress
from .engine import make_engine

MIGRATIONS = Path(__file__).with_name("migrations")
#: The advisory lock's key: any fixed 64-bit number, the same for every replica.
LOCK_KEY = zlib.crc32(b"housing_api.db.migrate")


def alembic_config() -> Config:
    """Alembic's configuration, without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    """The newest revision this code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the database at ``url``; return the revisions before and after."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection, _migration_lock(url, connection):
            before = _revision(connection)
            config = alembic_config()
            config.attributes["connection"] = connection
            pending = _pending(config, before, revision)
            if pending:
                with progress.steps(f"migrating the database from "
                                    f"{before or 'empty'}", total=pending,
                                    unit="migrations") as bar:
                    config.attributes["on_version_apply"] = (
                        lambda step, **kwargs: bar.update(
                            postfix=f"at {step.up_revision_id}"))
                    command.upgrade(config, revision)
            connection.commit()
            return before, _revision(connection)
    finally:
        engine.dispose()


def _pending(config: Config, before: str | None, revision: str) -> int:
    """How many migrations lie between ``before`` and ``revision``."""
    script = ScriptDirectory.from_config(config)
    return sum(1 for _ in script.iterate_revisions(revision, before))


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at (None before the first)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return _revision(connection)
    finally:
        engine.dispose()


def _revision(connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _migration_lock(url: str, connection):
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                               {"key": LOCK_KEY})
            connection.commit()
    elif connection.dialect.name == "sqlite" and url.split("///", 1)[-1] not in (
            "", ":memory:"):
        with FileLock(url.split("///", 1)[-1] + ".migrate.lock", timeout=60):
            yield
    else:
        yield
