"""Scoring jobs the way `make serve` runs them: real Gunicorn and the job
process its master keeps beside the workers; 200,000 real homes."""
import csv
import io
import os
import signal
import time
from pathlib import Path

import pandas as pd
import requests

from conftest import DATA_DIR, HousingCliRunner
from servers import gunicorn_server, worker_pids

ROWS = 200_000


def portfolio(path, rows=ROWS, seed=0):
    """``rows`` homes resampled from the county's sales, the examples' columns."""
    columns = pd.read_csv(DATA_DIR / "future_unseen_examples.csv", nrows=0).columns
    sales = pd.read_csv(DATA_DIR / "kc_house_data.csv", dtype={"zipcode": str})
    sales[list(columns)].sample(rows, replace=True, random_state=seed).to_csv(
        path, index=False)
    return path


def test_a_portfolio_scored_by_a_job_equals_the_command_and_the_api(
        model_dir, tmp_path):
    source = portfolio(tmp_path / "portfolio.csv")
    env = {"HOUSING_JOB_WORKERS": "1", "HOUSING_RATELIMIT_ENABLED": "false",
           "HOUSING_JOBS_DIR": str(tmp_path / "jobs")}
    with gunicorn_server(model_dir, env=env) as server:
        deadline = time.monotonic() + 30
        while len(worker_pids(server.pid)) < 3:  # 2 web workers, 1 job process
            assert time.monotonic() < deadline, worker_pids(server.pid)
            time.sleep(0.1)
        (job_process,) = [pid for pid in worker_pids(server.pid)
                          if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        # A reload (an activation, a rollout) keeps the job process...
        os.kill(server.pid, signal.SIGHUP)
        time.sleep(3)
        assert job_process in worker_pids(server.pid)
        with open(source, "rb") as body:
            sent = requests.post(f"{server.url}/v1/jobs", data=body, timeout=120,
                                 headers={"Content-Type": "text/csv"})
        assert sent.status_code == 202, sent.text
        location = server.url + sent.headers["Location"]
        deadline = time.monotonic() + 300
        while (job := requests.get(location, timeout=30).json())["state"] in (
                "queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
        assert job["state"] == "succeeded", job
        assert (job["rows_total"], job["rows_done"], job["rows_failed"]) == (
            ROWS, ROWS, 0)
        result = requests.get(server.url + job["links"]["result"], timeout=120)
        by_job = list(csv.DictReader(io.StringIO(result.text)))
        sample = by_job[::2000]
        homes = pd.read_csv(source, dtype={"zipcode": str}).iloc[
            [int(r["row"]) - 1 for r in sample]]
        batch = requests.post(f"{server.url}/v1/predict/batch", timeout=60,
                              data=homes.to_csv(index=False),
                              headers={"Content-Type": "text/csv"}).json()
    # The command reads no sales either (the server's database is gone).
    HousingCliRunner({"MODEL_DIR": model_dir,
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}).invoke(
        args=["score", str(source), str(tmp_path / "command.csv")])
    with open(tmp_path / "command.csv", newline="") as f:
        by_command = list(csv.DictReader(f))
    # Row for row, the job adding each estimate's prediction id.
    assert [{k: v for k, v in r.items() if k != "prediction_id"}
            for r in by_job] == by_command
    assert all(len(r["prediction_id"]) == 32 for r in by_job)
    assert [float(r["prediction"]) for r in sample] == [
        p["prediction"] for p in batch["predictions"]]
    # ... and the master stopped it when it stopped.
    assert not Path(f"/proc/{job_process}").exists() or Path(
        f"/proc/{job_process}/stat").read_text().split(") ")[1].startswith("Z")
