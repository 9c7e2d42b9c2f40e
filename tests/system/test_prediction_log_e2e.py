"""The prediction log under real Gunicorn (2 workers) and a real PostgreSQL.

test_log checks the writer in process; these prove what only the real
server shows: every estimate answered while PostgreSQL is stopped, started
again and the workers rolled (HUP) is stored exactly once, the requests
never waiting for the database; and a worker killed with SIGKILL loses at
most what it queued in about one flush interval.

PostgreSQL: a private server (``initdb`` and ``pg_ctl`` from PATH, or
Debian's from ``/usr/lib/postgresql/*/bin``) on a free loopback port, with
its data and its socket in a folder of its own, stopped and removed
afterwards; the machine's own server is never touched. PostgreSQL refuses
to run as root: as root, the server runs as the ``postgres`` user, in a
folder of the system's temporary directory that it owns (pytest's
``tmp_path`` is private to root). Without the binaries, or if the server
does not start, these tests skip, unless ``HOUSING_REQUIRE_POSTGRES=1``
(set by ``.ci/run``) turns the skip into a failure.
"""
import math
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select, text

from databases import unavailable
from housing_api.db import predictions
from servers import free_port, gunicorn_server, worker_pids

WORKERS = 2
#: Seconds a worker's writer collects records before one INSERT.
FLUSH_INTERVAL = 0.2
#: Client threads, each sending one request at a time.
CLIENTS = 3
#: Homes per batch request (every BATCH_EVERY-th request is a batch).
BATCH, BATCH_EVERY = 5, 10
#: Seconds the database stays away: longer than the writer's retry
#: interval (2 s), so that a retry fails too.
OUTAGE = 3.0


# --- a private PostgreSQL ---------------------------------------------------

