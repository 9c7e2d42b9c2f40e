"""Gunicorn servers started the way production starts, and HTTP calls to them."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from common import DATA, ENTRYPOINT, ROOT


# -- HTTP, with a new connection for every request --------------------------

def call(url: str, method: str, path: str, body=None, headers=None,
         timeout: float = 10.0):
    """Return (status, decoded JSON or text) of one request on a new
    connection (so that consecutive requests may reach different workers)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json"} if data else {}
        conn.request(method, path, body=data, headers={**hdrs, **(headers or {})})
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw.decode(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- Servers ----------------------------------------------------------------

#: The default limits' shape ("N per second; M per minute"), with values no
#: benchmark reaches: what users run, minus the 429s.
NEVER_TRIPPING_LIMITS = {
    "HOUSING_PREDICT_RATE_LIMIT": "1000000 per second; 100000000 per minute",
    "HOUSING_API_KEY_QUOTA": "1000000 per second; 100000000 per minute",
    "HOUSING_ADMIN_RATE_LIMIT": "1000000 per minute",
}


class Server(NamedTuple):
    label: str
    url: str
    pid: int
    store: Path
    log: Path
    workers: int
    ready_s: float


def server_env(store: Path, tmp: Path, port: int, workers: int,
               extra: dict) -> dict:
    """Production's environment: only what a deployment sets, plus ``extra``.

    The caller's HOUSING_* and Gunicorn variables are dropped so that the
    numbers do not depend on whoever runs the benchmark.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HOUSING_", "GUNICORN_"))
           and k not in ("WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR")}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOUSING_MODEL_DIR": str(store),
        "HOUSING_DATA_DIR": str(DATA),
        # An empty instance folder: the defaults, not a local config.py.
        "HOUSING_INSTANCE_PATH": str(tmp / "instance"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}",
        # The production limits, raised in value only (the same two limits,
        # the same storage): they are checked on every request, never trip.
        **NEVER_TRIPPING_LIMITS,
        # The job process the master keeps beside its workers serves no
        # request (and would count as one here): housing-api score has rows
        # of its own.
        "HOUSING_JOB_WORKERS": "0",
    })
    env.update(extra)
    return env


@contextmanager
def gunicorn(label: str, store: Path, *, app: str | None = None,
             workers: int = 2, env: dict | None = None,
             expect_version: str | None = None, timeout: float = 120,
             root: Path | None = None):
    """Start ``deploy/entrypoint.sh`` (the service, or ``app``); yield a
    :class:`Server` once ``/health/ready`` answers 200 (naming
    ``expect_version`` if given); stop it, and only it, afterwards.
    ``root``: another source tree of the project to run (a baseline)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-gunicorn-") as tmp:
        tmp = Path(tmp)
        log = tmp / "gunicorn.log"
        full_env = server_env(store, tmp, port, workers, env or {})
        if root is not None:
            full_env["PYTHONPATH"] = str(root)
        url = f"http://127.0.0.1:{port}"
        entrypoint = ENTRYPOINT if root is None else root / ENTRYPOINT.relative_to(ROOT)
        with open(log, "wb") as out:
            started = time.monotonic()
            process = subprocess.Popen(
                [str(entrypoint), *([app] if app else [])], cwd=root or ROOT,
                env=full_env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            ready_s = wait_ready(url, process, log, started, expect_version,
                                 timeout)
            yield Server(label, url, process.pid, store, log, workers, ready_s)
        finally:
            stop(process)


@contextmanager
def bare_gunicorn(label: str, app: str, *, workers: int = 2, timeout: float = 60):
    """``gunicorn -w workers app`` with Gunicorn's own defaults (no config
    file, no entrypoint); yield a :class:`Server` once it answers."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as tmp:
        log = Path(tmp) / "gunicorn.log"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HOUSING_", "GUNICORN_"))
               and k != "WEB_CONCURRENCY"}
        gunicorn_bin = str(Path(sys.executable).with_name("gunicorn"))
        with open(log, "wb") as out:
            started = time.monotonic()
            process = subprocess.Popen(
                [gunicorn_bin, "--config", "/dev/null", "-w", str(workers),
                 "--bind", f"127.0.0.1:{port}", app],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            ready_s = wait_ready(url, process, log, started, None, timeout)
            yield Server(label, url, process.pid, Path(tmp), log, workers, ready_s)
        finally:
            stop(process)


def worker_cpu_seconds(server: Server) -> float:
    """User + system CPU seconds of the server's workers (the master's
    children) so far."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    total = 0
    for pid in children.read_text().split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a worker that just exited
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wait_ready(url, process, log, started, expect_version, timeout) -> float:
    """Poll ``/health/ready`` every 10 ms; return seconds since ``started``."""
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n"
                               + log.read_text(errors="replace")[-4000:])
        try:
            status, body = call(url, "GET", "/health/ready", timeout=2)
        except OSError:
            status = None
        if status == 200 and (expect_version is None
                              or body["model"]["version"] == expect_version):
            return time.monotonic() - started
        time.sleep(0.01)
    raise RuntimeError(f"{url} not ready in {timeout:g} s:\n"
                       + log.read_text(errors="replace")[-4000:])


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """TERM the master (graceful), then KILL its own process group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            pass
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
