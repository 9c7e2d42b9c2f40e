"""The prediction log: every answered estimate, written off the request path.

A request hands its estimates to :meth:`PredictionLog.record` (an append
to a list, no I/O) and returns; a thread in each process wakes once per
flush interval and writes what has gathered in one transaction (a binary
COPY on PostgreSQL; see ``db.bulk``). While the database is down or slow,
batches go to an append-only spool file (``spool``) and are replayed, in
order, once it is back; a full buffer spills there too. :meth:`close` (Gunicorn's
``worker_exit``: graceful stops and every HUP) writes everything left.

Fork safety: the pool and the thread belong to the process that starts
them. Gunicorn starts one per worker in ``post_fork`` (the engine, made in
the master, gets a fresh pool there: ``db.ProcessEngine``); anywhere else
(the dev server, tests) the first record starts it. Never a thread in the
master: a thread does not survive fork, and a lock it held would stay held.
"""
import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from operator import itemgetter
from pathlib import Path

import numpy as np
from sqlalchemy.exc import (
    DBAPIError, InterfaceError, OperationalError, SQLAlchemyError,
)

from ..db import BulkInsert, ProcessEngine, predictions
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
    api_key_id: str | None
    #: The homes as validated, one mapping of input name to value each.
    homes: Sequence[Mapping]
    price: object
    lower: object
    upper: object
    level: float
    created_at: datetime
    #: For a rollout's other estimates: the answered estimate of each home.
    answered_ids: Sequence[str] | None = None
    #: ``minimal`` for a version's minimal companion, None for its model.
    variant: str | None = None
    #: The ``YYYY-MM`` the estimates were asked as of; None: "now".
    as_of: str | None = None

    def rows(self) -> list[tuple]:
        """One tuple per home, in the ``predictions`` table's column order."""
        # A tuple straight from each home (a dict per row, or a column at a
        # time, cost several times more: the writer shares the worker's CPU).
        head = (self.request_id, self.created_at, self.endpoint,
                self.model_version, self.client, self.api_key_id)
        answered = self.answered_ids or [None] * len(self.ids)
        tail = (self.variant, self.as_of)
        return [(pid, *head, *inputs, price, lower, upper, self.level, link, *tail)
                for pid, inputs, price, lower, upper, link in zip(
                    self.ids, _inputs(self.homes), _values(self.price),
                    _values(self.lower), _values(self.upper), answered)]


#: The inputs' columns in the table, in order.
INPUT_COLUMNS = (*NUMERIC_COLUMNS, "zipcode")
_INPUTS = itemgetter(*INPUT_COLUMNS)


def _inputs(homes: Sequence[Mapping]) -> list[tuple]:
    """Each home's inputs, in the table's order."""
    try:
        return list(map(_INPUTS, homes))  # C-level, when every input is there
    except KeyError:  # the minimal endpoint: None for what it does not take
        return [tuple(map(home.get, INPUT_COLUMNS)) for home in homes]


def _values(array) -> list:
    """Python floats (not numpy scalars), as the driver takes them."""
    return array.tolist() if isinstance(array, np.ndarray) else list(array)


def new_ids(n: int) -> list[str]:
    """``n`` new prediction ids: UUIDv7 (RFC 9562) as 32 hex digits.

    Time-ordered (a millisecond clock, then 74 random bits), so new rows go
    at the end of the primary key's index rather than all over it.
    """
    # 48 bits of milliseconds and the version (7); then, from 20 random hex
    # digits per id: 3 (rand_a), 1 made the variant (10xx, 2 random bits)
    # and 15 (the rest of rand_b).
    head = f"{time.time_ns() // 1_000_000:012x}7"
    digits = os.urandom(10 * n).hex()
    variants = digits[3::20].translate(_VARIANT)
    return [f"{head}{digits[i:i + 3]}{variants[k]}{digits[i + 4:i + 19]}"
            for k, i in enumerate(range(0, 20 * n, 20))]


_VARIANT = str.maketrans("0123456789abcdef", "89ab" * 4)
#: The ``predictions`` table's columns, in order: what a row tuple holds
#: (``Estimates.rows`` builds them in this order).
COLUMNS = [column.name for column in predictions.columns]


