"""``housing-api keys``: create, list, revoke and rotate API keys; usage.

The same as ``/admin/keys``, straight on the configured database: the way
to make the first admin key without an admin token. Running servers know
a new or changed key within API_KEY_REFRESH_INTERVAL seconds.
"""
import click

from .context import config, fail

#: keys.SCOPES, written out: importing it would load SQLAlchemy for --help.
SCOPES = ("predict", "sales", "admin")


def _engine():
    from ..db import make_engine

    return make_engine(config()["DATABASE_URL"])


def _run(call, *args, **kwargs):
    """``call(engine, ...)``, with the database's failures as clean errors."""
    from sqlalchemy.exc import SQLAlchemyError

    from ..keys import KeyNotFoundError, KeyRevokedError

    engine = _engine()
    try:
        return call(engine, *args, **kwargs)
    except (KeyNotFoundError, KeyRevokedError) as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"the database refused: {getattr(exc, 'orig', None) or exc} "
             "(has `housing-api db upgrade` run?)")
    finally:
        engine.dispose()


def _show(key) -> str:
    state = ("revoked" if key.revoked() else
             f"until {key.revoked_at:%Y-%m-%d %H:%M:%S}Z" if key.revoked_at
             else "active")
    return (f"{key.id}  {key.prefix}...  {key.name}  "
            f"scopes={','.join(sorted(key.scopes))}  "
            f"quota={key.quota or 'default'}  {state}")


def _secret_note(secret: str) -> None:
    click.echo(f"key: {secret}")
    click.echo("Shown this once: only its hash is stored.", err=True)


def _quota(ctx, param, value):
    if value is None:
        return None
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise click.BadParameter("not a rate limit: e.g. '100 per second'")
    return value


@click.group("keys")
def keys_group():
    """Create, list, revoke and rotate clients' API keys; see their usage."""


@keys_group.command("create")
@click.option("--name", required=True, help="Who holds the key.")
@click.option("--scope", "scopes", multiple=True, required=True,
              type=click.Choice(SCOPES), help="What it may do (repeatable).")
@click.option("--quota", callback=_quota,
              help="Its rate limit, e.g. '100 per second' [default: "
                   "API_KEY_QUOTA].")
def create_command(name, scopes, quota):
    """Create a key and print it, this once."""
    from ..keys import create_key

    key, secret = _run(create_key, name, scopes, quota)
    click.echo(_show(key))
    _secret_note(secret)


@keys_group.command("list")
def list_command():
    """List the keys (never their secrets)."""
    from ..keys import list_keys

    keys = _run(list_keys)
    if not keys:
        click.echo("no API keys")
    for key in keys:
        click.echo(_show(key))


@keys_group.command("revoke")
@click.argument("key_id")
def revoke_command(key_id):
    """Refuse the key KEY_ID from now on."""
    from ..keys import revoke_key

    click.echo(_show(_run(revoke_key, key_id)))


@keys_group.command("rotate")
@click.argument("key_id")
@click.option("--old-key-valid-for", type=click.IntRange(0, 30 * 24 * 3600),
              default=0, show_default=True,
              help="Seconds the old key keeps working.")
def rotate_command(key_id, old_key_valid_for):
    """Issue a replacement for KEY_ID (same name, scopes and quota)."""
    from ..keys import rotate_key

    old, new, secret = _run(rotate_key, key_id, old_valid_for=old_key_valid_for)
    click.echo(f"old: {_show(old)}")
    click.echo(f"new: {_show(new)}")
    _secret_note(secret)


@keys_group.command("usage")
@click.argument("key_id")
@click.option("--days", type=click.IntRange(1, 3660), default=30,
              show_default=True, help="The last this many UTC days.")
def usage_command(key_id, days):
    """Requests and homes priced per day for KEY_ID."""
    from datetime import datetime, timedelta, timezone

    from ..keys import usage

    since = (datetime.now(timezone.utc) - timedelta(days=days - 1)).date()
    key, rows = _run(usage, key_id, since=since)
    click.echo(_show(key))
    for row in rows:
        click.echo(f"{row['day']}  {row['requests']:>10,} requests  "
                   f"{row['estimates']:>12,} estimates")
    click.echo(f"total       {sum(r['requests'] for r in rows):>10,} requests  "
               f"{sum(r['estimates'] for r in rows):>12,} estimates")
