"""The model a process serves, and how it is swapped."""
import logging
import os
import signal

from .model_store import ModelStore

log = logging.getLogger(__name__)

#: Set in each Gunicorn worker to its master's pid (see gunicorn.conf.py).
MASTER_PID_ENV = "HOUSING_MASTER_PID"


class ModelState:
    """The store and the predictor loaded from its CURRENT pointer."""

    def __init__(self, store: ModelStore):
        self.store = store
        self.predictor = None

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
        predictor = self.store.load(version)
        old, self.predictor = self.version, predictor
        log.info("model loaded",
                 extra={"model_version": version, "previous_version": old})
        return True

    def request_reload(self) -> str:
        """Make every process pick up CURRENT; return how ("rolling" or not)."""
        master = os.environ.get(MASTER_PID_ENV)
        if master:
            # Gunicorn: the master loads the version in on_reload and forks
            # fresh workers; old workers finish their in-flight requests.
            os.kill(int(master), signal.SIGHUP)
            return "rolling"
        self.reload()
        return "in-process"
