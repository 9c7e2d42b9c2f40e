"""Databases for tests: SQLite files, and PostgreSQL when one is reachable.

PostgreSQL tests use a fresh database on the server at
``HOUSING_TEST_POSTGRES_URL`` (default: the local one, trust auth) and drop
it afterwards. Where none runs they skip, saying how to get one; with
``HOUSING_REQUIRE_POSTGRES=1`` (CI) they fail instead.
"""
import os
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

SERVER_URL = os.environ.get("HOUSING_TEST_POSTGRES_URL",
                            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REQUIRED = os.environ.get("HOUSING_REQUIRE_POSTGRES") == "1"
HOW = ("start one, e.g. `docker run -d -p 5432:5432 -e "
       "POSTGRES_HOST_AUTH_METHOD=trust postgres:15` or Debian's "
       "`apt-get install postgresql`, or point HOUSING_TEST_POSTGRES_URL at one")


def unavailable(reason: str):
    """Skip for want of PostgreSQL, or fail where it is required (CI)."""
    if REQUIRED:
        pytest.fail(f"{reason}, and HOUSING_REQUIRE_POSTGRES=1 requires it")
    pytest.skip(f"{reason}: {HOW}")


@contextmanager
def fresh_postgres_database():
    """Yield the URL of a new, empty database; drop it afterwards."""
    admin = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 3})
    name = f"housing_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        unavailable(f"PostgreSQL is not reachable at "
                    f"{make_url(SERVER_URL).render_as_string(hide_password=True)} "
                    f"({type(exc.orig).__name__})")
    url = make_url(SERVER_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_database(kind: str, tmp_path):
    """Yield the URL of an empty database of ``kind`` (sqlite or postgresql)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / f'housing-{uuid.uuid4().hex[:8]}.db'}"
    else:
        with fresh_postgres_database() as url:
            yield url
