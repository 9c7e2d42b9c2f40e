"""Training jobs run in their own process, their state in the model store.

State lives in files (``<model dir>/jobs/<id>.json``) so that any worker of
any replica sharing the store can answer for a job.

At most ``max_jobs`` jobs run at once per store: each holds the lock of one
slot file (``jobs/.slot-<n>.lock``) for as long as its process lives. The
lock is taken before the process starts and handed to it, so two requests
cannot both take the last slot, and a killed job frees its slot.
"""
import contextlib
import fcntl
import json
import os
import re
import subprocess  # nosec B404 - runs our own CLI only, see start_training
import sys
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

_JOB_ID_RE = re.compile(r"^[0-9a-f]{32}$")
FINAL_STATES = ("succeeded", "failed")
#: Not passed to the training process: it serves no requests, and its
#: metric files would be summed into the server's.
_NOT_INHERITED = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


class TooManyJobsError(RuntimeError):
    """Every training slot is taken; nothing was started."""


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
    # A private temporary name: the job and its reaper may write at once.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(json.dumps(job))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):  # no half-written file on a full disk
            tmp.unlink()
        raise
    return job


def _claim_slot(model_dir: Path, max_jobs: int) -> int:
    """Return a descriptor holding a free slot's lock; raise if none is free."""
    folder = Path(model_dir) / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    for slot in range(max_jobs):
        fd = os.open(folder / f".slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            os.close(fd)
    if max_jobs < 1:
        raise TooManyJobsError("Training through the API is switched off "
                               "(MAX_TRAINING_JOBS is 0).")
    raise TooManyJobsError(f"{max_jobs} training job(s) already running, the "
                           f"most allowed (MAX_TRAINING_JOBS); try again when "
                           f"one has finished.")


def start_training(model_dir: Path, data_dir: Path, algorithm: str,
                   activate: bool, max_jobs: int = 2, model_store: str = "") -> dict:
    """Start ``housing-api train`` as a child process; return the new job.

    Its files stay in ``model_dir``; the version goes to ``model_store``
    (empty: the folder store ``model_dir``).

    Raise :class:`TooManyJobsError` when ``max_jobs`` jobs are running.
    """
    slot = _claim_slot(model_dir, max_jobs)
    try:
        return _start(model_dir, data_dir, algorithm, activate, slot, model_store)
    finally:
        os.close(slot)  # the child holds the slot's lock from here on


def _start(model_dir: Path, data_dir: Path, algorithm: str, activate: bool,
           slot: int, model_store: str) -> dict:
    job_id = uuid.uuid4().hex
    job = update(model_dir, job_id, id=job_id, state="queued", algorithm=algorithm,
                 activate=activate, version=None, promoted=None, reason=None,
                 created_at=_now(), finished_at=None)
    # `train` activates by default; a job activates only through the gate.
    command = [sys.executable, "-m", "housing_api", "train",
               "--algorithm", algorithm, "--job", job_id,
               "--promote-if-better" if activate else "--no-activate"]
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    env.update(HOUSING_MODEL_DIR=str(model_dir), HOUSING_DATA_DIR=str(data_dir),
               HOUSING_MODEL_STORE=str(model_store or ""), OMP_NUM_THREADS="1")
    log = open(_path(model_dir, job_id).with_suffix(".log"), "wb")
    with log:
        # Fixed argv, no shell: our interpreter and CLI, a validated algorithm.
        process = subprocess.Popen(  # nosec B603 - see the comment above
            command, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, pass_fds=(slot,))
    threading.Thread(target=_reap, args=(process, model_dir, job_id),
                     name=f"job-{job_id}", daemon=True).start()
    return job


def _reap(process: subprocess.Popen, model_dir: Path, job_id: str) -> None:
    # Wait for the child, so that no zombie outlives the job, and fail the
    # job if the process died before recording an outcome (killed, OOM).
    code = process.wait()
    job = read(model_dir, job_id) or {}
    if job.get("state") not in FINAL_STATES:
        update(model_dir, job_id, state="failed", finished_at=_now(),
               reason=f"the training process exited with status {code}; "
                      f"see jobs/{job_id}.log in the model store")
