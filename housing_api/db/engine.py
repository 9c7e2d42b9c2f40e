"""Engines for SQLite (the embedded default) and PostgreSQL.

A pool created in Gunicorn's master and used after fork would share sockets
between processes. :class:`ProcessEngine` makes its engine where the app is
created (the master, with ``preload_app``: its modules and dialect then sit
in pages every worker shares, 5 MB less in each) and gives each process a
fresh, empty pool on first use there (``Engine.dispose(close=False)``, as
SQLAlchemy's "pooling and multiprocessing" guide says). The master never
connects.
"""
import os
import threading
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

#: Seconds a SQLite writer waits for another process's write lock.
SQLITE_BUSY_TIMEOUT = 5.0
#: Seconds to wait for PostgreSQL to accept a connection.
CONNECT_TIMEOUT = 3


def make_engine(url: str) -> Engine:
    """Return an engine for ``url``, tuned for several writing processes."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=2, max_overflow=2,
        connect_args={"connect_timeout": CONNECT_TIMEOUT})


def _sqlite_pragmas(dbapi_connection, record):
    # WAL: readers never block the writer, and several workers write one
    # file; a write waits (busy timeout) rather than failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class ProcessEngine:
    """The engine for ``url``, with a pool of this process's own."""

    def __init__(self, url: str):
        self.url = url
        self._engine, self._pid = make_engine(url), os.getpid()
        self._lock = threading.Lock()

    def get(self) -> Engine:
        """This process's engine (its pool replaced, first, after a fork)."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    # Leave the parent's connections to the parent.
                    self._engine.dispose(close=False)
                    self._pid = os.getpid()
        return self._engine

    def dispose(self) -> None:
        """Close this process's connections."""
        if self._pid == os.getpid():
            self._engine.dispose()