class PredictionLog:
    """A per-process writer of :class:`Estimates` into ``predictions``."""

    def __init__(self, url: str, spool_dir: Path, *, flush_interval: float = 1.0,
                 buffer_size: int = 10_000, retry_interval: float = 2.0,
                 engine: ProcessEngine | None = None):
        self.url = url
        # Made here (Gunicorn's master), its pool replaced in each worker;
        # shared with the app's queries when the app passes its own.
        self._own_engine = engine is None
        self._engines = ProcessEngine(url) if engine is None else engine
        self.spool_dir = Path(spool_dir)
        self.flush_interval = float(flush_interval)
        self.buffer_size = int(buffer_size)
        self.retry_interval = float(retry_interval)
        self._pid = None
        self._start_lock = threading.Lock()
        #: Rows written, sent to the spool, and refused by the database.
        self.written = self.spooled = self.rejected = 0

    def start(self) -> None:
        """Give this process its pool, spool file and writer thread."""
        with self._start_lock:
            if self._pid == os.getpid():
                return
            # What requests handed over and the writer has not taken yet:
            # lists of rows, and flush (Event) and stop (None) marks, in order.
            self._pending, self._pending_rows = [], 0
            self._lock = threading.Lock()
            self._wake = threading.Event()
            self._insert = BulkInsert(self._engines.get(), predictions)
            self._spool = Spool(self.spool_dir)
            self._down_until = 0.0
            self._closed = False
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="prediction-log")
            self._pid = os.getpid()
            self._thread.start()

    def record(self, estimates: Estimates) -> None:
        """Hand over one request's estimates; never waits for the database.

        An append under a lock, nothing more: the writer is not woken per
        request (a thread switch each time cost more than the write).
        """
        if self._pid != os.getpid():
            self.start()
        # Rows now, in the request: they hold less than the homes and
        # arrays they come from, which would wait here a flush interval.
        rows = estimates.rows()
        with self._lock:
            # One request's rows always fit an empty buffer.
            room = (self._pending_rows == 0
                    or self._pending_rows + len(rows) <= self.buffer_size)
            if room:
                self._pending.append(rows)
                self._pending_rows += len(rows)
                half_full = self._pending_rows > self.buffer_size // 2
        if not room:
            # The writer is stuck on a slow database: keep the rows on disk.
            self._spool_rows(rows)
        elif half_full:
            self._wake.set()  # a burst: write before the interval is up

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything recorded so far is written (or spooled)."""
        if self._pid != os.getpid():
            return True
        done = threading.Event()
        self._hand_over(done)
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything left, then stop the writer (worker exit)."""
        if self._pid != os.getpid() or self._closed:
            return
        self._closed = True
        self._hand_over(None)
        self._thread.join(timeout)
        # One last try for what waits in the spool; what still fails stays
        # there, for a live writer to replay.
        self._down_until = 0.0
        with self._lock:  # recorded while the writer stopped
            late, self._pending = self._pending, []
        self._write([row for item in late if isinstance(item, list)
                     for row in item])
        self._spool.close()
        if self._own_engine:
            self._engines.dispose()

    def _hand_over(self, mark) -> None:
        with self._lock:
            self._pending.append(mark)
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            with self._lock:
                taken, self._pending, self._pending_rows = self._pending, [], 0
            if taken or time.monotonic() >= self._down_until:
                # Idle polls replay the spool too, once the database is back.
                self._write([row for item in taken if isinstance(item, list)
                             for row in item])
            for item in taken:
                if isinstance(item, threading.Event):
                    item.set()
            if any(item is None for item in taken):
                return

    def _write(self, rows: list[tuple]) -> None:
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
            self.written += self._insert_rows(_tuples(rows), fresh=False)
            self._spool.clear_own(len(rows))
            log.info("prediction log: replayed %d spooled records", len(rows))
        for path, rows in self._spool.orphans():
            self.written += self._insert_rows(_tuples(rows), fresh=False)
            self._spool.remove(path)
            log.info("prediction log: replayed %d records left in %s",
                     len(rows), path.name)

    def _insert_rows(self, rows: list[tuple], fresh: bool = True) -> int:
        """Store ``rows``; return how many the database took.

        ``fresh`` rows were never tried before and go in by the fast path;
        replayed ones may be stored already (a crash between the insert and
        the spool's truncation) and skip any that are.
        """
        if not rows:
            return 0
        try:
            (self._insert.new if fresh else self._insert.once)(rows)
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
                    self._insert.once([row])
                    stored += 1
                except SQLAlchemyError as row_exc:
                    if isinstance(row_exc, DBAPIError) and _unreachable(row_exc):
                        raise
                    self._reject(row, row_exc)
            return stored

    def _reject(self, row: tuple, exc: Exception) -> None:
        # Not .jsonl: the spool would take it for a dead writer's file.
        path = self.spool_dir / f"rejected-{os.getpid()}.ndjson"
        with open(path, "a") as f:
            f.write(json.dumps(dict(zip(COLUMNS, row)), default=str) + "\n")
        self.rejected += 1
        log.error("prediction log: the database refused record %s (%s); kept "
                  "in %s", row[0], type(exc).__name__, path)

    def _spool_rows(self, rows: list[tuple]) -> None:
        if rows:
            self._spool.append([dict(zip(COLUMNS, row)) for row in rows])
            self.spooled += len(rows)


def _tuples(rows: list[dict]) -> list[tuple]:
    """Rows read back from the spool, as tuples (the time was kept as text)."""
    return [tuple(datetime.fromisoformat(row[name]) if name == "created_at"
                  and isinstance(row[name], str) else row.get(name)
                  for name in COLUMNS) for row in rows]


def _unreachable(exc: DBAPIError) -> bool:
    """Whether the database is away or busy (worth waiting for), not refusing."""
    return isinstance(exc, (OperationalError, InterfaceError)) \
        or exc.connection_invalidated


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
