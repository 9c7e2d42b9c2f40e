"""Each process's copy of every API key, and its usage counts on their way.

Requests look keys up here, by the SHA-256 of what they sent: a dict
lookup, the same work for a known and an unknown key, and no database
round trip. A thread in each process reloads every key each ``interval``
seconds (so a revocation or a key made by another process or replica
takes effect within one interval) and writes what requests counted: per
key and UTC day, requests and estimates, and when each key was last used
(at most once a minute per key). While the database is away the copy
stays as it was and the counts wait in memory; :meth:`close` (Gunicorn's
``worker_exit``) writes what is left, or, the database still away, keeps
it in a file in ``spool_dir`` that the next refresh of any process adds
to its own counts.

Fork safety as in ``monitoring.log``: the thread belongs to the process
that starts it (Gunicorn's ``post_fork``; elsewhere the first lookup).
"""
import json
import logging
import os
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from ..db import api_key_usage, api_keys
from .records import ApiKey, digest, keys_by_digest

log = logging.getLogger(__name__)

#: A key's ``last_used_at`` is written at most this often (per process).
LAST_USED_EVERY = timedelta(minutes=1)
#: Seconds between two reads of the keys for digests this process missed.
REREAD_EVERY = 1.0
#: Files of usage counts that an exiting process could not write.
KEPT_PREFIX = "key-usage-"


class KeysUnavailableError(RuntimeError):
    """The keys could not be read yet (the database was away at start)."""


