"""The model a process serves: the store, and the predictor loaded from it."""
import logging
import os
import signal

from ..store import ModelStoreError, StoreUnavailableError, VersionStore

log = logging.getLogger(__name__)


class ModelState:
    """The store, the predictor loaded from its CURRENT pointer, and the
    challenger of the rollout in progress (``store.rollout()``), if any.

    Both are loaded where ``reload`` runs: in Gunicorn's master, before it
    forks, so that every worker shares them.
    """

    def __init__(self, store: VersionStore, metrics=None):
        self.store = store
        self.predictor = None
        #: The rollout in progress and its challenger's predictor, or None.
        self.rollout = None
        self.challenger = None
        #: ``ServiceMetrics`` (or None): the loaded-version gauge and the
        #: reload counter follow every swap, in whichever process makes it.
        self.metrics = metrics
        #: Set in each Gunicorn worker to its master's pid (gunicorn.conf.py,
        #: post_fork); None under the Flask dev server or the test client.
        self.master_pid: int | None = None
        #: Whether the last reload failed because the store was unreachable
        #: (a bucket outage): the watcher asks again, where it would wait for
        #: a broken version to be replaced.
        self.store_unreachable = False

    @property
    def version(self) -> str | None:
        return self.predictor.version if self.predictor else None

    def answering(self, client: str):
        """The predictor that answers ``client``: a canary's challenger for
        its share of clients, the active version's otherwise (and in shadow
        mode, where clients only ever see the champion's answers)."""
        rollout, challenger = self.rollout, self.challenger
        if rollout is not None and challenger is not None \
                and rollout.mode == "canary" and rollout.in_canary(client):
            return challenger
        return self.predictor

    def counterpart(self, predictor):
        """During a rollout, the other version of the one that answered with
        ``predictor`` (the challenger beside the champion, the champion
        beside the challenger; the minimal companion for a minimal one), so
        that both are judged on the same homes; None otherwise."""
        rollout, challenger = self.rollout, self.challenger
        if rollout is None or challenger is None:
            return None
        if predictor.version == rollout.champion:
            other = challenger
        elif predictor.version == rollout.challenger:
            other = self.predictor
        else:
            return None
        if predictor.variant == "minimal" and other.minimal is not None:
            other = other.minimal
        return other

    @property
    def rollout_key(self):
        """What identifies the loaded rollout's state (None without one)."""
        return self.rollout.key if self.rollout else None

    def reload(self) -> bool:
        """Load the version CURRENT names and the rollout's challenger, if
        they are not loaded yet; return whether anything changed.

        Idempotent: merged or repeated reload signals cost two file reads.
        On failure the loaded model stays and the error propagates; a
        challenger that fails to load is logged, and its rollout not served.
        """
        try:
            changed = self._reload_champion()
            changed = self._reload_rollout() or changed
        except StoreUnavailableError:
            self.store_unreachable = True
            raise
        self.store_unreachable = False
        return changed

    def _reload_rollout(self) -> bool:
        try:
            rollout = self.store.rollout()
        except StoreUnavailableError:
            raise  # unknown, not over: the served rollout stays
        except ModelStoreError as exc:
            log.error("rollout ignored: %s", exc)
            rollout = None
        if rollout is not None and rollout.champion != self.version:
            rollout = None  # started against a version this process lacks
        if rollout == self.rollout:
            return False
        challenger = None
        if rollout is not None and self.challenger is not None \
                and self.challenger.version == rollout.challenger:
            challenger = self.challenger  # a new share: the same version
        elif rollout is not None:
            try:
                challenger = self.store.load(rollout.challenger)
            except StoreUnavailableError:
                raise
            except Exception:
                log.exception("the challenger %s does not load; its %s is not "
                              "served", rollout.challenger, rollout.mode)
                self._count("failed")
                rollout = None
        self.rollout, self.challenger = rollout, challenger
        log.info("rollout %s", f"{rollout.mode} of {rollout.challenger} at "
                 f"{rollout.share:g}" if rollout else "none",
                 extra={"model_version": self.version})
        return True

    def _reload_champion(self) -> bool:
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
