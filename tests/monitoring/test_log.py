"""The prediction log: every estimate stored once, whatever the database does."""
import json
import sqlite3
import time
import uuid
from datetime import datetime, timezone

import numpy as np
import pytest
from sqlalchemy import select

from housing_api.db import make_engine, migrate, predictions
from housing_api.monitoring.log import COLUMNS, Estimates, PredictionLog, new_ids
from housing_api.monitoring.spool import Spool


def estimates(n: int, version: str = "v1") -> Estimates:
    rng = np.random.default_rng(n)
    price = rng.uniform(2e5, 2e6, n)
    sqft = rng.uniform(500, 5000, n)
    return Estimates(
        ids=new_ids(n), request_id="req", endpoint="predict.Batch",
        model_version=version, client="127.0.0.1", api_key_id=None,
        homes=[{"sqft_living": float(sqft[i]), "bedrooms": 3,
                "zipcode": "98118"} for i in range(n)],
        price=price, lower=price * 0.8, upper=price * 1.2, level=0.8,
        created_at=datetime.now(timezone.utc))


def as_spooled(batch: Estimates) -> list[dict]:
    """``batch`` as a writer keeps it in its spool file."""
    return [dict(zip(COLUMNS, row)) for row in batch.rows()]


def stored(url: str) -> dict:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = {r.id: r for r in connection.execute(select(predictions))}
    engine.dispose()
    return rows


@pytest.fixture
def spool_dir(tmp_path):
    return tmp_path / "spool"


def test_records_are_stored_with_every_field(database_url, spool_dir):
    log = PredictionLog(database_url, spool_dir, flush_interval=0.05)
    batch = estimates(3)
    log.record(batch)
    assert log.flush()
    rows = stored(database_url)
    log.close()
    assert set(rows) == set(batch.ids)
    for i, pid in enumerate(batch.ids):
        row = rows[pid]
        assert row.price == batch.price[i]  # unrounded, bit for bit
        assert (row.lower, row.upper) == (batch.lower[i], batch.upper[i])
        assert row.level == 0.8
        assert row.sqft_living == batch.homes[i]["sqft_living"]
        assert row.bedrooms == 3.0  # an integer input, stored as a number
        assert (row.zipcode, row.model_version, row.endpoint, row.client,
                row.request_id) == ("98118", "v1", "predict.Batch", "127.0.0.1", "req")
        assert row.bathrooms is None  # not sent (minimal inputs)


def test_many_requests_become_few_inserts(database_url, spool_dir):
    log = PredictionLog(database_url, spool_dir, flush_interval=0.2)
    batches = [estimates(1) for _ in range(300)] + [estimates(1200)]
    for batch in batches:
        log.record(batch)
    log.close()
    assert len(stored(database_url)) == 1500
    assert (log.written, log.spooled) == (1500, 0)


def test_while_the_database_is_away_records_wait_on_disk(tmp_path, spool_dir):
    """A database without its tables refuses every insert, like one that is down."""
    url = f"sqlite:///{tmp_path / 'late.db'}"
    log = PredictionLog(url, spool_dir, flush_interval=0.05, retry_interval=0.05)
    first = [estimates(2) for _ in range(5)]
    for batch in first:
        log.record(batch)
    assert log.flush()
    assert log.spooled == 10 and log.written == 0
    lines = log._spool.path.read_text().splitlines()
    spooled = [json.loads(line)["id"] for line in lines]
    assert spooled == [pid for batch in first for pid in batch.ids]  # in order
    migrate.upgrade(url)
    later = estimates(3)
    log.record(later)
    log.close()
    rows = stored(url)
    assert set(rows) == {pid for b in [*first, later] for pid in b.ids}
    assert log.written == 13
    assert not list(spool_dir.glob("*.jsonl"))  # replayed, then removed


