"""``memory://`` rate-limit counters that start no thread per request.

limits' ``MemoryStorage`` frees expired counters from a ``threading.Timer``
of 10 ms that every hit restarts once it has run: under load each worker
started about a hundred threads a second, and the thread churn and the GIL
hand-offs cost more than the limiter's own work (measured in
docs/benchmarks.md). The counters are right without that sweep (``get``
drops an expired counter when it is read); the sweep only frees memory.
Here it runs in the request that comes a second or more after the last one,
in that request's thread.

Registered with limits' storage registry under the ``memory`` scheme, the
way limits documents custom backends: ``RATELIMIT_STORAGE_URI=memory://``
means this class once the module is imported (``web.limits`` imports it).
"""
import time

from limits.storage import MemoryStorage

#: Seconds between two sweeps of expired counters.
SWEEP_INTERVAL = 1.0


class WorkerMemoryStorage(MemoryStorage):
    """limits' in-memory storage, swept in the requests' own thread."""

    STORAGE_SCHEME = ["memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options):
        self._next_sweep = 0.0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    def _MemoryStorage__schedule_expiry(self) -> None:
        # MemoryStorage calls this before every change of a counter.
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL
            self._MemoryStorage__expire_events()
