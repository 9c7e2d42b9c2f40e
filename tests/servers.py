"""Real Gunicorn servers for end-to-end tests.

``gunicorn_server`` starts the service exactly as production does
(``deploy/entrypoint.sh``, hence ``gunicorn.conf.py``) on a free loopback
port, waits until it is ready, and stops it (and only it) afterwards.
"""
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"


class Server(NamedTuple):
    """A running Gunicorn: base URL, master pid, and its log file."""

    url: str
    pid: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_pids(master_pid: int) -> set[int]:
    """Return the pids of ``master_pid``'s live child processes."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == master_pid and fields[0] != "Z":
            children.add(int(entry.name))
    return children


def rss_kib(pid: int) -> int:
    """Return the resident set size of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"no VmRSS for pid {pid}")


def wait_ready(url: str, process: subprocess.Popen, log: Path,
               timeout: float = 60) -> None:
    """Wait until ``url``/health/ready answers 200, or fail with the log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n"
                               + log.read_text(errors="replace"))
        try:
            if requests.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready in {timeout:g} s:\n"
                       + log.read_text(errors="replace"))


@contextmanager
def gunicorn_server(model_dir: Path, env: dict | None = None, workers: int = 2,
                    timeout: float = 60, args: str = ""):
    """Run the service under real Gunicorn; yield a :class:`Server`.

    ``env`` adds to (or overrides) the environment: e.g. admin tokens,
    ``HOUSING_MODEL_WATCH_INTERVAL``, ``HOUSING_RATELIMIT_ENABLED``.
    ``args`` are more Gunicorn options. Each server gets its own port,
    Prometheus folder and instance folder.
    """
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="gunicorn-") as tmp:
        tmp = Path(tmp)
        log = tmp / "gunicorn.log"
        full_env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "HOUSING_MODEL_DIR": str(model_dir),
            "HOUSING_DATA_DIR": str(DATA_DIR),
            "HOUSING_INSTANCE_PATH": str(tmp / "instance"),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port} {args}",
            # No job process beside the workers (tests count the master's
            # children); tests of jobs ask for one.
            "HOUSING_JOB_WORKERS": "0",
            **(env or {}),
        }
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [str(ROOT / "deploy" / "entrypoint.sh")], cwd=ROOT, env=full_env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        server = Server(f"http://127.0.0.1:{port}", process.pid, log)
        try:
            wait_ready(server.url, process, log, timeout)
            yield server
        finally:
            stop(process)


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """Stop Gunicorn gracefully (TERM), then for good (KILL its group)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            pass
        # Our own session: the master and the workers it forked.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def served(url) -> str:
    """The version named by /health/ready, on a new connection."""
    return requests.get(f"{url}/health/ready", timeout=10).json()["model"]["version"]


def wait_converged(server, version, old_workers, timeout=30.0,
                   workers=2) -> float:
    """Wait until every worker serves ``version``; return the seconds it took.

    Every worker was forked after the swap (none of ``old_workers`` is
    left), and answers on several new connections all name ``version``.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        pids = worker_pids(server.pid)
        if len(pids) == workers and not pids & old_workers:
            answers = {served(server.url) for _ in range(3 * workers)}
            model = requests.get(f"{server.url}/v1/model", timeout=10).json()
            if answers == {version} and model["version"] == version:
                return time.monotonic() - start
        time.sleep(0.05)
    pytest.fail(f"{version} not served by every worker within {timeout:g} s:\n"
                + server.log_text()[-3000:])


def wait_rollout(server, expected: dict | None, old_workers, timeout=30.0,
                 workers=2) -> float:
    """Wait until every worker serves the rollout ``expected`` (the fields of
    readiness's ``rollout``: id, mode, challenger, share; None for no
    rollout); return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        pids = worker_pids(server.pid)
        if len(pids) == workers and not pids & old_workers:
            seen = [requests.get(f"{server.url}/health/ready", timeout=10)
                    .json()["rollout"] for _ in range(3 * workers)]
            if all(s == expected for s in seen):
                return time.monotonic() - start
        time.sleep(0.05)
    pytest.fail(f"rollout {expected} not served by every worker within "
                f"{timeout:g} s:\n" + server.log_text()[-3000:])


def client_address(i: int) -> str:
    """The ``i``-th of many client addresses (sent as X-Forwarded-For)."""
    return f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"


class Load:
    """Clients sending requests on new connections until stopped.

    Bounded: each thread stops after ``cap`` requests even if never told.
    With ``clients``, each estimate comes from one of that many addresses
    (X-Forwarded-For: the server must trust one proxy), and ``answers``
    keeps (address, version) in order.
    """

    def __init__(self, url, home, threads=2, cap=5000, clients=0):
        self.url, self.home, self.cap, self.clients = url, home, cap, clients
        self.results, self.failures, self.answers = [], [], []
        self._sent = itertools.count()  # shared by the threads
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(threads)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self):
        for i in range(self.cap):
            if self._stop.is_set():
                return
            try:
                if i % 2:
                    response = requests.get(f"{self.url}/v1/model", timeout=30)
                    version = response.json().get("version")
                else:
                    address = client_address(next(self._sent) % self.clients) \
                        if self.clients else None
                    response = requests.post(
                        f"{self.url}/v1/predict", json=self.home, timeout=30,
                        headers={"X-Forwarded-For": address} if address else {})
                    version = response.json().get("model", {}).get("version")
                    self.answers.append((address, version))
                if response.status_code != 200:
                    self.failures.append((response.status_code, response.text))
                self.results.append(version)
            except Exception as exc:  # a failed request is the finding
                self.failures.append((type(exc).__name__, str(exc)))
