"""One engine per app; after a fork, each process connects on its own."""
import os

from sqlalchemy import text

from housing_api.db import ProcessEngine


def backend(engine) -> int | None:
    """The PostgreSQL backend serving a connection from the pool (None: SQLite)."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return connection.execute(text("SELECT pg_backend_pid()")).scalar()
        return connection.execute(text("SELECT 1")).scalar() and None


def test_a_forked_child_gets_a_pool_of_its_own(database_url):
    engines = ProcessEngine(database_url)
    parent = backend(engines.get())  # the parent's pool now holds a connection
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            inherited = engines._engine.pool
            engine = engines.get()
            answer = (engine is engines._engine, engine.pool is not inherited,
                      parent is None or backend(engine) != parent)
            os.write(write, repr(answer).encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 100).decode()
    os.close(read)
    # Same engine, a new pool, and (PostgreSQL) another server backend.
    assert status == 0 and answer == "(True, True, True)"
    # The child left the parent's connection alone: it still answers.
    assert backend(engines.get()) == parent
    engines.dispose()