def test_a_full_queue_spills_to_the_spool_not_the_request(tmp_path, spool_dir):
    """A slow database (another writer holds its lock) stalls the writer."""
    path = tmp_path / "slow.db"
    migrate.upgrade(f"sqlite:///{path}")
    log = PredictionLog(f"sqlite:///{path}", spool_dir, buffer_size=2,
                        flush_interval=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    log.record(estimates(1))
    time.sleep(0.5)  # the writer took it, and waits for the lock
    for _ in range(10):
        log.record(estimates(1))
    assert log.spooled >= 8  # a queue of 2; the rest went straight to disk
    blocker.execute("ROLLBACK")
    blocker.close()
    log.close()
    assert len(stored(f"sqlite:///{path}")) == 11


def test_records_left_by_a_dead_worker_are_replayed_by_a_live_one(
        database_url, spool_dir):
    orphan = Spool(spool_dir)
    left = as_spooled(estimates(4))
    orphan.append(left)
    orphan._file.close()  # a dead worker's lock goes with it: here, with the file
    log = PredictionLog(database_url, spool_dir, flush_interval=0.05)
    log.record(estimates(1))
    log.close()
    assert {r["id"] for r in left} <= set(stored(database_url))
    assert not orphan.path.exists()


def test_a_replay_cut_short_is_done_again_without_duplicates(database_url, spool_dir):
    log = PredictionLog(database_url, spool_dir, flush_interval=0.05)
    batch = estimates(5)
    log.record(batch)
    assert log.flush()
    orphan = Spool(spool_dir)
    orphan.append(as_spooled(batch))  # stored already: a crash before the file went
    orphan._file.close()
    log.record(estimates(1))
    log.close()
    assert len(stored(database_url)) == 6


def test_a_live_writers_own_file_is_left_alone(database_url, spool_dir):
    other = Spool(spool_dir)
    other.append(as_spooled(estimates(2)))
    log = PredictionLog(database_url, spool_dir, flush_interval=0.05)
    log.record(estimates(1))
    log.close()
    assert len(stored(database_url)) == 1
    assert other.path.exists()
    other.close()


def test_close_writes_what_the_queue_still_holds(database_url, spool_dir):
    log = PredictionLog(database_url, spool_dir, flush_interval=60)
    for _ in range(20):
        log.record(estimates(5))
    log.close()
    assert len(stored(database_url)) == 100


def test_full_and_minimal_homes_share_one_insert(database_url, spool_dir):
    log = PredictionLog(database_url, spool_dir, flush_interval=0.5)
    full, minimal = estimates(2), estimates(1)
    for home, lat in zip(full.homes, [47.5, 47.6]):
        home["lat"] = lat  # an input the other lacks
    log.record(full)
    log.record(minimal)
    log.close()
    assert (log.written, log.spooled, log.rejected) == (3, 0, 0)
    assert stored(database_url)[minimal.ids[0]].lat is None


def test_a_record_the_database_refuses_is_set_aside_not_retried_forever(
        database_url, spool_dir):
    log = PredictionLog(database_url, spool_dir, flush_interval=0.5)
    good, bad = estimates(3), estimates(1)
    bad.homes[0]["zipcode"] = None  # NOT NULL
    log.record(good)
    log.record(bad)
    log.close()
    assert set(stored(database_url)) == set(good.ids)
    assert (log.written, log.rejected) == (3, 1)
    rejected = list(spool_dir.glob("rejected-*.ndjson"))
    assert [json.loads(line)["id"] for line in rejected[0].read_text().splitlines()] \
        == bad.ids


def test_prediction_ids_are_unique_time_ordered_uuid7():
    first = new_ids(1000)
    time.sleep(0.002)
    second = new_ids(3)
    parsed = [uuid.UUID(hex=pid) for pid in first + second]
    assert {(u.version, u.variant) for u in parsed} == {(7, uuid.RFC_4122)}
    assert len(set(first + second)) == 1003
    assert all(len(pid) == 32 and pid == pid.lower() for pid in first)
    # Later ids sort after earlier ones: new rows go at the end of the index.
    assert max(first) < min(second)
    millis = int(first[0][:12], 16)
    assert abs(millis / 1000 - time.time()) < 5
