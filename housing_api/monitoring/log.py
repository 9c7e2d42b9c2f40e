"""The prediction log: every answered estimate, written off the request path.

A request hands its estimates to :meth:`PredictionLog.record` (a queue put,
no I/O) and returns; a thread in each process writes them in batches, one
executemany in one transaction each (multi-row INSERTs on PostgreSQL).
While the database is down or slow, batches go to an append-only spool
file (``spool``) and are replayed, in order, once it is back; a full queue
spills there too. :meth:`close` (Gunicorn's
``worker_exit``: graceful stops and every HUP) writes everything left.

Fork safety: the engine and the thread belong to the process that starts
them. Gunicorn starts one per worker in ``post_fork``; anywhere else (the
dev server, tests) the first record starts it. Never in the master: a
thread does not survive fork, and a lock it held would stay held.
"""
import json
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import (
    DBAPIError, InterfaceError, OperationalError, SQLAlchemyError,
)

from ..db import make_engine, predictions
from ..inference.columns import NUMERIC_COLUMNS
from .spool import Spool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Estimates:
    """One request's estimates, as the request path hands them over."""

    ids: list[str]
    request_id: str
    endpoint: str
    model_version: str
    client: str | None
    columns: dict
    price: object
    lower: object
    upper: object
    level: float
    created_at: datetime

    def rows(self) -> list[dict]:
        """One row per home, in the ``predictions`` table's columns."""
        # Every row has every column (None where the minimal endpoint had
        # none): one multi-row INSERT needs the same keys in each row.
        n = len(self.ids)
        numeric = {name: (self.columns[name].tolist() if name in self.columns
                          else [None] * n) for name in NUMERIC_COLUMNS}
        price, lower, upper = (list(map(float, a))
                               for a in (self.price, self.lower, self.upper))
        return [
            {"id": pid, "request_id": self.request_id,
             "created_at": self.created_at, "endpoint": self.endpoint,
             "model_version": self.model_version, "client": self.client,
             **{name: values[i] for name, values in numeric.items()},
             "zipcode": self.columns["zipcode"][i], "price": price[i],
             "lower": lower[i], "upper": upper[i], "level": self.level}
            for i, pid in enumerate(self.ids)
        ]


def new_ids(n: int) -> list[str]:
    """``n`` new prediction ids."""
    return [uuid.uuid4().hex for _ in range(n)]


