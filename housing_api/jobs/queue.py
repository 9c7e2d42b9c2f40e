"""The scoring jobs' queue, in the service's database.

A job is a row of ``scoring_jobs``. A job process claims the oldest queued
job, or a running one whose holder stopped renewing its lease (killed, its
node gone), in one transaction: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
so that processes never wait on each other's claims, and on every
database an update that only succeeds while the job is still claimable,
so that two processes never hold one job (SQLite, the embedded default,
serializes its writers). The holder renews its lease with each progress
report. A job claimed again starts over; its result only appears, whole,
when an attempt completes (``serving.scoring`` renames it into place).
"""
import os
import socket
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, delete, insert, or_, select, update

from ..db import scoring_jobs as jobs

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued", "running", "succeeded", "failed", "cancelled")
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
#: A job whose process died this many times is failed, not claimed again.
MAX_ATTEMPTS = 3


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def worker_name() -> str:
    """This process, as a job's holder: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Job:
    id: str
    owner: str
    state: str
    version: str | None
    explain: bool
    upload_bytes: int
    model_version: str | None
    rows_total: int | None
    rows_done: int
    rows_failed: int
    attempts: int
    worker: str | None
    cancel_requested: bool
    error: str | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime

    @classmethod
    def from_row(cls, row) -> "Job":
        fields = dict(row._mapping)
        for name in ("created_at", "started_at", "heartbeat_at", "finished_at",
                     "expires_at"):
            if fields[name] is not None and fields[name].tzinfo is None:
                fields[name] = fields[name].replace(tzinfo=timezone.utc)  # SQLite
        return cls(**fields)

    def to_dict(self) -> dict:
        return asdict(self)


def submit(engine, owner: str, upload_bytes: int, keep: timedelta,
           version: str | None = None, explain: bool = False,
           job_id: str | None = None) -> Job:
    """Queue a job; its files must be in place before (``job_id`` names them)."""
    now = utcnow()
    values = {"id": job_id or uuid.uuid4().hex, "owner": owner, "state": QUEUED,
              "version": version, "explain": explain,
              "upload_bytes": upload_bytes, "model_version": None,
              "rows_total": None, "rows_done": 0, "rows_failed": 0,
              "attempts": 0, "worker": None, "cancel_requested": False,
              "error": None, "created_at": now, "started_at": None,
              "heartbeat_at": None, "finished_at": None,
              "expires_at": now + keep}
    with engine.begin() as connection:
        connection.execute(insert(jobs).values(**values))
    return Job(**values)


def get(engine, job_id: str, owner: str | None = None) -> Job | None:
    """The job, if it exists (and belongs to ``owner``, when given)."""
    query = select(jobs).where(jobs.c.id == job_id)
    if owner is not None:
        query = query.where(jobs.c.owner == owner)
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return Job.from_row(row) if row else None


def owned_by(engine, owner: str, limit: int = 100) -> list[Job]:
    """``owner``'s jobs, newest first."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(jobs).where(jobs.c.owner == owner)
            .order_by(jobs.c.created_at.desc()).limit(limit)).all()
    return [Job.from_row(r) for r in rows]


def _claimable(cutoff):
    return or_(jobs.c.state == QUEUED,
               and_(jobs.c.state == RUNNING, jobs.c.heartbeat_at < cutoff))


