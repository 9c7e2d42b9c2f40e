"""Rate limits: each API key's quota, else per address.

``/v1`` (predictions, sales, monitoring) and the pages share one quota per
client: a request with a key counts against the key's quota (``web.keys``),
one without against its address's ``PREDICT_RATE_LIMIT``. The admin API has
its own ``ADMIN_RATE_LIMIT`` per address, through flask-limiter's decorator.

The shared quota is checked here, not by flask-limiter's decorator, which
resolved its blueprints' limits, re-parsed the limit string and walked its
exemption rules on every request (about 15% of a k-NN estimate's CPU).
:class:`Quota` parses each limit string once, hits each of its limits once
through flask-limiter's own strategy and storage (in Redis, every limit and
the headers' numbers in one round trip: ``ops.limit_storage``), and takes
the headers from the same counters: ``X-RateLimit-Limit``, ``-Remaining`` and
``-Reset`` of the shortest window (of the breached one on a 429, with
``Retry-After``).

The storage comes from ``RATELIMIT_STORAGE_URI``: ``memory://`` counts per
worker process and resets on reload (``ops.limit_storage``: no thread per
request), so production uses ``redis://``, shared by every worker and
replica. When Redis is unreachable, the quota is counted in per-worker
memory and predictions keep flowing; Redis is tried again after 1, 2, 4 ...
up to 32 seconds, and the change is logged both ways.
"""
import logging
import time
from functools import lru_cache

from flask import current_app, g, request
from flask_smorest import abort
from limits import RateLimitItem, parse_many
from limits.strategies import STRATEGIES

from ..extensions import limiter
from ..ops.limit_storage import RedisWindows, WorkerMemoryStorage
from . import admin, keys, monitoring, predict, ui

log = logging.getLogger(__name__)

#: The counters' scope: one quota for all of these blueprints.
SCOPE = "v1"
SHARED = (predict.blp, monitoring.blp, ui.bp)
#: Longest wait, in seconds, before an unreachable storage is tried again.
MAX_RETRY_S = 32


def admin_limit() -> str:
    return current_app.config["ADMIN_RATE_LIMIT"]


limiter.limit(admin_limit)(admin.blp)


@limiter.request_filter
def _not_admin() -> bool:
    """flask-limiter checks only the admin API; :class:`Quota` the rest."""
    return request.blueprint != admin.blp.name


for _blueprint in SHARED:
    _blueprint.before_request(lambda: current_app.extensions["housing_quota"].check())


@lru_cache(maxsize=512)
def parsed(limit_string: str) -> tuple[RateLimitItem, ...]:
    """The limits of ``limit_string``, shortest window first (parsed once)."""
    return tuple(sorted(parse_many(limit_string)))


class Quota:
    """The shared quota of one app, per process."""

    def __init__(self, enabled: bool, strategy: str, key_prefix: str = ""):
        self.enabled = enabled
        #: ``RATELIMIT_KEY_PREFIX``: the counters' names start with it, as
        #: flask-limiter's do (several services sharing one Redis).
        self._scope = (key_prefix, SCOPE) if key_prefix else (SCOPE,)
        self._strategy_name = strategy
        self._fallback = None
        self._windows_of = self._windows = None
        self._failures = 0
        self._retry_at = 0.0

    def check(self) -> None:
        """Count the request against its client's quota; 429 once it is used up."""
        if not self.enabled:
            return
        items = parsed(keys.quota())
        who = keys.rate_key()
        strategy = self._strategy()
        try:
            if strategy is not self._fallback and self._one_trip(strategy):
                refused_at, remaining, reset = self._windows.hit(
                    items, *self._scope, who)
                refused = refused_at >= 0
                shown = items[refused_at if refused else 0]
            else:
                shown = next((item for item in items
                              if not strategy.hit(item, *self._scope, who)), None)
                refused = shown is not None
                shown = shown or items[0]
                reset, remaining = strategy.get_window_stats(shown, *self._scope,
                                                             who)
        except Exception as exc:  # the storage is away: count in memory
            if strategy is self._fallback:
                raise
            self._failed(exc)
            return self.check()
        if self._failures and strategy is not self._fallback:
            log.info("rate limits: storage reachable again")
            self._failures = 0
        headers = {"X-RateLimit-Limit": str(shown.amount),
                   "X-RateLimit-Remaining": str(max(0, remaining)),
                   "X-RateLimit-Reset": str(int(reset + 1))}
        if refused:
            headers["Retry-After"] = str(keys.retry_after(reset))
            abort(429, message=f"Too many requests: this client may send {shown} "
                               "here; see Retry-After.", headers=headers)
        g.rate_limit_headers = headers

    def _one_trip(self, strategy) -> bool:
        """Whether ``strategy``'s storage takes every limit in one call
        (Redis, fixed windows): made once per storage."""
        if self._windows_of is not strategy.storage:
            self._windows_of = strategy.storage
            self._windows = (RedisWindows(strategy.storage)
                             if RedisWindows.supports(strategy) else None)
        return self._windows is not None

    def _strategy(self):
        if self._retry_at and time.monotonic() < self._retry_at:
            return self._fallback
        self._retry_at = 0.0
        return limiter.limiter

    def _failed(self, exc: Exception) -> None:
        if self._fallback is None:
            self._fallback = STRATEGIES[self._strategy_name](WorkerMemoryStorage())
        if not self._failures:
            log.warning("rate limits: storage unreachable (%s); counting in "
                        "this worker's memory", type(exc).__name__)
        self._failures += 1
        self._retry_at = time.monotonic() + min(2 ** (self._failures - 1),
                                                MAX_RETRY_S)


def init_app(app):
    """Bind the limiter to ``app``, with our defaults for its settings."""
    defaults = {
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        # Fail over to memory quickly instead of stalling requests.
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 0.25,
                                      "socket_timeout": 0.25},
    }
    for key, value in defaults.items():
        app.config.setdefault(key, value)
    app.extensions["housing_quota"] = Quota(
        app.config.get("RATELIMIT_ENABLED", True),
        app.config.get("RATELIMIT_STRATEGY", "fixed-window"),
        app.config.get("RATELIMIT_KEY_PREFIX", ""))
    # Before the limiter's own: after_request functions run last first, so
    # this one sees the headers the limiter sets.
    app.after_request(_useful_retry_after)
    app.after_request(_quota_headers)
    limiter.init_app(app)


def _quota_headers(response):
    headers = g.get("rate_limit_headers")
    if headers:
        response.headers.update(headers)
    return response


def _useful_retry_after(response):
    """A 429's Retry-After: the whole seconds until its window ends, at least 1.

    flask-limiter rounds the time down: a "50 per 1 second" window said
    ``Retry-After: 0``, and a client that honoured it was refused again.
    """
    if response.status_code == 429 and "Retry-After" in response.headers:
        try:
            reset = limiter.current_limit.window[0]  # the window's own end
        except Exception:  # not flask-limiter's limit (the quota's, the key guard's)
            return response
        response.headers["Retry-After"] = str(keys.retry_after(reset))
    return response
