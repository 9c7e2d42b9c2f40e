"""Job processes: a job scored as the command scores it, logged once, and
picked up again after its process is killed."""
import csv
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import DATA_DIR, HousingCliRunner
from housing_api.db import predictions
from housing_api.jobs import queue
from housing_api.jobs.files import JobFiles
from housing_api.jobs.runner import Runner, prediction_ids
from housing_api.store import ModelStore

EXAMPLES = DATA_DIR / "future_unseen_examples.csv"
ROOT = Path(__file__).resolve().parents[2]
OWNER = "address:10.0.0.7"


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def homes_file(path, copies=1, bad=("1,2,3",)):
    lines = EXAMPLES.read_text().splitlines()
    path.write_text("\n".join([lines[0], *(lines[1:] * copies), *bad]) + "\n")
    return path


@pytest.fixture
def files(tmp_path):
    return JobFiles(tmp_path / "jobs")


def submit(engine, files, source, **kwargs):
    import uuid

    job_id = uuid.uuid4().hex
    size = files.save_upload(job_id, [source.read_bytes()], limit=10**9)
    return queue.submit(engine, OWNER, size, timedelta(days=1), job_id=job_id,
                        **kwargs)


def runner_for(engine, model_dir, files, **kwargs):
    from housing_api.cli.score import _checks

    return Runner(engine, ModelStore(model_dir), files, _checks, **kwargs)


def test_a_job_scores_as_the_command_does_and_logs_each_estimate(
        engine, database_url, files, model_dir, tmp_path):
    from housing_api.monitoring.log import PredictionLog

    source = homes_file(tmp_path / "homes.csv", copies=3)
    job = submit(engine, files, source)
    log = PredictionLog(database_url, tmp_path / "spool")
    runner = runner_for(engine, model_dir, files, prediction_log=log,
                        chunk_rows=64)
    done = runner.run_once()
    assert log.flush()
    log.close()
    assert (done.state, done.rows_total, done.rows_done, done.rows_failed) == (
        "succeeded", 301, 301, 1)
    assert done.model_version == ModelStore(model_dir).current()

    HousingCliRunner({"MODEL_DIR": model_dir}).invoke(
        args=["score", str(source), str(tmp_path / "command.csv")])
    by_job = read(files.result(job.id))
    # The command's columns, and each estimate's prediction id (its sale's).
    assert [{k: v for k, v in r.items() if k != "prediction_id"}
            for r in by_job] == read(tmp_path / "command.csv")
    assert [r["prediction_id"] for r in by_job] == prediction_ids(
        job.id, [int(r["row"]) for r in by_job])
    assert read(files.errors(job.id)) == read(tmp_path / "command.errors.csv")

    rows = [int(r["row"]) for r in read(files.result(job.id))]
    with engine.connect() as connection:
        logged = dict(connection.execute(
            select(predictions.c.id, predictions.c.price)
            .where(predictions.c.request_id == job.id)).all())
    assert set(logged) == set(prediction_ids(job.id, rows))
    for row, estimate in zip(rows, read(files.result(job.id))):
        price = logged[prediction_ids(job.id, [row])[0]]
        assert round(price, 2) == float(estimate["prediction"])


