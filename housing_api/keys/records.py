"""API keys in the database: create, list, revoke, rotate, and their usage."""
import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select, update

from ..db import api_key_usage, api_keys

#: What a key may be allowed to do.
SCOPES = ("predict", "sales", "admin")
#: Every key starts so: a leaked one is easy to search for in code and logs.
KEY_START = "hk_"
#: Characters of the key kept and shown: ``hk_`` and 8 of the secret.
PREFIX_LENGTH = len(KEY_START) + 8


@dataclass(frozen=True)
class ApiKey:
    """A key as stored (never its secret)."""

    id: str
    prefix: str
    name: str
    scopes: frozenset
    quota: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    replaced_by: str | None

    def revoked(self, now: datetime | None = None) -> bool:
        return self.revoked_at is not None and \
            self.revoked_at <= (now or datetime.now(timezone.utc))

    def public(self) -> dict:
        """What lists show: everything but the digest."""
        return {"id": self.id, "prefix": self.prefix, "name": self.name,
                "scopes": sorted(self.scopes), "quota": self.quota,
                "created_at": self.created_at, "last_used_at": self.last_used_at,
                "revoked_at": self.revoked_at, "revoked": self.revoked(),
                "replaced_by": self.replaced_by}


class KeyNotFoundError(LookupError):
    """No key has this id."""


class KeyRevokedError(ValueError):
    """The key is revoked: it cannot be rotated."""


def digest(key: str) -> bytes:
    """The SHA-256 of ``key``, as stored and as looked up."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def new_key() -> str:
    """A new secret: ``hk_`` and 32 random bytes in URL-safe base64."""
    return KEY_START + secrets.token_urlsafe(32)


def create_key(engine, name: str, scopes, quota: str | None = None,
               now: datetime | None = None) -> tuple[ApiKey, str]:
    """Store a new key; return it and its secret (shown this once)."""
    with engine.begin() as connection:
        return _insert(connection, name, scopes, quota, now or _now())


def _insert(connection, name, scopes, quota, now) -> tuple[ApiKey, str]:
    scopes = frozenset(scopes)
    unknown = scopes - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}")
    secret = new_key()
    row = {"id": os.urandom(8).hex(), "prefix": secret[:PREFIX_LENGTH],
           "digest": digest(secret), "name": name,
           "scopes": " ".join(sorted(scopes)), "quota": quota or None,
           "created_at": now, "last_used_at": None, "revoked_at": None,
           "replaced_by": None}
    connection.execute(api_keys.insert().values(**row))
    return _key(row), secret


def list_keys(engine) -> list[ApiKey]:
    """Every key, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(select(api_keys).order_by(
            api_keys.c.created_at, api_keys.c.id)).mappings()
        return [_key(row) for row in rows]


def keys_by_digest(engine) -> dict[bytes, ApiKey]:
    """Every key by its digest: what a :class:`KeyCache` holds."""
    with engine.connect() as connection:
        return {row["digest"]: _key(row)
                for row in connection.execute(select(api_keys)).mappings()}


def get_key(connection, key_id: str) -> ApiKey:
    row = connection.execute(
        select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
    if row is None:
        raise KeyNotFoundError(f"no API key {key_id!r}")
    return _key(row)


def revoke_key(engine, key_id: str, now: datetime | None = None) -> ApiKey:
    """Refuse the key from now on (again: no change); return it."""
    now = now or _now()
    with engine.begin() as connection:
        key = get_key(connection, key_id)
        if key.revoked(now):
            return key
        connection.execute(update(api_keys).where(api_keys.c.id == key_id)
                           .values(revoked_at=now))
        return get_key(connection, key_id)


def rotate_key(engine, key_id: str, old_valid_for: float = 0.0,
               now: datetime | None = None) -> tuple[ApiKey, ApiKey, str]:
    """Issue a key with the same name, scopes and quota in place of this one.

    The old key is refused after ``old_valid_for`` seconds (0: at once), so
    that its holder can switch without a gap. Returns the old key, the new
    one and the new secret. A revoked key cannot be rotated.
    """
    now = now or _now()
    with engine.begin() as connection:
        old = get_key(connection, key_id)
        if old.revoked(now):
            raise KeyRevokedError(f"API key {key_id} is revoked: create a new one")
        new, secret = _insert(connection, old.name, old.scopes, old.quota, now)
        ends = now + timedelta(seconds=old_valid_for)
        if old.revoked_at is not None:  # rotated before, ending later
            ends = min(ends, old.revoked_at)
        connection.execute(update(api_keys).where(api_keys.c.id == key_id)
                           .values(revoked_at=ends, replaced_by=new.id))
        return get_key(connection, key_id), new, secret


def usage(engine, key_id: str,
          since: date | None = None) -> tuple[ApiKey, list[dict]]:
    """The key, and its requests and estimates per UTC day, oldest first."""
    with engine.connect() as connection:
        key = get_key(connection, key_id)
        query = select(api_key_usage.c.day, api_key_usage.c.requests,
                       api_key_usage.c.estimates).where(
            api_key_usage.c.key_id == key_id)
        if since is not None:
            query = query.where(api_key_usage.c.day >= since)
        return key, [dict(row) for row in connection.execute(
            query.order_by(api_key_usage.c.day)).mappings()]


def _key(row) -> ApiKey:
    return ApiKey(
        id=row["id"], prefix=row["prefix"], name=row["name"],
        scopes=frozenset(row["scopes"].split()), quota=row["quota"],
        created_at=_utc(row["created_at"]),
        last_used_at=_utc(row["last_used_at"]),
        revoked_at=_utc(row["revoked_at"]), replaced_by=row["replaced_by"])


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands times back without their zone; they were stored in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _now() -> datetime:
    return datetime.now(timezone.utc)
