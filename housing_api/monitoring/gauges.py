"""Live accuracy and drift as Prometheus gauges, refreshed by one process.

Every worker runs a refresher thread, but only the one holding the lock
file queries the database, every ``interval`` seconds: never on a
request, and not once per worker. If that worker goes, another takes the
lock at its next poll. The same process judges a canary for an
automatic abort (``rollouts.RolloutGuard``) after each refresh.
"""
import fcntl
import logging
import os
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .drift import drift
from .performance import performance

log = logging.getLogger(__name__)

#: Drift is measured on the estimates of this many recent days.
DRIFT_DAYS = 7


class LiveGauges:
    """Sets ``metrics``' live gauges for the version ``state`` serves."""

    def __init__(self, metrics, state, engine, lock_path: Path,
                 interval: float = 60.0, guard=None):
        self.metrics, self.state, self.engine = metrics, state, engine
        #: A ``RolloutGuard`` to run after each refresh, or None.
        self.guard = guard
        self.lock_path = Path(lock_path)
        self.interval = float(interval)
        self._pid = None
        self._lock_file = None

    def start(self) -> None:
        """Start this process's refresher thread (once per process)."""
        if self._pid == os.getpid() or self.interval <= 0:
            return
        self._pid, self._lock_file = os.getpid(), None
        threading.Thread(target=self._run, name="live-gauges", daemon=True).start()

    def _run(self) -> None:
        while True:
            if self._leader():
                self.run_once()
            time.sleep(self.interval)

    def run_once(self) -> None:
        """Refresh the gauges, then judge the canary; errors are logged
        (the database away: try next time)."""
        try:
            self.refresh()
        except Exception as exc:
            log.warning("live gauges not refreshed: %s", type(exc).__name__)
        if self.guard is None:
            return
        try:
            self.guard.check(self.engine.get())
        except Exception as exc:
            log.warning("rollout not judged: %s", type(exc).__name__)

    def _leader(self) -> bool:
        if self._lock_file is None:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            f = open(self.lock_path, "a")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                return False
            self._lock_file = f  # held until this process exits
        return True

    def refresh(self) -> None:
        """Query the database once and set every gauge of the served version."""
        version = self.state.version
        if version is None:
            return
        metadata = self.state.predictor.metadata
        engine = self.engine.get()
        live = performance(engine, version)[0]
        m = self.metrics
        m.live_sales.labels(version).set(live["n"])
        if live["n"]:
            m.live_mape.labels(version).set(live["mape"])
            m.live_coverage.labels(version).set(live["coverage"])
        holdout = metadata.get("metrics", {}).get("holdout", {})
        if "mape" in holdout:
            m.holdout_mape.labels(version).set(holdout["mape"])
        reference = metadata.get("training_distribution")
        if reference:
            since = datetime.now(timezone.utc) - timedelta(days=DRIFT_DAYS)
            for feature in drift(engine, version, reference, since)["features"]:
                # Only an index resting on enough rows: an alert on the others
                # would fire on small samples.
                if feature["verdict"] in ("none", "moderate", "major"):
                    m.drift_psi.labels(version, feature["name"]).set(feature["psi"])