def test_a_job_with_a_file_it_cannot_read_fails_and_says_why(
        engine, files, model_dir, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("zip,price\n1,2\n")
    job = submit(engine, files, bad)
    done = runner_for(engine, model_dir, files).run_once()
    assert (done.id, done.state) == (job.id, "failed")
    assert "the header must have the 18 columns" in done.error
    assert not files.result(job.id).exists()


def test_a_cancelled_job_stops_at_its_next_chunk_and_leaves_no_files(
        engine, files, model_dir, tmp_path, monkeypatch):
    job = submit(engine, files, homes_file(tmp_path / "homes.csv", copies=5))
    runner = runner_for(engine, model_dir, files, chunk_rows=50)
    real = queue.report
    calls = []

    def report(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # mid-file: the owner cancels
            queue.cancel(engine, job.id, OWNER)
        return real(*args, **kwargs)
    monkeypatch.setattr(queue, "report", report)
    done = runner.run_once()
    assert done.state == "cancelled"
    assert not files.folder(job.id).exists()


def test_expired_jobs_and_their_files_are_deleted(
        engine, files, model_dir, tmp_path):
    source = homes_file(tmp_path / "homes.csv")
    kept = submit(engine, files, source)
    size = files.save_upload("0" * 32, [source.read_bytes()], limit=10**9)
    old = queue.submit(engine, OWNER, size, timedelta(seconds=-1), job_id="0" * 32)
    assert runner_for(engine, model_dir, files).purge() == 1
    assert queue.get(engine, old.id) is None and not files.folder(old.id).exists()
    assert queue.get(engine, kept.id) and files.upload(kept.id).exists()


def worker(model_dir, database_url, files, tmp_path, lease=2):
    env = {**os.environ, "HOUSING_MODEL_DIR": str(model_dir),
           "HOUSING_DATABASE_URL": database_url,
           "HOUSING_JOBS_DIR": str(files.root),
           "HOUSING_JOB_LEASE_SECONDS": str(lease),
           "HOUSING_INSTANCE_PATH": str(tmp_path / "instance"),
           "HOUSING_LOG_FORMAT": "text"}
    with open(tmp_path / "worker.log", "ab") as log:  # the child keeps its own
        return subprocess.Popen([sys.executable, "-m", "housing_api", "worker",
                                 "--poll", "0.2"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=log,
                                start_new_session=True)


def wait_for(engine, job_id, condition, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = queue.get(engine, job_id)
        if condition(job):
            return job
        time.sleep(0.1)
    pytest.fail(f"job {job_id} never got there: {queue.get(engine, job_id)}")


def test_a_job_whose_process_is_killed_completes_each_row_exactly_once(
        engine, database_url, files, model_dir, tmp_path):
    """Under a real worker process: SIGKILL mid-job, then another worker."""
    source = homes_file(tmp_path / "homes.csv", copies=300)  # 30,000 homes
    job = submit(engine, files, source)
    first = worker(model_dir, database_url, files, tmp_path)
    try:
        wait_for(engine, job.id, lambda j: j.rows_done >= 10_000)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
        assert queue.get(engine, job.id).state == "running"  # its lease runs
        second = worker(model_dir, database_url, files, tmp_path)
        done = wait_for(engine, job.id, lambda j: j.state in queue.FINISHED)
    finally:
        for process in (first, locals().get("second")):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
    assert (done.state, done.attempts) == ("succeeded", 2)
    rows = [int(r["row"]) for r in read(files.result(job.id))]
    assert rows == list(range(1, 30_001))  # every home, once, in order
    time.sleep(1.5)  # the second worker's last flush
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).select_from(predictions)
                                  .where(predictions.c.request_id == job.id))
    assert count == 30_000  # the first attempt's estimates were not stored twice


def test_a_stopping_worker_gives_its_job_back_at_once(engine, database_url, files,
                                                      model_dir, tmp_path):
    job = submit(engine, files, homes_file(tmp_path / "homes.csv", copies=300))
    first = worker(model_dir, database_url, files, tmp_path, lease=600)
    wait_for(engine, job.id, lambda j: j.rows_done >= 10_000)
    os.killpg(first.pid, signal.SIGTERM)
    assert first.wait(30) == 0
    back = queue.get(engine, job.id)
    assert (back.state, back.worker) == ("queued", None)
    second = worker(model_dir, database_url, files, tmp_path, lease=600)
    try:
        done = wait_for(engine, job.id, lambda j: j.state in queue.FINISHED)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(30)
    # Every row read, the one bad row among them refused.
    assert (done.state, done.rows_done, done.rows_failed) == (
        "succeeded", 30_001, 1)
