"""Rate limits (flask-limiter): each API key's quota, else per address.

``/v1`` (predictions, sales, monitoring) and the pages share one quota per
client: a request with a key counts against the key's quota (``web.keys``),
one without against its address's ``PREDICT_RATE_LIMIT``.

The storage comes from ``RATELIMIT_STORAGE_URI``: ``memory://`` counts per
worker process and resets on reload, so production uses ``redis://``, shared
by every worker and replica (``memory://`` is ``ops.limit_storage``'s: no
thread per request). When Redis is unreachable, limits fall back to
per-worker memory and predictions keep flowing; flask-limiter logs it.
"""
from flask import current_app

from ..extensions import limiter
from ..ops import limit_storage  # noqa: F401  (memory:// without a timer thread)
from . import admin, keys, monitoring, predict, ui


def admin_limit() -> str:
    return current_app.config["ADMIN_RATE_LIMIT"]


_v1 = limiter.shared_limit(keys.quota, scope="v1", key_func=keys.rate_key)
_v1(predict.blp)
_v1(monitoring.blp)
_v1(ui.bp)  # the pages estimate too: one quota with the API's
limiter.limit(admin_limit)(admin.blp)


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
    # Before the limiter's own: after_request functions run last first, so
    # this one sees the headers the limiter sets.
    app.after_request(_useful_retry_after)
    limiter.init_app(app)


def _useful_retry_after(response):
    """A 429's Retry-After: the whole seconds until its window ends, at least 1.

    flask-limiter rounds the time down: a "50 per 1 second" window said
    ``Retry-After: 0``, and a client that honoured it was refused again.
    """
    if response.status_code == 429 and "Retry-After" in response.headers:
        try:
            reset = limiter.current_limit.window[0]  # the window's own end
        except Exception:  # no limit of flask-limiter's (the key guard's own)
            return response
        response.headers["Retry-After"] = str(keys.retry_after(reset))
    return response
