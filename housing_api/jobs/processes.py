"""The job processes a Gunicorn master keeps running beside its workers.

With ``JOB_WORKERS`` above 0 (1 by default: a newcomer's ``make serve``
scores jobs with nothing else to start), the master starts that many
``housing-api worker`` processes once it is ready, starts a new one when
one exits, and stops them with SIGTERM when it stops (each gives its job
back to the queue). In Kubernetes the web pods set ``JOB_WORKERS=0`` and a
Deployment of its own runs ``housing-api worker``.
"""
import logging
import os
import subprocess  # nosec B404 - starts our own job command only, see _spawn
import sys
import threading

log = logging.getLogger(__name__)

#: Seconds between checks that every job process still runs; a process that
#: exits is started again after at least this long.
CHECK_SECONDS = 5.0


class JobProcesses:
    def __init__(self, count: int, cwd: str | None = None):
        self.count, self.cwd = int(count), cwd
        self.processes: list[subprocess.Popen] = []
        self._stop = threading.Event()

    def _spawn(self) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items()
               if k != "PROMETHEUS_MULTIPROC_DIR"}  # not a web worker's metrics
        process = subprocess.Popen(  # nosec B603 - our own command, no shell
            [sys.executable, "-m", "housing_api", "worker"], cwd=self.cwd,
            env=env, stdin=subprocess.DEVNULL)
        log.info("job process %d started", process.pid)
        return process

    def start(self) -> None:
        """Start the processes and a thread that keeps them running."""
        if self.count <= 0:
            return
        self.processes = [self._spawn() for _ in range(self.count)]
        threading.Thread(target=self._watch, name="job-processes",
                         daemon=True).start()

    def _watch(self) -> None:
        while not self._stop.wait(CHECK_SECONDS):
            for i, process in enumerate(self.processes):
                if process.poll() is not None and not self._stop.is_set():
                    log.warning("job process %d exited with %s; starting "
                                "another", process.pid, process.returncode)
                    self.processes[i] = self._spawn()

    def stop(self, timeout: float = 25.0) -> None:
        """SIGTERM every process (each gives its job back), then wait."""
        self._stop.set()
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
