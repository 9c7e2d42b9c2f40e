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


#: Fixed windows in Redis, in one round trip: count the request in each
#: window, shortest first, until one is used up; give each count and the
#: seconds its window has left. The counters are limits' own (its key
#: names, its ``incr`` and expiry), so limits' other calls read them.
_HIT_WINDOWS = """
local out = {}
for i, key in ipairs(KEYS) do
    local count = redis.call("incr", key)
    local expiry = tonumber(ARGV[2 * i - 1])
    if count == 1 then
        redis.call("expire", key, expiry)
    end
    local ttl = redis.call("ttl", key)
    if ttl < 0 then
        ttl = expiry
    end
    out[2 * i - 1] = count
    out[2 * i] = ttl
    if count > tonumber(ARGV[2 * i]) then
        break
    end
end
return out
"""


class RedisWindows:
    """``FixedWindowRateLimiter.hit`` of several limits, and the stats of
    the one to show, in one Redis call instead of one per limit and two
    for the headers."""

    def __init__(self, storage):
        self._storage = storage
        self._script = storage.get_connection().register_script(_HIT_WINDOWS)

    @staticmethod
    def supports(strategy) -> bool:
        """Whether ``strategy`` counts fixed windows in one Redis server
        (a cluster would need every key in one slot)."""
        from limits.storage import RedisClusterStorage, RedisStorage
        from limits.strategies import FixedWindowRateLimiter

        storage = strategy.storage
        return (type(strategy) is FixedWindowRateLimiter
                and isinstance(storage, RedisStorage)
                and not isinstance(storage, RedisClusterStorage))

    def hit(self, items, *identifiers) -> tuple[int, int, float]:
        """Count one request in each of ``items`` (shortest window first)
        until one is used up: (index of the refusing item or -1, remaining,
        reset time) of that item, else of the first."""
        keys = [self._storage.prefixed_key(item.key_for(*identifiers))
                for item in items]
        args = [value for item in items
                for value in (item.get_expiry(), item.amount)]
        out = [int(v) for v in self._script(keys=keys, args=args)]
        now = time.time()
        for i in range(len(out) // 2):
            if out[2 * i] > items[i].amount:
                return i, 0, now + out[2 * i + 1]
        return -1, max(0, items[0].amount - out[0]), now + out[1]
