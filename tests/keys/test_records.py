"""API keys in the database: made, revoked, rotated (SQLite, PostgreSQL)."""
import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from housing_api.db import api_keys
from housing_api.keys import (
    KeyNotFoundError, KeyRevokedError, create_key, digest, list_keys,
    revoke_key, rotate_key,
)


def stored_rows(engine) -> list[dict]:
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(select(api_keys)).mappings()]


def test_a_key_is_shown_once_and_stored_only_as_its_hash(engine):
    key, secret = create_key(engine, "agents-app", ["predict"], "100 per second")
    # 32 random bytes: 43 characters of URL-safe base64 after "hk_".
    assert secret.startswith("hk_") and len(secret) == 3 + 43
    (row,) = stored_rows(engine)
    assert secret not in repr(row)
    assert row["digest"] == hashlib.sha256(secret.encode()).digest() == digest(secret)
    assert row["prefix"] == key.prefix == secret[:11]
    assert (key.name, key.scopes, key.quota) == (
        "agents-app", frozenset({"predict"}), "100 per second")
    assert not key.revoked() and key.last_used_at is None
    assert list_keys(engine) == [key]


def test_every_key_is_new(engine):
    secrets = {create_key(engine, "a", ["predict"])[1] for _ in range(20)}
    assert len(secrets) == 20
    assert len({row["id"] for row in stored_rows(engine)}) == 20


@pytest.mark.parametrize("scopes", [[], ["predict", "root"]])
def test_scopes_are_checked(engine, scopes):
    with pytest.raises(ValueError, match="scopes must be some of"):
        create_key(engine, "a", scopes)
    assert stored_rows(engine) == []


def test_revoking_twice_is_revoking_once(engine):
    key, _ = create_key(engine, "a", ["sales"])
    first = revoke_key(engine, key.id)
    assert first.revoked()
    assert revoke_key(engine, key.id).revoked_at == first.revoked_at
    with pytest.raises(KeyNotFoundError):
        revoke_key(engine, "0" * 16)


def test_a_rotation_issues_a_twin_and_ends_the_old_key_when_asked(engine):
    now = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
    old, old_secret = create_key(engine, "agents-app", ["predict", "sales"],
                                 "5 per second", now=now)
    ended, new, secret = rotate_key(engine, old.id, old_valid_for=3600, now=now)
    assert (new.name, new.scopes, new.quota) == (old.name, old.scopes, old.quota)
    assert new.id != old.id and secret != old_secret
    assert ended.replaced_by == new.id
    assert ended.revoked_at == now + timedelta(hours=1)
    assert not ended.revoked(now + timedelta(minutes=59))
    assert ended.revoked(now + timedelta(hours=1))
    # Rotated again sooner: the earlier end stands, not a later one.
    again, _, _ = rotate_key(engine, old.id, old_valid_for=7200, now=now)
    assert again.revoked_at == now + timedelta(hours=1)
    revoke_key(engine, new.id)
    with pytest.raises(KeyRevokedError):
        rotate_key(engine, new.id)
