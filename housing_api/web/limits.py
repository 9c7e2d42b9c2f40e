"""Per-client rate limits (flask-limiter).

The storage comes from ``RATELIMIT_STORAGE_URI``: ``memory://`` counts per
worker process and resets on reload, so production uses ``redis://``, shared
by every worker and replica. When Redis is unreachable, limits fall back to
per-worker memory and predictions keep flowing; flask-limiter logs it.
"""
from flask import current_app

from ..extensions import limiter
from . import admin, monitoring, predict


def predict_limit() -> str:
    return current_app.config["PREDICT_RATE_LIMIT"]


def admin_limit() -> str:
    return current_app.config["ADMIN_RATE_LIMIT"]


limiter.limit(predict_limit)(predict.blp)
limiter.limit(predict_limit)(monitoring.blp)
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
    limiter.init_app(app)
