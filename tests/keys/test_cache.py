"""Each process's copy of the keys, and the usage it counts (SQLite, PostgreSQL)."""
import statistics
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from housing_api.db import ProcessEngine, api_key_usage
from housing_api.keys import (
    KeyCache, create_key, digest, list_keys, revoke_key, usage,
)
from housing_api.keys import cache as cache_module


@pytest.fixture
def cache(database_url):
    engines = ProcessEngine(database_url)
    cache = KeyCache(engines, interval=3600)  # refreshed by hand below
    yield cache
    cache.close()
    engines.dispose()


def test_the_cache_knows_keys_by_their_secret(engine, cache):
    key, secret = create_key(engine, "a", ["predict"])
    assert cache.lookup(secret) == key
    assert cache.lookup(secret + "x") is None
    assert cache.lookup(secret[:-1]) is None
    assert cache.lookup("") is None


def test_other_processes_changes_arrive_at_the_next_refresh(engine, cache):
    assert cache.lookup("hk_nothing") is None  # loaded: no keys
    key, secret = create_key(engine, "a", ["predict"])
    assert cache.lookup(secret) is None
    cache.refresh()
    assert cache.lookup(secret) == key
    revoke_key(engine, key.id)
    assert not cache.lookup(secret).revoked()
    cache.refresh()
    assert cache.lookup(secret).revoked()


def test_this_processes_changes_count_at_once(engine, cache):
    cache.lookup("hk_nothing")
    key, secret = create_key(engine, "a", ["predict"])
    cache.put(key, digest(secret))
    assert cache.lookup(secret) == key
    cache.put(revoke_key(engine, key.id))
    assert cache.lookup(secret).revoked()


def test_the_refresher_thread_picks_up_a_revocation(database_url, engine):
    engines = ProcessEngine(database_url)
    cache = KeyCache(engines, interval=0.1)
    try:
        key, secret = create_key(engine, "a", ["predict"])
        assert cache.lookup(secret) == key
        revoke_key(engine, key.id)
        deadline = time.monotonic() + 5
        while not cache.lookup(secret).revoked():
            assert time.monotonic() < deadline, "never refreshed"
            time.sleep(0.05)
    finally:
        cache.close()
        engines.dispose()


def usage_rows(engine) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(
            select(api_key_usage.c.key_id, api_key_usage.c.requests,
                   api_key_usage.c.estimates))]


def test_usage_is_counted_per_day_and_adds_up(engine, cache):
    key, secret = create_key(engine, "a", ["predict"])
    other, _ = create_key(engine, "b", ["predict"])
    cache.lookup(secret)
    for estimates in (1, 1000, 0):
        cache.record_use(key, estimates)
    cache.record_use(other, 1)
    cache.flush()
    cache.record_use(key, 5)
    cache.flush()
    cache.flush()  # nothing new: no change
    assert sorted(usage_rows(engine)) == sorted([(key.id, 4, 1006), (other.id, 1, 1)])
    found, days = usage(engine, key.id)
    assert found.id == key.id
    assert days == [{"day": datetime.now(timezone.utc).date(), "requests": 4,
                     "estimates": 1006}]
    assert usage(engine, key.id, since=days[0]["day"] + timedelta(days=1))[1] == []


def test_last_used_is_written_at_most_once_a_minute(engine, cache, monkeypatch):
    key, secret = create_key(engine, "a", ["predict"])
    cache.lookup(secret)
    cache.record_use(key)
    cache.flush()
    first = list_keys(engine)[0].last_used_at
    assert first is not None
    writes = []
    real = cache_module._write_usage
    monkeypatch.setattr(cache_module, "_write_usage",
                        lambda e, counts, last_used: writes.append(last_used)
                        or real(e, counts, last_used))
    cache.record_use(key)
    cache.flush()
    assert writes == [{}]
    assert list_keys(engine)[0].last_used_at == first


def test_usage_waits_while_the_database_is_away(engine, cache, monkeypatch):
    key, secret = create_key(engine, "a", ["predict"])
    cache.lookup(secret)
    cache.record_use(key, 3)

    def away(*args):
        raise OperationalError("INSERT", {}, ConnectionRefusedError())

    with monkeypatch.context() as patch:
        patch.setattr(cache_module, "_write_usage", away)
        cache.refresh()  # logs, keeps the counts, keeps the keys
        assert cache.lookup(secret) == key
    cache.record_use(key, 4)
    cache.close()  # the worker's exit writes what waited
    assert usage_rows(engine) == [(key.id, 2, 7)]


def test_no_key_is_accepted_before_the_keys_could_be_read():
    engines = ProcessEngine("postgresql+psycopg://housing@127.0.0.1:1/housing")
    cache = KeyCache(engines, interval=3600)
    try:
        with pytest.raises(cache_module.KeysUnavailableError):
            cache.lookup("hk_anything")
        assert not cache.any_with_scope("admin")
    finally:
        cache.close()


def test_known_and_unknown_keys_take_the_same_time(engine, cache):
    """A lookup hashes the whole key and looks the digest up in memory:
    an unknown key takes no other path (no database round trip, no
    fallback), and nothing compares the secret character by character."""
    _, secret = create_key(engine, "a", ["predict"])
    cache.lookup(secret)
    near = secret[:-1] + ("A" if secret[-1] != "A" else "B")  # one character off
    far = "hk_" + "x" * 43
    samples = {s: [] for s in (secret, near, far)}
    for _ in range(30):
        for candidate, times in samples.items():
            start = time.perf_counter_ns()
            for _ in range(200):
                cache.lookup(candidate)
            times.append(time.perf_counter_ns() - start)
    medians = {s: statistics.median(t) for s, t in samples.items()}
    spread = max(medians.values()) / min(medians.values())
    assert spread < 1.5, medians


def test_counts_of_a_process_that_exits_during_an_outage_are_kept(
        database_url, engine, tmp_path, monkeypatch):
    engines, spool = ProcessEngine(database_url), tmp_path / "spool"
    key, secret = create_key(engine, "a", ["predict"])
    exiting = KeyCache(engines, interval=3600, spool_dir=spool)
    exiting.lookup(secret)
    exiting.record_use(key, 3)
    exiting.record_use(key, 2)

    def away(*args):
        raise OperationalError("INSERT", {}, ConnectionRefusedError())

    with monkeypatch.context() as patch:
        patch.setattr(cache_module, "_write_usage", away)
        exiting.close()  # a worker's exit, the database still away
        assert usage_rows(engine) == []
        (kept,) = spool.glob("key-usage-*.json")
        # A process starting meanwhile takes the file, and keeps the counts
        # while the database stays away (in memory, then in a file again).
        waiting = KeyCache(engines, interval=3600, spool_dir=spool)
        waiting.lookup(secret)
        assert not kept.exists()
        waiting.close()
    # The next process, the database back, writes them.
    successor = KeyCache(engines, interval=3600, spool_dir=spool)
    try:
        successor.lookup(secret)
        assert usage_rows(engine) == [(key.id, 2, 5)]
        assert list(spool.iterdir()) == []
    finally:
        successor.close()
        engines.dispose()