class PrivatePostgres:
    """A throwaway PostgreSQL cluster in ``folder``, on a free loopback port."""

    def __init__(self, folder: Path, initdb: str, pg_ctl: str, as_postgres: bool):
        self.folder, self.initdb, self.pg_ctl = folder, initdb, pg_ctl
        self.data = folder / "data"
        self.socket_dir = folder / "socket"
        self.log = folder / "postgres.log"
        self.port = free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if as_postgres else []

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*self._as, *args], cwd=self.folder, text=True,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout)

    def _check(self, what: str, result: subprocess.CompletedProcess) -> None:
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{what} failed ({result.returncode}): "
                               f"{result.stdout}{result.stderr}{log[-2000:]}")

    def init(self) -> None:
        self.socket_dir.mkdir()
        if self._as:
            shutil.chown(self.socket_dir, "postgres", "postgres")
        self._check("initdb", self._run(
            self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "--no-sync", "--no-instructions"))

    def start(self, timeout: int = 30) -> None:
        options = (f"-p {self.port} -k {shlex.quote(str(self.socket_dir))} "
                   "-c listen_addresses=127.0.0.1 -c fsync=off")
        self._check("pg_ctl start", self._run(
            self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", str(timeout), "start", timeout=timeout + 10))

    def stop(self, mode: str = "fast", timeout: int = 30) -> None:
        self._check("pg_ctl stop", self._run(
            self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", str(timeout),
            "stop", timeout=timeout + 10))

    def running(self) -> bool:
        return self.data.is_dir() and self._run(
            self.pg_ctl, "-D", str(self.data), "status").returncode == 0

    def create_database(self) -> str:
        """Create an empty database; return its URL."""
        name = f"housing_e2e_{uuid.uuid4().hex[:12]}"
        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": 3})
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url(name)


def server_binaries() -> tuple[str | None, str | None]:
    """initdb and pg_ctl: on PATH, or else Debian's newest (not on PATH)."""
    found = shutil.which("initdb"), shutil.which("pg_ctl")
    if all(found):
        return found
    versions = sorted((p for p in Path("/usr/lib/postgresql").glob("*/bin")
                       if p.parent.name.isdigit()),
                      key=lambda p: int(p.parent.name), reverse=True)
    for folder in versions:
        if all(os.access(folder / b, os.X_OK) for b in ("initdb", "pg_ctl")):
            return str(folder / "initdb"), str(folder / "pg_ctl")
    return found


@pytest.fixture
def private_postgres(tmp_path):
    """A private PostgreSQL, running; stopped and removed afterwards."""
    initdb, pg_ctl = server_binaries()
    if not (initdb and pg_ctl):
        unavailable("no initdb and pg_ctl (on PATH or in /usr/lib/postgresql/"
                    "*/bin) to start a private PostgreSQL")
    as_postgres = os.geteuid() == 0
    if as_postgres:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root, and no postgres user to run PostgreSQL")
        folder = Path(tempfile.mkdtemp(prefix="housing-pg-"))
        shutil.chown(folder, "postgres", "postgres")
    else:
        folder = tmp_path / "postgres"
        folder.mkdir()
    server = PrivatePostgres(folder, initdb, pg_ctl, as_postgres)
    try:
        try:
            server.init()
            server.start()
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            unavailable(f"a private PostgreSQL did not start ({exc})")
        yield server
    finally:
        if server.running():
            server.stop("immediate")
        if as_postgres:
            shutil.rmtree(folder, ignore_errors=True)


# --- load and checks --------------------------------------------------------

class Clients:
    """Clients posting homes, each request on a new connection, until stopped
    (or ``cap`` requests each). Keeps each 200 answer's prediction ids and
    when it came; anything else is a failure."""

    def __init__(self, url, homes, threads=CLIENTS, cap=20_000):
        self.url, self.homes, self.cap = url, homes, cap
        #: (monotonic time of the answer, its prediction ids), per 200 answer.
        self.answers: list[tuple[float, list[str]]] = []
        self.failures: list[tuple] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True)
                         for n in range(threads)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        if exc[0] is None:
            assert not self.running(), "a client thread did not stop"

    def _run(self, n):
        for i in range(self.cap):
            if self._stop.is_set():
                return
            try:
                if i % BATCH_EVERY == BATCH_EVERY - 1:
                    start = (n + i) % (len(self.homes) - BATCH)
                    response = requests.post(
                        f"{self.url}/v1/predict/batch", timeout=30,
                        json={"instances": self.homes[start:start + BATCH]})
                else:
                    response = requests.post(
                        f"{self.url}/v1/predict", timeout=30,
                        json=self.homes[(n + i) % len(self.homes)])
                if response.status_code != 200:
                    self.failures.append((response.status_code, response.text[:300]))
                    continue
                body = response.json()
                ids = ([p["prediction_id"] for p in body["predictions"]]
                       if "predictions" in body else [body["prediction_id"]])
                self.answers.append((time.monotonic(), ids))
            except Exception as exc:  # a failed request is the finding
                self.failures.append((type(exc).__name__, str(exc)[:300]))

    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def ids(self) -> list[str]:
        return [pid for _, ids in list(self.answers) for pid in ids]

    def answered_between(self, start: float, end: float) -> tuple[int, int]:
        """(answers, estimates) that came between ``start`` and ``end``."""
        within = [ids for t, ids in list(self.answers) if start <= t < end]
        return len(within), sum(map(len, within))

    def keep_going(self, seconds: float, at_least: int = 10,
                   timeout: float = 30) -> None:
        """Let the load run ``seconds``, and until ``at_least`` more answers."""
        target = len(self.answers) + at_least
        time.sleep(seconds)
        wait_for(lambda: len(self.answers) >= target or not self.running(),
                 f"{at_least} more answers", timeout)
        assert self.running(), "the clients stopped (cap reached?)"


def wait_for(condition, what: str, timeout: float, log=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"not {what} within {timeout:g} s"
                + (f":\n{log()[-3000:]}" if log else ""))


def wait_workers(server, old: frozenset = frozenset(), timeout: float = 30) -> set:
    """Wait for ``WORKERS`` live workers, none of them in ``old``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = worker_pids(server.pid)
        if len(workers) == WORKERS and not workers & old:
            return workers
        time.sleep(0.05)
    pytest.fail(f"no {WORKERS} fresh workers within {timeout:g} s:\n"
                + server.log_text()[-3000:])


def stop_gracefully(server, timeout: float = 45) -> str:
    """SIGTERM the master, wait until it has exited; return its log."""
    os.kill(server.pid, signal.SIGTERM)
    wait_for(lambda: exited(server.pid), "gunicorn stopped", timeout,
             server.log_text)
    return server.log_text()


def exited(pid: int) -> bool:
    """True once ``pid`` (our child) has exited, reaped or not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def stored_ids(url: str) -> list[str]:
    """The id of every row of ``predictions`` (a list: duplicates would show)."""
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(predictions.c.id)).scalars())
    finally:
        engine.dispose()


def spooled_rows(spool_dir: Path) -> int:
    """Records waiting in the spool files (every worker's, live or dead)."""
    rows = 0
    for path in spool_dir.glob("*.jsonl"):
        try:
            rows += path.read_bytes().count(b"\n")
        except FileNotFoundError:
            pass  # replayed and removed meanwhile
    return rows


def service_env(database_url: str, spool_dir: Path) -> dict:
    return {"HOUSING_DATABASE_URL": database_url,
            "HOUSING_PREDICTION_LOG_FLUSH_INTERVAL": str(FLUSH_INTERVAL),
            "HOUSING_PREDICTION_LOG_SPOOL_DIR": str(spool_dir),
            "HOUSING_RATELIMIT_ENABLED": "false",
            # Only this test's HUP rolls the workers: no pointer watcher.
            "HOUSING_MODEL_WATCH_INTERVAL": "0"}


# --- the tests ----------------------------------------------------------------