class KeyCache:
    """Every key by digest, kept fresh by a thread of this process."""

    def __init__(self, engine, interval: float = 5.0, spool_dir=None):
        self._engines = engine  # a db.ProcessEngine
        self.interval = float(interval)
        self.spool_dir = Path(spool_dir) if spool_dir else None
        self._keys: dict[bytes, ApiKey] | None = None
        self._reread_after = 0.0
        self._pid = None
        self._start_lock = threading.Lock()

    # -- the request path ----------------------------------------------------

    def lookup(self, secret: str) -> ApiKey | None:
        """The key whose secret is ``secret``, or None."""
        return self.lookup_digest(digest(secret))

    def lookup_digest(self, key_digest: bytes) -> ApiKey | None:
        """The key whose secret's SHA-256 is ``key_digest``, or None."""
        if self._pid != os.getpid():
            self.start()
        keys = self._keys
        if keys is None:
            raise KeysUnavailableError("the API keys could not be read")
        return keys.get(key_digest)

    def lookup_new(self, key_digest: bytes) -> ApiKey | None:
        """:meth:`lookup_digest`, reading the keys again on a miss (at most
        once a second per process).

        For the pages, whose key may have been made a moment ago: it may be
        known to the worker that took it and not yet to this one (each
        reads the keys every ``interval`` seconds). The database away, the
        keys read before stay, as in :meth:`refresh`.
        """
        key = self.lookup_digest(key_digest)
        if key is None and time.monotonic() >= self._reread_after:
            self._reread_after = time.monotonic() + REREAD_EVERY
            try:
                self._keys = keys_by_digest(self._engines.get())
            except Exception as exc:
                log.warning("API keys not read again (%s)", type(exc).__name__)
            key = self.lookup_digest(key_digest)
        return key

    def any_with_scope(self, scope: str) -> bool:
        """Whether some key that is not revoked has ``scope``."""
        if self._pid != os.getpid():
            self.start()
        keys = self._keys or {}
        return any(scope in key.scopes and not key.revoked()
                   for key in keys.values())

    def record_use(self, key: ApiKey, estimates: int = 0) -> None:
        """Count one request (and the homes it priced) for ``key``."""
        now = datetime.now(timezone.utc)
        with self._lock:
            counts = self._usage[(key.id, now.date())]
            counts[0] += 1
            counts[1] += estimates
            last = self._last_used.get(key.id, key.last_used_at)
            if last is None or now - last >= LAST_USED_EVERY:
                self._last_used[key.id] = now
                self._last_used_due.add(key.id)

    def put(self, key: ApiKey, key_digest: bytes | None = None) -> None:
        """Know ``key`` now (made or changed by this process), not at the
        next refresh."""
        if self._pid != os.getpid():
            self.start()
        keys = dict(self._keys or {})
        if key_digest is None:  # changed: find it by id
            key_digest = next((d for d, k in keys.items() if k.id == key.id), None)
        if key_digest is not None:
            keys[key_digest] = key
            self._keys = keys

    # -- the process's thread --------------------------------------------------

    def start(self) -> None:
        """Load the keys and start this process's refresher (once per process)."""
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._usage = _UsageCounts()
            self._last_used: dict[str, datetime] = {}
            self._last_used_due: set[str] = set()
            self._stop = threading.Event()
            self._keys = None
            self.refresh()
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="api-keys")
            self._thread.start()

    def refresh(self) -> None:
        """Write the counts, then read every key again. The database away:
        the counts wait, and the keys read before stay."""
        try:
            self._adopt_kept()
            self.flush()
        except Exception as exc:  # the thread must outlive anything
            log.warning("API key usage not written yet (%s)", type(exc).__name__)
        try:
            self._keys = keys_by_digest(self._engines.get())
        except Exception as exc:
            log.warning("API keys not refreshed (%s); %s", type(exc).__name__,
                        "keeping the keys read before" if self._keys is not None
                        else "no key is accepted until they can be read")

    def flush(self) -> None:
        """Write the usage counted so far (what fails is kept for next time)."""
        with self._lock:
            counts, self._usage = self._usage, _UsageCounts()
            due, self._last_used_due = self._last_used_due, set()
            last_used = {key_id: self._last_used[key_id] for key_id in due}
        if not counts and not last_used:
            return
        try:
            _write_usage(self._engines.get(), counts, last_used)
        except Exception:
            with self._lock:  # back in, added to what came meanwhile
                for k, (requests, estimates) in counts.items():
                    self._usage[k][0] += requests
                    self._usage[k][1] += estimates
                self._last_used_due |= due
            raise

    def close(self) -> None:
        """Write what is counted and stop the thread (worker exit)."""
        if self._pid != os.getpid():
            return
        self._stop.set()
        try:
            self.flush()
        except Exception as exc:
            self._keep(exc)

    def _keep(self, exc: Exception) -> None:
        """The counts the database did not take, to a file for later."""
        with self._lock:
            counts, self._usage = self._usage, _UsageCounts()
        rows = [[key_id, day.isoformat(), requests, estimates]
                for (key_id, day), (requests, estimates) in counts.items()]
        if not rows:
            return
        if self.spool_dir is None:
            log.warning("API key usage of this process lost (%s)",
                        type(exc).__name__)
            return
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"{KEPT_PREFIX}{os.getpid()}-{uuid.uuid4().hex}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows))
        os.replace(tmp, path)  # whole, or not there
        log.warning("API key usage not written (%s); kept in %s",
                    type(exc).__name__, path)

    def _adopt_kept(self) -> None:
        """Add the counts exited processes kept on disk to this one's."""
        if self.spool_dir is None or not self.spool_dir.is_dir():
            return
        for path in self.spool_dir.glob(f"{KEPT_PREFIX}*.json"):
            claimed = path.with_name(f"claimed-{os.getpid()}-{path.name}")
            try:
                os.rename(path, claimed)  # one process wins each file
            except FileNotFoundError:
                continue
            rows = json.loads(claimed.read_text())
            with self._lock:
                for key_id, day, requests, estimates in rows:
                    counts = self._usage[(key_id, date.fromisoformat(day))]
                    counts[0] += requests
                    counts[1] += estimates
            claimed.unlink()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()


class _UsageCounts(dict):
    """(key id, day) -> [requests, estimates], starting at zero."""

    def __missing__(self, k):
        self[k] = value = [0, 0]
        return value


def _write_usage(engine, counts: dict, last_used: dict) -> None:
    insert = (postgresql.insert if engine.dialect.name == "postgresql"
              else sqlite.insert)(api_key_usage)
    upsert = insert.on_conflict_do_update(
        index_elements=[api_key_usage.c.key_id, api_key_usage.c.day],
        set_={"requests": api_key_usage.c.requests + insert.excluded.requests,
              "estimates": api_key_usage.c.estimates + insert.excluded.estimates})
    with engine.begin() as connection:
        if counts:
            connection.execute(upsert, [
                {"key_id": key_id, "day": day, "requests": requests,
                 "estimates": estimates}
                for (key_id, day), (requests, estimates) in counts.items()])
        for key_id, when in last_used.items():
            connection.execute(update(api_keys).where(api_keys.c.id == key_id)
                               .values(last_used_at=when))
