"""``housing-api db purge``: estimates past the retention go, with their sales."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from conftest import HousingCliRunner
from housing_api.db import make_engine, predictions, sales
from housing_api.monitoring.log import PredictionLog
from housing_api.monitoring.retention import purge
from housing_api.monitoring.sales import report_sales
from test_log import estimates


def counts(url):
    engine = make_engine(url)
    with engine.connect() as connection:
        n = [connection.scalar(select(func.count()).select_from(t))
             for t in (predictions, sales)]
    engine.dispose()
    return n


def logged(url, tmp_path, created_at, n):
    batch = replace(estimates(n), created_at=created_at)
    log = PredictionLog(url, tmp_path / "spool", flush_interval=0.05)
    log.record(batch)
    log.close()
    return batch.ids


def test_purge_keeps_the_retention_period(database_url, tmp_path):
    now = datetime.now(timezone.utc)
    old = logged(database_url, tmp_path, now - timedelta(days=400), 3)
    recent = logged(database_url, tmp_path, now - timedelta(days=10), 2)
    engine = make_engine(database_url)
    report_sales(engine, [{"prediction_id": pid, "sale_price": 500000.0,
                           "sale_date": "2026-11-30"} for pid in old[:2] + recent])
    engine.dispose()
    assert counts(database_url) == [5, 4]
    assert purge(database_url, 365) == (3, 2)
    assert counts(database_url) == [2, 2]
    assert purge(database_url, 365) == (0, 0)


def test_the_purge_command_uses_the_configured_retention(database_url, tmp_path):
    logged(database_url, tmp_path,
           datetime.now(timezone.utc) - timedelta(days=40), 4)
    runner = HousingCliRunner({"DATABASE_URL": database_url,
                               "PREDICTION_LOG_RETENTION_DAYS": 60})
    result = runner.invoke(args=["db", "purge"])
    assert result.exit_code == 0
    assert result.stdout == ("deleted 0 estimates older than 60 days and 0 "
                             "reported sales\n")
    result = runner.invoke(args=["db", "purge", "--days", "30"])
    assert result.stdout == ("deleted 4 estimates older than 30 days and 0 "
                             "reported sales\n")
    assert counts(database_url) == [0, 0]
