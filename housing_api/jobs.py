"""Training jobs run in their own process, their state in the model store.

State lives in files (``<model dir>/jobs/<id>.json``) so that any worker of
any replica sharing the store can answer for a job.
"""
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

_JOB_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _path(model_dir: Path, job_id: str) -> Path:
    return Path(model_dir) / "jobs" / f"{job_id}.json"


def read(model_dir: Path, job_id: str) -> dict | None:
    """Return the job's state, or None if there is no such job."""
    if not _JOB_ID_RE.match(job_id):
        return None
    try:
        return json.loads(_path(model_dir, job_id).read_text())
    except FileNotFoundError:
        return None


def update(model_dir: Path, job_id: str, **fields) -> dict:
    """Merge ``fields`` into the job's state, atomically."""
    path = _path(model_dir, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    job = (read(model_dir, job_id) or {}) | fields
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(job))
    os.replace(tmp, path)
    return job


def start_training(model_dir: Path, data_dir: Path, algorithm: str,
                   activate: bool) -> dict:
    """Start ``housing-api train`` as a child process; return the new job."""
    job_id = uuid.uuid4().hex
    job = update(model_dir, job_id, id=job_id, state="queued", algorithm=algorithm,
                 activate=activate, version=None, promoted=None, reason=None,
                 created_at=_now(), finished_at=None)
    command = [sys.executable, "-m", "housing_api", "train",
               "--algorithm", algorithm, "--job", job_id]
    if activate:
        command.append("--promote-if-better")
    env = dict(os.environ, HOUSING_MODEL_DIR=str(model_dir),
               HOUSING_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1")
    log = open(_path(model_dir, job_id).with_suffix(".log"), "wb")
    with log:
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    # Reap the child when it ends, so no zombie outlives the job.
    threading.Thread(target=process.wait, daemon=True).start()
    return job