class PredictionLog:
    """A per-process writer of :class:`Estimates` into ``predictions``."""

    def __init__(self, url: str, spool_dir: Path, *, flush_interval: float = 1.0,
                 buffer_size: int = 10_000, retry_interval: float = 2.0):
        self.url = url
        self.spool_dir = Path(spool_dir)
        self.flush_interval = float(flush_interval)
        self.buffer_size = int(buffer_size)
        self.retry_interval = float(retry_interval)
        self._pid = None
        self._start_lock = threading.Lock()
        #: Rows written, sent to the spool, and refused by the database.
        self.written = self.spooled = self.rejected = 0

    def start(self) -> None:
        """Create this process's engine, spool file and writer thread."""
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._queue = queue.Queue(maxsize=self.buffer_size)
            self._engine = make_engine(self.url)
            self._insert = (postgresql.insert if self._engine.dialect.name
                            == "postgresql" else sqlite.insert)(
                predictions).on_conflict_do_nothing()
            self._spool = Spool(self.spool_dir)
            self._down_until = 0.0
            self._closed = False
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="prediction-log")
            self._pid = os.getpid()
            self._thread.start()

    def record(self, estimates: Estimates) -> None:
        """Queue one request's estimates; never waits for the database."""
        if self._pid != os.getpid():
            self.start()
        try:
            self._queue.put_nowait(estimates)
        except queue.Full:
            # The writer is stuck on a slow database: keep the rows on disk.
            self._spool_rows(estimates.rows())

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything recorded so far is written (or spooled)."""
        if self._pid != os.getpid():
            return True
        done = threading.Event()
        self._queue.put(done, timeout=timeout)
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything left, then stop the writer (worker exit)."""
        if self._pid != os.getpid() or self._closed:
            return
        self.flush(timeout)
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        # One last try for what waits in the spool; what still fails stays
        # there, for a live writer to replay.
        self._down_until = 0.0
        self._write([])
        self._spool.close()
        self._engine.dispose()

    def _run(self) -> None:
        while True:
            batch, events, stop = self._next_batch()
            if batch or events or time.monotonic() >= self._down_until:
                # Idle polls replay the spool too, once the database is back.
                self._write([row for e in batch for row in e.rows()])
            for event in events:
                event.set()
            if stop:
                return

    def _next_batch(self):
        """Block for the first item, then take what else has arrived."""
        batch, events = [], []
        try:
            item = self._queue.get(timeout=self.flush_interval)
        except queue.Empty:
            return batch, events, False
        deadline = time.monotonic() + self.flush_interval
        while True:
            if item is None:
                return batch, events, True
            if isinstance(item, threading.Event):
                events.append(item)
                return batch, events, False  # flush() waits: write now
            batch.append(item)
            try:
                item = self._queue.get(
                    timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return batch, events, False

    def _write(self, rows: list[dict]) -> None:
        if time.monotonic() < self._down_until:
            self._spool_rows(rows)
            return
        try:
            self._replay()
            self.written += self._insert_rows(rows)
        except Exception as exc:  # the writer must outlive anything: keep the rows
            self._down_until = time.monotonic() + self.retry_interval
            log.warning("prediction log: database unavailable (%s); keeping "
                        "records in %s", type(exc).__name__, self._spool.path,
                        exc_info=not isinstance(exc, DBAPIError))
            self._spool_rows(rows)

    def _replay(self) -> None:
        """Store what the spool holds, this process's own rows first."""
        if self._spool.rows:
            rows = self._spool.take_own()
            self.written += self._insert_rows(rows)
            self._spool.clear_own(len(rows))
            log.info("prediction log: replayed %d spooled records", len(rows))
        for path, rows in self._spool.orphans():
            self.written += self._insert_rows(rows)
            self._spool.remove(path)
            log.info("prediction log: replayed %d records left in %s",
                     len(rows), path.name)

    def _insert_rows(self, rows: list[dict]) -> int:
        """Store ``rows``; return how many the database took."""
        if not rows:
            return 0
        rows = [_typed(row) for row in rows]
        try:
            self._execute(rows)
            return len(rows)
        except SQLAlchemyError as exc:
            if isinstance(exc, DBAPIError) and _unreachable(exc):
                raise
            # Not the database's absence: some row is refused. Store the
            # others; set the refused ones aside, or they would block every
            # later batch.
            stored = 0
            for row in rows:
                try:
                    self._execute([row])
                    stored += 1
                except SQLAlchemyError as row_exc:
                    if isinstance(row_exc, DBAPIError) and _unreachable(row_exc):
                        raise
                    self._reject(row, row_exc)
            return stored

    def _execute(self, rows: list[dict]) -> None:
        # One statement, many parameter sets, one transaction: PostgreSQL
        # gets multi-row INSERTs (SQLAlchemy batches them), SQLite the
        # driver's executemany. Not .values(rows): compiling a statement per
        # batch size cost ~1 s of CPU per 1,000 rows, and each stayed cached.
        with self._engine.begin() as connection:
            connection.execute(self._insert, rows)

    def _reject(self, row: dict, exc: Exception) -> None:
        # Not .jsonl: the spool would take it for a dead writer's file.
        path = self.spool_dir / f"rejected-{os.getpid()}.ndjson"
        with open(path, "a") as f:
            f.write(json.dumps(row, default=str) + "\n")
        self.rejected += 1
        log.error("prediction log: the database refused record %s (%s); kept "
                  "in %s", row.get("id"), type(exc).__name__, path)

    def _spool_rows(self, rows: list[dict]) -> None:
        if rows:
            self._spool.append(rows)
            self.spooled += len(rows)


def _typed(row: dict) -> dict:
    """A row read back from the spool has its time as text."""
    created = row["created_at"]
    if isinstance(created, str):
        row = {**row, "created_at": datetime.fromisoformat(created)}
    return row


def _unreachable(exc: DBAPIError) -> bool:
    """Whether the database is away or busy (worth waiting for), not refusing."""
    return isinstance(exc, (OperationalError, InterfaceError)) \
        or exc.connection_invalidated


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
