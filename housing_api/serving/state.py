"""The model a process serves: the store, and the predictor loaded from it."""
import logging
import os
import signal

from ..store import ModelStore

log = logging.getLogger(__name__)


class ModelState:
    """The store and the predictor loaded from its CURRENT pointer."""

    def __init__(self, store: ModelStore, metrics=None):
        self.store = store
        self.predictor = None
        #: ``ServiceMetrics`` (or None): the loaded-version gauge and the
        #: reload counter follow every swap, in whichever process makes it.
        self.metrics = metrics
        #: Set in each Gunicorn worker to its master's pid (gunicorn.conf.py,
        #: post_fork); None under the Flask dev server or the test client.
        self.master_pid: int | None = None

    @property
    def version(self) -> str | None:
        return self.predictor.version if self.predictor else None

    def reload(self) -> bool:
        """Load the version CURRENT names, if it is not loaded yet.

        Idempotent: merged or repeated reload signals cost one file read.
        On failure the loaded model stays and the error propagates.
        """
        version = self.store.current()
        if version is None or version == self.version:
            return False
        try:
            predictor = self.store.load(version)
        except Exception:
            self._count("failed")
            raise
        old, self.predictor = self.version, predictor
        log.info("model loaded",
                 extra={"model_version": version, "previous_version": old})
        self._count("loaded")
        if self.metrics is not None:
            self.metrics.set_model(predictor)
        return True

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.reloads.labels(result).inc()

    def request_reload(self) -> str:
        """Make every process pick up CURRENT; return how ("rolling" or not)."""
        if self.master_pid:
            # Gunicorn: the master loads the version in on_reload and forks
            # fresh workers; old workers finish their in-flight requests.
            os.kill(self.master_pid, signal.SIGHUP)
            return "rolling"
        self.reload()
        return "in-process"
