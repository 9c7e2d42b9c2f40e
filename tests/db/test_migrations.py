"""``housing-api db upgrade``: the schema, once, however many start together."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from conftest import DATA_DIR, HousingCliRunner
from databases import fresh_database
from housing_api.db import make_engine, metadata, migrate

HOUSING_API = Path(sys.executable).with_name("housing-api")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    with fresh_database(request.param, tmp_path) as url:
        yield url


def test_upgrade_builds_exactly_the_tables_the_code_declares(empty_url):
    assert migrate.upgrade(empty_url) == (None, migrate.head())
    engine = make_engine(empty_url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection),
                                metadata) == []
        assert {"predictions", "sales"} <= set(inspect(connection).get_table_names())
    engine.dispose()


def test_a_second_upgrade_changes_nothing(empty_url):
    migrate.upgrade(empty_url)
    assert migrate.upgrade(empty_url) == (migrate.head(), migrate.head())
    assert migrate.current(empty_url) == migrate.head()


def test_replicas_starting_together_migrate_once(empty_url):
    """Four processes upgrade one empty database at the same moment."""
    env = {"HOUSING_DATABASE_URL": empty_url, "PATH": str(HOUSING_API.parent)}
    procs = [subprocess.Popen([str(HOUSING_API), "db", "upgrade"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    results = [(p.wait(120), *p.communicate()) for p in procs]
    assert all(code == 0 for code, _, _ in results), results
    # One of them migrated; the others found the schema at head.
    outs = [err for _, _, err in results]
    assert sum(f"empty -> {migrate.head()}" in out for out in outs) == 1
    assert sum(f": at {migrate.head()}" in out for out in outs) == 3
    engine = make_engine(empty_url)
    with engine.connect() as connection:
        assert connection.scalar(
            select(func.count()).select_from(text("alembic_version"))) == 1
    engine.dispose()


def test_db_commands_say_where_the_schema_is(tmp_path):
    url = f"sqlite:///{tmp_path / 'housing.db'}"
    runner = HousingCliRunner({"DATABASE_URL": url, "DATA_DIR": DATA_DIR})
    assert runner.invoke(args=["db", "current"]).stdout == (
        f"database {url}: empty (this code: {migrate.head()})\n")
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0
    # It runs before the server (the entrypoint): one JSON line per event.
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records[-1]["message"] == f"database {url}: empty -> {migrate.head()}"
    assert (records[-1]["before"], records[-1]["after"]) == (None, migrate.head())
    # Its progress as it migrates, in the same lines.
    steps = [r["message"] for r in records if r["logger"] == "housing_api.db"]
    count = len(list(migrate.ScriptDirectory.from_config(
        migrate.alembic_config()).walk_revisions()))
    assert steps[0] == f"migrating the database from empty: 0 of {count} migrations"
    assert steps[1].startswith(f"migrating the database from empty: done {count} "
                               "migrations in ")
    assert steps[1].endswith(f"; at {migrate.head()}")
    again = runner.invoke(args=["db", "upgrade"])
    assert json.loads(again.stderr.splitlines()[-1])["message"] == (
        f"database {url}: at {migrate.head()}")
    assert "migrating" not in again.stderr  # nothing to do, nothing shown
    assert migrate.current(url) == migrate.head()


def test_an_unreachable_database_is_a_clear_failure():
    runner = HousingCliRunner({
        "DATABASE_URL": "postgresql+psycopg://nobody:secret@127.0.0.1:1/housing"})
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 1
    assert "cannot migrate postgresql+psycopg://nobody:***@127.0.0.1:1/housing" \
        in result.stderr
    assert "secret" not in result.output + result.stderr


def test_a_malformed_database_url_is_a_clear_failure():
    runner = HousingCliRunner({"DATABASE_URL": "postgres//nobody:secret@db/housing"})
    for command in (["db", "upgrade"], ["db", "current"], ["db", "purge"]):
        result = runner.invoke(args=command)
        assert result.exit_code == 1, command
        assert "HOUSING_DATABASE_URL is not a SQLAlchemy database URL" \
            in result.stderr
        assert "secret" not in result.output + result.stderr
        assert "Traceback" not in result.output + result.stderr
