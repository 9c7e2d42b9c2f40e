"""A job process's loop: claim a job, score its file, report, repeat.

``housing-api worker`` runs it; any number of them may share the database
and the jobs folder. Each job is scored by ``serving.scoring`` with the
API's validation (``checks_for``, given by the command) and its estimates
go to the prediction log, each with an id made from the job's and the
row's: a job claimed again after its process died logs the same ids, so
every estimate is stored once.
"""
import logging
import threading
import time
from datetime import timedelta
from pathlib import Path

from ..monitoring.adaptation import adapted
from ..monitoring.log import Estimates, utcnow
from ..serving.scoring import ScoringError, count_rows, score_csv
from . import queue

log = logging.getLogger(__name__)


class JobStopped(Exception):
    """The job is no longer this process's to run: cancelled, or lost."""


class Stopping(Exception):
    """This process is stopping (SIGTERM): its job goes back to the queue."""


def prediction_ids(job_id: str, rows) -> list[str]:
    """The estimates' ids: the job's first 16 hex digits, then the row's."""
    return [f"{job_id[:16]}{int(row):016x}" for row in rows]


def _columns_as_homes(columns) -> list[dict]:
    """A chunk's columns as one mapping per home (Python numbers)."""
    names = list(columns)
    values = [c.tolist() if hasattr(c, "tolist") else list(c)
              for c in columns.values()]
    return [dict(zip(names, home)) for home in zip(*values)]


class Runner:
    """Claims and runs jobs from ``engine``'s queue with ``store``'s models."""

    def __init__(self, engine, store, files, checks_for, prediction_log=None,
                 lease: timedelta = timedelta(seconds=60), chunk_rows: int = 10_000,
                 worker: str | None = None, adaptation_step: float = 0.0):
        self.engine, self.store, self.files = engine, store, files
        #: Intervals adapted to the reported sales as the API's are, read
        #: when each job starts (0: as trained; ``monitoring.adaptation``).
        self.adaptation_step = adaptation_step
        self.checks_for, self.prediction_log = checks_for, prediction_log
        self.lease, self.chunk_rows = lease, chunk_rows
        self.worker = worker or queue.worker_name()
        #: Set to stop: the job running goes back to the queue at its next
        #: chunk, and no other is claimed.
        self.stop = threading.Event()

    def run_once(self) -> queue.Job | None:
        """Claim one job and run it to its end; None if none was waiting."""
        job = queue.claim(self.engine, self.worker, self.lease)
        if job is None:
            return None
        log.info("job %s claimed (attempt %d)", job.id, job.attempts,
                 extra={"job_id": job.id})
        try:
            self._run(job)
        except Stopping:
            queue.release(self.engine, job.id, self.worker)
            log.info("job %s given back to the queue: this process stops",
                     job.id, extra={"job_id": job.id})
        except JobStopped:
            if queue.cancelled_by_owner(self.engine, job.id, self.worker):
                self.files.remove(job.id)
                log.info("job %s cancelled", job.id, extra={"job_id": job.id})
            else:
                log.warning("job %s lost its lease; another process runs it",
                            job.id, extra={"job_id": job.id})
        except Exception as exc:
            log.exception("job %s failed", job.id, extra={"job_id": job.id})
            queue.finish(self.engine, job.id, self.worker, queue.FAILED,
                         error=f"{type(exc).__name__}: {exc}"[:2000])
        return queue.get(self.engine, job.id)

    def run_forever(self, poll: float = 1.0, purge_every: float = 60.0) -> None:
        """Run jobs until ``stop`` is set, waiting ``poll`` s when idle, and
        delete the jobs past their keeping time every ``purge_every`` s."""
        purged = None
        while not self.stop.is_set():
            now = time.monotonic()
            try:
                if purged is None or now - purged >= purge_every:
                    purged = now
                    self.purge()
                ran = self.run_once()
            except Exception:  # the database away: try again later
                log.exception("no job claimed")
                ran = None
            if ran is None:
                self.stop.wait(poll)

    def purge(self) -> int:
        """Delete the jobs past their keeping time, files first."""
        gone = queue.expired(self.engine)
        for job_id in gone:
            self.files.remove(job_id)
            queue.remove(self.engine, job_id)
        if gone:
            log.info("%d expired jobs deleted", len(gone))
        return len(gone)

    def _run(self, job) -> None:
        version = job.version or self.store.current()
        try:
            predictor = self.store.load(version)
        except Exception as exc:
            queue.finish(self.engine, job.id, self.worker, queue.FAILED,
                         error=f"version {version} cannot serve: {exc}"[:2000])
            return
        adapted(self.engine, predictor, self.adaptation_step)
        try:
            # The result is in place (uploaded, from a bucket's scratch copy)
            # before the job says it succeeded.
            with self.files.local_upload(job.id) as source, \
                    self.files.local_result(job.id) as out:
                summary = self._score(job, predictor, source, out)
        except ScoringError as exc:
            queue.finish(self.engine, job.id, self.worker, queue.FAILED,
                         error=str(exc))
            return
        queue.finish(self.engine, job.id, self.worker, queue.SUCCEEDED,
                     rows_done=summary.rows, rows_failed=summary.failed,
                     rows_total=summary.rows)
        log.info("job %s: %d estimates, %d rows refused", job.id, summary.scored,
                 summary.failed, extra={"job_id": job.id})

    def _score(self, job, predictor, source: Path, out: Path):
        total = count_rows(source)
        if not queue.report(self.engine, job.id, self.worker, 0, 0,
                            rows_total=total, model_version=predictor.version):
            raise JobStopped(job.id)

        def counted(rows: int, refused: int) -> None:
            # Each chunk renews the lease; a refusal stops the job.
            if self.stop.is_set():
                raise Stopping(job.id)
            if not queue.report(self.engine, job.id, self.worker, rows, refused):
                raise JobStopped(job.id)
        return score_csv(
            predictor, source, out, self.checks_for(predictor),
            chunk_rows=self.chunk_rows, explain=job.explain,
            record=self._recorder(job), counted=counted,
            ids=lambda rows: prediction_ids(job.id, rows))

    def _recorder(self, job):
        if self.prediction_log is None:
            return None
        kind, _, who = job.owner.partition(":")

        def record(predictor, chunk, result):
            self.prediction_log.record(Estimates(
                ids=prediction_ids(job.id, chunk.rows), request_id=job.id,
                endpoint="jobs.Job", model_version=predictor.version,
                client=who if kind == "address" else None,
                api_key_id=who if kind == "key" else None,
                homes=_columns_as_homes(chunk.columns), price=result.price,
                lower=result.lower, upper=result.upper, level=result.level,
                created_at=utcnow(), variant=predictor.variant))
        return record