def test_every_estimate_is_stored_once_through_an_outage_and_a_reload(
        model_dir, homes, tmp_path, private_postgres):
    started = time.monotonic()
    database_url = private_postgres.create_database()
    spool_dir = tmp_path / "spool"
    with gunicorn_server(model_dir, env=service_env(database_url, spool_dir),
                         workers=WORKERS) as server:
        workers = wait_workers(server)
        with Clients(server.url, homes) as load:
            load.keep_going(0.5, at_least=30)
            wait_for(lambda: stored_ids(database_url), "estimates stored", 10,
                     server.log_text)

            private_postgres.stop("fast")
            down = time.monotonic()
            load.keep_going(OUTAGE, at_least=30)
            # The outage was felt: records wait on disk.
            wait_for(lambda: spooled_rows(spool_dir) > 0, "records spooled", 10,
                     server.log_text)
            up = time.monotonic()
            private_postgres.start()

            # Replayed by the live writers, while requests keep coming.
            load.keep_going(0.5, at_least=30)
            wait_for(lambda: spooled_rows(spool_dir) == 0, "the spool replayed",
                     20, server.log_text)

            # A rolling reload: the old workers exit through worker_exit.
            os.kill(server.pid, signal.SIGHUP)
            wait_workers(server, frozenset(workers))
            load.keep_going(1.0, at_least=30)
        log = stop_gracefully(server)
    elapsed = time.monotonic() - started

    answered = load.ids()
    down_answers, down_estimates = load.answered_between(down, up)
    rows = stored_ids(database_url)
    print(f"\noutage: {len(load.answers)} answers, {len(answered)} estimates, "
          f"{len(rows)} rows; {down_answers} answers ({down_estimates} "
          f"estimates) while PostgreSQL was down; {elapsed:.1f} s")

    assert load.failures == []
    assert down_answers > 0
    assert "prediction log: database unavailable" in log
    assert len(set(answered)) == len(answered)
    missing, extra = set(answered) - set(rows), set(rows) - set(answered)
    assert not missing and not extra, (len(missing), len(extra), log[-3000:])
    assert len(rows) == len(answered)
    assert spooled_rows(spool_dir) == 0, sorted(spool_dir.iterdir())
    assert not list(spool_dir.glob("rejected-*")), log[-3000:]


def test_a_killed_worker_loses_about_one_flush_interval_at_most(
        model_dir, homes, tmp_path, private_postgres):
    started = time.monotonic()
    database_url = private_postgres.create_database()
    spool_dir = tmp_path / "spool"
    with gunicorn_server(model_dir, env=service_env(database_url, spool_dir),
                         workers=WORKERS) as server:
        victim = min(wait_workers(server))
        with Clients(server.url, homes) as load:
            load.keep_going(0.5, at_least=30)
            wait_for(lambda: stored_ids(database_url), "estimates stored", 10,
                     server.log_text)
            window = time.monotonic()
            load.keep_going(1.0, at_least=30)
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()
            # The estimates per second both workers answered just before.
            rate = load.answered_between(window, killed)[1] / (killed - window)
            wait_workers(server, frozenset({victim}))
            load.keep_going(1.0, at_least=30)
        log = stop_gracefully(server)
    elapsed = time.monotonic() - started

    answered = load.ids()
    rows = stored_ids(database_url)
    lost = set(answered) - set(rows)
    # An estimate waits in its worker's queue at most one flush interval
    # (the writer collects for that long, then writes), plus the INSERT
    # before it. Margin: the rate is both workers', and twice that again.
    bound = math.ceil(2 * rate * (FLUSH_INTERVAL + 0.25)) + BATCH
    print(f"\nSIGKILL: {len(load.answers)} answers, {len(answered)} estimates, "
          f"{len(rows)} rows; {len(lost)} lost (bound {bound}, at "
          f"{rate:.0f} estimates/s, flush interval {FLUSH_INTERVAL} s); "
          f"{elapsed:.1f} s")

    assert len(lost) <= bound, (len(lost), bound)
    # What is lost was answered in the moments before the kill (the answer
    # reaches the client a moment after the worker queued it), none later.
    when = {pid: t for t, ids in load.answers for pid in ids}
    outside = sorted(when[pid] - killed for pid in lost
                     if not -1.5 <= when[pid] - killed <= 0.5)
    assert not outside, outside[:10]
    # Estimates answered by the killed worker may have been stored before
    # their answer was lost with it; nothing else appears.
    assert len(set(rows) - set(answered)) <= CLIENTS * BATCH
    assert len(rows) == len(set(rows))
    # Only requests in flight on the killed worker failed.
    assert len(load.failures) <= CLIENTS, load.failures
    # Refused, or cut off mid-answer: either way, the connection the kill closed.
    assert all(f[0] in ("ConnectionError", "ChunkedEncodingError")
               for f in load.failures), load.failures
    assert spooled_rows(spool_dir) == 0, sorted(spool_dir.iterdir())
    assert not list(spool_dir.glob("rejected-*")), log[-3000:]
