"""``housing-api db``: migrate the database, see its revision, purge old records."""
import click

from .context import config, fail


@click.group("db")
def db_group():
    """Create or migrate the database; purge estimates past their retention."""


@db_group.command("upgrade")
def upgrade_command():
    """Migrate the database to this code's schema (safe on every start).

    It runs before the server starts (deploy/entrypoint.sh), so it logs the
    way the server does: LOG_FORMAT (JSON by default), LOG_LEVEL.
    """
    import logging

    from sqlalchemy.exc import SQLAlchemyError

    from ..db import migrate
    from ..ops import logs

    from ..ops import progress

    settings = config()
    logs.configure(settings["LOG_FORMAT"], settings["LOG_LEVEL"])
    url = settings["DATABASE_URL"]
    log = logging.getLogger("housing_api.db")
    try:
        # Each migration as it is applied: a bar on a terminal, else a log line.
        with progress.shown(emit=lambda line: log.info(line, extra={
                "database": _safe(url)})):
            before, after = migrate.upgrade(url)
    except SQLAlchemyError as exc:
        fail(f"cannot migrate {_safe(url)}: {getattr(exc, 'orig', None) or exc}")
    log.info(
        f"database {_safe(url)}: " + (f"at {after}" if before == after
                                      else f"{before or 'empty'} -> {after}"),
        extra={"database": _safe(url), "before": before, "after": after})


@db_group.command("current")
def current_command():
    """Print the database's schema revision and this code's."""
    from ..db import migrate

    url = config()["DATABASE_URL"]
    click.echo(f"database {_safe(url)}: {migrate.current(url) or 'empty'} "
               f"(this code: {migrate.head()})")


@db_group.command("purge")
@click.option("--days", type=click.FloatRange(min=0), default=None,
              help="Keep this many days [default: PREDICTION_LOG_RETENTION_DAYS].")
def purge_command(days):
    """Delete estimates older than the retention period, with their sales."""
    from ..monitoring.retention import purge

    settings = config()
    days = settings["PREDICTION_LOG_RETENTION_DAYS"] if days is None else days
    n_predictions, n_sales = purge(settings["DATABASE_URL"], float(days))
    click.echo(f"deleted {n_predictions} estimates older than {days:g} days "
               f"and {n_sales} reported sales")


def _safe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
