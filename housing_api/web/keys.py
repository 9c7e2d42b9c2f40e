"""API keys on HTTP: who is asking, and may they?

``/v1/predict*`` (and the other reads of the predict blueprint) need a key
with the ``predict`` scope, ``/v1/sales`` and the monitoring reads one with
``sales``, the admin API one with ``admin`` (or a bootstrap token, see
``admin``). Keys are required when ``REQUIRE_API_KEY`` is true; otherwise
a request may come without one (limited per address, as before), but a key
that is sent must be valid. Health, metrics and the docs never ask.

The check runs before the rate limiter's (registered first), so that a
key's own quota, not its address's, applies to it; a brute-force guard
limits, per address, how many unknown keys are tried, before any lookup.
The secret never reaches a log line, a metric or an error body: only the
key's prefix does.
"""
import math
import time

from flask import current_app, g, request
from flask_smorest import abort
from limits import parse_many

from ..extensions import limiter
from ..keys import KeyCache, KeysUnavailableError

#: The scope each blueprint's endpoints need.
SCOPE_OF_BLUEPRINT = {"predict": "predict", "monitoring": "sales"}
#: Query parameters a key (or token) must never travel in.
QUERY_NAMES = ("api_key", "apikey", "key", "token", "access_token")
#: The OpenAPI security schemes a key can be sent by.
SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer",
                   "description": "An API key (or, for /admin, an admin "
                                  "token): `Authorization: Bearer <key>`."},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                     "description": "An API key in the `X-API-Key` header."},
}
REALM = "housing-api"


def init_app(app) -> None:
    """Put this process's :class:`KeyCache` on the app; check keys first."""
    app.extensions["housing_keys"] = KeyCache(
        app.extensions["housing_db"],
        interval=app.config["API_KEY_REFRESH_INTERVAL"],
        spool_dir=app.config["PREDICTION_LOG_SPOOL_DIR"])
    # The guard's limits, parsed once (none when rate limiting is off).
    app.extensions["housing_key_guard"] = parse_many(
        app.config["API_KEY_FAILURE_LIMIT"]) if app.config["RATELIMIT_ENABLED"] else []
    app.before_request(authenticate)
    app.after_request(count_use)


def security(app) -> list[dict]:
    """The OpenAPI ``security`` of an operation that takes a key."""
    options = [{name: []} for name in SCHEMES]
    # {}: no credentials at all, which is allowed unless keys are required.
    return options if app.config["REQUIRE_API_KEY"] else [*options, {}]


def authenticate():
    scope = SCOPE_OF_BLUEPRINT.get(request.blueprint)
    if scope is not None:
        authorize(scope, required=current_app.config["REQUIRE_API_KEY"])


def sent_secret() -> str | None:
    """The key the request carries (Bearer, or X-API-Key), or None."""
    if any(name in request.args for name in QUERY_NAMES):
        abort(401, message="Send the key in the Authorization header (Bearer) "
                           "or in X-API-Key, never in the URL.",
              headers={"WWW-Authenticate": f'Bearer realm="{REALM}", '
                                           'error="invalid_request"'})
    authorization = request.headers.get("Authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            abort(401, message="Use the Bearer scheme: "
                               "`Authorization: Bearer <key>`.",
                  headers={"WWW-Authenticate": f'Bearer realm="{REALM}", '
                                               'error="invalid_request"'})
        return value.strip()
    value = request.headers.get("X-API-Key", "").strip()
    return value or None


def authorize(scope: str, *, required: bool = True, secret: str | None = None):
    """The request's key, if it has ``scope``; else answer 401, 403 or 429.

    Without a key: None when ``required`` is false, else 401.
    """
    secret = secret if secret is not None else sent_secret()
    challenge = f'Bearer realm="{REALM}", scope="{scope}"'
    if secret is None:
        if not required:
            return None
        abort(401, message=f"An API key with the {scope!r} scope is required: "
                           "send it as `Authorization: Bearer <key>` or in "
                           "`X-API-Key`.",
              headers={"WWW-Authenticate": challenge})
    _guard()
    try:
        key = current_app.extensions["housing_keys"].lookup(secret)
    except KeysUnavailableError:
        abort(503, message="API keys cannot be checked right now (the database "
                           "is unavailable); try again shortly.",
              headers={"Retry-After": "5"})
    if key is None:
        _failed()
        abort(401, message="Unknown API key.",
              headers={"WWW-Authenticate": f'{challenge}, error="invalid_token"'})
    if key.revoked():
        abort(403, message=f"API key {key.prefix}... is revoked"
                           + (f"; it was replaced by key {key.replaced_by}."
                              if key.replaced_by else "."))
    if scope not in key.scopes:
        abort(403, message=f"API key {key.prefix}... lacks the {scope!r} scope.",
              headers={"WWW-Authenticate":
                       f'{challenge}, error="insufficient_scope"'})
    g.api_key = key
    return key


def _failure_limits():
    return current_app.extensions["housing_key_guard"]


def _guard() -> None:
    """429 for an address that sent too many unknown keys, before any lookup."""
    try:
        breached = [item for item in _failure_limits() if not limiter.limiter.test(
            item, "unknown-key", request.remote_addr)]
        reset = max((limiter.limiter.get_window_stats(
            item, "unknown-key", request.remote_addr).reset_time
            for item in breached), default=None)
    except Exception:  # the limiter's storage away: no guard, as no limit
        return
    if breached:
        abort(429, message="Too many unknown API keys from this address; "
                           "see Retry-After.",
              headers={"Retry-After": str(retry_after(reset))})


def _failed() -> None:
    try:
        for item in _failure_limits():
            limiter.limiter.hit(item, "unknown-key", request.remote_addr)
    except Exception:
        return


def retry_after(reset_time: float) -> int:
    """Whole seconds until ``reset_time`` (epoch), never 0: a client told 0
    retries at once and is refused again."""
    return max(1, math.ceil(reset_time - time.time()))


def count_use(response):
    """Count the request for its key: usage per day and the Prometheus counter."""
    key = g.get("api_key")
    if key is not None:
        estimates = g.get("estimates", 0) if response.status_code == 200 else 0
        current_app.extensions["housing_keys"].record_use(key, estimates)
        current_app.extensions["housing_metrics"].observe_key_use(
            key.name, request.endpoint, estimates)
    return response


def rate_key() -> str:
    """Whose quota a request counts against: its key's, else its address's."""
    key = g.get("api_key")
    return f"key:{key.id}" if key is not None else request.remote_addr


def quota() -> str:
    """The limit of the request's key (its own, or the default for keys),
    or the per-address limit."""
    key = g.get("api_key")
    if key is None:
        return current_app.config["PREDICT_RATE_LIMIT"]
    return key.quota or current_app.config["API_KEY_QUOTA"]
