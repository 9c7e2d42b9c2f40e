"""Bulk inserts: the driver's fast paths store exactly what SQLAlchemy would."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from housing_api.db import BulkInsert, predictions
from housing_api.db.bulk import ROWS_PER_STATEMENT
from housing_api.inference.columns import NUMERIC_COLUMNS

CREATED = datetime(2026, 11, 30, 17, 4, 5, 120034, tzinfo=timezone.utc)


def row(pid: str, created: datetime = CREATED, price: float = 512_345.678) -> dict:
    values = {name: float(i) + 0.1 for i, name in enumerate(NUMERIC_COLUMNS)}
    values["lat"] = None  # a minimal-endpoint estimate lacks some inputs
    return {"id": pid, "request_id": "req-1", "created_at": created,
            "endpoint": "predict.Batch", "model_version": "v1",
            "client": "10.0.0.7", "api_key_id": "0123456789abcdef", **values,
            "zipcode": "98118",
            "price": price, "lower": price * 0.8, "upper": price * 1.2,
            "level": 0.8, "answered_id": "fedcba9876543210" * 2,
            "variant": "minimal", "as_of": "2015-01"}


def as_tuple(values: dict) -> tuple:
    return tuple(values[column.name] for column in predictions.columns)


def stored(engine) -> dict:
    with engine.connect() as connection:
        return {r.id: r._asdict() for r in connection.execute(select(predictions))}


@pytest.mark.parametrize("method", ["new", "once"])
def test_rows_read_back_as_a_core_insert_of_the_same_values(engine, method):
    later = CREATED + timedelta(days=1, microseconds=1)
    with engine.begin() as connection:
        connection.execute(insert(predictions), [row("a" * 32), row("b" * 32, later)])
    getattr(BulkInsert(engine, predictions), method)(
        [as_tuple(row("c" * 32)), as_tuple(row("d" * 32, later))])
    rows = stored(engine)
    assert {**rows["c" * 32], "id": "a" * 32} == rows["a" * 32]
    assert {**rows["d" * 32], "id": "b" * 32} == rows["b" * 32]
    # Times compare as times in SQL too (SQLite keeps them as text).
    with engine.connect() as connection:
        after = connection.execute(select(predictions.c.id).where(
            predictions.c.created_at > CREATED).order_by(predictions.c.id))
        assert after.scalars().all() == ["b" * 32, "d" * 32]


def test_new_refuses_a_stored_key_and_stores_nothing_of_the_call(engine):
    bulk = BulkInsert(engine, predictions)
    bulk.new([as_tuple(row("a" * 32))])
    with pytest.raises(IntegrityError):
        bulk.new([as_tuple(row("b" * 32)), as_tuple(row("a" * 32, price=1.0))])
    assert list(stored(engine)) == ["a" * 32]


def test_once_skips_stored_keys_and_keeps_what_they_hold(engine):
    bulk = BulkInsert(engine, predictions)
    bulk.new([as_tuple(row("a" * 32))])
    bulk.once([as_tuple(row("a" * 32, price=1.0)), as_tuple(row("b" * 32))])
    rows = stored(engine)
    assert sorted(rows) == ["a" * 32, "b" * 32]
    assert rows["a" * 32]["price"] == 512_345.678


def test_a_refused_value_is_sqlalchemys_integrity_error(engine):
    bad = {**row("a" * 32), "zipcode": None}  # NOT NULL
    with pytest.raises(IntegrityError):
        BulkInsert(engine, predictions).new([as_tuple(bad)])
    assert stored(engine) == {}


def test_more_rows_than_one_statement_takes_are_all_stored(engine):
    bulk = BulkInsert(engine, predictions)
    n = 2 * ROWS_PER_STATEMENT + 7
    bulk.new([as_tuple(row(f"{i:032x}", price=float(i + 1))) for i in range(n)])
    # A replay overlapping the stored rows, longer than one statement too.
    bulk.once([as_tuple(row(f"{i:032x}", price=-1.0)) for i in range(5, n + 600)])
    rows = stored(engine)
    assert len(rows) == n + 600 - 5 + 5
    assert [rows[f"{i:032x}"]["price"] for i in (0, 255, 256, n - 1)] \
        == [1.0, 256.0, 257.0, float(n)]
    assert rows[f"{n + 599:032x}"]["price"] == -1.0
