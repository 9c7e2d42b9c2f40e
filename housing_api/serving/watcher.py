"""The Gunicorn master's watch on the store's pointer (``model/CURRENT``
and ``model/ROLLOUT``, or an object store's ``pointer.json``).

A CLI activation or rollout, or one made by another replica sharing the
store, changes them without signalling this master; the watcher notices
and asks for a rolling reload. It only reads one small file and sends a signal:
nothing it does can hold a lock that a forked worker would inherit.
"""
import logging
import time
from collections.abc import Callable

from .state import ModelState

log = logging.getLogger(__name__)


class PointerWatcher:
    """Decide, poll by poll, when to roll the workers onto the pointer's version."""

    def __init__(self, state: ModelState):
        self.state = state
        self._seen = self._signalled = None
        self._unreachable = False

    def poll(self) -> bool:
        """Return whether a reload should be asked for now."""
        store = self.state.store
        try:
            # One read of the pointer (a bucket answers 304 while it has not
            # changed); an unreadable rollout is logged by the reload.
            pointer, rollout, complete = store.served()
        except OSError as exc:  # unreadable for now (a bucket outage): serve on
            if not self._unreachable:
                log.warning("the model store is unreachable (%s); %s serves "
                            "until it is back", exc, self.state.version)
            self._unreachable = True
            return False
        if self._unreachable:
            log.info("the model store is reachable again")
            self._unreachable = False
        target = (pointer, rollout.key if rollout else None)
        if pointer is None or target == (self.state.version,
                                         self.state.rollout_key):
            self._seen = self._signalled = None
        elif target == self._signalled and not self.state.store_unreachable:
            # Signalled once and still not loaded: the version is broken
            # (on_reload logged why). Wait for the pointer to move again.
            pass
        elif target != self._seen or not complete:
            # Wait one more poll: the admin API's own HUP usually lands
            # first, and another replica's copy of the folder may be
            # incomplete yet. Each HUP replaces every worker.
            self._seen = target
        else:
            self._signalled = target
            return True
        return False

    def run(self, interval: float, reload: Callable[[], None]) -> None:
        """Poll every ``interval`` seconds, forever, calling ``reload`` when due."""
        while True:
            time.sleep(interval)
            try:
                due = self.poll()
            except Exception:  # the watch must outlive any one poll
                log.exception("the model watcher's poll failed")
                continue
            if due:
                reload()