def claim(engine, worker: str, lease: timedelta) -> Job | None:
    """Take the oldest claimable job for ``worker``; None if there is none."""
    while True:
        now = utcnow()
        cutoff = now - lease
        with engine.begin() as connection:
            query = (select(jobs.c.id, jobs.c.attempts, jobs.c.state)
                     .where(_claimable(cutoff))
                     .order_by(jobs.c.created_at).limit(1))
            if connection.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            found = connection.execute(query).first()
            if found is None:
                return None
            guard = and_(jobs.c.id == found.id, _claimable(cutoff))
            if found.attempts >= MAX_ATTEMPTS:
                connection.execute(update(jobs).where(guard).values(
                    state=FAILED, finished_at=now, worker=None,
                    error=f"its job process stopped {found.attempts} times "
                          "before it finished"))
                continue
            claimed = connection.execute(update(jobs).where(guard).values(
                state=RUNNING, worker=worker, heartbeat_at=now,
                started_at=now, attempts=jobs.c.attempts + 1, rows_done=0,
                rows_failed=0, rows_total=None)).rowcount
            if claimed:
                return Job.from_row(connection.execute(
                    select(jobs).where(jobs.c.id == found.id)).one())
        # Another process claimed it between the two statements: next one.


def _held(job_id: str, worker: str):
    return and_(jobs.c.id == job_id, jobs.c.worker == worker,
                jobs.c.state == RUNNING)


def report(engine, job_id: str, worker: str, rows_done: int, rows_failed: int,
           rows_total: int | None = None, model_version: str | None = None
           ) -> bool:
    """Record progress and renew the lease; False when the job is no longer
    ``worker``'s to run (claimed by another after a lapse) or its cancel
    was asked for: the holder then stops."""
    values = {"heartbeat_at": utcnow(), "rows_done": rows_done,
              "rows_failed": rows_failed}
    if rows_total is not None:
        values["rows_total"] = rows_total
    if model_version is not None:
        values["model_version"] = model_version
    with engine.begin() as connection:
        renewed = connection.execute(update(jobs).where(
            _held(job_id, worker), jobs.c.cancel_requested.is_(False))
            .values(**values)).rowcount
    return bool(renewed)


def finish(engine, job_id: str, worker: str, state: str,
           error: str | None = None, **counts) -> bool:
    """End ``worker``'s attempt as ``state``; False if it was not its to end."""
    with engine.begin() as connection:
        ended = connection.execute(update(jobs).where(_held(job_id, worker))
                                   .values(state=state, error=error,
                                           finished_at=utcnow(), **counts)
                                   ).rowcount
    return bool(ended)


def release(engine, job_id: str, worker: str) -> bool:
    """Give ``worker``'s job back to the queue (its process is stopping):
    the next claim starts it over, without waiting for the lease."""
    with engine.begin() as connection:
        return bool(connection.execute(update(jobs).where(_held(job_id, worker))
                                       .values(state=QUEUED, worker=None,
                                               heartbeat_at=None)).rowcount)


def cancel(engine, job_id: str, owner: str) -> Job | None:
    """Cancel ``owner``'s job: at once if queued; a running one stops at its
    holder's next report. None if there is no such job."""
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(update(jobs).where(
            jobs.c.id == job_id, jobs.c.owner == owner, jobs.c.state == QUEUED)
            .values(state=CANCELLED, finished_at=now))
        connection.execute(update(jobs).where(
            jobs.c.id == job_id, jobs.c.owner == owner, jobs.c.state == RUNNING)
            .values(cancel_requested=True))
    return get(engine, job_id, owner)


def cancelled_by_owner(engine, job_id: str, worker: str) -> bool:
    """Mark ``worker``'s job cancelled after its cancel was asked for."""
    with engine.begin() as connection:
        return bool(connection.execute(update(jobs).where(
            _held(job_id, worker), jobs.c.cancel_requested.is_(True))
            .values(state=CANCELLED, finished_at=utcnow())).rowcount)


def expired(engine, now: datetime | None = None) -> list[str]:
    """Jobs past their keeping time (not running)."""
    now = now or utcnow()
    with engine.connect() as connection:
        return list(connection.scalars(select(jobs.c.id).where(
            jobs.c.expires_at < now, jobs.c.state != RUNNING)))


def remove(engine, job_id: str) -> bool:
    """Delete the job's row (its files first: see ``jobs.files``)."""
    with engine.begin() as connection:
        return bool(connection.execute(
            delete(jobs).where(jobs.c.id == job_id)).rowcount)
