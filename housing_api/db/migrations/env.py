"""Alembic's entry point: run the migrations on the connection it is given.

``housing-api db upgrade`` (``housing_api.db.migrate``) passes an open
connection, holding the migration lock, in ``config.attributes``.
"""
from alembic import context

from housing_api.db.tables import metadata


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    # migrate.upgrade's progress, after each migration applied.
    applied = context.config.attributes.get("on_version_apply")
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      on_version_apply=[applied] if applied else [])
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
